package profiles

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
