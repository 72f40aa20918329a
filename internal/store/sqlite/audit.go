package sqlite

import (
	"database/sql"

	"context"
	"fmt"
	"time"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/ids"
	"github.com/cairn-cdp/cairn/internal/store/sqlite/db"
)

var _ audit.Store = (*DB)(nil)

// AuditAppend implements audit.Store: e in a statement of its own, for an
// accepted change that no control-plane transaction carries.
func (d *DB) AuditAppend(ctx context.Context, e audit.Event) error {
	return auditAppend(ctx, d.queries, e)
}

// AuditList implements audit.Store. A limit <= 0 means no limit.
func (d *DB) AuditList(ctx context.Context, p audit.ListParams) ([]audit.Event, error) {
	rows, err := d.queries.AuditList(ctx, db.AuditListParams{
		AfterSeq: p.AfterSeq,
		TenantID: p.TenantID,
		Actor:    p.Actor,
		Action:   p.Action,
		FromTime: timeBound(p.From),
		ToTime:   timeBound(p.To),
		MaxRows:  maxRows(p.Limit),
	})
	if err != nil {
		return nil, fmt.Errorf("list audit events: %w", translateGrants(err))
	}
	out := make([]audit.Event, 0, len(rows))
	for _, r := range rows {
		e, err := auditEventFromRow(r)
		if err != nil {
			return nil, fmt.Errorf("list audit events: %w", err)
		}
		out = append(out, e)
	}
	return out, nil
}

// auditAppend writes e through q, which is a transaction's when the event
// belongs to a change (every Tx's AuditAppend calls it). A zero event is
// skipped; an empty ID is set to a new ids.New("aud_") and a zero Time to
// now; Seq is always assigned. An empty TenantID is stored as no tenant.
func auditAppend(ctx context.Context, q *db.Queries, e audit.Event) error {
	if e.Zero() {
		return nil
	}
	if e.ID == "" {
		e.ID = ids.New("aud_")
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	detail, err := detailColumn(e.Detail)
	if err != nil {
		return fmt.Errorf("append audit event: %w", err)
	}
	err = q.AuditInsert(ctx, db.AuditInsertParams{
		ID:         e.ID,
		Time:       formatTime(e.Time),
		TenantID:   e.TenantID,
		Actor:      e.Actor,
		Action:     e.Action,
		TargetType: e.TargetType,
		TargetID:   e.TargetID,
		RequestID:  e.RequestID,
		Outcome:    e.Outcome,
		Detail:     detail,
	})
	if err != nil {
		return fmt.Errorf("append audit event: %w", translateGrants(err))
	}
	return nil
}

// auditEventFromRow converts a stored row to an audit.Event; a NULL
// tenant reads back as "".
func auditEventFromRow(r db.AuditEvent) (audit.Event, error) {
	detail, err := detailFromColumn(r.Detail)
	if err != nil {
		return audit.Event{}, fmt.Errorf("audit event %s detail: %w", r.ID, err)
	}
	t, err := parseTime(r.Time)
	if err != nil {
		return audit.Event{}, fmt.Errorf("audit event %s: %w", r.ID, err)
	}
	return audit.Event{
		ID:         r.ID,
		Time:       t,
		TenantID:   r.TenantID.String,
		Actor:      r.Actor,
		Action:     r.Action,
		TargetType: r.TargetType,
		TargetID:   r.TargetID,
		RequestID:  r.RequestID,
		Outcome:    r.Outcome,
		Detail:     detail,
		Seq:        r.Seq,
	}, nil
}

// AuditAppend implements tenants.Tx (audit.Appender).
func (t *tx) AuditAppend(ctx context.Context, e audit.Event) error {
	return auditAppend(ctx, t.queries, e)
}

// audited runs fn, one change, on a transaction that also writes rec, the
// change's audit event, and returns fn's result; a zero rec runs fn on the
// database alone (its statement is a transaction of its own).
func audited[T any](ctx context.Context, d *DB, rec audit.Event, fn func(q *db.Queries) (T, error)) (T, error) {
	if rec.Zero() {
		return fn(d.queries)
	}
	var out T
	err := d.withTx(ctx, func(tx *sql.Tx) error {
		q := d.queries.WithTx(tx)
		var err error
		if out, err = fn(q); err != nil {
			return err
		}
		return auditAppend(ctx, q, rec)
	})
	return out, err
}
