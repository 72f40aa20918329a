package httpapi

import (
	"fmt"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/cairn-cdp/cairn/internal/placement"
)

// TestNotReadyProblems: the one placement.ErrNotReady is a catalog not
// ready on the grant routes and a tenant not ready on the others.
func TestNotReadyProblems(t *testing.T) {
	r := httptest.NewRequest("POST", "/v1/tenants/ten_x/grants", nil)
	notReady := fmt.Errorf("catalog in eu-west-1: %w", placement.ErrNotReady)
	for name, tc := range map[string]struct {
		err  error
		want string
	}{
		"grant route": {catalogNotReady(notReady), "catalog-not-ready"},
		"other route": {notReady, "tenant-not-ready"},
	} {
		p := toProblem(r, slog.New(slog.DiscardHandler), tc.err)
		if p.status != 409 || p.kind != tc.want {
			t.Errorf("%s: %d %s, want 409 %s", name, p.status, p.kind, tc.want)
		}
	}
}
