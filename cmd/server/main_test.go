package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/auth"
	"github.com/cairn-cdp/cairn/internal/tenants"
	"github.com/cairn-cdp/cairn/internal/testdb"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// TestMain removes the server binary the tests built, once they end.
func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// runToken runs `server token` with args. On a PostgreSQL database it
// opens the signing keys with testKEK, the key-encryption key that the
// tests' replicas on PostgreSQL share (awsVars); on the embedded default,
// with the data directory's own key file.
func runToken(t testing.TB, args ...string) (string, error) {
	t.Helper()
	vars := map[string]string{}
	if i := slices.Index(args, "--database-url"); i >= 0 && i+1 < len(args) && args[i+1] != "" {
		vars["CAIRN_KEY_ENCRYPTION_KEY"] = testKEK
	}
	var out, errOut bytes.Buffer
	err := run(context.Background(), append([]string{"token"}, args...), env(vars), nil, &out, &errOut)
	return strings.TrimSpace(out.String()), err
}

// serverKeys returns the signing keys in the database that vars name.
func serverKeys(t testing.TB, vars map[string]string) auth.KeySet {
	t.Helper()
	cfg, err := parseConfig("server", cmdServe, nil, env(vars), io.Discard, io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := openStore(t.Context(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	keys, err := signingKeys(t.Context(), cfg, db, log)
	if err != nil {
		t.Fatal(err)
	}
	set, err := keys.SigningKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func verify(t *testing.T, dataDir, token string) auth.Principal {
	t.Helper()
	set := serverKeys(t, map[string]string{"CAIRN_DATA_DIR": dataDir})
	a, err := auth.New(context.Background(), set.Signing, auth.Config{VerifyKeys: set.Verify})
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.Verify(context.Background(), token)
	if err != nil {
		t.Fatalf("minted token does not verify: %v", err)
	}
	return p
}

func TestTokenCommand(t *testing.T) {
	dir := t.TempDir()
	tok, err := runToken(t, "--admin", "--data-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	if p := verify(t, dir, tok); !p.IsAdmin() {
		t.Fatalf("admin token gives %+v", p)
	}
	live, gone := tokenTenants(t, dir)
	tok, err = runToken(t, "--tenant", live, "--scopes", "profiles:read,grants:write", "--ttl", "10m", "--data-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	p := verify(t, dir, tok)
	if p.TenantID != live || !slices.Equal(p.Scopes, []string{"grants:write", "profiles:read"}) && !slices.Equal(p.Scopes, []string{"profiles:read", "grants:write"}) {
		t.Fatalf("tenant token gives %+v", p)
	}
	for _, bad := range []struct {
		args []string
		says string
	}{
		{[]string{"--data-dir", dir}, "exactly one"},
		{[]string{"--admin", "--tenant", "ten_x", "--data-dir", dir}, "exactly one"},
		{[]string{"--tenant", live, "--scopes", "admin", "--data-dir", dir}, "scope"},
		{[]string{"--admin", "--ttl", "9000h", "--data-dir", dir}, "lifetime"},
		{[]string{"--tenant", "ten_aaaaaaaaaaaaaaaaaaaaaaaaaa", "--data-dir", dir}, "no tenant has the ID"},
		{[]string{"--tenant", gone, "--data-dir", dir}, "offboarded"},
	} {
		if tok, err := runToken(t, bad.args...); err == nil || tok != "" || !strings.Contains(err.Error(), bad.says) {
			t.Errorf("token %v: %q, error %v; want an error saying %q", bad.args, tok, err, bad.says)
		}
	}

	// Each token minted is in the audit trail, the refused ones are not.
	cfg, err := parseConfig("server", cmdServe, []string{"--data-dir", dir}, env(nil), io.Discard, io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	db, err := openStore(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	events, err := db.AuditList(context.Background(), audit.ListParams{Action: "token.mint"})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 {
		t.Fatalf("%d token.mint events, want 2 (admin, then tenant): %+v", len(events), events)
	}
	admin, tenant := events[0], events[1]
	if admin.Actor != "cli" || admin.TargetType != "admin" || admin.TenantID != "" || admin.Outcome != audit.OutcomeOK || admin.Detail["expires_at"] == "" {
		t.Errorf("admin token event %+v", admin)
	}
	if tenant.Actor != "cli" || tenant.TargetType != "tenant" || tenant.TargetID != live || tenant.TenantID != live || tenant.Detail["scopes"] != "profiles:read,grants:write" {
		t.Errorf("tenant token event %+v", tenant)
	}
}

// tokenTenants makes, in the data directory's database, a live tenant and
// one that has been offboarded, and returns their IDs.
func tokenTenants(t *testing.T, dir string) (live, gone string) {
	t.Helper()
	ctx := context.Background()
	cfg, err := parseConfig("server", cmdServe, []string{"--data-dir", dir}, env(nil), io.Discard, io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	db, err := openStore(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	svc := tenants.NewService(db, nil)
	ids := make([]string, 2)
	for i, slug := range []string{"live-co", "gone-co"} {
		tn, err := svc.Onboard(ctx, tenants.OnboardParams{Name: slug, Slug: slug, Tier: tenants.TierPooled, HomeRegion: "eu-west-1"})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = tn.ID
	}
	for _, step := range []func(context.Context, string) (tenants.Tenant, error){
		svc.MarkProvisioned, func(ctx context.Context, id string) (tenants.Tenant, error) {
			return svc.Offboard(ctx, audit.Event{}, id, nil, false)
		}, svc.MarkDeleted,
	} {
		if _, err := step(ctx, ids[1]); err != nil {
			t.Fatal(err)
		}
	}
	return ids[0], ids[1]
}

func TestConfigPrecedence(t *testing.T) {
	cfg, err := parseConfig("server", cmdServe, []string{"--addr", "127.0.0.1:9999"}, env(map[string]string{
		"CAIRN_ADDR": "127.0.0.1:1111", "CAIRN_DATA_DIR": "/tmp/cairn-x", "CAIRN_MAX_WORKERS": "3",
	}), io.Discard, io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:9999" || cfg.DataDir != "/tmp/cairn-x" || cfg.MaxWorkers != 3 {
		t.Fatalf("flag should beat env, env should beat default: %+v", cfg)
	}
	if cfg.SigningKeyFile != "" || cfg.KeyEncryptionKeyFile != "" {
		t.Fatalf("signing key file %q, key-encryption key file %q: want none", cfg.SigningKeyFile, cfg.KeyEncryptionKeyFile)
	}
	for _, bad := range []map[string]string{
		{"CAIRN_MAX_WORKERS": "many"},
		{"CAIRN_LOG_LEVEL": "loud"},
		// The portal's client needs the issuer; an endpoint left unset is
		// discovered at start (TestOIDCDiscovery), one that is set must be
		// an absolute URL.
		{"CAIRN_OIDC_CLIENT_ID": "portal", "CAIRN_OIDC_AUTHORIZATION_URL": "https://idp.example/authorize", "CAIRN_OIDC_TOKEN_URL": "https://idp.example/token"},
		{"CAIRN_OIDC_ISSUER": "idp.example"},
		{"CAIRN_OIDC_ISSUER": "https://idp.example", "CAIRN_OIDC_JWKS_URL": "jwks.json"},
		{"CAIRN_OIDC_ISSUER": "https://idp.example", "CAIRN_OIDC_JWKS_URL": "https://idp.example/jwks", "CAIRN_OIDC_CLIENT_ID": "portal", "CAIRN_OIDC_AUTHORIZATION_URL": "https://idp.example/authorize", "CAIRN_OIDC_TOKEN_URL": "/token"},
		{"CAIRN_OIDC_PORTAL_TOKEN": "refresh_token"},
	} {
		if _, err := parseConfig("server", cmdServe, nil, env(bad), io.Discard, io.Discard, nil); err == nil {
			t.Errorf("config %v accepted", bad)
		}
	}
}

// TestReadmeDocumentsEverySetting keeps the README's configuration table
// complete.
func TestReadmeDocumentsEverySetting(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var c config
	for _, s := range c.settings() {
		if !bytes.Contains(readme, []byte("`"+s.env+"`")) || !bytes.Contains(readme, []byte("`--"+s.flag+"`")) {
			t.Errorf("README does not document --%s / %s", s.flag, s.env)
		}
	}
}

// startServer runs the real server until the test ends and returns its URL.
func startServer(t testing.TB, ctx context.Context, vars map[string]string) (string, <-chan error) {
	t.Helper()
	return startServerHooks(t, ctx, vars, hooks{})
}

// startServerHooks is startServer with hooks; h.ready is set here.
func startServerHooks(t testing.TB, ctx context.Context, vars map[string]string, h hooks) (string, <-chan error) {
	t.Helper()
	cfg, err := parseConfig("server", cmdServe, []string{"--addr", "127.0.0.1:0", "--job-poll-interval", "20ms"}, env(vars), io.Discard, io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	done := make(chan error, 1)
	h.ready = ready
	// The server stops when the test ends, if ctx has not stopped it, and
	// the test waits for it: a server still writing to its data directory
	// would make the directory's removal fail.
	ctx, cancel := context.WithCancel(ctx)
	stopped := make(chan struct{})
	go func() {
		done <- serve(ctx, cfg, io.Discard, io.Discard, h)
		close(stopped)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-stopped:
		case <-time.After(time.Minute): // past the shutdown timeout (30s)
			t.Error("server still running a minute after the test ended")
		}
	})
	select {
	case addr := <-ready:
		return "http://" + addr, done
	case err := <-done:
		t.Fatalf("server stopped: %v", err)
	}
	return "", nil
}

func call(t testing.TB, method, url, token, body string) (int, map[string]any) {
	t.Helper()
	status, _, out := callHeader(t, method, url, token, body, nil)
	return status, out
}

// callHeader is call with request headers, answering the response's too.
func callHeader(t testing.TB, method, url, token, body string, header map[string]string) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, res.Header, out
}

// TestRestartKeepsState onboards a tenant, stops the server, starts a new
// one on the same database and finds the tenant, on both stores.
func TestRestartKeepsState(t *testing.T) {
	for _, tc := range []struct {
		name  string
		dbURL func(t *testing.T) string
	}{
		{"sqlite", func(*testing.T) string { return "" }},
		{"postgres", testdb.Postgres},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			vars := map[string]string{"CAIRN_DATA_DIR": dir, "CAIRN_DATABASE_URL": tc.dbURL(t)}
			if vars["CAIRN_DATABASE_URL"] != "" {
				vars["CAIRN_KEY_ENCRYPTION_KEY"] = testKEK // as runToken's
			}
			admin, err := runToken(t, "--admin", "--data-dir", dir, "--database-url", vars["CAIRN_DATABASE_URL"])
			if err != nil {
				t.Fatal(err)
			}
			ctx, stop := context.WithCancel(context.Background())
			url, done := startServer(t, ctx, vars)
			status, tenant := call(t, "POST", url+"/v1/tenants", admin, `{"name":"Keep","slug":"keep","tier":"pooled","home_region":"eu-west-1"}`)
			if status != http.StatusAccepted {
				t.Fatalf("onboard: %d %v", status, tenant)
			}
			stop()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("shutdown: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("server did not shut down")
			}

			ctx2, stop2 := context.WithCancel(context.Background())
			defer stop2()
			url, _ = startServer(t, ctx2, vars)
			status, got := call(t, "GET", url+"/v1/tenants/"+tenant["id"].(string), admin, "")
			if status != http.StatusOK || got["slug"] != "keep" {
				t.Fatalf("after restart: %d %v", status, got)
			}
			// The admin token still works: the key is in the database,
			// not in a file of the data directory.
			if _, err := os.Stat(filepath.Join(dir, "signing-key.pem")); err == nil {
				t.Fatal("a signing key file was written to the data directory")
			}
		})
	}
}

// TestMigrateCommand brings a fresh database up to date and is a no-op the
// second time, on both stores.
func TestMigrateCommand(t *testing.T) {
	for _, tc := range []struct {
		name  string
		dbURL func(t *testing.T) string
	}{
		{"sqlite", func(*testing.T) string { return "" }},
		{"postgres", testdb.Postgres},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			vars := map[string]string{"CAIRN_DATA_DIR": dir, "CAIRN_DATABASE_URL": tc.dbURL(t)}
			for range 2 {
				if err := run(context.Background(), []string{"migrate"}, env(vars), nil, io.Discard, io.Discard); err != nil {
					t.Fatal(err)
				}
			}
			if tc.name == "sqlite" {
				if _, err := os.Stat(filepath.Join(dir, "cairn.db")); err != nil {
					t.Fatalf("no database file: %v", err)
				}
			}
			// The migrated database serves.
			ctx, stop := context.WithCancel(context.Background())
			defer stop()
			url, _ := startServer(t, ctx, vars)
			if res, err := http.Get(url + "/readyz"); err != nil || res.StatusCode != 200 {
				t.Fatalf("readyz after migrate: %v %v", res, err)
			}
		})
	}
	if err := run(context.Background(), []string{"migrate", "--database-url", "mysql://x"}, env(nil), nil, io.Discard, io.Discard); err == nil {
		t.Fatal("migrate accepted a mysql URL")
	}
}

// TestTokenLifetimeLimits: the configured maximum token lifetimes hold for
// minting (the token command, POST .../tokens: 400 naming ttl_seconds) and
// for verification (a longer-lived token of the same key: 401 saying why).
func TestTokenLifetimeLimits(t *testing.T) {
	dir := t.TempDir()
	limits := []string{"--max-tenant-token-ttl", "1h", "--max-admin-token-ttl", "2h", "--data-dir", dir}
	if tok, err := runToken(t, append([]string{"--admin", "--ttl", "3h"}, limits...)...); err == nil || !strings.Contains(err.Error(), "maximum") {
		t.Fatalf("token --ttl 3h with a 2h maximum: %q, %v", tok, err)
	}
	admin, err := runToken(t, append([]string{"--admin", "--ttl", "2h"}, limits...)...)
	if err != nil {
		t.Fatal(err)
	}
	long, err := runToken(t, "--admin", "--ttl", "3h", "--data-dir", dir) // the default maximum is 24h
	if err != nil {
		t.Fatal(err)
	}

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	url, _ := startServer(t, ctx, map[string]string{
		"CAIRN_DATA_DIR": dir, "CAIRN_MAX_TENANT_TOKEN_TTL": "1h", "CAIRN_MAX_ADMIN_TOKEN_TTL": "2h",
	})
	if status, body := call(t, "GET", url+"/v1/tenants", long, ""); status != http.StatusUnauthorized ||
		!strings.Contains(body["detail"].(string), "token lifetime exceeds the maximum of 2h") {
		t.Fatalf("a 3h admin token: %d %v", status, body)
	}
	status, tenant := call(t, "POST", url+"/v1/tenants", admin, `{"name":"Ttl","slug":"ttl-co","tier":"pooled","home_region":"eu-west-1"}`)
	if status != http.StatusAccepted {
		t.Fatalf("onboard: %d %v", status, tenant)
	}
	id := tenant["id"].(string)
	awaitTenants(t, url, admin, []string{id}, "active", 30*time.Second)
	status, body := call(t, "POST", url+"/v1/tenants/"+id+"/tokens", admin, `{"scopes":["profiles:read"],"ttl_seconds":7200}`)
	if status != http.StatusBadRequest || !strings.Contains(body["detail"].(string), "ttl_seconds") {
		t.Fatalf("a 2h tenant token with a 1h maximum: %d %v", status, body)
	}
	if status, body := call(t, "POST", url+"/v1/tenants/"+id+"/tokens", admin, `{"scopes":["profiles:read"],"ttl_seconds":3600}`); status != http.StatusCreated {
		t.Fatalf("a 1h tenant token: %d %v", status, body)
	}
}

// TestHelp: help is asked for, so it succeeds; it lists the subcommands,
// and each command's help lists that command's own flags only.
func TestHelp(t *testing.T) {
	help := func(t *testing.T, args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if err := run(context.Background(), args, env(nil), nil, &out, &errOut); err != nil {
			t.Fatalf("%v: %v (stderr %q)", args, err, errOut.String())
		}
		return out.String() + errOut.String()
	}
	tests := []struct {
		args      []string
		has, hasn []string
	}{
		{[]string{"--help"}, []string{"migrate", "token", "help", "-addr", "-max-workers"}, []string{"-admin", "-scopes"}},
		{[]string{"-h"}, []string{"migrate", "token", "-addr"}, []string{"-admin"}},
		{[]string{"help"}, []string{"migrate", "token", "-addr"}, []string{"-admin"}},
		{[]string{"serve", "--help"}, []string{"-addr", "-cloud", "-oidc-issuer"}, []string{"-admin"}},
		{[]string{"migrate", "--help"}, []string{"-data-dir", "-database-url"}, []string{"-addr", "-admin", "-cloud", "-max-workers"}},
		{[]string{"token", "--help"}, []string{"-admin", "-tenant", "-scopes", "-ttl", "-data-dir", "-database-url", "-signing-key-file", "-max-admin-token-ttl"},
			[]string{"-addr", "-cloud", "-max-workers", "-oidc-issuer", "-max-body-bytes", "-shutdown-timeout"}},
		{[]string{"help", "token"}, []string{"-admin", "-tenant"}, []string{"-addr"}},
		{[]string{"--help"}, []string{"backup", "restore", "keys"}, nil},
		{[]string{"backup", "--help"}, []string{"DIR", "-data-dir", "-key-encryption-key-file"}, []string{"-addr", "-database-url", "-force", "-admin", "-signing-key-file"}},
		{[]string{"help", "restore"}, []string{"DIR", "-data-dir", "-force", "-key-encryption-key-file"}, []string{"-addr", "-database-url", "-admin"}},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out := help(t, tc.args...)
			for _, s := range tc.has {
				if !strings.Contains(out, s) {
					t.Errorf("help lacks %q:\n%s", s, out)
				}
			}
			for _, s := range tc.hasn {
				// A flag's line starts with it: "-scopes" is not "-oidc-scopes".
				if regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(s) + `( |$)`).MatchString(out) {
					t.Errorf("help lists %q, not a flag of this command:\n%s", s, out)
				}
			}
		})
	}
	// A flag of another command is refused, not silently taken.
	if _, err := runToken(t, "--admin", "--addr", "127.0.0.1:1", "--data-dir", t.TempDir()); err == nil {
		t.Error("token took --addr")
	}
}
