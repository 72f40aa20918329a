package webhooks

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/cairn-cdp/cairn/internal/fleet"
)

// FleetPublisher makes fleet events (package fleet) deliveries to the
// ISV's fleet endpoints: a fleet.Relay publishes the outbox to it. Each
// event's data names its tenant (data.tenant_id), so one tenant's events
// arrive in order (see Enqueue); a pool stack's failure names none and
// waits for nothing.
type FleetPublisher struct{ Service *Service }

var _ fleet.Publisher = FleetPublisher{}

// Publish implements fleet.Publisher with Enqueue, which is idempotent by
// event ID and durable when it returns.
func (p FleetPublisher) Publish(ctx context.Context, events []fleet.Event) error {
	out := make([]Event, len(events))
	for i, ev := range events {
		data, err := json.Marshal(ev.Data)
		if err != nil {
			return fmt.Errorf("fleet event %s: %w", ev.ID, err)
		}
		out[i] = Event{ID: ev.ID, Type: ev.Type, At: ev.At, Data: data}
	}
	return p.Service.Enqueue(ctx, out)
}
