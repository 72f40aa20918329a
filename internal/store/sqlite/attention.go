package sqlite

import (
	"context"
	"fmt"

	"github.com/cairn-cdp/cairn/internal/attention"
	"github.com/cairn-cdp/cairn/internal/store/sqlite/db"
)

var _ attention.Store = (*DB)(nil)

// AttentionList implements attention.Store.
func (d *DB) AttentionList(ctx context.Context, p attention.ListParams) ([]attention.Item, error) {
	// The empty time is before every stored one.
	after := ""
	if !p.After.UpdatedAt.IsZero() {
		after = formatTime(p.After.UpdatedAt)
	}
	rows, err := d.queries.AttentionList(ctx, db.AttentionListParams{
		Kind:      string(p.Kind),
		Region:    p.Region,
		AfterAt:   after,
		AfterKind: string(p.After.Kind),
		AfterKey:  p.After.Key,
		MaxRows:   maxRows(p.Limit),
	})
	if err != nil {
		return nil, fmt.Errorf("list attention: %w", err)
	}
	out := make([]attention.Item, len(rows))
	for i, r := range rows {
		at, err := parseTime(r.UpdatedAt)
		if err != nil {
			return nil, fmt.Errorf("list attention: %w", err)
		}
		out[i] = attention.Item{
			Kind: attention.Kind(r.Kind), TenantID: r.TenantID, TenantSlug: r.TenantSlug, TenantName: r.TenantName,
			TenantStatus: r.TenantStatus, Region: r.Region, Status: r.Status, Reason: r.Reason, StackName: r.StackName,
			GrantID: r.GrantID, Principal: r.Principal, UpdatedAt: at,
		}
	}
	return out, nil
}
