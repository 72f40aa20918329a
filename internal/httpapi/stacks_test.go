package httpapi_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cairn-cdp/cairn/internal/provisioner"
)

func stacksOf(t *testing.T, e *env, id string) map[string]map[string]any {
	t.Helper()
	r := e.do("GET", "/v1/tenants/"+id+"/stacks", e.admin, nil).want(t, 200)
	out := map[string]map[string]any{}
	for _, it := range r.body["items"].([]any) {
		m := it.(map[string]any)
		out[m["region"].(string)] = m
	}
	return out
}

func outputsOf(s map[string]any) map[string]any { return s["outputs"].(map[string]any) }

func TestDedicatedStacksPerRegion(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		id := e.onboard("silo-co", map[string]any{"tier": "dedicated", "regions": []string{"us-east-1"}}).want(t, 202).str("id")
		e.waitStatus(id, "active")
		stacks := stacksOf(t, e, id)
		if len(stacks) != 2 {
			t.Fatalf("%d stacks, want one per Region: %v", len(stacks), stacks)
		}
		for region, s := range stacks {
			if s["status"] != "ready" || s["kind"] != "dedicated" || s["stack_status"] != "CREATE_COMPLETE" || s["template_version"] == "" {
				t.Fatalf("%s: %v", region, s)
			}
			if want := "cairn-" + strings.ReplaceAll(id, "_", "-"); s["stack_name"] != want {
				t.Fatalf("stack name %v, want %s", s["stack_name"], want)
			}
			out := outputsOf(s)
			for _, k := range []string{"raw_bucket", "clean_bucket", "curated_bucket", "stream_arn", "profile_table", "glue_database", "data_access_role_arn", "kms_key_arn"} {
				if out[k] == "" || out[k] == nil {
					t.Fatalf("%s: output %s missing: %v", region, k, out)
				}
			}
			if out["glue_database"] != "cairn_"+id {
				t.Fatalf("glue database %v", out["glue_database"])
			}
			ev := e.do("GET", "/v1/tenants/"+id+"/stacks/"+region+"/events?limit=2", e.admin, nil).want(t, 200)
			items := ev.body["items"].([]any)
			if len(items) != 2 || ev.body["next_cursor"] == nil {
				t.Fatalf("events page: %s", ev.raw)
			}
			if first := items[0].(map[string]any); first["status"] != "CREATE_COMPLETE" || first["logical_id"] != s["stack_name"] {
				t.Fatalf("newest event is not the stack's completion: %v", first)
			}
			// Page to the end: no event twice.
			seen := map[string]bool{}
			cursor := ""
			for {
				path := "/v1/tenants/" + id + "/stacks/" + region + "/events?limit=2"
				if cursor != "" {
					path += "&cursor=" + cursor
				}
				r := e.do("GET", path, e.admin, nil).want(t, 200)
				for _, it := range r.body["items"].([]any) {
					evID := it.(map[string]any)["id"].(string)
					if seen[evID] {
						t.Fatalf("event %s repeated", evID)
					}
					seen[evID] = true
				}
				next, _ := r.body["next_cursor"].(string)
				if next == "" {
					break
				}
				cursor = next
			}
			if len(seen) < 5 {
				t.Fatalf("%d events recorded", len(seen))
			}
		}
		e.do("GET", "/v1/tenants/"+id+"/stacks/ap-south-1/events", e.admin, nil).want(t, 404)
		if pools := e.do("GET", "/v1/pools", e.admin, nil).want(t, 200).body["items"].([]any); len(pools) != 0 {
			t.Fatalf("a dedicated tenant created pools: %v", pools)
		}
		// A tenant token reads its own stacks.
		e.do("GET", "/v1/tenants/"+id+"/stacks", e.tenantToken(id), nil).want(t, 200)
	})
}

// snakeCase is the form of every field name and output key of the API.
var snakeCase = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

func TestPooledTenantsShareOnePoolPerRegion(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		var ids []string
		for _, slug := range []string{"pool-a", "pool-b", "pool-c"} {
			ids = append(ids, e.onboard(slug, map[string]any{"regions": []string{"eu-central-1"}}).want(t, 202).str("id"))
		}
		for _, id := range ids {
			e.waitStatus(id, "active")
		}
		pools := e.do("GET", "/v1/pools", e.admin, nil).want(t, 200).body["items"].([]any)
		if len(pools) != 2 {
			t.Fatalf("%d pools, want one per Region: %v", len(pools), pools)
		}
		for _, p := range pools {
			p := p.(map[string]any)
			if p["status"] != "ready" || p["tenant_count"].(float64) != 3 || p["stack_name"] != "cairn-pool" {
				t.Fatalf("pool %v", p)
			}
		}
		s := stacksOf(t, e, ids[0])["eu-west-1"]
		out := outputsOf(s)
		if s["kind"] != "pooled" || s["stack_name"] != "cairn-pool" || out["s3_prefix"] != "tenants/"+ids[0]+"/" ||
			out["key_prefix"] != "TENANT#"+ids[0]+"#" || out["glue_database"] != "cairn_pool_"+ids[0] || out["raw_bucket"] == nil {
			t.Fatalf("pooled slice: %v", s)
		}
		// A pool's outputs are named as a stack's are (snake_case), and
		// its slices' buckets are its own.
		for _, p := range pools {
			p := p.(map[string]any)
			pout := p["outputs"].(map[string]any)
			for k := range pout {
				if !snakeCase.MatchString(k) {
					t.Errorf("pool in %v: output %q is not snake_case: %v", p["region"], k, pout)
				}
			}
			if p["region"] == "eu-west-1" && (pout["raw_bucket"] == nil || pout["raw_bucket"] != out["raw_bucket"] || pout["profile_table"] == nil) {
				t.Errorf("pool outputs %v, want the raw bucket %v of its slices and a profile_table", pout, out["raw_bucket"])
			}
		}
		// Offboarding one pooled tenant keeps the pool for the others.
		e.do("DELETE", "/v1/tenants/"+ids[0]+"?purge=true", e.admin, nil).want(t, 202)
		e.waitStatus(ids[0], "deleted")
		for _, p := range e.do("GET", "/v1/pools", e.admin, nil).body["items"].([]any) {
			if p := p.(map[string]any); p["status"] != "ready" || p["tenant_count"].(float64) != 2 {
				t.Fatalf("pool after offboarding one tenant: %v", p)
			}
		}
		if s := stacksOf(t, e, ids[0])["eu-west-1"]; s["status"] != "deleted" {
			t.Fatalf("slice after offboarding: %v", s)
		}
	})
}

func TestAddRegionProvisionsOnlyTheNewOne(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		id := e.activeTenant("grow-co")
		before := stacksOf(t, e, id)["eu-west-1"]
		e.do("PATCH", "/v1/tenants/"+id, e.admin, map[string]any{"regions": []string{"eu-west-1", "sa-east-1"}}).want(t, 200)
		for {
			s := stacksOf(t, e, id)
			if s["sa-east-1"] != nil && s["sa-east-1"]["status"] == "ready" {
				if after := s["eu-west-1"]; after["updated_at"] != before["updated_at"] || after["attempt"] != before["attempt"] {
					t.Fatalf("the existing Region was touched: %v -> %v", before, after)
				}
				break
			}
			<-e.jobDone
		}
		if got := e.do("GET", "/v1/tenants/"+id, e.admin, nil).str("status"); got != "active" {
			t.Fatalf("status %s while adding a Region", got)
		}
		// Regions can only be added.
		e.do("PATCH", "/v1/tenants/"+id, e.admin, map[string]any{"regions": []string{"eu-west-1"}}).want(t, 409)
	})
}

func TestStackRetry(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		id := e.onboard("fail-stack", map[string]any{"tier": "dedicated"}).want(t, 202).str("id")
		f := e.waitStatus(id, "failed")
		if !strings.Contains(f.str("status_reason"), "ROLLBACK_COMPLETE") {
			t.Fatalf("reason %q", f.str("status_reason"))
		}
		s := stacksOf(t, e, id)["eu-west-1"]
		if s["status"] != "failed" || !strings.Contains(s["last_error"].(string), "ProfileTable") {
			t.Fatalf("failed stack: %v", s)
		}
		r := e.do("POST", "/v1/tenants/"+id+"/stacks/eu-west-1/retry", e.admin, nil).want(t, 202)
		if r.str("status") != "replacing" {
			t.Fatalf("retry: %s", r.raw)
		}
		e.follow(t, r, e.admin)
		e.waitStatus(id, "active")
		s = stacksOf(t, e, id)["eu-west-1"]
		if s["status"] != "ready" || s["attempt"].(float64) != 2 {
			t.Fatalf("after retry: %v", s)
		}
		e.do("POST", "/v1/tenants/"+id+"/stacks/eu-west-1/retry", e.admin, nil).want(t, 409)
		e.do("POST", "/v1/tenants/"+id+"/stacks/us-west-1/retry", e.admin, nil).want(t, 404)
	})
}

func TestOffboardRetainsOrPurgesData(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		keep := e.onboard("keep-data", map[string]any{"tier": "dedicated"}).want(t, 202).str("id")
		purge := e.onboard("purge-data", map[string]any{"tier": "dedicated"}).want(t, 202).str("id")
		e.waitStatus(keep, "active")
		e.waitStatus(purge, "active")
		raw := map[string]string{}
		for _, id := range []string{keep, purge} {
			raw[id] = outputsOf(stacksOf(t, e, id)["eu-west-1"])["raw_bucket"].(string)
		}
		e.do("DELETE", "/v1/tenants/"+keep, e.admin, nil).want(t, 202)
		e.do("DELETE", "/v1/tenants/"+purge+"?purge=true", e.admin, nil).want(t, 202)
		e.waitStatus(keep, "deleted")
		e.waitStatus(purge, "deleted")
		for _, id := range []string{keep, purge} {
			if s := stacksOf(t, e, id)["eu-west-1"]; s["status"] != "deleted" {
				t.Fatalf("%s stack after offboarding: %v", id, s)
			}
		}
		exists := func(bucket string) bool {
			_, err := os.Stat(filepath.Join(e.dataDir, "zones", "eu-west-1", "buckets", bucket))
			return err == nil
		}
		if !exists(raw[keep]) {
			t.Fatal("retained raw zone was deleted without purge")
		}
		if exists(raw[purge]) {
			t.Fatal("purged raw zone still exists")
		}
	})
}

// TestStackIDOutlivesItsStack offboards a dedicated and a pooled tenant and
// reads their stacks' IDs afterwards: a deleted stack's events are found
// by its ID, not its name, so the ID is kept.
func TestStackIDOutlivesItsStack(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		dedicated := e.onboard("kept-id", map[string]any{"tier": "dedicated"}).want(t, 202).str("id")
		pooled := e.onboard("kept-pool-id", map[string]any{"tier": "pooled"}).want(t, 202).str("id")
		e.waitStatus(dedicated, "active")
		e.waitStatus(pooled, "active")
		id := stacksOf(t, e, dedicated)["eu-west-1"]["stack_id"]
		if s, _ := id.(string); !strings.HasPrefix(s, "local:stack/"+provisioner.DedicatedStackName(dedicated)+"/") {
			t.Fatalf("dedicated stack_id %v, want the local engine's ID of its stack", id)
		}
		pools := e.do("GET", "/v1/pools", e.admin, nil).want(t, 200).body["items"].([]any)
		poolID := pools[0].(map[string]any)["stack_id"]
		if s, _ := poolID.(string); !strings.HasPrefix(s, "local:stack/"+provisioner.PoolStackName()+"/") {
			t.Fatalf("pool stack_id %v, want the local engine's ID of the pool stack", poolID)
		}
		if got := stacksOf(t, e, pooled)["eu-west-1"]["stack_id"]; got != poolID {
			t.Errorf("pooled tenant's stack_id %v, want its pool's %v", got, poolID)
		}
		// The pooled tenant's own role is there until it is offboarded.
		role := filepath.Join(e.dataDir, "zones", "iam", "roles", provisioner.TenantRoleName(pooled, "eu-west-1")+".json")
		if _, err := os.Stat(role); err != nil {
			t.Errorf("pooled tenant's role: %v", err)
		}

		e.do("DELETE", "/v1/tenants/"+dedicated, e.admin, nil).want(t, 202)
		e.do("DELETE", "/v1/tenants/"+pooled, e.admin, nil).want(t, 202)
		e.waitStatus(dedicated, "deleted")
		e.waitStatus(pooled, "deleted")
		if s := stacksOf(t, e, dedicated)["eu-west-1"]; s["status"] != "deleted" || s["stack_id"] != id {
			t.Errorf("deleted stack: status %v, stack_id %v; want deleted, %v", s["status"], s["stack_id"], id)
		}
		if s := stacksOf(t, e, pooled)["eu-west-1"]; s["status"] != "deleted" || s["stack_id"] != poolID {
			t.Errorf("deleted slice: status %v, stack_id %v; want deleted, %v", s["status"], s["stack_id"], poolID)
		}
		if _, err := os.Stat(role); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("pooled tenant's role after offboarding: %v", err)
		}
		events := e.do("GET", "/v1/tenants/"+dedicated+"/stacks/eu-west-1/events", e.admin, nil).want(t, 200).body["items"].([]any)
		if len(events) == 0 {
			t.Error("no events of the deleted stack")
		}
	})
}
