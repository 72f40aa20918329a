package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/provisioner"
	"github.com/cairn-cdp/cairn/internal/provisioner/enginetest"
	"github.com/cairn-cdp/cairn/templates"
)

// TestRolloutSurvivesSIGKILL rolls a new dedicated template version out to
// twenty stacks on the embedded default (local engine, SQLite), SIGKILLs
// the server mid-wave, with stacks updated and others not started, and
// starts it again on the same data directory: the rollout completes, and
// every stack executed one change set (the local engine's count).
func TestRolloutSurvivesSIGKILL(t *testing.T) {
	t.Parallel()
	const stacks = 20
	bin := buildServer(t)
	dir, tdir := t.TempDir(), t.TempDir()
	next := enginetest.WithMarker(templates.Dedicated(), "Restart")
	if err := os.WriteFile(filepath.Join(tdir, templates.DedicatedFile), []byte(next.Body), 0o600); err != nil {
		t.Fatal(err)
	}
	admin, err := runToken(t, "--admin", "--data-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		"CAIRN_DATA_DIR": dir, "CAIRN_ADDR": "127.0.0.1:0", "CAIRN_JOB_POLL_INTERVAL": "20ms",
		"CAIRN_STACK_POLL_INTERVAL": "50ms", "CAIRN_ROLLOUT_TEMPLATES": tdir, "CAIRN_LOG_LEVEL": "warn",
	}
	p := startServerProcess(t, "first", bin, vars)
	ids := make([]string, stacks)
	for i := range ids {
		body := fmt.Sprintf(`{"name":"Roll %d","slug":"roll-kill-%02d","tier":"dedicated","home_region":"eu-west-1"}`, i, i)
		ids[i] = jstr(mustAPI(t, "POST", p.URL+"/v1/tenants", admin, body, http.StatusAccepted), "id")
	}
	awaitTenants(t, p.URL, admin, ids, "active", 2*time.Minute)
	ro := mustAPI(t, "POST", p.URL+"/v1/rollouts", admin, `{"waves":[25,100],"max_in_flight":2}`, http.StatusCreated)
	id := jstr(ro, "id")

	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(2 * time.Minute); ; <-tick.C {
		counts, _ := mustAPI(t, "GET", p.URL+"/v1/rollouts/"+id, admin, "", http.StatusOK)["counts"].(map[string]any)
		if succeeded, _ := counts["succeeded"].(float64); succeeded >= 3 {
			if pending, _ := counts["pending"].(float64); pending == 0 {
				t.Fatalf("the rollout ran to its end before the kill: %v", counts)
			}
			t.Logf("killed with %v", counts)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 2 minutes the rollout is %v", counts)
		}
	}
	p.Kill(t)
	p = startServerProcess(t, "restarted", bin, vars)
	var done map[string]any
	for deadline := time.Now().Add(3 * time.Minute); ; <-tick.C {
		done = mustAPI(t, "GET", p.URL+"/v1/rollouts/"+id, admin, "", http.StatusOK)
		if jstr(done, "state") == "completed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 3 minutes the restarted server's rollout is %s %v", jstr(done, "state"), done["counts"])
		}
	}
	if n := jnum(done["counts"].(map[string]any), "succeeded"); n != stacks {
		t.Fatalf("completed rollout: %v", done["counts"])
	}
	for _, tid := range ids {
		name := provisioner.DedicatedStackName(tid)
		b, err := os.ReadFile(filepath.Join(dir, "zones", "eu-west-1", "stacks", name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		var st struct {
			Executions      int    `json:"executions"`
			TemplateVersion string `json:"template_version"`
		}
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatal(err)
		}
		if st.Executions != 1 || st.TemplateVersion != next.Version {
			t.Errorf("%s: %d change sets executed, at version %s; want 1 and %s", name, st.Executions, st.TemplateVersion, next.Version)
		}
	}
}
