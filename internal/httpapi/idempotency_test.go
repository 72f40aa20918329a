package httpapi_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-cdp/cairn/internal/testdb"
)

func TestIdempotencyReplay(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		body := map[string]any{"name": "Once", "slug": "once", "tier": "dedicated", "home_region": "us-west-2"}
		first := e.do("POST", "/v1/tenants", e.admin, body, "Idempotency-Key", "k-1").want(t, 202)
		again := e.do("POST", "/v1/tenants", e.admin, body, "Idempotency-Key", "k-1").want(t, 202)
		if string(first.raw) != string(again.raw) || again.header.Get("Location") != first.header.Get("Location") {
			t.Fatalf("replay differs:\n%s\n%s", first.raw, again.raw)
		}
		if again.header.Get("Idempotent-Replayed") != "true" {
			t.Fatal("replay not marked")
		}
		// Same key, different body: 422 and nothing created.
		other := map[string]any{"name": "Twice", "slug": "twice", "tier": "dedicated", "home_region": "us-west-2"}
		e.do("POST", "/v1/tenants", e.admin, other, "Idempotency-Key", "k-1").want(t, 422)
		if n := len(e.do("GET", "/v1/tenants", e.admin, nil).body["items"].([]any)); n != 1 {
			t.Fatalf("%d tenants, want 1", n)
		}
		// Keys belong to the principal: another admin token (same subject)
		// replays, and a failed request (409) is replayed as a 409.
		e.do("POST", "/v1/tenants", e.admin, body, "Idempotency-Key", "k-2").want(t, 409)
		e.do("POST", "/v1/tenants", e.admin, body, "Idempotency-Key", "k-2").want(t, 409)
	})
}

// TestIdempotencyInFlightRace holds the tenants table locked so the first
// request is stuck inside its transaction, then races a second request with
// the same key against it: the second must get 409, and once the first
// finishes, a retry replays its response.
//
// It runs on Postgres only (SQLite serialises writers, so the claim itself
// would wait behind the lock) and not in parallel: Go holds parallel tests
// back until the sequential ones are done, so the lock wait it watches for
// is not starved by the rest of the suite.
func TestIdempotencyInFlightRace(t *testing.T) {
	{
		e := startEnv(t, testdb.Postgres(t), t.TempDir())
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, e.dbURL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "LOCK TABLE tenants IN EXCLUSIVE MODE"); err != nil {
			t.Fatal(err)
		}
		body := map[string]any{"name": "Race", "slug": "race", "tier": "pooled", "home_region": "eu-west-1"}
		var wg sync.WaitGroup
		var first resp
		wg.Add(1)
		go func() {
			defer wg.Done()
			first = e.do("POST", "/v1/tenants", e.admin, body, "Idempotency-Key", "race-key")
		}()
		// Wait until the first request is blocked on the lock.
		deadline := time.Now().Add(30 * time.Second)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			var waiting int
			err := tx.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`).Scan(&waiting)
			if err != nil {
				t.Fatal(err)
			}
			if waiting > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("first request never reached the lock")
			}
			<-tick.C
		}
		second := e.do("POST", "/v1/tenants", e.admin, body, "Idempotency-Key", "race-key")
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		second.want(t, 409)
		first.want(t, 202)
		third := e.do("POST", "/v1/tenants", e.admin, body, "Idempotency-Key", "race-key").want(t, 202)
		if string(third.raw) != string(first.raw) {
			t.Fatalf("retry after the race did not replay: %s vs %s", third.raw, first.raw)
		}
		if n := len(e.do("GET", "/v1/tenants", e.admin, nil).body["items"].([]any)); n != 1 {
			t.Fatalf("%d tenants, want 1", n)
		}
	}
}
