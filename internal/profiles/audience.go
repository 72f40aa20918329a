package profiles

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/cairn-cdp/cairn/internal/ids"
)

// Stored memberships. A profile's memberships are items of its own,
// written by evaluation, a segment's computation (recompute.go) and an
// erasure, each transition in the transaction that also writes its notice
// to the tenant's outbox, so a membership change and its delivery are
// never separated by a crash:
//
//	PK                          SK                      what
//	TENANT#t#PS#<profile>       <segment id>            a membership (gsi1: TENANT#t#SM#<segment>, <profile>)
//	TENANT#t#PS#<profile>       ~set                    the profile's membership set (membershipSet)
//	TENANT#t#A#<member>         *                       a member's event aggregates, every leaf's (aggregates.go)
//	TENANT#t#A#<member>         <event leaf key>        one leaf's, as stored before (taken in by the item above)
//	TENANT#t#Q                  <member>#<event SK>     an event not yet evaluated (a marker)
//	TENANT#t#Q                  <member>#~              a profile to evaluate again in full
//	TENANT#t#W                  <time>#<profile>        when a profile's time-dependent segments may change
//	TENANT#t#OB                 <time>#<notice id>      a notice waiting to be relayed to the Outbox
//	TENANT#t#SS                 <segment id>            a segment's computation status
//	TENANT#t#SG                 ~leaf#<event leaf key>  an event leaf whose backfill is done (beside the segments)
//
// The membership items of a profile are the truth, and its membership set
// their copy in one item, which every writer of a membership item
// rewrites in the same transaction (or first marks stale), so that the
// evaluation of a batch reads one item a profile instead of one a
// segment. A profile without a set, or with a stale one (memberships
// stored before sets existed, an evaluation too big for one transaction),
// is evaluated from its membership items, and that evaluation writes its
// set. Every evaluation that writes anything rewrites the set, on
// condition of the version it read: two evaluations of one profile never
// both commit on what the other changed.
//
// An event of a known customer (a profile of one member, with a usable
// set) is evaluated in the transaction that records it (inlineUnit in
// ingest.go), on condition of the member, the set and the aggregates it
// read. Any other event that can affect a segment writes a marker in the
// transaction that records it. evaluate reads a profile's markers, adds their events
// to the aggregates, re-evaluates the segments they can affect, and
// deletes the markers, in one transaction conditioned on every item it
// read, so each event is counted exactly once and every transition is
// exact: a concurrent evaluation of the same profile makes one of the two
// fail its conditions and start over.

// Notice types written to the outbox.
const (
	NoticeSegmentEntered  = "segment.entered"
	NoticeSegmentExited   = "segment.exited"
	NoticeProfileCreated  = "profile.created"
	NoticeProfileMerged   = "profile.merged"
	NoticeProfileUnmerged = "profile.unmerged"
	NoticeProfileErased   = "profile.erased"
)

// Notice is an activation event of a tenant's profiles.
type Notice struct {
	// ID is stable: the same transition always has the same ID.
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	ProfileID string          `json:"profile_id"`
	SegmentID string          `json:"segment_id,omitempty"`
	At        time.Time       `json:"at"`
	Data      json.RawMessage `json:"data"`
	Traits    map[string]any  `json:"traits,omitempty"`
}

// Outbox takes the notices out of the profile store. Its implementation
// (the webhooks service) records them durably in Deliver; a notice leaves
// the store's outbox only after Deliver returned nil for it, so Deliver
// must be idempotent by Notice.ID.
type Outbox interface {
	// Subscribed reports whether any endpoint of the tenant wants notices
	// of the type; notices nobody wants are not written. It may be
	// answered from a cache of about a second.
	Subscribed(ctx context.Context, tenant, typ string) (bool, error)
	Deliver(ctx context.Context, tenant string, notices []Notice) error
}

// SetOutbox sets where notices go; without one none are written. Call it
// before the Service is used.
func (s *Service) SetOutbox(o Outbox) { s.outbox = o }

func queuePK(tenant string) string { return KeyPrefix(tenant) + "Q" }

func markerKey(tenant, member, eventSK string) Key {
	return Key{PK: queuePK(tenant), SK: member + "#" + eventSK}
}

// reevaluateSK is the marker sort key asking for a full evaluation.
func reevaluateKey(tenant, profile string) Key { return markerKey(tenant, profile, "~") }

// legacyAggregateKey is the per-leaf aggregate item of before (see
// aggregates.go).
func legacyAggregateKey(tenant, member, leaf string) Key {
	return Key{PK: KeyPrefix(tenant) + "A#" + member, SK: leaf}
}

func membershipKey(tenant, profile, segment string) Key {
	return Key{PK: KeyPrefix(tenant) + "PS#" + profile, SK: segment}
}

// setSK is the sort key of a profile's membership set, beside its
// membership items (segment IDs start "seg_").
const setSK = "~set"

func membershipSetKey(tenant, profile string) Key { return membershipKey(tenant, profile, setSK) }

// membershipSet is the copy of a profile's memberships.
type membershipSet struct {
	Segments map[string]membershipData
	// Wake is a wake-up written for the profile (see decide), or zero.
	Wake time.Time
	// Stale says the membership items are being changed by transactions
	// that do not rewrite the set: read the items.
	Stale bool
}

// setData is a membershipSet as stored. Every evaluation reads and writes
// its profile's set, so its memberships are one string, which splits many
// times faster than a JSON object decodes: "<segment> <notice> <entered
// at, Unix nanoseconds>" for each, joined by ";" (neither ID holds a space
// or a semicolon).
type setData struct {
	M string `json:"m,omitempty"`
	W int64  `json:"w,omitempty"`
	X bool   `json:"x,omitempty"`
}

// readSet decodes a membership set item.
func readSet(it Item) (membershipSet, error) {
	var d setData
	if err := jsonv2.Unmarshal(it.Data, &d); err != nil {
		return membershipSet{}, fmt.Errorf("membership set %s: %w", it.PK, err)
	}
	m := membershipSet{Segments: make(map[string]membershipData, strings.Count(d.M, ";")+1), Stale: d.X}
	for e := range strings.SplitSeq(d.M, ";") {
		if e == "" {
			continue
		}
		id, rest, _ := strings.Cut(e, " ")
		notice, at, _ := strings.Cut(rest, " ")
		ns, err := strconv.ParseInt(at, 10, 64)
		if err != nil {
			return membershipSet{}, fmt.Errorf("membership set %s: %q: %w", it.PK, e, err)
		}
		m.Segments[id] = membershipData{EnteredAt: time.Unix(0, ns).UTC(), Notice: notice}
	}
	if d.W != 0 {
		m.Wake = time.Unix(0, d.W).UTC()
	}
	return m, nil
}

// decodedSet is readSet, answered from the item's memo when the item cache
// kept one (see itemcache.go). The set's Segments may be shared with other
// readers: they are not to be modified.
func decodedSet(it Item) (membershipSet, error) {
	if m, ok := it.recalled().(*membershipSet); ok {
		return *m, nil
	}
	return readSet(it)
}

// data encodes the set as stored, its memberships in segment order.
func (m membershipSet) data() []byte {
	d := setData{X: m.Stale}
	var b strings.Builder
	for _, id := range slices.Sorted(maps.Keys(m.Segments)) {
		if b.Len() > 0 {
			b.WriteByte(';')
		}
		e := m.Segments[id]
		b.WriteString(id)
		b.WriteByte(' ')
		b.WriteString(e.Notice)
		b.WriteByte(' ')
		b.WriteString(strconv.FormatInt(e.EnteredAt.UnixNano(), 10))
	}
	d.M = b.String()
	if !m.Wake.IsZero() {
		d.W = m.Wake.UnixNano()
	}
	out, _ := json.Marshal(d)
	return out
}

func segmentMembersIndex(tenant, segment string) string {
	return KeyPrefix(tenant) + "SM#" + segment
}

func wakePK(tenant string) string { return KeyPrefix(tenant) + "W" }

// wakeStep is the resolution of wake-ups. With the sweep's period
// (30 s), a profile leaves a window segment within 45 s of the moment it
// stops qualifying.
const wakeStep = 15 * time.Second

func outboxPK(tenant string) string { return KeyPrefix(tenant) + "OB" }

func segmentStatusKey(tenant, id string) Key { return Key{PK: KeyPrefix(tenant) + "SS", SK: id} }

// markData is what a marker says of its event.
type markData struct {
	Type   string         `json:"t"`
	Name   string         `json:"n,omitempty"`
	At     time.Time      `json:"at"`
	Props  map[string]any `json:"p,omitempty"`
	Traits []string       `json:"tr,omitempty"`
	// sk is the event's sort key, from the marker's own key.
	sk string
}

// membershipData is a stored membership.
type membershipData struct {
	EnteredAt time.Time `json:"entered_at"`
	// Notice is the ID of the entered notice; the exit's is derived from it.
	Notice string `json:"notice"`
}

// newNoticeID returns the ID of an entry: random, and stored with the
// membership, so that its exit's ID derives from it.
func newNoticeID() string { return ids.New("ntc_") }

// transitionID derives a stable notice ID from what makes a transition
// unique: the segment, the profile, the kind and the membership's entry.
func transitionID(parts ...string) string {
	return ids.Derive("ntc_", parts...)
}

// compiled is a segment ready to evaluate.
type compiled struct {
	seg  Segment
	node Node
	refs Refs
}

// audience is a tenant's segments indexed by what they read.
type audience struct {
	order  []*compiled // referenced segments before those referencing them
	byID   map[string]*compiled
	leaves map[string]*EventLeaf
	// byName indexes leaves by the events they can count (leafName):
	// an event's cost grows with the leaves that name it, not with all.
	byName  map[string][]string
	byTrait map[string][]string
	byLeaf  map[string][]string
	byIdent []string // segments reading identifiers
	// dependents are the segments that reference each segment.
	dependents map[string][]string
	timed      []string
	// windowed are the event leaves some segment counts in a window
	// (within or between): the others' aggregates keep no times.
	windowed map[string]bool
	// complete are the event leaves whose backfill is done.
	complete map[string]bool
}

func newAudience(all []Segment, complete map[string]bool) *audience {
	a := &audience{byID: map[string]*compiled{}, leaves: map[string]*EventLeaf{}, byName: map[string][]string{}, byTrait: map[string][]string{},
		byLeaf: map[string][]string{}, dependents: map[string][]string{}, windowed: map[string]bool{}, complete: complete}
	for _, g := range all {
		c := &compiled{seg: g, node: g.Tree()}
		c.refs = c.node.Refs()
		a.byID[g.ID] = c
	}
	// Topological order: a segment after every segment it references.
	state := map[string]int{}
	var visit func(id string)
	visit = func(id string) {
		c, ok := a.byID[id]
		if !ok || state[id] != 0 {
			return
		}
		state[id] = 1
		for _, ref := range c.refs.Segments {
			visit(ref)
		}
		state[id] = 2
		a.order = append(a.order, c)
	}
	for _, g := range all {
		visit(g.ID)
	}
	for _, c := range a.order {
		id := c.seg.ID
		for _, t := range c.refs.Traits {
			a.byTrait[t] = append(a.byTrait[t], id)
		}
		for _, l := range c.refs.Events {
			if _, ok := a.leaves[l.Key()]; !ok {
				a.leaves[l.Key()] = l
				n := leafName(l.typ(), l.Event)
				a.byName[n] = append(a.byName[n], l.Key())
			}
			a.byLeaf[l.Key()] = append(a.byLeaf[l.Key()], id)
		}
		if len(c.refs.Identifiers) > 0 {
			a.byIdent = append(a.byIdent, id)
		}
		for _, ref := range c.refs.Segments {
			a.dependents[ref] = append(a.dependents[ref], id)
		}
		if c.refs.TimeDependent {
			a.timed = append(a.timed, id)
		}
		c.node.Walk(func(m Node) {
			if m.Event != nil && (m.Event.Within != "" || m.Event.Between != nil) {
				a.windowed[m.Event.Key()] = true
			}
		})
	}
	return a
}

// leafName is the index key of the events of type typ named name, and of
// the leaves counting them: a leaf naming no event counts every event of
// its type, under name "".
func leafName(typ, name string) string { return typ + "\x00" + name }

// matching calls fn with the key and leaf of each of a's event leaves
// that counts an event (EventLeaf.Matches), until fn returns false.
func (a *audience) matching(typ, name string, props map[string]any, fn func(key string, l *EventLeaf) bool) {
	for _, n := range [2]string{leafName(typ, name), leafName(typ, "")} {
		for _, key := range a.byName[n] {
			if l := a.leaves[key]; l.Matches(typ, name, props) && !fn(key, l) {
				return
			}
		}
		if name == "" {
			return // one list
		}
	}
}

// same reports whether a was compiled from the segments all (each at
// its version) and the complete leaves.
func (a *audience) same(all []Segment, complete map[string]bool) bool {
	if len(all) != len(a.byID) || !maps.Equal(complete, a.complete) {
		return false
	}
	for _, g := range all {
		if c := a.byID[g.ID]; c == nil || c.seg.Version != g.Version {
			return false
		}
	}
	return true
}

// affects reports whether an event, which set the traits moved to other
// values, can change a membership, and so needs a marker.
func (a *audience) affects(ev Event, moved []string) bool {
	if len(a.order) == 0 {
		return false
	}
	if len(a.byIdent) > 0 {
		return true // it may bring an identifier
	}
	for _, t := range moved {
		if len(a.byTrait[t]) > 0 {
			return true
		}
	}
	found := false
	a.matching(ev.Type, cmpOr(ev.Event, ev.Name), ev.Properties, func(string, *EventLeaf) bool {
		found = true
		return false
	})
	return found
}

// markOp returns the marker write of an event of member m, which set the
// traits moved to other values, if the event can affect a segment.
func (a *audience) markOp(tenant, m string, ev Event, moved []string) []Op {
	d, ok := a.markOf(ev, moved)
	if !ok {
		return nil
	}
	data, _ := json.Marshal(d)
	k := markerKey(tenant, m, d.sk)
	return []Op{{Put: &Item{PK: k.PK, SK: k.SK, Data: data}}}
}

// markOf returns what a marker says of an event, which set the traits
// moved to other values, if the event can affect a segment.
func (a *audience) markOf(ev Event, moved []string) (markData, bool) {
	if a == nil || !a.affects(ev, moved) {
		return markData{}, false
	}
	d := markData{Type: ev.Type, Name: cmpOr(ev.Event, ev.Name), At: ev.Timestamp, sk: eventSK(ev.Timestamp, ev.MessageID)}
	a.matching(ev.Type, d.Name, ev.Properties, func(_ string, l *EventLeaf) bool {
		if len(l.Where) > 0 {
			d.Props = ev.Properties
			return false
		}
		return true
	})
	d.Traits = moved
	return d, true
}

// audienceOf returns the tenant's segments, indexed, as last read (at
// most segmentsTTL ago on this replica).
func (s *Service) audienceOf(ctx context.Context, tenant string) (*audience, error) {
	now := s.now()
	s.segments.mu.Lock()
	c, ok := s.segments.m[tenant]
	s.segments.mu.Unlock()
	if ok && !now.Before(c.read) && now.Sub(c.read) < segmentsTTL {
		return c.aud, nil
	}
	var prev *audience
	if ok {
		prev = c.aud
	}
	all, complete, err := s.segmentsAndLeaves(ctx, tenant, prev)
	if err != nil {
		return nil, err
	}
	if prev != nil && prev.same(all, complete) {
		// Nothing changed: the compiled audience stands.
		c = cachedSegments{aud: prev, read: now}
	} else {
		c = cachedSegments{aud: newAudience(all, complete), read: now}
	}
	s.segments.mu.Lock()
	if s.segments.m == nil || len(s.segments.m) >= 10_000 {
		s.segments.m = map[string]cachedSegments{}
	}
	s.segments.m[tenant] = c
	s.segments.mu.Unlock()
	return c.aud, nil
}

// maxEvaluateAttempts bounds evaluate's retries after a lost race.
const maxEvaluateAttempts = 16

// evaluate brings the memberships of the profile holding member up to
// date: it consumes the markers of every member of the profile and
// evaluates the segments they can affect, or every segment when full is
// set, a marker asks for it, or the profile holds memberships of a merged
// member. only, if not empty, limits a full evaluation to those segments
// (and their dependents).
func (s *Service) evaluate(ctx context.Context, tenant, member string, full bool, only ...string) error {
	defer s.relaySoon()
	for range maxEvaluateAttempts {
		err := s.evaluateOnce(ctx, tenant, member, full, only)
		if !errors.Is(err, ErrConditionFailed) {
			return err
		}
	}
	return errors.New("evaluate: too much contention")
}

func (s *Service) evaluateOnce(ctx context.Context, tenant, memberID string, full bool, only []string) error {
	aud, err := s.audienceOf(ctx, tenant)
	if err != nil {
		return err
	}
	r := &resolver{store: s.store, tenant: tenant}
	it, ok, err := s.store.Get(ctx, memberKey(tenant, memberID))
	if err != nil {
		return err
	}
	st := &profileState{root: memberID, current: map[string]held{}, leftover: map[string]held{}}
	if ok {
		m, err := readMember(it)
		if err != nil {
			return err
		}
		st.root = m.Root
		if st.members, err = r.profileMembers(ctx, st.root, m); err != nil {
			return err
		}
	}
	ids := []string{memberID}
	for _, m := range st.members {
		if m.ID != memberID {
			ids = append(ids, m.ID)
		}
	}
	// The markers of every member, and the memberships each holds (a
	// member that was a root before a merge may still hold some).
	for _, id := range ids {
		mk, err := s.store.Query(ctx, QueryInput{PK: queuePK(tenant), Prefix: id + "#"})
		if err != nil {
			return err
		}
		st.markers = append(st.markers, mk...)
		ms, err := s.store.Query(ctx, QueryInput{PK: membershipKey(tenant, id, "").PK})
		if err != nil {
			return err
		}
		for _, it := range ms {
			if err := st.hold(id, it); err != nil {
				return err
			}
		}
	}
	if len(st.members) == 0 {
		// The member is gone (erased): its markers go with it, and the
		// erasure took its memberships.
		var ops []Op
		for _, mk := range st.markers {
			ops = append(ops, Op{Delete: &Key{PK: mk.PK, SK: mk.SK}, IfVersion: mk.Version})
		}
		if len(ops) == 0 {
			return nil
		}
		return s.store.Transact(ctx, ops)
	}
	p, err := aud.plan(st.markers, full || len(st.leftover) > 0 || len(st.members) > 1 && len(st.markers) > 0, only)
	if err != nil {
		return err
	}
	if len(p.leafKeys) > 0 {
		var keys []Key
		var ids []string
		for _, m := range st.members {
			keys, ids = append(keys, aggregatesKey(tenant, m.ID)), append(ids, m.ID)
		}
		read, err := s.store.BatchGet(ctx, keys)
		if err != nil {
			return err
		}
		if st.aggs, err = s.readAggregates(ctx, tenant, ids, read); err != nil {
			return err
		}
	}
	ops, notices, err := s.decide(ctx, tenant, aud, st, p, s.now().UTC(), true)
	if err != nil {
		return err
	}
	if ops, err = s.withNotices(ctx, tenant, st, ops, notices); err != nil {
		return err
	}
	if len(ops) == 0 {
		return nil
	}
	return s.transactChunked(ctx, tenant, st.root, ops)
}

// held is a stored membership as read.
type held struct {
	profile string
	item    Item
	data    membershipData
}

// profileState is what an evaluation read of one profile.
type profileState struct {
	root    string
	members []member
	// markers are the events to consume (with their versions).
	markers []Item
	// current are the root's memberships by segment; leftover those a
	// merged member still holds from before its merge.
	current, leftover map[string]held
	// fromSet, when not nil, are the root's memberships instead of
	// current: those of its membership set as decoded (holdSet), held
	// without a copy, since a profile's evaluation reads a few of them and
	// it may hold many. fromSet is the decoded set's own map: not modified.
	fromSet map[string]membershipData
	setPK   string
	// aggs are the members' aggregates read, by member.
	aggs map[string]*memberAggregates
	// set is the root's membership set as read (Version 0: none), and
	// decoded once read; otherSets those of other members, which only a
	// root keeps.
	set       Item
	decoded   *membershipSet
	otherSets []Item
}

// holdSet records the memberships of the root's set, as read from it
// (with no version: see held.deleteOp): set is what st.readSet returned,
// and the root's memberships are its alone (st.current is empty).
func (st *profileState) holdSet(tenant string, set membershipSet) {
	st.fromSet = set.Segments
	if st.fromSet == nil {
		st.fromSet = map[string]membershipData{}
	}
	st.setPK = membershipKey(tenant, st.root, "").PK
}

// isMember reports whether the root holds a membership of segment id.
func (st *profileState) isMember(id string) bool {
	if st.fromSet == nil {
		_, ok := st.current[id]
		return ok
	}
	_, ok := st.fromSet[id]
	return ok
}

// currentOf returns the root's membership of segment id, if it holds one.
func (st *profileState) currentOf(id string) (held, bool) {
	if st.fromSet == nil {
		h, ok := st.current[id]
		return h, ok
	}
	d, ok := st.fromSet[id]
	return held{profile: st.root, item: Item{PK: st.setPK, SK: id}, data: d}, ok
}

// currentIDs returns the segments of the root's memberships.
func (st *profileState) currentIDs() iter.Seq[string] {
	if st.fromSet != nil {
		return maps.Keys(st.fromSet)
	}
	return maps.Keys(st.current)
}

// readSet returns the root's membership set as read (see decodedSet:
// its Segments are not to be modified).
func (st *profileState) readSet() (membershipSet, error) {
	if st.decoded == nil {
		m, err := decodedSet(st.set)
		if err != nil {
			return m, err
		}
		st.decoded = &m
	}
	return *st.decoded, nil
}

// hold records a membership item of member id.
func (st *profileState) hold(id string, it Item) error {
	if it.SK == setSK {
		if id == st.root {
			st.set = it
		} else {
			st.otherSets = append(st.otherSets, it)
		}
		return nil
	}
	var d membershipData
	if err := json.Unmarshal(it.Data, &d); err != nil {
		return fmt.Errorf("membership %s %s: %w", it.PK, it.SK, err)
	}
	h := held{profile: id, item: it, data: d}
	if id == st.root {
		st.current[it.SK] = h
	} else {
		st.leftover[it.SK] = h
	}
	return nil
}

// evaluation is what an evaluation must read and decide: the segments to
// evaluate, the event leaves whose aggregates it reads or updates, and the
// markers' events by member.
type evaluation struct {
	todo      map[string]bool
	leafKeys  map[string]bool
	perMember map[string][]markData
}

// plan decides, from the markers to consume, which segments an
// evaluation re-evaluates (all of them, or those of only, when all is set
// or a marker asks for it) and which aggregates it needs.
func (a *audience) plan(markers []Item, all bool, only []string) (evaluation, error) {
	perMember := map[string][]markData{}
	for _, mk := range markers {
		if strings.HasSuffix(mk.SK, "#~") {
			all = true
			continue
		}
		var d markData
		if err := json.Unmarshal(mk.Data, &d); err != nil {
			return evaluation{}, fmt.Errorf("marker %s: %w", mk.SK, err)
		}
		m, sk, _ := strings.Cut(mk.SK, "#")
		d.sk = sk
		perMember[m] = append(perMember[m], d)
	}
	return a.planMarks(perMember, all, only), nil
}

// planMarks is plan, from the markers' events by member.
func (a *audience) planMarks(perMember map[string][]markData, all bool, only []string) evaluation {
	p := evaluation{todo: map[string]bool{}, leafKeys: map[string]bool{}, perMember: perMember}
	for _, d := range slices.Concat(slices.Collect(maps.Values(perMember))...) {
		for _, t := range d.Traits {
			for _, id := range a.byTrait[t] {
				p.todo[id] = true
			}
		}
		// Markers feed every aggregate they match, read or not, so that a
		// leaf's aggregate never misses an event.
		a.matching(d.Type, d.Name, d.Props, func(key string, _ *EventLeaf) bool {
			p.leafKeys[key] = true
			for _, id := range a.byLeaf[key] {
				p.todo[id] = true
			}
			return true
		})
		for _, id := range a.byIdent {
			p.todo[id] = true
		}
	}
	if all {
		for _, c := range a.order {
			if len(only) == 0 || slices.Contains(only, c.seg.ID) {
				p.todo[c.seg.ID] = true
			}
		}
	}
	var add func(id string)
	add = func(id string) {
		for _, d := range a.dependents[id] {
			if !p.todo[d] {
				p.todo[d] = true
				add(d)
			}
		}
	}
	for _, id := range slices.Collect(maps.Keys(p.todo)) {
		add(id)
	}
	for id := range p.todo {
		if c := a.byID[id]; c != nil {
			for _, l := range c.refs.Events {
				p.leafKeys[l.Key()] = true
			}
		}
	}
	return p
}

// decide returns the writes of an evaluation of st: the markers consumed,
// the aggregates they update, the transitions of the segments p
// evaluates (with their notices, still without the profile's
// identifiers), and a wake-up for time-dependent segments. Every write is
// conditioned on what st read. With tidy, memberships of segments that no
// longer exist are removed too (st.current must then hold all of them).
func (s *Service) decide(ctx context.Context, tenant string, aud *audience, st *profileState, p evaluation, now time.Time, tidy bool) ([]Op, []Notice, error) {
	var ops []Op
	for _, mk := range st.markers {
		ops = append(ops, Op{Delete: &Key{PK: mk.PK, SK: mk.SK}, IfVersion: mk.Version})
	}
	// The facts: traits and identifiers of every member, their event
	// aggregates for the leaves the segments read (updated by the markers).
	facts := factsOf(st.members)
	keep := retention(aud, now)
	for _, m := range st.members {
		if len(p.leafKeys) == 0 {
			break
		}
		ma := st.aggs[m.ID]
		if ma == nil {
			ma = &memberAggregates{leaves: map[string]*EventAggregate{}}
		}
		changed := false
		for key := range p.leafKeys {
			a, had := ma.leaves[key]
			if !had {
				a = &EventAggregate{}
			}
			touched := false
			if aud.complete[key] && !a.Backfilled {
				// The leaf's backfill is done: every event of this member
				// that it did not count comes through markers.
				a.Backfilled, a.Seen, touched = true, nil, had
			}
			for _, d := range p.perMember[m.ID] {
				if !aud.leaves[key].Matches(d.Type, d.Name, d.Props) {
					continue
				}
				touched = true
				if i := slices.Index(a.Skip, d.sk); i >= 0 {
					a.Skip = slices.Delete(a.Skip, i, i+1) // the backfill counted it
					continue
				}
				a.Add(d.At, now, keep)
				if !a.Backfilled {
					a.Seen = append(a.Seen, d.sk)
				}
			}
			if touched {
				if !aud.windowed[key] {
					a.DropRecent()
				}
				ma.leaves[key], changed = a, true
			}
		}
		// Written before the facts merge other members' aggregates into
		// these; also when nothing changed but the combined item was not
		// stored, so that no later evaluation looks for per-leaf items.
		if changed || ma.item.Version == 0 || len(ma.legacy) > 0 {
			ops = append(ops, ma.writeOps(tenant, m.ID)...)
		}
		for key := range p.leafKeys {
			a := ma.leaves[key]
			if a == nil {
				a = &EventAggregate{}
			}
			if f := facts.Events[key]; f != nil {
				f.Merge(a)
			} else {
				facts.Events[key] = a
			}
		}
	}

	// Evaluate, referenced segments first.
	if st.fromSet != nil {
		facts.held = st.fromSet
	} else {
		for id := range st.current {
			facts.Segments[id] = true
		}
	}
	for id := range st.leftover {
		facts.Segments[id] = true
	}
	var was membershipSet
	if st.set.Version != 0 {
		var err error
		if was, err = st.readSet(); err != nil {
			return nil, nil, err
		}
	}
	// A wake-up the set names, after now, is written already, and the
	// profile is evaluated in full then: only an earlier change needs one.
	var until time.Time
	if was.Wake.After(now) {
		until = was.Wake
	}
	var notices []Notice
	var wake time.Time
	subscribed := func(typ string) bool {
		if s.outbox == nil {
			return false
		}
		ok, err := s.outbox.Subscribed(ctx, tenant, typ)
		return err == nil && ok
	}
	root := st.root
	// final is the root's membership set after the evaluation: the set's
	// own map until a transition changes it (edit), when the set was read.
	final, owned := st.fromSet, false
	if final == nil {
		final, owned = make(map[string]membershipData, len(st.current)), true
		for id, h := range st.current {
			final[id] = h.data
		}
	}
	edit := func() {
		if !owned {
			final, owned = maps.Clone(final), true
		}
	}
	for _, c := range aud.order {
		id := c.seg.ID
		if !p.todo[id] {
			continue // its facts were not read; its wake-up stands
		}
		if c.refs.TimeDependent {
			if t := c.node.NextChangeBefore(facts, now, until); !t.IsZero() && (wake.IsZero() || t.Before(wake)) {
				wake = t
			}
		}
		in := c.node.Eval(facts, now)
		facts.Segments[id] = in
		isMember := st.isMember(id)
		old, wasLeft := st.leftover[id]
		switch {
		case in && !isMember && wasLeft:
			// A merged member's membership carries over: no exit, no entry.
			k := membershipKey(tenant, root, id)
			data, _ := json.Marshal(old.data)
			ops = append(ops, Op{Put: &Item{PK: k.PK, SK: k.SK, GSI1PK: segmentMembersIndex(tenant, id), GSI1SK: root, Data: data}, IfAbsent: true})
			edit()
			final[id] = old.data
		case in && !isMember:
			d := membershipData{EnteredAt: now, Notice: newNoticeID()}
			k := membershipKey(tenant, root, id)
			data, _ := json.Marshal(d)
			ops = append(ops, Op{Put: &Item{PK: k.PK, SK: k.SK, GSI1PK: segmentMembersIndex(tenant, id), GSI1SK: root, Data: data}, IfAbsent: true})
			edit()
			final[id] = d
			if subscribed(NoticeSegmentEntered) {
				notices = append(notices, segmentNotice(NoticeSegmentEntered, d.Notice, c.seg, root, now, d.EnteredAt))
			}
		case !in && isMember:
			cur, _ := st.currentOf(id)
			ops = append(ops, cur.deleteOp())
			edit()
			delete(final, id)
			if subscribed(NoticeSegmentExited) {
				notices = append(notices, segmentNotice(NoticeSegmentExited, transitionID(cur.data.Notice, "exited"), c.seg, root, now, cur.data.EnteredAt))
			}
		}
		if wasLeft {
			ops = append(ops, old.deleteOp())
			if !in && !isMember && subscribed(NoticeSegmentExited) {
				notices = append(notices, segmentNotice(NoticeSegmentExited, transitionID(old.data.Notice, "exited"), c.seg, old.profile, now, old.data.EnteredAt))
			}
		}
	}
	if tidy {
		// Memberships of segments that no longer exist leave without
		// notice: the segment's removal job announced their exits.
		for id := range st.currentIDs() {
			if aud.byID[id] == nil {
				h, _ := st.currentOf(id)
				ops = append(ops, h.deleteOp())
				edit()
				delete(final, id)
			}
		}
		for id, h := range st.leftover {
			if aud.byID[id] == nil {
				ops = append(ops, h.deleteOp())
				edit()
				delete(final, id)
			}
		}
	}
	// The set names a wake-up only while it is written and not due: a
	// wake-up is after now, and the sweep deletes only those due, after
	// evaluating their profile again (which rewrites the set).
	next := membershipSet{Segments: final, Wake: until}
	if !wake.IsZero() {
		// Rounded up to wakeStep, so that a profile whose next change keeps
		// moving (each event moves a window's edge) has one wake-up a step,
		// and never one before its change.
		if r := wake.Truncate(wakeStep); r.Before(wake) {
			wake = r.Add(wakeStep)
		}
		if !wake.Equal(was.Wake) {
			ops = append(ops, Op{Put: &Item{PK: wakePK(tenant), SK: sortTime(wake) + "#" + root, Data: []byte(`{}`)}})
			next.Wake = wake
		}
	}
	// The set, rewritten when it changes (or is missing or stale), on
	// condition of the version read; an evaluation that writes only
	// markers and aggregates checks that version instead, so that two
	// evaluations of one profile never both commit on what the other
	// changed.
	k := membershipSetKey(tenant, root)
	switch {
	case st.set.Version == 0 || was.Stale || owned && !sameSet(was.Segments, final) || !next.Wake.Equal(was.Wake):
		ops = append(ops, Op{Put: &Item{PK: k.PK, SK: k.SK, Data: next.data()}, IfVersion: st.set.Version, IfAbsent: st.set.Version == 0})
	case len(ops) > 0:
		ops = append(ops, Op{Put: &Item{PK: k.PK, SK: k.SK}, Check: true, IfVersion: st.set.Version})
	}
	// Only a root keeps a set: a merged member's goes.
	for _, it := range st.otherSets {
		ops = append(ops, Op{Delete: &Key{PK: it.PK, SK: it.SK}, IfVersion: it.Version})
	}
	// The aggregates read and not written are checked too: another
	// evaluation may have counted an event in them since, changing nothing
	// else, and this one decided without it.
	if len(ops) > 0 && len(p.leafKeys) > 0 {
		ops = append(ops, aggregateChecks(tenant, st, ops)...)
	}
	for i := range notices {
		notices[i].Traits = facts.Traits
	}
	return ops, notices, nil
}

// aggregateChecks returns a version check of each stored aggregates item
// of st's members that ops do not write.
func aggregateChecks(tenant string, st *profileState, ops []Op) []Op {
	written := make(map[Key]bool, len(ops))
	for _, op := range ops {
		written[op.key()] = true
	}
	var checks []Op
	for _, m := range st.members {
		ma := st.aggs[m.ID]
		if k := aggregatesKey(tenant, m.ID); ma != nil && ma.item.Version != 0 && !written[k] {
			checks = append(checks, Op{Put: &Item{PK: k.PK, SK: k.SK}, Check: true, IfVersion: ma.item.Version})
		}
	}
	return checks
}

// sameSet reports whether two membership sets hold the same memberships.
func sameSet(a, b map[string]membershipData) bool {
	return maps.EqualFunc(a, b, func(x, y membershipData) bool {
		return x.EnteredAt.Equal(y.EnteredAt) && x.Notice == y.Notice
	})
}

// deleteOp deletes the membership item, on condition of the version read,
// or, read from the profile's membership set (no version), of its
// existence: the set's own condition covers the rest.
func (h held) deleteOp() Op {
	k := Key{PK: h.item.PK, SK: h.item.SK}
	if h.item.Version == 0 {
		return Op{Delete: &k, IfExists: true}
	}
	return Op{Delete: &k, IfVersion: h.item.Version}
}

// withNotices adds the outbox writes of notices to ops, each with the
// profile's identifiers.
func (s *Service) withNotices(ctx context.Context, tenant string, st *profileState, ops []Op, notices []Notice) ([]Op, error) {
	if len(notices) == 0 {
		return ops, nil
	}
	idents, err := s.identifiersOf(ctx, &resolver{store: s.store, tenant: tenant}, st.members)
	if err != nil {
		return nil, err
	}
	for _, n := range notices {
		n.Data = withIdentifiers(n.Data, idents)
		ops = append(ops, s.noticeOp(tenant, n))
	}
	return ops, nil
}

// evaluateBatch evaluates, together, the profiles of the members an
// ingestion batch marked, consuming the markers the batch wrote (marks, by
// member): one BatchGet for the members, one for their membership sets and
// aggregates, and transactions of several profiles each. It takes only
// profiles known to have a single member (see memberData.Single), the
// usual known customer; it returns the members it left to evaluate, one by
// one, because they are not, or because a write of theirs lost a race.
func (s *Service) evaluateBatch(ctx context.Context, tenant string, aud *audience, marks map[string][]Item) ([]string, error) {
	var slow []string
	keys := make([]Key, 0, len(marks))
	for m := range marks {
		keys = append(keys, memberKey(tenant, m))
	}
	found, err := s.store.BatchGet(ctx, keys)
	if err != nil {
		return nil, err
	}
	type unit struct {
		st *profileState
		p  evaluation
	}
	var units []unit
	var want []Key
	var withAggs []string
	for m, markers := range marks {
		it, ok := found[memberKey(tenant, m)]
		if !ok {
			slow = append(slow, m)
			continue
		}
		mb, err := readMember(it)
		if err != nil {
			return nil, err
		}
		if mb.Root != mb.ID || !mb.Single {
			slow = append(slow, m)
			continue
		}
		p, err := aud.plan(markers, false, nil)
		if err != nil {
			return nil, err
		}
		st := &profileState{root: m, members: []member{mb}, markers: markers, current: map[string]held{}, leftover: map[string]held{}}
		units = append(units, unit{st, p})
		if len(p.leafKeys) > 0 {
			want = append(want, aggregatesKey(tenant, m))
			withAggs = append(withAggs, m)
		}
		want = append(want, membershipSetKey(tenant, m))
	}
	read, err := s.store.BatchGet(ctx, want)
	if err != nil {
		return nil, err
	}
	aggs, err := s.readAggregates(ctx, tenant, withAggs, read)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	var txs [][]Op
	var txMembers [][]string
	for _, u := range units {
		st := u.st
		st.aggs = aggs
		// The memberships, from the profile's set; without a usable one,
		// from its items, alone.
		it, ok := read[membershipSetKey(tenant, st.root)]
		if !ok {
			slow = append(slow, st.root)
			continue
		}
		st.set = it
		set, err := st.readSet()
		if err != nil {
			return nil, err
		}
		if set.Stale {
			slow = append(slow, st.root)
			continue
		}
		st.holdSet(tenant, set)
		ops, notices, err := s.decide(ctx, tenant, aud, st, u.p, now, false)
		if err != nil {
			return nil, err
		}
		if ops, err = s.withNotices(ctx, tenant, st, ops, notices); err != nil {
			return nil, err
		}
		switch n := len(txs); {
		case len(ops) > MaxTransactOps:
			slow = append(slow, st.root)
		case n > 0 && len(txs[n-1])+len(ops) <= MaxTransactOps:
			txs[n-1] = append(txs[n-1], ops...)
			txMembers[n-1] = append(txMembers[n-1], st.root)
		default:
			txs = append(txs, ops)
			txMembers = append(txMembers, []string{st.root})
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var firstErr error
	for i, tx := range txs {
		wg.Go(func() {
			err := s.store.Transact(ctx, tx)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, ErrConditionFailed):
				slow = append(slow, txMembers[i]...)
			case err != nil && firstErr == nil:
				firstErr = err
			}
		})
	}
	wg.Wait()
	return slow, firstErr
}

// transactChunked applies ops, in one transaction when they fit. When they
// do not, the markers and aggregates go first with a marker asking for a
// full evaluation and the membership set marked stale, then the
// transitions in transactions of their own, so that a crash between them
// leaves the profile marked for evaluation, and no one reads the set
// meanwhile.
func (s *Service) transactChunked(ctx context.Context, tenant, root string, ops []Op) error {
	if len(ops) <= MaxTransactOps {
		return s.store.Transact(ctx, ops)
	}
	again := reevaluateKey(tenant, root)
	first := []Op{{Put: &Item{PK: again.PK, SK: again.SK, Data: []byte(`{}`)}}}
	var rest []Op
	for _, op := range ops {
		k := op.key()
		switch {
		case k.SK == setSK && strings.HasPrefix(k.PK, KeyPrefix(tenant)+"PS#"):
			if op.Put != nil && !op.Check {
				set, err := readSet(*op.Put)
				if err != nil {
					return err
				}
				// The evaluation that follows writes the wake-up again.
				set.Stale, set.Wake = true, time.Time{}
				it := *op.Put
				it.Data = set.data()
				op.Put = &it
			}
			first = append(first, op)
		case k.PK == queuePK(tenant), strings.HasPrefix(k.PK, KeyPrefix(tenant)+"A#"):
			first = append(first, op)
		default:
			rest = append(rest, op)
		}
	}
	for chunk := range slices.Chunk(first, MaxTransactOps) {
		if err := s.store.Transact(ctx, chunk); err != nil {
			return err
		}
	}
	// Each membership write with the notice after it, in one transaction.
	for len(rest) > 0 {
		n := min(len(rest), MaxTransactOps-1)
		if n < len(rest) && rest[n].key().PK == outboxPK(tenant) {
			n--
		}
		if err := s.store.Transact(ctx, rest[:n]); err != nil && !errors.Is(err, ErrConditionFailed) {
			return err
		}
		rest = rest[n:]
	}
	return s.evaluate(ctx, tenant, root, true)
}

func (op Op) key() Key {
	if op.Put != nil {
		return Key{PK: op.Put.PK, SK: op.Put.SK}
	}
	return *op.Delete
}

// retention is how long aggregates keep daily counts: the longest any
// segment of the tenant needs (0: for ever).
func retention(a *audience, now time.Time) time.Duration {
	var keep time.Duration
	for _, c := range a.order {
		if len(c.refs.Events) == 0 {
			continue
		}
		k := c.refs.Keep(now)
		if k == 0 {
			return 0
		}
		keep = max(keep, k)
	}
	return keep
}

// identifiersOf lists the identifiers of a profile's members.
func (s *Service) identifiersOf(ctx context.Context, r *resolver, members []member) ([]ProfileIdentifier, error) {
	var out []ProfileIdentifier
	for _, m := range members {
		ids, err := r.memberIdentifiers(ctx, m.ID)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			out = append(out, ProfileIdentifier(id))
		}
	}
	slices.SortFunc(out, func(a, b ProfileIdentifier) int {
		return strings.Compare(a.Type+"#"+a.Value, b.Type+"#"+b.Value)
	})
	return out, nil
}

func segmentNotice(typ, id string, g Segment, profile string, at, entered time.Time) Notice {
	data, _ := json.Marshal(map[string]any{
		"segment":    map[string]any{"id": g.ID, "name": g.Name},
		"profile_id": profile,
		"entered_at": entered,
	})
	return Notice{ID: id, Type: typ, ProfileID: profile, SegmentID: g.ID, At: at, Data: data}
}

// withIdentifiers adds the profile's identifiers to a notice's data.
func withIdentifiers(data json.RawMessage, ids []ProfileIdentifier) json.RawMessage {
	var m map[string]any
	_ = json.Unmarshal(data, &m)
	list := make([]map[string]string, len(ids))
	for i, id := range ids {
		list[i] = map[string]string{"type": id.Type, "value": id.Value}
	}
	m["identifiers"] = list
	out, _ := json.Marshal(m)
	return out
}

// noticeOp writes a notice to the tenant's outbox, and notes that the
// tenant's outbox is to be relayed (relaySoon). Its sort key starts with
// the time, so the relay reads notices in order.
func (s *Service) noticeOp(tenant string, n Notice) Op {
	s.relays.Store(tenant, true)
	data, _ := json.Marshal(n)
	return Op{Put: &Item{PK: outboxPK(tenant), SK: sortTime(n.At) + "#" + n.ID, Data: data}}
}

// relaySoon relays, in the background, the outboxes of the tenants for
// which notices were written since it last ran: a caller calls it once its
// transactions committed, so that a notice is delivered within moments
// rather than at the next sweep. One relay runs at a time a replica.
func (s *Service) relaySoon() {
	if s.outbox == nil || !s.relayRunning.CompareAndSwap(false, true) {
		return
	}
	go func() {
		for {
			var tenants []string
			s.relays.Range(func(k, _ any) bool {
				s.relays.Delete(k)
				tenants = append(tenants, k.(string))
				return true
			})
			if len(tenants) == 0 {
				s.relayRunning.Store(false)
				// A notice noted between the Range and the Store above found
				// the relay still running: look once more, unless another
				// relaySoon has taken over.
				if !s.hasRelays() || !s.relayRunning.CompareAndSwap(false, true) {
					return
				}
				continue
			}
			for _, t := range tenants {
				// A failure is left to the sweep.
				_, _ = s.Relay(context.Background(), t)
			}
		}
	}()
}

// hasRelays reports whether a tenant's outbox is noted for relaying.
func (s *Service) hasRelays() bool {
	found := false
	s.relays.Range(func(any, any) bool { found = true; return false })
	return found
}

// Relay hands the tenant's outbox to the Outbox, oldest first, and deletes
// what it took. It returns how many notices it relayed.
func (s *Service) Relay(ctx context.Context, tenant string) (int, error) {
	if s.outbox == nil {
		return 0, nil
	}
	// One relay at a time on this replica, so that the same notices are not
	// handed over twice at once (Deliver is idempotent, but why pay).
	s.relayMu.Lock()
	defer s.relayMu.Unlock()
	total := 0
	for {
		items, err := s.store.Query(ctx, QueryInput{PK: outboxPK(tenant), Limit: 100})
		if err != nil || len(items) == 0 {
			return total, err
		}
		notices := make([]Notice, len(items))
		ops := make([]Op, len(items))
		for i, it := range items {
			if err := json.Unmarshal(it.Data, &notices[i]); err != nil {
				return total, fmt.Errorf("outbox %s: %w", it.SK, err)
			}
			ops[i] = Op{Delete: &Key{PK: it.PK, SK: it.SK}}
		}
		// A notice leaves only once what it announces is durable.
		if sy, ok := s.store.(Syncer); ok {
			if err := sy.Sync(ctx); err != nil {
				return total, err
			}
		}
		if err := s.outbox.Deliver(ctx, tenant, notices); err != nil {
			return total, err
		}
		if err := s.store.Transact(ctx, ops); err != nil {
			return total, err
		}
		total += len(items)
		if len(items) < 100 {
			return total, nil
		}
	}
}

// Pending evaluates what the tenant's queue holds (markers left by a crash
// or by another replica) and the profiles whose time-dependent segments
// are due, and returns how many profiles it evaluated. A periodic job
// calls it for every tenant with segments.
func (s *Service) Pending(ctx context.Context, tenant string) (int, error) {
	done := map[string]bool{}
	n := 0
	for {
		items, err := s.store.Query(ctx, QueryInput{PK: queuePK(tenant), Limit: 500})
		if err != nil {
			return n, err
		}
		progressed := false
		for _, it := range items {
			m, _, _ := strings.Cut(it.SK, "#")
			if done[m] {
				continue
			}
			done[m] = true
			progressed = true
			if err := s.evaluate(ctx, tenant, m, false); err != nil {
				return n, err
			}
			n++
		}
		if !progressed {
			break
		}
	}
	now := sortTime(s.now())
	for {
		items, err := s.store.Query(ctx, QueryInput{PK: wakePK(tenant), Limit: 500})
		if err != nil {
			return n, err
		}
		var due []Op
		for _, it := range items {
			if it.SK > now {
				break
			}
			_, root, _ := strings.Cut(it.SK, "#")
			if err := s.evaluate(ctx, tenant, root, true); err != nil {
				return n, err
			}
			n++
			due = append(due, Op{Delete: &Key{PK: it.PK, SK: it.SK}})
		}
		for chunk := range slices.Chunk(due, MaxTransactOps) {
			if err := s.store.Transact(ctx, chunk); err != nil {
				return n, err
			}
		}
		if len(due) < 500 {
			return n, nil
		}
	}
}

// leaveAudiences removes an erased profile from every segment, each exit
// with its notice (carrying no identifier or trait), and drops its
// members' aggregates and markers; the profile.erased notice goes with the
// first transaction. It is safe to run again.
func (s *Service) leaveAudiences(ctx context.Context, tenant string, e Erasure) error {
	subscribed := func(typ string) bool {
		if s.outbox == nil {
			return false
		}
		ok, err := s.outbox.Subscribed(ctx, tenant, typ)
		return err == nil && ok
	}
	now := s.now().UTC()
	var pairs [][]Op
	if subscribed(NoticeProfileErased) {
		data, _ := json.Marshal(map[string]any{"profile_id": e.ProfileID, "erasure_id": e.ID})
		n := Notice{ID: transitionID(tenant, e.ID, "erased"), Type: NoticeProfileErased, ProfileID: e.ProfileID, At: now, Data: data}
		// An outbox item that already went out must not go twice: its key
		// is stable, and IfAbsent makes a rerun skip it... unless relayed;
		// receivers deduplicate by its ID then.
		pairs = append(pairs, []Op{s.noticeOp(tenant, n)})
	}
	var sets, rest []Op
	for _, m := range e.Members {
		ms, err := s.store.Query(ctx, QueryInput{PK: membershipKey(tenant, m, "").PK})
		if err != nil {
			return err
		}
		for _, it := range ms {
			if it.SK == setSK {
				// The set goes first: the exits below do not rewrite it.
				sets = append(sets, Op{Delete: &Key{PK: it.PK, SK: it.SK}})
				continue
			}
			pair := []Op{{Delete: &Key{PK: it.PK, SK: it.SK}, IfExists: true}}
			var d membershipData
			if json.Unmarshal(it.Data, &d) == nil && subscribed(NoticeSegmentExited) {
				data, _ := json.Marshal(map[string]any{"segment": map[string]any{"id": it.SK}, "profile_id": m, "entered_at": d.EnteredAt, "reason": "erased"})
				pair = append(pair, s.noticeOp(tenant, Notice{ID: transitionID(d.Notice, "exited"), Type: NoticeSegmentExited, ProfileID: m, SegmentID: it.SK, At: now, Data: data}))
			}
			pairs = append(pairs, pair)
		}
		for _, q := range []QueryInput{{PK: KeyPrefix(tenant) + "A#" + m}, {PK: queuePK(tenant), Prefix: m + "#"}} {
			items, err := s.store.Query(ctx, q)
			if err != nil {
				return err
			}
			for _, it := range items {
				rest = append(rest, Op{Delete: &Key{PK: it.PK, SK: it.SK}})
			}
		}
	}
	for chunk := range slices.Chunk(sets, MaxTransactOps) {
		if err := s.store.Transact(ctx, chunk); err != nil {
			return err
		}
	}
	for _, pair := range pairs {
		err := s.store.Transact(ctx, pair)
		if err != nil && !errors.Is(err, ErrConditionFailed) {
			return err
		}
	}
	for chunk := range slices.Chunk(rest, MaxTransactOps) {
		if err := s.store.Transact(ctx, chunk); err != nil {
			return err
		}
	}
	s.relaySoon()
	return nil
}

// profileNotices returns the outbox writes announcing a new profile
// (merged nil) or a merge into root, for whoever subscribed. Their IDs
// derive from the event that caused them, so a retried event (which the
// dedup marker keeps from being applied twice) cannot announce twice.
// A new profile is announced as the event makes it, with ids (the event's
// identifiers) and the traits an identify gives it, as segment notices
// carry them: a receiver learns whose profile it is and, from the traits
// its endpoint asks for, what it is like.
func (s *Service) profileNotices(ctx context.Context, tenant string, ev Event, ids []Identifier, root string, merged []string, now time.Time) []Op {
	if s.outbox == nil {
		return nil
	}
	typ, data := NoticeProfileCreated, map[string]any{"profile_id": root}
	if merged != nil {
		typ, data = NoticeProfileMerged, map[string]any{"profile_id": root, "merged_profile_ids": merged}
	}
	if ok, err := s.outbox.Subscribed(ctx, tenant, typ); err != nil || !ok {
		return nil
	}
	d, _ := json.Marshal(data)
	n := Notice{ID: transitionID(tenant, typ, ev.MessageID, root), Type: typ, ProfileID: root, At: now, Data: d}
	if merged == nil {
		idents := make([]ProfileIdentifier, len(ids))
		for i, id := range ids {
			idents[i] = ProfileIdentifier{Type: id.Type, Value: id.Value}
		}
		slices.SortFunc(idents, func(a, b ProfileIdentifier) int {
			return strings.Compare(a.Type+"#"+a.Value, b.Type+"#"+b.Value)
		})
		n.Data = withIdentifiers(n.Data, idents)
		if ev.Type == "identify" { // as setTraits
			n.Traits = ev.Traits
		}
	}
	return []Op{s.noticeOp(tenant, n)}
}

// factsOf returns the facts of a profile's members that their items hold:
// the traits (each member's latest value wins) and the identifier types.
func factsOf(members []member) Facts {
	f := NewFacts()
	latest := map[string]time.Time{}
	for _, m := range members {
		for k, v := range m.Traits {
			if t, ok := latest[k]; !ok || v.At.After(t) {
				latest[k], f.Traits[k] = v.At, v.V
			}
		}
		for t, n := range m.Held {
			if n > 0 {
				f.Identifiers[t] = true
			}
		}
	}
	return f
}
