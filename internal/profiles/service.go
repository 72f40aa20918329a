package profiles

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairn-cdp/cairn/internal/ids"
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
	// store is items, the Store given to NewService behind the item cache.
	store    Store
	items    *cachingStore
	raw      RawZone
	now      func() time.Time
	segments segmentCache
	configs  configCache
	outbox   Outbox
	zones    ZoneEraser
	// relays notes the tenants whose outbox has notices to relay;
	// relayRunning is set while relaySoon's goroutine runs.
	relays       sync.Map
	relayRunning atomic.Bool
	relayMu      sync.Mutex
	// changed notes the tenants whose profile count this Service changed
	// (see CountsChanged).
	changed sync.Map
}

// NewService returns a Service. now defaults to time.Now.
func NewService(store Store, raw RawZone, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	items := &cachingStore{Store: store}
	return &Service{store: items, items: items, raw: raw, now: now}
}

// NewProfileID returns a new profile ID: the time in milliseconds (6
// bytes) then 80 random bits. IDs made later sort later, so the items of
// the profiles made by one commit share the store's pages (on SQLite, a
// new profile's member, identifiers and events land at the end of the
// member key range instead of on a random page each).
func NewProfileID() string {
	var b [16]byte
	ms := uint64(time.Now().UnixMilli())
	for i := range 6 {
		b[i] = byte(ms >> (8 * (5 - i)))
	}
	_, _ = rand.Read(b[6:])
	return ids.Encode("prof_", b)
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

// apply resolves one event and records it with its dedup marker and trait
// changes in one conditional transaction, so a retried event is applied
// exactly once even after a crash between the steps.
// It reports whether the event was a duplicate.
// With unseen, the caller has just found no dedup marker for the event;
// index, if set, holds the index items of ids as the caller just read them.
func (s *Service) apply(ctx context.Context, b *batch, i int, unseen bool, index map[Key]Item) (bool, error) {
	tenant, cc, ev, ids, object, now := b.tenant, b.cc, b.events[i], b.idsOf[i], b.object, b.now
	dk := dedupKey(tenant, ev.MessageID)
	if !unseen {
		if dup, err := s.seen(ctx, dk, object); err != nil || dup {
			return dup, err
		}
	}
	r := &resolver{store: s.store, tenant: tenant, cc: cc, now: now, newID: NewProfileID, event: ev.MessageID, index: index, previous: previousOnly(ev, ids),
		notices: func(root string, merged []string) []Op {
			return s.profileNotices(ctx, tenant, ev, ids, root, merged, now)
		},
		record: func(m *member) []Op {
			changed, moved := setTraits(&m.memberData, ev)
			if changed {
				m.UpdatedAt = now
			}
			return b.record(m.ID, i, moved)
		}}
	for range maxResolveAttempts {
		res, err := r.resolve(ctx, ids)
		switch {
		case errors.Is(err, ErrConditionFailed):
			if dup, err := s.seen(ctx, dk, object); err != nil || dup {
				return dup, err
			}
			continue // a concurrent change: look again
		case err != nil:
			return false, err
		}
		if res.Created || len(res.Merged) > 0 {
			s.countChanged(tenant)
		}
		if res.Recorded {
			if len(res.Merged) > 0 {
				b.mark(res.Root)
			}
			return false, nil
		}
		m := res.Member
		changed, moved := setTraits(&m.memberData, ev)
		ops := b.record(m.ID, i, moved)
		if changed {
			m.UpdatedAt = now
			it := m.item(tenant)
			ops = append(ops, Op{Put: &it, IfVersion: m.version})
		} else {
			k := memberKey(tenant, m.ID)
			ops = append(ops, Op{Put: &Item{PK: k.PK, SK: k.SK}, Check: true, IfVersion: m.version})
		}
		err = s.store.Transact(ctx, ops)
		if errors.Is(err, ErrConditionFailed) {
			if dup, err := s.seen(ctx, dk, object); err != nil || dup {
				return dup, err
			}
			continue // the member changed meanwhile: resolve again
		}
		return false, err
	}
	return false, errors.New("apply: too much contention")
}

// seen reports whether the event of dedup key dk was recorded already,
// noting object as another raw copy of it if so.
func (s *Service) seen(ctx context.Context, dk Key, object string) (bool, error) {
	marker, ok, err := s.store.Get(ctx, dk)
	if err != nil || !ok {
		return false, err
	}
	return true, s.noteCopy(ctx, marker, object)
}

// recordOps returns the two writes that record an event of member m: its
// dedup marker, on condition that there is none, and the event itself.
func recordOps(tenant, m string, ev Event, object string, now time.Time) []Op {
	dk := dedupKey(tenant, ev.MessageID)
	marker, _ := json.Marshal(dedupData{Objects: []string{object}})
	evData, _ := json.Marshal(eventData{MessageID: ev.MessageID, Type: ev.Type, Name: cmpOr(ev.Event, ev.Name), Timestamp: ev.Timestamp, Object: object, Raw: ev.Raw})
	return []Op{
		{Put: &Item{PK: dk.PK, SK: dk.SK, Data: marker, ExpiresAt: now.Add(DedupWindow).Unix()}, IfAbsent: true},
		{Put: &Item{PK: KeyPrefix(tenant) + "M#" + m, SK: eventSK(ev.Timestamp, ev.MessageID), Data: evData}},
	}
}

// dedupData marks a processed messageId and lists every raw zone object
// holding a copy of the event (a client retry appends another), so an
// erasure purges them all.
type dedupData struct {
	Objects []string `json:"objects"`
}

// noteCopy adds object to a duplicate's marker, so that an erasure finds
// every raw copy of its event (a duplicate reaches the raw zone only when
// it raced with the first copy). A lost race reads the marker again.
func (s *Service) noteCopy(ctx context.Context, marker Item, object string) error {
	for range maxResolveAttempts {
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
		if !errors.Is(err, ErrConditionFailed) {
			return err
		}
		var ok bool
		if marker, ok, err = s.store.Get(ctx, Key{PK: marker.PK, SK: marker.SK}); err != nil || !ok {
			return err // an expired marker needs no note
		}
	}
	return errors.New("note raw copy: too much contention")
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// setTraits applies an identify's traits to the member, newest timestamp
// winning per trait, and reports whether anything changed (a value or a
// time), and which traits took another value (what segments see).
func setTraits(m *memberData, ev Event) (bool, []string) {
	if ev.Type != "identify" || len(ev.Traits) == 0 {
		return false, nil
	}
	if m.Traits == nil {
		m.Traits = map[string]traitValue{}
	}
	changed := false
	var moved []string
	for k, v := range ev.Traits {
		old, ok := m.Traits[k]
		if ok && old.At.After(ev.Timestamp) {
			continue
		}
		if !ok || !reflect.DeepEqual(old.V, v) {
			moved = append(moved, k)
		}
		m.Traits[k] = traitValue{V: v, At: ev.Timestamp}
		changed = true
	}
	slices.Sort(moved)
	return changed, moved
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
// the surviving profile, with the segments it is a member of.
func (s *Service) Profile(ctx context.Context, tenant, id string) (Profile, error) {
	p, err := s.profile(ctx, tenant, id)
	if err != nil {
		return Profile{}, err
	}
	p.Segments, err = s.memberships(ctx, tenant, p.ID)
	return p, err
}

// memberships returns the IDs of the segments the profile is a member of,
// oldest segment first, as stored.
func (s *Service) memberships(ctx context.Context, tenant, profile string) ([]string, error) {
	items, err := s.store.Query(ctx, QueryInput{PK: membershipKey(tenant, profile, "").PK})
	if err != nil || len(items) == 0 {
		return []string{}, err
	}
	// A deleted segment's memberships go with its removal job; they no
	// longer count.
	aud, err := s.audienceOf(ctx, tenant)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		if aud.byID[it.SK] != nil {
			out = append(out, it.SK)
		}
	}
	return out, nil
}

// profile is Profile without segment memberships.
//
// An unmerged profile costs two reads: its member with its identifiers,
// and the members under it (gsi1).
func (s *Service) profile(ctx context.Context, tenant, id string) (Profile, error) {
	r := &resolver{store: s.store, tenant: tenant}
	m, mIDs, ok, err := r.memberWithIdentifiers(ctx, id)
	if err != nil {
		return Profile{}, err
	}
	if !ok {
		return Profile{}, ErrProfileNotFound
	}
	members, err := r.profileMembers(ctx, m.Root, m)
	if err != nil {
		return Profile{}, err
	}
	if len(members) == 0 {
		return Profile{}, ErrProfileNotFound
	}
	p := Profile{ID: m.Root, Traits: map[string]any{}}
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
		ids := mIDs
		if mb.ID != m.ID {
			if ids, err = r.memberIdentifiers(ctx, mb.ID); err != nil {
				return Profile{}, err
			}
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
	if d.Suppressed {
		return Profile{}, ErrProfileNotFound
	}
	return s.Profile(ctx, tenant, d.Member)
}

// Merge is one merge into a profile.
type Merge struct {
	MergedProfileID string
	Members         []string
	At              time.Time
	Identifier      string
	// Event is the messageId of the event that merged ("" for merges
	// recorded before it was kept).
	Event string
}

// Merges lists the merges into the profile, oldest first.
func (s *Service) Merges(ctx context.Context, tenant, id string) ([]Merge, error) {
	p, err := s.profile(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	items, err := s.store.Query(ctx, QueryInput{PK: KeyPrefix(tenant) + "M#" + p.ID, Prefix: "G#"})
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
	p, err := s.profile(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	var all []StoredEvent
	for _, m := range append([]string{p.ID}, p.MergedProfileIDs...) {
		// Sort keys start with the event time, so one cursor pages every
		// member's events together.
		in := QueryInput{PK: KeyPrefix(tenant) + "M#" + m, Prefix: "E#", Desc: true, After: cursor}
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
