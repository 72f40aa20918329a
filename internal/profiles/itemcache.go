package profiles

import (
	"context"
	"strings"
	"sync"
)

// The item cache keeps, on this replica, the items the evaluation of a
// batch of known customers reads for each one: its member, its membership
// set and its event aggregates. A customer who sends several batches a
// minute has them read once, not once a batch; with segments these reads
// were most of what evaluation added to ingestion.
//
// A cached item is only ever used under a condition on its version in the
// transaction that relies on it (the member's and the set's own writes or
// checks, a check of each aggregate read and not written), so a stale
// entry, written since by another replica or past this Service, costs a
// failed condition and the event's resolution again, from the store,
// never a wrong answer. Every write this Service makes goes through
// cachingStore.Transact, which keeps the entries it touches current (the
// store sets a put's version to the one it was conditioned on plus one, 1
// for a new item) and drops those of a transaction that failed.

// A cached membership set is kept decoded too (Item.memo), decoded when
// the cache takes it (from a read or a write), so that the evaluations of
// the customer's next batches on this replica do not decode it again: each
// one reads it, and a profile in dozens of segments has a set of a few KB.
// What a memo holds is shared by every reader of the item: never modified
// (see decodedSet).

// memo is what an item's Data decodes to. It holds for those very bytes
// alone: an Item copied and given other Data has none (recalled).
type memo struct {
	data  *byte // &Data[0]
	n     int   // len(Data)
	value any
}

// remember keeps v as what it.Data decodes to.
func (it *Item) remember(v any) {
	if len(it.Data) > 0 {
		it.memo = &memo{data: &it.Data[0], n: len(it.Data), value: v}
	}
}

// recalled returns what remember kept for it.Data, or nil.
func (it Item) recalled() any {
	if m := it.memo; m != nil && len(it.Data) == m.n && m.n > 0 && &it.Data[0] == m.data {
		return m.value
	}
	return nil
}

// itemCacheMax bounds the entries kept; past it, a tenth are dropped.
const itemCacheMax = 200_000

type itemCache struct {
	mu sync.Mutex
	m  map[Key]Item
}

// cacheable reports whether the cache keeps items under k: members,
// membership sets and event aggregates.
func cacheable(k Key) bool {
	return k.SK == setSK || isMemberKey(k) || strings.Contains(k.PK, "#A#")
}

// isMemberKey reports whether k is a member item's.
func isMemberKey(k Key) bool { return k.SK == "M" && strings.Contains(k.PK, "#M#") }

// lookup returns the cached items among keys and the keys it lacks.
func (c *itemCache) lookup(keys []Key) (map[Key]Item, []Key) {
	hits := make(map[Key]Item, len(keys))
	var misses []Key
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		if it, ok := c.m[k]; ok {
			hits[k] = it
		} else {
			misses = append(misses, k)
		}
	}
	return hits, misses
}

// withMemo returns it, a membership set, with its Data decoded kept; any
// other item as it is.
func withMemo(k Key, it Item) Item {
	if k.SK == setSK && it.ExpiresAt == 0 {
		if set, err := readSet(it); err == nil {
			it.remember(&set)
		}
	}
	return it
}

// fill keeps items read from the store, unless a newer version is kept,
// the membership sets among them decoded (in items too).
func (c *itemCache) fill(items map[Key]Item) {
	for k, it := range items {
		items[k] = withMemo(k, it)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, it := range items {
		if !cacheable(k) || it.ExpiresAt != 0 {
			continue
		}
		if old, ok := c.m[k]; ok && old.Version >= it.Version {
			continue
		}
		c.putLocked(k, it)
	}
}

func (c *itemCache) putLocked(k Key, it Item) {
	if c.m == nil {
		c.m = map[Key]Item{}
	}
	if len(c.m) >= itemCacheMax {
		n := 0
		for k := range c.m {
			delete(c.m, k)
			if n++; n >= itemCacheMax/10 {
				break
			}
		}
	}
	c.m[k] = it
}

// committed records the writes of a transaction that succeeded.
func (c *itemCache) committed(ops []Op) {
	// Sets are decoded (withMemo) before the lock is taken.
	var decoded map[int]Item
	for i, op := range ops {
		if op.Put != nil && !op.Check && op.Put.SK == setSK {
			if decoded == nil {
				decoded = map[int]Item{}
			}
			decoded[i] = withMemo(op.key(), *op.Put)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, op := range ops {
		it, ok := decoded[i]
		if !ok && op.Put != nil {
			it = *op.Put
		}
		switch {
		case op.Check:
		case op.Delete != nil:
			delete(c.m, *op.Delete)
		case !cacheable(op.key()) || op.Put.ExpiresAt != 0:
		case op.IfVersion != 0:
			it.Version = op.IfVersion + 1
			c.putLocked(op.key(), it)
		case op.IfAbsent:
			it.Version = 1
			c.putLocked(op.key(), it)
		default: // the version it got is not known
			delete(c.m, op.key())
		}
	}
}

// forget drops the entries of ops' keys.
func (c *itemCache) forget(ops []Op) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, op := range ops {
		delete(c.m, op.key())
	}
}

// clear drops every entry.
func (c *itemCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m = nil
}

// cachingStore is the Store a Service uses: its own, whose writes keep the
// item cache current. Reads go to the store; only cachedBatchGet answers
// from the cache.
type cachingStore struct {
	Store
	cache itemCache
}

var (
	_ Store  = (*cachingStore)(nil)
	_ Syncer = (*cachingStore)(nil)
)

// Transact implements Store.
func (s *cachingStore) Transact(ctx context.Context, ops []Op) error {
	err := s.Store.Transact(ctx, ops)
	if err == nil {
		s.cache.committed(ops)
	} else {
		// Failed, or unknown: whatever the ops touched is read again.
		s.cache.forget(ops)
	}
	return err
}

// PutBatch implements Store.
func (s *cachingStore) PutBatch(ctx context.Context, items []Item) error {
	ops := make([]Op, len(items))
	for i := range items {
		ops[i] = Op{Put: &items[i]}
	}
	s.cache.forget(ops)
	err := s.Store.PutBatch(ctx, items)
	s.cache.forget(ops)
	return err
}

// DeleteTenant implements Store.
func (s *cachingStore) DeleteTenant(ctx context.Context, tenant string) (int, error) {
	defer s.cache.clear()
	return s.Store.DeleteTenant(ctx, tenant)
}

// Sync implements Syncer: the store's, if it has one.
func (s *cachingStore) Sync(ctx context.Context) error {
	if sy, ok := s.Store.(Syncer); ok {
		return sy.Sync(ctx)
	}
	return nil
}

// cachedBatchGet is BatchGet answering from the cache what it holds; hit
// says which items came from it. The caller must condition its writes on
// the version of every hit it relies on (see above).
func (s *cachingStore) cachedBatchGet(ctx context.Context, keys []Key) (items map[Key]Item, hit map[Key]bool, err error) {
	hits, misses := s.cache.lookup(keys)
	hit = make(map[Key]bool, len(hits))
	for k := range hits {
		hit[k] = true
	}
	if len(misses) == 0 {
		return hits, hit, nil
	}
	read, err := s.Store.BatchGet(ctx, misses)
	if err != nil {
		return nil, nil, err
	}
	s.cache.fill(read)
	for k, it := range read {
		hits[k] = it
	}
	return hits, hit, nil
}
