package profiles

import (
	"context"
	"maps"
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
