package profiles

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
)

// ConfigCompiles returns how many identity configurations s has compiled
// for ingestion.
func ConfigCompiles(s *Service) int64 { return s.configs.compiles.Load() }

// MembershipSetKey is the key of a profile's membership set.
func MembershipSetKey(tenant, profile string) Key { return membershipSetKey(tenant, profile) }

// QueuePK is the partition of the tenant's evaluation markers.
func QueuePK(tenant string) string { return queuePK(tenant) }

func AggregatesKey(tenant, member string) Key { return aggregatesKey(tenant, member) }

// DecodeAggregates decodes a member's combined aggregates item, leaves by
// key.
func DecodeAggregates(it Item) (map[string]*EventAggregate, error) { return decodeAggregates(it) }

func LegacyAggregateKey(tenant, member, leaf string) Key {
	return legacyAggregateKey(tenant, member, leaf)
}

func MemberKey(tenant, member string) Key { return memberKey(tenant, member) }

// Memberships returns the segments of profile's membership set and those
// of its membership items, each sorted.
func Memberships(ctx context.Context, st Store, tenant, profile string) (set, items []string, err error) {
	its, err := st.Query(ctx, QueryInput{PK: membershipKey(tenant, profile, "").PK})
	if err != nil {
		return nil, nil, err
	}
	for _, it := range its {
		if it.SK != setSK {
			items = append(items, it.SK)
			continue
		}
		m, err := readSet(it)
		if err != nil {
			return nil, nil, err
		}
		set = slices.Sorted(maps.Keys(m.Segments))
	}
	slices.Sort(items)
	return set, items, nil
}

// CachedSetMemos checks the membership sets s's item cache keeps decoded
// (Item.memo): each must be what its item's Data decodes to. It returns
// how many it checked.
func CachedSetMemos(s *Service) (int, error) {
	s.items.cache.mu.Lock()
	defer s.items.cache.mu.Unlock()
	n := 0
	for k, it := range s.items.cache.m {
		m, ok := it.recalled().(*membershipSet)
		if !ok {
			continue
		}
		fresh := it
		fresh.memo = nil
		want, err := readSet(fresh)
		if err != nil || !reflect.DeepEqual(*m, want) {
			return n, fmt.Errorf("set %s: memo %+v, item %s (%v)", k.PK, *m, it.Data, err)
		}
		n++
	}
	return n, nil
}
