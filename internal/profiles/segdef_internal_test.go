package profiles

import (
	"encoding/json"
	"testing"
	"time"
)

// A legacy segment's Tree holds exactly when the segment matches, for
// every operator, on a table of trait maps.
func TestSegmentTreeLegacy(t *testing.T) {
	traitMaps := []string{
		`{}`,
		`{"plan":"pro"}`,
		`{"plan":"free","seats":3}`,
		`{"plan":"pro","seats":12,"tags":["beta","vip"],"email":"jane@example.com"}`,
		`{"plan":null,"seats":"12","tags":"vip","signed_up":"2026-03-01T10:00:00Z"}`,
		`{"plan":"enterprise","seats":100,"tags":[],"signed_up":"2025-01-01T00:00:00Z","email":"x@other.org"}`,
	}
	conds := []Condition{
		{Trait: "plan", Operator: OpEquals, Value: "pro"},
		{Trait: "plan", Operator: OpNotEquals, Value: "free"},
		{Trait: "email", Operator: OpExists},
		{Trait: "plan", Operator: OpExists, Value: "ignored"},
		{Trait: "signed_up", Operator: OpNotExists},
		{Trait: "plan", Operator: OpIn, Value: []any{"pro", "enterprise"}},
		{Trait: "plan", Operator: OpIn, Value: "pro"},
		{Trait: "tags", Operator: OpContains, Value: "vip"},
		{Trait: "email", Operator: OpContains, Value: "@example"},
		{Trait: "seats", Operator: OpGreaterThan, Value: 10.0},
		{Trait: "seats", Operator: OpLessThan, Value: json.Number("50")},
		{Trait: "signed_up", Operator: OpGreaterThan, Value: "2026-01-01T00:00:00Z"},
		{Trait: "plan", Operator: OpEquals},
		{Trait: "plan", Operator: "unknown", Value: "pro"},
	}
	var segments []Segment
	for _, match := range []string{"all", "any", ""} {
		segments = append(segments, Segment{Match: match}) // no conditions
		for i := range conds {
			segments = append(segments, Segment{Match: match, Conditions: conds[i : i+1]})
			for j := i + 1; j < len(conds); j += 3 {
				segments = append(segments, Segment{Match: match, Conditions: []Condition{conds[i], conds[j]}})
			}
		}
		segments = append(segments, Segment{Match: match, Conditions: conds})
	}
	now := time.Date(2026, 5, 10, 12, 0, 0, 0, time.UTC)
	holds := 0
	for _, m := range traitMaps {
		var traits map[string]any
		if err := json.Unmarshal([]byte(m), &traits); err != nil {
			t.Fatal(err)
		}
		for _, g := range segments {
			want := g.matches(traits)
			if got := g.Tree().Eval(Facts{Traits: traits}, now); got != want {
				t.Errorf("%s %v on %s: tree %v, segment %v", g.Match, g.Conditions, m, got, want)
			}
			if want {
				holds++
			}
		}
	}
	if total := len(traitMaps) * len(segments); holds == 0 || holds == total {
		t.Fatalf("%d of %d hold: the table tells nothing", holds, total)
	}
}
