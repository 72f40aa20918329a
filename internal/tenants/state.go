package tenants

// Status is where a tenant is in its lifecycle.
type Status string

// Tenant statuses.
const (
	StatusProvisioning   Status = "provisioning"
	StatusActive         Status = "active"
	StatusSuspended      Status = "suspended"
	StatusFailed         Status = "failed"
	StatusDeprovisioning Status = "deprovisioning"
	StatusDeleted        Status = "deleted"
)

// Statuses lists every status, in lifecycle order.
var Statuses = []Status{StatusProvisioning, StatusActive, StatusSuspended, StatusFailed, StatusDeprovisioning, StatusDeleted}

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	for _, v := range Statuses {
		if v == s {
			return true
		}
	}
	return false
}

// Live reports whether the tenant still exists from its users' point of
// view: its tokens work only while it is live and not suspended.
func (s Status) Live() bool {
	return s != StatusDeprovisioning && s != StatusDeleted
}

// Event is something that moves a tenant between statuses.
type Event string

// Lifecycle events.
const (
	EventProvisioned     Event = "complete provisioning of"
	EventProvisionFailed Event = "fail provisioning of"
	EventRetry           Event = "retry"
	EventSuspend         Event = "suspend"
	EventResume          Event = "resume"
	EventOffboard        Event = "offboard"
	EventDeprovisioned   Event = "complete deprovisioning of"
)

// transitions is the whole state machine: the one place that says which
// event may move a tenant from which status to which.
var transitions = map[Status]map[Event]Status{
	StatusProvisioning: {
		EventProvisioned:     StatusActive,
		EventProvisionFailed: StatusFailed,
		EventOffboard:        StatusDeprovisioning,
	},
	StatusActive: {
		EventSuspend:  StatusSuspended,
		EventOffboard: StatusDeprovisioning,
	},
	StatusSuspended: {
		EventResume:   StatusActive,
		EventOffboard: StatusDeprovisioning,
	},
	StatusFailed: {
		EventRetry:    StatusProvisioning,
		EventOffboard: StatusDeprovisioning,
	},
	StatusDeprovisioning: {
		EventDeprovisioned: StatusDeleted,
	},
	StatusDeleted: {},
}

// Next returns the status that event leads to from status from, or a
// *TransitionError when the state machine does not allow it.
func Next(from Status, event Event) (Status, error) {
	to, ok := transitions[from][event]
	if !ok {
		return from, &TransitionError{From: from, Event: event}
	}
	return to, nil
}
