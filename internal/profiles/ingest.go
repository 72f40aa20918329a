package profiles

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// IngestResult reports what happened to a batch.
type IngestResult struct {
	Accepted   int
	Duplicates int
	// Suppressed events named an erased customer's identifier (or only
	// blocked values) and were dropped before anything was stored.
	Suppressed int
	// Errors are the events refused, by index.
	Errors []*EventError
	// Object is the raw zone object holding the accepted events.
	Object string
}

// Ingest appends a batch of valid events to the tenant's raw zone (so a
// returned result means they are durable), then resolves each event's
// identity and records it, applying each messageId once.
//
// A batch costs few store calls. One BatchGet reads, for every event at
// once, its dedup marker and the index entries of its identifiers: which
// members hold them, or that they are suppressed. An event whose
// identifiers all belong to one member already, the usual event of a known
// customer, needs no resolution: such events are recorded together, in
// transactions of up to MaxTransactOps writes, each on condition that its
// member still exists and its messageId is new. The other events, and
// those of a transaction that lost a race, are resolved one by one
// (apply).
//
// Duplicate and suppressed events are answered from reads alone: on a
// Store that is a Syncer, Ingest waits for what those reads saw to be
// durable before it answers.
func (s *Service) Ingest(ctx context.Context, tenant string, events []Event) (IngestResult, error) {
	res, err := s.ingest(ctx, tenant, events)
	if sy, ok := s.store.(Syncer); ok && err == nil && res.Duplicates+res.Suppressed > 0 {
		err = sy.Sync(ctx)
	}
	s.relaySoon()
	return res, err
}

func (s *Service) ingest(ctx context.Context, tenant string, events []Event) (IngestResult, error) {
	var res IngestResult
	if len(events) == 0 {
		return res, nil
	}
	cc, err := s.compiledConfig(ctx, tenant)
	if err != nil {
		return res, err
	}
	idsOf := make([][]Identifier, len(events))
	keys := make([]Key, 0, 3*len(events))
	for i, ev := range events {
		idsOf[i] = cc.identifiers(ev)
		keys = append(keys, dedupKey(tenant, ev.MessageID))
		for _, id := range idsOf[i] {
			keys = append(keys, indexKey(tenant, id))
		}
	}
	found, err := s.store.BatchGet(ctx, keys)
	if err != nil {
		return res, err
	}

	// Events naming a suppressed (erased) identifier, and duplicates, are
	// dropped before anything of them is stored: a retry of an event
	// erased since adds no copy to the raw zone.
	var keep []int
	var lines [][]byte
	seen := make(map[string]bool, len(events))
	for i, ev := range events {
		if len(idsOf[i]) == 0 || slices.ContainsFunc(idsOf[i], func(id Identifier) bool {
			it, ok := found[indexKey(tenant, id)]
			return ok && isSuppressed(it)
		}) {
			res.Suppressed++
			continue
		}
		if _, ok := found[dedupKey(tenant, ev.MessageID)]; ok || seen[ev.MessageID] {
			res.Duplicates++
			continue
		}
		seen[ev.MessageID] = true
		keep = append(keep, i)
		lines = append(lines, ev.Raw)
	}
	if len(keep) == 0 {
		return res, nil
	}
	now := s.now().UTC()
	if res.Object, err = s.raw.Append(ctx, tenant, now, lines); err != nil {
		return res, fmt.Errorf("raw zone: %w", err)
	}
	// The events are durable: apply them to the end even if the client
	// leaves, so that no raw line lacks the records that find it again.
	ctx = context.WithoutCancel(ctx)

	aud, err := s.audienceOf(ctx, tenant)
	if err != nil {
		return res, err
	}
	b := &batch{s: s, tenant: tenant, cc: cc, events: events, idsOf: idsOf, object: res.Object, now: now, found: found, aud: aud, marked: map[string]bool{}}
	var known, unknown []int
	holder := map[int]string{}
	for _, i := range keep {
		if m := soleHolder(found, tenant, idsOf[i]); m != "" {
			known, holder[i] = append(known, i), m
		} else {
			unknown = append(unknown, i)
		}
	}

	// Known and unknown events go at once; the events of a transaction
	// that lost a race (to this batch's own resolutions, say) follow.
	var (
		recorded int
		retry    []int
		knownErr error
		wg       sync.WaitGroup
	)
	wg.Go(func() { recorded, retry, knownErr = b.recordKnown(ctx, known, holder) })
	each, err := b.resolveEach(ctx, unknown, nil)
	wg.Wait()
	if err = errors.Join(err, knownErr); err != nil {
		return res, err
	}
	again, err := b.resolveEach(ctx, nil, retry)
	b.evaluateMarked(ctx)
	res.Accepted += recorded + each.Accepted + again.Accepted
	res.Duplicates += each.Duplicates + again.Duplicates
	res.Suppressed += each.Suppressed + again.Suppressed
	return res, err
}

// batch is one Ingest call's events and what it found out about them.
type batch struct {
	s      *Service
	tenant string
	cc     compiledConfig
	events []Event
	idsOf  [][]Identifier
	object string
	now    time.Time
	// found is what the batch read: dedup markers and index items.
	found map[Key]Item
	// aud is the tenant's segments; marked collects the members whose
	// events the batch marked for evaluation.
	aud      *audience
	markedMu sync.Mutex
	marked   map[string]bool
	// markers are the markers the batch wrote (or tried to), by member and
	// sort key.
	markers map[string]map[string]Item
}

// record returns the writes that record event i of member m, whose
// traits moved set to other values: recordOps, and a marker when the event
// can affect a segment.
func (b *batch) record(m string, i int, moved []string) []Op {
	ops := recordOps(b.tenant, m, b.events[i], b.object, b.now)
	if mark := b.aud.markOp(b.tenant, m, b.events[i], moved); mark != nil {
		b.markedMu.Lock()
		b.marked[m] = true
		if b.markers == nil {
			b.markers = map[string]map[string]Item{}
		}
		if b.markers[m] == nil {
			b.markers[m] = map[string]Item{}
		}
		it := *mark[0].Put
		it.Version = 1 // a marker's key is its event's: written once
		b.markers[m][it.SK] = it
		b.markedMu.Unlock()
		ops = append(ops, mark...)
	}
	return ops
}

// mark notes a member to evaluate once the batch is recorded.
func (b *batch) mark(m string) {
	b.markedMu.Lock()
	b.marked[m] = true
	b.markedMu.Unlock()
}

// evaluateMarked evaluates the profiles of the members the batch marked,
// a few at a time. An evaluation that fails leaves its markers for the
// periodic evaluation of pending markers (Service.Pending): the events are
// recorded, so the batch succeeds.
func (b *batch) evaluateMarked(ctx context.Context) {
	if len(b.marked) == 0 {
		return
	}
	// Members whose batch markers are all there are known customers:
	// evaluated together. The others (merged, new members, markers a
	// failed transaction never wrote) one by one.
	marks := map[string][]Item{}
	var rest []string
	for m := range b.marked {
		if len(b.markers[m]) == 0 {
			rest = append(rest, m)
			continue
		}
		marks[m] = slices.Collect(maps.Values(b.markers[m]))
	}
	slow, err := b.s.evaluateBatch(ctx, b.tenant, b.aud, marks)
	if err != nil {
		slow = slices.Collect(maps.Keys(marks))
	}
	b.s.relaySoon()
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, m := range append(rest, slow...) {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			_ = b.s.evaluate(ctx, b.tenant, m, false) // see above
		})
	}
	wg.Wait()
}

// soleHolder returns the member holding every one of ids, according to the
// index entries in found, or "" when any is unheld or two members hold
// them.
func soleHolder(found map[Key]Item, tenant string, ids []Identifier) string {
	var m string
	for _, id := range ids {
		it, ok := found[indexKey(tenant, id)]
		if !ok {
			return ""
		}
		var d indexData
		if json.Unmarshal(it.Data, &d) != nil || d.Member == "" || m != "" && d.Member != m {
			return ""
		}
		m = d.Member
	}
	return m
}

// unit is the writes of some events of one member: a condition on the
// member (or its trait update) and each event's dedup marker and record.
type unit struct {
	ops    []Op
	events []int
}

// maxUnitEvents keeps a unit within one transaction: up to 3 ops an event
// (its dedup marker, its record and its evaluation marker) and one for the
// member.
const maxUnitEvents = (MaxTransactOps - 1) / 3

// recordKnown records the events whose member is known (holder), grouped
// by member, with as few transactions as MaxTransactOps allows. It returns
// how many it recorded and the events of transactions whose condition
// failed, which must be resolved again.
func (b *batch) recordKnown(ctx context.Context, known []int, holder map[int]string) (int, []int, error) {
	if len(known) == 0 {
		return 0, nil, nil
	}
	byMember := map[string][]int{}
	var order []string
	needed := map[string]bool{} // members whose traits events set
	var traitKeys []Key
	for _, i := range known {
		m := holder[i]
		if _, ok := byMember[m]; !ok {
			order = append(order, m)
		}
		byMember[m] = append(byMember[m], i)
		if ev := b.events[i]; ev.Type == "identify" && len(ev.Traits) > 0 && !needed[m] {
			needed[m] = true
			traitKeys = append(traitKeys, memberKey(b.tenant, m))
		}
	}
	// With segments, every member is read, with its membership set, to
	// evaluate its profile as its events are recorded.
	evaluating := len(b.aud.order) > 0
	if evaluating {
		traitKeys = traitKeys[:0]
		for _, m := range order {
			traitKeys = append(traitKeys, memberKey(b.tenant, m), membershipSetKey(b.tenant, m))
		}
	}
	// Evaluating, they come from the item cache when it has them: every
	// write below is conditioned on the version of the member read (and
	// the inline units' on the set's too).
	var members map[Key]Item
	var cached map[Key]bool
	if len(traitKeys) > 0 {
		var err error
		if evaluating {
			members, cached, err = b.s.items.cachedBatchGet(ctx, traitKeys)
		} else {
			members, err = b.s.store.BatchGet(ctx, traitKeys)
		}
		if err != nil {
			return 0, nil, err
		}
	}
	var units []unit
	var retry []int
	var inline []*inlineUnit
	for _, m := range order {
		mk := memberKey(b.tenant, m)
		it, withTraits := members[mk]
		var mb member
		if withTraits {
			var err error
			if mb, err = readMember(it); err != nil {
				return 0, nil, err
			}
		} else if needed[m] {
			retry = append(retry, byMember[m]...) // being erased: resolve again
			continue
		}
		if withTraits {
			sk := membershipSetKey(b.tenant, m)
			iu, err := b.inlineUnit(m, mb, members[sk], byMember[m])
			if err != nil {
				return 0, nil, err
			}
			if iu != nil {
				inline = append(inline, iu)
				continue
			}
		}
		for evs := range slices.Chunk(byMember[m], maxUnitEvents) {
			u := unit{events: evs}
			changed := false
			for _, i := range evs {
				var moved []string
				if withTraits {
					var c bool
					if c, moved = setTraits(&mb.memberData, b.events[i]); c {
						changed = true
					}
				}
				u.ops = append(u.ops, b.record(m, i, moved)...)
			}
			if changed {
				mb.UpdatedAt = b.now
				item := mb.item(b.tenant)
				u.ops = append(u.ops, Op{Put: &item, IfVersion: mb.version})
				mb.version++
			} else if cached[mk] {
				u.ops = append(u.ops, Op{Put: &Item{PK: mk.PK, SK: mk.SK}, Check: true, IfVersion: mb.version})
			} else {
				u.ops = append(u.ops, Op{Put: &Item{PK: mk.PK, SK: mk.SK}, Check: true, IfExists: true})
			}
			units = append(units, u)
		}
	}
	evaluated, err := b.evaluateInline(ctx, inline)
	if err != nil {
		return 0, nil, err
	}
	units = append(units, evaluated...)

	// Pack the units into transactions and run them at once.
	var txs []unit
	for _, u := range units {
		if n := len(txs); n > 0 && len(txs[n-1].ops)+len(u.ops) <= MaxTransactOps {
			txs[n-1].ops = append(txs[n-1].ops, u.ops...)
			txs[n-1].events = append(txs[n-1].events, u.events...)
			continue
		}
		txs = append(txs, u)
	}
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		recorded int
		firstErr error
	)
	for _, tx := range txs {
		wg.Go(func() {
			err := b.s.store.Transact(ctx, tx.ops)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				recorded += len(tx.events)
			case errors.Is(err, ErrConditionFailed):
				retry = append(retry, tx.events...)
			case firstErr == nil:
				firstErr = err
			}
		})
	}
	wg.Wait()
	return recorded, retry, firstErr
}

// inlineUnit is the events of one known customer, recorded and evaluated
// in one transaction: the profile is its member alone (memberData.Single),
// so its facts are at hand, and its membership set and aggregates are read
// with the batch. No marker is written and deleted.
type inlineUnit struct {
	m       string
	mb      member
	set     Item
	decoded *membershipSet
	events  []int
	// moved are the traits each event moved; ops its records and the
	// member's write, on condition of the version read.
	moved [][]string
	ops   []Op
	p     evaluation
}

// inlineUnit returns the inline unit of member m's events, or nil when
// they are recorded with markers: the profile has other members, no
// usable membership set, or too many events for one transaction.
func (b *batch) inlineUnit(m string, mb member, set Item, events []int) (*inlineUnit, error) {
	if mb.Root != m || !mb.Single || set.Version == 0 || len(events) > maxUnitEvents {
		return nil, nil
	}
	d, err := decodedSet(set)
	if err != nil || d.Stale {
		return nil, err
	}
	u := &inlineUnit{m: m, mb: mb, set: set, decoded: &d, events: events}
	// Its own traits: the caller records the events as usual when there
	// is nothing to evaluate, from mb.
	u.mb.Traits = maps.Clone(mb.Traits)
	var marks []markData
	changed := false
	for _, i := range events {
		c, moved := setTraits(&u.mb.memberData, b.events[i])
		changed = changed || c
		u.moved = append(u.moved, moved)
		u.ops = append(u.ops, recordOps(b.tenant, m, b.events[i], b.object, b.now)...)
		if d, ok := b.aud.markOf(b.events[i], moved); ok {
			marks = append(marks, d)
		}
	}
	if len(marks) == 0 {
		return nil, nil // nothing to evaluate: recorded as usual
	}
	mk := memberKey(b.tenant, m)
	if changed {
		u.mb.UpdatedAt = b.now
		item := u.mb.item(b.tenant)
		u.ops = append(u.ops, Op{Put: &item, IfVersion: u.mb.version})
	} else {
		u.ops = append(u.ops, Op{Put: &Item{PK: mk.PK, SK: mk.SK}, Check: true, IfVersion: u.mb.version})
	}
	u.p = b.aud.planMarks(map[string][]markData{m: marks}, false, nil)
	return u, nil
}

// evaluateInline reads the aggregates the inline units need and returns
// their units: each one's records with its evaluation, or, when that does
// not fit one transaction, its records with markers.
func (b *batch) evaluateInline(ctx context.Context, inline []*inlineUnit) ([]unit, error) {
	if len(inline) == 0 {
		return nil, nil
	}
	var keys []Key
	var members []string
	for _, u := range inline {
		if len(u.p.leafKeys) > 0 {
			keys, members = append(keys, aggregatesKey(b.tenant, u.m)), append(members, u.m)
		}
	}
	read, _, err := b.s.items.cachedBatchGet(ctx, keys)
	if err != nil {
		return nil, err
	}
	aggs, err := b.s.readAggregates(ctx, b.tenant, members, read)
	if err != nil {
		return nil, err
	}
	units := make([]unit, 0, len(inline))
	for _, u := range inline {
		st := &profileState{root: u.m, members: []member{u.mb}, current: map[string]held{}, leftover: map[string]held{}, aggs: aggs, set: u.set, decoded: u.decoded}
		set, err := st.readSet()
		if err != nil {
			return nil, err
		}
		st.holdSet(b.tenant, set)
		ops, notices, err := b.s.decide(ctx, b.tenant, b.aud, st, u.p, b.now, false)
		if err != nil {
			return nil, err
		}
		if ops, err = b.s.withNotices(ctx, b.tenant, st, ops, notices); err != nil {
			return nil, err
		}
		ops = append(ops, b.readChecks(ops, st, u)...)
		if len(u.ops)+len(ops) <= MaxTransactOps {
			units = append(units, unit{ops: append(u.ops, ops...), events: u.events})
			continue
		}
		// Too big: the records with markers, evaluated after the batch.
		var recs []Op
		for j, i := range u.events {
			recs = append(recs, b.record(u.m, i, u.moved[j])...)
		}
		units = append(units, unit{ops: append(recs, u.ops[len(u.ops)-1]), events: u.events})
	}
	return units, nil
}

// readChecks returns the checks that condition an inline unit's
// evaluation, ops, on what it read and does not write: its membership set
// and its aggregates. The unit commits its records whatever it decides,
// and another evaluation of the profile may have changed either since,
// without writing the member.
func (b *batch) readChecks(ops []Op, st *profileState, u *inlineUnit) []Op {
	var checks []Op
	sk := membershipSetKey(b.tenant, u.m)
	if !slices.ContainsFunc(ops, func(op Op) bool { return op.key() == sk }) {
		checks = append(checks, Op{Put: &Item{PK: sk.PK, SK: sk.SK}, Check: true, IfVersion: u.set.Version})
	}
	if len(u.p.leafKeys) > 0 {
		checks = append(checks, aggregateChecks(b.tenant, st, ops)...)
	}
	return checks
}

// groups maps each of events (indexes into the batch, ascending) to the
// first event of its group: the events linked by shared identifiers,
// transitively.
func (b *batch) groups(events []int) map[int]int {
	parent := make(map[int]int, len(events))
	var find func(i int) int
	find = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	holder := map[Identifier]int{}
	for _, i := range events {
		parent[i] = i
		for _, id := range b.idsOf[i] {
			j, ok := holder[id]
			if !ok {
				holder[id] = i
				continue
			}
			// Keep the earlier event as the root.
			ri, rj := find(i), find(j)
			if ri != rj {
				parent[max(ri, rj)] = min(ri, rj)
			}
		}
	}
	out := make(map[int]int, len(events))
	for _, i := range events {
		out[i] = find(i)
	}
	return out
}

// resolveEach resolves and records events one by one, in parallel lanes:
// events that share an identifier, directly or through other events of
// the batch, share a lane (and only they do) and keep their batch order, so the batch
// resolves as it would one event at a time (an identify linking two
// earlier events' profiles merges them, whatever the timing). Events in
// different lanes touch different identifiers; if they still meet on one
// profile (through identifiers stored before), the store's conditions
// keep it correct (the loser retries), and the store can commit the
// lanes' writes together.
//
// unseen events are known to have had no dedup marker just before;
// retried ones are looked up again. An event naming an identifier
// suppressed meanwhile is dropped.
//
// An unseen event's first lookup uses the index items the batch read,
// unless an earlier event of the batch names one of its identifiers (and
// may have claimed it since).
func (b *batch) resolveEach(ctx context.Context, unseen, retried []int) (res IngestResult, err error) {
	all := append(slices.Clone(unseen), retried...)
	if len(all) == 0 {
		return res, nil
	}
	again := make(map[int]bool, len(retried))
	for _, i := range retried {
		again[i] = true
	}
	slices.Sort(all)
	fresh := make(map[int]bool, len(unseen))
	named := map[Identifier]bool{}
	for _, i := range all {
		fresh[i] = !again[i] && !slices.ContainsFunc(b.idsOf[i], func(id Identifier) bool { return named[id] })
		for _, id := range b.idsOf[i] {
			named[id] = true
		}
	}
	// A lane per group: only events that share identifiers wait for each
	// other, so a batch costs as many store round trips as its longest
	// chain of linked events, not as its busiest lane of unrelated ones.
	var lanes [][]int
	laneOf := map[int]int{}
	group := b.groups(all)
	for _, i := range all {
		l, ok := laneOf[group[i]]
		if !ok {
			l = len(lanes)
			laneOf[group[i]] = l
			lanes = append(lanes, nil)
		}
		lanes[l] = append(lanes[l], i)
	}
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for _, lane := range lanes {
		wg.Go(func() {
			for _, i := range lane {
				var index map[Key]Item
				if fresh[i] {
					index = b.found
				}
				dup, e := b.s.apply(ctx, b, i, !again[i], index)
				mu.Lock()
				switch {
				case errors.Is(e, errSuppressed):
					res.Suppressed++
					e = nil
				case e != nil:
					if err == nil {
						err = e
					}
				case dup:
					res.Duplicates++
				default:
					res.Accepted++
				}
				mu.Unlock()
				if e != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	return res, err
}
