package httpapi

import (
	"context"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/page"
	"github.com/cairn-cdp/cairn/internal/provisioner"
)

// StackService is what the stack routes need from the provisioner.
type StackService interface {
	Placements(ctx context.Context, tenantID string) ([]provisioner.Placement, error)
	Events(ctx context.Context, tenantID, region string, beforeSeq int64, limit int) ([]provisioner.RecordedEvent, error)
	RetryStack(ctx context.Context, rec audit.Event, tenantID, region string) (provisioner.Placement, error)
	Pools(ctx context.Context) ([]provisioner.Pool, error)
}

var _ StackService = (*provisioner.Provisioner)(nil)

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func outputs(m map[string]string) Outputs {
	if m == nil {
		return Outputs{}
	}
	return m
}

func toAPIStack(p provisioner.Placement) Stack {
	return Stack{
		Region:          Region(p.Region),
		Kind:            Tier(p.Kind),
		Status:          PlacementStatus(p.Status),
		StackName:       p.StackName,
		StackStatus:     optional(p.StackStatus),
		TemplateVersion: p.TemplateVersion,
		Outputs:         outputs(p.Outputs),
		LastError:       optional(p.LastError),
		Attempt:         p.Attempt,
		CreatedAt:       p.CreatedAt.UTC(),
		UpdatedAt:       p.UpdatedAt.UTC(),
	}
}

func (s *Server) ListTenantStacks(ctx context.Context, req ListTenantStacksRequestObject) (ListTenantStacksResponseObject, error) {
	list, err := s.stacks.Placements(ctx, req.TenantId)
	if err != nil {
		return nil, err
	}
	items := make([]Stack, len(list))
	for i, p := range list {
		items[i] = toAPIStack(p)
	}
	return ListTenantStacks200JSONResponse{Items: items}, nil
}

func (s *Server) ListStackEvents(ctx context.Context, req ListStackEventsRequestObject) (ListStackEventsResponseObject, error) {
	limit := page.Limit(req.Params.Limit)
	var before int64
	if req.Params.Cursor != nil {
		var err error
		if before, err = page.Decode(*req.Params.Cursor); err != nil {
			return nil, err
		}
	}
	list, err := s.stacks.Events(ctx, req.TenantId, string(req.Region), before, limit+1)
	if err != nil {
		return nil, err
	}
	list, next := page.Trim(list, limit, func(e provisioner.RecordedEvent) int64 { return e.Seq })
	items := make([]StackEvent, len(list))
	for i, e := range list {
		items[i] = StackEvent{
			Id: e.ID, Time: e.Time.UTC(), LogicalId: e.LogicalID, ResourceType: e.ResourceType,
			Status: e.Status, Reason: optional(e.Reason),
		}
	}
	return ListStackEvents200JSONResponse{Items: items, NextCursor: next}, nil
}

func (s *Server) RetryStack(ctx context.Context, req RetryStackRequestObject) (RetryStackResponseObject, error) {
	p, err := s.stacks.RetryStack(ctx, auditOf(ctx, req.TenantId, "stack.retry", "stack", req.TenantId+"/"+string(req.Region)), req.TenantId, string(req.Region))
	if err != nil {
		return nil, err
	}
	// No route reads one stack; the tenant's stacks show its progress.
	return RetryStack202JSONResponse{Body: toAPIStack(p), Headers: RetryStack202ResponseHeaders{Location: "/v1/tenants/" + req.TenantId + "/stacks"}}, nil
}

func (s *Server) ListPools(ctx context.Context, _ ListPoolsRequestObject) (ListPoolsResponseObject, error) {
	list, err := s.stacks.Pools(ctx)
	if err != nil {
		return nil, err
	}
	items := make([]Pool, len(list))
	for i, p := range list {
		items[i] = Pool{
			Region:          Region(p.Region),
			StackName:       p.StackName,
			Status:          PlacementStatus(p.Status),
			StackStatus:     optional(p.StackStatus),
			TemplateVersion: p.TemplateVersion,
			Outputs:         outputs(p.Outputs),
			LastError:       optional(p.LastError),
			TenantCount:     p.TenantCount,
			CreatedAt:       p.CreatedAt.UTC(),
			UpdatedAt:       p.UpdatedAt.UTC(),
		}
	}
	return ListPools200JSONResponse{Items: items}, nil
}
