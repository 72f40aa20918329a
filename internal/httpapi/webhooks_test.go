package httpapi_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// hookReceiver is an endpoint that answers 204 and passes on each
// webhook-id it receives.
func hookReceiver(t *testing.T) (string, <-chan string) {
	got := make(chan string, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		got <- r.Header.Get("webhook-id")
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/hook", got
}

func TestWebhookRoutes(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		id := e.activeTenant("hooks-co")
		other := e.activeTenant("other-co")
		base := "/v1/tenants/" + id + "/webhooks"
		write := e.tenantToken(id, "webhooks:write")
		read := e.tenantToken(id, "webhooks:read")
		url, got := hookReceiver(t)

		// Create: 201, Location, ETag and the secret, this once.
		body := map[string]any{"url": url, "event_types": []string{"profile.created", "segment.entered"}, "traits": []string{"email"}}
		created := e.do("POST", base, write, body, "Idempotency-Key", "hook-1").want(t, 201)
		wid := created.str("id")
		if !strings.HasPrefix(created.str("secret"), "whsec_") || created.header.Get("Location") != base+"/"+wid ||
			created.header.Get("ETag") != `"v1"` || created.str("tenant_id") != id {
			t.Fatalf("create: %s %v", created.raw, created.header)
		}
		// A replay answers the endpoint without its secret.
		replay := e.do("POST", base, write, body, "Idempotency-Key", "hook-1").want(t, 201)
		if replay.str("id") != wid || replay.body["secret"] != nil || replay.header.Get("Cairn-Secret-Redacted") != "secret" {
			t.Errorf("replay: %s %v", replay.raw, replay.header)
		}
		// No read shows it.
		one := e.do("GET", base+"/"+wid, read, nil).want(t, 200)
		list := e.do("GET", base, read, nil).want(t, 200)
		for _, r := range []resp{one, list} {
			if strings.Contains(string(r.raw), "whsec_") || strings.Contains(string(r.raw), `"secret"`) {
				t.Errorf("a read shows the secret: %s", r.raw)
			}
		}
		if items := list.body["items"].([]any); len(items) != 1 {
			t.Errorf("list: %s", list.raw)
		}

		// Bad input names its field; a refused URL is "url".
		for _, tc := range []struct {
			body  map[string]any
			field string
		}{
			{map[string]any{"url": "http://169.254.169.254/latest", "event_types": []string{"profile.created"}}, "url"},
			{map[string]any{"url": url, "event_types": []string{"tenant.deleted"}}, "event_types/0"},
		} {
			r := e.do("POST", base, write, tc.body).want(t, 400)
			if !strings.Contains(string(r.raw), `"field":"`+tc.field+`"`) {
				t.Errorf("%v: %s, want a 400 naming %s", tc.body, r.raw, tc.field)
			}
		}

		// PATCH with If-Match.
		e.do("PATCH", base+"/"+wid, write, map[string]any{"description": "x"}, "If-Match", `"v9"`).want(t, 412)
		patched := e.do("PATCH", base+"/"+wid, write, map[string]any{"description": "CRM"}, "If-Match", `"v1"`).want(t, 200)
		if patched.str("description") != "CRM" || patched.header.Get("ETag") != `"v2"` {
			t.Errorf("patch: %s %v", patched.raw, patched.header)
		}

		// Rotate: a new secret, once; the old one signs until the grace ends.
		rotated := e.do("POST", base+"/"+wid+"/rotate-secret?grace_seconds=3600", write, nil).want(t, 200)
		if s := rotated.str("secret"); !strings.HasPrefix(s, "whsec_") || s == created.str("secret") || rotated.str("previous_secret_expires_at") == "" {
			t.Errorf("rotate: %s", rotated.raw)
		}

		// Test goes through the dispatcher to the receiver.
		test := e.do("POST", base+"/"+wid+"/test", write, nil).want(t, 202)
		if test.header.Get("Location") != base+"/"+wid+"/deliveries" {
			t.Errorf("test: Location %q", test.header.Get("Location"))
		}
		e.follow(t, test, read)
		select {
		case hid := <-got:
			if hid != test.str("event_id") {
				t.Errorf("received webhook-id %s, want %s", hid, test.str("event_id"))
			}
		case <-time.After(20 * time.Second):
			t.Fatal("the test event never arrived")
		}
		var deliveries resp
		for deadline := time.Now().Add(20 * time.Second); ; {
			deliveries = e.do("GET", base+"/"+wid+"/deliveries?status=delivered", read, nil).want(t, 200)
			if len(deliveries.body["items"].([]any)) == 1 || time.Now().After(deadline) {
				break
			}
		}
		items := deliveries.body["items"].([]any)
		if len(items) != 1 {
			t.Fatalf("delivered: %s", deliveries.raw)
		}
		d := items[0].(map[string]any)
		if d["status"] != "delivered" || d["event_type"] != "webhook.test" || d["response_status"] != float64(204) || d["webhook_id"] != wid {
			t.Errorf("delivery: %v", d)
		}
		// Redeliver sends the same webhook-id again.
		e.follow(t, e.do("POST", base+"/"+wid+"/deliveries/"+d["id"].(string)+"/redeliver", write, nil).want(t, 202), read)
		select {
		case hid := <-got:
			if hid != d["event_id"] {
				t.Errorf("redelivered webhook-id %s, want %s", hid, d["event_id"])
			}
		case <-time.After(20 * time.Second):
			t.Fatal("the redelivery never arrived")
		}
		rec := e.do("POST", base+"/"+wid+"/recover", write, map[string]any{"since": "2020-01-01T00:00:00Z"}).want(t, 202)
		if rec.body["recovered"] != float64(0) || rec.header.Get("Location") != base+"/"+wid+"/deliveries" {
			t.Errorf("recover: %s", rec.raw)
		}

		// Another tenant's webhook is not found, through its own path too.
		otherToken := e.tenantToken(other, "webhooks:read", "webhooks:write")
		e.do("GET", "/v1/tenants/"+other+"/webhooks/"+wid, otherToken, nil).want(t, 404)
		e.do("DELETE", "/v1/tenants/"+other+"/webhooks/"+wid, e.admin, nil).want(t, 404)
		e.do("GET", "/v1/webhooks/"+wid, e.admin, nil).want(t, 404)

		// Delete with a stale ETag fails; then it goes.
		e.do("DELETE", base+"/"+wid, write, nil, "If-Match", `"v1"`).want(t, 412)
		e.do("DELETE", base+"/"+wid, write, nil).want(t, 204)
		e.do("GET", base+"/"+wid, read, nil).want(t, 404)
	})
}

// TestFleetWebhooks: the fleet's endpoints are the admin's, for fleet
// event types only.
func TestFleetWebhooks(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		id := e.activeTenant("fleet-co")
		url, _ := hookReceiver(t)
		tok := e.tenantToken(id, "webhooks:read", "webhooks:write")
		e.do("GET", "/v1/webhooks", tok, nil).want(t, 403)
		e.do("POST", "/v1/webhooks", tok, map[string]any{"url": url, "event_types": []string{"tenant.deleted"}}).want(t, 403)
		e.do("POST", "/v1/webhooks", e.admin, map[string]any{"url": url, "event_types": []string{"segment.entered"}}).want(t, 400)
		created := e.do("POST", "/v1/webhooks", e.admin, map[string]any{"url": url, "event_types": []string{"tenant.deleted", "webhook.disabled"}}).want(t, 201)
		wid := created.str("id")
		if created.header.Get("Location") != "/v1/webhooks/"+wid || created.body["tenant_id"] != nil || created.str("secret") == "" {
			t.Errorf("create: %s %v", created.raw, created.header)
		}
		e.do("GET", "/v1/webhooks/"+wid, e.admin, nil).want(t, 200)
		e.do("GET", "/v1/tenants/"+id+"/webhooks/"+wid, e.admin, nil).want(t, 404)
		e.follow(t, e.do("POST", "/v1/webhooks/"+wid+"/test", e.admin, nil).want(t, 202), e.admin)
		e.do("DELETE", "/v1/webhooks/"+wid, e.admin, nil).want(t, 204)
	})
}
