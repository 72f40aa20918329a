package profiles

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/cairn-cdp/cairn/internal/ids"
)

// Sentinel errors of the segment API.
var (
	// ErrSegmentNotFound: no segment with the ID for the tenant.
	ErrSegmentNotFound = errors.New("segment not found")
	// ErrSegmentLimit: the tenant has MaxSegments segments already.
	ErrSegmentLimit = errors.New("segment limit reached")
	// ErrSegmentsBusy: the tenant's segments kept changing under a create
	// or delete (see countSegments); it may be tried again.
	ErrSegmentsBusy = errors.New("segments changed concurrently")
)

// MaxSegments is how many segments a tenant may have.
const MaxSegments = 500

// Segment operators.
const (
	OpEquals      = "equals"
	OpNotEquals   = "not_equals"
	OpExists      = "exists"
	OpNotExists   = "not_exists"
	OpIn          = "in"
	OpContains    = "contains"
	OpGreaterThan = "greater_than"
	OpLessThan    = "less_than"
)

var segmentOperators = []string{OpEquals, OpNotEquals, OpExists, OpNotExists, OpIn, OpContains, OpGreaterThan, OpLessThan}

// Condition is one test of a segment on a profile trait.
type Condition struct {
	Trait    string `json:"trait"`
	Operator string `json:"operator"`
	Value    any    `json:"value,omitempty"`
}

// Segment is a set of profiles defined by conditions on their traits, as
// Apache Unomi defines segments on profile properties. Membership is
// evaluated when a profile is read (Service.Profile), so it follows every
// change of the profile at once and needs no stored state to erase.
type Segment struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// A segment is defined either by Match and Conditions (version 1) or
	// by Definition (version 2, a condition tree; see Node).
	Match      string      `json:"match,omitempty"` // "all" or "any"
	Conditions []Condition `json:"conditions,omitempty"`
	Definition *Node       `json:"definition,omitempty"`
	// Version increases on every edit (If-Match).
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// segmentKey is the item of a segment: one partition holds a tenant's
// segments, sorted by ID, which sorts by creation time.
func segmentKey(tenant, id string) Key { return Key{PK: KeyPrefix(tenant) + "SG", SK: id} }

// lastSegmentMicros is the time of the latest segment ID this process made.
var lastSegmentMicros atomic.Int64

// newSegmentID returns "seg_" and 26 characters of the ID alphabet
// (ids.Encode), which sort as the time they were made: 64 bits of
// microseconds, later than the previous ID's in this process, then 64
// random bits. IDs made before were base32hex ([0-9a-v]) of the same bits;
// every ID made now sorts after them.
func newSegmentID(now time.Time) string {
	us := now.UnixMicro()
	for {
		last := lastSegmentMicros.Load()
		if us <= last {
			us = last + 1
		}
		if lastSegmentMicros.CompareAndSwap(last, us) {
			break
		}
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(us))
	_, _ = rand.Read(b[8:])
	return ids.Encode("seg_", b)
}

// validate checks a segment definition. A Definition was checked by
// ParseDefinition when it was decoded.
func (g *Segment) validate() error {
	switch {
	case g.Name == "" || utf8.RuneCountInString(g.Name) > 100:
		return &ValidationError{Field: "name", Reason: "1 to 100 characters"}
	case utf8.RuneCountInString(g.Description) > 1000:
		return &ValidationError{Field: "description", Reason: "at most 1000 characters"}
	case g.Definition != nil && (g.Match != "" || len(g.Conditions) > 0):
		return &ValidationError{Field: "definition", Reason: "either definition, or match and conditions, not both"}
	case g.Definition != nil:
		return nil
	}
	if g.Match == "" {
		g.Match = "all"
	}
	switch {
	case g.Name == "" || utf8.RuneCountInString(g.Name) > 100:
		return &ValidationError{Field: "name", Reason: "1 to 100 characters"}
	case utf8.RuneCountInString(g.Description) > 1000:
		return &ValidationError{Field: "description", Reason: "at most 1000 characters"}
	case g.Match != "all" && g.Match != "any":
		return &ValidationError{Field: "match", Reason: `"all" or "any"`}
	case len(g.Conditions) == 0 || len(g.Conditions) > 20:
		return &ValidationError{Field: "conditions", Reason: "1 to 20 conditions"}
	}
	for i, c := range g.Conditions {
		if c.Trait == "" || utf8.RuneCountInString(c.Trait) > 200 {
			return &ValidationError{Field: fmt.Sprintf("conditions[%d].trait", i), Reason: "1 to 200 characters"}
		}
		if !slices.Contains(segmentOperators, c.Operator) {
			return &ValidationError{Field: fmt.Sprintf("conditions[%d].operator", i), Reason: "one of " + strings.Join(segmentOperators, ", ")}
		}
	}
	return nil
}

// CreateSegment stores a new segment of the tenant and queues its
// computation (queue), which its status shows.
func (s *Service) CreateSegment(ctx context.Context, tenant string, g Segment, queue func(context.Context, RecomputeArgs) error) (Segment, error) {
	return s.CreateSegmentWithin(ctx, tenant, g, MaxSegments, queue)
}

// CreateSegmentWithin is CreateSegment for a tenant that may have at most
// limit segments (a plan's; never more than MaxSegments): at limit it
// returns ErrSegmentLimit, and concurrent creates never pass it.
func (s *Service) CreateSegmentWithin(ctx context.Context, tenant string, g Segment, limit int, queue func(context.Context, RecomputeArgs) error) (Segment, error) {
	if err := g.validate(); err != nil {
		return Segment{}, err
	}
	if err := s.checkReferences(ctx, tenant, "", g); err != nil {
		return Segment{}, err
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	g.ID, g.CreatedAt, g.UpdatedAt, g.Version = newSegmentID(now), now, now, 1
	d, err := json.Marshal(g)
	if err != nil {
		return Segment{}, &ValidationError{Field: "conditions", Reason: err.Error()}
	}
	k := segmentKey(tenant, g.ID)
	defer s.forgetSegments(tenant)
	// The ID is new: a failed condition is the count's.
	err = s.countSegments(ctx, tenant, +1, min(limit, MaxSegments), Op{Put: &Item{PK: k.PK, SK: k.SK, Data: d}, IfAbsent: true}, func() (bool, error) { return false, nil })
	if err != nil {
		return Segment{}, err
	}
	return g, s.startRecompute(ctx, tenant, g, queue)
}

// segmentCountKey is the item that counts a tenant's segments. Every
// create and delete changes it, conditioned on its version, in the
// transaction that writes the segment, so that creates racing on replicas
// cannot pass MaxSegments.
func segmentCountKey(tenant string) Key { return Key{PK: KeyPrefix(tenant) + "SC", SK: "count"} }

// segmentCountRetries is how many times a segment change that lost a race
// for the count is tried again, after a short random pause that grows. A
// loss on the count's version means another change of the tenant's
// segments won (a transaction the store cancelled for a conflict with no
// winner is retried inside Store.Transact), so only a burst of that many
// changes at once can exhaust it.
const segmentCountRetries = 32

// countSegments applies op (a segment's put or delete) with the tenant's
// segment count moved by delta, refusing a create at limit. When
// the transaction fails a condition, gone reports whether op's own
// condition failed (the segment is not there to delete): then it returns
// ErrSegmentNotFound, else it tries again with the count read anew.
func (s *Service) countSegments(ctx context.Context, tenant string, delta, limit int, op Op, gone func() (bool, error)) error {
	key := segmentCountKey(tenant)
	for attempt := range segmentCountRetries {
		if attempt > 0 {
			pause := time.NewTimer(mrand.N(time.Duration(attempt) * 2 * time.Millisecond))
			select {
			case <-ctx.Done():
				pause.Stop()
				return ctx.Err()
			case <-pause.C:
			}
		}
		counter := Op{Put: &Item{PK: key.PK, SK: key.SK}}
		var count struct {
			N int `json:"n"`
		}
		it, ok, err := s.store.Get(ctx, key)
		switch {
		case err != nil:
			return err
		case ok:
			if err := json.Unmarshal(it.Data, &count); err != nil {
				return fmt.Errorf("segment count of %s: %w", tenant, err)
			}
			counter.IfVersion = it.Version
		default:
			// No count yet: count the segments there are.
			all, err := s.Segments(ctx, tenant, "", 0)
			if err != nil {
				return err
			}
			count.N, counter.IfAbsent = len(all), true
		}
		if delta > 0 && count.N >= limit {
			return ErrSegmentLimit
		}
		count.N = max(count.N+delta, 0)
		counter.Put.Data, _ = json.Marshal(count)
		err = s.store.Transact(ctx, []Op{op, counter})
		if !errors.Is(err, ErrConditionFailed) {
			return err
		}
		if missing, err := gone(); err != nil || missing {
			if err == nil {
				err = ErrSegmentNotFound
			}
			return err
		}
	}
	return fmt.Errorf("%w: %d other changes of the segments of %s won meanwhile", ErrSegmentsBusy, segmentCountRetries, tenant)
}

// forgetSegments drops the tenant's cached segments.
func (s *Service) forgetSegments(tenant string) {
	s.segments.mu.Lock()
	defer s.segments.mu.Unlock()
	delete(s.segments.m, tenant)
}

// Segments lists the tenant's segments oldest first: at most limit (0: all),
// after the one whose ID is after.
func (s *Service) Segments(ctx context.Context, tenant, after string, limit int) ([]Segment, error) {
	// Segment IDs start "seg_": the partition's other items (leafKeyPrefix)
	// sort after them.
	items, err := s.store.Query(ctx, QueryInput{PK: KeyPrefix(tenant) + "SG", Prefix: "seg_", After: after, Limit: limit})
	if err != nil {
		return nil, err
	}
	out := make([]Segment, len(items))
	for i, it := range items {
		if err := json.Unmarshal(it.Data, &out[i]); err != nil {
			return nil, fmt.Errorf("segment item %s: %w", it.SK, err)
		}
		out[i].Version = it.Version
	}
	return out, nil
}

// GetSegment returns a segment of the tenant.
func (s *Service) GetSegment(ctx context.Context, tenant, id string) (Segment, error) {
	it, ok, err := s.store.Get(ctx, segmentKey(tenant, id))
	if err != nil {
		return Segment{}, err
	}
	if !ok {
		return Segment{}, ErrSegmentNotFound
	}
	var g Segment
	if err := json.Unmarshal(it.Data, &g); err != nil {
		return Segment{}, err
	}
	g.Version = it.Version
	return g, nil
}

// DeleteSegment deletes a segment of the tenant.
func (s *Service) DeleteSegment(ctx context.Context, tenant, id string) error {
	k := segmentKey(tenant, id)
	defer s.forgetSegments(tenant)
	return s.countSegments(ctx, tenant, -1, MaxSegments, Op{Delete: &k, IfExists: true}, func() (bool, error) {
		_, ok, err := s.store.Get(ctx, k)
		return !ok, err
	})
}

// segmentsTTL is how long a replica evaluates memberships with the
// segments it read: a segment made or deleted through another replica
// counts there within it (at once on this one).
const segmentsTTL = time.Second

// segmentCache holds each tenant's segments as last read.
type segmentCache struct {
	mu sync.Mutex
	m  map[string]cachedSegments
}

type cachedSegments struct {
	aud  *audience
	read time.Time
}

// matches reports whether traits meet the segment's conditions.
func (g Segment) matches(traits map[string]any) bool {
	for _, c := range g.Conditions {
		v, ok := traits[c.Trait]
		met := c.holds(v, ok && v != nil)
		if g.Match == "any" && met {
			return true
		}
		if g.Match != "any" && !met {
			return false
		}
	}
	return g.Match != "any"
}

// holds reports whether a trait (v, present) meets the condition.
func (c Condition) holds(v any, present bool) bool {
	switch c.Operator {
	case OpExists:
		return present
	case OpNotExists:
		return !present
	case OpNotEquals:
		return !present || !equalJSON(v, c.Value)
	}
	if !present {
		return false
	}
	switch c.Operator {
	case OpEquals:
		return equalJSON(v, c.Value)
	case OpIn:
		list, ok := c.Value.([]any)
		if !ok {
			return equalJSON(v, c.Value)
		}
		return slices.ContainsFunc(list, func(x any) bool { return equalJSON(v, x) })
	case OpContains:
		switch t := v.(type) {
		case string:
			sub, ok := c.Value.(string)
			return ok && strings.Contains(t, sub)
		case []any:
			return slices.ContainsFunc(t, func(x any) bool { return equalJSON(x, c.Value) })
		}
		return false
	case OpGreaterThan:
		n, ok := compare(v, c.Value)
		return ok && n > 0
	case OpLessThan:
		n, ok := compare(v, c.Value)
		return ok && n < 0
	}
	return false
}

// equalJSON compares two values decoded from JSON (numbers as float64, or
// json.Number).
func equalJSON(a, b any) bool {
	if x, ok := number(a); ok {
		y, ok := number(b)
		return ok && x == y
	}
	return reflect.DeepEqual(a, b)
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

// compare orders two numbers, two times (RFC 3339) or two strings.
func compare(a, b any) (int, bool) {
	if x, ok := number(a); ok {
		y, ok := number(b)
		if !ok {
			return 0, false
		}
		switch {
		case x < y:
			return -1, true
		case x > y:
			return 1, true
		}
		return 0, true
	}
	x, ok1 := a.(string)
	y, ok2 := b.(string)
	if !ok1 || !ok2 {
		return 0, false
	}
	tx, err1 := time.Parse(time.RFC3339Nano, x)
	ty, err2 := time.Parse(time.RFC3339Nano, y)
	if err1 == nil && err2 == nil {
		return tx.Compare(ty), true
	}
	return strings.Compare(x, y), true
}

// leafKeyPrefix starts the sort key of an item of the segments' partition
// that records an event leaf whose backfill is done (see backfill).
const leafKeyPrefix = "~leaf#"

// segmentsAndLeaves reads the tenant's segments and the event leaves
// whose backfill is done, in one Query of their partition.
//
// A segment whose stored version prev (the audience last read, or nil)
// holds already is taken from it rather than decoded again: decoding a
// definition is most of the cost of reading a tenant's segments, which
// every replica does every segmentsTTL. The version changes on every
// write of the segment, so an edit is always decoded.
func (s *Service) segmentsAndLeaves(ctx context.Context, tenant string, prev *audience) ([]Segment, map[string]bool, error) {
	items, err := s.store.Query(ctx, QueryInput{PK: KeyPrefix(tenant) + "SG"})
	if err != nil {
		return nil, nil, err
	}
	var out []Segment
	complete := map[string]bool{}
	for _, it := range items {
		if key, ok := strings.CutPrefix(it.SK, leafKeyPrefix); ok {
			complete[key] = true
			continue
		}
		if prev != nil {
			if c := prev.byID[it.SK]; c != nil && c.seg.Version == it.Version {
				out = append(out, c.seg)
				continue
			}
		}
		var g Segment
		if err := json.Unmarshal(it.Data, &g); err != nil {
			return nil, nil, fmt.Errorf("segment item %s: %w", it.SK, err)
		}
		g.Version = it.Version
		out = append(out, g)
	}
	return out, complete, nil
}
