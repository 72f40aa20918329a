package postgres

import (
	"context"
	"fmt"

	"github.com/cairn-cdp/cairn/internal/attention"
	"github.com/cairn-cdp/cairn/internal/store/postgres/db"
)

var _ attention.Store = (*DB)(nil)

// AttentionList implements attention.Store.
func (d *DB) AttentionList(ctx context.Context, p attention.ListParams) ([]attention.Item, error) {
	rows, err := d.queries.AttentionList(ctx, db.AttentionListParams{
		Kind:      string(p.Kind),
		Region:    p.Region,
		AfterAt:   p.After.UpdatedAt.UTC(),
		AfterKind: string(p.After.Kind),
		AfterKey:  p.After.Key,
		MaxRows:   maxRows(p.Limit),
	})
	if err != nil {
		return nil, fmt.Errorf("list attention: %w", err)
	}
	out := make([]attention.Item, len(rows))
	for i, r := range rows {
		out[i] = attention.Item{
			Kind: attention.Kind(r.Kind), TenantID: r.TenantID, TenantSlug: r.TenantSlug, TenantName: r.TenantName,
			TenantStatus: r.TenantStatus, Region: r.Region, Status: r.Status, Reason: r.Reason, StackName: r.StackName,
			GrantID: r.GrantID, Principal: r.Principal, UpdatedAt: r.UpdatedAt.UTC(),
		}
	}
	return out, nil
}
