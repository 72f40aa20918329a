package httpapi_test

import (
	"fmt"
	"testing"
)

// TestIngestionReadsPlacementOnce counts the database reads of where the
// tenant's data lives during ingestion requests: one per request, however
// many events and raw-zone or profile-store calls it makes.
func TestIngestionReadsPlacementOnce(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		id := e.activeTenant("placed-co")
		key := e.source(id, "web")
		tok := e.tenantToken(id, "events:write")
		batch := func(n int) []any {
			evs := make([]any, 20)
			for i := range evs {
				evs[i] = segEvent("identify", fmt.Sprintf("m-%d-%d", n, i), map[string]any{"userId": fmt.Sprintf("u-%d", i%7), "traits": map[string]any{"plan": "pro"}})
			}
			return evs
		}
		for n, send := range []func() resp{
			func() resp { return e.segment("/v1/batch", key, map[string]any{"batch": batch(1)}) },
			func() resp { return e.do("POST", "/v1/tenants/"+id+"/events", tok, map[string]any{"batch": batch(2)}) },
			func() resp {
				return e.segment("/v1/track", key, segEvent("track", "m-3", map[string]any{"userId": "u-1", "event": "Clicked"}))
			},
		} {
			before := e.placementReads.Load()
			send().want(t, 200)
			if reads := e.placementReads.Load() - before; reads != 1 {
				t.Errorf("ingestion request %d read the tenant's placement %d times, want once", n, reads)
			}
		}
	})
}
