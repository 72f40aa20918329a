package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/cairn-cdp/cairn/internal/page"
	"github.com/cairn-cdp/cairn/internal/plans"
)

func toAPIPlan(p plans.Plan) Plan {
	l := p.Limits
	return Plan{
		Name: p.Name, Description: p.Description, MonthlyEventsMode: QuotaMode(p.MonthlyEventsMode), ProfilesMode: QuotaMode(p.ProfilesMode), Version: p.Version,
		Limits: PlanLimits{
			EventsPerSecondPerSource: l.EventsPerSecondPerSource, EventsPerSecondPerTenant: l.EventsPerSecondPerTenant,
			RequestsPerSecondPerToken: l.RequestsPerSecondPerToken, Profiles: l.Profiles, Segments: l.Segments,
			Webhooks: l.Webhooks, MonthlyEvents: l.MonthlyEvents,
		},
		CreatedAt: p.CreatedAt.UTC(), UpdatedAt: p.UpdatedAt.UTC(),
	}
}

func planETag(p plans.Plan) string { return fmt.Sprintf(`"v%d"`, p.Version) }

func planURL(name string) string { return "/v1/plans/" + url.PathEscape(name) }

// planProblem maps the plans package's errors.
func planProblem(err error) *problem {
	var ve *plans.ValidationError
	switch {
	case errors.As(err, &ve):
		return badRequest(ve.Field, ve.Reason)
	case errors.Is(err, plans.ErrNotFound):
		return newProblem(http.StatusNotFound, "not-found", "Not found", "No plan has this name.")
	case errors.Is(err, plans.ErrVersionMismatch):
		return newProblem(http.StatusPreconditionFailed, "precondition-failed", "Precondition failed",
			"The plan changed since the ETag given in If-Match, or does not exist; read it again.")
	}
	return nil
}

func (s *Server) ListPlans(ctx context.Context, req ListPlansRequestObject) (ListPlansResponseObject, error) {
	limit := page.Limit(req.Params.Limit)
	after := ""
	if req.Params.Cursor != nil {
		var err error
		if after, err = page.DecodeString(*req.Params.Cursor); err != nil {
			return nil, err
		}
	}
	list, err := s.plans.List(ctx, after, limit+1)
	if err != nil {
		return nil, err
	}
	list, next := page.TrimString(list, limit, func(p plans.Plan) string { return p.Name })
	items := make([]Plan, len(list))
	for i, p := range list {
		items[i] = toAPIPlan(p)
	}
	return ListPlans200JSONResponse{Items: items, NextCursor: next}, nil
}

func (s *Server) GetPlan(ctx context.Context, req GetPlanRequestObject) (GetPlanResponseObject, error) {
	p, err := s.plans.Get(ctx, req.PlanName)
	if err != nil {
		return nil, err
	}
	return GetPlan200JSONResponse{Body: toAPIPlan(p), Headers: GetPlan200ResponseHeaders{ETag: planETag(p)}}, nil
}

func (s *Server) PutPlan(ctx context.Context, req PutPlanRequestObject) (PutPlanResponseObject, error) {
	b := req.Body
	p := plans.PutParams{
		Audit: auditOf(ctx, "", "plan.update", "plan", req.PlanName),
		Limits: plans.Limits{
			EventsPerSecondPerSource: b.Limits.EventsPerSecondPerSource, EventsPerSecondPerTenant: b.Limits.EventsPerSecondPerTenant,
			RequestsPerSecondPerToken: b.Limits.RequestsPerSecondPerToken, Profiles: b.Limits.Profiles, Segments: b.Limits.Segments,
			Webhooks: b.Limits.Webhooks, MonthlyEvents: b.Limits.MonthlyEvents,
		},
	}
	if b.Description != nil {
		p.Description = *b.Description
	}
	if b.MonthlyEventsMode != nil {
		p.MonthlyEventsMode = plans.Mode(*b.MonthlyEventsMode)
	}
	if b.ProfilesMode != nil {
		p.ProfilesMode = plans.Mode(*b.ProfilesMode)
	}
	if req.Params.IfMatch != nil {
		v, err := s.planIfMatch(ctx, req.PlanName, *req.Params.IfMatch)
		if err != nil {
			return nil, err
		}
		p.IfVersion = v
	}
	plan, created, err := s.plans.Put(ctx, req.PlanName, p)
	if err != nil {
		return nil, err
	}
	if created {
		return PutPlan201JSONResponse{Body: toAPIPlan(plan), Headers: PutPlan201ResponseHeaders{ETag: planETag(plan), Location: planURL(plan.Name)}}, nil
	}
	return PutPlan200JSONResponse{Body: toAPIPlan(plan), Headers: PutPlan200ResponseHeaders{ETag: planETag(plan)}}, nil
}

// planIfMatch returns the version a plan's change must find for its
// If-Match field (see matchVersion; nil for "*"): a 412 when the plan does
// not exist, since every form of If-Match asks for one, or when no tag
// names its version, and a 400 for a malformed field.
func (s *Server) planIfMatch(ctx context.Context, name, h string) (*int64, error) {
	if _, _, err := parseIfMatch(h); err != nil {
		return nil, ifMatchProblem(err)
	}
	p, err := s.plans.Get(ctx, name)
	if errors.Is(err, plans.ErrNotFound) {
		return nil, plans.ErrVersionMismatch
	}
	if err != nil {
		return nil, err
	}
	return matchVersion(&h, p.Version, plans.ErrVersionMismatch)
}
