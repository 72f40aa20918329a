package auth

import (
	"fmt"
	"slices"
	"time"
)

// Scopes. ScopeAdmin belongs to the ISV admin only; the others are the tenant
// scopes MintTenant accepts.
const (
	ScopeAdmin         = "admin"
	ScopeProfilesRead  = "profiles:read"
	ScopeProfilesWrite = "profiles:write"
	ScopeSegmentsRead  = "segments:read"
	ScopeSegmentsWrite = "segments:write"
	ScopeWebhooksRead  = "webhooks:read"
	ScopeWebhooksWrite = "webhooks:write"
	ScopeGrantsWrite   = "grants:write"
	ScopeEventsWrite   = "events:write"
	ScopeUsageRead     = "usage:read"
	// ScopeAuditRead reads the tenant's own audit trail.
	ScopeAuditRead = "audit:read"
	// ScopeLakeQuery runs read-only SQL over the tenant's lake tables and
	// reads the results.
	ScopeLakeQuery = "lake:query"
)

var tenantScopes = []string{
	ScopeProfilesRead, ScopeProfilesWrite,
	ScopeSegmentsRead, ScopeSegmentsWrite,
	ScopeWebhooksRead, ScopeWebhooksWrite,
	ScopeGrantsWrite, ScopeEventsWrite,
	ScopeUsageRead,
	ScopeAuditRead,
	ScopeLakeQuery,
}

// TenantScopes returns every scope a tenant token may carry.
func TenantScopes() []string { return slices.Clone(tenantScopes) }

// Token lifetimes. A zero TTL given to MintAdmin or MintTenant means
// DefaultTTL. MaxTenantTTL and MaxAdminTTL are the default maximum
// lifetimes (Config.MaxTenantLifetime, Config.MaxAdminLifetime), which
// minting and verification both hold to; no configuration may raise them
// past MaxLifetimeCeiling.
const (
	DefaultTTL         = time.Hour
	MaxTenantTTL       = 24 * time.Hour
	MaxAdminTTL        = 24 * time.Hour
	MaxLifetimeCeiling = 30 * 24 * time.Hour
)

// normalizeTenantScopes returns the scopes sorted and without duplicates, so
// equal requests mint equal scope claims.
func normalizeTenantScopes(scopes []string) ([]string, error) {
	if len(scopes) == 0 {
		return nil, fmt.Errorf("%w: at least one scope is required", ErrInvalidScope)
	}
	for _, s := range scopes {
		if s == ScopeAdmin {
			return nil, fmt.Errorf("%w: %q cannot be given to a tenant token", ErrInvalidScope, s)
		}
		if !slices.Contains(tenantScopes, s) {
			return nil, fmt.Errorf("%w: unknown scope %q", ErrInvalidScope, s)
		}
	}
	out := slices.Clone(scopes)
	slices.Sort(out)
	return slices.Compact(out), nil
}

func checkTTL(ttl, limit time.Duration) (time.Duration, error) {
	switch {
	case ttl == 0:
		return DefaultTTL, nil
	case ttl < 0:
		return 0, fmt.Errorf("%w: %s is negative", ErrInvalidTTL, ttl)
	case ttl > limit:
		return 0, fmt.Errorf("%w: %s exceeds the maximum of %s", ErrInvalidTTL, ttl, limit)
	}
	return ttl, nil
}
