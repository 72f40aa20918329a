package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/page"
	"github.com/cairn-cdp/cairn/internal/plans"
	"github.com/cairn-cdp/cairn/internal/profiles"
)

// previewSample is how many profile IDs a preview shows.
const previewSample = 20

// segmentETag is a segment's entity tag: its version.
func segmentETag(g profiles.Segment) string { return fmt.Sprintf(`"v%d"`, g.Version) }

// segmentURL is the segment's URL, for Location.
func segmentURL(tenant, id string) string { return "/v1/tenants/" + tenant + "/segments/" + id }

// toAPISegment converts a segment with its computation status; count is
// its member count, nil when not counted (lists).
func toAPISegment(tenant string, g profiles.Segment, st profiles.SegmentStatus, count *int) (Segment, error) {
	out := Segment{
		Id: g.ID, TenantId: tenant, Name: g.Name, Description: optional(g.Description),
		Version: g.Version, Status: SegmentStatus(st.Status), Progress: int(st.Progress),
		MemberCount: count, CreatedAt: g.CreatedAt.UTC(), UpdatedAt: g.UpdatedAt.UTC(),
	}
	if g.UpdatedAt.IsZero() {
		out.UpdatedAt = out.CreatedAt // made before segments recorded changes
	}
	if g.Definition != nil {
		raw, err := json.Marshal(g.Definition)
		if err != nil {
			return Segment{}, fmt.Errorf("segment %s definition: %w", g.ID, err)
		}
		var def SegmentDefinition
		if err := json.Unmarshal(raw, &def); err != nil {
			return Segment{}, fmt.Errorf("segment %s definition: %w", g.ID, err)
		}
		out.Definition = &def
		return out, nil
	}
	match := SegmentMatch(g.Match)
	if match == "" {
		match = SegmentMatchAll
	}
	conds := make([]SegmentCondition, len(g.Conditions))
	for i, c := range g.Conditions {
		conds[i] = SegmentCondition{Trait: c.Trait, Operator: SegmentConditionOperator(c.Operator), Value: c.Value}
	}
	out.Match, out.Conditions = &match, &conds
	return out, nil
}

// segmentView reads a segment's status (and, with count, its member count)
// and converts it.
func (s *Server) segmentView(ctx context.Context, tenant string, g profiles.Segment, count bool) (Segment, error) {
	st, err := s.profiles.Status(ctx, tenant, g.ID)
	if err != nil {
		return Segment{}, err
	}
	var n *int
	if count {
		c, err := s.profiles.MemberCount(ctx, tenant, g.ID)
		if err != nil {
			return Segment{}, err
		}
		n = &c
	}
	return toAPISegment(tenant, g, st, n)
}

// fromAPIDefinition decodes a request's definition: the generated type
// holds it as decoded JSON, so it is encoded again for ParseDefinition,
// whose errors name the member by its JSON Pointer under /definition.
func fromAPIDefinition(def SegmentDefinition) (*profiles.Node, error) {
	raw, err := json.Marshal(def)
	if err != nil {
		return nil, badRequest("/definition", "not JSON: "+err.Error())
	}
	n, err := profiles.ParseDefinition(raw, "/definition")
	if err != nil {
		return nil, err
	}
	return &n, nil
}

func fromAPIConditions(cs []SegmentCondition) []profiles.Condition {
	out := make([]profiles.Condition, len(cs))
	for i, c := range cs {
		out[i] = profiles.Condition{Trait: c.Trait, Operator: string(c.Operator), Value: c.Value}
	}
	return out
}

func (s *Server) CreateSegment(ctx context.Context, req CreateSegmentRequestObject) (CreateSegmentResponseObject, error) {
	if _, err := s.tenants.Get(ctx, req.TenantId); err != nil {
		return nil, err
	}
	var g profiles.Segment
	g.Name = req.Body.Name
	if req.Body.Description != nil {
		g.Description = *req.Body.Description
	}
	if req.Body.Match != nil {
		g.Match = string(*req.Body.Match)
	}
	if req.Body.Conditions != nil {
		g.Conditions = fromAPIConditions(*req.Body.Conditions)
	}
	if req.Body.Definition != nil {
		def, err := fromAPIDefinition(*req.Body.Definition)
		if err != nil {
			return nil, err
		}
		g.Definition = def
	}
	limit, plan, err := s.planCap(ctx, req.TenantId, func(l plans.Limits) *int64 { return l.Segments }, profiles.MaxSegments)
	if err != nil {
		return nil, err
	}
	g, err = s.profiles.CreateSegmentWithin(ctx, req.TenantId, g, limit, s.queueRecompute)
	if err != nil {
		return nil, errAtPlanLimit(err, profiles.ErrSegmentLimit, "segments", limit, plan)
	}
	if err := s.record(ctx, auditOf(ctx, req.TenantId, "segment.create", "segment", g.ID)); err != nil {
		return nil, err
	}
	out, err := s.segmentView(ctx, req.TenantId, g, true)
	if err != nil {
		return nil, err
	}
	return CreateSegment201JSONResponse{Body: out, Headers: CreateSegment201ResponseHeaders{ETag: segmentETag(g), Location: segmentURL(req.TenantId, g.ID)}}, nil
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
		// No member_count: a count for each item would cost a query each.
		if items[i], err = s.segmentView(ctx, req.TenantId, g, false); err != nil {
			return nil, err
		}
	}
	return ListSegments200JSONResponse{Items: items, NextCursor: next}, nil
}

func (s *Server) GetSegment(ctx context.Context, req GetSegmentRequestObject) (GetSegmentResponseObject, error) {
	g, err := s.profiles.GetSegment(ctx, req.TenantId, req.SegmentId)
	if err != nil {
		return nil, err
	}
	out, err := s.segmentView(ctx, req.TenantId, g, true)
	if err != nil {
		return nil, err
	}
	return GetSegment200JSONResponse{Body: out, Headers: GetSegment200ResponseHeaders{ETag: segmentETag(g)}}, nil
}

func (s *Server) UpdateSegment(ctx context.Context, req UpdateSegmentRequestObject) (UpdateSegmentResponseObject, error) {
	version, err := s.segmentIfMatch(ctx, req.TenantId, req.SegmentId, req.Params.IfMatch)
	if err != nil {
		return nil, err
	}
	b := req.Body
	var def *profiles.Node
	if b.Definition != nil {
		if def, err = fromAPIDefinition(*b.Definition); err != nil {
			return nil, err
		}
	}
	if def != nil && (b.Match != nil || b.Conditions != nil) {
		return nil, badRequest("/definition", "either definition, or match and conditions, not both")
	}
	g, err := s.profiles.UpdateSegment(ctx, req.TenantId, req.SegmentId, version, func(g *profiles.Segment) error {
		if b.Name != nil {
			g.Name = *b.Name
		}
		if b.Description != nil {
			g.Description = *b.Description
		}
		switch {
		case def != nil:
			g.Definition, g.Match, g.Conditions = def, "", nil
		case b.Conditions != nil:
			g.Definition, g.Conditions = nil, fromAPIConditions(*b.Conditions)
			g.Match = ""
			if b.Match != nil {
				g.Match = string(*b.Match)
			}
		case b.Match != nil:
			if g.Definition != nil {
				return badRequest("/conditions", "a segment defined by definition needs conditions with match")
			}
			g.Match = string(*b.Match)
		}
		return nil
	}, s.queueRecompute)
	if err != nil {
		return nil, err
	}
	if err := s.record(ctx, auditOf(ctx, req.TenantId, "segment.update", "segment", req.SegmentId)); err != nil {
		return nil, err
	}
	out, err := s.segmentView(ctx, req.TenantId, g, true)
	if err != nil {
		return nil, err
	}
	return UpdateSegment200JSONResponse{Body: out, Headers: UpdateSegment200ResponseHeaders{ETag: segmentETag(g)}}, nil
}

// segmentIfMatch returns the version an edit must find for the segment's
// If-Match field: 0 (any) when absent or "*", the current version when a
// strong tag names it (the store still checks it did not change since),
// and ErrSegmentVersion (412) when none does. A malformed field is a 400.
func (s *Server) segmentIfMatch(ctx context.Context, tenant, id string, h *SegmentIfMatch) (int64, error) {
	if h == nil {
		return 0, nil
	}
	anyTag, tags, err := parseIfMatch(*h)
	if err != nil {
		return 0, ifMatchProblem(err)
	}
	if anyTag {
		return 0, nil
	}
	g, err := s.profiles.GetSegment(ctx, tenant, id)
	if err != nil {
		return 0, err
	}
	want := fmt.Sprintf("v%d", g.Version)
	weakOnly := true
	for _, tag := range tags {
		weakOnly = weakOnly && tag.weak
		if !tag.weak && tag.opaque == want {
			return g.Version, nil
		}
	}
	if weakOnly {
		return 0, errWeakIfMatch
	}
	return 0, profiles.ErrSegmentVersion
}

func (s *Server) PreviewSegment(ctx context.Context, req PreviewSegmentRequestObject) (PreviewSegmentResponseObject, error) {
	if _, err := s.tenants.Get(ctx, req.TenantId); err != nil {
		return nil, err
	}
	def, err := fromAPIDefinition(req.Body.Definition)
	if err != nil {
		return nil, err
	}
	n, ids, err := s.profiles.Preview(ctx, req.TenantId, *def, previewSample)
	if err != nil {
		return nil, err
	}
	if ids == nil {
		ids = []string{}
	}
	return PreviewSegment200JSONResponse{MemberCount: n, Sample: ids}, nil
}

func (s *Server) ListSegmentMembers(ctx context.Context, req ListSegmentMembersRequestObject) (ListSegmentMembersResponseObject, error) {
	limit := page.Limit(req.Params.Limit)
	after, err := decodeStringCursor(req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	list, err := s.profiles.Members(ctx, req.TenantId, req.SegmentId, after, limit+1)
	if err != nil {
		return nil, err
	}
	list, next := page.TrimString(list, limit, func(m profiles.SegmentMember) string { return m.ProfileID })
	items := make([]SegmentMember, len(list))
	for i, m := range list {
		items[i] = SegmentMember{ProfileId: m.ProfileID, EnteredAt: m.EnteredAt.UTC()}
	}
	return ListSegmentMembers200JSONResponse{Items: items, NextCursor: next}, nil
}

func (s *Server) RecomputeSegment(ctx context.Context, req RecomputeSegmentRequestObject) (RecomputeSegmentResponseObject, error) {
	st, err := s.profiles.Recompute(ctx, req.TenantId, req.SegmentId, s.queueRecompute)
	if err != nil {
		return nil, err
	}
	rec := auditOf(ctx, req.TenantId, "segment.recompute", "segment", req.SegmentId)
	rec.Outcome = audit.OutcomeAccepted
	if err := s.record(ctx, rec); err != nil {
		return nil, err
	}
	g, err := s.profiles.GetSegment(ctx, req.TenantId, req.SegmentId)
	if err != nil {
		return nil, err
	}
	out, err := toAPISegment(req.TenantId, g, st, nil)
	if err != nil {
		return nil, err
	}
	return RecomputeSegment202JSONResponse{Body: out, Headers: RecomputeSegment202ResponseHeaders{
		ETag: segmentETag(g), Location: segmentURL(req.TenantId, g.ID),
	}}, nil
}

func (s *Server) DeleteSegment(ctx context.Context, req DeleteSegmentRequestObject) (DeleteSegmentResponseObject, error) {
	if err := s.profiles.RemoveSegment(ctx, req.TenantId, req.SegmentId, s.queueRecompute); err != nil {
		return nil, err
	}
	if err := s.record(ctx, auditOf(ctx, req.TenantId, "segment.delete", "segment", req.SegmentId)); err != nil {
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
		return newProblem(http.StatusPreconditionFailed, "precondition-failed", "Precondition failed",
			"The segment changed since the version given in If-Match; read it again.")
	case errors.Is(err, profiles.ErrSegmentsBusy):
		return newProblem(http.StatusConflict, "segments-busy", "Segments busy",
			"The tenant's segments were changed by many other requests at once; try again.")
	}
	return nil
}

// queueRecompute queues a segment's computation job. Segments live in the
// profile store, which shares no transaction with the control-plane
// database: their handlers record each change once it is made (Server.record),
// not with the jobs it queues, of which a change may queue several or none.
func (s *Server) queueRecompute(ctx context.Context, args profiles.RecomputeArgs) error {
	return s.tenants.Enqueue(ctx, audit.Event{}, args)
}
