package httpapi_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-cdp/cairn/internal/idempotency"
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
		deadline := time.Now().Add(waitLimit)
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

// TestIdempotencyKeepsNoSecret: a source's write key is shown once. The
// response of creating a source with an Idempotency-Key is remembered
// without it: no file of the data directory (the SQLite databases and their
// -wal files) and no remembered response holds a write key, and a replay
// answers the source with write_key null and Cairn-Secret-Redacted naming
// it. Rotating takes no Idempotency-Key (a replay could not show the new
// key either), so one sent with it is ignored and nothing is remembered.
func TestIdempotencyKeepsNoSecret(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		id := e.activeTenant("secret-co")
		base := "/v1/tenants/" + id + "/sources"
		body := map[string]any{"name": "web"}
		first := e.do("POST", base, e.admin, body, "Idempotency-Key", "src-1").want(t, 201)
		src := first.str("id")
		rot := e.do("POST", base+"/"+src+"/rotate", e.admin, nil, "Idempotency-Key", "rot-1").want(t, 200)
		keys := []string{first.str("write_key"), rot.str("write_key")}
		if keys[0] == "" || keys[1] == "" || keys[0] == keys[1] {
			t.Fatalf("write keys %q", keys)
		}

		r := e.do("POST", base, e.admin, body, "Idempotency-Key", "src-1").want(t, 201)
		if r.header.Get("Idempotent-Replayed") != "true" || r.header.Get("Cairn-Secret-Redacted") != "write_key" {
			t.Errorf("replay headers %v", r.header)
		}
		if v, ok := r.body["write_key"]; !ok || v != nil || r.str("id") != src || r.str("key_hint") != first.str("key_hint") {
			t.Errorf("replay shows %s", r.raw)
		}
		// The rotated key works; the first was rotated away.
		e.segment("/v1/identify", keys[1], segEvent("identify", "m1", map[string]any{"userId": "u1"})).want(t, 200)

		for _, k := range []string{"src-1"} {
			rec, claimed, err := e.db.IdempotencyClaim(context.Background(), idempotency.Record{Principal: "admin", Key: k, RequestHash: "probe"}, time.Now())
			if err != nil || claimed || !rec.Completed {
				t.Fatalf("record %s: %+v %v %v", k, rec, claimed, err)
			}
			for _, key := range keys {
				if bytes.Contains(rec.Body, []byte(key)) || bytes.Contains(rec.Header, []byte(key)) {
					t.Errorf("record %s holds a write key: %s", k, rec.Body)
				}
			}
		}
		err := filepath.WalkDir(e.dataDir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, key := range keys {
				if bytes.Contains(b, []byte(key)) {
					t.Errorf("%s holds a write key", path)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
