package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/auth"
	"github.com/cairn-cdp/cairn/internal/portal"
	"github.com/cairn-cdp/cairn/web"
)

func get(t *testing.T, url, accept string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// TestPortalServing: the embedded portal is served at / with its security
// headers, client-side routes get index.html, and API paths keep their
// answers, problem+json 404s included.
func TestPortalServing(t *testing.T) {
	url, _ := startServer(t, context.Background(), map[string]string{"CAIRN_DATA_DIR": t.TempDir()})
	const html = "text/html,application/xhtml+xml,*/*;q=0.8"
	index, err := fs.ReadFile(web.Dist(), "index.html")
	if err != nil {
		t.Fatal(err)
	}
	var asset string
	_ = fs.WalkDir(web.Dist(), "assets", func(p string, d fs.DirEntry, _ error) error {
		if strings.HasSuffix(p, ".js") {
			asset = p
		}
		return nil
	})
	if asset == "" {
		t.Fatal("the embedded build has no script under assets/")
	}

	secured := func(what string, res *http.Response) {
		t.Helper()
		for k, want := range map[string]string{
			"Content-Security-Policy": portal.CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
		} {
			if got := res.Header.Get(k); got != want {
				t.Errorf("%s: %s = %q, want %q", what, k, got, want)
			}
		}
	}
	for _, path := range []string{"/", "/tenants", "/tenants/ten_x/profiles", "/sign-in"} {
		res, body := get(t, url+path, html)
		if res.StatusCode != http.StatusOK || body != string(index) || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
			t.Errorf("GET %s: %d %s, want index.html", path, res.StatusCode, res.Header.Get("Content-Type"))
		}
		secured(path, res)
	}
	res, body := get(t, url+"/"+asset, "*/*")
	if res.StatusCode != http.StatusOK || !strings.Contains(res.Header.Get("Content-Type"), "javascript") || len(body) == 0 {
		t.Errorf("GET /%s: %d %s", asset, res.StatusCode, res.Header.Get("Content-Type"))
	}
	secured(asset, res)
	if !strings.Contains(res.Header.Get("Cache-Control"), "immutable") {
		t.Errorf("a hashed asset is not cached as immutable: %q", res.Header.Get("Cache-Control"))
	}

	// API paths stay the API's, even for a browser.
	for _, tc := range []struct{ path, accept string }{
		{"/v1/nothing-here", html}, {"/v1/tenants/ten_x/nothing", html}, {"/nothing-here.json", "application/json"}, {"/.well-known/nothing", html},
	} {
		res, body := get(t, url+tc.path, tc.accept)
		if res.StatusCode != http.StatusNotFound || res.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("GET %s (Accept %s): %d %s %s, want a problem+json 404", tc.path, tc.accept, res.StatusCode, res.Header.Get("Content-Type"), body)
		}
	}
	res, body = get(t, url+"/healthz", html)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `"ok"`) {
		t.Errorf("GET /healthz: %d %s", res.StatusCode, body)
	}
	// Without an OIDC client the portal offers no issuer, and needs no token to learn it.
	res, body = get(t, url+"/v1/portal/config", "application/json")
	if res.StatusCode != http.StatusOK || strings.TrimSpace(body) != "{}" {
		t.Errorf("GET /v1/portal/config: %d %s, want 200 {}", res.StatusCode, body)
	}
	res, _ = get(t, url+"/v1/tenants", html)
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /v1/tenants without a token: %d", res.StatusCode)
	}
	// A POST to a portal path is the API's 404 or 405, never the page.
	res2, err := http.Post(url+"/tenants", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	res2.Body.Close()
	if res2.StatusCode < 400 || res2.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("POST /tenants: %d %s", res2.StatusCode, res2.Header.Get("Content-Type"))
	}
}

// printLoginLink runs `server login-link` and returns the link it printed.
func printLoginLink(t *testing.T, dir, url string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"login-link", "--data-dir", dir, "--url", url}, env(nil), nil, &out, &errOut); err != nil {
		t.Fatalf("login-link: %v\n%s", err, errOut.String())
	}
	link := strings.TrimSpace(out.String())
	if !strings.HasPrefix(link, url+"/sign-in#code=") {
		t.Fatalf("login-link printed %q, want %s/sign-in#code=...", link, url)
	}
	return link
}

// loginLinkCode runs `server login-link` and returns the link's code.
func loginLinkCode(t *testing.T, dir, url string) string {
	t.Helper()
	return strings.TrimPrefix(printLoginLink(t, dir, url), url+"/sign-in#code=")
}

// expiredAdminToken mints, with the server's key, an admin token that
// expired an hour ago (past any leeway).
func expiredAdminToken(t *testing.T, dataDir string) string {
	t.Helper()
	cfg, err := parseConfig("server", cmdServe, []string{"--data-dir", dataDir}, env(nil), io.Discard, io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	key := serverKeys(t, map[string]string{"CAIRN_DATA_DIR": dataDir}).Signing
	past := func() time.Time { return time.Now().Add(-2 * time.Hour) }
	a, err := auth.New(t.Context(), key, auth.Config{Issuer: cfg.Issuer, Audience: cfg.Audience, Now: past})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := a.MintAdmin(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestPortalBrowser walks the admin portal in headless Chromium against
// the real server on the embedded default, trusting a test OIDC issuer
// (oidcDouble) and offering it at sign-in (e2e/portal.mjs: one browser for
// every scenario, axe-core on every page). Screenshots of the pages go to
// test-artifacts/portal/ at the repository's root, or CAIRN_TEST_ARTIFACTS.
// It runs alongside the package's other parallel tests: most of its time
// is the browser's waits, which the AWS tests' waits can share.
func TestPortalBrowser(t *testing.T) {
	t.Parallel()
	chromium := clientTool(t, "CAIRN_TEST_CHROMIUM")
	dir := nodeDir(t)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "axe-core")); err != nil {
		missing(t, "e2e/node_modules lacks axe-core (npm ci): %v", err)
	}
	artifacts := os.Getenv("CAIRN_TEST_ARTIFACTS")
	if artifacts == "" {
		artifacts = filepath.Join("..", "..", "test-artifacts")
	}
	artifacts, _ = filepath.Abs(filepath.Join(artifacts, "portal"))

	data := t.TempDir()
	// The local engine builds no stack in failingRegion while a file
	// stands where its buckets go: the stack rolls back, as a failed
	// CloudFormation stack does (e2e/portal.mjs removes the file before
	// it retries the stack).
	const failingRegion = "ap-southeast-2"
	obstacle := filepath.Join(data, "zones", failingRegion, "buckets")
	if err := os.MkdirAll(filepath.Dir(obstacle), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(obstacle, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	idp := newOIDCDouble(t)
	hook := newWebhookReceiver(t)
	// Webhooks may go to the receiver: http, on loopback.
	url, _ := startServer(t, context.Background(), idp.serverEnv(map[string]string{
		"CAIRN_DATA_DIR": data, "CAIRN_STACK_POLL_INTERVAL": "50ms",
		"CAIRN_WEBHOOK_ALLOW_HTTP": "true", "CAIRN_WEBHOOK_ALLOW_CIDRS": "127.0.0.0/8",
	}))
	idp.allow(url + "/sign-in/callback")
	// Short-lived issuer tokens: the portal renews them with its refresh
	// token within seconds of signing in (e2e/portal.mjs).
	idp.setAccessTTL(4 * time.Second)
	admin, err := runToken(t, "--admin", "--data-dir", data)
	if err != nil {
		t.Fatal(err)
	}
	expired := expiredAdminToken(t, data)

	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "portal.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"CAIRN_CHROMIUM="+chromium,
		"CAIRN_URL="+url,
		"CAIRN_ADMIN_TOKEN="+admin,
		"CAIRN_EXPIRED_TOKEN="+expired,
		"CAIRN_LOGIN_LINK="+printLoginLink(t, data, url),
		"CAIRN_ARTIFACTS="+artifacts,
		"CAIRN_OIDC_AUTHORIZE="+idp.URL+"/authorize",
		"CAIRN_OIDC_CLIENT="+idp.clientID,
		"CAIRN_WEBHOOK_RECEIVER="+hook.URL+"/cairn",
		"CAIRN_FAILING_REGION="+failingRegion,
		"CAIRN_FAILING_OBSTACLE="+obstacle,
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var report struct {
		Steps       []string          `json:"steps"`
		Failed      *string           `json:"failed"`
		Violations  []json.RawMessage `json:"violations"`
		CSP         []string          `json:"csp"`
		PageErrors  []string          `json:"pageErrors"`
		Screenshots []string          `json:"screenshots"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &report); err != nil {
		t.Fatalf("node portal.mjs: %v; no report (%v):\n%s\nstderr:\n%s", runErr, err, stdout.String(), stderr.String())
	}
	if runErr != nil || report.Failed != nil || len(report.Violations) > 0 || len(report.CSP) > 0 || len(report.PageErrors) > 0 {
		t.Fatalf("node portal.mjs: %v\nreport:\n%s\nstderr:\n%s", runErr, stdout.String(), stderr.String())
	}
	// The portal's "Send test" and its redelivery reached the receiver, signed.
	if got := hook.seen("webhook.test"); got < 2 {
		t.Errorf("the receiver got %d signed webhook.test deliveries, want the test and its redelivery; it got %v", got, hook.types())
	}
	t.Logf("%d steps passed; screenshots in %s", len(report.Steps), artifacts)
}

// webhookReceiver is an http endpoint on loopback that answers every
// delivery 200 and remembers the event types of the signed ones; a GET
// answers them as a JSON array.
type webhookReceiver struct {
	*httptest.Server
	mu  sync.Mutex
	got []string
}

func newWebhookReceiver(t *testing.T) *webhookReceiver {
	t.Helper()
	r := &webhookReceiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodGet { // what came so far, for the browser test to wait on
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(r.types())
			return
		}
		var body struct {
			Type string `json:"type"`
		}
		_ = json.NewDecoder(io.LimitReader(req.Body, 1<<20)).Decode(&body)
		if req.Header.Get("webhook-id") != "" && strings.HasPrefix(req.Header.Get("webhook-signature"), "v1,") {
			r.mu.Lock()
			r.got = append(r.got, body.Type)
			r.mu.Unlock()
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"received":true}`)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *webhookReceiver) types() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

func (r *webhookReceiver) seen(typ string) int {
	n := 0
	for _, g := range r.types() {
		if g == typ {
			n++
		}
	}
	return n
}

// TestPortalSignIn: a sign-in link's code buys an admin token once; a
// second use, a wrong code and the code as a bearer token are refused.
// (Expiry is proven in internal/auth's TestSignInCode.)
func TestPortalSignIn(t *testing.T) {
	dir := t.TempDir()
	url, _ := startServer(t, context.Background(), map[string]string{"CAIRN_DATA_DIR": dir})
	code := loginLinkCode(t, dir, url)

	if status, p := call(t, "GET", url+"/v1/tenants", code, ""); status != http.StatusUnauthorized {
		t.Errorf("the code as a bearer token: %d %v", status, p)
	}
	status, tok := call(t, "POST", url+"/v1/sign-in", "", `{"code":"`+code+`"}`)
	token, _ := tok["token"].(string)
	if status != http.StatusOK || token == "" || tok["token_type"] != "Bearer" {
		t.Fatalf("sign-in: %d %v", status, tok)
	}
	if status, p := call(t, "GET", url+"/v1/tenants", token, ""); status != http.StatusOK {
		t.Errorf("the signed-in token: %d %v", status, p)
	}
	for name, body := range map[string]string{
		"a second use": `{"code":"` + code + `"}`,
		"a wrong code": `{"code":"not-a-code"}`,
		"another key":  `{"code":"` + loginLinkCode(t, t.TempDir(), url) + `"}`,
	} {
		res, err := http.Post(url+"/v1/sign-in", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized || res.Header.Get("Content-Type") != "application/problem+json" ||
			!strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: %d %v, want a 401 problem with WWW-Authenticate", name, res.StatusCode, res.Header)
		}
	}
}

// TestPortalStartupLink: the embedded default prints a sign-in link at
// start, and its code signs in.
func TestPortalStartupLink(t *testing.T) {
	cfg, err := parseConfig("server", cmdServe, []string{"--addr", "127.0.0.1:0", "--data-dir", t.TempDir()}, env(nil), io.Discard, io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var out bytes.Buffer
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, &out, io.Discard, hooks{ready: ready}) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("server stopped: %v", err)
	}
	// serve wrote its banner before it signalled ready.
	_, link, ok := strings.Cut(out.String(), "Sign in to the admin portal")
	prefix := "http://" + addr + "/sign-in#code="
	i := strings.Index(link, prefix)
	if !ok || i < 0 {
		t.Fatalf("no sign-in link at start:\n%s", out.String())
	}
	code := strings.TrimSpace(link[i+len(prefix):])
	if status, p := call(t, "POST", "http://"+addr+"/v1/sign-in", "", `{"code":"`+code+`"}`); status != http.StatusOK {
		t.Fatalf("the startup link's code: %d %v", status, p)
	}
}
