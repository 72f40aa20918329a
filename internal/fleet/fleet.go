// Package fleet announces what happens to Cairn's fleet of tenants (a
// tenant provisioned, failed, suspended or deleted, a stack failed) to the
// ISV's admin webhooks, through an outbox in the control-plane database.
//
// An Event is written to the outbox in the same database transaction as the
// change it announces, by the store adapters on behalf of the tenants
// service and the provisioner, so a change is announced if and only if it
// commits. A Relay then hands the outbox to a Publisher (the webhook
// deliveries) and deletes what it handed over. Delivery is at least once:
// a relay that dies between publishing and deleting publishes again, with
// the same event IDs, and the Publisher (and the receivers) deduplicate by
// ID.
//
// This package imports no other Cairn package, so that the domain packages
// that write events depend on nothing but it.
package fleet

import (
	"time"

	"github.com/cairn-cdp/cairn/internal/ids"
)

// Event types. They are the fleet event types of package webhooks.
const (
	TenantProvisioned = "tenant.provisioned"
	TenantFailed      = "tenant.failed"
	TenantSuspended   = "tenant.suspended"
	TenantDeleted     = "tenant.deleted"
	StackFailed       = "stack.failed"
	UsageReported     = "usage.reported"
	RolloutHalted     = "rollout.halted"
	RolloutCompleted  = "rollout.completed"
	StackDrifted      = "stack.drifted"
	// TenantQuotaExceeded announces, once a month, a tenant over a quota
	// of its plan.
	TenantQuotaExceeded = "tenant.quota_exceeded"
	// TenantMigrated announces a tenant moved to another tier;
	// TenantMigrationFailed a move that failed, the tenant left on its
	// tier.
	TenantMigrated        = "tenant.migrated"
	TenantMigrationFailed = "tenant.migration_failed"
)

// Types lists every event type this package announces.
var Types = []string{TenantProvisioned, TenantFailed, TenantSuspended, TenantDeleted, StackFailed, UsageReported,
	RolloutHalted, RolloutCompleted, StackDrifted, TenantQuotaExceeded, TenantMigrated, TenantMigrationFailed}

// Event is one announcement in the outbox.
type Event struct {
	// ID is stable: it is derived from what the event announces (see
	// NewID), so a change retried after a crash or a conflict writes the
	// same ID, and the outbox keeps one row of it.
	ID   string
	Type string
	At   time.Time
	Data Data
	// Seq is the outbox's order, set by the store when it reads events.
	Seq int64
}

// Data is an event's payload: its webhook's "data" object.
type Data struct {
	// TenantID and the fields after it describe the tenant as the change
	// left it; a pool stack's failure, which is no one tenant's, has none.
	TenantID string   `json:"tenant_id,omitempty"`
	Slug     string   `json:"slug,omitempty"`
	Name     string   `json:"name,omitempty"`
	Status   string   `json:"status,omitempty"`
	Tier     string   `json:"tier,omitempty"`
	Regions  []string `json:"regions,omitempty"`
	// Region and StackName name the stack of a stack.failed event.
	Region    string `json:"region,omitempty"`
	StackName string `json:"stack_name,omitempty"`
	// Reason says why a tenant or a stack failed.
	Reason string `json:"reason,omitempty"`
	// Date, Location, Tenants and Rows describe a usage.reported event:
	// the UTC day (YYYY-MM-DD) reported, where its CSV object is, how many
	// tenants and rows it holds.
	Date     string `json:"date,omitempty"`
	Location string `json:"location,omitempty"`
	Tenants  int    `json:"tenants,omitempty"`
	Rows     int    `json:"rows,omitempty"`
	// RolloutID names the rollout of a rollout.halted or
	// rollout.completed event; Status is its state, Reason why it halted.
	RolloutID string `json:"rollout_id,omitempty"`
	// DriftStatus and DriftedResources describe a stack.drifted event:
	// the stack's drift status and the logical IDs of its drifted
	// resources.
	DriftStatus      string   `json:"drift_status,omitempty"`
	DriftedResources []string `json:"drifted_resources,omitempty"`
	// Quota, Plan, Limit, Month and Mode describe a tenant.quota_exceeded
	// event: the quota ("monthly_events"), the tenant's plan, the quota's
	// limit, the month (YYYY-MM, UTC) and what the plan does past it
	// ("warn" or "block").
	Quota string `json:"quota,omitempty"`
	Plan  string `json:"plan,omitempty"`
	Limit int64  `json:"limit,omitempty"`
	Month string `json:"month,omitempty"`
	Mode  string `json:"mode,omitempty"`
	// MigrationID and FromTier describe a tenant.migrated or
	// tenant.migration_failed event: the migration and the tier it moved
	// from (Tier is the tier the tenant is on after it).
	MigrationID string `json:"migration_id,omitempty"`
	FromTier    string `json:"from_tier,omitempty"`
	// At is when the change happened, RFC 3339 in UTC.
	At string `json:"at"`
}

// NewID returns the event ID of the parts that identify a change: "evt_"
// and 26 characters of their SHA-256 (ids.Derive), so the same parts
// always give the same ID and the ID says nothing of them.
func NewID(parts ...string) string {
	return ids.Derive("evt_", parts...)
}

// FormatTime is how Data.At is written: RFC 3339 in UTC.
func FormatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
