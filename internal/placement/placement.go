// Package placement is the read model of where each tenant's data lives:
// its tier, its home Region and the Regions it chose, and, per Region,
// whether its stack (or its slice of the Region's pool) is ready and what
// it made there (profile table, raw, clean and curated buckets, prefixes,
// Glue database, the stack itself). The provisioner writes placements;
// the profile store, the raw zone, the grants broker and the API read
// them through this one model, which the control-plane store reads in one
// query (Reader).
//
// A Locator reads a tenant's placements at most once per Scope: the API
// opens a scope per request, so a request that touches a tenant's profile
// table and raw zone many times reads where they are once.
package placement

import (
	"context"
	"errors"
	"sync"
)

// ErrNotReady is returned while the tenant's placement in the Region asked
// for (its home Region, for the profile store and the raw zone) is not
// provisioned: not made yet, failed, or taken away.
var ErrNotReady = errors.New("tenant data stack not ready")

// Kind is how a tenant is placed in a Region, and so its tier.
type Kind string

// Kinds, the values of tenants.Tier and provisioner.Kind.
const (
	// Dedicated is a stack of the tenant's own.
	Dedicated Kind = "dedicated"
	// Pooled is a tenant-prefixed slice of the Region's pool stack.
	Pooled Kind = "pooled"
)

// Tenant is a tenant's placements as one read of the control-plane store
// returns them.
type Tenant struct {
	ID         string
	Tier       Kind
	HomeRegion string
	// Regions are the Regions the tenant chose, the home Region included.
	Regions []string
	// Placements are the stored placements, ordered by Region; a Region
	// whose first provisioning step has not run has none yet.
	Placements []Placement
}

// Placement is what a tenant has in one Region.
type Placement struct {
	Region string
	Kind   Kind
	// Ready is true once the stack (or slice) exists and its outputs are
	// recorded, until it is taken away.
	Ready bool
	// StackName is the tenant's own stack (dedicated) or the Region's
	// pool stack (pooled).
	StackName string
	// Outputs are what the stack made, under Cairn's snake_case keys
	// (raw_bucket, profile_table, glue_database, ...); the accessors
	// below name the ones the readers use.
	Outputs map[string]string
}

// Table is the DynamoDB profile table (the pool's, for a pooled tenant).
func (p Placement) Table() string { return p.Outputs["profile_table"] }

// RawBucket is the raw zone's bucket.
func (p Placement) RawBucket() string { return p.Outputs["raw_bucket"] }

// CleanBucket is the clean zone's bucket.
func (p Placement) CleanBucket() string { return p.Outputs["clean_bucket"] }

// CuratedBucket is the curated zone's bucket.
func (p Placement) CuratedBucket() string { return p.Outputs["curated_bucket"] }

// S3Prefix is the tenant's key prefix in the buckets: "" in a dedicated
// tenant's own buckets, "tenants/<id>/" in a pool's.
func (p Placement) S3Prefix() string { return p.Outputs["s3_prefix"] }

// KeyPrefix is the tenant's key prefix in a pool's profile table, "" in a
// dedicated tenant's own table.
func (p Placement) KeyPrefix() string { return p.Outputs["key_prefix"] }

// GlueDatabase is the tenant's Glue database.
func (p Placement) GlueDatabase() string { return p.Outputs["glue_database"] }

// WorkGroup is the Athena workgroup the tenant's queries run in: its own
// (dedicated) or the pool's (pooled).
func (p Placement) WorkGroup() string { return p.Outputs["athena_workgroup"] }

// PoolRole is the pool's data-access role of a pooled placement ("" for a
// dedicated one): pool_role_arn once the tenant has a role of its own (its
// data_access_role_arn then), data_access_role_arn before.
func (p Placement) PoolRole() string {
	if p.Kind != Pooled {
		return ""
	}
	if r := p.Outputs["pool_role_arn"]; r != "" {
		return r
	}
	return p.Outputs["data_access_role_arn"]
}

// In returns the tenant's ready placement in region, or ErrNotReady.
func (t Tenant) In(region string) (Placement, error) {
	for _, p := range t.Placements {
		if p.Region == region {
			if !p.Ready {
				break
			}
			return p, nil
		}
	}
	return Placement{}, ErrNotReady
}

// Home returns the tenant's ready placement in its home Region, where its
// profiles and raw zone are, or ErrNotReady.
func (t Tenant) Home() (Placement, error) { return t.In(t.HomeRegion) }

// Reader reads a tenant's placements. The control-plane store implements
// it with one query.
type Reader interface {
	// TenantPlacements returns the tenant and its placements, or the
	// store's error for an unknown tenant (tenants.ErrNotFound).
	TenantPlacements(ctx context.Context, tenantID string) (Tenant, error)
}

// Locator is a Reader that reads each tenant's placements at most once
// per Scope; outside one, every call reads. Reads that fail are not
// remembered. What it returns within a scope is shared by the scope's
// callers, who must not change it. It is safe for concurrent use.
type Locator struct {
	reader Reader
}

var _ Reader = (*Locator)(nil)

// NewLocator returns a Locator reading through r.
func NewLocator(r Reader) *Locator { return &Locator{reader: r} }

// scopeKey is the context key of a scope's memo.
type scopeKey struct{}

// memo holds what a scope has read, by tenant ID.
type memo struct {
	mu      sync.Mutex
	tenants map[string]Tenant
}

// Scope returns a context within which a Locator reads each tenant's
// placements at most once: one request, or one run of a job. Within a
// scope already open it returns ctx.
func Scope(ctx context.Context) context.Context {
	if _, ok := ctx.Value(scopeKey{}).(*memo); ok {
		return ctx
	}
	return context.WithValue(ctx, scopeKey{}, &memo{})
}

// TenantPlacements returns the tenant's placements, as read earlier in
// ctx's scope if they were.
func (l *Locator) TenantPlacements(ctx context.Context, tenantID string) (Tenant, error) {
	m, ok := ctx.Value(scopeKey{}).(*memo)
	if !ok {
		return l.reader.TenantPlacements(ctx, tenantID)
	}
	// Held across the read: concurrent calls of one request (a batch's
	// parallel calls to the profile store) wait for the first one's read
	// instead of reading too.
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.tenants[tenantID]; ok {
		return t, nil
	}
	t, err := l.reader.TenantPlacements(ctx, tenantID)
	if err != nil {
		return Tenant{}, err
	}
	if m.tenants == nil {
		m.tenants = make(map[string]Tenant, 1)
	}
	m.tenants[tenantID] = t
	return t, nil
}

// Home returns the tenant's ready home placement (Tenant.Home), or
// ErrNotReady.
func (l *Locator) Home(ctx context.Context, tenantID string) (Placement, error) {
	t, err := l.TenantPlacements(ctx, tenantID)
	if err != nil {
		return Placement{}, err
	}
	return t.Home()
}
