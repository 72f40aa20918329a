package portal_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/fstest"

	"github.com/cairn-cdp/cairn/internal/portal"
)

func TestHandler(t *testing.T) {
	site := fstest.MapFS{
		"index.html":       {Data: []byte("<!doctype html><title>portal</title>")},
		"assets/app-1.js":  {Data: []byte("console.log(1)")},
		"assets/app-1.css": {Data: []byte("body{}")},
	}
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusTeapot)
	})
	h, err := portal.Handler(site, api)
	if err != nil {
		t.Fatal(err)
	}
	const html = "text/html,*/*;q=0.8"
	tests := []struct {
		name, method, path, accept string
		wantStatus                 int
		wantType                   string
		portal                     bool
	}{
		{"root", "GET", "/", html, 200, "text/html; charset=utf-8", true},
		{"client route", "GET", "/tenants/ten_x", html, 200, "text/html; charset=utf-8", true},
		{"HEAD of a client route", "HEAD", "/audit", html, 200, "text/html; charset=utf-8", true},
		{"asset", "GET", "/assets/app-1.js", "*/*", 200, "text/javascript; charset=utf-8", true},
		{"stylesheet", "GET", "/assets/app-1.css", "text/css", 200, "text/css; charset=utf-8", true},
		{"unknown path, no HTML wanted", "GET", "/nothing.json", "application/json", 418, "application/problem+json", false},
		{"unknown asset", "GET", "/assets/gone.js", "*/*", 418, "application/problem+json", false},
		{"API path from a browser", "GET", "/v1/tenants", html, 418, "application/problem+json", false},
		{"bare /v1", "GET", "/v1", html, 418, "application/problem+json", false},
		{"well-known", "GET", "/.well-known/jwks.json", html, 418, "application/problem+json", false},
		{"health", "GET", "/healthz", html, 418, "application/problem+json", false},
		{"metrics", "GET", "/metrics", html, 418, "application/problem+json", false},
		{"POST to a client route", "POST", "/tenants", html, 418, "application/problem+json", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, nil)
			req.Header.Set("Accept", tt.accept)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus || rec.Header().Get("Content-Type") != tt.wantType {
				t.Fatalf("%s %s: %d %q, want %d %q", tt.method, tt.path, rec.Code, rec.Header().Get("Content-Type"), tt.wantStatus, tt.wantType)
			}
			if got := rec.Header().Get("Content-Security-Policy"); (got == portal.CSP) != tt.portal {
				t.Errorf("CSP %q on a portal=%v response", got, tt.portal)
			}
		})
	}
}

func TestHandlerNeedsIndex(t *testing.T) {
	if _, err := portal.Handler(fstest.MapFS{}, http.NotFoundHandler()); err == nil {
		t.Fatal("a site without index.html was accepted")
	}
}

// TestConnectOrigins: a token endpoint's origin joins connect-src, and
// nothing else of the policy changes.
func TestConnectOrigins(t *testing.T) {
	origin, err := portal.Origin("https://idp.example:8443/oauth2/token?x=1")
	if err != nil || origin != "https://idp.example:8443" {
		t.Fatalf("Origin: %q, %v", origin, err)
	}
	for _, bad := range []string{"", "/oauth2/token", "ftp://idp.example/t", "https://"} {
		if _, err := portal.Origin(bad); err == nil {
			t.Errorf("Origin(%q) accepted", bad)
		}
	}
	h, err := portal.Handler(fstest.MapFS{"index.html": {Data: []byte("<!doctype html>")}}, http.NotFoundHandler(), origin)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/sign-in", nil)
	req.Header.Set("Accept", "text/html")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	want := "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self' https://idp.example:8443; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
	if got := rec.Header().Get("Content-Security-Policy"); got != want {
		t.Errorf("CSP %q, want %q", got, want)
	}
}
