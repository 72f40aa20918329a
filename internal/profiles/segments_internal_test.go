package profiles

import (
	"encoding/json"
	"regexp"
	"slices"
	"testing"
	"time"
)

func TestConditionHolds(t *testing.T) {
	var traits map[string]any
	if err := json.Unmarshal([]byte(`{"plan":"pro","seats":12,"tags":["beta","vip"],"signed_up":"2026-03-01T10:00:00Z","nothing":null,"email":"jane@example.com"}`), &traits); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		trait, op string
		value     any
		want      bool
	}{
		{"plan", OpEquals, "pro", true},
		{"plan", OpEquals, "free", false},
		{"seats", OpEquals, 12.0, true},
		{"seats", OpEquals, json.Number("12"), true},
		{"seats", OpEquals, "12", false},
		{"tags", OpEquals, []any{"beta", "vip"}, true},
		{"plan", OpNotEquals, "free", true},
		{"plan", OpNotEquals, "pro", false},
		{"missing", OpNotEquals, "pro", true},
		{"missing", OpEquals, nil, false},
		{"plan", OpExists, nil, true},
		{"missing", OpExists, nil, false},
		{"nothing", OpExists, nil, false},
		{"nothing", OpNotExists, nil, true},
		{"plan", OpNotExists, nil, false},
		{"plan", OpIn, []any{"free", "pro"}, true},
		{"plan", OpIn, []any{"free"}, false},
		{"plan", OpIn, "pro", true},
		{"email", OpContains, "@example.com", true},
		{"email", OpContains, "@other", false},
		{"email", OpContains, 3.0, false},
		{"tags", OpContains, "vip", true},
		{"tags", OpContains, "gold", false},
		{"seats", OpGreaterThan, 10.0, true},
		{"seats", OpGreaterThan, 12.0, false},
		{"seats", OpLessThan, 20.0, true},
		{"seats", OpLessThan, "20", false},
		{"signed_up", OpGreaterThan, "2026-01-01T00:00:00+01:00", true},
		{"signed_up", OpLessThan, "2026-03-01T11:00:00+02:00", false}, // 09:00Z: earlier than the trait
		{"plan", OpGreaterThan, "basic", true},
		{"missing", OpGreaterThan, 0.0, false},
		{"missing", OpLessThan, 0.0, false},
	}
	for _, c := range cases {
		v, ok := traits[c.trait]
		if got := (Condition{Trait: c.trait, Operator: c.op, Value: c.value}).holds(v, ok && v != nil); got != c.want {
			t.Errorf("%s %s %v: %v, want %v", c.trait, c.op, c.value, got, c.want)
		}
	}

	all := Segment{Match: "all", Conditions: []Condition{{Trait: "plan", Operator: OpEquals, Value: "pro"}, {Trait: "seats", Operator: OpGreaterThan, Value: 50.0}}}
	anyOf := all
	anyOf.Match = "any"
	if all.matches(traits) || !anyOf.matches(traits) {
		t.Fatalf("all: %v, any: %v; want false, true", all.matches(traits), anyOf.matches(traits))
	}
}

func TestSegmentIDsSortByTime(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	var ids []string
	for i := range 50 {
		ids = append(ids, newSegmentID(t0.Add(time.Duration(i)*time.Millisecond)))
	}
	if !slices.IsSorted(ids) {
		t.Fatalf("segment IDs do not sort by time: %v", ids)
	}
	alphabet := regexp.MustCompile(`^seg_[a-z2-7]{26}$`) // every ID's alphabet
	for _, id := range ids {
		if !alphabet.MatchString(id) || !isSegmentID(id) {
			t.Fatalf("id %q", id)
		}
	}
}

// TestOldSegmentIDs: segment IDs made before IDs shared one alphabet
// (base32hex) are still segment IDs, in a definition's segment leaf too.
func TestOldSegmentIDs(t *testing.T) {
	old := "seg_06bsd0rr8o4bbumhk9e0afvq7g"
	if !isSegmentID(old) {
		t.Fatalf("%s is no longer a segment ID", old)
	}
	for _, id := range []string{"seg_06bsd0rr8o4bbumhk9e0afvq7", "seg_06bsd0rr8o4bbumhk9e0afvq7G", "sg_06bsd0rr8o4bbumhk9e0afvq7g", "seg_06bsd0rr8o4bbumhk9e0afvq7_"} {
		if isSegmentID(id) {
			t.Errorf("%s taken for a segment ID", id)
		}
	}
	d, err := ParseDefinition([]byte(`{"segment":"`+old+`"}`), "/definition")
	if err != nil || d.Segment == nil || d.Segment.ID != old {
		t.Fatalf("ParseDefinition: %+v, %v", d, err)
	}
}

// The audience finds the leaves an event counts towards through its index
// of event names: exactly those EventLeaf.Matches accepts, as a scan of
// every leaf finds them, named or not, with where conditions or not.
func TestAudienceMatchingLeaves(t *testing.T) {
	defs := []string{
		`{"event":"A"}`,
		`{"event":"A","within":"7d","count":{"operator":"at_least","value":2}}`,
		`{"event":"A","where":[{"property":"total","operator":"gte","value":10}]}`,
		`{"event":"B","where":[{"property":"total","operator":"less_than","value":10}]}`,
		`{"event":"B"}`,
		`{"event_type":"track"}`,
		`{"event_type":"track","where":[{"property":"total","operator":"exists"}]}`,
		`{"event_type":"page"}`,
		`{"event_type":"screen","where":[{"property":"name","operator":"equals","value":"Home"}]}`,
		`{"all":[{"event":"C"},{"trait":"plan","operator":"exists"}]}`,
	}
	var segs []Segment
	for i, d := range defs {
		n, err := ParseDefinition([]byte(d), "/definition")
		if err != nil {
			t.Fatal(d, err)
		}
		segs = append(segs, Segment{ID: "seg_" + string(rune('a'+i)), Name: d, Definition: &n})
	}
	a := newAudience(segs, nil)
	events := []struct {
		typ, name string
		props     map[string]any
	}{
		{"track", "A", nil}, {"track", "A", map[string]any{"total": 12.0}}, {"track", "A", map[string]any{"total": 3.0}},
		{"track", "B", map[string]any{"total": 3.0}}, {"track", "C", nil}, {"track", "D", map[string]any{"total": 1.0}},
		{"page", "", nil}, {"page", "Home", nil}, {"screen", "Home", map[string]any{"name": "Home"}}, {"screen", "", nil},
		{"identify", "", nil}, {"track", "", nil},
	}
	for _, e := range events {
		var want, got []string
		for key, l := range a.leaves {
			if l.Matches(e.typ, e.name, e.props) {
				want = append(want, key)
			}
		}
		a.matching(e.typ, e.name, e.props, func(key string, _ *EventLeaf) bool {
			got = append(got, key)
			return true
		})
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s %q %v: leaves %q, want %q", e.typ, e.name, e.props, got, want)
		}
		ev := Event{Type: e.typ, Name: e.name, Properties: e.props}
		if e.typ == "track" {
			ev.Event, ev.Name = e.name, ""
		}
		if got := a.affects(ev, nil); got != (len(want) > 0) {
			t.Errorf("%s %q %v: affects %v with leaves %q", e.typ, e.name, e.props, got, want)
		}
	}
}
