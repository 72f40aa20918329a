package tenants

import (
	"errors"
	"fmt"
)

// Sentinel errors returned by Service and by Store implementations.
var (
	// ErrNotFound is returned when no tenant has the given ID.
	ErrNotFound = errors.New("tenant not found")
	// ErrSlugTaken is returned by Tx.TenantInsert (and so by Service.Onboard)
	// when a live tenant already uses the slug.
	ErrSlugTaken = errors.New("slug already taken")
	// ErrVersionMismatch is returned by Tx.TenantUpdate and Service.Update when
	// the tenant changed since the version the caller read.
	ErrVersionMismatch = errors.New("tenant version mismatch")
	// ErrRegionRemoved is returned by Service.Update for a Region list that
	// leaves out one of the tenant's Regions: Regions can only be added.
	ErrRegionRemoved = errors.New("regions can only be added")
	// ErrInvalid wraps every validation failure; see ValidationError.
	ErrInvalid = errors.New("invalid tenant input")
)

// ValidationError names the offending field. It matches ErrInvalid with
// errors.Is.
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Reason) }

// Is makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// TransitionError is returned when an event is not allowed in the tenant's
// current status. It carries the current status so callers can name it.
type TransitionError struct {
	From  Status
	Event Event
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("cannot %s a tenant that is %s", e.Event, e.From)
}
