package httpapi

import (
	"context"
	"errors"
	"time"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/drift"
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

// DriftReader reads stacks' latest drift detection.
type DriftReader interface {
	StackDriftGet(ctx context.Context, region, stackName string) (drift.Record, error)
}

// stackDrift returns the API's view of a stack's drift: nil fields when it
// was never checked (or no DriftReader is configured).
func (s *Server) stackDrift(ctx context.Context, region, stackName string) (*string, *[]ResourceDrift, *time.Time, error) {
	if s.drift == nil || stackName == "" {
		return nil, nil, nil, nil
	}
	r, err := s.drift.StackDriftGet(ctx, region, stackName)
	if errors.Is(err, drift.ErrNotFound) {
		return nil, nil, nil, nil
	}
	if err != nil {
		return nil, nil, nil, err
	}
	resources := make([]ResourceDrift, len(r.Resources))
	for i, d := range r.Resources {
		resources[i] = ResourceDrift{LogicalId: d.LogicalID, PhysicalId: optional(d.PhysicalID), ResourceType: d.ResourceType,
			Status: ResourceDriftStatus(d.Status)}
	}
	status := r.Status
	return &status, &resources, optionalTime(r.CheckedAt), nil
}

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
		StackId:         optional(p.StackID),
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
		status, resources, checked, err := s.stackDrift(ctx, p.Region, p.StackName)
		if err != nil {
			return nil, err
		}
		if status != nil {
			driftStatus := StackDriftStatus(*status)
			items[i].DriftStatus, items[i].DriftedResources, items[i].DriftCheckedAt = &driftStatus, resources, checked
		}
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
			StackId:         optional(p.StackID),
			Status:          PlacementStatus(p.Status),
			StackStatus:     optional(p.StackStatus),
			TemplateVersion: p.TemplateVersion,
			Outputs:         outputs(p.Outputs),
			LastError:       optional(p.LastError),
			TenantCount:     p.TenantCount,
			CreatedAt:       p.CreatedAt.UTC(),
			UpdatedAt:       p.UpdatedAt.UTC(),
		}
		status, resources, checked, err := s.stackDrift(ctx, p.Region, p.StackName)
		if err != nil {
			return nil, err
		}
		if status != nil {
			driftStatus := PoolDriftStatus(*status)
			items[i].DriftStatus, items[i].DriftedResources, items[i].DriftCheckedAt = &driftStatus, resources, checked
		}
	}
	return ListPools200JSONResponse{Items: items}, nil
}
