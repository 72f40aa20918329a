package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/store/postgres/db"
	"github.com/cairn-cdp/cairn/internal/webhooks"
)

var _ webhooks.Store = (*DB)(nil)

// WebhookEndpointInsert implements webhooks.Store. A transaction-level
// advisory lock per tenant makes the count and the insert one step, so
// that concurrent inserts (from any replica) never exceed max.
func (d *DB) WebhookEndpointInsert(ctx context.Context, e webhooks.Endpoint, max int, rec audit.Event) (webhooks.Endpoint, error) {
	var row db.WebhookEndpoint
	err := d.withTx(ctx, func(tx pgx.Tx) error {
		q := d.queries.WithTx(tx)
		if err := q.WebhookEndpointLock(ctx, e.TenantID); err != nil {
			return err
		}
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
			PreviousSecretExpiresAt: storedTimePtr(e.PreviousSecretExpiresAt), FailingSince: storedTimePtr(e.FailingSince),
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
	return endpointFromRow(row), nil
}

// WebhookEndpointGet implements webhooks.Store.
func (d *DB) WebhookEndpointGet(ctx context.Context, tenantID, id string) (webhooks.Endpoint, error) {
	row, err := d.queries.WebhookEndpointGet(ctx, db.WebhookEndpointGetParams{TenantID: tenantID, ID: id})
	if err != nil {
		return webhooks.Endpoint{}, fmt.Errorf("get webhook endpoint: %w", translateWebhooks(err))
	}
	return endpointFromRow(row), nil
}

// WebhookEndpointList implements webhooks.Store.
func (d *DB) WebhookEndpointList(ctx context.Context, tenantID string, afterSeq int64, limit int) ([]webhooks.Endpoint, error) {
	rows, err := d.queries.WebhookEndpointList(ctx, db.WebhookEndpointListParams{TenantID: tenantID, AfterSeq: afterSeq, MaxRows: maxRows(limit)})
	if err != nil {
		return nil, fmt.Errorf("list webhook endpoints: %w", translateWebhooks(err))
	}
	return endpointsFromRows(rows), nil
}

// WebhookEndpointsEnabled implements webhooks.Store.
func (d *DB) WebhookEndpointsEnabled(ctx context.Context, tenantID string) ([]webhooks.Endpoint, error) {
	rows, err := d.queries.WebhookEndpointsEnabled(ctx, tenantID)
	if err != nil {
		return nil, fmt.Errorf("list enabled webhook endpoints: %w", translateWebhooks(err))
	}
	return endpointsFromRows(rows), nil
}

// WebhookEndpointUpdate implements webhooks.Store. Of concurrent updates
// from one Version exactly one succeeds: the others wait for its row lock,
// then find the Version changed.
func (d *DB) WebhookEndpointUpdate(ctx context.Context, e webhooks.Endpoint, rec audit.Event) (webhooks.Endpoint, error) {
	_, updatedAt := insertTimes(e.UpdatedAt, e.UpdatedAt)
	row, err := audited(ctx, d, rec, func(q *db.Queries) (db.WebhookEndpoint, error) {
		return q.WebhookEndpointUpdate(ctx, db.WebhookEndpointUpdateParams{
			Url: e.URL, Description: e.Description,
			EventTypes: listColumn(e.EventTypes), SegmentIds: listColumn(e.SegmentIDs), Traits: listColumn(e.Traits),
			Enabled: e.Enabled, DisabledReason: e.DisabledReason, Secret: e.Secret, PreviousSecret: e.PreviousSecret,
			PreviousSecretExpiresAt: storedTimePtr(e.PreviousSecretExpiresAt), FailingSince: storedTimePtr(e.FailingSince),
			UpdatedAt: updatedAt, TenantID: e.TenantID, ID: e.ID, PrevVersion: e.Version,
		})
	})
	if errors.Is(err, pgx.ErrNoRows) {
		if _, gerr := d.queries.WebhookEndpointGet(ctx, db.WebhookEndpointGetParams{TenantID: e.TenantID, ID: e.ID}); gerr == nil {
			err = webhooks.ErrVersionMismatch
		}
	}
	if err != nil {
		return webhooks.Endpoint{}, fmt.Errorf("update webhook endpoint: %w", translateWebhooks(err))
	}
	return endpointFromRow(row), nil
}

// WebhookEndpointDelete implements webhooks.Store.
func (d *DB) WebhookEndpointDelete(ctx context.Context, tenantID, id string, version int64, rec audit.Event) error {
	err := d.withTx(ctx, func(tx pgx.Tx) error {
		q := d.queries.WithTx(tx)
		row, err := q.WebhookEndpointGetForUpdate(ctx, db.WebhookEndpointGetForUpdateParams{TenantID: tenantID, ID: id})
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
	if err := d.queries.WebhookEndpointFailing(ctx, db.WebhookEndpointFailingParams{At: storedTimePtr(&at), ID: id}); err != nil {
		return webhooks.Endpoint{}, fmt.Errorf("webhook endpoint failing: %w", translateWebhooks(err))
	}
	row, err := d.queries.WebhookEndpointGetByID(ctx, id)
	if err != nil {
		return webhooks.Endpoint{}, fmt.Errorf("webhook endpoint failing: %w", translateWebhooks(err))
	}
	return endpointFromRow(row), nil
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
	return endpointsFromRows(rows), nil
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
	err := d.withTx(ctx, func(tx pgx.Tx) error {
		q := d.queries.WithTx(tx)
		n, err := q.WebhookEndpointDisable(ctx, db.WebhookEndpointDisableParams{Reason: reason, UpdatedAt: storedTime(at), ID: id})
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
	var out []webhooks.Delivery
	err := d.withTx(ctx, func(tx pgx.Tx) error {
		q := d.queries.WithTx(tx)
		out = out[:0]
		for _, dl := range ds {
			createdAt, _ := insertTimes(dl.CreatedAt, time.Time{})
			next := createdAt
			if !dl.NextAttemptAt.IsZero() {
				next = storedTime(dl.NextAttemptAt)
			}
			row, err := q.WebhookDeliveryInsert(ctx, db.WebhookDeliveryInsertParams{
				ID: dl.ID, EndpointID: dl.EndpointID, EventID: dl.EventID, EventType: dl.EventType, TenantID: dl.TenantID,
				OrderKey: dl.OrderKey, Payload: dl.Payload, NextAttemptAt: next, CreatedAt: createdAt,
			})
			if errors.Is(err, pgx.ErrNoRows) {
				continue // the endpoint has the event already
			}
			if err != nil {
				return err
			}
			out = append(out, deliveryFromRow(row))
		}
		return auditAppend(ctx, q, rec)
	})
	if err != nil {
		return nil, fmt.Errorf("insert webhook deliveries: %w", translateWebhooks(err))
	}
	return out, nil
}

// WebhookDeliveryGet implements webhooks.Store.
func (d *DB) WebhookDeliveryGet(ctx context.Context, endpointID, id string) (webhooks.Delivery, error) {
	row, err := d.queries.WebhookDeliveryGet(ctx, db.WebhookDeliveryGetParams{EndpointID: endpointID, ID: id})
	if err != nil {
		return webhooks.Delivery{}, fmt.Errorf("get webhook delivery: %w", translateWebhooks(err))
	}
	return deliveryFromRow(row), nil
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
	out := make([]webhooks.Delivery, 0, len(rows))
	for _, r := range rows {
		out = append(out, deliveryFromRow(r))
	}
	return out, nil
}

// WebhookDeliveryClaim implements webhooks.Store: one statement that skips
// rows other transactions hold (FOR UPDATE SKIP LOCKED), run under a
// transaction-level advisory lock so that claims from several replicas
// also agree on each endpoint's count of live leases.
func (d *DB) WebhookDeliveryClaim(ctx context.Context, p webhooks.ClaimParams) ([]webhooks.Delivery, error) {
	var rows []db.WebhookDelivery
	err := d.withTx(ctx, func(tx pgx.Tx) error {
		q := d.queries.WithTx(tx)
		if err := q.WebhookClaimLock(ctx); err != nil {
			return err
		}
		var err error
		rows, err = q.WebhookDeliveryClaim(ctx, db.WebhookDeliveryClaimParams{
			LeaseUntil: storedTimePtr(&p.LeaseUntil), Now: storedTime(p.Now),
			PerEndpoint: int64(p.PerEndpoint), MaxRows: maxRows(p.Limit),
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claim webhook deliveries: %w", translateWebhooks(err))
	}
	slices.SortFunc(rows, func(a, b db.WebhookDelivery) int { return cmp.Compare(a.Seq, b.Seq) })
	out := make([]webhooks.Delivery, 0, len(rows))
	for _, r := range rows {
		out = append(out, deliveryFromRow(r))
	}
	return out, nil
}

// WebhookDeliveryRecord implements webhooks.Store.
func (d *DB) WebhookDeliveryRecord(ctx context.Context, r webhooks.AttemptResult) error {
	body := r.ResponseBody
	if body == nil {
		body = []byte{}
	}
	n, err := d.queries.WebhookDeliveryRecord(ctx, db.WebhookDeliveryRecordParams{
		Status: string(r.Status), NextAttemptAt: storedTime(r.NextAttemptAt), LastAttemptAt: storedTimePtr(&r.At),
		ResponseStatus: int32(r.ResponseStatus), ResponseBody: body, LastError: r.LastError,
		ID: r.ID, Lease: storedTimePtr(&r.Lease),
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
	n, err := d.queries.WebhookDeliveryRenew(ctx, db.WebhookDeliveryRenewParams{LeaseUntil: storedTimePtr(&until), ID: id, Lease: storedTimePtr(&lease), Now: storedTimePtr(&now)})
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
		return q.WebhookDeliveryRetry(ctx, db.WebhookDeliveryRetryParams{At: storedTime(at), EndpointID: endpointID, ID: id})
	})
	if err != nil {
		return webhooks.Delivery{}, fmt.Errorf("retry webhook delivery: %w", translateWebhooks(err))
	}
	return deliveryFromRow(row), nil
}

// WebhookDeliveryRecover implements webhooks.Store.
func (d *DB) WebhookDeliveryRecover(ctx context.Context, endpointID string, since, at time.Time, rec audit.Event) (int, error) {
	bound := time.Unix(0, 0).UTC()
	if b := timeBound(since); b != nil {
		bound = *b
	}
	n, err := audited(ctx, d, rec, func(q *db.Queries) (int64, error) {
		return q.WebhookDeliveryRecover(ctx, db.WebhookDeliveryRecoverParams{At: storedTime(at), EndpointID: endpointID, Since: bound})
	})
	if err != nil {
		return 0, fmt.Errorf("recover webhook deliveries: %w", translateWebhooks(err))
	}
	return int(n), nil
}

// translateWebhooks maps driver errors to the webhooks package's sentinel
// errors; every webhook query error passes through it exactly once.
func translateWebhooks(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return webhooks.ErrNotFound
	}
	return err
}

// listColumn is the stored form of a list: never NULL.
func listColumn(list []string) []string {
	if list == nil {
		return []string{}
	}
	return list
}

// listFromColumn reads an empty list back as nil.
func listFromColumn(list []string) []string {
	if len(list) == 0 {
		return nil
	}
	return list
}

func endpointsFromRows(rows []db.WebhookEndpoint) []webhooks.Endpoint {
	out := make([]webhooks.Endpoint, 0, len(rows))
	for _, r := range rows {
		out = append(out, endpointFromRow(r))
	}
	return out
}

// endpointFromRow converts a stored row to a webhooks.Endpoint.
func endpointFromRow(r db.WebhookEndpoint) webhooks.Endpoint {
	return webhooks.Endpoint{
		ID: r.ID, TenantID: r.TenantID, URL: r.Url, Description: r.Description,
		EventTypes: listFromColumn(r.EventTypes), SegmentIDs: listFromColumn(r.SegmentIds), Traits: listFromColumn(r.Traits),
		Enabled: r.Enabled, DisabledReason: r.DisabledReason, Secret: r.Secret, PreviousSecret: r.PreviousSecret,
		PreviousSecretExpiresAt: timePtrFromColumn(r.PreviousSecretExpiresAt), FailingSince: timePtrFromColumn(r.FailingSince),
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(), Version: r.Version, Seq: r.Seq,
	}
}

// deliveryFromRow converts a stored row to a webhooks.Delivery.
func deliveryFromRow(r db.WebhookDelivery) webhooks.Delivery {
	body := r.ResponseBody
	if len(body) == 0 {
		body = nil
	}
	return webhooks.Delivery{
		ID: r.ID, EndpointID: r.EndpointID, EventID: r.EventID, EventType: r.EventType, TenantID: r.TenantID,
		OrderKey: r.OrderKey, Payload: r.Payload, Status: webhooks.Status(r.Status), Attempts: int(r.Attempts),
		NextAttemptAt: r.NextAttemptAt.UTC(), LastAttemptAt: timePtrFromColumn(r.LastAttemptAt),
		ResponseStatus: int(r.ResponseStatus), ResponseBody: body, LastError: r.LastError,
		ClaimedUntil: timePtrFromColumn(r.ClaimedUntil), CreatedAt: r.CreatedAt.UTC(), Seq: r.Seq,
	}
}
