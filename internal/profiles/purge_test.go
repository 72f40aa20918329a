package profiles_test

import (
	"errors"
	"testing"

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
		n, err := f.svc.PurgeTenant(ctx, f.tenant)
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
		if n, err := f.svc.PurgeTenant(ctx, f.tenant); err != nil || n != 0 {
			t.Errorf("second PurgeTenant: %d, %v; want 0", n, err)
		}
		if _, err := f.svc.PurgeTenant(ctx, "ten_a"); !errors.Is(err, profiles.ErrInvalidInput) {
			t.Errorf("PurgeTenant of a malformed ID: %v, want ErrInvalidInput", err)
		}
	})
}
