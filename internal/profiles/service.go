package profiles

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync"
	"time"
)

// Sentinel errors of Service.
var (
	// ErrProfileNotFound: no profile has the ID or identifier.
	ErrProfileNotFound = errors.New("profile not found")
)

// DedupWindow is how long a messageId is remembered.
const DedupWindow = 48 * time.Hour

// Service ingests events and serves profiles. It is safe for concurrent
// use; replicas coordinate through the Store's conditions only.
type Service struct {
	store Store
	raw   RawZone
	now   func() time.Time
}

// NewService returns a Service. now defaults to time.Now.
func NewService(store Store, raw RawZone, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, raw: raw, now: now}
}

// NewProfileID returns a random profile ID.
func NewProfileID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "prof_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// IdentityConfig returns the tenant's configuration (the default until set).
func (s *Service) IdentityConfig(ctx context.Context, tenant string) (IdentityConfig, error) {
	it, ok, err := s.store.Get(ctx, configKey(tenant))
	if err != nil || !ok {
		return DefaultIdentityConfig(), err
	}
	var c IdentityConfig
	return c, json.Unmarshal(it.Data, &c)
}

// SetIdentityConfig validates and stores the tenant's configuration.
func (s *Service) SetIdentityConfig(ctx context.Context, tenant string, c IdentityConfig) (IdentityConfig, error) {
	if _, err := c.compile(); err != nil {
		return IdentityConfig{}, err
	}
	d, _ := json.Marshal(c)
	k := configKey(tenant)
	return c, s.store.Transact(ctx, []Op{{Put: &Item{PK: k.PK, SK: k.SK, Data: d}}})
}

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
func (s *Service) Ingest(ctx context.Context, tenant string, events []Event) (IngestResult, error) {
	var res IngestResult
	if len(events) == 0 {
		return res, nil
	}
	cfg, err := s.IdentityConfig(ctx, tenant)
	if err != nil {
		return res, err
	}
	cc, err := cfg.compile()
	if err != nil {
		return res, err
	}
	// Events naming a suppressed (erased) identifier are dropped before
	// anything of them is stored.
	idsOf := make([][]Identifier, len(events))
	var supKeys []Key
	for i, ev := range events {
		idsOf[i] = cc.identifiers(ev)
		for _, id := range idsOf[i] {
			supKeys = append(supKeys, suppressKey(tenant, id))
		}
	}
	sup, err := s.store.BatchGet(ctx, supKeys)
	if err != nil {
		return res, err
	}
	var keep []int
	var lines [][]byte
	for i, ev := range events {
		if len(idsOf[i]) == 0 || slices.ContainsFunc(idsOf[i], func(id Identifier) bool {
			_, ok := sup[suppressKey(tenant, id)]
			return ok
		}) {
			res.Suppressed++
			continue
		}
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
	// Events run in parallel lanes; events whose highest-priority
	// identifier is the same share a lane and keep their order. Events in
	// different lanes that meet on one profile are kept correct by the
	// store's conditions (the loser retries), and the store can commit
	// the lanes' writes together.
	lanes := make([][]int, min(Lanes, len(keep)))
	seen := map[string]bool{}
	for _, i := range keep {
		ev := events[i]
		if seen[ev.MessageID] {
			res.Duplicates++
			continue
		}
		seen[ev.MessageID] = true
		h := fnv.New32a()
		h.Write([]byte(idsOf[i][0].String()))
		lane := int(h.Sum32() % uint32(len(lanes)))
		lanes[lane] = append(lanes[lane], i)
	}
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	for _, lane := range lanes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, i := range lane {
				dup, err := s.apply(ctx, tenant, cc, events[i], idsOf[i], res.Object, now)
				mu.Lock()
				switch {
				case err != nil:
					if firstErr == nil {
						firstErr = err
					}
				case dup:
					res.Duplicates++
				default:
					res.Accepted++
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	return res, firstErr
}

// Lanes is how many events of one batch are resolved at once.
const Lanes = 32

// apply resolves one event and records it with its dedup marker and trait
// changes in one conditional transaction, so a retried event is applied
// exactly once even after a crash between the steps.
// It reports whether the event was a duplicate.
func (s *Service) apply(ctx context.Context, tenant string, cc compiledConfig, ev Event, ids []Identifier, object string, now time.Time) (bool, error) {
	dk := dedupKey(tenant, ev.MessageID)
	if dup, ok, err := s.store.Get(ctx, dk); err != nil || ok {
		if err == nil {
			err = s.noteCopy(ctx, dup, object)
		}
		return true, err
	}
	r := &resolver{store: s.store, tenant: tenant, cc: cc, now: now, newID: NewProfileID}
	for range maxResolveAttempts {
		res, err := r.resolve(ctx, ids)
		if err != nil {
			return false, err
		}
		m := res.Member
		marker, _ := json.Marshal(dedupData{Objects: []string{object}})
		ops := []Op{{Put: &Item{PK: dk.PK, SK: dk.SK, Data: marker, ExpiresAt: now.Add(DedupWindow).Unix()}, IfAbsent: true}}
		evData, _ := json.Marshal(eventData{MessageID: ev.MessageID, Type: ev.Type, Name: cmpOr(ev.Event, ev.Name), Timestamp: ev.Timestamp, Object: object, Raw: ev.Raw})
		ops = append(ops, Op{Put: &Item{PK: tenantPrefix(tenant) + "M#" + m.ID, SK: eventSK(ev.Timestamp, ev.MessageID), Data: evData}})
		if changed := setTraits(&m.memberData, ev); changed {
			m.UpdatedAt = now
			it := m.item(tenant)
			ops = append(ops, Op{Put: &it, IfVersion: m.version})
		} else {
			k := memberKey(tenant, m.ID)
			ops = append(ops, Op{Put: &Item{PK: k.PK, SK: k.SK}, Check: true, IfVersion: m.version})
		}
		err = s.store.Transact(ctx, ops)
		if errors.Is(err, ErrConditionFailed) {
			if dup, ok, err := s.store.Get(ctx, dk); err != nil || ok {
				if err == nil {
					err = s.noteCopy(ctx, dup, object)
				}
				return true, err
			}
			continue // the member changed meanwhile: resolve again
		}
		return false, err
	}
	return false, errors.New("apply: too much contention")
}

// dedupData marks a processed messageId and lists every raw zone object
// holding a copy of the event (a client retry appends another), so an
// erasure purges them all.
type dedupData struct {
	Objects []string `json:"objects"`
}

// noteCopy adds object to a duplicate's marker. A lost race only means
// another writer updated the marker; the copy is noted on its retry.
func (s *Service) noteCopy(ctx context.Context, marker Item, object string) error {
	var d dedupData
	if err := json.Unmarshal(marker.Data, &d); err != nil {
		return fmt.Errorf("dedup marker %s: %w", marker.PK, err)
	}
	if slices.Contains(d.Objects, object) {
		return nil
	}
	d.Objects = append(d.Objects, object)
	marker.Data, _ = json.Marshal(d)
	err := s.store.Transact(ctx, []Op{{Put: &marker, IfVersion: marker.Version}})
	if errors.Is(err, ErrConditionFailed) {
		return nil
	}
	return err
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// setTraits applies an identify's traits to the member, newest timestamp
// winning per trait, and reports whether anything changed.
func setTraits(m *memberData, ev Event) bool {
	if ev.Type != "identify" || len(ev.Traits) == 0 {
		return false
	}
	if m.Traits == nil {
		m.Traits = map[string]traitValue{}
	}
	changed := false
	for k, v := range ev.Traits {
		if old, ok := m.Traits[k]; ok && old.At.After(ev.Timestamp) {
			continue
		}
		m.Traits[k] = traitValue{V: v, At: ev.Timestamp}
		changed = true
	}
	return changed
}

// ProfileIdentifier is an identifier of a profile as served.
type ProfileIdentifier struct {
	Type      string
	Value     string
	FirstSeen time.Time
}

// Profile is a unified profile.
type Profile struct {
	ID          string
	Traits      map[string]any
	Identifiers []ProfileIdentifier
	// MergedProfileIDs are the profiles merged into this one; each still
	// resolves to it.
	MergedProfileIDs []string
	Segments         []string
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

// Profile returns the profile with the ID, following a merged-away ID to
// the surviving profile.
func (s *Service) Profile(ctx context.Context, tenant, id string) (Profile, error) {
	it, ok, err := s.store.Get(ctx, memberKey(tenant, id))
	if err != nil {
		return Profile{}, err
	}
	if !ok {
		return Profile{}, ErrProfileNotFound
	}
	m, err := readMember(it)
	if err != nil {
		return Profile{}, err
	}
	r := &resolver{store: s.store, tenant: tenant}
	members, err := r.profileMembers(ctx, m.Root)
	if err != nil {
		return Profile{}, err
	}
	if len(members) == 0 {
		return Profile{}, ErrProfileNotFound
	}
	p := Profile{ID: m.Root, Traits: map[string]any{}, Segments: []string{}}
	latest := map[string]time.Time{}
	for _, mb := range members {
		if mb.ID != m.Root {
			p.MergedProfileIDs = append(p.MergedProfileIDs, mb.ID)
		}
		if p.CreatedAt.IsZero() || mb.CreatedAt.Before(p.CreatedAt) {
			p.CreatedAt = mb.CreatedAt
		}
		if mb.UpdatedAt.After(p.UpdatedAt) {
			p.UpdatedAt = mb.UpdatedAt
		}
		for k, v := range mb.Traits {
			if t, ok := latest[k]; !ok || v.At.After(t) {
				latest[k], p.Traits[k] = v.At, v.V
			}
		}
		ids, err := r.memberIdentifiers(ctx, mb.ID)
		if err != nil {
			return Profile{}, err
		}
		for _, id := range ids {
			p.Identifiers = append(p.Identifiers, ProfileIdentifier(id))
		}
	}
	slices.Sort(p.MergedProfileIDs)
	slices.SortFunc(p.Identifiers, func(a, b ProfileIdentifier) int {
		return strings.Compare(a.Type+"#"+a.Value, b.Type+"#"+b.Value)
	})
	return p, nil
}

// Lookup returns the profile holding an identifier.
func (s *Service) Lookup(ctx context.Context, tenant string, id Identifier) (Profile, error) {
	if id.Type == IDEmail {
		id.Value = strings.ToLower(id.Value)
	}
	it, ok, err := s.store.Get(ctx, indexKey(tenant, id))
	if err != nil {
		return Profile{}, err
	}
	if !ok {
		return Profile{}, ErrProfileNotFound
	}
	var d indexData
	if err := json.Unmarshal(it.Data, &d); err != nil {
		return Profile{}, err
	}
	return s.Profile(ctx, tenant, d.Member)
}

// Merge is one merge into a profile.
type Merge struct {
	MergedProfileID string
	Members         []string
	At              time.Time
	Identifier      string
}

// Merges lists the merges into the profile, oldest first.
func (s *Service) Merges(ctx context.Context, tenant, id string) ([]Merge, error) {
	p, err := s.Profile(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	items, err := s.store.Query(ctx, QueryInput{PK: tenantPrefix(tenant) + "M#" + p.ID, Prefix: "G#"})
	if err != nil {
		return nil, err
	}
	out := make([]Merge, 0, len(items))
	for _, it := range items {
		var d mergeData
		if err := json.Unmarshal(it.Data, &d); err != nil {
			return nil, err
		}
		out = append(out, Merge(d))
	}
	return out, nil
}

// StoredEvent is an event of a profile.
type StoredEvent struct {
	MessageID string
	Type      string
	Name      string
	Timestamp time.Time
	ProfileID string
	Raw       json.RawMessage
	// Cursor continues a listing after this event.
	Cursor string
}

// Events returns a profile's events newest first, across all its members:
// at most limit, after the cursor, and only named name when set.
func (s *Service) Events(ctx context.Context, tenant, id, name, cursor string, limit int) ([]StoredEvent, error) {
	p, err := s.Profile(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	var all []StoredEvent
	for _, m := range append([]string{p.ID}, p.MergedProfileIDs...) {
		// Sort keys start with the event time, so one cursor pages every
		// member's events together.
		in := QueryInput{PK: tenantPrefix(tenant) + "M#" + m, Prefix: "E#", Desc: true, After: cursor}
		if name == "" {
			in.Limit = limit
		}
		items, err := s.store.Query(ctx, in)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			var d eventData
			if err := json.Unmarshal(it.Data, &d); err != nil {
				return nil, err
			}
			if name != "" && d.Name != name {
				continue
			}
			all = append(all, StoredEvent{MessageID: d.MessageID, Type: d.Type, Name: d.Name, Timestamp: d.Timestamp, ProfileID: m, Raw: d.Raw, Cursor: it.SK})
		}
	}
	slices.SortFunc(all, func(a, b StoredEvent) int { return strings.Compare(b.Cursor, a.Cursor) })
	if limit > 0 && len(all) > limit {
		all = all[:limit]
	}
	return all, nil
}
