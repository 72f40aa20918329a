package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// mint signs an admin access token as the double's token endpoint would.
func (d *oidcDouble) mint(t *testing.T) string {
	t.Helper()
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"iss": d.URL, "sub": "ada", "aud": d.audience,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "scope": "openid admin"})
	tok.Header["kid"] = oidcKID
	s, err := tok.SignedString(d.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestOIDCDiscovery: a server given only the issuer (and the portal's
// client ID) reads the JWKS URL and the portal's endpoints from the
// issuer's discovery document, verifies the issuer's tokens with the
// discovered keys, and keeps an endpoint set explicitly.
func TestOIDCDiscovery(t *testing.T) {
	d := newOIDCDouble(t)
	vars := map[string]string{"CAIRN_DATA_DIR": t.TempDir(), "CAIRN_OIDC_ISSUER": d.URL, "CAIRN_OIDC_AUDIENCE": d.audience,
		"CAIRN_OIDC_CLIENT_ID": d.clientID, "CAIRN_OIDC_TOKEN_URL": d.URL + "/token?kept=1"}
	base, _ := startServer(t, context.Background(), vars)

	res, body := get(t, base+"/v1/portal/config", "application/json")
	var cfg struct {
		OIDC map[string]any `json:"oidc"`
	}
	if err := json.Unmarshal([]byte(body), &cfg); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/portal/config: %d %s", res.StatusCode, body)
	}
	if got, want := cfg.OIDC["authorization_endpoint"], d.URL+"/authorize"; got != want {
		t.Errorf("authorization_endpoint = %v, want %v (discovered)", got, want)
	}
	if got, want := cfg.OIDC["token_endpoint"], d.URL+"/token?kept=1"; got != want {
		t.Errorf("token_endpoint = %v, want %v (set explicitly, kept)", got, want)
	}
	if status, body := call(t, "GET", base+"/v1/tenants", d.mint(t), ""); status != http.StatusOK {
		t.Errorf("GET /v1/tenants with the issuer's token, keys from the discovered jwks_uri: %d %v", status, body)
	}
}

// TestDiscoverOIDCRefusals: discovery refuses a document for another
// issuer, a missing or non-JSON document, an unusable endpoint and an
// unreachable issuer, each saying so; with every endpoint set it makes no
// request at all.
func TestDiscoverOIDCRefusals(t *testing.T) {
	var requests atomic.Int32
	var answer func(w http.ResponseWriter, issuer string)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if r.URL.Path != discoveryPath {
			http.NotFound(w, r)
			return
		}
		answer(w, "http://"+r.Host)
	}))
	defer srv.Close()
	doc := func(fields map[string]string) func(http.ResponseWriter, string) {
		return func(w http.ResponseWriter, issuer string) {
			m := map[string]string{"issuer": issuer, "jwks_uri": issuer + "/jwks",
				"authorization_endpoint": issuer + "/authorize", "token_endpoint": issuer + "/token"}
			for k, v := range fields {
				m[k] = v
			}
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			_ = json.NewEncoder(w).Encode(m)
		}
	}
	for _, tc := range []struct {
		name   string
		answer func(http.ResponseWriter, string)
		issuer string
		want   string
	}{
		{"another issuer", doc(map[string]string{"issuer": "https://elsewhere.example"}), srv.URL, `names issuer "https://elsewhere.example"`},
		{"no document", func(w http.ResponseWriter, _ string) { http.Error(w, "gone", http.StatusNotFound) }, srv.URL, "404"},
		{"not JSON", func(w http.ResponseWriter, _ string) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, "<html>")
		}, srv.URL, "not application/json"},
		{"relative jwks_uri", doc(map[string]string{"jwks_uri": "/jwks"}), srv.URL, "jwks_uri"},
		{"no token endpoint", doc(map[string]string{"token_endpoint": ""}), srv.URL, "token_endpoint"},
		{"unreachable", doc(nil), "http://127.0.0.1:1", "set oidc-jwks-url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			answer = tc.answer
			c := &config{OIDCIssuer: tc.issuer, OIDCClientID: "portal"}
			err := discoverOIDC(context.Background(), c, srv.Client())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("discoverOIDC: %v, want an error containing %q", err, tc.want)
			}
		})
	}

	answer = doc(nil)
	c := &config{OIDCIssuer: srv.URL}
	if err := discoverOIDC(context.Background(), c, srv.Client()); err != nil || c.OIDCJWKSURL != srv.URL+"/jwks" || c.OIDCAuthURL != "" {
		t.Fatalf("without a portal client: %v, jwks %q, authorization %q; want only the JWKS URL filled", err, c.OIDCJWKSURL, c.OIDCAuthURL)
	}
	before := requests.Load()
	c = &config{OIDCIssuer: srv.URL, OIDCJWKSURL: "https://keys.example/jwks", OIDCClientID: "portal",
		OIDCAuthURL: "https://idp.example/a", OIDCTokenURL: "https://idp.example/t"}
	if err := discoverOIDC(context.Background(), c, srv.Client()); err != nil || requests.Load() != before {
		t.Errorf("every endpoint set: %v after %d requests, want no error and no request", err, requests.Load()-before)
	}
	if fmt.Sprint(c.OIDCJWKSURL, c.OIDCAuthURL, c.OIDCTokenURL) != fmt.Sprint("https://keys.example/jwks", "https://idp.example/a", "https://idp.example/t") {
		t.Errorf("explicit endpoints changed: %+v", c)
	}
}
