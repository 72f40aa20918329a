package store

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/cairn-cdp/cairn/internal/provisioner"
	"github.com/cairn-cdp/cairn/internal/rollouts"
)

// The adapters keep a rollout's and a target's fields that no query reads
// as one JSON document (the rollouts table's body, the targets' detail);
// these are those documents, shared so both databases store them alike.

type rolloutBody struct {
	Reason      string                       `json:"reason,omitempty"`
	Selector    rolloutSelector              `json:"selector"`
	Plan        rolloutPlan                  `json:"plan"`
	Templates   map[string]rollouts.Template `json:"templates"`
	Wave        int                          `json:"wave"`
	WaveCount   int                          `json:"wave_count"`
	BakeUntil   time.Time                    `json:"bake_until,omitzero"`
	FailureBase int                          `json:"failure_base,omitempty"`
	CreatedBy   string                       `json:"created_by,omitempty"`
	UpdatedAt   time.Time                    `json:"updated_at"`
}

type rolloutSelector struct {
	Tier      string            `json:"tier,omitempty"`
	Regions   []string          `json:"regions,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	TenantIDs []string          `json:"tenant_ids,omitempty"`
}

type rolloutPlan struct {
	Canary           int   `json:"canary"`
	Waves            []int `json:"waves"`
	BakeSeconds      int64 `json:"bake_seconds"`
	FailureThreshold int   `json:"failure_threshold"`
	MaxInFlight      int   `json:"max_in_flight"`
}

// EncodeRollout returns the stored body of r.
func EncodeRollout(r rollouts.Rollout) ([]byte, error) {
	return json.Marshal(rolloutBody{
		Reason: r.Reason,
		Selector: rolloutSelector{Tier: r.Selector.Tier, Regions: r.Selector.Regions, Labels: r.Selector.Labels,
			TenantIDs: r.Selector.TenantIDs},
		Plan: rolloutPlan{Canary: r.Plan.Canary, Waves: r.Plan.Waves, BakeSeconds: int64(r.Plan.Bake / time.Second),
			FailureThreshold: r.Plan.FailureThreshold, MaxInFlight: r.Plan.MaxInFlight},
		Templates: r.Templates, Wave: r.Wave, WaveCount: r.WaveCount, BakeUntil: r.BakeUntil.UTC(),
		FailureBase: r.FailureBase, CreatedBy: r.CreatedBy, UpdatedAt: r.UpdatedAt.UTC(),
	})
}

// DecodeRollout returns the rollout stored as the columns given and body.
func DecodeRollout(seq int64, id, state string, body []byte, version int64, createdAt, finishedAt time.Time) (rollouts.Rollout, error) {
	var b rolloutBody
	if err := json.Unmarshal(body, &b); err != nil {
		return rollouts.Rollout{}, fmt.Errorf("rollout %s body: %w", id, err)
	}
	return rollouts.Rollout{
		ID: id, State: rollouts.State(state), Reason: b.Reason,
		Selector: rollouts.Selector{Tier: b.Selector.Tier, Regions: b.Selector.Regions, Labels: b.Selector.Labels,
			TenantIDs: b.Selector.TenantIDs},
		Plan: rollouts.Plan{Canary: b.Plan.Canary, Waves: b.Plan.Waves, Bake: time.Duration(b.Plan.BakeSeconds) * time.Second,
			FailureThreshold: b.Plan.FailureThreshold, MaxInFlight: b.Plan.MaxInFlight},
		Templates: b.Templates, Wave: b.Wave, WaveCount: b.WaveCount, BakeUntil: b.BakeUntil,
		FailureBase: b.FailureBase, CreatedBy: b.CreatedBy, Version: version,
		CreatedAt: createdAt.UTC(), UpdatedAt: b.UpdatedAt, FinishedAt: finishedAt, Seq: seq,
	}, nil
}

type targetDetail struct {
	Wave        int                          `json:"wave"`
	Kind        string                       `json:"kind"`
	TenantID    string                       `json:"tenant_id,omitempty"`
	TenantSlug  string                       `json:"tenant_slug,omitempty"`
	FromVersion string                       `json:"from_version"`
	ToVersion   string                       `json:"to_version"`
	ChangeSet   string                       `json:"change_set"`
	Changes     []provisioner.ResourceChange `json:"changes,omitempty"`
	Approved    bool                         `json:"approved"`
	Executed    bool                         `json:"executed"`
	Refusals    int                          `json:"refusals,omitempty"`
	Reason      string                       `json:"reason,omitempty"`
	StartedAt   time.Time                    `json:"started_at,omitzero"`
	FinishedAt  time.Time                    `json:"finished_at,omitzero"`
}

// EncodeTarget returns the stored detail of t.
func EncodeTarget(t rollouts.Target) ([]byte, error) {
	return json.Marshal(targetDetail{
		Wave: t.Wave, Kind: t.Kind, TenantID: t.TenantID, TenantSlug: t.TenantSlug,
		FromVersion: t.FromVersion, ToVersion: t.ToVersion, ChangeSet: t.ChangeSet, Changes: t.Changes,
		Approved: t.Approved, Executed: t.Executed, Refusals: t.Refusals, Reason: t.Reason,
		StartedAt: t.StartedAt.UTC(), FinishedAt: t.FinishedAt.UTC(),
	})
}

// DecodeTarget returns the target stored as the columns given and detail.
func DecodeTarget(rolloutID string, idx int, region, stackName, state string, detail []byte, version int64) (rollouts.Target, error) {
	var d targetDetail
	if err := json.Unmarshal(detail, &d); err != nil {
		return rollouts.Target{}, fmt.Errorf("rollout %s target %d detail: %w", rolloutID, idx, err)
	}
	return rollouts.Target{
		RolloutID: rolloutID, Index: idx, Wave: d.Wave, Kind: d.Kind, TenantID: d.TenantID, TenantSlug: d.TenantSlug,
		Region: region, StackName: stackName, FromVersion: d.FromVersion, ToVersion: d.ToVersion,
		State: rollouts.TargetState(state), ChangeSet: d.ChangeSet, Changes: d.Changes, Approved: d.Approved,
		Executed: d.Executed, Refusals: d.Refusals, Reason: d.Reason, Version: version, StartedAt: d.StartedAt, FinishedAt: d.FinishedAt,
	}, nil
}

// DecodeLabels reads a tenant's stored labels.
func DecodeLabels(b []byte) (map[string]string, error) {
	labels := map[string]string{}
	if len(b) == 0 {
		return labels, nil
	}
	if err := json.Unmarshal(b, &labels); err != nil {
		return nil, fmt.Errorf("tenant labels: %w", err)
	}
	return labels, nil
}
