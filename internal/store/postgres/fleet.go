package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/cairn-cdp/cairn/internal/fleet"
	"github.com/cairn-cdp/cairn/internal/store/postgres/db"
)

var _ fleet.Store = (*DB)(nil)

// FleetEventInsert implements tenants.Tx.
func (t *tx) FleetEventInsert(ctx context.Context, ev fleet.Event) error {
	return fleetEventInsert(ctx, t.queries, []fleet.Event{ev})
}

// fleetEventInsert adds events to the outbox through q, ignoring IDs it
// holds.
func fleetEventInsert(ctx context.Context, q *db.Queries, events []fleet.Event) error {
	for _, ev := range events {
		data, err := json.Marshal(ev.Data)
		if err != nil {
			return fmt.Errorf("insert fleet event %s: %w", ev.ID, err)
		}
		if err := q.FleetEventInsert(ctx, db.FleetEventInsertParams{ID: ev.ID, Type: ev.Type, Data: data, At: storedTime(ev.At)}); err != nil {
			return fmt.Errorf("insert fleet event %s: %w", ev.ID, err)
		}
	}
	return nil
}

// FleetEventList implements fleet.Store.
func (d *DB) FleetEventList(ctx context.Context, limit int) ([]fleet.Event, error) {
	rows, err := d.queries.FleetEventList(ctx, int32(min(limit, 1<<30)))
	if err != nil {
		return nil, fmt.Errorf("list fleet events: %w", err)
	}
	out := make([]fleet.Event, len(rows))
	for i, r := range rows {
		out[i] = fleet.Event{ID: r.ID, Type: r.Type, At: r.At.UTC(), Seq: r.Seq}
		if err := json.Unmarshal(r.Data, &out[i].Data); err != nil {
			return nil, fmt.Errorf("fleet event %s data: %w", r.ID, err)
		}
	}
	return out, nil
}

// FleetEventDelete implements fleet.Store.
func (d *DB) FleetEventDelete(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	if err := d.queries.FleetEventDelete(ctx, ids); err != nil {
		return fmt.Errorf("delete fleet events: %w", err)
	}
	return nil
}
