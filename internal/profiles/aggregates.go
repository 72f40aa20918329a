package profiles

import (
	"context"
	"fmt"
	"sync"

	jsonv2 "github.com/go-json-experiment/json"
)

// A member's event aggregates, those of every leaf the segments read, are
// one item (aggregatesKey), so that an event costs one aggregate write
// however many leaves it matches: with 100 segments an event of a known
// customer commonly matches dozens.
//
// Aggregates were once an item per leaf (legacyAggregateKey, sort key the
// leaf's key). A member with no combined item may still have those: they
// are read when its combined item is not found (one Query of its
// partition), and the first write of its combined item takes them in and
// deletes them, in one transaction. A combined item, even one with no
// leaf, therefore says the member has no per-leaf item, and an
// evaluation that read none writes one.

// aggregatesSK is the sort key of a member's combined aggregates item; a
// leaf's key (a legacy item's sort key) starts with an event type.
const aggregatesSK = "*"

func aggregatesPK(tenant, member string) string { return KeyPrefix(tenant) + "A#" + member }

func aggregatesKey(tenant, member string) Key {
	return Key{PK: aggregatesPK(tenant, member), SK: aggregatesSK}
}

// memberAggregates is what an evaluation read of a member's aggregates.
type memberAggregates struct {
	// item is the combined item as read (Version 0: not stored).
	item Item
	// legacy are per-leaf items still stored, to take in and delete.
	legacy []Item
	// leaves are the aggregates by leaf key, decoded from item and legacy.
	leaves map[string]*EventAggregate
}

// decodeAggregates decodes a combined aggregates item: its binary form
// (aggcodec.go), or the JSON of before. encoding/json/v2 decodes what
// encoding/json wrote, a few times faster.
func decodeAggregates(it Item) (map[string]*EventAggregate, error) {
	if len(it.Data) > 0 && it.Data[0] == aggregatesBinary {
		leaves, err := decodeAggregatesBinary(it.Data)
		if err != nil {
			return nil, fmt.Errorf("aggregates %s: %w", it.PK, err)
		}
		return leaves, nil
	}
	leaves := map[string]*EventAggregate{}
	if len(it.Data) == 0 {
		return leaves, nil
	}
	if err := jsonv2.Unmarshal(it.Data, &leaves); err != nil {
		return nil, fmt.Errorf("aggregates %s: %w", it.PK, err)
	}
	return leaves, nil
}

// readAggregates returns the aggregates of members from read, the answer
// of a read that asked for aggregatesKey of each. A member whose combined item is not in read has its
// per-leaf items, if any, queried, a few members at once.
func (s *Service) readAggregates(ctx context.Context, tenant string, members []string, read map[Key]Item) (map[string]*memberAggregates, error) {
	out := make(map[string]*memberAggregates, len(members))
	var missing []string
	for _, m := range members {
		k := aggregatesKey(tenant, m)
		it, ok := read[k]
		if !ok {
			missing = append(missing, m)
			out[m] = &memberAggregates{leaves: map[string]*EventAggregate{}}
			continue
		}
		leaves, err := decodeAggregates(it)
		if err != nil {
			return nil, err
		}
		out[m] = &memberAggregates{item: it, leaves: leaves}
	}
	if len(missing) == 0 {
		return out, nil
	}
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		firstErr error
		sem      = make(chan struct{}, 8)
	)
	for _, m := range missing {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			items, err := s.store.Query(ctx, QueryInput{PK: aggregatesPK(tenant, m)})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			ma := out[m]
			for _, it := range items {
				if it.SK == aggregatesSK {
					continue // written since: the evaluation's conditions fail
				}
				a := &EventAggregate{}
				if err := jsonv2.Unmarshal(it.Data, a); err != nil {
					if firstErr == nil {
						firstErr = fmt.Errorf("aggregate %s %s: %w", it.PK, it.SK, err)
					}
					return
				}
				ma.legacy = append(ma.legacy, it)
				ma.leaves[it.SK] = a
			}
		})
	}
	wg.Wait()
	return out, firstErr
}

// writeOps returns the writes of a member's aggregates, on condition of
// what was read: its combined item, and the deletion of the per-leaf
// items it takes in.
func (ma *memberAggregates) writeOps(tenant, member string) []Op {
	data := encodeAggregates(ma.leaves)
	k := aggregatesKey(tenant, member)
	op := Op{Put: &Item{PK: k.PK, SK: k.SK, Data: data}, IfVersion: ma.item.Version, IfAbsent: ma.item.Version == 0}
	ops := []Op{op}
	for _, it := range ma.legacy {
		ops = append(ops, Op{Delete: &Key{PK: it.PK, SK: it.SK}, IfVersion: it.Version})
	}
	return ops
}
