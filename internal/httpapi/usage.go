package httpapi

import (
	"context"
	"errors"

	"github.com/cairn-cdp/cairn/internal/page"
	"github.com/cairn-cdp/cairn/internal/usage"
)

// usageRangeProblem is a 400 naming `to` for a refused range, err itself
// otherwise.
func usageRangeProblem(err error) error {
	var re *usage.RangeError
	if errors.As(err, &re) {
		return badRequest("to", re.Reason)
	}
	return err
}

func toUsageValues(v map[string]int64) UsageValues {
	return UsageValues{EventsAccepted: v[usage.EventsAccepted], ApiRequests: v[usage.APIRequests],
		RawBytes: v[usage.RawBytes], WebhookDeliveries: v[usage.WebhookDeliveries], QueryBytes: v[usage.QueryBytes], Profiles: v[usage.Profiles]}
}

func (s *Server) GetTenantUsage(ctx context.Context, req GetTenantUsageRequestObject) (GetTenantUsageResponseObject, error) {
	// Any tenant the control plane knows, offboarded ones too: the counts
	// outlive the tenant, for billing.
	if _, err := s.tenants.Get(ctx, req.TenantId); err != nil {
		return nil, err
	}
	g := usage.Day
	if req.Params.Granularity != nil {
		g = usage.Granularity(*req.Params.Granularity)
	}
	buckets, from, to, err := s.usage.Tenant(ctx, req.TenantId, req.Params.From, req.Params.To, g)
	if err != nil {
		return nil, usageRangeProblem(err)
	}
	out := TenantUsage{TenantId: req.TenantId, Granularity: TenantUsageGranularity(g), From: from, To: to, Buckets: make([]UsageBucket, len(buckets))}
	for i, b := range buckets {
		out.Buckets[i] = UsageBucket{Start: b.Start, Values: toUsageValues(b.Values), EventsBySource: b.BySource}
	}
	return GetTenantUsage200JSONResponse(out), nil
}

func (s *Server) GetFleetUsage(ctx context.Context, req GetFleetUsageRequestObject) (GetFleetUsageResponseObject, error) {
	// Totals are ordered by tenant ID: the cursor is the last one sent.
	after := ""
	if req.Params.Cursor != nil {
		var err error
		if after, err = page.DecodeString(*req.Params.Cursor); err != nil {
			return nil, err
		}
	}
	totals, more, from, to, err := s.usage.Fleet(ctx, req.Params.From, req.Params.To, after, page.Limit(req.Params.Limit))
	if err != nil {
		return nil, usageRangeProblem(err)
	}
	out := FleetUsage{From: from, To: to, Items: make([]TenantUsageTotal, len(totals))}
	for i, t := range totals {
		out.Items[i] = TenantUsageTotal{TenantId: t.TenantID, Values: toUsageValues(t.Values)}
	}
	if more {
		next := page.EncodeString(totals[len(totals)-1].TenantID)
		out.NextCursor = &next
	}
	return GetFleetUsage200JSONResponse(out), nil
}
