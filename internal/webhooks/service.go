package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/ids"
)

// Limits and defaults.
const (
	// MaxEndpoints is how many endpoints a tenant (or the fleet) may have.
	MaxEndpoints = 20
	// DefaultGrace is how long a rotated-out secret keeps signing.
	DefaultGrace = 24 * time.Hour
	// MaxGrace is the longest grace a rotation may ask for.
	MaxGrace = 7 * 24 * time.Hour
	// DefaultPerEndpoint is how many deliveries of one endpoint are in
	// flight at once.
	DefaultPerEndpoint = 16
	// DefaultDisableAfter is how long an endpoint may fail without a
	// single success before it is disabled.
	DefaultDisableAfter = 5 * 24 * time.Hour
	// DefaultPollInterval is how often an idle dispatcher looks for due
	// deliveries when nothing notifies it.
	DefaultPollInterval = 500 * time.Millisecond
	// DefaultTimeout is the Sender's timeout when it has none.
	DefaultTimeout = 15 * time.Second
	// subscribedTTL is how long Subscribed trusts what it read.
	subscribedTTL = time.Second
)

// TestEvent is the type of the event Test sends.
const TestEvent = "webhook.test"

// TenantEventTypes are the types a tenant endpoint may subscribe to.
var TenantEventTypes = []string{SegmentEntered, SegmentExited, ProfileCreated, ProfileMerged, ProfileUnmerged, ProfileErased}

// FleetEventTypes are the types a fleet endpoint may subscribe to.
var FleetEventTypes = []string{TenantProvisioned, TenantFailed, TenantSuspended, TenantDeleted, TenantQuota, TenantMigrated, MigrationFailed, StackFailed, StackDrifted,
	UsageReported, RolloutHalted, RolloutCompleted, EndpointDisabled}

// ValidationError is a refused input; Field names it as the API does
// ("url", "event_types/2").
type ValidationError struct {
	Field, Reason string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Reason }

// ErrDisabled is returned by Test for a disabled endpoint.
var ErrDisabled = errors.New("webhook endpoint disabled")

// Sealer encrypts endpoint secrets at rest; *sealed.Keyring is one. Open
// must refuse a value sealed with other associated data.
type Sealer interface {
	Seal(plaintext, ad []byte) string
	Open(sealed string, ad []byte) ([]byte, error)
}

// Config configures a Service. Store, Guard and Sealer are required.
type Config struct {
	// Store keeps endpoints and deliveries.
	Store Store
	// Sealer seals the secrets before they are stored and opens them to
	// sign.
	Sealer Sealer
	// Guard checks endpoint URLs when they are set.
	Guard *Guard
	// Sender sends deliveries; default a Sender with Guard and
	// DefaultTimeout.
	Sender *Sender
	// Now is the clock; default time.Now. Tests move it.
	Now func() time.Time
	// Rand returns a number in [0, 1) that jitters retries; default
	// math/rand/v2's Float64.
	Rand func() float64
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// PerEndpoint bounds the deliveries of one endpoint in flight at once,
	// over every replica; default DefaultPerEndpoint.
	PerEndpoint int
	// MaxInFlight bounds this process's deliveries in flight; default 64.
	MaxInFlight int
	// PollInterval is how often an idle dispatcher polls; default
	// DefaultPollInterval.
	PollInterval time.Duration
	// Lease is how long a claim on a delivery lasts unless renewed;
	// default DefaultLease.
	Lease time.Duration
	// DisableAfter disables an endpoint that has failed that long without
	// a success; default DefaultDisableAfter.
	DisableAfter time.Duration
	// OnAttempt, if set, is called after every attempt is recorded, with
	// the delivery as claimed and the attempt's result. Metrics and tests
	// use it; it must not block.
	OnAttempt func(Delivery, Result)
}

// Service manages endpoints, enqueues events as deliveries and, in Run,
// dispatches them. It is safe for concurrent use.
type Service struct {
	store        Store
	sealer       Sealer
	guard        *Guard
	sender       *Sender
	now          func() time.Time
	rand         func() float64
	log          *slog.Logger
	perEndpoint  int
	maxInFlight  int
	poll         time.Duration
	lease        time.Duration
	disableAfter time.Duration
	onAttempt    func(Delivery, Result)

	// notify wakes the dispatcher; it holds at most one wake-up.
	notify chan struct{}

	mu         sync.Mutex
	subscribed map[string]subscription // by tenant ID
}

// subscription is what Subscribed knows of a tenant's enabled endpoints.
type subscription struct {
	types map[string]bool
	read  time.Time
}

// New returns a Service, or an error naming what Config lacks.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Guard == nil || cfg.Sealer == nil {
		return nil, errors.New("webhooks: Store, Guard and Sealer are required")
	}
	if cfg.Sender == nil {
		cfg.Sender = &Sender{Guard: cfg.Guard, Timeout: DefaultTimeout}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = mrand.Float64
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.PerEndpoint <= 0 {
		cfg.PerEndpoint = DefaultPerEndpoint
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 64
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.DisableAfter <= 0 {
		cfg.DisableAfter = DefaultDisableAfter
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	now := cfg.Now
	return &Service{
		store: cfg.Store, sealer: cfg.Sealer, guard: cfg.Guard, sender: cfg.Sender,
		// Stores keep microseconds; a lease compared later must be the
		// value stored.
		now:  func() time.Time { return now().UTC().Truncate(time.Microsecond) },
		rand: cfg.Rand, log: cfg.Logger, perEndpoint: cfg.PerEndpoint, maxInFlight: cfg.MaxInFlight,
		poll: cfg.PollInterval, lease: cfg.Lease, disableAfter: cfg.DisableAfter, onAttempt: cfg.OnAttempt,
		notify:     make(chan struct{}, 1),
		subscribed: map[string]subscription{},
	}, nil
}

// EndpointInput is what a person sets on an endpoint. On Update, nil
// fields stay as they are.
type EndpointInput struct {
	URL         *string
	Description *string
	EventTypes  *[]string
	SegmentIDs  *[]string
	Traits      *[]string
	Enabled     *bool
}

// validate checks in against the kind of endpoint (tenant "" is the fleet)
// and applies it to e.
func (s *Service) apply(ctx context.Context, tenant string, e *Endpoint, in EndpointInput) error {
	if in.URL != nil {
		u := strings.TrimSpace(*in.URL)
		if len(u) > 2000 {
			return &ValidationError{Field: "url", Reason: "at most 2000 characters"}
		}
		if err := s.guard.CheckURL(ctx, u); err != nil {
			if errors.Is(err, ErrRefusedURL) {
				return &ValidationError{Field: "url", Reason: err.Error()}
			}
			return fmt.Errorf("check url: %w", err)
		}
		e.URL = u
	}
	if in.Description != nil {
		if len(*in.Description) > 500 {
			return &ValidationError{Field: "description", Reason: "at most 500 characters"}
		}
		e.Description = *in.Description
	}
	if in.EventTypes != nil {
		known := TenantEventTypes
		if tenant == "" {
			known = FleetEventTypes
		}
		if len(*in.EventTypes) == 0 {
			return &ValidationError{Field: "event_types", Reason: "at least one event type"}
		}
		var types []string
		for i, t := range *in.EventTypes {
			if !slices.Contains(known, t) {
				return &ValidationError{Field: fmt.Sprintf("event_types/%d", i),
					Reason: fmt.Sprintf("%q is not an event type of this endpoint; one of %s", t, strings.Join(known, ", "))}
			}
			if !slices.Contains(types, t) {
				types = append(types, t)
			}
		}
		e.EventTypes = types
	}
	if in.SegmentIDs != nil {
		if tenant == "" && len(*in.SegmentIDs) > 0 {
			return &ValidationError{Field: "segment_ids", Reason: "fleet endpoints receive no segment events"}
		}
		if len(*in.SegmentIDs) > 100 {
			return &ValidationError{Field: "segment_ids", Reason: "at most 100 segments"}
		}
		e.SegmentIDs = dedupe(*in.SegmentIDs)
	}
	if in.Traits != nil {
		if tenant == "" && len(*in.Traits) > 0 {
			return &ValidationError{Field: "traits", Reason: "fleet events carry no traits"}
		}
		if len(*in.Traits) > 100 {
			return &ValidationError{Field: "traits", Reason: "at most 100 traits"}
		}
		for i, t := range *in.Traits {
			if t == "" || len(t) > 200 {
				return &ValidationError{Field: fmt.Sprintf("traits/%d", i), Reason: "1 to 200 characters"}
			}
		}
		e.Traits = dedupe(*in.Traits)
	}
	if in.Enabled != nil {
		if *in.Enabled && !e.Enabled {
			// Enabled again: a new start, whatever made it stop.
			e.DisabledReason, e.FailingSince = "", nil
		}
		e.Enabled = *in.Enabled
	}
	return nil
}

func dedupe(list []string) []string {
	var out []string
	for _, v := range list {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// Create makes an endpoint of tenant ("" for the fleet) and returns it with
// its secret, which is never shown again. URL and EventTypes are required.
// It returns *ValidationError (a URL the Guard refuses names "url") or
// ErrLimit. Create and every change below write rec, the request's audit
// event, in the change's transaction.
func (s *Service) Create(ctx context.Context, rec audit.Event, tenant string, in EndpointInput) (Endpoint, string, error) {
	return s.CreateWithin(ctx, rec, tenant, in, MaxEndpoints)
}

// CreateWithin is Create for a tenant that may have at most limit
// endpoints (a plan's; never more than MaxEndpoints): at limit it returns
// ErrLimit, and concurrent creates never pass it.
func (s *Service) CreateWithin(ctx context.Context, rec audit.Event, tenant string, in EndpointInput, limit int) (Endpoint, string, error) {
	if in.URL == nil {
		return Endpoint{}, "", &ValidationError{Field: "url", Reason: "required"}
	}
	if in.EventTypes == nil {
		return Endpoint{}, "", &ValidationError{Field: "event_types", Reason: "required"}
	}
	now := s.now()
	e := Endpoint{ID: ids.New("wh_"), TenantID: tenant, Enabled: true, CreatedAt: now, UpdatedAt: now, Version: 1}
	secret := NewSecret()
	e.Secret = s.seal(e.ID, secret)
	if err := s.apply(ctx, tenant, &e, in); err != nil {
		return Endpoint{}, "", err
	}
	e, err := s.store.WebhookEndpointInsert(ctx, e, min(limit, MaxEndpoints), rec.On(e.ID))
	if err != nil {
		return Endpoint{}, "", err
	}
	s.forget(tenant)
	return e, secret, nil
}

// Get returns the tenant's endpoint (ErrNotFound).
func (s *Service) Get(ctx context.Context, tenant, id string) (Endpoint, error) {
	return s.store.WebhookEndpointGet(ctx, tenant, id)
}

// List pages the tenant's endpoints in creation order.
func (s *Service) List(ctx context.Context, tenant string, afterSeq int64, limit int) ([]Endpoint, error) {
	return s.store.WebhookEndpointList(ctx, tenant, afterSeq, limit)
}

// Update changes the endpoint's set fields if its Version is version (any
// version when version is nil). Enabling a disabled endpoint ends its
// failure streak. It returns *ValidationError, ErrNotFound or
// ErrVersionMismatch.
func (s *Service) Update(ctx context.Context, rec audit.Event, tenant, id string, version *int64, in EndpointInput) (Endpoint, error) {
	for try := 0; ; try++ {
		e, err := s.store.WebhookEndpointGet(ctx, tenant, id)
		if err != nil {
			return Endpoint{}, err
		}
		if version != nil && *version != e.Version {
			return Endpoint{}, ErrVersionMismatch
		}
		if err := s.apply(ctx, tenant, &e, in); err != nil {
			return Endpoint{}, err
		}
		e.UpdatedAt = s.now()
		e, err = s.store.WebhookEndpointUpdate(ctx, e, rec.On(id))
		// Without If-Match a concurrent change is no conflict: apply the
		// patch to what is stored now.
		if errors.Is(err, ErrVersionMismatch) && version == nil && try < 3 {
			continue
		}
		if err == nil {
			s.forget(tenant)
			if in.Enabled != nil && *in.Enabled {
				s.Notify() // paused deliveries may go again
			}
		}
		return e, err
	}
}

// Delete deletes the endpoint if its Version is version (any when nil)
// and cancels its pending deliveries (ErrNotFound, ErrVersionMismatch).
func (s *Service) Delete(ctx context.Context, rec audit.Event, tenant, id string, version *int64) error {
	var v int64
	if version != nil {
		v = *version
	}
	if err := s.store.WebhookEndpointDelete(ctx, tenant, id, v, rec.On(id)); err != nil {
		return err
	}
	s.forget(tenant)
	return nil
}

// RotateSecret gives the endpoint a new secret and returns it; the old one
// keeps signing beside it for grace (DefaultGrace when 0, at most MaxGrace),
// so receivers can switch without losing a delivery. A rotation during
// another's grace ends that grace: only the last secret is kept.
func (s *Service) RotateSecret(ctx context.Context, rec audit.Event, tenant, id string, grace time.Duration) (Endpoint, string, error) {
	if grace <= 0 {
		grace = DefaultGrace
	}
	if grace > MaxGrace {
		return Endpoint{}, "", &ValidationError{Field: "grace_seconds", Reason: fmt.Sprintf("at most %d", int(MaxGrace.Seconds()))}
	}
	e, err := s.store.WebhookEndpointGet(ctx, tenant, id)
	if err != nil {
		return Endpoint{}, "", err
	}
	now := s.now()
	expires := now.Add(grace)
	secret := NewSecret()
	e.PreviousSecret, e.PreviousSecretExpiresAt, e.Secret, e.UpdatedAt = e.Secret, &expires, s.seal(e.ID, secret), now
	e, err = s.store.WebhookEndpointUpdate(ctx, e, rec.On(id))
	if err != nil {
		return Endpoint{}, "", err
	}
	return e, secret, nil
}

// secretAD is the associated data of an endpoint's sealed secrets: a
// sealed secret opens only on the endpoint it was made for.
func secretAD(id string) []byte { return []byte("webhook endpoint secret\x00" + id) }

func (s *Service) seal(id, secret string) string {
	return s.sealer.Seal([]byte(secret), secretAD(id))
}

// signingSecrets opens the secrets that sign a request to e at now. A
// plaintext "whsec_" value of an older version is taken as it is (until
// SealStored seals it). Errors come from the Sealer opening the current
// secret: sealed under a key this server does not have, or altered. A
// previous secret that does not open is left out, so that rotating the
// secret is how an operator who lost the key gets deliveries going again.
func (s *Service) signingSecrets(e Endpoint, now time.Time) ([]string, error) {
	stored := e.Secrets(now)
	out := make([]string, 0, len(stored))
	for i, v := range stored {
		if strings.HasPrefix(v, SecretPrefix) {
			out = append(out, v)
			continue
		}
		plain, err := s.sealer.Open(v, secretAD(e.ID))
		switch {
		case err != nil && i == 0:
			return nil, fmt.Errorf("open the secret of webhook endpoint %s: %w", e.ID, err)
		case err != nil:
			s.log.Warn("the previous secret of a webhook endpoint does not open; signing with the current one only", "endpoint_id", e.ID, "err", err)
		default:
			out = append(out, string(plain))
		}
	}
	return out, nil
}

// SealStored seals the secrets an older version stored as plaintext, of
// every endpoint, and returns how many endpoints it sealed. The server
// calls it at start; it is safe to run on several replicas at once (a
// secret changed meanwhile, by a rotation or another replica, is left to
// that change).
func (s *Service) SealStored(ctx context.Context) (int, error) {
	list, err := s.store.WebhookEndpointsUnsealed(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range list {
		secret, previous := e.Secret, e.PreviousSecret
		if strings.HasPrefix(secret, SecretPrefix) {
			secret = s.seal(e.ID, secret)
		}
		if strings.HasPrefix(previous, SecretPrefix) {
			previous = s.seal(e.ID, previous)
		}
		ok, err := s.store.WebhookEndpointReseal(ctx, e.ID, e.Secret, e.PreviousSecret, secret, previous)
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// forget drops what Subscribed knows of tenant, so that a change made
// here counts at once on this replica (others see it within
// subscribedTTL).
func (s *Service) forget(tenant string) {
	s.mu.Lock()
	delete(s.subscribed, tenant)
	s.mu.Unlock()
}

// Subscribed reports whether an enabled endpoint of tenant ("" for the
// fleet) receives events of the type, as read at most a second ago, so
// that a hot path can skip building events nobody wants. Enqueue decides
// for itself from what is stored.
func (s *Service) Subscribed(ctx context.Context, tenant, eventType string) (bool, error) {
	now := time.Now()
	s.mu.Lock()
	sub, ok := s.subscribed[tenant]
	s.mu.Unlock()
	if !ok || now.Sub(sub.read) > subscribedTTL {
		eps, err := s.store.WebhookEndpointsEnabled(ctx, tenant)
		if err != nil {
			return false, err
		}
		sub = subscription{types: map[string]bool{}, read: now}
		for _, e := range eps {
			for _, t := range e.EventTypes {
				sub.types[t] = true
			}
		}
		s.mu.Lock()
		s.subscribed[tenant] = sub
		s.mu.Unlock()
	}
	return sub.types[eventType], nil
}

// Enqueue records, for each event, one pending delivery per enabled
// endpoint of its tenant (fleet endpoints for TenantID "") subscribed to
// its type and, for a segment event, to its segment. Once it returns nil,
// the deliveries are durable. It is idempotent: an event ID an endpoint
// has is skipped. It wakes this replica's dispatcher.
func (s *Service) Enqueue(ctx context.Context, events []Event) error {
	byTenant := map[string][]Endpoint{}
	var ds []Delivery
	now := s.now()
	for i, ev := range events {
		if ev.ID == "" || ev.Type == "" {
			return fmt.Errorf("enqueue: event %d has no ID or type", i)
		}
		eps, ok := byTenant[ev.TenantID]
		if !ok {
			var err error
			if eps, err = s.store.WebhookEndpointsEnabled(ctx, ev.TenantID); err != nil {
				return fmt.Errorf("enqueue: %w", err)
			}
			byTenant[ev.TenantID] = eps
		}
		for _, e := range eps {
			if !e.wants(ev) {
				continue
			}
			d, err := s.delivery(e, ev, now)
			if err != nil {
				return fmt.Errorf("enqueue %s: %w", ev.ID, err)
			}
			ds = append(ds, d)
		}
	}
	if len(ds) == 0 {
		return nil
	}
	if _, err := s.store.WebhookDeliveryInsert(ctx, ds, audit.Event{}); err != nil {
		return fmt.Errorf("enqueue: %w", err)
	}
	s.Notify()
	return nil
}

// wants reports whether the endpoint receives the event.
func (e Endpoint) wants(ev Event) bool {
	if !e.Enabled || !slices.Contains(e.EventTypes, ev.Type) {
		return false
	}
	if ev.Type == SegmentEntered || ev.Type == SegmentExited {
		return len(e.SegmentIDs) == 0 || slices.Contains(e.SegmentIDs, ev.SegmentID)
	}
	return true
}

// delivery makes the pending delivery of ev to e, with its payload.
func (s *Service) delivery(e Endpoint, ev Event, now time.Time) (Delivery, error) {
	payload, err := Payload(e, ev)
	if err != nil {
		return Delivery{}, err
	}
	return Delivery{
		ID: ids.New("dlv_"), EndpointID: e.ID, EventID: ev.ID, EventType: ev.Type, TenantID: ev.TenantID,
		OrderKey: orderKey(ev), Payload: payload, Status: StatusPending, NextAttemptAt: now, CreatedAt: now,
	}, nil
}

// orderKey is what orders an event's deliveries to one endpoint: its
// profile; for an event of no profile its tenant; for a fleet event the
// tenant its data names (data.tenant_id), so that one tenant's lifecycle
// events arrive in order while others' pass them.
func orderKey(ev Event) string {
	switch {
	case ev.ProfileID != "":
		return "profile:" + ev.ProfileID
	case ev.TenantID != "":
		return "tenant:" + ev.TenantID
	}
	var data struct {
		TenantID string `json:"tenant_id"`
	}
	if json.Unmarshal(ev.Data, &data) == nil && data.TenantID != "" {
		return "tenant:" + data.TenantID
	}
	return "event:" + ev.ID
}

// Payload is the body delivered to e for ev, the Standard Webhooks
// convention: {"type", "timestamp" (RFC 3339), "data"}, where data is
// ev.Data (an object) with, if the endpoint asks for traits, "traits"
// holding those of them ev.Traits has.
func Payload(e Endpoint, ev Event) ([]byte, error) {
	data := map[string]json.RawMessage{}
	if len(ev.Data) > 0 {
		if err := json.Unmarshal(ev.Data, &data); err != nil {
			return nil, fmt.Errorf("event data is not a JSON object: %w", err)
		}
	}
	if len(e.Traits) > 0 {
		traits := map[string]any{}
		for _, name := range e.Traits {
			if v, ok := ev.Traits[name]; ok {
				traits[name] = v
			}
		}
		b, err := json.Marshal(traits)
		if err != nil {
			return nil, fmt.Errorf("traits: %w", err)
		}
		data["traits"] = b
	}
	at := ev.At
	if at.IsZero() {
		at = time.Now()
	}
	return json.Marshal(struct {
		Type      string                     `json:"type"`
		Timestamp string                     `json:"timestamp"`
		Data      map[string]json.RawMessage `json:"data"`
	}{ev.Type, at.UTC().Format(time.RFC3339Nano), data})
}

// Deliveries pages the endpoint's deliveries, newest first; status ""
// lists all (ErrNotFound for another tenant's endpoint).
func (s *Service) Deliveries(ctx context.Context, tenant, endpointID string, status Status, beforeSeq int64, limit int) ([]Delivery, error) {
	if _, err := s.store.WebhookEndpointGet(ctx, tenant, endpointID); err != nil {
		return nil, err
	}
	return s.store.WebhookDeliveryList(ctx, endpointID, status, beforeSeq, limit)
}

// Redeliver sends a delivery again, whatever its status: the same payload
// under the same webhook-id, with a fresh retry schedule (ErrNotFound).
func (s *Service) Redeliver(ctx context.Context, rec audit.Event, tenant, endpointID, id string) (Delivery, error) {
	if _, err := s.store.WebhookEndpointGet(ctx, tenant, endpointID); err != nil {
		return Delivery{}, err
	}
	d, err := s.store.WebhookDeliveryRetry(ctx, endpointID, id, s.now(), rec.On(id))
	if err != nil {
		return Delivery{}, err
	}
	s.Notify()
	return d, nil
}

// Recover sends again every delivery to the endpoint that failed for good
// and was created at or after since, and returns how many.
func (s *Service) Recover(ctx context.Context, rec audit.Event, tenant, endpointID string, since time.Time) (int, error) {
	if _, err := s.store.WebhookEndpointGet(ctx, tenant, endpointID); err != nil {
		return 0, err
	}
	n, err := s.store.WebhookDeliveryRecover(ctx, endpointID, since, s.now(), rec.On(endpointID))
	if err != nil {
		return 0, err
	}
	if n > 0 {
		s.Notify()
	}
	return n, nil
}

// Test sends a webhook.test event to the endpoint through the normal path
// and returns its delivery, pending; the delivery log shows its outcome.
// A disabled endpoint returns ErrDisabled.
func (s *Service) Test(ctx context.Context, rec audit.Event, tenant, endpointID string) (Delivery, error) {
	e, err := s.store.WebhookEndpointGet(ctx, tenant, endpointID)
	if err != nil {
		return Delivery{}, err
	}
	if !e.Enabled {
		return Delivery{}, ErrDisabled
	}
	now := s.now()
	data, _ := json.Marshal(map[string]string{"endpoint_id": e.ID}) // strings always marshal
	ev := Event{ID: ids.New("msg_"), Type: TestEvent, TenantID: tenant, At: now, Data: data}
	d, err := s.delivery(e, ev, now)
	if err != nil {
		return Delivery{}, err
	}
	d.OrderKey = "event:" + ev.ID // a test waits for nothing and holds nothing up
	stored, err := s.store.WebhookDeliveryInsert(ctx, []Delivery{d}, rec.On(endpointID))
	if err != nil {
		return Delivery{}, err
	}
	if len(stored) != 1 {
		return Delivery{}, fmt.Errorf("test delivery %s not stored", d.ID)
	}
	s.Notify()
	return stored[0], nil
}
