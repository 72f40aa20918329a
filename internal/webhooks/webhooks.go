// Package webhooks delivers Cairn's events to the HTTP endpoints tenants
// and the ISV register, as the Standard Webhooks specification
// (standardwebhooks.com) describes: every request carries webhook-id,
// webhook-timestamp and webhook-signature headers, signed with the
// endpoint's whsec_ secret (and, during a rotation's grace period, with
// the previous one too).
//
// Delivery is at least once: an Event handed to Enqueue is recorded as one
// delivery per subscribed endpoint in the control-plane database before
// Enqueue returns, and a delivery stays pending until the endpoint answers
// 2xx, answers 410 Gone (which disables it), or its retries run out.
// Deliveries to one endpoint are ordered per profile, and each endpoint has
// its own queue, so a slow endpoint never delays another.
//
// Outbound requests go through a Guard: https only (http where the
// operator allows it), and never to loopback, private, link-local, CGNAT,
// multicast or cloud-metadata addresses unless an allow-list permits them,
// checked when an endpoint is registered and again on the address each
// connection dials.
package webhooks

import (
	"encoding/json"
	"time"

	"github.com/cairn-cdp/cairn/internal/fleet"
)

// Event types.
const (
	SegmentEntered  = "segment.entered"
	SegmentExited   = "segment.exited"
	ProfileCreated  = "profile.created"
	ProfileMerged   = "profile.merged"
	ProfileUnmerged = "profile.unmerged"
	ProfileErased   = "profile.erased"
	// The fleet's own, which package fleet writes to its outbox.
	TenantProvisioned = fleet.TenantProvisioned
	TenantFailed      = fleet.TenantFailed
	TenantSuspended   = fleet.TenantSuspended
	TenantDeleted     = fleet.TenantDeleted
	StackFailed       = fleet.StackFailed
	UsageReported     = fleet.UsageReported
	RolloutHalted     = fleet.RolloutHalted
	RolloutCompleted  = fleet.RolloutCompleted
	StackDrifted      = fleet.StackDrifted
	TenantQuota       = fleet.TenantQuotaExceeded
	TenantMigrated    = fleet.TenantMigrated
	MigrationFailed   = fleet.TenantMigrationFailed
	EndpointDisabled  = "webhook.disabled"
)

// Event is one thing that happened, delivered to every endpoint subscribed
// to its type.
type Event struct {
	// ID is stable: the same change always yields the same ID, and it is
	// the webhook-id of every delivery of the event, so receivers
	// deduplicate replays by it.
	ID   string
	Type string
	// TenantID is the tenant's ID; "" for a fleet event, delivered to the
	// ISV's admin endpoints.
	TenantID string
	// ProfileID orders deliveries: an endpoint receives the events of one
	// profile in the order they were enqueued. Empty for fleet events,
	// which are ordered per TenantID instead.
	ProfileID string
	// SegmentID, for segment events, lets endpoints filter by segment.
	SegmentID string
	At        time.Time
	// Data is the payload's "data" object.
	Data json.RawMessage
	// Traits are the profile's traits when the event happened; each
	// endpoint's payload carries only the ones it asks for, as data.traits.
	Traits map[string]any
}
