// Package plans holds the ISV's plans: named sets of limits that a tenant's
// plan field refers to. A plan limits the events a tenant's sources and the
// tenant as a whole may send per second, the requests per second of each of
// its tokens, how many profiles, segments and webhook endpoints it may
// have, and the events it may send in a calendar month (UTC), with a mode
// that says whether going over the monthly quota only warns or blocks.
//
// Plans live in the control-plane database (Store, implemented by the
// store adapters); a change is versioned (its ETag) and writes its audit
// event in its own transaction. There is always a plan named DefaultName,
// made by the migration that made the table: a tenant whose plan is empty,
// or names no plan (a free-text plan of an older version), has its limits.
//
// Service.Limits answers from a cache refreshed every CacheTTL, so the
// request path reads no database: another replica's change takes effect
// here within CacheTTL, this replica's own at once.
//
// Errors: ErrNotFound, ErrVersionMismatch and *ValidationError (matching
// ErrInvalid), from Service and Store alike.
package plans

import (
	"errors"
	"fmt"
	"regexp"
	"time"
	"unicode/utf8"
)

// DefaultName is the plan of tenants that name none.
const DefaultName = "default"

// Mode says what happens to the events of a tenant past a quota: the
// monthly quota of events, or its limit of profiles.
type Mode string

// Modes.
const (
	// ModeWarn accepts them, says so in a response header and announces
	// the tenant's crossing once a month with a fleet event.
	ModeWarn Mode = "warn"
	// ModeBlock refuses them, after the same announcement: past the
	// monthly quota (429) until the month ends, at the limit of profiles
	// (403) until erasures bring the tenant under it or the plan rises.
	ModeBlock Mode = "block"
)

// Limits are a plan's limits; a nil limit is unlimited. Rates are per
// second, across every replica.
type Limits struct {
	EventsPerSecondPerSource  *int64 `json:"events_per_second_per_source,omitempty"`
	EventsPerSecondPerTenant  *int64 `json:"events_per_second_per_tenant,omitempty"`
	RequestsPerSecondPerToken *int64 `json:"requests_per_second_per_token,omitempty"`
	Profiles                  *int64 `json:"profiles,omitempty"`
	Segments                  *int64 `json:"segments,omitempty"`
	Webhooks                  *int64 `json:"webhooks,omitempty"`
	MonthlyEvents             *int64 `json:"monthly_events,omitempty"`
}

// Plan is one named set of limits.
type Plan struct {
	Name        string
	Description string
	Limits      Limits
	// MonthlyEventsMode applies when Limits.MonthlyEvents is set.
	MonthlyEventsMode Mode
	// ProfilesMode applies when Limits.Profiles is set.
	ProfilesMode Mode
	// Version increases by one on every change; it is the plan's ETag.
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Limits on plan input.
const (
	MaxNameLen        = 64
	MaxDescriptionLen = 500
	// MaxLimit bounds every limit: far beyond any machine, small enough
	// for every store and every float conversion.
	MaxLimit = 1_000_000_000_000
)

// Sentinel errors.
var (
	// ErrNotFound: no plan has the name.
	ErrNotFound = errors.New("plan not found")
	// ErrVersionMismatch: the plan changed since the version the caller
	// read (or, for a create, a plan of the name appeared).
	ErrVersionMismatch = errors.New("plan version mismatch")
	// ErrInvalid is matched by every *ValidationError.
	ErrInvalid = errors.New("invalid plan input")
)

// ValidationError names the offending field as the API spells it
// ("limits/segments").
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Reason }

// Is makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

var namePattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// ValidName reports whether name can name a plan: 1 to 64 letters, digits,
// '.', '_' and '-'.
func ValidName(name string) bool { return namePattern.MatchString(name) }

// Default is the default plan as the migration that made the table made
// it: 1,000 events a second per tenant (what Segment's product limits give
// a workspace before it queues), 500 per source, 100 requests a second
// per token, no monthly quota and no counts but Cairn's own caps: above
// what a tenant's sites and apps send, below what one replica ingests, so
// that one tenant cannot take a replica whole. The ISV sets its own with
// PUT /v1/plans/default.
func Default() Plan {
	return Plan{
		Name:        DefaultName,
		Description: "The plan of tenants that name none.",
		Limits: Limits{
			EventsPerSecondPerSource:  ptr(500),
			EventsPerSecondPerTenant:  ptr(1_000),
			RequestsPerSecondPerToken: ptr(100),
		},
		MonthlyEventsMode: ModeWarn,
		ProfilesMode:      ModeWarn,
		Version:           1,
	}
}

func ptr(v int64) *int64 { return &v }

func (p *Plan) validate() error {
	if !ValidName(p.Name) {
		return &ValidationError{Field: "name", Reason: fmt.Sprintf("must be 1 to %d letters, digits, '.', '_' and '-'", MaxNameLen)}
	}
	if utf8.RuneCountInString(p.Description) > MaxDescriptionLen {
		return &ValidationError{Field: "description", Reason: fmt.Sprintf("must be at most %d characters", MaxDescriptionLen)}
	}
	for _, l := range []struct {
		field string
		v     *int64
		min   int64
	}{
		{"events_per_second_per_source", p.Limits.EventsPerSecondPerSource, 1},
		{"events_per_second_per_tenant", p.Limits.EventsPerSecondPerTenant, 1},
		{"requests_per_second_per_token", p.Limits.RequestsPerSecondPerToken, 1},
		{"profiles", p.Limits.Profiles, 0},
		{"segments", p.Limits.Segments, 0},
		{"webhooks", p.Limits.Webhooks, 0},
		{"monthly_events", p.Limits.MonthlyEvents, 0},
	} {
		if l.v != nil && (*l.v < l.min || *l.v > MaxLimit) {
			return &ValidationError{Field: "limits/" + l.field, Reason: fmt.Sprintf("must be between %d and %d, or absent for no limit", l.min, int64(MaxLimit))}
		}
	}
	for _, m := range []struct {
		field string
		mode  *Mode
	}{{"monthly_events_mode", &p.MonthlyEventsMode}, {"profiles_mode", &p.ProfilesMode}} {
		switch *m.mode {
		case "":
			*m.mode = ModeWarn
		case ModeWarn, ModeBlock:
		default:
			return &ValidationError{Field: m.field, Reason: `must be "warn" or "block"`}
		}
	}
	return nil
}

// sameTerms reports whether a and b set the same description, limits and
// mode: a PUT of them changes nothing.
func sameTerms(a, b Plan) bool {
	eq := func(x, y *int64) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	la, lb := a.Limits, b.Limits
	return a.Description == b.Description && a.MonthlyEventsMode == b.MonthlyEventsMode && a.ProfilesMode == b.ProfilesMode &&
		eq(la.EventsPerSecondPerSource, lb.EventsPerSecondPerSource) && eq(la.EventsPerSecondPerTenant, lb.EventsPerSecondPerTenant) &&
		eq(la.RequestsPerSecondPerToken, lb.RequestsPerSecondPerToken) && eq(la.Profiles, lb.Profiles) &&
		eq(la.Segments, lb.Segments) && eq(la.Webhooks, lb.Webhooks) && eq(la.MonthlyEvents, lb.MonthlyEvents)
}
