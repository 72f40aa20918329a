package httpapi_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/cairn-cdp/cairn/internal/drift"
	"github.com/cairn-cdp/cairn/internal/provisioner"
)

// TestStackDrift runs a drift round over a dedicated tenant whose raw zone
// was deleted outside Cairn and a pooled one: the tenant's stacks show its
// stack DRIFTED with the bucket DELETED, the pools show the pool in sync.
func TestStackDrift(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		ded := e.onboard("drift-ded", map[string]any{"tier": "dedicated"}).want(t, 202).str("id")
		e.waitStatus(ded, "active")
		e.activeTenant("drift-pooled")
		stack := provisioner.DedicatedStackName(ded)
		if err := os.RemoveAll(filepath.Join(e.dataDir, "zones", "eu-west-1", "buckets", stack+"-raw")); err != nil {
			t.Fatal(err)
		}
		before := e.do("GET", "/v1/tenants/"+ded+"/stacks", e.admin, nil).want(t, 200)
		if _, ok := before.body["items"].([]any)[0].(map[string]any)["drift_status"]; ok {
			t.Fatalf("drift before any detection: %s", before.raw)
		}
		d, err := drift.New(drift.Config{Store: e.db, Engine: &provisioner.LocalEngine{Root: filepath.Join(e.dataDir, "zones")}})
		if err != nil {
			t.Fatal(err)
		}
		for done := false; !done; {
			if done, err = d.RunOnce(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		st := e.do("GET", "/v1/tenants/"+ded+"/stacks", e.admin, nil).want(t, 200).body["items"].([]any)[0].(map[string]any)
		res, _ := st["drifted_resources"].([]any)
		if st["drift_status"] != "DRIFTED" || len(res) != 1 || res[0].(map[string]any)["logical_id"] != "RawBucket" ||
			res[0].(map[string]any)["status"] != "DELETED" || st["drift_checked_at"] == nil {
			t.Fatalf("drifted stack: %v", st)
		}
		pool := e.do("GET", "/v1/pools", e.admin, nil).want(t, 200).body["items"].([]any)[0].(map[string]any)
		if pool["drift_status"] != "IN_SYNC" || len(pool["drifted_resources"].([]any)) != 0 {
			t.Fatalf("pool: %v", pool)
		}
	})
}
