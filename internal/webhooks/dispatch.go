package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// DefaultLease is how long a dispatcher's claim on a delivery lasts
// unless renewed. The dispatcher renews the leases of its attempts in
// flight every third of it (an attempt takes up to the Sender's timeout),
// so a live dispatcher keeps its deliveries and a crashed one's are taken
// over within a lease of its last renewal.
const DefaultLease = 15 * time.Second

// Notify wakes the dispatcher of this replica to look for due deliveries
// at once. It never blocks.
func (s *Service) Notify() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// Run dispatches deliveries until ctx ends, then waits for the attempts in
// flight and returns nil. Run one per replica: replicas share the work
// through the store's leases, never through memory. Each round claims the
// due deliveries it has room for, oldest first, and sends each in its own
// goroutine; a round starts when Notify is called, when an attempt ends,
// and otherwise every PollInterval. Store errors are logged and retried on
// the next round.
func (s *Service) Run(ctx context.Context) error {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		inFlight int
	)
	done := make(chan struct{}, 1)
	defer wg.Wait()
	ticker := time.NewTicker(s.poll)
	defer ticker.Stop()
	for {
		mu.Lock()
		room := s.maxInFlight - inFlight
		mu.Unlock()
		full := false
		if room > 0 {
			ds, err := s.claim(ctx, room)
			if err != nil && ctx.Err() == nil {
				s.log.ErrorContext(ctx, "claim webhook deliveries", "err", err)
			}
			full = len(ds) == room
			mu.Lock()
			inFlight += len(ds)
			mu.Unlock()
			for _, d := range ds {
				wg.Go(func() {
					// An attempt under way finishes even when Run is
					// stopped, so its result is recorded: the Sender's
					// timeout bounds it.
					s.attempt(context.WithoutCancel(ctx), d)
					mu.Lock()
					inFlight--
					mu.Unlock()
					select {
					case done <- struct{}{}:
					default:
					}
				})
			}
		}
		if full {
			continue // there may be more due at once
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.notify:
		case <-done:
			// Let the attempts finishing about now free their slots too,
			// so that one claim fills them all: a claim reads every
			// pending head, and one claim a finished attempt would make
			// the claims, not the sends, the limit.
			t := time.NewTimer(claimCoalesce)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
		case <-ticker.C:
		}
	}
}

// claimCoalesce is how long the dispatcher waits, after an attempt ends,
// for others to end before it claims again.
const claimCoalesce = 2 * time.Millisecond

func (s *Service) claim(ctx context.Context, limit int) ([]Delivery, error) {
	now := s.now()
	return s.store.WebhookDeliveryClaim(ctx, ClaimParams{
		Now: now, LeaseUntil: now.Add(s.lease), PerEndpoint: s.perEndpoint, Limit: limit,
	})
}

// attempt sends one claimed delivery and records what happened.
func (s *Service) attempt(ctx context.Context, d Delivery) {
	log := s.log.With("delivery_id", d.ID, "endpoint_id", d.EndpointID, "event_id", d.EventID)
	e, err := s.store.WebhookEndpointGet(ctx, d.TenantID, d.EndpointID)
	if err != nil {
		// Deleted since the claim: the delete has cancelled the delivery,
		// and the lease lapses harmlessly.
		if !errors.Is(err, ErrNotFound) {
			log.ErrorContext(ctx, "read webhook endpoint", "err", err)
		}
		return
	}
	now := s.now()
	var res Result
	secrets, err := s.signingSecrets(e, now)
	if err != nil {
		// A key-encryption key missing from this server: the attempt
		// fails and is retried, so deliveries resume once it is given.
		log.ErrorContext(ctx, "cannot sign webhook delivery", "err", err)
		res = Result{Err: err}
	}
	lease := s.underLease(ctx, log, d.ID, *d.ClaimedUntil, func(ctx context.Context) {
		if err == nil {
			res = s.sender.Send(ctx, Request{URL: e.URL, ID: d.EventID, Timestamp: now, Body: d.Payload, Secrets: secrets})
		}
	})
	at := s.now()
	r := AttemptResult{ID: d.ID, Lease: lease, At: at, NextAttemptAt: at, ResponseStatus: res.Status, ResponseBody: res.Body}
	if res.Err != nil {
		r.LastError = res.Err.Error()
	} else if !res.Delivered() {
		r.LastError = fmt.Sprintf("HTTP %d %s", res.Status, http.StatusText(res.Status))
	}
	switch {
	case res.Delivered():
		r.Status = StatusDelivered
	case res.Gone():
		r.Status = StatusFailed
	default:
		next, retry := NextAttempt(d.Attempts+1, at, res.RetryAfter, s.rand)
		r.Status, r.NextAttemptAt = StatusFailed, at
		if retry {
			r.Status, r.NextAttemptAt = StatusPending, next
		}
	}
	if err := s.store.WebhookDeliveryRecord(ctx, r); err != nil {
		if errors.Is(err, ErrLeaseLost) {
			log.InfoContext(ctx, "webhook attempt outlived its lease; its result is dropped")
		} else {
			log.ErrorContext(ctx, "record webhook attempt", "err", err)
		}
		return
	}
	if s.onAttempt != nil {
		s.onAttempt(d, res)
	}
	switch {
	case res.Delivered():
		if e.FailingSince != nil {
			if err := s.store.WebhookEndpointAnswering(ctx, e.ID); err != nil {
				log.ErrorContext(ctx, "clear webhook endpoint failure streak", "err", err)
			}
		}
	case res.Gone():
		s.disable(ctx, e, "The endpoint answered 410 Gone.", at)
	default:
		e, err := s.store.WebhookEndpointFailing(ctx, e.ID, at)
		if err != nil {
			log.ErrorContext(ctx, "record webhook endpoint failure", "err", err)
			return
		}
		if e.FailingSince != nil && at.Sub(*e.FailingSince) >= s.disableAfter {
			s.disable(ctx, e, fmt.Sprintf("Every attempt failed since %s.", e.FailingSince.Format(time.RFC3339)), at)
		}
	}
}

// underLease runs send while renewing the delivery's lease, which runs
// to lease, every third of the Service's lease, and returns the lease as it stands after
// send: the one the attempt's result is recorded under. A lease lost (a
// refused renewal, or renewals failing until it lapsed) cancels send: the
// delivery is another dispatcher's now, and this attempt's result would
// be dropped anyway.
func (s *Service) underLease(ctx context.Context, log *slog.Logger, id string, lease time.Time, send func(context.Context)) time.Time {
	work, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := make(chan struct{})
	renewed := make(chan time.Time, 1)
	go func() {
		defer close(renewed)
		tick := time.NewTicker(s.lease / 3)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				renewed <- lease
				return
			case <-tick.C:
			}
			now := s.now()
			until := now.Add(s.lease)
			err := s.store.WebhookDeliveryRenew(work, id, lease, now, until)
			switch {
			case err == nil:
				lease = until
			case errors.Is(err, ErrLeaseLost):
				cancel(err)
				<-stop
				renewed <- lease
				return
			case !now.Before(lease):
				cancel(fmt.Errorf("%w: lapsed while renewals failed: %w", ErrLeaseLost, err))
				<-stop
				renewed <- lease
				return
			default:
				log.WarnContext(ctx, "renew webhook delivery lease; retrying until it lapses", "err", err)
			}
		}
	}()
	send(work)
	close(stop)
	return <-renewed
}

// disable disables the endpoint, cancelling its pending deliveries, and
// tells the fleet's endpoints with a webhook.disabled event.
func (s *Service) disable(ctx context.Context, e Endpoint, reason string, at time.Time) {
	log := s.log.With("endpoint_id", e.ID, "tenant_id", e.TenantID)
	disabled, err := s.store.WebhookEndpointDisable(ctx, e.ID, reason, at)
	if err != nil {
		log.ErrorContext(ctx, "disable webhook endpoint", "err", err)
		return
	}
	if !disabled {
		return // another attempt got there first
	}
	s.forget(e.TenantID)
	log.WarnContext(ctx, "webhook endpoint disabled", "reason", reason)
	data, _ := json.Marshal(map[string]string{ // strings always marshal
		"endpoint_id": e.ID, "tenant_id": e.TenantID, "url": e.URL, "reason": reason,
	})
	ev := Event{
		// Stable: one disabling, one event, however often it is enqueued.
		ID:   "msg_disabled_" + e.ID + "_" + at.UTC().Format("20060102T150405.000000Z"),
		Type: EndpointDisabled, At: at, Data: data,
	}
	if err := s.Enqueue(ctx, []Event{ev}); err != nil {
		log.ErrorContext(ctx, "enqueue webhook.disabled", "err", err)
	}
}
