package profiles

// The segment definition language, version 2: a tree of conditions on a
// profile's traits, its events, its identifiers and its memberships of
// other segments. This file is pure logic: it parses and validates
// definitions, evaluates them on Facts that a caller has gathered, and
// says what a definition reads (Refs) and when time alone can change its
// answer (NextChange). Storage and the API live elsewhere.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/cairn-cdp/cairn/internal/jsonptr"
)

// Limits of a definition. A request over any of them is refused by
// ParseDefinition rather than truncated, so that what is stored is what
// was asked for.
const (
	MaxDefinitionDepth    = 10       // a lone leaf has depth 1
	MaxDefinitionNodes    = 100      // every node counts: all, any, not and leaves
	MaxDefinitionChildren = 50       // children of one all or any
	MaxDefinitionBytes    = 64 << 10 // the definition's JSON
	maxWhere              = 20       // where conditions of one event leaf
	maxInValues           = 100      // values of one in operator
	maxEventCount         = 1000     // the largest count value
	maxWindow             = 3650 * 24 * time.Hour
)

// Operators of version 2, beyond the eight of Condition.
const (
	OpStartsWith = "starts_with"
	OpGTE        = "gte"
	OpLTE        = "lte"
	OpBetween    = "between"
	// OpOlderThan holds when the trait, an RFC 3339 time, is at or before
	// now minus the duration.
	OpOlderThan = "older_than"
	// OpWithin holds when the trait, an RFC 3339 time, is after now minus
	// the duration and not after now: a future time is not within.
	OpWithin = "within"
)

// traitOperators are those of a trait leaf; whereOperators those of an
// event's where condition, which lacks the relative times: an event is
// counted into its aggregate once, when it arrives (EventLeaf.Matches),
// so a test that would change as time passes cannot be applied to it.
var (
	traitOperators = append(slices.Clip(segmentOperators), OpStartsWith, OpGTE, OpLTE, OpBetween, OpOlderThan, OpWithin)
	whereOperators = append(slices.Clip(segmentOperators), OpStartsWith, OpGTE, OpLTE, OpBetween)
)

// Count operators of an event leaf.
const (
	CountAtLeast = "at_least"
	CountAtMost  = "at_most"
	CountExactly = "exactly"
)

// Node is one node of a segment definition: exactly one of its fields is
// set. All and Any hold 1 to MaxDefinitionChildren nodes (an empty All,
// which only Segment.Tree makes, holds; an empty Any does not); a Node
// with no field set never holds. Its JSON is the field's: {"all": [...]},
// {"any": [...]}, {"not": {...}}, or a leaf's members (TraitLeaf and so on).
type Node struct {
	All        []Node
	Any        []Node
	Not        *Node
	Trait      *TraitLeaf
	Event      *EventLeaf
	Identifier *IdentifierLeaf
	Segment    *SegmentLeaf
}

// TraitLeaf tests one top-level trait of the profile, as a Condition does,
// with the operators of traitOperators.
type TraitLeaf struct {
	Trait    string `json:"trait"`
	Operator string `json:"operator"`
	// Value is a JSON value as encoding/json decodes it into any. For
	// between it is [low, high]; for older_than and within a duration
	// ("30d", see ParseDuration).
	Value any `json:"value,omitempty"`
}

// PropertyCondition tests one property of an event. Property is a dotted
// path into nested objects ("product.sku"): a key that itself holds a dot
// cannot be reached.
type PropertyCondition struct {
	Property string `json:"property"`
	Operator string `json:"operator"`
	Value    any    `json:"value,omitempty"`
}

// EventCount compares how many matching events a profile has.
type EventCount struct {
	Operator string `json:"operator"` // CountAtLeast, CountAtMost or CountExactly
	Value    int    `json:"value"`
}

// EventLeaf holds when the profile's events of a type (and name), whose
// properties meet Where, number as Count says (at least one if nil):
// over all kept time, within a sliding window ending now, or between two
// instants. See EventLeaf.Eval's doc for how they are counted.
type EventLeaf struct {
	// Event is a track event's name; EventType one of the event types. One
	// of them is set; Event implies the type track.
	Event     string              `json:"event,omitempty"`
	EventType string              `json:"event_type,omitempty"`
	Where     []PropertyCondition `json:"where,omitempty"`
	Count     *EventCount         `json:"count,omitempty"`
	// Within is a duration (see ParseDuration): count the events whose
	// time is in (now-Within, now].
	Within string `json:"within,omitempty"`
	// Between counts the events whose time is in [Between[0], Between[1])
	// and not after now. At most one of Within and Between is set.
	Between *[2]time.Time `json:"between,omitempty"`
	// key is Key, set by ParseDefinition (and so by UnmarshalJSON), so
	// that evaluation does not hash the conditions again; within is
	// Within parsed (window).
	key    string
	within time.Duration
}

// window returns Within as a duration (0 for none, or an invalid one).
func (e *EventLeaf) window() time.Duration {
	if e.within != 0 || e.Within == "" {
		return e.within
	}
	w, err := ParseDuration(e.Within)
	if err != nil {
		return 0
	}
	return w
}

// IdentifierLeaf tests whether the profile holds an identifier of a type.
type IdentifierLeaf struct {
	Type     string `json:"identifier"`
	Operator string `json:"operator,omitempty"` // OpExists (the default) or OpNotExists
}

// SegmentLeaf holds when the profile is a member of another segment.
type SegmentLeaf struct {
	ID string `json:"segment"`
}

// Facts are what evaluation reads about one profile.
type Facts struct {
	Traits map[string]any
	// Identifiers are the identifier types the profile holds.
	Identifiers map[string]bool
	// Events are the profile's event aggregates by EventLeaf.Key; a
	// missing one counts no events.
	Events map[string]*EventAggregate
	// Segments are the segments the profile is a member of, evaluated
	// already (see EvalOrder).
	Segments map[string]bool
	// held are the profile's memberships as stored, which answer for a
	// segment Segments does not name: an evaluation reads them in place
	// rather than copying them all into Segments.
	held map[string]membershipData
	// changes memoizes, when not nil, the times an event leaf's answer
	// may change at, sorted (eventChanges): the segments of a tenant
	// often share a leaf, with different counts.
	changes map[string][]time.Time
}

// NewFacts returns empty facts that memoize what NextChangeBefore finds
// of each event leaf: facts to evaluate many definitions on.
func NewFacts() Facts {
	return Facts{Traits: map[string]any{}, Identifiers: map[string]bool{}, Events: map[string]*EventAggregate{},
		Segments: map[string]bool{}, changes: map[string][]time.Time{}}
}

// eventChanges returns the times, sorted and distinct, at which the
// answer of leaf e may change with f's aggregate of it (EventLeaf.changes),
// memoized in f. The caller must not modify it.
func (f Facts) eventChanges(e *EventLeaf, now time.Time) []time.Time {
	var key string
	if f.changes != nil {
		key = e.Key() + "\x00" + e.Within
		if e.Between != nil {
			key += "\x00" + e.Between[0].String() + "\x00" + e.Between[1].String()
		}
		if at, ok := f.changes[key]; ok {
			return at
		}
	}
	at := e.changes(f.Events[e.Key()], now, nil)
	slices.SortFunc(at, time.Time.Compare)
	at = slices.CompactFunc(at, time.Time.Equal)
	if f.changes != nil {
		f.changes[key] = at
	}
	return at
}

// ParseDefinition decodes and validates a definition. pointer is the JSON
// Pointer of raw in the request ("/definition"), which starts the Field of
// the *ValidationError it returns for an invalid definition: the pointer
// of the offending node or member, as "/definition/all/2/within".
//
// A node that is too deep or one too many is named itself; a node with
// members of two kinds, or of none, is named itself; an unknown member,
// or a member that does not belong to the node's kind, is named.
func ParseDefinition(raw []byte, pointer string) (Node, error) {
	if len(raw) > MaxDefinitionBytes {
		return Node{}, &ValidationError{Field: pointer, Reason: fmt.Sprintf("at most %d bytes of JSON", MaxDefinitionBytes)}
	}
	var p defParser
	return p.node(raw, pointer, 1)
}

// MarshalJSON gives the node's JSON (see Node).
func (n Node) MarshalJSON() ([]byte, error) {
	switch {
	case n.Trait != nil:
		return json.Marshal(n.Trait)
	case n.Event != nil:
		e := *n.Event
		if e.Event != "" {
			e.EventType = "" // implied: track
		}
		return json.Marshal(e)
	case n.Identifier != nil:
		return json.Marshal(n.Identifier)
	case n.Segment != nil:
		return json.Marshal(n.Segment)
	case n.Not != nil:
		return json.Marshal(map[string]*Node{"not": n.Not})
	case n.Any != nil:
		return json.Marshal(map[string][]Node{"any": n.Any})
	case n.All != nil:
		return json.Marshal(map[string][]Node{"all": n.All})
	}
	return nil, errors.New("segment definition: empty node")
}

// UnmarshalJSON parses and validates the node as ParseDefinition does,
// with pointers relative to it.
func (n *Node) UnmarshalJSON(b []byte) error {
	m, err := ParseDefinition(b, "")
	if err != nil {
		return err
	}
	*n = m
	return nil
}

// Tree returns the segment's definition: Definition when it has one (version
// 2); otherwise it converts the legacy definition (Match and Conditions)
// into a node that holds exactly when the segment matches: an all or any of trait
// leaves, the operators and values unchanged. An all of no conditions
// holds, an any of none does not, as with matches. The tree need not pass
// ParseDefinition: legacy segments could hold values (an exists with a
// value, an in with one value) that version 2 refuses.
//
// A version 2 segment's tree is its Definition.
func (g Segment) Tree() Node {
	if g.Definition != nil {
		return *g.Definition
	}
	leaves := make([]Node, 0, len(g.Conditions))
	for _, c := range g.Conditions {
		leaves = append(leaves, Node{Trait: &TraitLeaf{Trait: c.Trait, Operator: c.Operator, Value: c.Value}})
	}
	if g.Match == "any" {
		return Node{Any: leaves}
	}
	return Node{All: leaves}
}

// Eval reports whether a profile with the facts f is a member at now.
func (n Node) Eval(f Facts, now time.Time) bool {
	switch {
	case n.Trait != nil:
		v, ok := f.Traits[n.Trait.Trait]
		return test(n.Trait.Operator, n.Trait.Value, v, ok && v != nil, now)
	case n.Event != nil:
		return n.Event.Eval(f.Events[n.Event.Key()], now)
	case n.Identifier != nil:
		return f.Identifiers[n.Identifier.Type] != (n.Identifier.Operator == OpNotExists)
	case n.Segment != nil:
		if in, ok := f.Segments[n.Segment.ID]; ok {
			return in
		}
		_, in := f.held[n.Segment.ID]
		return in
	case n.Not != nil:
		return !n.Not.Eval(f, now)
	case n.Any != nil:
		return slices.ContainsFunc(n.Any, func(c Node) bool { return c.Eval(f, now) })
	case n.All != nil:
		return !slices.ContainsFunc(n.All, func(c Node) bool { return !c.Eval(f, now) })
	}
	return false
}

// maxChangeEvals bounds how many instants NextChange evaluates the tree
// at; past it, it answers the next instant it has not tried, which is
// early, so the scheduler only looks again.
const maxChangeEvals = 2000

// NextChange returns the earliest instant after now at which Eval's
// answer may change with no new fact, only time passing (an event leaving
// a window, a relative trait time crossing its edge, a between window
// opening or closing), or the zero time if none. A scheduler re-evaluates
// the profile then, so being early is fine, being late is a bug.
//
// It gathers every instant at which some leaf may change, and evaluates
// the tree at them in order, returning the first at which the answer
// differs from now's: every leaf's answer is constant between two such
// instants. Memberships of referenced segments (Facts.Segments) are taken
// as they are: a referenced segment's own NextChange re-evaluates it and
// then, in EvalOrder, this one.
func (n Node) NextChange(f Facts, now time.Time) time.Time {
	return n.NextChangeBefore(f, now, time.Time{})
}

// NextChangeBefore is NextChange looking only before until (not zero):
// it returns the zero time when the answer holds until then, for a
// caller that will look again at until anyway.
func (n Node) NextChangeBefore(f Facts, now, until time.Time) time.Time {
	// steady is an instant before which the answer cannot change.
	var steady time.Time
	if n.Event != nil {
		a := f.Events[n.Event.Key()]
		if t, ok := n.Event.nextChange(a, now); ok {
			if !until.IsZero() && !t.Before(until) {
				return time.Time{}
			}
			return t
		}
		steady = n.Event.metUntil(a, now)
		if !until.IsZero() && !steady.Before(until) {
			return time.Time{}
		}
	}
	// The candidate times, sorted: an event leaf's alone as memoized,
	// several leaves' merged.
	var traits []time.Time
	var events [][]time.Time
	n.Walk(func(m Node) {
		switch {
		case m.Trait != nil:
			traits = m.Trait.changes(f.Traits, now, traits)
		case m.Event != nil:
			if c := f.eventChanges(m.Event, now); len(c) > 0 {
				events = append(events, c)
			}
		}
	})
	var at []time.Time
	if len(traits) == 0 && len(events) == 1 {
		at = events[0] // shared with the memo: only sliced
	} else {
		at = slices.Concat(append([][]time.Time{traits}, events...)...)
		slices.SortFunc(at, time.Time.Compare)
		at = slices.CompactFunc(at, time.Time.Equal)
	}
	// Those after now and before until.
	lo, _ := slices.BinarySearchFunc(at, now, func(t, now time.Time) int {
		if t.After(now) {
			return 1
		}
		return -1
	})
	at = at[lo:]
	if steady.After(now) {
		lo, _ = slices.BinarySearchFunc(at, steady, time.Time.Compare)
		at = at[lo:]
	}
	if !until.IsZero() {
		hi, _ := slices.BinarySearchFunc(at, until, time.Time.Compare)
		at = at[:hi]
	}
	if len(at) == 0 {
		return time.Time{}
	}
	was := n.Eval(f, now)
	for i, t := range at {
		if i == maxChangeEvals || n.Eval(f, t) != was {
			return t
		}
	}
	return time.Time{}
}

// Walk calls fn on n and every node under it, parents first (in the
// order of ParseDefinition's JSON Pointers).
func (n Node) Walk(fn func(Node)) {
	fn(n)
	if n.Not != nil {
		n.Not.Walk(fn)
	}
	for _, c := range n.All {
		c.Walk(fn)
	}
	for _, c := range n.Any {
		c.Walk(fn)
	}
}

// Refs are what a definition reads, so that a change re-evaluates only
// the segments it can affect, and how much event history it needs.
type Refs struct {
	Traits      []string     // distinct, in order of first use
	Events      []*EventLeaf // distinct by Key, the first leaf of each
	Identifiers []string
	Segments    []string
	// TimeDependent is whether time alone can change the answer: a
	// relative trait time, or an event leaf with a window or between.
	TimeDependent bool
	// Retention is the longest Within of the event leaves, 0 if none.
	Retention time.Duration
	// AllTime is whether an event leaf counts over all time (has neither
	// Within nor Between), so that no event may be pruned.
	AllTime bool
	// Since is the earliest Between start, zero if none: those events are
	// needed as long as the definition is, however far back they fall.
	Since time.Time
}

// Keep returns how far back before now the definition needs events: the
// keep argument of EventAggregate.Add, where 0 means all time. It is 0
// too for a definition with no event leaf.
func (r Refs) Keep(now time.Time) time.Duration {
	if r.AllTime || len(r.Events) == 0 {
		return 0
	}
	keep := r.Retention
	if !r.Since.IsZero() {
		keep = max(keep, now.Sub(r.Since))
	}
	return keep
}

// Refs returns what the definition reads.
func (n Node) Refs() Refs {
	var r Refs
	seen := map[string]bool{}
	add := func(list *[]string, kind, s string) {
		if !seen[kind+s] {
			seen[kind+s] = true
			*list = append(*list, s)
		}
	}
	n.Walk(func(m Node) {
		switch {
		case m.Trait != nil:
			add(&r.Traits, "t", m.Trait.Trait)
			if m.Trait.Operator == OpOlderThan || m.Trait.Operator == OpWithin {
				r.TimeDependent = true
			}
		case m.Identifier != nil:
			add(&r.Identifiers, "i", m.Identifier.Type)
		case m.Segment != nil:
			add(&r.Segments, "s", m.Segment.ID)
		case m.Event != nil:
			e := m.Event
			if k := "e" + e.Key(); !seen[k] {
				seen[k] = true
				r.Events = append(r.Events, e)
			}
			w, _ := ParseDuration(e.Within)
			switch {
			case e.Within != "":
				r.TimeDependent = true
				r.Retention = max(r.Retention, w)
			case e.Between != nil:
				r.TimeDependent = true
				if r.Since.IsZero() || e.Between[0].Before(r.Since) {
					r.Since = e.Between[0]
				}
			default:
				r.AllTime = true
			}
		}
	})
	return r
}

// ParseDuration parses a window: 1 to 5 digits without a leading zero and
// a unit, m (minutes), h (hours), d (days of 24 hours) or w (weeks), at
// most 3650 days.
func ParseDuration(s string) (time.Duration, error) {
	// Evaluation parses windows at every instant it tries: no allocation
	// unless the duration is bad.
	bad := func() error {
		return fmt.Errorf("duration %q: want a number and m, h, d or w, as 30d, at most 3650 days", s)
	}
	if len(s) < 2 || len(s) > 6 || s[0] < '1' || s[0] > '9' {
		return 0, bad()
	}
	n := 0
	for _, c := range s[:len(s)-1] {
		if c < '0' || c > '9' {
			return 0, bad()
		}
		n = n*10 + int(c-'0')
	}
	var unit time.Duration
	switch s[len(s)-1] {
	case 'm':
		unit = time.Minute
	case 'h':
		unit = time.Hour
	case 'd':
		unit = 24 * time.Hour
	case 'w':
		unit = 7 * 24 * time.Hour
	}
	if unit == 0 || time.Duration(n)*unit > maxWindow {
		return 0, bad()
	}
	return time.Duration(n) * unit, nil
}

// test reports whether a value (v, present) meets an operator with the
// value want; now is for the relative times. The eight operators of
// Condition keep its meaning exactly (Segment.Tree relies on it).
func test(op string, want, v any, present bool, now time.Time) bool {
	if slices.Contains(segmentOperators, op) {
		return Condition{Operator: op, Value: want}.holds(v, present)
	}
	if !present {
		return false
	}
	switch op {
	case OpStartsWith:
		s, ok1 := v.(string)
		prefix, ok2 := want.(string)
		return ok1 && ok2 && strings.HasPrefix(s, prefix)
	case OpGTE:
		n, ok := compare(v, want)
		return ok && n >= 0
	case OpLTE:
		n, ok := compare(v, want)
		return ok && n <= 0
	case OpBetween:
		pair, ok := want.([]any)
		if !ok || len(pair) != 2 {
			return false
		}
		lo, ok1 := compare(v, pair[0])
		hi, ok2 := compare(v, pair[1])
		return ok1 && ok2 && lo >= 0 && hi <= 0
	case OpOlderThan, OpWithin:
		t, d, ok := relative(v, want)
		if !ok {
			return false
		}
		edge := t.Add(d) // older_than from here on; within until here
		if op == OpOlderThan {
			return !now.Before(edge)
		}
		return !now.Before(t) && now.Before(edge)
	}
	return false
}

// relative decodes the trait time and the duration of a relative operator.
func relative(v, want any) (time.Time, time.Duration, bool) {
	s, ok1 := v.(string)
	w, ok2 := want.(string)
	if !ok1 || !ok2 {
		return time.Time{}, 0, false
	}
	t, err1 := time.Parse(time.RFC3339Nano, s)
	d, err2 := ParseDuration(w)
	return t, d, err1 == nil && err2 == nil
}

// changes appends the instants at which the leaf's answer may change.
func (l *TraitLeaf) changes(traits map[string]any, now time.Time, at []time.Time) []time.Time {
	if l.Operator != OpOlderThan && l.Operator != OpWithin {
		return at
	}
	t, d, ok := relative(traits[l.Trait], l.Value)
	if !ok {
		return at
	}
	return append(at, t, t.Add(d))
}

// typ is the leaf's event type.
func (e *EventLeaf) typ() string {
	if e.Event != "" {
		return "track"
	}
	return e.EventType
}

// Key returns the leaf's aggregate key: leaves of the same type, name and
// where conditions (in any order, their values' object members in any
// order) share it and so share one aggregate, whatever they count and
// over what time. It is "track:Order Completed" with no where conditions,
// and "track:Order Completed#" and 16 hex digits of the SHA-256 of the
// canonical conditions with some; "page" for all page events. In the name
// '%' and '#' are escaped as %25 and %23, so that no name can pass for a
// hash.
func (e *EventLeaf) Key() string {
	if e.key != "" {
		return e.key
	}
	return e.computeKey()
}

// eventNameEscaper keeps an event name from reading as a key's separator.
var eventNameEscaper = strings.NewReplacer("%", "%25", "#", "%23")

// computeKey is Key, computed; ParseDefinition stores it in the leaf.
func (e *EventLeaf) computeKey() string {
	k := e.typ()
	if e.Event != "" {
		k += ":" + eventNameEscaper.Replace(e.Event)
	}
	if len(e.Where) == 0 {
		return k
	}
	conds := make([]string, len(e.Where))
	for i, w := range e.Where {
		// encoding/json writes map members sorted, and a number as its
		// float64 decodes: 100 and 100.0 are one value.
		b, err := json.Marshal(w)
		if err != nil {
			b = fmt.Appendf(nil, "%#v", w)
		}
		conds[i] = string(b)
	}
	slices.Sort(conds)
	sum := sha256.Sum256([]byte("[" + strings.Join(conds, ",") + "]"))
	return k + "#" + hex.EncodeToString(sum[:8])
}

// Matches reports whether one event counts towards the leaf's aggregate:
// its type (and, for a named leaf, its name: a track's event, a page's or
// screen's name) and properties meet the leaf, whatever its count and
// time.
func (e *EventLeaf) Matches(typ, name string, properties map[string]any) bool {
	if typ != e.typ() || (e.Event != "" && name != e.Event) {
		return false
	}
	for _, w := range e.Where {
		v, ok := property(properties, w.Property)
		if !test(w.Operator, w.Value, v, ok && v != nil, time.Time{}) {
			return false
		}
	}
	return true
}

// property follows a dotted path into nested objects.
func property(m map[string]any, path string) (any, bool) {
	var v any = m
	for part := range strings.SplitSeq(path, ".") {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = obj[part]; !ok {
			return nil, false
		}
	}
	return v, true
}

// count returns the leaf's count operator and value.
func (e *EventLeaf) count() (string, int) {
	if e.Count == nil {
		return CountAtLeast, 1
	}
	return e.Count.Operator, e.Count.Value
}

// Eval reports whether the aggregate a (nil: no events) meets the leaf at
// now. Without Within or Between the count is the sum of a.Days, all the
// time they keep. With Within W it counts the events in (now-W, now] and
// with Between [start, end) those in that range not after now: exactly
// from a.Recent when Recent holds every such event (it is not full, or
// its oldest time is before the range), or when Recent's share decides
// the comparison already (at_least met; at_most or exactly exceeded);
// otherwise from a.Days, summing every UTC day that overlaps the range
// up to now's, which may count a few events before the range's start.
func (e *EventLeaf) Eval(a *EventAggregate, now time.Time) bool {
	op, n := e.count()
	holds := func(c int) bool {
		switch op {
		case CountAtMost:
			return c <= n
		case CountExactly:
			return c == n
		}
		return c >= n
	}
	if a == nil {
		return holds(0)
	}
	from, to, ok := e.span(now) // the range [from, to]
	if !ok {
		total := 0
		for _, c := range a.Days {
			total += c
		}
		return holds(total)
	}
	first, past := a.recentIn(from, to)
	r := max(past-first, 0)
	exact := a.exactFrom(from)
	switch {
	case exact:
		return holds(r)
	case op == CountAtLeast && r >= n:
		return true
	case op != CountAtLeast && r > n:
		return false
	}
	return holds(a.daySum(from, to))
}

// span returns the instants [from, to] the leaf counts events in at now,
// to the millisecond that Recent keeps, or false for all time. A span
// whose from is after its to is empty.
func (e *EventLeaf) span(now time.Time) (from, to time.Time, ok bool) {
	to = now
	switch {
	case e.Within != "":
		w := e.window() // 0 when invalid: an empty window
		from = now.Add(-w).Truncate(time.Millisecond).Add(time.Millisecond)
	case e.Between != nil:
		from = e.Between[0]
		if end := e.Between[1].Add(-time.Nanosecond); end.Before(to) {
			to = end
		}
	default:
		return time.Time{}, time.Time{}, false
	}
	return from, to, true
}

// changes appends the instants at which the leaf's answer may change: as
// each of Recent's events enters and leaves the span, and as each day of
// Days enters and leaves the days the fallback sums.
func (e *EventLeaf) changes(a *EventAggregate, now time.Time, at []time.Time) []time.Time {
	if a == nil {
		return at
	}
	switch {
	case e.Within != "":
		w := e.window()
		if w == 0 {
			return at
		}
		for _, ms := range a.Recent {
			t := time.UnixMilli(ms)
			at = append(at, t, t.Add(w))
		}
		for d := range a.Days {
			if day, err := time.Parse(time.DateOnly, d); err == nil {
				// A millisecond early: the span's start is rounded to
				// Recent's milliseconds.
				at = append(at, day, day.Add(24*time.Hour+w-time.Millisecond))
			}
		}
	case e.Between != nil:
		// At the start, the fallback's first day takes in the events of
		// that day before the start.
		at = append(at, e.Between[0])
		for _, ms := range a.Recent {
			at = append(at, time.UnixMilli(ms))
		}
		for d := range a.Days {
			if day, err := time.Parse(time.DateOnly, d); err == nil {
				at = append(at, day)
			}
		}
	}
	return at
}

// nextChange is NextChange of a node that is the leaf alone, when it is
// plain to tell (ok): at least n events within a window, Recent holding
// every kept event and none after now. The count then only goes down as
// events leave the window, so the answer changes once at most: when the
// nth newest event in the window leaves it (at its time plus the window,
// which span no longer takes in).
func (e *EventLeaf) nextChange(a *EventAggregate, now time.Time) (t time.Time, ok bool) {
	op, n := e.count()
	w := e.window()
	switch {
	case op != CountAtLeast || e.Between != nil || w == 0:
		return time.Time{}, false
	case a == nil || n <= 0:
		return time.Time{}, true // no event to leave, or always met
	case a.Partial || len(a.Recent) >= RecentCap:
		return time.Time{}, false
	}
	from, to, _ := e.span(now)
	first, past := a.recentIn(from, to)
	if first > 0 {
		return time.Time{}, false // a later event enters
	}
	if past-first < n {
		return time.Time{}, true // not met, and only a new event meets it
	}
	return time.UnixMilli(a.Recent[first+n-1]).Add(w), true
}

// metUntil returns, for an "at least n within" leaf met by the events
// Recent holds in the window at now, the instant the nth newest of those
// leaves it: until then the leaf is met whatever else it counts (later
// events only add to it), even when nextChange cannot tell what follows
// (Recent full, or missing events). Otherwise it returns the zero time.
func (e *EventLeaf) metUntil(a *EventAggregate, now time.Time) time.Time {
	op, n := e.count()
	w := e.window()
	if op != CountAtLeast || e.Between != nil || w == 0 || a == nil || n <= 0 {
		return time.Time{}
	}
	from, to, _ := e.span(now)
	first, past := a.recentIn(from, to)
	if past-first < n {
		return time.Time{}
	}
	return time.UnixMilli(a.Recent[first+n-1]).Add(w)
}

// RecentCap is how many event times an EventAggregate keeps: enough to
// count exactly any at_least up to 64 in a window, and any smaller count
// while a profile's matching events in the longest window are fewer; past
// it, windows are counted by whole UTC days.
const RecentCap = 64

// EventAggregate counts one profile's events matching one event leaf's
// Key: per UTC day, plus the times of the most recent ones. Every counted
// event is in Days; Recent holds the newest RecentCap of those still kept,
// so that an event missing from a full Recent is never newer than its
// oldest. The zero value is empty and ready; it is not safe for
// concurrent use.
//
// A leaf that no segment counts in a window needs no times (DropRecent):
// its aggregate is then Partial, its Recent missing events up to Dropped
// (the newest time it forgot), and a window counted on it later, once a
// segment asks for one, is counted by days until the window starts after
// Dropped. An event that arrives late, with a time before Dropped, or a
// merge, does not make a Partial aggregate exact.
type EventAggregate struct {
	Days    map[string]int `json:"d,omitempty"` // "2006-01-02" (UTC) -> count
	Recent  []int64        `json:"r,omitempty"` // Unix milliseconds, newest first, at most RecentCap
	Partial bool           `json:"p,omitzero"`
	Dropped int64          `json:"w,omitzero"` // Unix milliseconds; 0 in aggregates stored before it was kept
	// How a stored aggregate came to count every event exactly once (see
	// the backfill in recompute.go): Backfilled says the member's events
	// from before the leaf existed are counted; until then Seen lists the
	// events (sort keys) that markers counted, which the backfill skips.
	// Skip lists events the backfill counted whose markers were still
	// pending, which their processing then skips. Merge ignores them.
	Backfilled bool     `json:"b,omitzero"`
	Seen       []string `json:"s,omitempty"`
	Skip       []string `json:"k,omitempty"`
}

// Add counts one event at t, first dropping what is older than keep
// before now (0 keeps all time): days that end at or before now-keep and
// recent times before now-keep. An event before now-keep is not counted.
func (a *EventAggregate) Add(t, now time.Time, keep time.Duration) {
	if keep > 0 {
		edge := now.Add(-keep)
		maps.DeleteFunc(a.Days, func(d string, _ int) bool {
			day, err := time.Parse(time.DateOnly, d)
			return err == nil && !day.Add(24*time.Hour).After(edge)
		})
		for len(a.Recent) > 0 && time.UnixMilli(a.Recent[len(a.Recent)-1]).Before(edge) {
			a.Recent = a.Recent[:len(a.Recent)-1]
		}
		if t.Before(edge) {
			return
		}
	}
	if a.Days == nil {
		a.Days = map[string]int{}
	}
	a.Days[t.UTC().Format(time.DateOnly)]++
	a.Recent = insertRecent(a.Recent, t.UnixMilli())
}

// Merge adds b's events to a's, as when two profiles merge.
func (a *EventAggregate) Merge(b *EventAggregate) {
	if b == nil {
		return
	}
	a.Partial = a.Partial || b.Partial
	a.Dropped = max(a.Dropped, b.Dropped)
	for d, c := range b.Days {
		if a.Days == nil {
			a.Days = map[string]int{}
		}
		a.Days[d] += c
	}
	for _, ms := range b.Recent {
		a.Recent = insertRecent(a.Recent, ms)
	}
}

// recentIn returns the indexes in Recent (newest first) of the first
// event not after to and of the first before from: those between are in
// [from, to].
func (a *EventAggregate) recentIn(from, to time.Time) (first, past int) {
	// In milliseconds, as Recent keeps them: a time in [from, to] is one
	// in [ceil(from), floor(to)].
	toMS, fromMS := to.UnixMilli(), from.UnixMilli()
	if to.Before(time.UnixMilli(toMS)) {
		toMS-- // before 1970, UnixMilli rounds up
	}
	if time.UnixMilli(fromMS).Before(from) {
		fromMS++
	}
	first, _ = slices.BinarySearchFunc(a.Recent, toMS, func(ms, to int64) int {
		if ms > to {
			return -1
		}
		return 1
	})
	past, _ = slices.BinarySearchFunc(a.Recent, fromMS, func(ms, from int64) int {
		if ms < from {
			return 1
		}
		return -1
	})
	return first, past
}

// DropRecent forgets the event times, which only windows need, keeping
// the newest in Dropped.
func (a *EventAggregate) DropRecent() {
	if len(a.Recent) > 0 {
		a.Dropped = max(a.Dropped, a.Recent[0])
	}
	a.Recent, a.Partial = nil, true
}

// exactFrom reports whether Recent holds every counted event at or after
// from. Events missing from it are those DropRecent forgot (up to
// Dropped) and, once it was full, older ones than its oldest.
func (a *EventAggregate) exactFrom(from time.Time) bool {
	oldestBefore := len(a.Recent) > 0 && time.UnixMilli(a.Recent[len(a.Recent)-1]).Before(from)
	if a.Partial && a.Dropped == 0 {
		// Stored before Dropped was kept: as then, its events are taken
		// to have come in time order, Recent's oldest after every one
		// forgotten.
		return oldestBefore
	}
	return (!a.Partial || time.UnixMilli(a.Dropped).Before(from)) && (len(a.Recent) < RecentCap || oldestBefore)
}

// insertRecent inserts ms into recent, newest first, keeping RecentCap.
func insertRecent(recent []int64, ms int64) []int64 {
	i, _ := slices.BinarySearchFunc(recent, ms, func(x, target int64) int {
		switch {
		case x > target:
			return -1
		case x < target:
			return 1
		}
		return 0
	})
	if i >= RecentCap {
		return recent
	}
	recent = slices.Insert(recent, i, ms)
	if len(recent) > RecentCap {
		recent = recent[:RecentCap]
	}
	return recent
}

// daySum sums the days of a.Days from from's UTC day to to's.
func (a *EventAggregate) daySum(from, to time.Time) int {
	if to.Before(from) {
		return 0
	}
	first, last := from.UTC().Format(time.DateOnly), to.UTC().Format(time.DateOnly)
	n := 0
	for d, c := range a.Days {
		if d >= first && d <= last {
			n += c
		}
	}
	return n
}

// CycleError says that segments reference each other in a cycle.
type CycleError struct {
	Path []string // the first and last are the same segment
}

func (e *CycleError) Error() string {
	return "segments reference each other: " + strings.Join(e.Path, " -> ")
}

// SegmentCycle returns the path of the reference cycle that defining
// segment id as def would make, as [id, ..., id], or nil if none. lookup
// gives the stored definitions of the others; an unknown segment ends a
// path (whether it exists is checked elsewhere).
func SegmentCycle(id string, def Node, lookup func(id string) (Node, bool)) []string {
	seen := map[string]bool{}
	path := []string{id}
	var visit func(refs []string) []string
	visit = func(refs []string) []string {
		for _, r := range refs {
			if r == id {
				return append(slices.Clone(path), id)
			}
			if seen[r] {
				continue
			}
			seen[r] = true
			n, ok := lookup(r)
			if !ok {
				continue
			}
			path = append(path, r)
			if c := visit(n.segmentRefs()); c != nil {
				return c
			}
			path = path[:len(path)-1]
		}
		return nil
	}
	return visit(def.segmentRefs())
}

// segmentRefs returns the segments the node references.
func (n Node) segmentRefs() []string {
	var ids []string
	n.Walk(func(m Node) {
		if m.Segment != nil && !slices.Contains(ids, m.Segment.ID) {
			ids = append(ids, m.Segment.ID)
		}
	})
	return ids
}

// EvalOrder orders ids so that every segment comes after those of ids
// that it references (refs gives a segment's Refs().Segments), keeping
// the given order where references allow. References to segments not in
// ids are ignored. It returns a *CycleError if ids reference each other
// in a cycle.
func EvalOrder(ids []string, refs func(id string) []string) ([]string, error) {
	const (
		unseen = iota
		open
		done
	)
	state := make(map[string]int, len(ids))
	for _, id := range ids {
		state[id] = unseen
	}
	out := make([]string, 0, len(ids))
	var path []string
	var visit func(id string) error
	visit = func(id string) error {
		switch state[id] {
		case done:
			return nil
		case open:
			i := slices.Index(path, id)
			return &CycleError{Path: append(slices.Clone(path[i:]), id)}
		}
		state[id] = open
		path = append(path, id)
		for _, r := range refs(id) {
			if _, ok := state[r]; !ok {
				continue
			}
			if err := visit(r); err != nil {
				return err
			}
		}
		path = path[:len(path)-1]
		state[id] = done
		out = append(out, id)
		return nil
	}
	for _, id := range ids {
		if err := visit(id); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// defParser parses one definition, counting its nodes.
type defParser struct{ nodes int }

// nodeMembers are all the members a node may have; kinds say which
// member makes a node of a kind and what other members it may have.
var (
	nodeMembers = []string{"all", "any", "not", "trait", "operator", "value", "event", "event_type", "where", "count", "within", "between", "identifier", "segment"}
	kindMembers = map[string][]string{
		"all":        nil,
		"any":        nil,
		"not":        nil,
		"trait":      {"operator", "value"},
		"event":      {"where", "count", "within", "between"},
		"event_type": {"where", "count", "within", "between"},
		"identifier": {"operator"},
		"segment":    nil,
	}
	kindNames = "all, any, not, trait, event, event_type, identifier or segment"
)

// invalid returns a *ValidationError.
func invalid(ptr, format string, args ...any) error {
	return &ValidationError{Field: ptr, Reason: fmt.Sprintf(format, args...)}
}

// at returns the JSON Pointer of a member or element of ptr's value.
func at(ptr string, token any) string {
	return jsonptr.Append(ptr, fmt.Sprint(token))
}

// object decodes a JSON object's members, refusing a duplicate name.
func object(raw []byte, ptr, what string) (map[string]jsontext.Value, error) {
	var m map[string]jsontext.Value
	if err := jsonv2.Unmarshal(raw, &m); err != nil || m == nil {
		if errors.Is(err, jsontext.ErrDuplicateName) {
			return nil, invalid(ptr, "%s names a member twice", what)
		}
		return nil, invalid(ptr, "%s is a JSON object", what)
	}
	return m, nil
}

func (p *defParser) node(raw []byte, ptr string, depth int) (Node, error) {
	p.nodes++
	if depth > MaxDefinitionDepth {
		return Node{}, invalid(ptr, "nested deeper than %d levels", MaxDefinitionDepth)
	}
	if p.nodes > MaxDefinitionNodes {
		return Node{}, invalid(ptr, "more than %d nodes in the definition", MaxDefinitionNodes)
	}
	m, err := object(raw, ptr, "a node")
	if err != nil {
		return Node{}, err
	}
	names := slices.Sorted(maps.Keys(m))
	for _, k := range names {
		if !slices.Contains(nodeMembers, k) {
			return Node{}, invalid(at(ptr, k), "unknown member; a node is one of %s", kindNames)
		}
	}
	var kinds []string
	for _, k := range names {
		if _, ok := kindMembers[k]; ok {
			kinds = append(kinds, k)
		}
	}
	switch {
	case len(kinds) == 0:
		return Node{}, invalid(ptr, "a node needs one of %s", kindNames)
	case len(kinds) > 1:
		return Node{}, invalid(ptr, "a node is exactly one of %s, not %s", kindNames, strings.Join(kinds, " and "))
	}
	kind := kinds[0]
	for _, k := range names {
		if k != kind && !slices.Contains(kindMembers[kind], k) {
			return Node{}, invalid(at(ptr, k), "not a member of a %s node", kind)
		}
	}
	switch kind {
	case "all", "any":
		var raws []jsontext.Value
		if err := jsonv2.Unmarshal(m[kind], &raws); err != nil || len(raws) == 0 || len(raws) > MaxDefinitionChildren {
			return Node{}, invalid(at(ptr, kind), "a list of 1 to %d nodes", MaxDefinitionChildren)
		}
		children := make([]Node, len(raws))
		for i, r := range raws {
			if children[i], err = p.node(r, at(at(ptr, kind), i), depth+1); err != nil {
				return Node{}, err
			}
		}
		if kind == "all" {
			return Node{All: children}, nil
		}
		return Node{Any: children}, nil
	case "not":
		child, err := p.node(m["not"], at(ptr, "not"), depth+1)
		if err != nil {
			return Node{}, err
		}
		return Node{Not: &child}, nil
	case "trait":
		l := TraitLeaf{}
		if l.Trait, err = text(m["trait"], at(ptr, "trait"), 200); err != nil {
			return Node{}, err
		}
		if l.Operator, l.Value, err = operation(m, ptr, traitOperators); err != nil {
			return Node{}, err
		}
		return Node{Trait: &l}, nil
	case "identifier":
		l := IdentifierLeaf{}
		if l.Type, err = text(m["identifier"], at(ptr, "identifier"), 100); err != nil {
			return Node{}, err
		}
		if op, ok := m["operator"]; ok {
			if jsonv2.Unmarshal(op, &l.Operator) != nil || (l.Operator != OpExists && l.Operator != OpNotExists) {
				return Node{}, invalid(at(ptr, "operator"), "exists or not_exists")
			}
		}
		return Node{Identifier: &l}, nil
	case "segment":
		var id string
		if jsonv2.Unmarshal(m["segment"], &id) != nil || !isSegmentID(id) {
			return Node{}, invalid(at(ptr, "segment"), `a segment ID, "seg_" and 26 characters 0-9a-z`)
		}
		return Node{Segment: &SegmentLeaf{ID: id}}, nil
	}
	l, err := eventLeaf(m, ptr)
	if err != nil {
		return Node{}, err
	}
	return Node{Event: l}, nil
}

// eventLeaf parses an event node's members.
func eventLeaf(m map[string]jsontext.Value, ptr string) (*EventLeaf, error) {
	var (
		l   EventLeaf
		err error
	)
	if raw, ok := m["event"]; ok {
		if l.Event, err = text(raw, at(ptr, "event"), 200); err != nil {
			return nil, err
		}
	} else if jsonv2.Unmarshal(m["event_type"], &l.EventType) != nil || !slices.Contains(eventTypes, l.EventType) {
		return nil, invalid(at(ptr, "event_type"), "one of %s", strings.Join(eventTypes, ", "))
	}
	if raw, ok := m["where"]; ok {
		wp := at(ptr, "where")
		var raws []jsontext.Value
		if jsonv2.Unmarshal(raw, &raws) != nil || len(raws) == 0 || len(raws) > maxWhere {
			return nil, invalid(wp, "a list of 1 to %d property conditions", maxWhere)
		}
		for i, r := range raws {
			cp := at(wp, i)
			cm, err := object(r, cp, "a property condition")
			if err != nil {
				return nil, err
			}
			for _, k := range slices.Sorted(maps.Keys(cm)) {
				if k != "property" && k != "operator" && k != "value" {
					return nil, invalid(at(cp, k), "unknown member; a property condition has property, operator and value")
				}
			}
			var c PropertyCondition
			if c.Property, err = text(cm["property"], at(cp, "property"), 200); err != nil {
				return nil, err
			}
			if slices.Contains(strings.Split(c.Property, "."), "") {
				return nil, invalid(at(cp, "property"), "a property or a dotted path, as product.sku")
			}
			if c.Operator, c.Value, err = operation(cm, cp, whereOperators); err != nil {
				return nil, err
			}
			l.Where = append(l.Where, c)
		}
	}
	if raw, ok := m["count"]; ok {
		cp := at(ptr, "count")
		cm, err := object(raw, cp, "count")
		if err != nil {
			return nil, err
		}
		for _, k := range slices.Sorted(maps.Keys(cm)) {
			if k != "operator" && k != "value" {
				return nil, invalid(at(cp, k), "unknown member; count has operator and value")
			}
		}
		c := EventCount{}
		if jsonv2.Unmarshal(cm["operator"], &c.Operator) != nil || (c.Operator != CountAtLeast && c.Operator != CountAtMost && c.Operator != CountExactly) {
			return nil, invalid(at(cp, "operator"), "at_least, at_most or exactly")
		}
		var v float64
		if cm["value"].Kind() != '0' || jsonv2.Unmarshal(cm["value"], &v) != nil || v != float64(int(v)) || v < 0 || v > maxEventCount {
			return nil, invalid(at(cp, "value"), "a whole number from 0 to %d", maxEventCount)
		}
		c.Value = int(v)
		l.Count = &c
	}
	_, within := m["within"]
	_, between := m["between"]
	switch {
	case within && between:
		return nil, invalid(at(ptr, "between"), "within or between, not both")
	case within:
		if jsonv2.Unmarshal(m["within"], &l.Within) != nil {
			return nil, invalid(at(ptr, "within"), "a duration, as 30d")
		}
		if _, err := ParseDuration(l.Within); err != nil {
			return nil, invalid(at(ptr, "within"), "%v", err)
		}
	case between:
		bp := at(ptr, "between")
		var raws []jsontext.Value
		if jsonv2.Unmarshal(m["between"], &raws) != nil || len(raws) != 2 {
			return nil, invalid(bp, "a pair of RFC 3339 times, [start, end]")
		}
		var span [2]time.Time
		for i, r := range raws {
			var s string
			t, err := time.Time{}, jsonv2.Unmarshal(r, &s)
			if err == nil {
				t, err = time.Parse(time.RFC3339Nano, s)
			}
			if err != nil {
				return nil, invalid(at(bp, i), "an RFC 3339 time, as 2026-01-01T00:00:00Z")
			}
			span[i] = t
		}
		if !span[0].Before(span[1]) {
			return nil, invalid(bp, "the start must be before the end")
		}
		l.Between = &span
	}
	l.key = l.computeKey()
	l.within = l.window()
	return &l, nil
}

// text decodes a string of 1 to max characters.
func text(raw jsontext.Value, ptr string, max int) (string, error) {
	var s string
	if raw == nil || jsonv2.Unmarshal(raw, &s) != nil || s == "" || utf8.RuneCountInString(s) > max {
		return "", invalid(ptr, "a string of 1 to %d characters", max)
	}
	return s, nil
}

// operation parses the operator and value members of a trait leaf or a
// property condition (m, at ptr), with the operators ops.
func operation(m map[string]jsontext.Value, ptr string, ops []string) (string, any, error) {
	op := ""
	if jsonv2.Unmarshal(m["operator"], &op) != nil || !slices.Contains(ops, op) {
		return "", nil, invalid(at(ptr, "operator"), "one of %s", strings.Join(ops, ", "))
	}
	vp := at(ptr, "value")
	raw, given := m["value"]
	if op == OpExists || op == OpNotExists {
		if given {
			return "", nil, invalid(vp, "%s takes no value", op)
		}
		return op, nil, nil
	}
	var v any
	if !given || jsonv2.Unmarshal(raw, &v) != nil || v == nil {
		return "", nil, invalid(vp, "%s needs a value", op)
	}
	isScalar := func(x any) bool {
		switch x.(type) {
		case float64, string:
			return true
		}
		return false
	}
	switch op {
	case OpIn:
		list, ok := v.([]any)
		if !ok || len(list) == 0 || len(list) > maxInValues {
			return "", nil, invalid(vp, "a list of 1 to %d values", maxInValues)
		}
	case OpStartsWith:
		if _, ok := v.(string); !ok {
			return "", nil, invalid(vp, "a string")
		}
	case OpGreaterThan, OpLessThan, OpGTE, OpLTE:
		if !isScalar(v) {
			return "", nil, invalid(vp, "a number, or a string or RFC 3339 time")
		}
	case OpBetween:
		pair, ok := v.([]any)
		if !ok || len(pair) != 2 || !isScalar(pair[0]) || !isScalar(pair[1]) {
			return "", nil, invalid(vp, "a pair [low, high] of numbers, or of strings or RFC 3339 times")
		}
		_, num0 := pair[0].(float64)
		_, num1 := pair[1].(float64)
		if c, _ := compare(pair[0], pair[1]); num0 != num1 || c > 0 {
			return "", nil, invalid(vp, "a pair [low, high] of the same kind, low not above high")
		}
	case OpOlderThan, OpWithin:
		s, _ := v.(string)
		if _, err := ParseDuration(s); err != nil {
			return "", nil, invalid(vp, "a duration, as 30d: a number and m, h, d or w, at most 3650 days")
		}
	}
	return op, v, nil
}

// isSegmentID reports whether id is one newSegmentID could make, now
// ([a-z2-7]) or before (base32hex, [0-9a-v]).
func isSegmentID(id string) bool {
	rest, ok := strings.CutPrefix(id, "seg_")
	if !ok || len(rest) != 26 {
		return false
	}
	for _, c := range []byte(rest) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'z') {
			return false
		}
	}
	return true
}
