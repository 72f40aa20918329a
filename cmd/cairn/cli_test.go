package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// TestOnboardToOffboard runs an operator's whole day through the CLI
// against a live server: onboard a tenant, wait for it, make a source, send
// events with its key, look the profile up, erase it and wait, offboard.
// Every -o json output is checked against the contract's schemas.
func TestOnboardToOffboard(t *testing.T) {
	s := liveServer(t)
	e := env(t, s)

	created := validate(t, "createTenant", ok(t, e, "tenants", "create", "--name", "Acme Ltd", "--slug", "acme-e2e",
		"--tier", "pooled", "--home-region", "eu-west-1", "--label", "team=cli", "-o", "json"))
	id := created["id"].(string)

	active := validate(t, "getTenant", ok(t, e, "tenants", "wait", id, "--for", "status=active",
		"--timeout", "2m", "--interval", "100ms", "-o", "json"))
	if active["status"] != "active" {
		t.Fatalf("after wait the tenant is %v", active["status"])
	}
	// A table for people names the tenant; YAML reads back as the same tenant.
	if out := ok(t, e, "tenants", "get", id); !strings.Contains(out, "acme-e2e") || !strings.Contains(out, "active") {
		t.Errorf("tenants get table:\n%s", out)
	}
	var asYAML map[string]any
	if err := yaml.Unmarshal([]byte(ok(t, e, "tenants", "get", id, "-o", "yaml")), &asYAML); err != nil || asYAML["id"] != id {
		t.Errorf("tenants get -o yaml: %v %v", asYAML, err)
	}
	list := validate(t, "listTenants", ok(t, e, "tenants", "list", "--status", "active", "--label", "team=cli", "--all", "--limit", "1", "-o", "json"))
	if items := list["items"].([]any); len(items) != 1 || items[0].(map[string]any)["id"] != id {
		t.Errorf("tenants list --label team=cli: %v", list)
	}
	validate(t, "listTenantStacks", ok(t, e, "stacks", "list", "--tenant", id, "-o", "json"))
	validate(t, "listPools", ok(t, e, "pools", "list", "-o", "json"))

	// The context's default tenant stands in for --tenant from here on.
	ok(t, e, "config", "set-context", "test", "--tenant", id)
	source := validate(t, "createSource", ok(t, e, "sources", "create", "--name", "web", "-o", "json"))
	writeKey, _ := source["write_key"].(string)
	if writeKey == "" {
		t.Fatalf("the new source shows no write key: %v", source)
	}
	validate(t, "listSources", ok(t, e, "sources", "list", "-o", "json"))

	batch := `{"batch":[{"type":"identify","userId":"jane-1","traits":{"email":"jane@example.com","plan":"gold"}},` +
		`{"type":"track","userId":"jane-1","event":"Order Completed","properties":{"total":42}}]}`
	req, err := http.NewRequest(http.MethodPost, s.url+"/v1/batch", strings.NewReader(batch))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(writeKey, "")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/batch: %d %s", resp.StatusCode, body)
	}

	profile := validate(t, "lookupProfile", ok(t, e, "profiles", "lookup", "--identifier", "email:jane@example.com", "-o", "json"))
	profileID := profile["id"].(string)
	if out := ok(t, e, "profiles", "lookup", "--identifier", "user_id:jane-1"); !strings.Contains(out, "email:jane@example.com") {
		t.Errorf("profiles lookup table shows no identifier:\n%s", out)
	}
	events := validate(t, "listProfileEvents", ok(t, e, "profiles", "events", profileID, "-o", "json"))
	if n := len(events["items"].([]any)); n != 2 {
		t.Errorf("the profile has %d events, want 2", n)
	}

	erasure := validate(t, "getErasure", ok(t, e, "profiles", "erase", profileID, "--wait",
		"--timeout", "2m", "--interval", "100ms", "-o", "json"))
	if erasure["status"] != "completed" {
		t.Fatalf("after erase --wait the erasure is %v", erasure["status"])
	}
	if r := cli(t, e, "profiles", "get", profileID); r.code != exitRefused || !strings.Contains(r.stderr, "404") {
		t.Errorf("the erased profile: exit %d, stderr %q", r.code, r.stderr)
	}

	validate(t, "listAuditEvents", ok(t, e, "audit", "list", "--all", "-o", "json"))

	validate(t, "deleteTenant", ok(t, e, "tenants", "delete", id, "-o", "json"))
	gone := validate(t, "getTenant", ok(t, e, "tenants", "wait", id, "--for", "status=deleted",
		"--timeout", "2m", "--interval", "100ms", "-o", "json"))
	if gone["status"] != "deleted" {
		t.Fatalf("after offboarding the tenant is %v", gone["status"])
	}
	// A deleted tenant never becomes active: the wait says so at once.
	if r := cli(t, e, "tenants", "wait", id, "--timeout", "1m", "--interval", "100ms"); r.code != exitWait || !strings.Contains(r.stderr, "deleted") {
		t.Errorf("waiting for a deleted tenant to be active: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestCredentialsForAWSTools prints credentials as shell exports and as the
// AWS CLI's credential_process JSON.
func TestCredentialsForAWSTools(t *testing.T) {
	s := liveServer(t)
	e := env(t, s)
	id := onboard(t, e, "creds-cli")

	exports := ok(t, e, "credentials", "--tenant", id)
	for _, name := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION"} {
		if !strings.Contains(exports, "export "+name+"='") {
			t.Errorf("no export of %s in:\n%s", name, exports)
		}
	}
	var process struct {
		Version                                                int
		AccessKeyID, SecretAccessKey, SessionToken, Expiration string
	}
	out := ok(t, e, "credentials", "--tenant", id, "--format", "process")
	if err := json.Unmarshal([]byte(out), &process); err != nil {
		t.Fatalf("credential_process output: %v\n%s", err, out)
	}
	if process.Version != 1 || process.AccessKeyID == "" || process.SecretAccessKey == "" || process.SessionToken == "" {
		t.Errorf("credential_process output lacks a field: %s", out)
	}
	if _, err := time.Parse(time.RFC3339, process.Expiration); err != nil {
		t.Errorf("Expiration %q is not RFC 3339: %v", process.Expiration, err)
	}
	validate(t, "createCredentials", ok(t, e, "credentials", "--tenant", id, "-o", "json"))
}

// onboard makes a pooled tenant and waits until it is active.
func onboard(t *testing.T, e map[string]string, slug string) string {
	t.Helper()
	tenant := validate(t, "createTenant", ok(t, e, "tenants", "create", "--name", slug, "--slug", slug,
		"--tier", "pooled", "--home-region", "eu-west-1", "-o", "json"))
	id := tenant["id"].(string)
	ok(t, e, "tenants", "wait", id, "--timeout", "2m", "--interval", "100ms")
	return id
}

// TestExitCodes tells usage errors, API refusals and transport failures
// apart, and prints a problem's title, detail and field errors.
func TestExitCodes(t *testing.T) {
	s := liveServer(t)
	e := env(t, s)

	for _, args := range [][]string{
		{"tenants", "get"},
		{"tenants", "get", "a", "b"},
		{"tenants", "list", "--no-such-flag"},
		{"no-such-command"},
		{"tenants", "no-such-command"},
		{"tenants", "list", "-o", "xml"},
		{"tenants", "wait", "ten_x", "--for", "active"},
		{"sources", "list", "--tenant", ""},
		{"--server", "127.0.0.1:8080", "tenants", "list"},
	} {
		if r := cli(t, e, args...); r.code != exitUsage || !strings.Contains(r.stderr, "Error:") {
			t.Errorf("cairn %s: exit %d (want %d), stderr %q", strings.Join(args, " "), r.code, exitUsage, r.stderr)
		}
	}

	r := cli(t, e, "tenants", "get", "ten_aaaaaaaaaaaaaaaaaaaaaaaaaa")
	if r.code != exitRefused || !strings.Contains(r.stderr, "Not found (HTTP 404)") || !strings.Contains(r.stderr, "request_id: req_") {
		t.Errorf("a missing tenant: exit %d (want %d), stderr %q", r.code, exitRefused, r.stderr)
	}
	r = cli(t, e, "tenants", "create", "--name", "Bad", "--slug", "NO", "--tier", "pooled", "--home-region", "eu-west-1")
	if r.code != exitRefused || !strings.Contains(r.stderr, "/slug:") {
		t.Errorf("a bad slug: exit %d (want %d), stderr %q (want the field named)", r.code, exitRefused, r.stderr)
	}
	r = cli(t, e, "--token", "not-a-token", "tenants", "list")
	if r.code != exitRefused || !strings.Contains(r.stderr, "401") {
		t.Errorf("a bad token: exit %d (want %d), stderr %q", r.code, exitRefused, r.stderr)
	}

	r = cli(t, e, "--server", deadServer(t), "tenants", "list")
	if r.code != exitTransport {
		t.Errorf("an unreachable server: exit %d (want %d), stderr %q", r.code, exitTransport, r.stderr)
	}
}

// deadServer is the URL of a port that nothing listens on any more.
func deadServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// TestIdempotentCreateRetry loses the answer to a create that the server
// applied: the CLI sends it again with the same Idempotency-Key, gets the
// first answer replayed, and exactly one tenant exists.
func TestIdempotentCreateRetry(t *testing.T) {
	s := liveServer(t)
	target, err := url.Parse(s.url)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		keys []string
	)
	forward := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/tenants" {
			forward.ServeHTTP(w, r)
			return
		}
		mu.Lock()
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		first := len(keys) == 1
		mu.Unlock()
		if !first {
			forward.ServeHTTP(w, r)
			return
		}
		// Apply the request, then lose its answer with the connection.
		rec := httptest.NewRecorder()
		forward.ServeHTTP(rec, r)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		conn.Close()
	}))
	defer proxy.Close()

	e := env(t, s)
	out := ok(t, e, "--server", proxy.URL, "tenants", "create", "--name", "Retry", "--slug", "retry-cli",
		"--tier", "pooled", "--home-region", "eu-west-1", "-o", "json")
	validate(t, "createTenant", out)
	mu.Lock()
	defer mu.Unlock()
	if len(keys) < 2 || keys[0] == "" {
		t.Fatalf("the create was sent %d times with keys %q; want a retry with a key", len(keys), keys)
	}
	for _, k := range keys {
		if k != keys[0] {
			t.Errorf("the retry changed the Idempotency-Key: %q", keys)
		}
	}
	list := validate(t, "listTenants", ok(t, e, "tenants", "list", "--q", "retry-cli", "--all", "-o", "json"))
	if n := len(list["items"].([]any)); n != 1 {
		t.Errorf("%d tenants with the slug retry-cli, want 1", n)
	}

	// A key given by the operator is the one sent, and a repeat replays.
	again := ok(t, e, "tenants", "create", "--name", "Keyed", "--slug", "keyed-cli", "--tier", "pooled",
		"--home-region", "eu-west-1", "--idempotency-key", "op-key-1", "-o", "json")
	replay := ok(t, e, "tenants", "create", "--name", "Keyed", "--slug", "keyed-cli", "--tier", "pooled",
		"--home-region", "eu-west-1", "--idempotency-key", "op-key-1", "-o", "json")
	if validate(t, "createTenant", again)["id"] != validate(t, "createTenant", replay)["id"] {
		t.Errorf("the same --idempotency-key made two tenants")
	}

	// --all follows next_cursor to the last page.
	paged := validate(t, "listTenants", ok(t, e, "tenants", "list", "--all", "--limit", "1", "-o", "json"))
	whole := validate(t, "listTenants", ok(t, e, "tenants", "list", "--limit", "200", "-o", "json"))
	if n, m := len(paged["items"].([]any)), len(whole["items"].([]any)); n != m || n < 2 {
		t.Errorf("--all --limit 1 listed %d tenants, one page of 200 lists %d", n, m)
	}
}

// TestContexts keeps contexts in a 0600 file and lets flags and the
// environment override them.
func TestContexts(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cairn", "config")
	e := map[string]string{"CAIRN_CONFIG": path, "PROD_TOKEN": "tok-prod"}

	if r := cli(t, e, "config", "current-context"); r.code != exitUsage {
		t.Errorf("current-context without contexts: exit %d", r.code)
	}
	ok(t, e, "config", "set-context", "prod", "--server", "https://prod.example", "--token-env", "PROD_TOKEN")
	ok(t, e, "config", "set-context", "dev", "--server", "http://127.0.0.1:1", "--token", "inline-secret", "--tenant", "ten_dev")
	if r := cli(t, e, "config", "set-context", "x", "--server", "http://x", "--token", "a", "--token-env", "B"); r.code != exitUsage {
		t.Errorf("two token sources: exit %d", r.code)
	}

	for _, p := range []struct {
		path string
		mode os.FileMode
	}{{path, 0o600}, {filepath.Dir(path), 0o700}} {
		fi, err := os.Stat(p.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != p.mode {
			t.Errorf("%s has mode %v, want %v", p.path, fi.Mode().Perm(), p.mode)
		}
	}

	// A relative token file is kept absolute, to work from any directory.
	ok(t, e, "config", "set-context", "rel", "--server", "http://x.example", "--token-file", "tok")
	if got := ok(t, e, "config", "get-contexts"); !strings.Contains(got, "file:/") || strings.Contains(got, "file:tok") {
		t.Errorf("a relative --token-file is kept relative:\n%s", got)
	}
	ok(t, e, "config", "delete-context", "rel")

	if got := strings.TrimSpace(ok(t, e, "config", "current-context")); got != "prod" {
		t.Errorf("the first context is not current: %q", got)
	}
	ok(t, e, "config", "use-context", "dev")
	if got := strings.TrimSpace(ok(t, e, "config", "current-context")); got != "dev" {
		t.Errorf("use-context dev: current is %q", got)
	}
	if r := cli(t, e, "config", "use-context", "nope"); r.code != exitUsage {
		t.Errorf("use-context of a missing context: exit %d", r.code)
	}
	got := ok(t, e, "config", "get-contexts")
	if strings.Contains(got, "inline-secret") || strings.Contains(got, "tok-prod") {
		t.Errorf("get-contexts shows a token:\n%s", got)
	}
	if !strings.Contains(got, "env:PROD_TOKEN") || !strings.Contains(got, "*        dev") {
		t.Errorf("get-contexts:\n%s", got)
	}

	// What a command resolves: the context, then the environment, then flags.
	a := &app{getenv: func(k string) string { return e[k] }}
	tgt, err := a.resolve()
	if err != nil || tgt.server != "http://127.0.0.1:1" || tgt.token != "inline-secret" || tgt.tenant != "ten_dev" {
		t.Errorf("the current context resolves to %+v, %v", tgt, err)
	}
	a.contextName = "prod"
	if tgt, err = a.resolve(); err != nil || tgt.server != "https://prod.example" || tgt.token != "tok-prod" {
		t.Errorf("--context prod resolves to %+v, %v", tgt, err)
	}
	e["CAIRN_SERVER"], e["CAIRN_TOKEN"] = "http://env.example", "tok-env"
	if tgt, err = a.resolve(); err != nil || tgt.server != "http://env.example" || tgt.token != "tok-env" {
		t.Errorf("CAIRN_SERVER and CAIRN_TOKEN resolve to %+v, %v", tgt, err)
	}
	a.server, a.token = "http://flag.example", "tok-flag"
	if tgt, err = a.resolve(); err != nil || tgt.server != "http://flag.example" || tgt.token != "tok-flag" {
		t.Errorf("--server and --token resolve to %+v, %v", tgt, err)
	}
}

// TestCompletion generates the scripts of the three shells and completes
// tenant IDs from the API and Regions from the contract.
func TestCompletion(t *testing.T) {
	s := liveServer(t)
	e := env(t, s)
	for shell, marker := range map[string]string{"bash": "complete -o default", "zsh": "#compdef cairn", "fish": "complete -c cairn"} {
		if out := ok(t, e, "completion", shell); !strings.Contains(out, marker) {
			t.Errorf("completion %s lacks %q", shell, marker)
		}
	}

	id := onboard(t, e, "complete-cli")
	out := ok(t, e, "__complete", "tenants", "get", "")
	if !strings.Contains(out, id+"\tcomplete-cli (active)") {
		t.Errorf("tenant ID completion lacks %s:\n%s", id, out)
	}
	out = ok(t, e, "__complete", "sources", "list", "--tenant", "ten_")
	if !strings.Contains(out, id) {
		t.Errorf("--tenant completion lacks %s:\n%s", id, out)
	}
	out = ok(t, e, "__complete", "tenants", "create", "--home-region", "")
	for _, r := range []string{"eu-west-1", "us-east-1", "ap-southeast-2"} {
		if !strings.Contains(out, r+"\n") {
			t.Errorf("Region completion lacks %s:\n%s", r, out)
		}
	}
	out = ok(t, e, "__complete", "stacks", "events", "")
	if !strings.Contains(out, "eu-west-1\n") {
		t.Errorf("Region argument completion:\n%s", out)
	}
}

// TestBinary runs the built cairn binary as a user would: contexts in the
// user's config directory, and the process's exit codes.
func TestBinary(t *testing.T) {
	s := liveServer(t)
	bin := filepath.Join(binaries(t), "cairn")
	home := t.TempDir()
	tokFile := filepath.Join(home, "token")
	if err := os.WriteFile(tokFile, []byte(s.token), 0o600); err != nil {
		t.Fatal(err)
	}
	runBin := func(args ...string) (string, string, int) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = []string{"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "PATH=" + os.Getenv("PATH")}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		code := 0
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return stdout.String(), stderr.String(), code
	}

	if out, _, code := runBin("--help"); code != 0 || !strings.Contains(out, "Exit codes:") {
		t.Errorf("--help: exit %d, no exit codes in:\n%s", code, out)
	}
	if _, _, code := runBin("config", "set-context", "local", "--server", s.url, "--token-file", tokFile); code != 0 {
		t.Fatalf("set-context: exit %d", code)
	}
	cfg := filepath.Join(home, ".config", "cairn", "config")
	fi, err := os.Stat(cfg)
	if err != nil {
		t.Fatalf("the contexts are not in the user's config directory: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", cfg, fi.Mode().Perm())
	}
	if out, stderr, code := runBin("tenants", "list", "-o", "json"); code != 0 {
		t.Errorf("tenants list: exit %d: %s", code, stderr)
	} else {
		validate(t, "listTenants", out)
	}
	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"tenants", "get"}, exitUsage},
		{[]string{"tenants", "get", "ten_aaaaaaaaaaaaaaaaaaaaaaaaaa"}, exitRefused},
		{[]string{"--server", deadServer(t), "tenants", "list"}, exitTransport},
	} {
		if _, stderr, code := runBin(c.args...); code != c.want {
			t.Errorf("cairn %s: exit %d, want %d; stderr %q", strings.Join(c.args, " "), code, c.want, stderr)
		}
	}
}

// TestEveryResource runs the CLI's commands for the rest of the API against
// the live server, each -o json answer checked against its operation's
// schema, with the tenant taken from CAIRN_TENANT.
func TestEveryResource(t *testing.T) {
	s := liveServer(t)
	e := env(t, s)
	id := onboard(t, e, "every-cli")
	e["CAIRN_TENANT"] = id
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	str := func(m map[string]any, k string) string {
		v, _ := m[k].(string)
		if v == "" {
			t.Fatalf("no %s in %v", k, m)
		}
		return v
	}

	// Tenants' lifecycle and tokens.
	if got := validate(t, "updateTenant", ok(t, e, "tenants", "update", id, "--plan", "default", "--label", "tier=a", "-o", "json")); got["plan"] != "default" {
		t.Errorf("update --plan default: %v", got["plan"])
	}
	validate(t, "suspendTenant", ok(t, e, "tenants", "suspend", id, "-o", "json"))
	ok(t, e, "tenants", "wait", id, "--for", "status=suspended", "--timeout", "1m", "--interval", "100ms")
	validate(t, "resumeTenant", ok(t, e, "tenants", "resume", id, "-o", "json"))
	ok(t, e, "tenants", "wait", id, "--timeout", "1m", "--interval", "100ms")
	validate(t, "createTenantToken", ok(t, e, "tokens", "create", "--scope", "profiles:read", "--ttl", "10m", "-o", "json"))
	validate(t, "listStackEvents", ok(t, e, "stacks", "events", "eu-west-1", "-o", "json"))

	// Sources.
	src := str(validate(t, "createSource", ok(t, e, "sources", "create", "--name", "app", "-o", "json")), "id")
	validate(t, "getSource", ok(t, e, "sources", "get", src, "-o", "json"))
	validate(t, "updateSource", ok(t, e, "sources", "update", src, "--allowed-origin", "https://shop.example", "-o", "json"))
	validate(t, "rotateSource", ok(t, e, "sources", "rotate", src, "-o", "json"))
	if got := validate(t, "revokeSource", ok(t, e, "sources", "revoke", src, "-o", "json")); got["revoked"] != true {
		t.Errorf("revoke: %v", got)
	}

	// Identity configuration round-trips through a YAML file.
	idYAML := ok(t, e, "identity", "get", "-o", "yaml")
	validate(t, "putIdentityConfig", ok(t, e, "identity", "set", "-f", file("identity.yaml", idYAML), "-o", "json"))

	// Segments from YAML files.
	seg := str(validate(t, "createSegment", ok(t, e, "segments", "create", "-f",
		file("gold.yaml", "name: gold\ndefinition:\n  trait: plan\n  operator: equals\n  value: gold\n"), "-o", "json")), "id")
	validate(t, "listSegments", ok(t, e, "segments", "list", "--all", "-o", "json"))
	validate(t, "getSegment", ok(t, e, "segments", "get", seg, "-o", "json"))
	validate(t, "updateSegment", ok(t, e, "segments", "update", seg, "-f", file("rename.yaml", "name: golden\n"), "-o", "json"))
	validate(t, "previewSegment", ok(t, e, "segments", "preview", "-f",
		file("preview.json", `{"definition":{"trait":"plan","operator":"exists"}}`), "-o", "json"))
	validate(t, "listSegmentMembers", ok(t, e, "segments", "members", seg, "-o", "json"))
	if out := ok(t, e, "segments", "delete", seg); !strings.Contains(out, "deleted") {
		t.Errorf("segments delete printed %q", out)
	}
	if r := cli(t, e, "segments", "get", seg); r.code != exitRefused {
		t.Errorf("a deleted segment: exit %d", r.code)
	}

	// Principals and grants on the tenant's own Glue database (a pooled tenant's: DESCRIBE,
	// as SELECT on every table would reach past its data cells filters).
	stacks := validate(t, "listTenantStacks", ok(t, e, "stacks", "list", "-o", "json"))
	db := str(stacks["items"].([]any)[0].(map[string]any)["outputs"].(map[string]any), "glue_database")
	validate(t, "registerPrincipal", ok(t, e, "principals", "add", "123456789012", "-o", "json"))
	validate(t, "registerPrincipal", ok(t, e, "principals", "add", "210987654321", "-o", "json"))
	validate(t, "listPrincipals", ok(t, e, "principals", "list", "-o", "json"))
	grant := str(validate(t, "createGrant", ok(t, e, "grants", "create", "--principal", "123456789012",
		"--region", "eu-west-1", "--database", db, "--permission", "DESCRIBE", "-o", "json")), "id")
	validate(t, "listGrants", ok(t, e, "grants", "list", "--principal", "123456789012", "-o", "json"))
	validate(t, "getGrant", ok(t, e, "grants", "get", grant, "-o", "json"))
	validate(t, "reconcileGrants", ok(t, e, "grants", "reconcile", "-o", "json"))
	validate(t, "revokeGrant", ok(t, e, "grants", "revoke", grant, "-o", "json"))
	ok(t, e, "principals", "remove", "210987654321")
	list := validate(t, "listPrincipals", ok(t, e, "principals", "list", "-o", "json"))
	if n := len(list["items"].([]any)); n != 1 {
		t.Errorf("%d principals after removing one of two", n)
	}
	// Its grant being revoked, a principal cannot go: the problem says why.
	if r := cli(t, e, "principals", "remove", "123456789012"); r.code == exitRefused && !strings.Contains(r.stderr, "409") {
		t.Errorf("removing a principal with a grant: %q", r.stderr)
	}

	// Webhooks: the tenant's, and the fleet's with --fleet.
	validate(t, "listWebhooks", ok(t, e, "webhooks", "list", "-o", "json"))
	validate(t, "listFleetWebhooks", ok(t, e, "webhooks", "list", "--fleet", "-o", "json"))

	// Usage: the tenant's days, as a table and as JSON, and the fleet's totals.
	if out := ok(t, e, "usage", "show"); !strings.Contains(out, "EVENTS") || strings.Count(out, "\n") < 8 {
		t.Errorf("usage show: a header and a row per day of the last 7 (or 8, the range aligned to days), got:\n%s", out)
	}
	hourly := validate(t, "getTenantUsage", ok(t, e, "usage", "show", "--granularity", "hour", "--from", time.Now().Add(-3*time.Hour).UTC().Format(time.RFC3339), "-o", "json"))
	if hourly["granularity"] != "hour" {
		t.Errorf("usage show --granularity hour: %v", hourly)
	}
	if r := cli(t, e, "usage", "show", "--granularity", "week"); r.code != exitUsage {
		t.Errorf("usage show --granularity week: exit %d", r.code)
	}
	validate(t, "getFleetUsage", ok(t, e, "usage", "fleet", "-o", "json"))

	// Plans: made from YAML, read back, replaced under If-Match, listed.
	gold := file("gold.yaml", "description: Gold\nlimits: {events_per_second_per_tenant: 5000, profiles: 1000}\nprofiles_mode: block\n")
	made := validate(t, "putPlan", ok(t, e, "plans", "set", "cli-gold", "-f", gold, "-o", "json"))
	if made["profiles_mode"] != "block" || made["version"] != float64(1) {
		t.Errorf("plans set: %v", made)
	}
	if out := ok(t, e, "plans", "get", "cli-gold"); !strings.Contains(out, "PROFILES") || !strings.Contains(out, "1000") {
		t.Errorf("plans get, as a table:\n%s", out)
	}
	if r := cli(t, e, "plans", "set", "cli-gold", "-f", gold, "--if-match", `"v9"`); r.code != exitRefused || !strings.Contains(r.stderr, "412") {
		t.Errorf("plans set with a stale ETag: exit %d, %q", r.code, r.stderr)
	}
	silver := file("silver.json", `{"limits": {"monthly_events": 10}}`)
	if got := validate(t, "putPlan", ok(t, e, "plans", "set", "cli-gold", "-f", silver, "--if-match", `"v1"`, "-o", "json")); got["version"] != float64(2) || got["profiles_mode"] != "warn" {
		t.Errorf("plans set, replacing the terms: %v", got)
	}
	names := map[string]bool{}
	for _, item := range validate(t, "listPlans", ok(t, e, "plans", "list", "-o", "json"))["items"].([]any) {
		names[item.(map[string]any)["name"].(string)] = true
	}
	if !names["default"] || !names["cli-gold"] {
		t.Errorf("plans list: %v", names)
	}

	audit := validate(t, "listAuditEvents", ok(t, e, "audit", "list", "--action", "grant.create", "-o", "json"))
	for _, item := range audit["items"].([]any) {
		if ev := item.(map[string]any); ev["tenant_id"] != id {
			t.Errorf("audit list with the context's tenant shows another's event: %v", ev)
		}
	}
}
