package tenants

import (
	"errors"
	"testing"
)

var allEvents = []Event{EventProvisioned, EventProvisionFailed, EventRetry, EventSuspend, EventResume, EventOffboard, EventDeprovisioned}

func TestNextAllowsExactlyTheLifecycle(t *testing.T) {
	allowed := map[Status]map[Event]Status{
		StatusProvisioning:   {EventProvisioned: StatusActive, EventProvisionFailed: StatusFailed, EventOffboard: StatusDeprovisioning},
		StatusActive:         {EventSuspend: StatusSuspended, EventOffboard: StatusDeprovisioning},
		StatusSuspended:      {EventResume: StatusActive, EventOffboard: StatusDeprovisioning},
		StatusFailed:         {EventRetry: StatusProvisioning, EventOffboard: StatusDeprovisioning},
		StatusDeprovisioning: {EventDeprovisioned: StatusDeleted},
		StatusDeleted:        {},
	}
	for _, from := range Statuses {
		for _, ev := range allEvents {
			to, err := Next(from, ev)
			want, ok := allowed[from][ev]
			if ok {
				if err != nil || to != want {
					t.Errorf("Next(%s, %q) = %s, %v; want %s", from, ev, to, err, want)
				}
				continue
			}
			var te *TransitionError
			if !errors.As(err, &te) || te.From != from || te.Event != ev {
				t.Errorf("Next(%s, %q) = %s, %v; want a TransitionError naming %s", from, ev, to, err, from)
			}
			if to != from {
				t.Errorf("Next(%s, %q) moved to %s on error", from, ev, to)
			}
		}
	}
}

func TestLive(t *testing.T) {
	for _, s := range Statuses {
		want := s != StatusDeprovisioning && s != StatusDeleted
		if s.Live() != want {
			t.Errorf("%s.Live() = %v", s, s.Live())
		}
	}
}
