// Package attention lists what in Cairn's fleet needs an operator: the
// stacks that failed for good (a tenant's stack in one of its Regions, or a
// Region's pool stack, which every pooled tenant there shares) and the
// grants that Lake Formation refused. Each of them stays as it is until an
// operator acts (retries the stack, revokes or asks again for the grant);
// the tenant's own status does not show them, since an active tenant may
// have a failed Region or a failed grant.
//
// Drift between Lake Formation and the grants ledger is not listed: the
// broker's reconcile repairs missing grants on its own, and permissions
// outside the broker belong to no grant.
//
// The list is a read model over the control-plane database: the store
// adapters implement Store with one query, so the list reflects one
// snapshot of the database per page. This package imports no other Cairn
// package.
package attention

import (
	"context"
	"errors"
	"strings"
	"time"
)

// Kind is what an Item is about.
type Kind string

// Item kinds, in the order the list sorts items of the same time.
const (
	// KindGrant is a grant whose status is failed.
	KindGrant Kind = "grant"
	// KindPoolStack is a Region's pool stack whose status is failed: no
	// pooled tenant of the Region can be provisioned there until it is
	// retried.
	KindPoolStack Kind = "pool_stack"
	// KindStack is a tenant's stack in one Region whose status is failed.
	KindStack Kind = "stack"
)

// Valid reports whether k is one of the kinds above.
func (k Kind) Valid() bool {
	return k == KindGrant || k == KindPoolStack || k == KindStack
}

// Item is one thing that needs attention.
type Item struct {
	Kind Kind
	// TenantID and the tenant's fields after it are empty for a pool
	// stack, which is no one tenant's.
	TenantID     string
	TenantSlug   string
	TenantName   string
	TenantStatus string
	Region       string
	// Status is the stack's or the grant's status.
	Status string
	// Reason is why it failed, as CloudFormation or Lake Formation said.
	Reason string
	// StackName names the stack of a stack or pool stack.
	StackName string
	// GrantID and Principal name the grant of a grant.
	GrantID   string
	Principal string
	// UpdatedAt is when the stack's or grant's record last changed: for
	// an item that is still failed, when it failed or after.
	UpdatedAt time.Time
}

// Key identifies the item within its kind: "<tenant ID>/<Region>" for a
// stack, the Region for a pool stack, the grant ID for a grant. The store
// adapters compute the same key in their query.
func (i Item) Key() string {
	switch i.Kind {
	case KindStack:
		return i.TenantID + "/" + i.Region
	case KindPoolStack:
		return i.Region
	default:
		return i.GrantID
	}
}

// Position is where an item stands in the list, which is ordered by
// UpdatedAt, then Kind, then Key: oldest first, so what has waited longest
// comes first, and what fails while a client pages comes at the end.
type Position struct {
	UpdatedAt time.Time
	Kind      Kind
	Key       string
}

// Position returns the item's position.
func (i Item) Position() Position {
	return Position{UpdatedAt: i.UpdatedAt, Kind: i.Kind, Key: i.Key()}
}

// ErrBadPosition is returned by ParsePosition for text that String did not
// make.
var ErrBadPosition = errors.New("malformed position")

// String is the position as text (a cursor carries it): the time in
// RFC 3339 with nanoseconds in UTC, the kind and the key, separated by "|".
func (p Position) String() string {
	return p.UpdatedAt.UTC().Format(time.RFC3339Nano) + "|" + string(p.Kind) + "|" + p.Key
}

// ParsePosition parses what String returns, or returns ErrBadPosition. The
// zero Position's text is valid: it is before every item, the start of
// the list.
func ParsePosition(s string) (Position, error) {
	at, rest, ok := strings.Cut(s, "|")
	if !ok {
		return Position{}, ErrBadPosition
	}
	kind, key, ok := strings.Cut(rest, "|")
	t, err := time.Parse(time.RFC3339Nano, at)
	if !ok || err != nil || (Kind(kind).Valid() != (key != "")) {
		return Position{}, ErrBadPosition
	}
	return Position{UpdatedAt: t.UTC(), Kind: Kind(kind), Key: key}, nil
}

// ListParams selects and pages the list; zero values do not filter.
type ListParams struct {
	Kind   Kind
	Region string
	// After, unless zero, starts the list after this position.
	After Position
	// Limit is the most items returned; the store returns every item
	// when it is 0 or less.
	Limit int
}

// Store is the read port of the list. Implementations must be safe for
// concurrent use.
type Store interface {
	// AttentionList returns the items that match p, in Position order.
	AttentionList(ctx context.Context, p ListParams) ([]Item, error)
}
