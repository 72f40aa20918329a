package httpapi

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/page"
	"github.com/cairn-cdp/cairn/internal/rollouts"
)

// RolloutService is what the rollout routes need.
type RolloutService interface {
	Create(ctx context.Context, p rollouts.CreateParams) (rollouts.Rollout, error)
	Get(ctx context.Context, id string) (rollouts.Rollout, []rollouts.Target, error)
	List(ctx context.Context, beforeSeq int64, limit int) ([]rollouts.Rollout, error)
	Pause(ctx context.Context, rec audit.Event, id string) (rollouts.Rollout, error)
	Resume(ctx context.Context, rec audit.Event, id string) (rollouts.Rollout, error)
	Approve(ctx context.Context, rec audit.Event, id string) (rollouts.Rollout, error)
	Abort(ctx context.Context, rec audit.Event, id string) (rollouts.Rollout, error)
}

var _ RolloutService = (*rollouts.Service)(nil)

// rolloutProblem maps the rollouts package's errors.
func rolloutProblem(err error) *problem {
	var ve *rollouts.ValidationError
	switch {
	case errors.As(err, &ve):
		return badRequest(ve.Field, ve.Reason)
	case errors.Is(err, rollouts.ErrNotFound):
		return newProblem(http.StatusNotFound, "not-found", "Not found", "No rollout has this ID.")
	case errors.Is(err, rollouts.ErrStackBusy):
		return newProblem(http.StatusConflict, "stack-in-rollout", "Stack in another rollout",
			"A selected stack is held by another rollout that is not finished; abort it, wait for it, or narrow the selector.")
	case errors.Is(err, rollouts.ErrNothingToRoll):
		return newProblem(http.StatusUnprocessableEntity, "nothing-to-roll-out", "Nothing to roll out",
			"No selected stack is behind the version of its template that this server carries.")
	case errors.Is(err, rollouts.ErrState):
		return newProblem(http.StatusConflict, "illegal-transition", "Illegal state transition", err.Error()+".")
	}
	return nil
}

func optionalTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func toAPISelector(s rollouts.Selector) RolloutSelector {
	var out RolloutSelector
	if s.Tier != "" {
		tier := RolloutSelectorTier(s.Tier)
		out.Tier = &tier
	}
	if len(s.Regions) > 0 {
		regions := make([]Region, len(s.Regions))
		for i, r := range s.Regions {
			regions[i] = Region(r)
		}
		out.Regions = &regions
	}
	if len(s.Labels) > 0 {
		labels := s.Labels
		out.Labels = &labels
	}
	if len(s.TenantIDs) > 0 {
		ids := make([]TenantID, len(s.TenantIDs))
		copy(ids, s.TenantIDs)
		out.TenantIds = &ids
	}
	return out
}

func toAPIRollout(r rollouts.Rollout) Rollout {
	versions := map[string]string{}
	for kind, t := range r.Templates {
		versions[kind] = t.Version
	}
	counts := map[string]int{}
	for state, n := range r.Counts {
		counts[string(state)] = n
	}
	out := Rollout{
		Id: r.ID, State: RolloutState(r.State), Reason: optional(r.Reason), Selector: toAPISelector(r.Selector),
		TemplateVersions: versions, Canary: r.Plan.Canary, Waves: r.Plan.Waves, BakeSeconds: int(r.Plan.Bake / time.Second),
		FailureThreshold: r.Plan.FailureThreshold, MaxInFlight: r.Plan.MaxInFlight, Wave: r.Wave, WaveCount: r.WaveCount,
		Counts: counts, CreatedBy: optional(r.CreatedBy), CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
		FinishedAt: optionalTime(r.FinishedAt),
	}
	if r.Wave > 0 && !r.BakeUntil.IsZero() {
		out.BakeUntil = optionalTime(r.BakeUntil)
	}
	if out.Waves == nil {
		out.Waves = []int{}
	}
	return out
}

func toAPIRolloutStack(t rollouts.Target) RolloutStack {
	changes := make([]ResourceChange, len(t.Changes))
	for i, c := range t.Changes {
		changes[i] = ResourceChange{Action: c.Action, LogicalId: c.LogicalID, ResourceType: c.ResourceType, Replacement: optional(c.Replacement)}
	}
	out := RolloutStack{
		Index: t.Index, Wave: t.Wave, Kind: RolloutStackKind(t.Kind), Region: Region(t.Region), StackName: t.StackName,
		FromVersion: t.FromVersion, ToVersion: t.ToVersion, State: RolloutStackState(t.State), Changes: changes,
		Reason: optional(t.Reason), StartedAt: optionalTime(t.StartedAt), FinishedAt: optionalTime(t.FinishedAt),
	}
	if t.TenantID != "" {
		id := TenantID(t.TenantID)
		out.TenantId = &id
	}
	if t.State != rollouts.TargetPending {
		out.ChangeSet = optional(t.ChangeSet)
	}
	if t.Approved {
		approved := true
		out.Approved = &approved
	}
	return out
}

func (s *Server) ListRollouts(ctx context.Context, req ListRolloutsRequestObject) (ListRolloutsResponseObject, error) {
	limit := page.Limit(req.Params.Limit)
	var before int64
	if req.Params.Cursor != nil {
		var err error
		if before, err = page.Decode(*req.Params.Cursor); err != nil {
			return nil, err
		}
	}
	list, err := s.rollouts.List(ctx, before, limit+1)
	if err != nil {
		return nil, err
	}
	list, next := page.Trim(list, limit, func(r rollouts.Rollout) int64 { return r.Seq })
	items := make([]Rollout, len(list))
	for i, r := range list {
		items[i] = toAPIRollout(r)
	}
	return ListRollouts200JSONResponse{Items: items, NextCursor: next}, nil
}

func (s *Server) CreateRollout(ctx context.Context, req CreateRolloutRequestObject) (CreateRolloutResponseObject, error) {
	body := req.Body
	p := rollouts.CreateParams{Audit: auditOf(ctx, "", "rollout.create", "rollout", "")}
	if principal, ok := principalFrom(ctx); ok {
		p.CreatedBy = principal.Subject
	}
	if sel := body.Selector; sel != nil {
		if sel.Tier != nil {
			p.Selector.Tier = string(*sel.Tier)
		}
		if sel.Regions != nil {
			for _, r := range *sel.Regions {
				p.Selector.Regions = append(p.Selector.Regions, string(r))
			}
		}
		if sel.Labels != nil {
			p.Selector.Labels = *sel.Labels
		}
		if sel.TenantIds != nil {
			p.Selector.TenantIDs = append(p.Selector.TenantIDs, *sel.TenantIds...)
		}
	}
	if v := body.TemplateVersions; v != nil {
		p.Versions = map[string]string{}
		if v.Dedicated != nil {
			p.Versions[rollouts.KindDedicated] = *v.Dedicated
		}
		if v.Pool != nil {
			p.Versions[rollouts.KindPool] = *v.Pool
		}
	}
	if body.Canary != nil {
		p.Plan.Canary = *body.Canary
	}
	if body.Waves != nil {
		p.Plan.Waves = *body.Waves
	}
	if body.BakeSeconds != nil {
		p.Plan.Bake = time.Duration(*body.BakeSeconds) * time.Second
	}
	if body.FailureThreshold != nil {
		p.Plan.FailureThreshold = *body.FailureThreshold
	}
	if body.MaxInFlight != nil {
		p.Plan.MaxInFlight = *body.MaxInFlight
	}
	r, err := s.rollouts.Create(ctx, p)
	if err != nil {
		return nil, err
	}
	return CreateRollout201JSONResponse{Body: toAPIRollout(r), Headers: CreateRollout201ResponseHeaders{Location: "/v1/rollouts/" + r.ID}}, nil
}

func (s *Server) GetRollout(ctx context.Context, req GetRolloutRequestObject) (GetRolloutResponseObject, error) {
	r, targets, err := s.rollouts.Get(ctx, req.RolloutId)
	if err != nil {
		return nil, err
	}
	base := toAPIRollout(r)
	waves := make([]RolloutWave, r.WaveCount)
	for i := range waves {
		waves[i].Index = i
	}
	stacks := make([]RolloutStack, len(targets))
	for i, t := range targets {
		stacks[i] = toAPIRolloutStack(t)
		if t.Wave < len(waves) {
			w := &waves[t.Wave]
			w.Stacks++
			if t.State.Terminal() {
				w.Done++
			}
			if t.State == rollouts.TargetFailed {
				w.Failed++
			}
		}
	}
	return GetRollout200JSONResponse{
		Id: base.Id, State: base.State, Reason: base.Reason, Selector: base.Selector, TemplateVersions: base.TemplateVersions,
		Canary: base.Canary, Waves: base.Waves, BakeSeconds: base.BakeSeconds, FailureThreshold: base.FailureThreshold,
		MaxInFlight: base.MaxInFlight, Wave: base.Wave, WaveCount: base.WaveCount, BakeUntil: base.BakeUntil,
		Counts: base.Counts, CreatedBy: base.CreatedBy, CreatedAt: base.CreatedAt, UpdatedAt: base.UpdatedAt,
		FinishedAt: base.FinishedAt, WavesDetail: waves, Stacks: stacks,
	}, nil
}

func (s *Server) PauseRollout(ctx context.Context, req PauseRolloutRequestObject) (PauseRolloutResponseObject, error) {
	r, err := s.rollouts.Pause(ctx, auditOf(ctx, "", "rollout.pause", "rollout", req.RolloutId), req.RolloutId)
	if err != nil {
		return nil, err
	}
	return PauseRollout200JSONResponse{RolloutOKJSONResponse(toAPIRollout(r))}, nil
}

func (s *Server) ResumeRollout(ctx context.Context, req ResumeRolloutRequestObject) (ResumeRolloutResponseObject, error) {
	r, err := s.rollouts.Resume(ctx, auditOf(ctx, "", "rollout.resume", "rollout", req.RolloutId), req.RolloutId)
	if err != nil {
		return nil, err
	}
	return ResumeRollout200JSONResponse{RolloutOKJSONResponse(toAPIRollout(r))}, nil
}

func (s *Server) ApproveRollout(ctx context.Context, req ApproveRolloutRequestObject) (ApproveRolloutResponseObject, error) {
	r, err := s.rollouts.Approve(ctx, auditOf(ctx, "", "rollout.approve", "rollout", req.RolloutId), req.RolloutId)
	if err != nil {
		return nil, err
	}
	return ApproveRollout200JSONResponse{RolloutOKJSONResponse(toAPIRollout(r))}, nil
}

func (s *Server) AbortRollout(ctx context.Context, req AbortRolloutRequestObject) (AbortRolloutResponseObject, error) {
	r, err := s.rollouts.Abort(ctx, auditOf(ctx, "", "rollout.abort", "rollout", req.RolloutId), req.RolloutId)
	if err != nil {
		return nil, err
	}
	return AbortRollout200JSONResponse{RolloutOKJSONResponse(toAPIRollout(r))}, nil
}
