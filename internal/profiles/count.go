package profiles

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// The profile index. A tenant's profiles are its root members, scattered
// over as many partitions as it has members, so no single read could count
// them. The index is one partition, TENANT#t#P, holding one small item per
// profile (its ID as the sort key), written in the transactions that make
// and unmake profiles:
//
//	a new profile (create)            puts its item
//	a merge (join)                    deletes the item of each profile merged away
//	an unmerge                        puts the restored profile's item
//	an erasure                        deletes each member's item with the member
//	an offboarding (DeleteTenant)     deletes the partition with everything else
//
// Each change commits with the member items it describes, so the index
// holds exactly the tenant's profiles, whatever crashed, and ProfileCount
// is one key-only Count of one partition (a Query with Select COUNT on
// DynamoDB, an index range count on SQLite): no scan, and no counter
// that concurrent ingestion would contend on.
//
// Profiles made before the index existed are added by IndexProfiles.

// profileIndexPK is the partition of the tenant's profile index.
func profileIndexPK(tenant string) string { return KeyPrefix(tenant) + "P" }

func profileIndexKey(tenant, profile string) Key {
	return Key{PK: profileIndexPK(tenant), SK: profile}
}

// indexProfile is the op that records profile in the index.
func indexProfile(tenant, profile string) Op {
	k := profileIndexKey(tenant, profile)
	return Op{Put: &Item{PK: k.PK, SK: k.SK, Data: []byte(`{}`)}}
}

// unindexProfile is the op that removes profile from the index.
func unindexProfile(tenant, profile string) Op {
	k := profileIndexKey(tenant, profile)
	return Op{Delete: &k}
}

// ProfileCount returns how many unified profiles the tenant has: the items
// of its profile index, counted keys only. A tenant whose store is not
// ready is ErrNotReady (from the store).
func (s *Service) ProfileCount(ctx context.Context, tenant string) (int, error) {
	return s.store.Count(ctx, QueryInput{PK: profileIndexPK(tenant)})
}

// countChanged notes that the tenant's profile count changed.
func (s *Service) countChanged(tenant string) {
	if _, ok := s.changed.Load(tenant); !ok {
		s.changed.Store(tenant, struct{}{})
	}
}

// CountsChanged returns, and forgets, the tenants whose profile count this
// Service changed (a profile made, merged, unmerged or erased) since the
// last call, in no particular order. It is per replica and in memory: a
// sampler of the counts calls it to read again only what changed.
func (s *Service) CountsChanged() []string {
	var out []string
	s.changed.Range(func(k, _ any) bool {
		s.changed.Delete(k)
		out = append(out, k.(string))
		return true
	})
	return out
}

// indexChunk is how many members IndexProfiles checks in one transaction:
// a condition on the member and the index write, two ops each.
const indexChunk = MaxTransactOps / 2

// IndexProfiles makes the tenant's profile index agree with its members:
// it adds the profiles that have no index item (made before the index
// existed, or by a replica of an older version) and removes the items of
// profiles that are gone or merged away (by such a replica). Every change
// is conditional on the version of the member item it read, so a profile
// made, merged or erased meanwhile (which maintains the index itself) is
// never counted twice or lost; it is safe to run at any time, and again.
// It returns how many items it added and removed. It reads every member of
// the tenant (Store.Scan): a job's work, once per tenant, never a
// request's.
func (s *Service) IndexProfiles(ctx context.Context, tenant string) (added, removed int, err error) {
	roots := map[string]int64{} // root member → version read
	after := Key{}
	for {
		items, next, err := s.store.Scan(ctx, ScanInput{PKPrefix: KeyPrefix(tenant) + "M#", SK: "M", After: after, Limit: 5000})
		if err != nil {
			return added, removed, err
		}
		for _, it := range items {
			m, err := readMember(it)
			if err != nil {
				return added, removed, err
			}
			if m.Root == m.ID {
				roots[m.ID] = m.version
			}
		}
		if next == (Key{}) {
			break
		}
		after = next
	}
	indexed := map[string]bool{}
	var stale []string
	for last := ""; ; {
		items, err := s.store.Query(ctx, QueryInput{PK: profileIndexPK(tenant), After: last, Limit: 1000})
		if err != nil {
			return added, removed, err
		}
		for _, it := range items {
			indexed[it.SK] = true
			if _, ok := roots[it.SK]; !ok {
				stale = append(stale, it.SK)
			}
		}
		if len(items) < 1000 {
			break
		}
		last = items[len(items)-1].SK
	}
	var missing []string
	for id := range roots {
		if !indexed[id] {
			missing = append(missing, id)
		}
	}
	slices.Sort(missing)
	for chunk := range slices.Chunk(missing, indexChunk) {
		n, err := s.reindex(ctx, tenant, chunk, roots)
		added += n
		if err != nil {
			return added, removed, err
		}
	}
	// A stale item's member was read as no root; it may have become one
	// since (an unmerge, which wrote the item): reindex reads it again.
	for chunk := range slices.Chunk(stale, indexChunk) {
		n, err := s.reindex(ctx, tenant, chunk, nil)
		removed -= n
		if err != nil {
			return added, removed, err
		}
	}
	if added+removed > 0 {
		s.countChanged(tenant)
	}
	return added, removed, nil
}

// reindex sets the index items of the profiles ids to what their members
// say: present for a root, absent otherwise. known holds member versions
// read just before (a root at that version), for one transaction over all
// of ids; a failed condition, or ids not in known, read the members again
// and settle each on its own. It returns the items added less those
// removed.
func (s *Service) reindex(ctx context.Context, tenant string, ids []string, known map[string]int64) (int, error) {
	if known != nil {
		ops := make([]Op, 0, 2*len(ids))
		for _, id := range ids {
			k := memberKey(tenant, id)
			ops = append(ops, Op{Put: &Item{PK: k.PK, SK: k.SK}, Check: true, IfVersion: known[id]}, indexProfile(tenant, id))
		}
		err := s.store.Transact(ctx, ops)
		if err == nil {
			return len(ids), nil
		}
		if !errors.Is(err, ErrConditionFailed) {
			return 0, fmt.Errorf("index profiles: %w", err)
		}
	}
	delta := 0
	for _, id := range ids {
		n, err := s.reindexOne(ctx, tenant, id)
		delta += n
		if err != nil {
			return delta, err
		}
	}
	return delta, nil
}

// reindexOne settles one profile's index item on its member as read now,
// on condition that the member stays as read.
func (s *Service) reindexOne(ctx context.Context, tenant, id string) (int, error) {
	for range maxResolveAttempts {
		k := memberKey(tenant, id)
		it, found, err := s.store.Get(ctx, k)
		if err != nil {
			return 0, err
		}
		_, indexed, err := s.store.Get(ctx, profileIndexKey(tenant, id))
		if err != nil {
			return 0, err
		}
		check := Op{Put: &Item{PK: k.PK, SK: k.SK}, Check: true, IfAbsent: true}
		root := false
		if found {
			m, err := readMember(it)
			if err != nil {
				return 0, err
			}
			root = m.Root == m.ID
			check = Op{Put: &Item{PK: k.PK, SK: k.SK}, Check: true, IfVersion: it.Version}
		}
		var op Op
		n := 0
		switch {
		case root && !indexed:
			op, n = indexProfile(tenant, id), 1
		case !root && indexed:
			op, n = unindexProfile(tenant, id), -1
		default:
			return 0, nil
		}
		err = s.store.Transact(ctx, []Op{check, op})
		if errors.Is(err, ErrConditionFailed) {
			continue // the member changed meanwhile
		}
		if err != nil {
			return 0, fmt.Errorf("index profile %s: %w", id, err)
		}
		return n, nil
	}
	return 0, errors.New("index profiles: too much contention")
}
