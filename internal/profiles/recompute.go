package profiles

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Segment computation statuses.
const (
	SegmentComputing = "computing"
	SegmentReady     = "ready"
)

// Sentinel errors of segment edits.
var (
	// ErrSegmentVersion: the segment changed since the version the edit
	// names (If-Match).
	ErrSegmentVersion = errors.New("segment changed since that version")
	// ErrSegmentReferenced: another segment's definition references it.
	ErrSegmentReferenced = errors.New("segment referenced by another segment")
)

// SegmentStatus is where a segment's computation is.
type SegmentStatus struct {
	Status string `json:"status"`
	// Progress is the share of profiles computed, 0 to 100.
	Progress float64 `json:"progress"`
	// Version is the segment version being (or last) computed.
	Version    int64     `json:"version"`
	StartedAt  time.Time `json:"started_at"`
	ComputedAt time.Time `json:"computed_at,omitzero"`
}

// RecomputeArgs is the durable job that computes a segment's memberships
// over every profile of the tenant (or, for a deleted segment, removes
// them).
type RecomputeArgs struct {
	TenantID  string `json:"tenant_id"`
	SegmentID string `json:"segment_id"`
	Version   int64  `json:"version"`
}

// Kind implements river.JobArgs.
func (RecomputeArgs) Kind() string { return "segment_recompute" }

// checkReferences refuses a definition that references a segment that
// does not exist, or that would make a cycle.
func (s *Service) checkReferences(ctx context.Context, tenant, id string, g Segment) error {
	if g.Definition == nil {
		return nil
	}
	refs := g.Definition.Refs().Segments
	if len(refs) == 0 {
		return nil
	}
	all, err := s.Segments(ctx, tenant, "", 0)
	if err != nil {
		return err
	}
	byID := map[string]Segment{}
	for _, x := range all {
		byID[x.ID] = x
	}
	for _, ref := range refs {
		if _, ok := byID[ref]; !ok {
			return &ValidationError{Field: "/definition", Reason: fmt.Sprintf("segment %s does not exist", ref)}
		}
	}
	if id == "" {
		return nil // a new segment: nothing references it yet
	}
	cycle := SegmentCycle(id, *g.Definition, func(ref string) (Node, bool) {
		x, ok := byID[ref]
		if !ok {
			return Node{}, false
		}
		return x.Tree(), true
	})
	if cycle != nil {
		return &ValidationError{Field: "/definition", Reason: "segments may not reference each other in a cycle: " + strings.Join(cycle, " → ")}
	}
	return nil
}

// UpdateSegment edits a segment at version (0: any) with edit, and queues
// its computation when its definition changed.
func (s *Service) UpdateSegment(ctx context.Context, tenant, id string, version int64, edit func(*Segment) error, queue func(context.Context, RecomputeArgs) error) (Segment, error) {
	g, err := s.GetSegment(ctx, tenant, id)
	if err != nil {
		return Segment{}, err
	}
	read := g.Version
	if version != 0 && version != read {
		return Segment{}, ErrSegmentVersion
	}
	before, _ := json.Marshal(g.Tree())
	if err := edit(&g); err != nil {
		return Segment{}, err
	}
	if err := g.validate(); err != nil {
		return Segment{}, err
	}
	if err := s.checkReferences(ctx, tenant, id, g); err != nil {
		return Segment{}, err
	}
	g.UpdatedAt = s.now().UTC().Truncate(time.Millisecond)
	d, _ := json.Marshal(g)
	k := segmentKey(tenant, id)
	err = s.store.Transact(ctx, []Op{{Put: &Item{PK: k.PK, SK: k.SK, Data: d}, IfVersion: read}})
	if errors.Is(err, ErrConditionFailed) {
		return Segment{}, ErrSegmentVersion
	}
	if err != nil {
		return Segment{}, err
	}
	s.forgetSegments(tenant)
	g.Version = read + 1
	if after, _ := json.Marshal(g.Tree()); string(after) != string(before) {
		return g, s.startRecompute(ctx, tenant, g, queue)
	}
	return g, nil
}

// RemoveSegment deletes a segment that no other segment references, and
// queues the removal of its memberships (each member gets an exit).
func (s *Service) RemoveSegment(ctx context.Context, tenant, id string, queue func(context.Context, RecomputeArgs) error) error {
	all, err := s.Segments(ctx, tenant, "", 0)
	if err != nil {
		return err
	}
	for _, x := range all {
		if x.ID != id && slices.Contains(x.Tree().Refs().Segments, id) {
			return fmt.Errorf("%w: %s", ErrSegmentReferenced, x.ID)
		}
	}
	if err := s.DeleteSegment(ctx, tenant, id); err != nil {
		return err
	}
	return queue(ctx, RecomputeArgs{TenantID: tenant, SegmentID: id})
}

// startRecompute marks the segment computing and queues its computation.
func (s *Service) startRecompute(ctx context.Context, tenant string, g Segment, queue func(context.Context, RecomputeArgs) error) error {
	if err := s.saveStatus(ctx, tenant, g.ID, SegmentStatus{Status: SegmentComputing, Version: g.Version, StartedAt: s.now().UTC()}); err != nil {
		return err
	}
	return queue(ctx, RecomputeArgs{TenantID: tenant, SegmentID: g.ID, Version: g.Version})
}

// Recompute queues a computation of the segment over every profile.
func (s *Service) Recompute(ctx context.Context, tenant, id string, queue func(context.Context, RecomputeArgs) error) (SegmentStatus, error) {
	g, err := s.GetSegment(ctx, tenant, id)
	if err != nil {
		return SegmentStatus{}, err
	}
	if err := s.startRecompute(ctx, tenant, g, queue); err != nil {
		return SegmentStatus{}, err
	}
	return s.Status(ctx, tenant, id)
}

func (s *Service) saveStatus(ctx context.Context, tenant, id string, st SegmentStatus) error {
	k := segmentStatusKey(tenant, id)
	d, _ := json.Marshal(st)
	return s.store.Transact(ctx, []Op{{Put: &Item{PK: k.PK, SK: k.SK, Data: d}}})
}

// Status returns the segment's computation status; a segment never
// computed (made before stored memberships) is ready.
func (s *Service) Status(ctx context.Context, tenant, id string) (SegmentStatus, error) {
	it, ok, err := s.store.Get(ctx, segmentStatusKey(tenant, id))
	if err != nil || !ok {
		return SegmentStatus{Status: SegmentReady, Progress: 100}, err
	}
	var st SegmentStatus
	return st, json.Unmarshal(it.Data, &st)
}

// SegmentMember is a profile in a segment.
type SegmentMember struct {
	ProfileID string
	EnteredAt time.Time
}

// Members pages a segment's members by profile ID, after after.
func (s *Service) Members(ctx context.Context, tenant, id, after string, limit int) ([]SegmentMember, error) {
	if _, err := s.GetSegment(ctx, tenant, id); err != nil {
		return nil, err
	}
	items, err := s.store.Query(ctx, QueryInput{PK: segmentMembersIndex(tenant, id), Index: "gsi1", After: after, Limit: limit})
	if err != nil {
		return nil, err
	}
	out := make([]SegmentMember, len(items))
	for i, it := range items {
		var d membershipData
		if err := json.Unmarshal(it.Data, &d); err != nil {
			return nil, err
		}
		out[i] = SegmentMember{ProfileID: it.GSI1SK, EnteredAt: d.EnteredAt}
	}
	return out, nil
}

// MemberCount counts a segment's members.
func (s *Service) MemberCount(ctx context.Context, tenant, id string) (int, error) {
	return s.store.Count(ctx, QueryInput{PK: segmentMembersIndex(tenant, id), Index: "gsi1"})
}

// profileFacts is one profile as a bulk scan assembled it.
type profileFacts struct {
	root  string
	facts Facts
	// total is how many profiles the scan found.
	total int
}

// scanProfiles assembles the facts of every profile of the tenant that
// the node reads, from whole-tenant scans (members, and the aggregates of
// its event leaves) and the members of the segments it references, and
// calls fn for each profile. It is for jobs and previews, never per event.
func (s *Service) scanProfiles(ctx context.Context, tenant string, node Node, fn func(p profileFacts) error) error {
	refs := node.Refs()
	byRoot := map[string][]member{}
	var roots []string
	after := Key{}
	for {
		items, next, err := s.store.Scan(ctx, ScanInput{PKPrefix: KeyPrefix(tenant) + "M#", SK: "M", After: after, Limit: 5000})
		if err != nil {
			return err
		}
		for _, it := range items {
			m, err := readMember(it)
			if err != nil {
				return err
			}
			if _, ok := byRoot[m.Root]; !ok {
				roots = append(roots, m.Root)
			}
			byRoot[m.Root] = append(byRoot[m.Root], m)
		}
		if next == (Key{}) {
			break
		}
		after = next
	}
	// Aggregates: the stored ones of complete leaves; of the others (a
	// preview of a new leaf), counted from the events.
	aud, err := s.audienceOf(ctx, tenant)
	if err != nil {
		return err
	}
	var incomplete []*EventLeaf
	aggs := map[string]map[string]*EventAggregate{} // leaf key → member → aggregate
	for _, l := range refs.Events {
		if key := l.Key(); aud.complete[key] {
			aggs[key] = map[string]*EventAggregate{}
		} else {
			incomplete = append(incomplete, l)
		}
	}
	if len(aggs) > 0 {
		if err := s.scanAggregates(ctx, tenant, aggs); err != nil {
			return err
		}
	}
	counted, err := s.eventAggregates(ctx, tenant, incomplete, retention(aud, s.now().UTC()))
	if err != nil {
		return err
	}
	maps.Copy(aggs, counted)
	members := map[string]map[string]bool{}
	for _, ref := range refs.Segments {
		items, err := s.store.Query(ctx, QueryInput{PK: segmentMembersIndex(tenant, ref), Index: "gsi1"})
		if err != nil {
			return err
		}
		members[ref] = make(map[string]bool, len(items))
		for _, it := range items {
			members[ref][it.GSI1SK] = true
		}
	}
	slices.Sort(roots)
	for _, root := range roots {
		if err := ctx.Err(); err != nil {
			return err
		}
		f := factsOf(byRoot[root])
		for _, m := range byRoot[root] {
			for key, byMember := range aggs {
				if a := byMember[m.ID]; a != nil {
					if f.Events[key] == nil {
						f.Events[key] = &EventAggregate{}
					}
					f.Events[key].Merge(a)
				}
			}
		}
		for ref, set := range members {
			f.Segments[ref] = set[root]
		}
		if err := fn(profileFacts{root: root, facts: f, total: len(roots)}); err != nil {
			return err
		}
	}
	return nil
}

// errStop ends a scan early.
var errStop = errors.New("stop")

// Preview evaluates an unsaved definition over the tenant's profiles,
// writing nothing: how many are members, and up to sample of them (by
// profile ID).
func (s *Service) Preview(ctx context.Context, tenant string, def Node, sample int) (int, []string, error) {
	now := s.now().UTC()
	n := 0
	var ids []string
	err := s.scanProfiles(ctx, tenant, def, func(p profileFacts) error {
		if def.Eval(p.facts, now) {
			n++
			if len(ids) < sample {
				ids = append(ids, p.root)
			}
		}
		return nil
	})
	return n, ids, err
}

// statusEvery is how many profiles a computation goes through between
// two progress updates.
const statusEvery = 5000

// RunRecompute is the segment computation job: it evaluates the segment
// over every profile, from scans, and writes each transition (with its
// notice) conditioned on the membership it read, so that a profile
// evaluated concurrently by an event is left to that evaluation (it is
// evaluated again, alone, when a condition fails). A segment that no
// longer exists loses its members, each with an exit. Running it again
// after a crash finishes the work: what is done already is no transition.
func (s *Service) RunRecompute(ctx context.Context, args RecomputeArgs) error {
	tenant := args.TenantID
	g, err := s.GetSegment(ctx, tenant, args.SegmentID)
	gone := errors.Is(err, ErrSegmentNotFound)
	if err != nil && !gone {
		return err
	}
	if !gone && args.Version != 0 && g.Version > args.Version {
		return nil // a later edit queued its own computation
	}
	if gone {
		g = Segment{ID: args.SegmentID}
	}
	start := s.now().UTC()
	st := SegmentStatus{Status: SegmentComputing, Version: g.Version, StartedAt: start}
	// The members now, by profile.
	current := map[string]Item{}
	items, err := s.store.Query(ctx, QueryInput{PK: segmentMembersIndex(tenant, g.ID), Index: "gsi1"})
	if err != nil {
		return err
	}
	for _, it := range items {
		current[it.GSI1SK] = it
	}
	subscribed := func(typ string) bool {
		if s.outbox == nil {
			return false
		}
		ok, err := s.outbox.Subscribed(ctx, tenant, typ)
		return err == nil && ok
	}
	// The transitions waiting to be written: their ops, profile, and the
	// membership entered (nil for an exit), for the profile's set.
	var pending [][]Op
	var pendingRoots []string
	var pendingEntry []*membershipData
	flush := func() error {
		if err := s.withSets(ctx, tenant, g.ID, pending, pendingRoots, pendingEntry); err != nil {
			return err
		}
		pendingEntry = pendingEntry[:0]
		var tx []Op
		var roots []string
		run := func() error {
			if len(tx) == 0 {
				return nil
			}
			err := s.store.Transact(ctx, tx)
			if errors.Is(err, ErrConditionFailed) {
				// Someone else changed these profiles: evaluate each alone.
				for _, root := range roots {
					if err := s.evaluate(ctx, tenant, root, true, g.ID); err != nil {
						return err
					}
				}
				err = nil
			}
			tx, roots = tx[:0], roots[:0]
			return err
		}
		for i, ops := range pending {
			if len(tx)+len(ops) > MaxTransactOps {
				if err := run(); err != nil {
					return err
				}
			}
			tx = append(tx, ops...)
			roots = append(roots, pendingRoots[i])
		}
		pending, pendingRoots = pending[:0], pendingRoots[:0]
		return run()
	}
	// identified adds the profile's identifiers to a notice, as the
	// notices of its events carry them.
	identified := func(n Notice, root string) (Notice, error) {
		r := &resolver{store: s.store, tenant: tenant}
		members, err := r.profileMembers(ctx, root)
		if err != nil {
			return n, err
		}
		idents, err := s.identifiersOf(ctx, r, members)
		if err != nil {
			return n, err
		}
		n.Data = withIdentifiers(n.Data, idents)
		return n, nil
	}
	exit := func(root string, it Item) error {
		ops := []Op{{Delete: &Key{PK: membershipKey(tenant, root, g.ID).PK, SK: g.ID}, IfVersion: it.Version}}
		var d membershipData
		if json.Unmarshal(it.Data, &d) == nil && subscribed(NoticeSegmentExited) {
			n, err := identified(segmentNotice(NoticeSegmentExited, transitionID(d.Notice, "exited"), g, root, start, d.EnteredAt), root)
			if err != nil {
				return err
			}
			ops = append(ops, s.noticeOp(tenant, n))
		}
		pending, pendingRoots, pendingEntry = append(pending, ops), append(pendingRoots, root), append(pendingEntry, nil)
		return nil
	}
	if gone {
		for root, it := range current {
			if err := exit(root, it); err != nil {
				return err
			}
		}
		if err := flush(); err != nil {
			return err
		}
		k := segmentStatusKey(tenant, g.ID)
		return s.store.Transact(ctx, []Op{{Delete: &k}})
	}
	if err := s.saveStatus(ctx, tenant, g.ID, st); err != nil {
		return err
	}
	node := g.Tree()
	// Event leaves new to the tenant count the events from before them.
	aud, err := s.audienceOf(ctx, tenant)
	if err != nil {
		return err
	}
	waited := false
	for _, l := range node.Refs().Events {
		if aud.complete[l.Key()] {
			continue
		}
		if !waited {
			// Every replica writes the leaf's markers within segmentsTTL of
			// the segment's save; from then on, the backfill misses nothing.
			waited = true
			t := time.NewTimer(segmentsTTL)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		if err := s.backfill(ctx, tenant, l, retention(aud, start)); err != nil {
			return err
		}
	}
	done := 0
	err = s.scanProfiles(ctx, tenant, node, func(p profileFacts) error {
		in := node.Eval(p.facts, start)
		it, isMember := current[p.root]
		delete(current, p.root)
		switch {
		case in && !isMember:
			d := membershipData{EnteredAt: start, Notice: newNoticeID()}
			k := membershipKey(tenant, p.root, g.ID)
			data, _ := json.Marshal(d)
			ops := []Op{{Put: &Item{PK: k.PK, SK: k.SK, GSI1PK: segmentMembersIndex(tenant, g.ID), GSI1SK: p.root, Data: data}, IfAbsent: true}}
			if subscribed(NoticeSegmentEntered) {
				n, err := identified(segmentNotice(NoticeSegmentEntered, d.Notice, g, p.root, start, start), p.root)
				if err != nil {
					return err
				}
				n.Traits = p.facts.Traits
				ops = append(ops, s.noticeOp(tenant, n))
			}
			pending, pendingRoots, pendingEntry = append(pending, ops), append(pendingRoots, p.root), append(pendingEntry, &d)
		case !in && isMember:
			if err := exit(p.root, it); err != nil {
				return err
			}
		}
		if len(pending) >= 200 {
			if err := flush(); err != nil {
				return err
			}
		}
		done++
		if done%statusEvery == 0 && p.total > 0 {
			st.Progress = min(99, float64(done)*100/float64(p.total))
			return s.saveStatus(ctx, tenant, g.ID, st)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := flush(); err != nil {
		return err
	}
	// Members whose profile is gone (merged away or erased) are left to
	// their profile's own evaluation.
	for root := range current {
		if err := s.evaluate(ctx, tenant, root, true, g.ID); err != nil {
			return err
		}
	}
	s.relaySoon()
	st.Status, st.Progress, st.ComputedAt = SegmentReady, 100, s.now().UTC()
	if err := s.saveStatus(ctx, tenant, g.ID, st); err != nil {
		return err
	}
	// Segments referencing this one follow.
	if aud, err = s.audienceOf(ctx, tenant); err != nil {
		return err
	}
	for _, dep := range aud.dependents[g.ID] {
		if err := s.RunRecompute(ctx, RecomputeArgs{TenantID: tenant, SegmentID: dep}); err != nil {
			return err
		}
	}
	return nil
}

// withSets adds to each profile's transition ops (pending, of roots, the
// membership entered or nil for an exit) the rewrite of its membership
// set, on condition of the version it reads now. A profile without a set,
// or with a stale one, keeps none: its evaluation reads its items.
func (s *Service) withSets(ctx context.Context, tenant, segment string, pending [][]Op, roots []string, entry []*membershipData) error {
	if len(pending) == 0 {
		return nil
	}
	keys := make([]Key, len(roots))
	for i, root := range roots {
		keys[i] = membershipSetKey(tenant, root)
	}
	sets, err := s.store.BatchGet(ctx, keys)
	if err != nil {
		return err
	}
	for i, k := range keys {
		it, ok := sets[k]
		if !ok {
			continue
		}
		set, err := readSet(it)
		if err != nil {
			return err
		}
		if set.Stale {
			continue
		}
		if entry[i] != nil {
			if set.Segments == nil {
				set.Segments = map[string]membershipData{}
			}
			set.Segments[segment] = *entry[i]
		} else {
			delete(set.Segments, segment)
		}
		pending[i] = append(pending[i], Op{Put: &Item{PK: k.PK, SK: k.SK, Data: set.data()}, IfVersion: it.Version})
	}
	return nil
}

// Backfill. An event leaf that no segment of the tenant read before has
// no aggregates: markers count its events from the moment a segment
// reads it (on every replica within segmentsTTL). RunRecompute then
// counts the events from before, member by member, exactly once, however
// markers interleave (Seen and Skip of EventAggregate):
//
//   - an event a marker counted before the backfill reached its member is
//     in Seen, and the backfill does not count it again;
//   - an event the backfill counted whose marker is still pending goes to
//     Skip, and its marker's processing does not count it again;
//   - an event recorded after the backfill read the member's events is
//     counted by its marker alone.
//
// The backfill reads the aggregate (and its version) first, then the
// events, then the pending markers, and writes on condition of that
// version, so a marker processed meanwhile makes it start over. Once
// every member with a matching event is done, a ~leaf# item in the
// segments' partition marks the leaf complete, after which markers no
// longer track Seen.

// matchesStored reports whether a stored event counts for the leaf.
func matchesStored(l *EventLeaf, d eventData) bool {
	var props map[string]any
	if len(l.Where) > 0 {
		var raw struct {
			Properties map[string]any `json:"properties"`
		}
		_ = json.Unmarshal(d.Raw, &raw)
		props = raw.Properties
	}
	return l.Matches(d.Type, d.Name, props)
}

// eventAggregates builds, from a scan of every member's events, the
// aggregates of the leaves by leaf key and member. It is what a backfill
// looks for, and what a preview of a leaf not yet complete counts.
func (s *Service) eventAggregates(ctx context.Context, tenant string, leaves []*EventLeaf, keep time.Duration) (map[string]map[string]*EventAggregate, error) {
	out := map[string]map[string]*EventAggregate{}
	for _, l := range leaves {
		out[l.Key()] = map[string]*EventAggregate{}
	}
	if len(leaves) == 0 {
		return out, nil
	}
	now := s.now().UTC()
	prefix := KeyPrefix(tenant) + "M#"
	after := Key{}
	for {
		items, next, err := s.store.Scan(ctx, ScanInput{PKPrefix: prefix, After: after, Limit: 5000})
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			if !strings.HasPrefix(it.SK, "E#") {
				continue
			}
			var d eventData
			if err := json.Unmarshal(it.Data, &d); err != nil {
				return nil, fmt.Errorf("event %s %s: %w", it.PK, it.SK, err)
			}
			m := strings.TrimPrefix(it.PK, prefix)
			for _, l := range leaves {
				if matchesStored(l, d) {
					byMember := out[l.Key()]
					if byMember[m] == nil {
						byMember[m] = &EventAggregate{}
					}
					byMember[m].Add(d.Timestamp, now, keep)
				}
			}
		}
		if next == (Key{}) {
			return out, nil
		}
		after = next
	}
}

// backfill counts the events members had before the leaf existed, then
// marks it complete.
func (s *Service) backfill(ctx context.Context, tenant string, l *EventLeaf, keep time.Duration) error {
	found, err := s.eventAggregates(ctx, tenant, []*EventLeaf{l}, keep)
	if err != nil {
		return err
	}
	for m := range found[l.Key()] {
		if err := s.backfillMember(ctx, tenant, l, m, keep); err != nil {
			return err
		}
	}
	k := Key{PK: KeyPrefix(tenant) + "SG", SK: leafKeyPrefix + l.Key()}
	if err := s.store.Transact(ctx, []Op{{Put: &Item{PK: k.PK, SK: k.SK, Data: []byte(`{}`)}}}); err != nil {
		return err
	}
	s.forgetSegments(tenant)
	return nil
}

// backfillMember backfills one member's aggregate of the leaf.
func (s *Service) backfillMember(ctx context.Context, tenant string, l *EventLeaf, m string, keep time.Duration) error {
	key := l.Key()
	k := aggregatesKey(tenant, m)
	for range maxEvaluateAttempts {
		read, err := s.store.BatchGet(ctx, []Key{k})
		if err != nil {
			return err
		}
		all, err := s.readAggregates(ctx, tenant, []string{m}, read)
		if err != nil {
			return err
		}
		ma := all[m]
		a := ma.leaves[key]
		if a == nil {
			a = &EventAggregate{}
		}
		if a.Backfilled {
			return nil
		}
		events, err := s.store.Query(ctx, QueryInput{PK: KeyPrefix(tenant) + "M#" + m, Prefix: "E#"})
		if err != nil {
			return err
		}
		markers, err := s.store.Query(ctx, QueryInput{PK: queuePK(tenant), Prefix: m + "#"})
		if err != nil {
			return err
		}
		now := s.now().UTC()
		counted := map[string]bool{}
		for _, sk := range a.Seen {
			counted[sk] = true
		}
		read2 := map[string]bool{}
		for _, ev := range events {
			var d eventData
			if err := json.Unmarshal(ev.Data, &d); err != nil {
				return fmt.Errorf("event %s %s: %w", ev.PK, ev.SK, err)
			}
			if !matchesStored(l, d) {
				continue
			}
			read2[ev.SK] = true
			if !counted[ev.SK] {
				a.Add(d.Timestamp, now, keep)
			}
		}
		a.Skip = nil
		for _, mk := range markers {
			if _, sk, _ := strings.Cut(mk.SK, "#"); read2[sk] && !counted[sk] {
				a.Skip = append(a.Skip, sk)
			}
		}
		a.Seen, a.Backfilled = nil, true
		ma.leaves[key] = a
		err = s.store.Transact(ctx, ma.writeOps(tenant, m))
		if !errors.Is(err, ErrConditionFailed) {
			return err
		}
	}
	return errors.New("backfill: too much contention")
}

// scanAggregates fills aggs (leaf key → member → aggregate) with the
// stored aggregates of its leaves, from a scan of every member's
// aggregates items, combined or per leaf.
func (s *Service) scanAggregates(ctx context.Context, tenant string, aggs map[string]map[string]*EventAggregate) error {
	prefix := KeyPrefix(tenant) + "A#"
	after := Key{}
	for {
		items, next, err := s.store.Scan(ctx, ScanInput{PKPrefix: prefix, After: after, Limit: 5000})
		if err != nil {
			return err
		}
		for _, it := range items {
			m := strings.TrimPrefix(it.PK, prefix)
			if it.SK == aggregatesSK {
				leaves, err := decodeAggregates(it)
				if err != nil {
					return err
				}
				for key, a := range leaves {
					if byMember := aggs[key]; byMember != nil {
						byMember[m] = a
					}
				}
				continue
			}
			// A per-leaf item, stored before combined items: its member
			// has no combined item yet (the first one takes it in).
			if byMember := aggs[it.SK]; byMember != nil {
				a := &EventAggregate{}
				if err := json.Unmarshal(it.Data, a); err != nil {
					return fmt.Errorf("aggregate %s %s: %w", it.PK, it.SK, err)
				}
				byMember[m] = a
			}
		}
		if next == (Key{}) {
			return nil
		}
		after = next
	}
}
