package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/store/sqlite/db"
	"github.com/cairn-cdp/cairn/internal/webhooks"
)

var _ webhooks.Store = (*DB)(nil)

// Statements and transactions run one at a time on SQLite (see the package
// doc), which is what makes the counting insert and the claim below
// exclusive without any lock of their own.

// WebhookEndpointInsert implements webhooks.Store.
func (d *DB) WebhookEndpointInsert(ctx context.Context, e webhooks.Endpoint, max int, rec audit.Event) (webhooks.Endpoint, error) {
	var row db.WebhookEndpoint
	err := d.withTx(ctx, func(tx *sql.Tx) error {
		q := d.queries.WithTx(tx)
		n, err := q.WebhookEndpointCount(ctx, e.TenantID)
		if err != nil {
			return err
		}
		if n >= int64(max) {
			return webhooks.ErrLimit
		}
		createdAt, updatedAt := insertTimes(e.CreatedAt, e.UpdatedAt)
		row, err = q.WebhookEndpointInsert(ctx, db.WebhookEndpointInsertParams{
			ID: e.ID, TenantID: e.TenantID, Url: e.URL, Description: e.Description,
			EventTypes: listColumn(e.EventTypes), SegmentIds: listColumn(e.SegmentIDs), Traits: listColumn(e.Traits),
			Enabled: e.Enabled, DisabledReason: e.DisabledReason, Secret: e.Secret, PreviousSecret: e.PreviousSecret,
			PreviousSecretExpiresAt: optionalTimeColumn(e.PreviousSecretExpiresAt), FailingSince: optionalTimeColumn(e.FailingSince),
			CreatedAt: createdAt, UpdatedAt: updatedAt,
		})
		if err != nil {
			return err
		}
		return auditAppend(ctx, q, rec)
	})
	if err != nil {
		return webhooks.Endpoint{}, fmt.Errorf("insert webhook endpoint: %w", translateWebhooks(err))
	}
	return endpointResult("insert webhook endpoint", row)
}

// WebhookEndpointGet implements webhooks.Store.
func (d *DB) WebhookEndpointGet(ctx context.Context, tenantID, id string) (webhooks.Endpoint, error) {
	row, err := d.queries.WebhookEndpointGet(ctx, db.WebhookEndpointGetParams{TenantID: tenantID, ID: id})
	if err != nil {
		return webhooks.Endpoint{}, fmt.Errorf("get webhook endpoint: %w", translateWebhooks(err))
	}
	return endpointResult("get webhook endpoint", row)
}

// WebhookEndpointList implements webhooks.Store.
func (d *DB) WebhookEndpointList(ctx context.Context, tenantID string, afterSeq int64, limit int) ([]webhooks.Endpoint, error) {
	rows, err := d.queries.WebhookEndpointList(ctx, db.WebhookEndpointListParams{TenantID: tenantID, AfterSeq: afterSeq, MaxRows: maxRows(limit)})
	if err != nil {
		return nil, fmt.Errorf("list webhook endpoints: %w", translateWebhooks(err))
	}
	return endpointsFromRows("list webhook endpoints", rows)
}

// WebhookEndpointsEnabled implements webhooks.Store.
func (d *DB) WebhookEndpointsEnabled(ctx context.Context, tenantID string) ([]webhooks.Endpoint, error) {
	rows, err := d.queries.WebhookEndpointsEnabled(ctx, tenantID)
	if err != nil {
		return nil, fmt.Errorf("list enabled webhook endpoints: %w", translateWebhooks(err))
	}
	return endpointsFromRows("list enabled webhook endpoints", rows)
}

// WebhookEndpointUpdate implements webhooks.Store.
func (d *DB) WebhookEndpointUpdate(ctx context.Context, e webhooks.Endpoint, rec audit.Event) (webhooks.Endpoint, error) {
	_, updatedAt := insertTimes(e.UpdatedAt, e.UpdatedAt)
	row, err := audited(ctx, d, rec, func(q *db.Queries) (db.WebhookEndpoint, error) {
		return q.WebhookEndpointUpdate(ctx, db.WebhookEndpointUpdateParams{
			Url: e.URL, Description: e.Description,
			EventTypes: listColumn(e.EventTypes), SegmentIds: listColumn(e.SegmentIDs), Traits: listColumn(e.Traits),
			Enabled: e.Enabled, DisabledReason: e.DisabledReason, Secret: e.Secret, PreviousSecret: e.PreviousSecret,
			PreviousSecretExpiresAt: optionalTimeColumn(e.PreviousSecretExpiresAt), FailingSince: optionalTimeColumn(e.FailingSince),
			UpdatedAt: updatedAt, TenantID: e.TenantID, ID: e.ID, PrevVersion: e.Version,
		})
	})
	if errors.Is(err, sql.ErrNoRows) {
		if _, gerr := d.queries.WebhookEndpointGet(ctx, db.WebhookEndpointGetParams{TenantID: e.TenantID, ID: e.ID}); gerr == nil {
			err = webhooks.ErrVersionMismatch
		}
	}
	if err != nil {
		return webhooks.Endpoint{}, fmt.Errorf("update webhook endpoint: %w", translateWebhooks(err))
	}
	return endpointResult("update webhook endpoint", row)
}

// WebhookEndpointDelete implements webhooks.Store.
func (d *DB) WebhookEndpointDelete(ctx context.Context, tenantID, id string, version int64, rec audit.Event) error {
	err := d.withTx(ctx, func(tx *sql.Tx) error {
		q := d.queries.WithTx(tx)
		row, err := q.WebhookEndpointGet(ctx, db.WebhookEndpointGetParams{TenantID: tenantID, ID: id})
		if err != nil {
			return err
		}
		if version != 0 && row.Version != version {
			return webhooks.ErrVersionMismatch
		}
		if _, err := q.WebhookEndpointDelete(ctx, db.WebhookEndpointDeleteParams{TenantID: tenantID, ID: id}); err != nil {
			return err
		}
		_, err = q.WebhookDeliveryCancelPending(ctx, id)
		if err != nil {
			return err
		}
		return auditAppend(ctx, q, rec)
	})
	if err != nil {
		return fmt.Errorf("delete webhook endpoint: %w", translateWebhooks(err))
	}
	return nil
}

// WebhookEndpointFailing implements webhooks.Store.
func (d *DB) WebhookEndpointFailing(ctx context.Context, id string, at time.Time) (webhooks.Endpoint, error) {
	if err := d.queries.WebhookEndpointFailing(ctx, db.WebhookEndpointFailingParams{At: optionalTimeColumn(&at), ID: id}); err != nil {
		return webhooks.Endpoint{}, fmt.Errorf("webhook endpoint failing: %w", translateWebhooks(err))
	}
	row, err := d.queries.WebhookEndpointGetByID(ctx, id)
	if err != nil {
		return webhooks.Endpoint{}, fmt.Errorf("webhook endpoint failing: %w", translateWebhooks(err))
	}
	return endpointResult("webhook endpoint failing", row)
}

// WebhookEndpointAnswering implements webhooks.Store.
func (d *DB) WebhookEndpointAnswering(ctx context.Context, id string) error {
	if err := d.queries.WebhookEndpointAnswering(ctx, id); err != nil {
		return fmt.Errorf("webhook endpoint answering: %w", translateWebhooks(err))
	}
	return nil
}

// WebhookEndpointsUnsealed implements webhooks.Store.
func (d *DB) WebhookEndpointsUnsealed(ctx context.Context) ([]webhooks.Endpoint, error) {
	rows, err := d.queries.WebhookEndpointsUnsealed(ctx)
	if err != nil {
		return nil, fmt.Errorf("list unsealed webhook endpoints: %w", translateWebhooks(err))
	}
	return endpointsFromRows("list unsealed webhook endpoints", rows)
}

// WebhookEndpointReseal implements webhooks.Store.
func (d *DB) WebhookEndpointReseal(ctx context.Context, id, oldSecret, oldPrevious, secret, previous string) (bool, error) {
	n, err := d.queries.WebhookEndpointReseal(ctx, db.WebhookEndpointResealParams{
		ID: id, OldSecret: oldSecret, OldPreviousSecret: oldPrevious, Secret: secret, PreviousSecret: previous,
	})
	if err != nil {
		return false, fmt.Errorf("reseal webhook endpoint: %w", translateWebhooks(err))
	}
	return n == 1, nil
}

// WebhookEndpointDisable implements webhooks.Store.
func (d *DB) WebhookEndpointDisable(ctx context.Context, id, reason string, at time.Time) (bool, error) {
	var disabled bool
	err := d.withTx(ctx, func(tx *sql.Tx) error {
		q := d.queries.WithTx(tx)
		n, err := q.WebhookEndpointDisable(ctx, db.WebhookEndpointDisableParams{Reason: reason, UpdatedAt: formatTime(at), ID: id})
		if err != nil || n == 0 {
			return err
		}
		disabled = true
		_, err = q.WebhookDeliveryCancelPending(ctx, id)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("disable webhook endpoint: %w", translateWebhooks(err))
	}
	return disabled, nil
}

// WebhookDeliveryInsert implements webhooks.Store, in one transaction.
func (d *DB) WebhookDeliveryInsert(ctx context.Context, ds []webhooks.Delivery, rec audit.Event) ([]webhooks.Delivery, error) {
	var rows []db.WebhookDelivery
	err := d.withTx(ctx, func(tx *sql.Tx) error {
		q := d.queries.WithTx(tx)
		for _, dl := range ds {
			createdAt, _ := insertTimes(dl.CreatedAt, time.Time{})
			next := createdAt
			if !dl.NextAttemptAt.IsZero() {
				next = formatTime(dl.NextAttemptAt)
			}
			row, err := q.WebhookDeliveryInsert(ctx, db.WebhookDeliveryInsertParams{
				ID: dl.ID, EndpointID: dl.EndpointID, EventID: dl.EventID, EventType: dl.EventType, TenantID: dl.TenantID,
				OrderKey: dl.OrderKey, Payload: dl.Payload, NextAttemptAt: next, CreatedAt: createdAt,
			})
			if errors.Is(err, sql.ErrNoRows) {
				continue // the endpoint has the event already
			}
			if err != nil {
				return err
			}
			rows = append(rows, row)
		}
		return auditAppend(ctx, q, rec)
	})
	if err != nil {
		return nil, fmt.Errorf("insert webhook deliveries: %w", translateWebhooks(err))
	}
	return deliveriesFromRows("insert webhook deliveries", rows)
}

// WebhookDeliveryGet implements webhooks.Store.
func (d *DB) WebhookDeliveryGet(ctx context.Context, endpointID, id string) (webhooks.Delivery, error) {
	row, err := d.queries.WebhookDeliveryGet(ctx, db.WebhookDeliveryGetParams{EndpointID: endpointID, ID: id})
	if err != nil {
		return webhooks.Delivery{}, fmt.Errorf("get webhook delivery: %w", translateWebhooks(err))
	}
	return deliveryResult("get webhook delivery", row)
}

// WebhookDeliveryList implements webhooks.Store.
func (d *DB) WebhookDeliveryList(ctx context.Context, endpointID string, status webhooks.Status, beforeSeq int64, limit int) ([]webhooks.Delivery, error) {
	if beforeSeq <= 0 {
		beforeSeq = math.MaxInt64
	}
	var (
		rows []db.WebhookDelivery
		err  error
	)
	if status == "" {
		rows, err = d.queries.WebhookDeliveryList(ctx, db.WebhookDeliveryListParams{EndpointID: endpointID, BeforeSeq: beforeSeq, MaxRows: maxRows(limit)})
	} else {
		rows, err = d.queries.WebhookDeliveryListStatus(ctx, db.WebhookDeliveryListStatusParams{
			EndpointID: endpointID, Status: string(status), BeforeSeq: beforeSeq, MaxRows: maxRows(limit)})
	}
	if err != nil {
		return nil, fmt.Errorf("list webhook deliveries: %w", translateWebhooks(err))
	}
	return deliveriesFromRows("list webhook deliveries", rows)
}

// WebhookDeliveryClaim implements webhooks.Store: it selects and leases in
// one transaction, which SQLite runs alone.
func (d *DB) WebhookDeliveryClaim(ctx context.Context, p webhooks.ClaimParams) ([]webhooks.Delivery, error) {
	var rows []db.WebhookDelivery
	err := d.withTx(ctx, func(tx *sql.Tx) error {
		q := d.queries.WithTx(tx)
		ids, err := q.WebhookDeliveryClaimable(ctx, db.WebhookDeliveryClaimableParams{
			PerEndpoint: int64(p.PerEndpoint), MaxRows: maxRows(p.Limit), Now: optionalTimeColumn(&p.Now),
		})
		if err != nil {
			return err
		}
		for _, id := range ids {
			row, err := q.WebhookDeliveryLease(ctx, db.WebhookDeliveryLeaseParams{LeaseUntil: optionalTimeColumn(&p.LeaseUntil), ID: id})
			if err != nil {
				return err
			}
			rows = append(rows, row)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim webhook deliveries: %w", translateWebhooks(err))
	}
	slices.SortFunc(rows, func(a, b db.WebhookDelivery) int { return cmp.Compare(a.Seq, b.Seq) })
	return deliveriesFromRows("claim webhook deliveries", rows)
}

// WebhookDeliveryRecord implements webhooks.Store.
func (d *DB) WebhookDeliveryRecord(ctx context.Context, r webhooks.AttemptResult) error {
	n, err := d.queries.WebhookDeliveryRecord(ctx, db.WebhookDeliveryRecordParams{
		Status: string(r.Status), NextAttemptAt: formatTime(r.NextAttemptAt), LastAttemptAt: optionalTimeColumn(&r.At),
		ResponseStatus: int64(r.ResponseStatus), ResponseBody: bodyColumn(r.ResponseBody), LastError: r.LastError,
		ID: r.ID, Lease: optionalTimeColumn(&r.Lease),
	})
	if err != nil {
		return fmt.Errorf("record webhook attempt: %w", translateWebhooks(err))
	}
	if n == 0 {
		return fmt.Errorf("record webhook attempt: %w", webhooks.ErrLeaseLost)
	}
	return nil
}

// WebhookDeliveryRenew implements webhooks.Store.
func (d *DB) WebhookDeliveryRenew(ctx context.Context, id string, lease, now, until time.Time) error {
	n, err := d.queries.WebhookDeliveryRenew(ctx, db.WebhookDeliveryRenewParams{LeaseUntil: optionalTimeColumn(&until), ID: id, Lease: optionalTimeColumn(&lease), Now: optionalTimeColumn(&now)})
	if err != nil {
		return fmt.Errorf("renew webhook delivery lease: %w", translateWebhooks(err))
	}
	if n == 0 {
		return fmt.Errorf("renew webhook delivery lease: %w", webhooks.ErrLeaseLost)
	}
	return nil
}

// WebhookDeliveryRetry implements webhooks.Store.
func (d *DB) WebhookDeliveryRetry(ctx context.Context, endpointID, id string, at time.Time, rec audit.Event) (webhooks.Delivery, error) {
	row, err := audited(ctx, d, rec, func(q *db.Queries) (db.WebhookDelivery, error) {
		return q.WebhookDeliveryRetry(ctx, db.WebhookDeliveryRetryParams{At: formatTime(at), EndpointID: endpointID, ID: id})
	})
	if err != nil {
		return webhooks.Delivery{}, fmt.Errorf("retry webhook delivery: %w", translateWebhooks(err))
	}
	return deliveryResult("retry webhook delivery", row)
}

// WebhookDeliveryRecover implements webhooks.Store.
func (d *DB) WebhookDeliveryRecover(ctx context.Context, endpointID string, since, at time.Time, rec audit.Event) (int, error) {
	n, err := audited(ctx, d, rec, func(q *db.Queries) (int64, error) {
		return q.WebhookDeliveryRecover(ctx, db.WebhookDeliveryRecoverParams{At: formatTime(at), EndpointID: endpointID, Since: timeBound(since)})
	})
	if err != nil {
		return 0, fmt.Errorf("recover webhook deliveries: %w", translateWebhooks(err))
	}
	return int(n), nil
}

// translateWebhooks maps driver errors to the webhooks package's sentinel
// errors; every webhook query error passes through it exactly once.
func translateWebhooks(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return webhooks.ErrNotFound
	}
	return err
}

// listColumn is the stored form of a list of strings: a JSON array, [] for
// none.
func listColumn(list []string) string {
	if len(list) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(list) // strings always marshal
	return string(b)
}

func listFromColumn(c string) ([]string, error) {
	var out []string
	if err := json.Unmarshal([]byte(c), &out); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, nil // none reads back as nil, as on PostgreSQL
	}
	return out, nil
}

// bodyColumn is never NULL.
func bodyColumn(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func endpointResult(op string, r db.WebhookEndpoint) (webhooks.Endpoint, error) {
	e, err := endpointFromRow(r)
	if err != nil {
		return webhooks.Endpoint{}, fmt.Errorf("%s: %w", op, err)
	}
	return e, nil
}

func endpointsFromRows(op string, rows []db.WebhookEndpoint) ([]webhooks.Endpoint, error) {
	out := make([]webhooks.Endpoint, 0, len(rows))
	for _, r := range rows {
		e, err := endpointResult(op, r)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// endpointFromRow converts a stored row to a webhooks.Endpoint.
func endpointFromRow(r db.WebhookEndpoint) (webhooks.Endpoint, error) {
	e := webhooks.Endpoint{
		ID: r.ID, TenantID: r.TenantID, URL: r.Url, Description: r.Description, Enabled: r.Enabled,
		DisabledReason: r.DisabledReason, Secret: r.Secret, PreviousSecret: r.PreviousSecret, Version: r.Version, Seq: r.Seq,
	}
	var err error
	if e.EventTypes, err = listFromColumn(r.EventTypes); err != nil {
		return e, fmt.Errorf("webhook endpoint %s event_types: %w", r.ID, err)
	}
	if e.SegmentIDs, err = listFromColumn(r.SegmentIds); err != nil {
		return e, fmt.Errorf("webhook endpoint %s segment_ids: %w", r.ID, err)
	}
	if e.Traits, err = listFromColumn(r.Traits); err != nil {
		return e, fmt.Errorf("webhook endpoint %s traits: %w", r.ID, err)
	}
	if e.PreviousSecretExpiresAt, err = optionalTimeFromColumn(r.PreviousSecretExpiresAt); err != nil {
		return e, fmt.Errorf("webhook endpoint %s: %w", r.ID, err)
	}
	if e.FailingSince, err = optionalTimeFromColumn(r.FailingSince); err != nil {
		return e, fmt.Errorf("webhook endpoint %s: %w", r.ID, err)
	}
	if e.CreatedAt, e.UpdatedAt, err = parseTimes(r.CreatedAt, r.UpdatedAt); err != nil {
		return e, fmt.Errorf("webhook endpoint %s: %w", r.ID, err)
	}
	return e, nil
}

func deliveryResult(op string, r db.WebhookDelivery) (webhooks.Delivery, error) {
	dl, err := deliveryFromRow(r)
	if err != nil {
		return webhooks.Delivery{}, fmt.Errorf("%s: %w", op, err)
	}
	return dl, nil
}

func deliveriesFromRows(op string, rows []db.WebhookDelivery) ([]webhooks.Delivery, error) {
	out := make([]webhooks.Delivery, 0, len(rows))
	for _, r := range rows {
		dl, err := deliveryResult(op, r)
		if err != nil {
			return nil, err
		}
		out = append(out, dl)
	}
	return out, nil
}

// deliveryFromRow converts a stored row to a webhooks.Delivery.
func deliveryFromRow(r db.WebhookDelivery) (webhooks.Delivery, error) {
	dl := webhooks.Delivery{
		ID: r.ID, EndpointID: r.EndpointID, EventID: r.EventID, EventType: r.EventType, TenantID: r.TenantID,
		OrderKey: r.OrderKey, Payload: r.Payload, Status: webhooks.Status(r.Status), Attempts: int(r.Attempts),
		ResponseStatus: int(r.ResponseStatus), ResponseBody: r.ResponseBody, LastError: r.LastError, Seq: r.Seq,
	}
	if len(dl.ResponseBody) == 0 {
		dl.ResponseBody = nil
	}
	var err error
	if dl.NextAttemptAt, err = parseTime(r.NextAttemptAt); err != nil {
		return dl, fmt.Errorf("webhook delivery %s: %w", r.ID, err)
	}
	if dl.CreatedAt, err = parseTime(r.CreatedAt); err != nil {
		return dl, fmt.Errorf("webhook delivery %s: %w", r.ID, err)
	}
	if dl.LastAttemptAt, err = optionalTimeFromColumn(r.LastAttemptAt); err != nil {
		return dl, fmt.Errorf("webhook delivery %s: %w", r.ID, err)
	}
	if dl.ClaimedUntil, err = optionalTimeFromColumn(r.ClaimedUntil); err != nil {
		return dl, fmt.Errorf("webhook delivery %s: %w", r.ID, err)
	}
	return dl, nil
}
