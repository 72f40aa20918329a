package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/cairn-cdp/cairn/internal/page"
	"github.com/cairn-cdp/cairn/internal/profiles"
)

func toAPISegment(tenant string, g profiles.Segment) Segment {
	out := Segment{
		Id: g.ID, TenantId: tenant, Name: g.Name, Description: optional(g.Description),
		Match: SegmentMatch(g.Match), Conditions: make([]SegmentCondition, len(g.Conditions)), CreatedAt: g.CreatedAt.UTC(),
	}
	for i, c := range g.Conditions {
		out.Conditions[i] = SegmentCondition{Trait: c.Trait, Operator: SegmentConditionOperator(c.Operator), Value: c.Value}
	}
	return out
}

func (s *Server) CreateSegment(ctx context.Context, req CreateSegmentRequestObject) (CreateSegmentResponseObject, error) {
	if _, err := s.tenants.Get(ctx, req.TenantId); err != nil {
		return nil, err
	}
	g := profiles.Segment{Name: req.Body.Name, Conditions: make([]profiles.Condition, len(req.Body.Conditions))}
	if req.Body.Description != nil {
		g.Description = *req.Body.Description
	}
	if req.Body.Match != nil {
		g.Match = string(*req.Body.Match)
	}
	for i, c := range req.Body.Conditions {
		g.Conditions[i] = profiles.Condition{Trait: c.Trait, Operator: string(c.Operator), Value: c.Value}
	}
	g, err := s.profiles.CreateSegment(ctx, req.TenantId, g, s.queueRecompute)
	if err != nil {
		return nil, err
	}
	return CreateSegment201JSONResponse(toAPISegment(req.TenantId, g)), nil
}

func (s *Server) ListSegments(ctx context.Context, req ListSegmentsRequestObject) (ListSegmentsResponseObject, error) {
	if _, err := s.tenants.Get(ctx, req.TenantId); err != nil {
		return nil, err
	}
	limit := page.Limit(req.Params.Limit)
	after, err := decodeStringCursor(req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	list, err := s.profiles.Segments(ctx, req.TenantId, after, limit+1)
	if err != nil {
		return nil, err
	}
	list, next := page.TrimString(list, limit, func(g profiles.Segment) string { return g.ID })
	items := make([]Segment, len(list))
	for i, g := range list {
		items[i] = toAPISegment(req.TenantId, g)
	}
	return ListSegments200JSONResponse{Items: items, NextCursor: next}, nil
}

func (s *Server) GetSegment(ctx context.Context, req GetSegmentRequestObject) (GetSegmentResponseObject, error) {
	g, err := s.profiles.GetSegment(ctx, req.TenantId, req.SegmentId)
	if err != nil {
		return nil, err
	}
	return GetSegment200JSONResponse(toAPISegment(req.TenantId, g)), nil
}

func (s *Server) DeleteSegment(ctx context.Context, req DeleteSegmentRequestObject) (DeleteSegmentResponseObject, error) {
	if err := s.profiles.RemoveSegment(ctx, req.TenantId, req.SegmentId, s.queueRecompute); err != nil {
		return nil, err
	}
	return DeleteSegment204Response{}, nil
}

// segmentProblem maps the segment errors of the profiles package.
func segmentProblem(err error) *problem {
	switch {
	case errors.Is(err, profiles.ErrSegmentNotFound):
		return newProblem(http.StatusNotFound, "not-found", "Not found", "No segment has this ID.")
	case errors.Is(err, profiles.ErrSegmentLimit):
		return newProblem(http.StatusUnprocessableEntity, "segment-limit", "Segment limit reached",
			fmt.Sprintf("A tenant has at most %d segments; delete one first.", profiles.MaxSegments))
	case errors.Is(err, profiles.ErrSegmentReferenced):
		return newProblem(http.StatusConflict, "segment-referenced", "Segment referenced",
			"Another segment's definition references this one; change or delete that one first ("+err.Error()+").")
	case errors.Is(err, profiles.ErrSegmentVersion):
		return newProblem(http.StatusPreconditionFailed, "changed", "Changed since",
			"The segment changed since the version given in If-Match; read it again.")
	case errors.Is(err, profiles.ErrSegmentsBusy):
		return newProblem(http.StatusConflict, "segments-busy", "Segments busy",
			"The tenant's segments were changed by many other requests at once; try again.")
	}
	return nil
}

// queueRecompute queues a segment's computation job.
func (s *Server) queueRecompute(ctx context.Context, args profiles.RecomputeArgs) error {
	return s.tenants.Enqueue(ctx, args)
}
