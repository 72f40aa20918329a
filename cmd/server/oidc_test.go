package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/cairn-cdp/cairn/internal/portal"
)

// oidcDouble is an OIDC issuer for tests that signs everyone in at once:
// /authorize checks the request (client, redirect URI, an S256 code
// challenge, a state) and redirects straight back with a code; /token
// accepts a code once, for the same client and redirect URI and a
// code_verifier whose S256 is the challenge, and answers with an access
// token and an ID token signed by its own RSA key, carrying the admin
// scope, and a refresh token; a refresh token is good for one
// refresh_token grant, which answers a new access token and a new refresh
// token (rotation, as public clients need); /jwks publishes the key and
// /.well-known/openid-configuration the endpoints. The token endpoint
// answers CORS, as a real issuer's does for public clients.
type oidcDouble struct {
	*httptest.Server
	key      *rsa.PrivateKey
	clientID string
	audience string

	mu          sync.Mutex
	redirectURI string
	codes       map[string]oidcGrant
	refresh     map[string]bool // refresh tokens not yet used
	refreshed   int             // refresh_token grants answered
	accessTTL   time.Duration   // lifetime of the access tokens it issues
}

type oidcGrant struct{ challenge, nonce, redirectURI string }

const oidcKID = "double-1"

func newOIDCDouble(t *testing.T) *oidcDouble {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	d := &oidcDouble{key: key, clientID: "cairn-portal", audience: "cairn-portal", codes: map[string]oidcGrant{},
		refresh: map[string]bool{}, accessTTL: time.Hour}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /authorize", d.authorize)
	mux.HandleFunc("POST /token", d.token)
	mux.HandleFunc("OPTIONS /token", d.token)
	mux.HandleFunc("GET /jwks", d.jwks)
	mux.HandleFunc("GET /.well-known/openid-configuration", d.discovery)
	d.Server = httptest.NewServer(mux)
	t.Cleanup(d.Close)
	return d
}

// serverEnv is the configuration of a Cairn server that trusts the double
// and offers it to the portal.
func (d *oidcDouble) serverEnv(vars map[string]string) map[string]string {
	for k, v := range map[string]string{
		"CAIRN_OIDC_ISSUER": d.URL, "CAIRN_OIDC_JWKS_URL": d.URL + "/jwks", "CAIRN_OIDC_AUDIENCE": d.audience,
		"CAIRN_OIDC_CLIENT_ID": d.clientID, "CAIRN_OIDC_AUTHORIZATION_URL": d.URL + "/authorize",
		"CAIRN_OIDC_TOKEN_URL": d.URL + "/token", "CAIRN_OIDC_SCOPES": "openid admin",
	} {
		vars[k] = v
	}
	return vars
}

// allow sets the one redirect URI the client may use (the portal's
// callback, known once the server listens).
func (d *oidcDouble) allow(redirectURI string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.redirectURI = redirectURI
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return b64(sum[:])
}

func (d *oidcDouble) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case q.Get("response_type") != "code":
		http.Error(w, "response_type must be code", http.StatusBadRequest)
	case q.Get("client_id") != d.clientID:
		http.Error(w, "unknown client_id", http.StatusBadRequest)
	case q.Get("redirect_uri") == "" || q.Get("redirect_uri") != d.redirectURI:
		http.Error(w, "redirect_uri is not registered", http.StatusBadRequest)
	case q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43:
		http.Error(w, "an S256 code_challenge is required", http.StatusBadRequest)
	case q.Get("state") == "":
		http.Error(w, "state is required", http.StatusBadRequest)
	default:
		code := b64(randomBytes(16))
		d.codes[code] = oidcGrant{challenge: q.Get("code_challenge"), nonce: q.Get("nonce"), redirectURI: q.Get("redirect_uri")}
		back := url.Values{"code": {code}, "state": {q.Get("state")}}
		http.Redirect(w, r, q.Get("redirect_uri")+"?"+back.Encode(), http.StatusFound)
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func (d *oidcDouble) token(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	if r.Method == http.MethodOptions {
		w.Header().Set("Access-Control-Allow-Methods", "POST")
		w.Header().Set("Access-Control-Allow-Headers", "Content-Type")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	refuse := func(code, why string) {
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": why})
	}
	if err := r.ParseForm(); err != nil {
		refuse("invalid_request", "want a form")
		return
	}
	f := r.PostForm
	switch f.Get("grant_type") {
	case "authorization_code":
		d.mu.Lock()
		g, ok := d.codes[f.Get("code")]
		delete(d.codes, f.Get("code")) // a code is tried once, right or wrong
		d.mu.Unlock()
		switch {
		case !ok:
			refuse("invalid_grant", "unknown or used code")
		case f.Get("client_id") != d.clientID:
			refuse("invalid_client", "unknown client_id")
		case f.Get("redirect_uri") != g.redirectURI:
			refuse("invalid_grant", "redirect_uri differs from the authorization request's")
		case f.Get("code_verifier") == "" || s256(f.Get("code_verifier")) != g.challenge:
			refuse("invalid_grant", "code_verifier does not match the code_challenge")
		default:
			d.issue(w, g.nonce, false)
		}
	case "refresh_token":
		d.mu.Lock()
		ok := d.refresh[f.Get("refresh_token")]
		delete(d.refresh, f.Get("refresh_token")) // rotated: good once
		d.mu.Unlock()
		switch {
		case f.Get("client_id") != d.clientID:
			refuse("invalid_client", "unknown client_id")
		case !ok:
			refuse("invalid_grant", "unknown or used refresh token")
		default:
			d.issue(w, "", true)
		}
	default:
		refuse("unsupported_grant_type", "want authorization_code or refresh_token")
	}
}

// issue answers a token request: an access token with the admin scope, an
// ID token (on sign-in) and a new refresh token.
func (d *oidcDouble) issue(w http.ResponseWriter, nonce string, refreshed bool) {
	now := time.Now()
	d.mu.Lock()
	ttl := d.accessTTL
	refresh := b64(randomBytes(24))
	d.refresh[refresh] = true
	if refreshed {
		d.refreshed++
	}
	d.mu.Unlock()
	sign := func(extra jwt.MapClaims) string {
		claims := jwt.MapClaims{"iss": d.URL, "sub": "ada", "aud": d.audience, "iat": now.Unix(), "exp": now.Add(ttl).Unix()}
		for k, v := range extra {
			claims[k] = v
		}
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
		tok.Header["kid"] = oidcKID
		s, err := tok.SignedString(d.key)
		if err != nil {
			panic(err)
		}
		return s
	}
	answer := map[string]any{
		"token_type": "Bearer", "expires_in": int(ttl / time.Second),
		"access_token": sign(jwt.MapClaims{"scope": "openid admin"}), "refresh_token": refresh,
	}
	if !refreshed {
		answer["id_token"] = sign(jwt.MapClaims{"nonce": nonce})
	}
	_ = json.NewEncoder(w).Encode(answer)
}

// refreshes is how many refresh_token grants the double has answered.
func (d *oidcDouble) refreshes() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.refreshed
}

// setAccessTTL sets the lifetime of the access tokens issued from now on.
func (d *oidcDouble) setAccessTTL(ttl time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.accessTTL = ttl
}

func (d *oidcDouble) discovery(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"issuer": d.URL, "jwks_uri": d.URL + "/jwks", "authorization_endpoint": d.URL + "/authorize",
		"token_endpoint": d.URL + "/token", "response_types_supported": []string{"code"},
		"grant_types_supported":            []string{"authorization_code", "refresh_token"},
		"code_challenge_methods_supported": []string{"S256"},
	})
}

func (d *oidcDouble) jwks(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "kid": oidcKID, "use": "sig", "alg": "RS256",
		"n": b64(d.key.N.Bytes()), "e": b64(big.NewInt(int64(d.key.E)).Bytes()),
	}}})
}

// TestPortalOIDC: the portal's configuration offers the issuer, the CSP
// lets the portal reach its token endpoint and nothing else, the double
// checks PKCE for real (a wrong code_verifier is refused) and the token it
// issues is an admin token to the server.
func TestPortalOIDC(t *testing.T) {
	d := newOIDCDouble(t)
	base, _ := startServer(t, context.Background(), d.serverEnv(map[string]string{"CAIRN_DATA_DIR": t.TempDir()}))
	callback := base + "/sign-in/callback"
	d.allow(callback)

	res, body := get(t, base+"/v1/portal/config", "application/json")
	var cfg struct {
		OIDC map[string]any `json:"oidc"`
	}
	if err := json.Unmarshal([]byte(body), &cfg); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/portal/config: %d %s", res.StatusCode, body)
	}
	want := map[string]any{"issuer": d.URL, "authorization_endpoint": d.URL + "/authorize", "token_endpoint": d.URL + "/token",
		"client_id": "cairn-portal", "scopes": []any{"openid", "admin"}, "token": "access_token"}
	if fmt.Sprint(cfg.OIDC) != fmt.Sprint(want) {
		t.Errorf("oidc = %v, want %v", cfg.OIDC, want)
	}
	res, _ = get(t, base+"/sign-in", "text/html")
	if got, want := res.Header.Get("Content-Security-Policy"), portal.Policy(d.URL); got != want || !strings.Contains(got, "connect-src 'self' "+d.URL+";") {
		t.Errorf("CSP %q, want %q", got, want)
	}

	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	authorize := func(method, challenge string) (int, url.Values) {
		t.Helper()
		q := url.Values{"response_type": {"code"}, "client_id": {"cairn-portal"}, "redirect_uri": {callback},
			"scope": {"openid admin"}, "state": {"st-1"}, "nonce": {"n-1"}, "code_challenge": {challenge}, "code_challenge_method": {method}}
		res, err := noFollow.Get(d.URL + "/authorize?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		loc, _ := url.Parse(res.Header.Get("Location"))
		if res.StatusCode == http.StatusFound && !strings.HasPrefix(loc.String(), callback+"?") {
			t.Fatalf("authorize redirected to %s", loc)
		}
		return res.StatusCode, loc.Query()
	}
	exchange := func(code, verifier string) (int, map[string]any) {
		t.Helper()
		res, err := http.PostForm(d.URL+"/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"redirect_uri": {callback}, "client_id": {"cairn-portal"}, "code_verifier": {verifier}})
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]any
		b, _ := io.ReadAll(res.Body)
		_ = json.Unmarshal(b, &out)
		return res.StatusCode, out
	}

	verifier := b64(randomBytes(32))
	if status, _ := authorize("plain", verifier); status != http.StatusBadRequest {
		t.Errorf("a plain code challenge: %d, want 400", status)
	}
	status, back := authorize("S256", s256(verifier))
	if status != http.StatusFound || back.Get("state") != "st-1" || back.Get("code") == "" {
		t.Fatalf("authorize: %d %v", status, back)
	}
	if status, out := exchange(back.Get("code"), b64(randomBytes(32))); status != http.StatusBadRequest || out["error"] != "invalid_grant" {
		t.Errorf("a wrong code_verifier: %d %v, want 400 invalid_grant", status, out)
	}
	_, back = authorize("S256", s256(verifier))
	status, out := exchange(back.Get("code"), verifier)
	token, _ := out["access_token"].(string)
	if status != http.StatusOK || token == "" {
		t.Fatalf("exchange: %d %v", status, out)
	}
	if status, _ := exchange(back.Get("code"), verifier); status != http.StatusBadRequest {
		t.Errorf("a code used twice: %d, want 400", status)
	}
	if status, body := call(t, "GET", base+"/v1/tenants", token, ""); status != http.StatusOK {
		t.Errorf("GET /v1/tenants with the issuer's token: %d %v", status, body)
	}
}
