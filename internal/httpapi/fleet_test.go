package httpapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/webhooks"
)

// signedHook is one request a receiver got.
type signedHook struct {
	header http.Header
	body   []byte
}

// fleetHook is a delivered fleet event, decoded.
type fleetHook struct {
	ID        string
	Type      string `json:"type"`
	Timestamp string `json:"timestamp"`
	Data      struct {
		TenantID  string   `json:"tenant_id"`
		Slug      string   `json:"slug"`
		Name      string   `json:"name"`
		Status    string   `json:"status"`
		Tier      string   `json:"tier"`
		Regions   []string `json:"regions"`
		Region    string   `json:"region"`
		StackName string   `json:"stack_name"`
		Reason    string   `json:"reason"`
		At        string   `json:"at"`
	} `json:"data"`
}

// fleetEndpoint registers a fleet endpoint for every fleet event type at a
// receiver that answers 204, and returns the events it receives, each
// checked against the endpoint's signature.
func fleetEndpoint(e *env) <-chan fleetHook {
	t := e.t
	reqs := make(chan signedHook, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		reqs <- signedHook{r.Header.Clone(), body}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	created := e.do("POST", "/v1/webhooks", e.admin, map[string]any{"url": srv.URL + "/fleet", "event_types": []string{
		webhooks.TenantProvisioned, webhooks.TenantFailed, webhooks.TenantSuspended, webhooks.TenantDeleted, webhooks.StackFailed,
	}}).want(t, 201)
	secret := created.str("secret")
	out := make(chan fleetHook, 100)
	go func() {
		for {
			select {
			case r := <-reqs:
				var h fleetHook
				if err := webhooks.Verify(secret, r.header, r.body, time.Now(), 5*time.Minute); err != nil {
					t.Errorf("fleet delivery not signed: %v: %s", err, r.body)
				}
				if err := json.Unmarshal(r.body, &h); err != nil {
					t.Errorf("fleet delivery: %v: %s", err, r.body)
				}
				h.ID = r.header.Get(webhooks.HeaderID)
				out <- h
			case <-t.Context().Done():
				return
			}
		}
	}()
	return out
}

// receiveFleet waits for n events about tenant (or, for "", about no
// tenant), and returns them; events about other tenants are skipped.
func receiveFleet(t *testing.T, got <-chan fleetHook, tenant string, n int) []fleetHook {
	t.Helper()
	var out []fleetHook
	deadline := time.After(waitLimit)
	for len(out) < n {
		select {
		case h := <-got:
			if h.Data.TenantID == tenant {
				out = append(out, h)
			}
		case <-deadline:
			t.Fatalf("fleet events about %q: got %+v, waited for %d", tenant, out, n)
		}
	}
	return out
}

func hookTypes(hs []fleetHook) string {
	var types []string
	for _, h := range hs {
		types = append(types, h.Type)
	}
	return strings.Join(types, ",")
}

// TestFleetEvents follows a tenant from onboarding to deletion, and one
// whose stack fails, through the ISV's fleet webhook: each change arrives
// once, in order, signed.
func TestFleetEvents(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		got := fleetEndpoint(e)

		id := e.activeTenant("fleet-life")
		e.do("POST", "/v1/tenants/"+id+"/suspend", e.admin, nil).want(t, 200)
		e.do("POST", "/v1/tenants/"+id+"/resume", e.admin, nil).want(t, 200) // not announced
		e.do("DELETE", "/v1/tenants/"+id, e.admin, nil).want(t, 202)
		e.waitStatus(id, "deleted")
		hs := receiveFleet(t, got, id, 3)
		if types := hookTypes(hs); types != "tenant.provisioned,tenant.suspended,tenant.deleted" {
			t.Fatalf("received %s", types)
		}
		ids := map[string]bool{}
		for _, h := range hs {
			d := h.Data
			if d.Slug != "fleet-life" || d.Name != "Tenant fleet-life" || d.Tier != "pooled" || len(d.Regions) != 1 || d.Regions[0] != "eu-west-1" {
				t.Errorf("%s: data %+v", h.Type, d)
			}
			status := map[string]string{"tenant.provisioned": "active", "tenant.suspended": "suspended", "tenant.deleted": "deleted"}
			if d.Status != status[h.Type] {
				t.Errorf("%s: status %q", h.Type, d.Status)
			}
			if _, err := time.Parse(time.RFC3339, d.At); err != nil {
				t.Errorf("%s: at %q: %v", h.Type, d.At, err)
			}
			if !strings.HasPrefix(h.ID, "evt_") || ids[h.ID] {
				t.Errorf("%s: webhook-id %q", h.Type, h.ID)
			}
			ids[h.ID] = true
		}

		// A dedicated tenant whose stack rolls back (flakyEngine): the
		// stack's failure, then the tenant's.
		failing := e.onboard("fail-fleet", map[string]any{"tier": "dedicated"}).want(t, 202).str("id")
		e.waitStatus(failing, "failed")
		hs = receiveFleet(t, got, failing, 2)
		if types := hookTypes(hs); types != "stack.failed,tenant.failed" {
			t.Fatalf("received %s", types)
		}
		stack, tenant := hs[0].Data, hs[1].Data
		if stack.Region != "eu-west-1" || stack.StackName == "" || !strings.Contains(stack.Reason, "ROLLBACK_COMPLETE") || stack.Slug != "fail-fleet" {
			t.Errorf("stack.failed data %+v", stack)
		}
		if tenant.Status != "failed" || !strings.Contains(tenant.Reason, "ROLLBACK_COMPLETE") || tenant.Tier != "dedicated" {
			t.Errorf("tenant.failed data %+v", tenant)
		}

		// Each change went out once: the delivery log holds one delivery
		// per event, and nothing more arrived.
		list := e.do("GET", "/v1/webhooks", e.admin, nil).want(t, 200)
		wid := list.body["items"].([]any)[0].(map[string]any)["id"].(string)
		deliveries := e.do("GET", "/v1/webhooks/"+wid+"/deliveries", e.admin, nil).want(t, 200)
		if n := len(deliveries.body["items"].([]any)); n != 5 {
			t.Errorf("%d deliveries, want 5: %s", n, deliveries.raw)
		}
		select {
		case h := <-got:
			t.Errorf("an extra delivery: %+v", h)
		default:
		}
	})
}
