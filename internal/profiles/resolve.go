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

// maxResolveAttempts bounds the optimistic retries of one resolution; each
// retry follows a concurrent change or a dropped identifier.
const maxResolveAttempts = 25

// errLimit reports that a merge or attach would break an identifier limit.
var errLimit = errors.New("identifier limit")

// errSuppressed reports that an event names an identifier an erasure
// suppressed since the batch was checked: the event is dropped.
var errSuppressed = errors.New("suppressed identifier")

// resolver runs identity resolution for one tenant.
type resolver struct {
	store  Store
	tenant string
	cc     compiledConfig
	now    time.Time
	newID  func() string
	// record, if set, returns the writes that record the event being
	// resolved on member m, having applied the event's traits to m. A
	// resolution that writes anyway (create, attach, merge) includes them
	// in its transaction and reports Recorded.
	record func(m *member) []Op
	// notices, if set, returns the outbox writes of a new profile
	// (merged nil) or of a merge into root, for the transaction that makes
	// it.
	notices func(root string, merged []string) []Op
	// previous, for an alias, are the identifiers that stand for its
	// previousId only (see previousOnly).
	previous []Identifier
	// index, if set, holds the index items of the identifiers as the
	// caller read them just before (absent: unheld), for the first lookup
	// to use rather than read them again. A stale entry only costs a
	// failed condition and a second, fresh, lookup.
	index map[Key]Item
}

// resolution is where an event's identifiers led.
type resolution struct {
	Root   string
	Member member
	// Created is set when the resolution made Root, a new profile.
	Created bool
	// Merged lists the roots merged into Root by this event.
	Merged []string
	// Dropped lists identifiers left out to respect limits.
	Dropped []Identifier
	// Recorded is set when the resolution wrote the record ops too.
	Recorded bool
}

// owners returns the member holding each of ids, where one does, or
// errSuppressed if any of ids is suppressed.
func (r *resolver) owners(ctx context.Context, ids []Identifier) (map[Identifier]member, error) {
	keys := make([]Key, len(ids))
	for i, id := range ids {
		keys[i] = indexKey(r.tenant, id)
	}
	idx := r.index
	r.index = nil
	if idx == nil {
		var err error
		if idx, err = r.store.BatchGet(ctx, keys); err != nil {
			return nil, fmt.Errorf("read identifiers: %w", err)
		}
	}
	holder := map[Identifier]string{}
	suppressed := map[Identifier]bool{}
	var memberKeys []Key
	for i, id := range ids {
		it, ok := idx[keys[i]]
		if !ok {
			continue
		}
		var d indexData
		if err := json.Unmarshal(it.Data, &d); err != nil {
			return nil, fmt.Errorf("index item %s (v%d, %q): %w", it.PK, it.Version, it.Data, err)
		}
		if d.Suppressed {
			suppressed[id] = true
			continue
		}
		holder[id] = d.Member
		memberKeys = append(memberKeys, memberKey(r.tenant, d.Member))
	}
	if len(suppressed) > 0 {
		return nil, errSuppressed
	}
	if len(memberKeys) == 0 {
		return map[Identifier]member{}, nil
	}
	items, err := r.store.BatchGet(ctx, memberKeys)
	if err != nil {
		return nil, fmt.Errorf("read members: %w", err)
	}
	out := map[Identifier]member{}
	for id, m := range holder {
		it, ok := items[memberKey(r.tenant, m)]
		if !ok {
			continue // an index entry without its member: being erased
		}
		mb, err := readMember(it)
		if err != nil {
			return nil, err
		}
		out[id] = mb
	}
	return out, nil
}

// profileMembers returns every member under root. have are members the
// caller has just read, which need no second read.
func (r *resolver) profileMembers(ctx context.Context, root string, have ...member) ([]member, error) {
	items, err := r.store.Query(ctx, QueryInput{PK: rootIndex(r.tenant, root), Index: "gsi1", Prefix: "M#"})
	if err != nil {
		return nil, err
	}
	// gsi1 is eventually consistent on DynamoDB: read the members
	// themselves, and keep those still under root.
	var keys []Key
	for _, it := range items {
		if !slices.ContainsFunc(have, func(m member) bool { return it.PK == memberKey(r.tenant, m.ID).PK }) {
			keys = append(keys, Key{PK: it.PK, SK: it.SK})
		}
	}
	var read map[Key]Item
	if len(keys) > 0 {
		if read, err = r.store.BatchGet(ctx, keys); err != nil {
			return nil, err
		}
	}
	out := make([]member, 0, len(items))
	for _, it := range items {
		mb, ok := member{}, false
		if i := slices.IndexFunc(have, func(m member) bool { return it.PK == memberKey(r.tenant, m.ID).PK }); i >= 0 {
			mb, ok = have[i], true
		} else if m, found := read[Key{PK: it.PK, SK: it.SK}]; found {
			if mb, err = readMember(m); err != nil {
				return nil, err
			}
			ok = true
		}
		if ok && mb.Root == root {
			out = append(out, mb)
		}
	}
	return out, nil
}

// memberWithIdentifiers reads a member and the identifiers it holds with
// one query: in a member's partition, the identifiers ("I#...") and the
// member item ("M") sort last.
func (r *resolver) memberWithIdentifiers(ctx context.Context, id string) (member, []identData, bool, error) {
	items, err := r.store.Query(ctx, QueryInput{PK: KeyPrefix(r.tenant) + "M#" + id, After: "I"})
	if err != nil {
		return member{}, nil, false, err
	}
	var m member
	found := false
	ids := make([]identData, 0, len(items))
	for _, it := range items {
		switch {
		case it.SK == "M":
			if m, err = readMember(it); err != nil {
				return member{}, nil, false, err
			}
			found = true
		case strings.HasPrefix(it.SK, "I#"):
			var d identData
			if err := json.Unmarshal(it.Data, &d); err != nil {
				return member{}, nil, false, fmt.Errorf("identifier item %s %s: %w", it.PK, it.SK, err)
			}
			ids = append(ids, d)
		}
	}
	return m, ids, found, nil
}

// memberIdentifiers returns the identifiers a member holds.
func (r *resolver) memberIdentifiers(ctx context.Context, m string) ([]identData, error) {
	items, err := r.store.Query(ctx, QueryInput{PK: KeyPrefix(r.tenant) + "M#" + m, Prefix: "I#"})
	if err != nil {
		return nil, err
	}
	out := make([]identData, 0, len(items))
	for _, it := range items {
		var d identData
		if err := json.Unmarshal(it.Data, &d); err != nil {
			return nil, fmt.Errorf("identifier item %s %s: %w", it.PK, it.SK, err)
		}
		out = append(out, d)
	}
	return out, nil
}

// counts returns how many identifiers of each type the members hold
// together. An identifier has one holder, so the sum is exact.
func counts(members []member) map[string]int {
	out := map[string]int{}
	for _, m := range members {
		for typ, n := range m.Held {
			out[typ] += n
		}
	}
	return out
}

// fits reports whether joining the profiles (their members by root) and
// adding ids (held by none) keeps every type within its limit: the merged
// profile holds every identifier of the profiles it joins. A profile that
// already holds more of a type than its limit (lowered since) may keep
// them, but no join may make more.
func (r *resolver) fits(byRoot map[string][]member, ids []Identifier) bool {
	total, most := map[string]int{}, map[string]int{}
	for _, members := range byRoot {
		for typ, n := range counts(members) {
			total[typ] += n
			most[typ] = max(most[typ], n)
		}
	}
	for _, id := range ids {
		total[id.Type]++
	}
	for typ, n := range total {
		if n > r.cc.rule(typ).Limit && n > most[typ] {
			return false
		}
	}
	return true
}

// claim returns the ops that give ids to member m, and counts them in m,
// whose item the caller writes in the same transaction.
func (r *resolver) claim(m *member, ids []Identifier) []Op {
	var ops []Op
	for _, id := range ids {
		if m.Held == nil {
			m.Held = map[string]int{}
		}
		m.Held[id.Type]++
		idx, _ := json.Marshal(indexData{Member: m.ID, FirstSeen: r.now})
		own, _ := json.Marshal(identData{Type: id.Type, Value: id.Value, FirstSeen: r.now})
		ik, ok := indexKey(r.tenant, id), memberIdentKey(r.tenant, m.ID, id)
		ops = append(ops,
			Op{Put: &Item{PK: ik.PK, SK: ik.SK, Data: idx}, IfAbsent: true},
			Op{Put: &Item{PK: ok.PK, SK: ok.SK, Data: own}},
		)
	}
	return ops
}

// resolve finds (or makes) the profile of an event's identifiers: it
// attaches them to the one profile they match, creates a profile when they
// match none, and merges the profiles they link when they match several.
// A merge or attach that would break a limit drops the event's
// lowest-priority identifier and tries again, as Segment does. All writes
// are conditional, so concurrent events never make two profiles of one
// identity: a failed condition returns ErrConditionFailed, for the caller
// to look again (its event may have been recorded by a concurrent
// duplicate).
func (r *resolver) resolve(ctx context.Context, ids []Identifier) (resolution, error) {
	var dropped []Identifier
	var owned map[Identifier]member // still true after a dropped identifier
	for range maxResolveAttempts {
		if len(ids) == 0 {
			return resolution{}, errors.New("resolve: no identifier left")
		}
		var err error
		if owned == nil {
			if owned, err = r.owners(ctx, ids); err != nil {
				return resolution{}, err
			}
		}
		ids = r.settlePrevious(ids, owned)
		var roots []string
		var fresh []Identifier
		for _, id := range ids { // highest priority first
			m, ok := owned[id]
			if !ok {
				fresh = append(fresh, id)
				continue
			}
			if !slices.Contains(roots, m.Root) {
				roots = append(roots, m.Root)
			}
		}
		var res resolution
		switch len(roots) {
		case 0:
			res, err = r.create(ctx, fresh)
		default:
			res, err = r.join(ctx, ids, owned, roots, fresh)
		}
		switch {
		case errors.Is(err, errLimit):
			dropped = append(dropped, ids[len(ids)-1])
			ids = ids[:len(ids)-1]
			continue
		case err != nil:
			return resolution{}, err
		}
		res.Dropped = dropped
		return res, nil
	}
	return resolution{}, errors.New("resolve: too much contention")
}

// settlePrevious leaves out of ids the readings of an alias's previousId
// that identify no profile, keeping the anonymous_id when none does: so an
// alias links the profile its previousId names, whether that was a user
// ID or an anonymous visitor, and makes no identifier of the other kind.
func (r *resolver) settlePrevious(ids []Identifier, owned map[Identifier]member) []Identifier {
	if len(r.previous) == 0 {
		return ids
	}
	known := slices.ContainsFunc(r.previous, func(id Identifier) bool { _, ok := owned[id]; return ok })
	return slices.DeleteFunc(slices.Clone(ids), func(id Identifier) bool {
		if !slices.Contains(r.previous, id) {
			return false
		}
		if _, ok := owned[id]; ok {
			return false
		}
		return known || id.Type != IDAnonymousID
	})
}

// create makes a new profile holding ids (within limits).
func (r *resolver) create(ctx context.Context, ids []Identifier) (resolution, error) {
	held := map[string]int{}
	var keep []Identifier
	for _, id := range ids {
		if held[id.Type] < r.cc.rule(id.Type).Limit {
			held[id.Type]++
			keep = append(keep, id)
		}
	}
	m := member{memberData: memberData{ID: r.newID(), CreatedAt: r.now, UpdatedAt: r.now, Single: true}}
	m.Root = m.ID
	var record []Op
	if r.record != nil {
		record = r.record(&m)
	}
	claims := r.claim(&m, keep)
	it := m.item(r.tenant)
	ops := append([]Op{{Put: &it, IfAbsent: true}, indexProfile(r.tenant, m.ID)}, claims...)
	if r.notices != nil {
		ops = append(ops, r.notices(m.ID, nil)...)
	}
	if err := r.store.Transact(ctx, append(ops, record...)); err != nil {
		return resolution{}, err
	}
	m.version = 1
	return resolution{Root: m.ID, Member: m, Created: true, Recorded: record != nil}, nil
}

// join attaches fresh identifiers to the matched profile, merging the
// matched profiles into the one of the highest-priority identifier.
func (r *resolver) join(ctx context.Context, ids []Identifier, owned map[Identifier]member, roots []string, fresh []Identifier) (resolution, error) {
	survivor := roots[0]
	var evMember member
	for _, id := range ids {
		if m, ok := owned[id]; ok {
			evMember = m
			break
		}
	}
	if len(roots) == 1 && len(fresh) == 0 {
		return resolution{Root: survivor, Member: evMember}, nil
	}
	byRoot := map[string][]member{}
	var have []member // read just now, consistently
	for _, m := range owned {
		if !slices.ContainsFunc(have, func(h member) bool { return h.ID == m.ID }) {
			have = append(have, m)
		}
	}
	for _, root := range roots {
		ms, err := r.profileMembers(ctx, root, have...)
		if err != nil {
			return resolution{}, err
		}
		byRoot[root] = ms
	}
	if !r.fits(byRoot, fresh) {
		return resolution{}, errLimit
	}
	// Every profile involved is locked by a condition on its root member,
	// so a concurrent attach or merge fails and retries.
	var ops []Op
	var merged []string
	for _, root := range roots {
		for _, m := range byRoot[root] {
			if m.ID == evMember.ID {
				continue // written below
			}
			switch {
			case root != survivor:
				m.Root, m.UpdatedAt = survivor, r.now
				it := m.item(r.tenant)
				ops = append(ops, Op{Put: &it, IfVersion: m.version})
			case m.ID == root && m.Single && len(roots) > 1:
				// The survivor gains members.
				m.Single, m.UpdatedAt = false, r.now
				it := m.item(r.tenant)
				ops = append(ops, Op{Put: &it, IfVersion: m.version})
			case m.ID == root:
				k := memberKey(r.tenant, m.ID)
				ops = append(ops, Op{Put: &Item{PK: k.PK, SK: k.SK}, Check: true, IfVersion: m.version})
			}
		}
		if root != survivor {
			merged = append(merged, root)
			var moved []string
			for _, m := range byRoot[root] {
				moved = append(moved, m.ID)
			}
			d, _ := json.Marshal(mergeData{MergedProfileID: root, Members: moved, At: r.now, Identifier: ids[0].String()})
			ops = append(ops, Op{Put: &Item{PK: KeyPrefix(r.tenant) + "M#" + survivor, SK: "G#" + sortTime(r.now) + "#" + root, Data: d}},
				unindexProfile(r.tenant, root))
		}
	}
	// owned is kept across attempts: change copies of the member's maps.
	evMember.Traits, evMember.Held = maps.Clone(evMember.Traits), maps.Clone(evMember.Held)
	evMember.Root, evMember.UpdatedAt = survivor, r.now
	if len(roots) > 1 {
		evMember.Single = false // a survivor gains members; a merged member is not a root
	}
	var record []Op
	if r.record != nil {
		record = r.record(&evMember)
	}
	claims := r.claim(&evMember, fresh)
	it := evMember.item(r.tenant)
	ops = append(ops, Op{Put: &it, IfVersion: evMember.version})
	ops = append(ops, claims...)
	ops = append(ops, record...)
	if len(merged) > 0 {
		// The merged profile's segments are evaluated anew, from all of it.
		k := reevaluateKey(r.tenant, survivor)
		ops = append(ops, Op{Put: &Item{PK: k.PK, SK: k.SK, Data: []byte(`{}`)}})
		if r.notices != nil {
			ops = append(ops, r.notices(survivor, merged)...)
		}
	}
	if len(ops) > MaxTransactOps {
		return resolution{}, errLimit
	}
	if err := r.store.Transact(ctx, ops); err != nil {
		return resolution{}, err
	}
	evMember.version++
	return resolution{Root: survivor, Member: evMember, Merged: merged, Recorded: record != nil}, nil
}
