package webhooks

import (
	"context"
	"errors"
	"time"

	"github.com/cairn-cdp/cairn/internal/audit"
)

// Endpoint is an HTTP endpoint that receives events: a tenant's, or, with
// TenantID "", one of the ISV's fleet endpoints.
type Endpoint struct {
	ID       string
	TenantID string
	URL      string
	// Description is free text for people.
	Description string
	// EventTypes are the types the endpoint receives.
	EventTypes []string
	// SegmentIDs filters segment events to these segments; empty is all.
	SegmentIDs []string
	// Traits are the trait names a payload carries in data.traits.
	Traits  []string
	Enabled bool
	// DisabledReason says why the dispatcher disabled the endpoint; ""
	// when it is enabled or a person disabled it.
	DisabledReason string
	// Secret signs every request. It is held sealed (see Sealer): the
	// Service seals it before it is stored and opens it only to sign, and
	// the API shows it once, when it is made. A stored "whsec_" value is
	// a plaintext secret of an older version, sealed by SealStored.
	Secret string
	// PreviousSecret, sealed too, signs until PreviousSecretExpiresAt, the
	// grace period of a rotation.
	PreviousSecret          string
	PreviousSecretExpiresAt *time.Time
	// FailingSince is the first failed attempt of the current streak of
	// failures, nil while the endpoint answers.
	FailingSince *time.Time
	CreatedAt    time.Time
	UpdatedAt    time.Time
	// Version grows with every change a person makes (If-Match); the
	// dispatcher's bookkeeping (FailingSince) leaves it alone.
	Version int64
	// Seq is the creation order list cursors carry.
	Seq int64
}

// Secrets returns the stored (sealed) secrets that sign a request at now:
// the current one, and the previous one during its grace period.
func (e Endpoint) Secrets(now time.Time) []string {
	out := []string{e.Secret}
	if e.PreviousSecret != "" && e.PreviousSecretExpiresAt != nil && now.Before(*e.PreviousSecretExpiresAt) {
		out = append(out, e.PreviousSecret)
	}
	return out
}

// Status is a delivery's state.
type Status string

// Delivery statuses. Pending deliveries are tried until they are
// delivered, fail for good or are cancelled (their endpoint was deleted or
// disabled).
const (
	StatusPending   Status = "pending"
	StatusDelivered Status = "delivered"
	StatusFailed    Status = "failed"
	StatusCancelled Status = "cancelled"
)

// Delivery is one event on its way to one endpoint, with the outcome of
// its last attempt.
type Delivery struct {
	ID         string
	EndpointID string
	// EventID is the webhook-id of every attempt.
	EventID   string
	EventType string
	TenantID  string
	// OrderKey orders deliveries to one endpoint: the profile ID, or the
	// tenant ID of a fleet event.
	OrderKey string
	// Payload is the exact body sent.
	Payload       []byte
	Status        Status
	Attempts      int
	NextAttemptAt time.Time
	LastAttemptAt *time.Time
	// ResponseStatus is the last answer's HTTP status, 0 for none.
	ResponseStatus int
	// ResponseBody is the first KiB of the last answer.
	ResponseBody []byte
	LastError    string
	// ClaimedUntil is the lease of the dispatcher sending it; another
	// dispatcher takes the delivery over once it has passed.
	ClaimedUntil *time.Time
	CreatedAt    time.Time
	Seq          int64
}

// ClaimParams asks for due deliveries.
type ClaimParams struct {
	// Now is the time: due deliveries have NextAttemptAt <= Now, and
	// leases that end before Now have lapsed.
	Now time.Time
	// LeaseUntil is the ClaimedUntil of the claimed deliveries.
	LeaseUntil time.Time
	// PerEndpoint bounds the deliveries of one endpoint under a lease at
	// once, those claimed before included.
	PerEndpoint int
	// Limit bounds the deliveries claimed by the call.
	Limit int
}

// AttemptResult is what a dispatcher learned from one attempt.
type AttemptResult struct {
	// ID and Lease name the claimed delivery; a result whose lease was
	// taken over (the delivery was claimed again) is dropped.
	ID    string
	Lease time.Time
	// Status is the delivery's new status: delivered, pending (tried again
	// at NextAttemptAt) or failed.
	Status         Status
	NextAttemptAt  time.Time
	At             time.Time
	ResponseStatus int
	ResponseBody   []byte
	LastError      string
}

// Sentinel errors of Store implementations and of the Service.
var (
	// ErrNotFound: no such endpoint for the tenant (or the fleet), or no
	// such delivery for the endpoint.
	ErrNotFound = errors.New("webhook not found")
	// ErrVersionMismatch: the endpoint changed since the version the
	// caller read (If-Match).
	ErrVersionMismatch = errors.New("webhook endpoint changed concurrently")
	// ErrLimit: the tenant already has MaxEndpoints endpoints.
	ErrLimit = errors.New("webhook endpoint limit reached")
	// ErrLeaseLost: an attempt's result came after its lease was taken
	// over by another dispatcher.
	ErrLeaseLost = errors.New("webhook delivery lease lost")
)

// Store keeps endpoints and deliveries in the control-plane database.
// Tenant "" is the fleet's. Implementations are safe for concurrent use,
// also from several processes on one database.
type Store interface {
	// The changes below that take rec write it, the audit event of the
	// request that asked for the change, in the change's transaction (a
	// zero rec writes nothing).
	//
	// WebhookEndpointInsert stores a new endpoint at Version 1 unless the
	// tenant has max endpoints already (ErrLimit); concurrent inserts never
	// exceed max.
	WebhookEndpointInsert(ctx context.Context, e Endpoint, max int, rec audit.Event) (Endpoint, error)
	// WebhookEndpointGet returns the tenant's endpoint (ErrNotFound).
	WebhookEndpointGet(ctx context.Context, tenantID, id string) (Endpoint, error)
	// WebhookEndpointList pages the tenant's endpoints in creation order.
	// A limit <= 0 means no limit.
	WebhookEndpointList(ctx context.Context, tenantID string, afterSeq int64, limit int) ([]Endpoint, error)
	// WebhookEndpointsEnabled returns every enabled endpoint of the tenant.
	WebhookEndpointsEnabled(ctx context.Context, tenantID string) ([]Endpoint, error)
	// WebhookEndpointUpdate stores e's settings, secrets, Enabled,
	// DisabledReason and FailingSince if the stored Version is e.Version,
	// and returns it at Version+1 (ErrVersionMismatch, ErrNotFound).
	// Disabling an endpoint this way pauses it: its pending deliveries stay
	// pending, unclaimed, until it is enabled again.
	WebhookEndpointUpdate(ctx context.Context, e Endpoint, rec audit.Event) (Endpoint, error)
	// WebhookEndpointsUnsealed returns every endpoint, of any tenant or
	// the fleet, whose Secret or PreviousSecret is a plaintext "whsec_"
	// value an older version stored.
	WebhookEndpointsUnsealed(ctx context.Context) ([]Endpoint, error)
	// WebhookEndpointReseal replaces the endpoint's stored secrets with
	// secret and previous if they are still oldSecret and oldPrevious, and
	// reports whether it did. Version and UpdatedAt stay.
	WebhookEndpointReseal(ctx context.Context, id, oldSecret, oldPrevious, secret, previous string) (bool, error)
	// WebhookEndpointDelete deletes the endpoint if its Version is version
	// (any Version when version is 0) and cancels its pending deliveries,
	// in one transaction (ErrNotFound, ErrVersionMismatch).
	WebhookEndpointDelete(ctx context.Context, tenantID, id string, version int64, rec audit.Event) error
	// WebhookEndpointFailing records a failed attempt at at: FailingSince
	// is set unless a streak has started. It returns the endpoint.
	WebhookEndpointFailing(ctx context.Context, id string, at time.Time) (Endpoint, error)
	// WebhookEndpointAnswering ends the endpoint's failure streak.
	WebhookEndpointAnswering(ctx context.Context, id string) error
	// WebhookEndpointDisable disables an enabled endpoint with a reason and
	// cancels its pending deliveries in one transaction; it reports false
	// when it was disabled already (or is gone).
	WebhookEndpointDisable(ctx context.Context, id, reason string, at time.Time) (bool, error)

	// WebhookDeliveryInsert stores new pending deliveries; one whose
	// (EndpointID, EventID) is stored already is skipped. It returns the
	// ones it stored.
	WebhookDeliveryInsert(ctx context.Context, ds []Delivery, rec audit.Event) ([]Delivery, error)
	// WebhookDeliveryGet returns the endpoint's delivery (ErrNotFound).
	WebhookDeliveryGet(ctx context.Context, endpointID, id string) (Delivery, error)
	// WebhookDeliveryList pages the endpoint's deliveries, newest first:
	// beforeSeq 0 is the start. status "" lists every status.
	WebhookDeliveryList(ctx context.Context, endpointID string, status Status, beforeSeq int64, limit int) ([]Delivery, error)
	// WebhookDeliveryClaim leases due pending deliveries of enabled
	// endpoints and returns them in Seq order: of each endpoint's
	// deliveries with one OrderKey only the oldest pending one, and never
	// more than p.PerEndpoint of one endpoint under a lease at once.
	// Concurrent claims never return one delivery twice.
	WebhookDeliveryClaim(ctx context.Context, p ClaimParams) ([]Delivery, error)
	// WebhookDeliveryRecord stores an attempt's result, counts the attempt
	// and releases the lease (ErrLeaseLost when the delivery is no longer
	// pending under r.Lease: it was taken over, retried or cancelled).
	WebhookDeliveryRecord(ctx context.Context, r AttemptResult) error
	// WebhookDeliveryRenew moves the lease of a delivery in flight from
	// lease to until (ErrLeaseLost when the delivery is no longer pending
	// under lease, or lease lapsed before now).
	WebhookDeliveryRenew(ctx context.Context, id string, lease, now, until time.Time) error
	// WebhookDeliveryRetry makes the endpoint's delivery pending again, due
	// at at, with no attempts and no lease, whatever its status
	// (ErrNotFound).
	WebhookDeliveryRetry(ctx context.Context, endpointID, id string, at time.Time, rec audit.Event) (Delivery, error)
	// WebhookDeliveryRecover makes every failed delivery of the endpoint
	// created at or after since pending again, due at at, and returns how
	// many.
	WebhookDeliveryRecover(ctx context.Context, endpointID string, since, at time.Time, rec audit.Event) (int, error)
}
