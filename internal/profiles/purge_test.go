package profiles_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/profiles"
	"github.com/cairn-cdp/cairn/internal/tenants"
)

// TestPurgeTenant purges one tenant of a store two share: its profiles go,
// the other's stay, and a second purge finds nothing.
func TestPurgeTenant(t *testing.T) {
	stores(t, func(t *testing.T, f *fixture) {
		other := *f
		other.tenant = tenants.NewID()
		for _, x := range []*fixture{f, &other} {
			x.send(
				x.ev(map[string]any{"userId": "u1", "email": "u1@example.com", "plan": "pro"}),
				x.ev(map[string]any{"type": "track", "userId": "u1"}),
				x.ev(map[string]any{"anonymousId": "a1", "email": "u1@example.com"}),
			)
		}
		ctx := t.Context()
		n, err := f.svc.PurgeTenant(ctx, f.tenant, 0)
		if err != nil || n == 0 {
			t.Fatalf("PurgeTenant: %d, %v; want items deleted", n, err)
		}
		for _, id := range []profiles.Identifier{{Type: profiles.IDUserID, Value: "u1"}, {Type: profiles.IDEmail, Value: "u1@example.com"}, {Type: profiles.IDAnonymousID, Value: "a1"}} {
			if _, err := f.svc.Lookup(ctx, f.tenant, id); !errors.Is(err, profiles.ErrProfileNotFound) {
				t.Errorf("lookup %s:%s of the purged tenant: %v, want ErrProfileNotFound", id.Type, id.Value, err)
			}
		}
		if p := other.lookup(profiles.IDEmail, "u1@example.com"); len(p.Identifiers) != 3 {
			t.Errorf("the other tenant's profile after the purge: %+v", p)
		}
		if n, err := f.svc.PurgeTenant(ctx, f.tenant, 0); err != nil || n != 0 {
			t.Errorf("second PurgeTenant: %d, %v; want 0", n, err)
		}
		if _, err := f.svc.PurgeTenant(ctx, "ten_a", 0); !errors.Is(err, profiles.ErrInvalidInput) {
			t.Errorf("PurgeTenant of a malformed ID: %v, want ErrInvalidInput", err)
		}
	})
}

// TestPurgeTenantInRuns gives PurgeTenant less time than the purge takes:
// a budget that ends before any progress is a plain deadline error (and a
// cancelled caller gets its own), one that ends after some is
// ErrPurgeUnfinished, and calls with a budget, doubled after each run that
// made no progress, finish the purge.
func TestPurgeTenantInRuns(t *testing.T) {
	stores(t, func(t *testing.T, f *fixture) {
		for i := range 10 {
			f.send(f.ev(map[string]any{"userId": fmt.Sprint("u", i), "email": fmt.Sprintf("u%d@example.com", i)}))
		}
		ctx := t.Context()
		if n, err := f.svc.PurgeTenant(ctx, f.tenant, time.Nanosecond); !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, profiles.ErrPurgeUnfinished) || n != 0 {
			t.Fatalf("PurgeTenant with 1ns: %d, %v; want 0 and context.DeadlineExceeded, not ErrPurgeUnfinished", n, err)
		}
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		if n, err := f.svc.PurgeTenant(cancelled, f.tenant, time.Hour); !errors.Is(err, context.Canceled) || errors.Is(err, profiles.ErrPurgeUnfinished) || n != 0 {
			t.Fatalf("PurgeTenant of a cancelled caller: %d, %v; want 0 and context.Canceled", n, err)
		}
		budget, unfinished := 5*time.Millisecond, 0
		for run := 0; ; run++ {
			_, err := f.svc.PurgeTenant(ctx, f.tenant, budget)
			if err == nil {
				break
			}
			switch {
			case run == 1000:
				t.Fatalf("PurgeTenant still unfinished after %d runs: %v", run, err)
			case errors.Is(err, profiles.ErrPurgeUnfinished):
				unfinished++
			case errors.Is(err, context.DeadlineExceeded):
				budget *= 2
			default:
				t.Fatalf("PurgeTenant run %d: %v", run, err)
			}
		}
		t.Logf("%d runs unfinished, last budget %s", unfinished, budget)
		for i := range 10 {
			if _, err := f.svc.Lookup(ctx, f.tenant, profiles.Identifier{Type: profiles.IDUserID, Value: fmt.Sprint("u", i)}); !errors.Is(err, profiles.ErrProfileNotFound) {
				t.Errorf("lookup of u%d after the purge: %v, want ErrProfileNotFound", i, err)
			}
		}
		if n, err := f.svc.PurgeTenant(ctx, f.tenant, 0); err != nil || n != 0 {
			t.Errorf("PurgeTenant after the last run: %d, %v; want 0", n, err)
		}
	})
}
