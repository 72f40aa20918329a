package profiles_test

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/profiles"
)

// defNow is the injected now of every evaluation here.
var defNow = time.Date(2026, 5, 10, 12, 0, 0, 0, time.UTC)

// sid returns a valid segment ID made of one repeated character.
func sid(c string) string { return "seg_" + strings.Repeat(c, 26) }

func parse(t *testing.T, def string) profiles.Node {
	t.Helper()
	n, err := profiles.ParseDefinition([]byte(def), "/definition")
	if err != nil {
		t.Fatalf("%s: %v", def, err)
	}
	return n
}

func jsonMap(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// ago returns the RFC 3339 time d before defNow.
func ago(d time.Duration) string { return defNow.Add(-d).Format(time.RFC3339Nano) }

// Every operator of a trait leaf, including the eight of Condition.
func TestNodeEvalTraitOperators(t *testing.T) {
	traits := jsonMap(t, fmt.Sprintf(`{"plan":"pro","seats":12,"tags":["beta","vip"],"email":"jane@example.com",
		"signed_up":"2026-03-01T10:00:00Z","nothing":null,"last_seen":%q,"next_visit":%q}`, ago(48*time.Hour), ago(-time.Hour)))
	cases := []struct {
		trait, op, value string // value is JSON, "" for none
		want             bool
	}{
		{"plan", "equals", `"pro"`, true},
		{"plan", "equals", `"free"`, false},
		{"seats", "equals", `12.0`, true},
		{"plan", "not_equals", `"free"`, true},
		{"plan", "not_equals", `"pro"`, false},
		{"missing", "not_equals", `"pro"`, true},
		{"email", "exists", ``, true},
		{"nothing", "exists", ``, false},
		{"missing", "exists", ``, false},
		{"missing", "not_exists", ``, true},
		{"nothing", "not_exists", ``, true},
		{"plan", "not_exists", ``, false},
		{"plan", "in", `["free","pro"]`, true},
		{"plan", "in", `["free"]`, false},
		{"seats", "in", `[11, 12]`, true},
		{"tags", "contains", `"vip"`, true},
		{"tags", "contains", `"gold"`, false},
		{"email", "contains", `"@example."`, true},
		{"email", "contains", `"@other."`, false},
		{"seats", "greater_than", `10`, true},
		{"seats", "greater_than", `12`, false},
		{"seats", "less_than", `20`, true},
		{"seats", "less_than", `12`, false},
		{"signed_up", "greater_than", `"2026-03-01T10:59:59+01:00"`, true},
		{"email", "starts_with", `"jane@"`, true},
		{"email", "starts_with", `"john@"`, false},
		{"seats", "starts_with", `"1"`, false},
		{"missing", "starts_with", `""`, false},
		{"seats", "gte", `12`, true},
		{"seats", "gte", `12.5`, false},
		{"seats", "lte", `12`, true},
		{"seats", "lte", `11`, false},
		{"signed_up", "gte", `"2026-03-01T10:00:00Z"`, true},
		{"signed_up", "lte", `"2026-03-01T09:00:00Z"`, false},
		{"plan", "gte", `"pro"`, true},
		{"seats", "gte", `"12"`, false}, // a number and a string do not compare
		{"missing", "lte", `100`, false},
		{"seats", "between", `[10, 12]`, true},
		{"seats", "between", `[12, 20]`, true},
		{"seats", "between", `[13, 20]`, false},
		{"seats", "between", `[1, 11]`, false},
		{"signed_up", "between", `["2026-01-01T00:00:00Z","2026-03-01T10:00:00Z"]`, true},
		{"signed_up", "between", `["2026-03-01T10:00:01Z","2026-12-31T00:00:00Z"]`, false},
		{"plan", "between", `["p","q"]`, true},
		{"signed_up", "older_than", `"30d"`, true},
		{"signed_up", "older_than", `"100d"`, false},
		{"last_seen", "older_than", `"2d"`, true}, // exactly 2d ago: at the edge
		{"last_seen", "older_than", `"49h"`, false},
		{"last_seen", "within", `"2d"`, false}, // exactly 2d ago: out
		{"last_seen", "within", `"49h"`, true},
		{"next_visit", "within", `"1w"`, false}, // the future is not within
		{"next_visit", "older_than", `"1m"`, false},
		{"plan", "within", `"1w"`, false}, // not a time
		{"missing", "older_than", `"1d"`, false},
	}
	for _, c := range cases {
		def := fmt.Sprintf(`{"trait":%q,"operator":%q}`, c.trait, c.op)
		if c.value != "" {
			def = fmt.Sprintf(`{"trait":%q,"operator":%q,"value":%s}`, c.trait, c.op, c.value)
		}
		n := parse(t, def)
		if got := n.Eval(profiles.Facts{Traits: traits}, defNow); got != c.want {
			t.Errorf("%s: %v, want %v", def, got, c.want)
		}
	}
}

// Every operator of a where condition, on dotted paths too: an event
// counts towards a leaf's aggregate only if all of them hold.
func TestNodeEventMatches(t *testing.T) {
	props := jsonMap(t, `{"total":120,"currency":"EUR","coupon":null,"placed":"2026-05-01T00:00:00Z",
		"product":{"sku":"A-1","tags":["x","y"],"dims":{"w":3}}}`)
	cases := []struct {
		where string
		want  bool
	}{
		{`{"property":"currency","operator":"equals","value":"EUR"}`, true},
		{`{"property":"currency","operator":"equals","value":"USD"}`, false},
		{`{"property":"currency","operator":"not_equals","value":"USD"}`, true},
		{`{"property":"product.sku","operator":"not_equals","value":"A-1"}`, false},
		{`{"property":"product.sku","operator":"exists"}`, true},
		{`{"property":"coupon","operator":"exists"}`, false},
		{`{"property":"product.sku.x","operator":"exists"}`, false},
		{`{"property":"product.color","operator":"not_exists"}`, true},
		{`{"property":"product.sku","operator":"in","value":["B-2","A-1"]}`, true},
		{`{"property":"product.sku","operator":"in","value":["B-2"]}`, false},
		{`{"property":"product.tags","operator":"contains","value":"y"}`, true},
		{`{"property":"product.tags","operator":"contains","value":"z"}`, false},
		{`{"property":"total","operator":"greater_than","value":100}`, true},
		{`{"property":"total","operator":"less_than","value":100}`, false},
		{`{"property":"product.sku","operator":"starts_with","value":"A-"}`, true},
		{`{"property":"product.sku","operator":"starts_with","value":"B-"}`, false},
		{`{"property":"total","operator":"gte","value":120}`, true},
		{`{"property":"total","operator":"gte","value":121}`, false},
		{`{"property":"product.dims.w","operator":"lte","value":3}`, true},
		{`{"property":"product.dims.w","operator":"lte","value":2}`, false},
		{`{"property":"total","operator":"between","value":[100,120]}`, true},
		{`{"property":"placed","operator":"between","value":["2026-05-02T00:00:00Z","2026-06-01T00:00:00Z"]}`, false},
		{`{"property":"total","operator":"gte","value":100},{"property":"currency","operator":"equals","value":"EUR"}`, true},
		{`{"property":"total","operator":"gte","value":100},{"property":"currency","operator":"equals","value":"USD"}`, false},
	}
	for _, c := range cases {
		n := parse(t, `{"event":"Order Completed","where":[`+c.where+`]}`)
		if got := n.Event.Matches("track", "Order Completed", props); got != c.want {
			t.Errorf("where %s: %v, want %v", c.where, got, c.want)
		}
	}

	named := parse(t, `{"event":"Order Completed"}`).Event
	typed := parse(t, `{"event_type":"page"}`).Event
	for _, c := range []struct {
		leaf      *profiles.EventLeaf
		typ, name string
		want      bool
	}{
		{named, "track", "Order Completed", true},
		{named, "track", "Order Started", false},
		{named, "page", "Order Completed", false},
		{typed, "page", "Pricing", true},
		{typed, "page", "", true},
		{typed, "screen", "Pricing", false},
	} {
		if got := c.leaf.Matches(c.typ, c.name, nil); got != c.want {
			t.Errorf("%s matching %s %q: %v, want %v", c.leaf.Key(), c.typ, c.name, got, c.want)
		}
	}
}

// Nesting (6 levels here), not, any and all, identifiers and segment
// references combine as boolean logic.
func TestNodeEvalTree(t *testing.T) {
	other := sid("a")
	n := parse(t, `{"all":[
		{"any":[{"trait":"plan","operator":"equals","value":"pro"},{"identifier":"email"}]},
		{"not":{"segment":"`+other+`"}},
		{"all":[{"any":[{"not":{"all":[{"trait":"seats","operator":"lte","value":5}]}},{"identifier":"phone","operator":"not_exists"}]}]}
	]}`)
	cases := []struct {
		name  string
		facts profiles.Facts
		want  bool
	}{
		{"pro, many seats", profiles.Facts{Traits: map[string]any{"plan": "pro", "seats": 10.0}}, true},
		{"free, email", profiles.Facts{Traits: map[string]any{"plan": "free", "seats": 10.0}, Identifiers: map[string]bool{"email": true}}, true},
		{"free, no email", profiles.Facts{Traits: map[string]any{"plan": "free", "seats": 10.0}, Identifiers: map[string]bool{"phone": true}}, false},
		{"member of the other", profiles.Facts{Traits: map[string]any{"plan": "pro", "seats": 10.0}, Segments: map[string]bool{other: true}}, false},
		{"member of another one", profiles.Facts{Traits: map[string]any{"plan": "pro", "seats": 10.0}, Segments: map[string]bool{sid("b"): true}}, true},
		{"few seats, no phone", profiles.Facts{Traits: map[string]any{"plan": "pro", "seats": 2.0}}, true},
		{"few seats, a phone", profiles.Facts{Traits: map[string]any{"plan": "pro", "seats": 2.0}, Identifiers: map[string]bool{"phone": true}}, false},
		{"no seats, a phone", profiles.Facts{Traits: map[string]any{"plan": "pro"}, Identifiers: map[string]bool{"phone": true}}, true},
		{"nothing", profiles.Facts{}, false},
	}
	for _, c := range cases {
		if got := n.Eval(c.facts, defNow); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	if got := (profiles.Node{}).Eval(profiles.Facts{}, defNow); got {
		t.Error("an empty node holds")
	}
}

// aggregate counts events at the given times before defNow, keeping all.
func aggregate(ago ...time.Duration) *profiles.EventAggregate {
	a := &profiles.EventAggregate{}
	for _, d := range ago {
		a.Add(defNow.Add(-d), defNow, 0)
	}
	return a
}

// times returns n durations ago from start on, a minute apart (older).
func times(n int, start time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = start + time.Duration(i)*time.Minute
	}
	return out
}

// Event leaves count events in windows ending at the injected now, in
// between ranges and over all time.
func TestNodeEvalEvents(t *testing.T) {
	const day = 24 * time.Hour
	at := func(s string) time.Duration {
		ts, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return defNow.Sub(ts)
	}
	// Ten events early on May 3 (before the 7d window opening at 12:00),
	// and RecentCap inside it: Recent is full and cannot see the ten.
	crowded := aggregate(append(times(10, at("2026-05-03T06:00:00Z")), times(profiles.RecentCap, day)...)...)
	spilled := aggregate(append(append(times(10, 3*day), day+time.Hour), times(63, time.Hour)...)...)
	// partial counts forgotten events, forgets their times (as for a leaf
	// no window counted), then counts added ones.
	partial := func(forgotten []time.Duration, added ...time.Duration) *profiles.EventAggregate {
		a := aggregate(forgotten...)
		a.DropRecent()
		for _, d := range added {
			a.Add(defNow.Add(-d), defNow, 0)
		}
		return a
	}
	merged := func(a, b *profiles.EventAggregate) *profiles.EventAggregate {
		a.Merge(b)
		return a
	}
	cases := []struct {
		name string
		leaf string // members beside "event":"Order Completed"
		agg  *profiles.EventAggregate
		want bool
	}{
		{"6d23h ago within 7d", `"within":"7d"`, aggregate(6*day + 23*time.Hour), true},
		{"7d1m ago within 7d", `"within":"7d"`, aggregate(7*day + time.Minute), false},
		{"7d ago within 7d", `"within":"7d"`, aggregate(7 * day), false},
		{"7d-1ms ago within 7d", `"within":"7d"`, aggregate(7*day - time.Millisecond), true},
		{"now within 7d", `"within":"7d"`, aggregate(0), true},
		{"in an hour within 7d", `"within":"7d"`, aggregate(-time.Hour), false},
		{"within 168h", `"within":"168h"`, aggregate(6*day + 23*time.Hour), true},
		{"within 1w", `"within":"1w"`, aggregate(7*day + time.Minute), false},
		{"within 90m", `"within":"90m"`, aggregate(89 * time.Minute), true},
		{"no aggregate", ``, nil, false},
		{"ever", ``, aggregate(900 * day), true},
		{"3 ever", `"count":{"operator":"at_least","value":3}`, aggregate(900*day, 400*day, time.Hour), true},
		{"4 ever", `"count":{"operator":"at_least","value":4}`, aggregate(900*day, 400*day, time.Hour), false},
		{"exactly 0, no aggregate", `"count":{"operator":"exactly","value":0}`, nil, true},
		{"exactly 0 within 7d, old event", `"count":{"operator":"exactly","value":0},"within":"7d"`, aggregate(8 * day), true},
		{"exactly 0 within 7d, an event", `"count":{"operator":"exactly","value":0},"within":"7d"`, aggregate(day), false},
		{"exactly 2 within 7d", `"count":{"operator":"exactly","value":2},"within":"7d"`, aggregate(day, 2*day, 8*day), true},
		{"exactly 2 within 7d, 3", `"count":{"operator":"exactly","value":2},"within":"7d"`, aggregate(day, 2*day, 3*day), false},
		{"at_most 2 within 7d, 2", `"count":{"operator":"at_most","value":2},"within":"7d"`, aggregate(day, 2*day, 8*day), true},
		{"at_most 2 within 7d, 3", `"count":{"operator":"at_most","value":2},"within":"7d"`, aggregate(day, 2*day, 3*day), false},
		{"at_most 0, none", `"count":{"operator":"at_most","value":0}`, &profiles.EventAggregate{}, true},
		{"between, both edges", `"between":["2026-01-01T00:00:00Z","2026-02-01T00:00:00Z"],"count":{"operator":"at_least","value":2}`,
			aggregate(at("2026-01-01T00:00:00Z"), at("2026-01-31T23:59:59Z")), true},
		{"between, end excluded", `"between":["2026-01-01T00:00:00Z","2026-02-01T00:00:00Z"],"count":{"operator":"at_least","value":2}`,
			aggregate(at("2026-01-15T00:00:00Z"), at("2026-02-01T00:00:00Z")), false},
		{"between, before start", `"between":["2026-01-01T00:00:00Z","2026-02-01T00:00:00Z"],"count":{"operator":"at_least","value":2}`,
			aggregate(at("2026-01-15T00:00:00Z"), at("2025-12-31T23:59:59Z")), false},
		{"between, none", `"between":["2026-01-01T00:00:00Z","2026-02-01T00:00:00Z"],"count":{"operator":"exactly","value":0}`,
			aggregate(at("2026-02-15T00:00:00Z")), true},
		{"between, not yet", `"between":["2026-05-10T00:00:00Z","2026-05-11T00:00:00Z"]`,
			aggregate(-time.Hour), false},
		// Recent full: decided by it where it can, else by whole days.
		{"full, at_least 64 by Recent", `"within":"7d","count":{"operator":"at_least","value":64}`, crowded, true},
		{"full, at_most 63 by Recent", `"within":"7d","count":{"operator":"at_most","value":63}`, crowded, false},
		{"full, at_least 74 by days", `"within":"7d","count":{"operator":"at_least","value":74}`, crowded, true},
		{"full, at_least 75 by days", `"within":"7d","count":{"operator":"at_least","value":75}`, crowded, false},
		{"full, exactly 64 by days", `"within":"7d","count":{"operator":"exactly","value":64}`, crowded, false},
		// Recent full, but its oldest is before the window: exact, where
		// whole days (May 9 and 10) would count the one before too.
		{"full, exact by Recent", `"within":"1d","count":{"operator":"exactly","value":63}`, spilled, true},
		{"full, exact by Recent, not more", `"within":"1d","count":{"operator":"at_least","value":64}`, spilled, false},
		// Times forgotten: exact once the window starts after the newest
		// forgotten; an event that comes late, older than that, or a
		// merge does not make it so.
		{"partial, forgotten before the window", `"within":"1d","count":{"operator":"exactly","value":1}`, partial([]time.Duration{25 * time.Hour}, time.Hour), true},
		{"partial, forgotten in the window", `"within":"1d","count":{"operator":"exactly","value":2}`, partial([]time.Duration{2 * time.Hour}, time.Hour), true},
		{"partial, late event", `"within":"7d"`, partial([]time.Duration{time.Hour}, 10*day), true},
		{"partial, late event, none in the window", `"within":"7d","count":{"operator":"exactly","value":0}`, partial([]time.Duration{time.Hour}, 10*day), false},
		{"merged with a partial", `"within":"7d"`, merged(aggregate(10*day), partial([]time.Duration{time.Hour})), true},
		// Stored before Dropped was kept: by days while Recent's oldest is
		// in the window.
		{"partial, stored without Dropped", `"within":"1d","count":{"operator":"exactly","value":1}`,
			&profiles.EventAggregate{Days: map[string]int{"2026-05-09": 1, "2026-05-10": 1}, Recent: []int64{defNow.Add(-time.Hour).UnixMilli()}, Partial: true}, false},
	}
	for _, c := range cases {
		def := `{"event":"Order Completed"}`
		if c.leaf != "" {
			def = `{"event":"Order Completed",` + c.leaf + `}`
		}
		n := parse(t, def)
		f := profiles.Facts{Events: map[string]*profiles.EventAggregate{}}
		if c.agg != nil {
			f.Events[n.Event.Key()] = c.agg
		}
		if got := n.Eval(f, defNow); got != c.want {
			t.Errorf("%s: %s: %v, want %v", c.name, def, got, c.want)
		}
	}
}

// NextChange names the instant the answer flips as time passes, never
// later: just before it the answer is now's, at it the other.
// A window's count from Recent is each event in the window once, at its
// edges too, whatever the times: checked against a plain count.
func TestEventLeafCountsRecent(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const day = 24 * time.Hour
	for i := range 500 {
		var ago []time.Duration
		for range rng.IntN(profiles.RecentCap) {
			// Whole minutes and days now and then, to land on the edges.
			d := time.Duration(rng.Int64N(int64(9*day))) - time.Hour
			if rng.IntN(4) == 0 {
				d = d.Truncate(day)
			}
			ago = append(ago, d)
		}
		within := []string{"1d", "7d", "90m"}[rng.IntN(3)]
		w, _ := profiles.ParseDuration(within)
		inside := 0
		for _, d := range ago {
			if ts := defNow.Add(-d).Truncate(time.Millisecond); ts.After(defNow.Add(-w)) && !ts.After(defNow) {
				inside++
			}
		}
		n := rng.IntN(6)
		leaf := parse(t, fmt.Sprintf(`{"event":"A","within":%q,"count":{"operator":"exactly","value":%d}}`, within, n))
		var e *profiles.EventLeaf
		leaf.Walk(func(m profiles.Node) { e = cmp.Or(m.Event, e) })
		if got := e.Eval(aggregate(ago...), defNow); got != (inside == n) {
			t.Fatalf("case %d: exactly %d within %s of %v: %v, but %d are inside", i, n, within, ago, got, inside)
		}
	}
}

// A lone "at least n within" leaf's next change, told from the nth newest
// event (or, when Recent is full, scanned only from the instant that
// event leaves), is the one the scan of every instant finds (the leaf in
// an "all" of its own takes the whole scan).
func TestEventLeafNextChange(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const day = 24 * time.Hour
	for i := range 1000 {
		var ago []time.Duration
		events := rng.IntN(profiles.RecentCap + 4)
		if i%2 == 1 {
			events = profiles.RecentCap + rng.IntN(profiles.RecentCap) // Recent full
		}
		for range events {
			d := time.Duration(rng.Int64N(int64(9*day))) - time.Hour/4
			if rng.IntN(4) == 0 {
				d = d.Truncate(time.Hour)
			}
			ago = append(ago, d)
		}
		leaf := fmt.Sprintf(`{"event":"A","within":%q,"count":{"operator":"at_least","value":%d}}`, []string{"1d", "7d", "90m"}[rng.IntN(3)], rng.IntN(8))
		facts := profiles.Facts{Events: map[string]*profiles.EventAggregate{}}
		var e *profiles.EventLeaf
		parse(t, leaf).Walk(func(m profiles.Node) { e = cmp.Or(m.Event, e) })
		facts.Events[e.Key()] = aggregate(ago...)
		fast := parse(t, leaf).NextChange(facts, defNow)
		scan := parse(t, `{"all":[`+leaf+`]}`).NextChange(facts, defNow)
		if !fast.Equal(scan) {
			t.Fatalf("case %d: %s over %v: next change %v, the scan finds %v", i, leaf, ago, fast, scan)
		}
	}
}

func TestNodeNextChange(t *testing.T) {
	const day = 24 * time.Hour
	event := func(def string, agg *profiles.EventAggregate) (profiles.Node, profiles.Facts) {
		n := parse(t, def)
		var e *profiles.EventLeaf
		n.Walk(func(m profiles.Node) {
			if m.Event != nil {
				e = m.Event
			}
		})
		return n, profiles.Facts{Events: map[string]*profiles.EventAggregate{e.Key(): agg}}
	}
	traits := func(def string, traits string) (profiles.Node, profiles.Facts) {
		return parse(t, def), profiles.Facts{Traits: jsonMap(t, traits)}
	}
	type tc struct {
		name  string
		node  profiles.Node
		facts profiles.Facts
		want  time.Time // zero: none
	}
	var cases []tc
	add := func(name string, n profiles.Node, f profiles.Facts, want time.Time) {
		cases = append(cases, tc{name, n, f, want})
	}
	three := aggregate(day, 3*day, 5*day)
	n, f := event(`{"event":"A","within":"7d","count":{"operator":"at_least","value":3}}`, three)
	add("at_least 3 of 3 within 7d: the oldest leaves", n, f, defNow.Add(-5*day).Add(7*day))
	n, f = event(`{"event":"A","within":"7d"}`, three)
	add("at_least 1 of 3 within 7d: the newest leaves", n, f, defNow.Add(-day).Add(7*day))
	n, f = event(`{"not":{"event":"A","within":"7d"}}`, three)
	add("not at_least 1", n, f, defNow.Add(6*day))
	n, f = event(`{"event":"A","within":"7d","count":{"operator":"at_most","value":1}}`, three)
	add("at_most 1 of 3", n, f, defNow.Add(4*day))
	n, f = event(`{"event":"A","within":"7d","count":{"operator":"at_least","value":4}}`, three)
	add("at_least 4 of 3: never", n, f, time.Time{})
	n, f = event(`{"event":"A","within":"1d"}`, aggregate(-time.Hour))
	add("a future event enters", n, f, defNow.Add(time.Hour))
	n, f = event(`{"event":"A"}`, three)
	add("all time", n, f, time.Time{})
	n, f = event(`{"event":"A","between":["2026-05-01T00:00:00Z","2026-05-11T00:00:00Z"]}`, aggregate(-2*time.Hour))
	add("between, a future event inside", n, f, defNow.Add(2*time.Hour))
	crowded := aggregate(append(times(10, defNow.Sub(time.Date(2026, 5, 3, 6, 0, 0, 0, time.UTC))), times(profiles.RecentCap, day)...)...)
	n, f = event(`{"event":"A","within":"7d","count":{"operator":"at_least","value":70}}`, crowded)
	add("counted by days: May 3 leaves", n, f, time.Date(2026, 5, 11, 0, 0, 0, 0, time.UTC).Add(-time.Millisecond))
	n, f = traits(`{"trait":"signed_up","operator":"older_than","value":"30d"}`, `{"signed_up":"`+ago(20*day)+`"}`)
	add("older_than", n, f, defNow.Add(10*day))
	n, f = traits(`{"trait":"seen","operator":"within","value":"3d"}`, `{"seen":"`+ago(2*day)+`"}`)
	add("within leaves", n, f, defNow.Add(day))
	n, f = traits(`{"trait":"seen","operator":"within","value":"3d"}`, `{"seen":"`+ago(-2*time.Hour)+`"}`)
	add("within enters", n, f, defNow.Add(2*time.Hour))
	n, f = traits(`{"trait":"seen","operator":"older_than","value":"3d"}`, `{"seen":"`+ago(4*day)+`"}`)
	add("older_than already", n, f, time.Time{})
	n, f = traits(`{"trait":"plan","operator":"equals","value":"pro"}`, `{"plan":"pro"}`)
	add("no time", n, f, time.Time{})
	n, f = traits(`{"all":[{"trait":"a","operator":"within","value":"1d"},{"trait":"b","operator":"older_than","value":"1d"}]}`,
		`{"a":"`+ago(time.Hour)+`","b":"`+ago(2*time.Hour)+`"}`)
	add("an all waits for both", n, f, defNow.Add(22*time.Hour))
	n, f = traits(`{"any":[{"trait":"a","operator":"within","value":"1d"},{"trait":"b","operator":"within","value":"2d"}]}`,
		`{"a":"`+ago(time.Hour)+`","b":"`+ago(2*time.Hour)+`"}`)
	add("an any until the last leaves", n, f, defNow.Add(46*time.Hour))

	n, f = event(`{"any":[{"event":"A","within":"7d","count":{"operator":"at_least","value":3}},{"trait":"seen","operator":"within","value":"3d"}]}`, three)
	f.Traits = jsonMap(t, `{"seen":"`+ago(2*day)+`"}`)
	add("an event and a trait: the trait leaves first, the events hold", n, f, defNow.Add(2*day))

	for _, c := range cases {
		got := c.node.NextChange(c.facts, defNow)
		if !got.Equal(c.want) {
			t.Errorf("%s: next change %v, want %v", c.name, got, c.want)
			continue
		}
		// Facts that memoize the leaves' times answer alike, the second
		// time from the memo, and with until only before it.
		memo := profiles.NewFacts()
		maps.Copy(memo.Events, c.facts.Events)
		maps.Copy(memo.Traits, c.facts.Traits)
		for range 2 {
			if again := c.node.NextChange(memo, defNow); !again.Equal(got) {
				t.Errorf("%s: memoized next change %v, want %v", c.name, again, got)
			}
		}
		if !got.IsZero() {
			if before := c.node.NextChangeBefore(memo, defNow, got); !before.IsZero() {
				t.Errorf("%s: next change before %v is %v, want none", c.name, got, before)
			}
			if before := c.node.NextChangeBefore(memo, defNow, got.Add(time.Millisecond)); !before.Equal(got) {
				t.Errorf("%s: next change before %v is %v, want %v", c.name, got.Add(time.Millisecond), before, got)
			}
		}
		if got.IsZero() {
			continue
		}
		was := c.node.Eval(c.facts, defNow)
		if c.node.Eval(c.facts, got.Add(-time.Nanosecond)) != was {
			t.Errorf("%s: the answer changed before %v", c.name, got)
		}
		if c.node.Eval(c.facts, got) == was {
			t.Errorf("%s: the answer did not change at %v", c.name, got)
		}
	}
}

// ParseDefinition names the offending node or member with its JSON Pointer.
func TestDefParseErrors(t *testing.T) {
	leaf := `{"trait":"plan","operator":"exists"}`
	nest := func(n int) string { return strings.Repeat(`{"not":`, n) + leaf + strings.Repeat(`}`, n) }
	leaves := func(n int) string { return strings.TrimSuffix(strings.Repeat(leaf+",", n), ",") }
	ev := func(members string) string { return `{"event":"Order Completed",` + members + `}` }
	cases := []struct {
		name, def, field string
	}{
		{"depth 11", nest(10), "/definition" + strings.Repeat("/not", 10)},
		{"101 nodes", `{"all":[{"any":[` + leaves(50) + `]},{"any":[` + leaves(48) + `]}]}`, "/definition/all/1/any/47"},
		{"not an object", `[]`, "/definition"},
		{"null", `null`, "/definition"},
		{"not JSON", `{"all":`, "/definition"},
		{"a member twice", `{"trait":"a","trait":"b","operator":"exists"}`, "/definition"},
		{"unknown member", `{"all":[` + leaf + `,{"trait":"a","operator":"exists","foo":1}]}`, "/definition/all/1/foo"},
		{"unknown member escaped", `{"a/b~":1}`, "/definition/a~1b~0"},
		{"two kinds", `{"trait":"a","operator":"exists","segment":"` + sid("a") + `"}`, "/definition"},
		{"event and event_type", `{"event":"A","event_type":"track"}`, "/definition"},
		{"no kind", `{"operator":"exists"}`, "/definition"},
		{"empty node", `{"any":[{}]}`, "/definition/any/0"},
		{"member of another kind", `{"segment":"` + sid("a") + `","operator":"exists"}`, "/definition/operator"},
		{"value on an all", `{"all":[` + leaf + `],"value":1}`, "/definition/value"},
		{"empty all", `{"all":[]}`, "/definition/all"},
		{"51 children", `{"any":[` + leaves(51) + `]}`, "/definition/any"},
		{"all not a list", `{"all":{}}`, "/definition/all"},
		{"not null", `{"not":null}`, "/definition/not"},
		{"unknown operator", `{"trait":"a","operator":"matches","value":"x"}`, "/definition/operator"},
		{"no operator", `{"trait":"a"}`, "/definition/operator"},
		{"empty trait", `{"trait":"","operator":"exists"}`, "/definition/trait"},
		{"exists with a value", `{"trait":"a","operator":"exists","value":1}`, "/definition/value"},
		{"equals without a value", `{"trait":"a","operator":"equals"}`, "/definition/value"},
		{"equals null", `{"trait":"a","operator":"equals","value":null}`, "/definition/value"},
		{"in not a list", `{"trait":"a","operator":"in","value":"x"}`, "/definition/value"},
		{"in empty", `{"trait":"a","operator":"in","value":[]}`, "/definition/value"},
		{"starts_with a number", `{"trait":"a","operator":"starts_with","value":1}`, "/definition/value"},
		{"gte an object", `{"trait":"a","operator":"gte","value":{}}`, "/definition/value"},
		{"between one", `{"trait":"a","operator":"between","value":[1]}`, "/definition/value"},
		{"between three", `{"trait":"a","operator":"between","value":[1,2,3]}`, "/definition/value"},
		{"between a scalar", `{"trait":"a","operator":"between","value":1}`, "/definition/value"},
		{"between mixed", `{"trait":"a","operator":"between","value":[1,"9"]}`, "/definition/value"},
		{"between high below low", `{"trait":"a","operator":"between","value":[5,1]}`, "/definition/value"},
		{"older_than bad", `{"trait":"a","operator":"older_than","value":"30 days"}`, "/definition/value"},
		{"within a number", `{"trait":"a","operator":"within","value":30}`, "/definition/value"},
		{"identifier operator", `{"identifier":"email","operator":"equals"}`, "/definition/operator"},
		{"identifier empty", `{"identifier":""}`, "/definition/identifier"},
		{"segment ID", `{"segment":"seg_x"}`, "/definition/segment"},
		{"segment ID case", `{"segment":"` + strings.ToUpper(sid("a")) + `"}`, "/definition/segment"},
		{"event empty", `{"event":""}`, "/definition/event"},
		{"event_type", `{"event_type":"click"}`, "/definition/event_type"},
		{"duration leading zero", ev(`"within":"07d"`), "/definition/within"},
		{"duration zero", ev(`"within":"0d"`), "/definition/within"},
		{"duration unit", ev(`"within":"1y"`), "/definition/within"},
		{"duration 6 digits", ev(`"within":"100000m"`), "/definition/within"},
		{"duration 3651d", ev(`"within":"3651d"`), "/definition/within"},
		{"duration 522w", ev(`"within":"522w"`), "/definition/within"},
		{"duration a number", ev(`"within":7`), "/definition/within"},
		{"duration space", ev(`"within":" 7d"`), "/definition/within"},
		{"count too big", ev(`"count":{"operator":"at_least","value":1001}`), "/definition/count/value"},
		{"count negative", ev(`"count":{"operator":"at_least","value":-1}`), "/definition/count/value"},
		{"count fraction", ev(`"count":{"operator":"at_least","value":1.5}`), "/definition/count/value"},
		{"count string", ev(`"count":{"operator":"at_least","value":"3"}`), "/definition/count/value"},
		{"count null", ev(`"count":{"operator":"at_least","value":null}`), "/definition/count/value"},
		{"count no value", ev(`"count":{"operator":"at_least"}`), "/definition/count/value"},
		{"count operator", ev(`"count":{"operator":"more_than","value":1}`), "/definition/count/operator"},
		{"count member", ev(`"count":{"operator":"at_least","value":1,"per":"day"}`), "/definition/count/per"},
		{"count not an object", ev(`"count":3`), "/definition/count"},
		{"within and between", ev(`"within":"7d","between":["2026-01-01T00:00:00Z","2026-02-01T00:00:00Z"]`), "/definition/between"},
		{"between start after end", ev(`"between":["2026-02-01T00:00:00Z","2026-01-01T00:00:00Z"]`), "/definition/between"},
		{"between start at end", ev(`"between":["2026-01-01T00:00:00Z","2026-01-01T01:00:00+01:00"]`), "/definition/between"},
		{"between one time", ev(`"between":["2026-01-01T00:00:00Z"]`), "/definition/between"},
		{"between not a list", ev(`"between":"2026-01-01T00:00:00Z"`), "/definition/between"},
		{"between bad time", ev(`"between":["2026-01-01T00:00:00Z","2026-02-01"]`), "/definition/between/1"},
		{"where empty", ev(`"where":[]`), "/definition/where"},
		{"where relative", ev(`"where":[{"property":"t","operator":"exists"},{"property":"t","operator":"within","value":"1d"}]`), "/definition/where/1/operator"},
		{"where path", ev(`"where":[{"property":"product..sku","operator":"exists"}]`), "/definition/where/0/property"},
		{"where member", ev(`"where":[{"property":"a","operator":"exists","trait":"b"}]`), "/definition/where/0/trait"},
		{"where value", ev(`"where":[{"property":"a","operator":"gte","value":[1]}]`), "/definition/where/0/value"},
		{"where not an object", ev(`"where":["a"]`), "/definition/where/0"},
		{"deep pointer", `{"all":[` + leaf + `,` + leaf + `,{"any":[` + leaf + `,` + ev(`"within":"7x"`) + `]}]}`, "/definition/all/2/any/1/within"},
		{"too big", `{"trait":"` + strings.Repeat("a", profiles.MaxDefinitionBytes) + `","operator":"exists"}`, "/definition"},
	}
	for _, c := range cases {
		_, err := profiles.ParseDefinition([]byte(c.def), "/definition")
		var ve *profiles.ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("%s: error %v, want a *ValidationError", c.name, err)
			continue
		}
		if ve.Field != c.field || ve.Reason == "" {
			t.Errorf("%s: %q: %s, want the field %q", c.name, ve.Field, ve.Reason, c.field)
		}
	}
}

// The limits themselves are accepted, and a valid definition survives a
// round trip through its JSON.
func TestDefParseValid(t *testing.T) {
	leaf := `{"trait":"plan","operator":"exists"}`
	leaves := func(n int) string { return strings.TrimSuffix(strings.Repeat(leaf+",", n), ",") }
	defs := []string{
		strings.Repeat(`{"not":`, 9) + leaf + strings.Repeat(`}`, 9),              // depth 10
		`{"all":[{"any":[` + leaves(50) + `]},{"any":[` + leaves(47) + `]}]}`,     // 100 nodes
		`{"event":"Order Completed","within":"3650d"}`,                            // the longest window
		`{"event":"Order Completed","within":"521w"}`,                             // 3647 days
		`{"event":"Order Completed","count":{"operator":"exactly","value":0}}`,    // never did it
		`{"event":"Order Completed","count":{"operator":"at_most","value":1000}}`, // the largest count
		`{"identifier":"email","operator":"not_exists"}`,                          // operator given
		`{"trait":"seats","operator":"between","value":[1,1]}`,                    // low = high
		`{"event_type":"screen","where":[{"property":"a.b.c","operator":"in","value":[1,"x",true]}]}`,
		`{"all":[{"any":[{"not":{"identifier":"email"}},{"segment":"` + sid("v") + `"}]},` +
			`{"event":"Order Completed","where":[{"property":"total","operator":"gte","value":100},{"property":"meta","operator":"equals","value":{"b":[1,{"c":null}],"a":false}}],` +
			`"count":{"operator":"at_least","value":2},"between":["2026-01-01T00:00:00+01:00","2026-02-01T00:00:00.5Z"]},` +
			`{"trait":"last_seen","operator":"within","value":"90m"}]}`,
	}
	for _, def := range defs {
		n := parse(t, def)
		b, err := json.Marshal(n)
		if err != nil {
			t.Errorf("%s: marshal: %v", def, err)
			continue
		}
		again := parse(t, string(b))
		if !reflect.DeepEqual(n, again) {
			t.Errorf("%s: round trip through %s changed it", def, b)
		}
		var viaUnmarshal profiles.Node
		if err := json.Unmarshal([]byte(def), &viaUnmarshal); err != nil || !reflect.DeepEqual(n, viaUnmarshal) {
			t.Errorf("%s: json.Unmarshal: %v", def, err)
		}
	}
	if _, err := json.Marshal(profiles.Node{}); err == nil {
		t.Error("an empty node marshals")
	}
	b, _ := json.Marshal(profiles.Node{Event: &profiles.EventLeaf{Event: "A", EventType: "track", Within: "7d"}})
	if string(b) != `{"event":"A","within":"7d"}` {
		t.Errorf("event leaf JSON %s", b)
	}
}

// Key is one for leaves that count the same events, whatever they count
// and over what time, and differs for leaves that count others.
func TestDefKey(t *testing.T) {
	key := func(def string) string { t.Helper(); return parse(t, def).Event.Key() }
	w := func(conds string) string { return `{"event":"Order Completed","where":[` + conds + `]}` }
	a := `{"property":"total","operator":"gte","value":100}`
	b := `{"property":"meta","operator":"equals","value":{"x":1,"y":[1,2]}}`
	bSwapped := `{"value":{"y":[1,2],"x":1.0},"operator":"equals","property":"meta"}`
	same := [][2]string{
		{`{"event":"Order Completed"}`, `{"event":"Order Completed","within":"7d","count":{"operator":"exactly","value":0}}`},
		{w(a + "," + b), w(b + "," + a)},
		{w(b), w(bSwapped)},
		{w(`{"property":"total","operator":"gte","value":100}`), w(`{"property":"total","operator":"gte","value":100.0}`)},
	}
	for _, p := range same {
		if k1, k2 := key(p[0]), key(p[1]); k1 != k2 {
			t.Errorf("%s: %s, %s: %s, want one key", p[0], k1, p[1], k2)
		}
	}
	different := [][2]string{
		{`{"event":"Order Completed"}`, w(a)},
		{w(a), w(`{"property":"total","operator":"gte","value":101}`)},
		{w(a), w(`{"property":"total","operator":"lte","value":100}`)},
		{w(a), w(a + "," + b)},
		{`{"event":"Order Completed"}`, `{"event":"Order completed"}`},
		{`{"event":"Order Completed"}`, `{"event_type":"track"}`},
		{`{"event_type":"page"}`, `{"event_type":"screen"}`},
		{`{"event":"A#` + strings.Repeat("0", 16) + `"}`, `{"event":"A","where":[` + a + `]}`},
	}
	for _, p := range different {
		if k1, k2 := key(p[0]), key(p[1]); k1 == k2 {
			t.Errorf("%s and %s share the key %s", p[0], p[1], k1)
		}
	}
	for def, want := range map[string]string{
		`{"event":"Order Completed"}`: "track:Order Completed",
		`{"event_type":"page"}`:       "page",
		`{"event":"50% #1"}`:          "track:50%25 %231",
	} {
		if got := key(def); got != want {
			t.Errorf("%s: key %q, want %q", def, got, want)
		}
	}
	if k := key(w(a)); !strings.HasPrefix(k, "track:Order Completed#") || len(k) != len("track:Order Completed#")+16 {
		t.Errorf("key with where %q", k)
	}
}

// Refs say what a definition reads, each once.
func TestNodeRefs(t *testing.T) {
	n := parse(t, `{"all":[
		{"trait":"plan","operator":"equals","value":"pro"},
		{"not":{"trait":"plan","operator":"exists"}},
		{"identifier":"email"},{"identifier":"email","operator":"not_exists"},
		{"segment":"`+sid("a")+`"},{"segment":"`+sid("a")+`"},{"segment":"`+sid("b")+`"},
		{"event":"A","within":"7d"},{"event":"A","within":"30d","count":{"operator":"at_most","value":3}},
		{"event":"A","between":["2026-01-01T00:00:00Z","2026-02-01T00:00:00Z"]},
		{"event_type":"page","between":["2025-06-01T00:00:00Z","2025-07-01T00:00:00Z"]}
	]}`)
	r := n.Refs()
	if !reflect.DeepEqual(r.Traits, []string{"plan"}) || !reflect.DeepEqual(r.Identifiers, []string{"email"}) ||
		!reflect.DeepEqual(r.Segments, []string{sid("a"), sid("b")}) {
		t.Errorf("refs %+v", r)
	}
	var keys []string
	for _, e := range r.Events {
		keys = append(keys, e.Key())
	}
	if !reflect.DeepEqual(keys, []string{"track:A", "page"}) {
		t.Errorf("event keys %v", keys)
	}
	since := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	if !r.TimeDependent || r.Retention != 30*24*time.Hour || r.AllTime || !r.Since.Equal(since) {
		t.Errorf("time refs %+v", r)
	}
	if got := r.Keep(defNow); got != defNow.Sub(since) {
		t.Errorf("keep %v", got)
	}

	for _, c := range []struct {
		def           string
		timeDependent bool
		keep          time.Duration
	}{
		{`{"trait":"a","operator":"gte","value":1}`, false, 0},
		{`{"trait":"a","operator":"older_than","value":"1d"}`, true, 0},
		{`{"event":"A","within":"7d"}`, true, 7 * 24 * time.Hour},
		{`{"any":[{"event":"A","within":"7d"},{"event":"B"}]}`, true, 0}, // all time
	} {
		r := parse(t, c.def).Refs()
		if r.TimeDependent != c.timeDependent || r.Keep(defNow) != c.keep {
			t.Errorf("%s: time dependent %v, keep %v", c.def, r.TimeDependent, r.Keep(defNow))
		}
	}
}

// Add keeps Days and Recent consistent, pruning what keep no longer needs.
func TestAggregateAdd(t *testing.T) {
	const day = 24 * time.Hour
	a := &profiles.EventAggregate{}
	a.Add(defNow.Add(-10*day), defNow, 0)
	a.Add(defNow.Add(-1*day), defNow, 0)
	a.Add(defNow.Add(-3*day), defNow, 0)
	a.Add(defNow.Add(-3*day), defNow, 0)
	want := &profiles.EventAggregate{
		Days: map[string]int{"2026-04-30": 1, "2026-05-09": 1, "2026-05-07": 2},
		Recent: []int64{defNow.Add(-day).UnixMilli(), defNow.Add(-3 * day).UnixMilli(), defNow.Add(-3 * day).UnixMilli(),
			defNow.Add(-10 * day).UnixMilli()},
	}
	if !reflect.DeepEqual(a, want) {
		t.Fatalf("added %+v, want %+v", a, want)
	}

	// Keeping 5 days (from May 5 12:00): April 30 goes; an event inside
	// is counted, one a millisecond older is not.
	a.Add(defNow.Add(-4*day), defNow, 5*day)
	a.Add(defNow.Add(-5*day-time.Millisecond), defNow, 5*day)
	want = &profiles.EventAggregate{
		Days:   map[string]int{"2026-05-09": 1, "2026-05-07": 2, "2026-05-06": 1},
		Recent: []int64{defNow.Add(-day).UnixMilli(), defNow.Add(-3 * day).UnixMilli(), defNow.Add(-3 * day).UnixMilli(), defNow.Add(-4 * day).UnixMilli()},
	}
	if !reflect.DeepEqual(a, want) {
		t.Fatalf("kept 5 days: %+v, want %+v", a, want)
	}
	// The day of the keep edge stays while part of it is kept.
	a.Add(defNow, defNow.Add(2*day+11*time.Hour), 5*day) // edge: May 7 23:00
	if _, ok := a.Days["2026-05-07"]; !ok || len(a.Days) != 3 || len(a.Recent) != 2 {
		t.Fatalf("edge day: %+v", a)
	}

	// Recent keeps the newest RecentCap, newest first, in any order of arrival.
	b := &profiles.EventAggregate{}
	for i := range 100 {
		b.Add(defNow.Add(-time.Duration((i*37)%100)*time.Minute), defNow, 0)
	}
	if len(b.Recent) != profiles.RecentCap || b.Days["2026-05-10"] != 100 {
		t.Fatalf("100 events: %d recent, days %v", len(b.Recent), b.Days)
	}
	for i, ms := range b.Recent {
		if want := defNow.Add(-time.Duration(i) * time.Minute).UnixMilli(); ms != want {
			t.Fatalf("recent[%d] = %d, want %d", i, ms, want)
		}
	}

	js, _ := json.Marshal(&profiles.EventAggregate{Days: map[string]int{"2026-05-10": 2}, Recent: []int64{2, 1}})
	if string(js) != `{"d":{"2026-05-10":2},"r":[2,1]}` {
		t.Errorf("JSON %s", js)
	}
}

// Merge sums two profiles' aggregates as if one had counted every event.
func TestAggregateMerge(t *testing.T) {
	var x, y, both profiles.EventAggregate
	for i := range 50 {
		t1, t2 := defNow.Add(-time.Duration(2*i)*time.Hour), defNow.Add(-time.Duration(2*i+1)*time.Hour)
		x.Add(t1, defNow, 0)
		y.Add(t2, defNow, 0)
		both.Add(t1, defNow, 0)
		both.Add(t2, defNow, 0)
	}
	x.Merge(&y)
	x.Merge(nil)
	if !reflect.DeepEqual(x, both) {
		t.Errorf("merged %+v, want %+v", x, both)
	}
	var empty profiles.EventAggregate
	empty.Merge(&y)
	if !reflect.DeepEqual(empty, y) {
		t.Errorf("merged into empty %+v, want %+v", empty, y)
	}
}

// SegmentCycle finds the cycle a definition would close, and EvalOrder
// puts referenced segments first.
func TestSegmentCycle(t *testing.T) {
	a, b, c, d := sid("a"), sid("b"), sid("c"), sid("d")
	ref := func(ids ...string) profiles.Node {
		n := profiles.Node{All: []profiles.Node{{Trait: &profiles.TraitLeaf{Trait: "x", Operator: "exists"}}}}
		for _, id := range ids {
			n.All = append(n.All, profiles.Node{Not: &profiles.Node{Segment: &profiles.SegmentLeaf{ID: id}}})
		}
		return n
	}
	stored := map[string]profiles.Node{a: ref(b), b: ref(c, d), c: ref(), d: ref(c)}
	lookup := func(id string) (profiles.Node, bool) { n, ok := stored[id]; return n, ok }
	for _, tc := range []struct {
		id   string
		def  profiles.Node
		want []string
	}{
		{c, ref(a), []string{c, a, b, c}},
		{d, ref(a), []string{d, a, b, d}},
		{a, ref(a), []string{a, a}},
		{a, ref(b, c), nil},
		{c, ref(d), []string{c, d, c}},
		{sid("e"), ref(a, sid("f")), nil},
		{b, ref(sid("f")), nil},
	} {
		if got := profiles.SegmentCycle(tc.id, tc.def, lookup); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s referencing %v: cycle %v, want %v", tc.id, tc.def.Refs().Segments, got, tc.want)
		}
	}

	refs := func(m map[string]profiles.Node) func(string) []string {
		return func(id string) []string { return m[id].Refs().Segments }
	}
	order, err := profiles.EvalOrder([]string{a, b, c, d}, refs(stored))
	if err != nil || !reflect.DeepEqual(order, []string{c, d, b, a}) {
		t.Errorf("order %v, %v", order, err)
	}
	order, err = profiles.EvalOrder([]string{d, a}, refs(stored)) // b and c are not asked for
	if err != nil || !reflect.DeepEqual(order, []string{d, a}) {
		t.Errorf("order of a subset %v, %v", order, err)
	}
	stored[c] = ref(a)
	var ce *profiles.CycleError
	if _, err := profiles.EvalOrder([]string{a, b, c, d}, refs(stored)); !errors.As(err, &ce) || !reflect.DeepEqual(ce.Path, []string{a, b, c, a}) {
		t.Errorf("cycle: %v", err)
	}
}
