package main

// Real tracking clients against the real server: each library, with its own
// defaults and only its endpoint pointed at Cairn, sends identify, track,
// page, group and alias, and the result is read back as profiles through
// the profile API. The browser test does the same with @segment/analytics-next
// in headless Chromium on a page of another origin.
//
// The Go libraries always run. The Python and Node clients and Chromium
// come from scripts/testenv.sh, which installs them and exports
//   CAIRN_TEST_PYTHON          the test venv's python (rudder-sdk-python,
//                              segment-analytics-python; requirements-test.txt)
//   CAIRN_TEST_NODE_DIR        e2e/, with node_modules from its package-lock.json
//   CAIRN_TEST_CHROMIUM        Debian's Chromium
//   CAIRN_TEST_REQUIRE_CLIENTS 1: a missing piece fails the test instead of
//                              skipping it

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	rudder "github.com/rudderlabs/analytics-go/v4"
	segment "github.com/segmentio/analytics-go/v3"
)

// missing skips the test for a missing client piece, or fails it under
// CAIRN_TEST_REQUIRE_CLIENTS=1 (scripts/testenv.sh).
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CAIRN_TEST_REQUIRE_CLIENTS") == "1" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// clientTool returns the path in the environment variable name; see
// missing when it is unset or the path does not exist.
func clientTool(t *testing.T, name string) string {
	t.Helper()
	path := os.Getenv(name)
	if path == "" {
		missing(t, "%s is not set (scripts/testenv.sh sets it)", name)
	}
	if _, err := os.Stat(path); err != nil {
		missing(t, "%s: %v", name, err)
	}
	return path
}

// nodeDir returns the Node project (e2e/) with its modules installed; see
// missing without them or without node.
func nodeDir(t *testing.T) string {
	t.Helper()
	dir := clientTool(t, "CAIRN_TEST_NODE_DIR")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", ".package-lock.json")); err != nil {
		missing(t, "%s has no node_modules (npm ci): %v", dir, err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing(t, "%v", err)
	}
	return dir
}

// trackingSource starts a server on the embedded default with an active
// pooled tenant and a source, and returns the server's URL, an admin
// token, the tenant's ID and the source's write key.
func trackingSource(t *testing.T) (base, admin, tenant, writeKey string) {
	t.Helper()
	dir := t.TempDir()
	admin, err := runToken(t, "--admin", "--data-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	base, _ = startServer(t, t.Context(), map[string]string{
		"CAIRN_DATA_DIR": dir, "CAIRN_STACK_POLL_INTERVAL": "100ms", "CAIRN_LOG_LEVEL": "error",
	})
	status, tn := call(t, "POST", base+"/v1/tenants", admin, `{"name":"Clients","slug":"clients","tier":"pooled","home_region":"eu-west-1"}`)
	if status != http.StatusAccepted {
		t.Fatalf("onboard: %d %v", status, tn)
	}
	tenant = tn["id"].(string)
	awaitTenants(t, base, admin, []string{tenant}, "active", time.Minute)
	status, src := call(t, "POST", base+"/v1/tenants/"+tenant+"/sources", admin, `{"name":"web"}`)
	if status != http.StatusCreated {
		t.Fatalf("source: %d %v", status, src)
	}
	return base, admin, tenant, src["write_key"].(string)
}

// trackingCall is one call of a tracking library's public API, in
// Segment's field names; the Python and Node scripts read them as JSON.
type trackingCall struct {
	Type        string         `json:"type"`
	UserID      string         `json:"userId,omitempty"`
	AnonymousID string         `json:"anonymousId,omitempty"`
	PreviousID  string         `json:"previousId,omitempty"`
	GroupID     string         `json:"groupId,omitempty"`
	Event       string         `json:"event,omitempty"`
	Name        string         `json:"name,omitempty"`
	Traits      map[string]any `json:"traits,omitempty"`
	Properties  map[string]any `json:"properties,omitempty"`
}

// trackingPlan is what a client script is given on stdin.
type trackingPlan struct {
	URL      string         `json:"url"`
	WriteKey string         `json:"writeKey"`
	Calls    []trackingCall `json:"calls"`
}

// clientCustomer is one library's customer: first seen under a previous
// identifier (an anonymousId, or a userId the app used before), then
// identified, active, and aliased from the previous identifier.
type clientCustomer struct {
	user, email, group string
	previous           string
	previousType       string // the identifier type Cairn files previous under
}

func newClientCustomer(lib, previousType string) clientCustomer {
	return clientCustomer{
		user:         "user-" + lib,
		email:        lib + "@example.com",
		group:        "acme-" + lib,
		previous:     "before-" + lib,
		previousType: previousType,
	}
}

func (c clientCustomer) calls() []trackingCall {
	first := trackingCall{Type: "track", Event: "Signup Viewed", Properties: map[string]any{"step": 1}}
	if c.previousType == "anonymous_id" {
		first.AnonymousID = c.previous
	} else {
		first.UserID = c.previous
	}
	return []trackingCall{
		first,
		{Type: "identify", UserID: c.user, Traits: map[string]any{"email": c.email, "name": "Client " + c.user, "plan": "pro"}},
		{Type: "track", UserID: c.user, Event: "Order Completed", Properties: map[string]any{"total": 42.5, "currency": "EUR"}},
		{Type: "page", UserID: c.user, Name: "Pricing", Properties: map[string]any{"path": "/pricing"}},
		{Type: "group", UserID: c.user, GroupID: c.group, Traits: map[string]any{"name": "Acme"}},
		{Type: "alias", PreviousID: c.previous, UserID: c.user},
	}
}

// TestClientLibraries sends each customer's calls through one tracking
// library with its defaults (gzip where the library turns it on) and finds
// one profile per customer: the identify's traits and email, the track,
// page and group on its timeline, and the previous identifier merged in by
// the alias.
func TestClientLibraries(t *testing.T) {
	base, admin, tenant, key := trackingSource(t)
	// Segment's server libraries alias an earlier user ID to the new one.
	// An alias merges within the identity limits, and the default allows
	// one user_id a profile: this tenant allows two.
	if status, body := call(t, "PUT", base+"/v1/tenants/"+tenant+"/identity-config", admin, `{"identifiers":[
		{"type":"user_id","priority":1,"limit":2},{"type":"email","priority":2,"limit":5},{"type":"phone","priority":3,"limit":5},
		{"type":"device_id","priority":4,"limit":5},{"type":"anonymous_id","priority":5,"limit":5}]}`); status != http.StatusOK {
		t.Fatalf("identity config: %d %v", status, body)
	}
	for _, lib := range []struct {
		name         string
		previousType string
		send         func(t *testing.T, plan trackingPlan) error
	}{
		// rudder-sdk-python: gzip on by default; identify traits go in
		// context.traits only.
		{"rudder-sdk-python", "anonymous_id", pythonClient("rudder")},
		// segment-analytics-python with gzip=True (its default is off).
		{"segment-analytics-python", "user_id", pythonClient("segment")},
		// @rudderstack/rudder-sdk-node: gzip on, posted as
		// application/x-www-form-urlencoded (axios with a Buffer body).
		{"rudder-sdk-node", "anonymous_id", rudderNode},
		// rudderlabs/analytics-go/v4: gzip on by default.
		{"rudder-analytics-go", "anonymous_id", rudderGo},
		// segmentio/analytics-go/v3: plain JSON.
		{"segment-analytics-go", "user_id", segmentGo},
	} {
		t.Run(lib.name, func(t *testing.T) {
			t.Parallel()
			c := newClientCustomer(lib.name, lib.previousType)
			if err := lib.send(t, trackingPlan{URL: base, WriteKey: key, Calls: c.calls()}); err != nil {
				t.Fatalf("%s: %v", lib.name, err)
			}
			checkClientCustomer(t, base, admin, tenant, c)
		})
	}
}

// runScript runs a client script with the plan on stdin; its error carries
// what the script printed.
func runScript(t *testing.T, dir string, plan trackingPlan, name string, args ...string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	body, err := json.Marshal(plan)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(body)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return nil
}

func pythonClient(lib string) func(t *testing.T, plan trackingPlan) error {
	return func(t *testing.T, plan trackingPlan) error {
		python := clientTool(t, "CAIRN_TEST_PYTHON")
		script, err := filepath.Abs(filepath.Join("testdata", "clients", "python_client.py"))
		if err != nil {
			return err
		}
		return runScript(t, t.TempDir(), plan, python, script, lib)
	}
}

func rudderNode(t *testing.T, plan trackingPlan) error {
	return runScript(t, nodeDir(t), plan, "node", "rudder-node.mjs")
}

// callbackErrors collects a Go library's delivery failures; it is the
// Callback of both analytics-go forks, whose Message types differ.
type callbackErrors[M any] struct {
	mu   sync.Mutex
	errs []error
}

func (c *callbackErrors[M]) Success(M) {}

func (c *callbackErrors[M]) Failure(m M, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.errs = append(c.errs, fmt.Errorf("%T: %w", m, err))
}

func (c *callbackErrors[M]) err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return errors.Join(c.errs...)
}

func rudderGo(t *testing.T, plan trackingPlan) error {
	failures := &callbackErrors[rudder.Message]{}
	client, err := rudder.NewWithConfig(plan.WriteKey, rudder.Config{
		DataPlaneUrl: plan.URL,
		Callback:     failures,
		Logger:       rudder.StdLogger(log.New(t.Output(), "rudder-analytics-go: ", 0)),
	})
	if err != nil {
		return err
	}
	for _, c := range plan.Calls {
		var m rudder.Message
		switch c.Type {
		case "identify":
			m = rudder.Identify{UserId: c.UserID, AnonymousId: c.AnonymousID, Traits: c.Traits}
		case "track":
			m = rudder.Track{UserId: c.UserID, AnonymousId: c.AnonymousID, Event: c.Event, Properties: c.Properties}
		case "page":
			m = rudder.Page{UserId: c.UserID, AnonymousId: c.AnonymousID, Name: c.Name, Properties: c.Properties}
		case "group":
			m = rudder.Group{UserId: c.UserID, AnonymousId: c.AnonymousID, GroupId: c.GroupID, Traits: c.Traits}
		case "alias":
			m = rudder.Alias{PreviousId: c.PreviousID, UserId: c.UserID}
		}
		if err := client.Enqueue(m); err != nil {
			return err
		}
	}
	if err := client.Close(); err != nil { // flushes
		return err
	}
	return failures.err()
}

func segmentGo(t *testing.T, plan trackingPlan) error {
	failures := &callbackErrors[segment.Message]{}
	client, err := segment.NewWithConfig(plan.WriteKey, segment.Config{
		Endpoint: plan.URL,
		Callback: failures,
		Logger:   segment.StdLogger(log.New(t.Output(), "segment-analytics-go: ", 0)),
	})
	if err != nil {
		return err
	}
	for _, c := range plan.Calls {
		var m segment.Message
		switch c.Type {
		case "identify":
			m = segment.Identify{UserId: c.UserID, AnonymousId: c.AnonymousID, Traits: c.Traits}
		case "track":
			m = segment.Track{UserId: c.UserID, AnonymousId: c.AnonymousID, Event: c.Event, Properties: c.Properties}
		case "page":
			m = segment.Page{UserId: c.UserID, AnonymousId: c.AnonymousID, Name: c.Name, Properties: c.Properties}
		case "group":
			m = segment.Group{UserId: c.UserID, AnonymousId: c.AnonymousID, GroupId: c.GroupID, Traits: c.Traits}
		case "alias":
			m = segment.Alias{PreviousId: c.PreviousID, UserId: c.UserID}
		}
		if err := client.Enqueue(m); err != nil {
			return err
		}
	}
	if err := client.Close(); err != nil { // flushes
		return err
	}
	return failures.err()
}

// profileOf looks up the profile holding identifier (type:value); ok is
// false, with the answer logged, when there is none.
func profileOf(t *testing.T, base, admin, tenant, identifier string) (map[string]any, bool) {
	t.Helper()
	status, p := call(t, "GET", base+"/v1/tenants/"+tenant+"/profiles?identifier="+url.QueryEscape(identifier), admin, "")
	if status != http.StatusOK {
		t.Errorf("no profile for %s: %d %v", identifier, status, p)
		return nil, false
	}
	return p, true
}

// timeline returns a profile's events, merged members' included, as
// "type name" strings ("track Order Completed", "identify").
func timeline(t *testing.T, base, admin, tenant, profile string) []string {
	t.Helper()
	status, list := call(t, "GET", base+"/v1/tenants/"+tenant+"/profiles/"+profile+"/events?limit=200", admin, "")
	if status != http.StatusOK {
		t.Fatalf("events of %s: %d %v", profile, status, list)
	}
	var got []string
	items, _ := list["items"].([]any)
	for _, it := range items {
		ev, _ := it.(map[string]any)
		typ, _ := ev["type"].(string)
		name, _ := ev["name"].(string)
		got = append(got, strings.TrimSpace(typ+" "+name))
	}
	slices.Sort(got)
	return got
}

func hasIdentifier(p map[string]any, typ, value string) bool {
	ids, _ := p["identifiers"].([]any)
	for _, it := range ids {
		if id, _ := it.(map[string]any); id["type"] == typ && id["value"] == value {
			return true
		}
	}
	return false
}

// checkClientCustomer checks that c's calls made one profile with every
// identifier, the identify's traits and each event.
func checkClientCustomer(t *testing.T, base, admin, tenant string, c clientCustomer) {
	t.Helper()
	p, ok := profileOf(t, base, admin, tenant, "user_id:"+c.user)
	if !ok {
		return
	}
	id, _ := p["id"].(string)
	for _, ident := range []string{"email:" + c.email, c.previousType + ":" + c.previous} {
		if q, ok := profileOf(t, base, admin, tenant, ident); ok && q["id"] != id {
			t.Errorf("%s is profile %v, user_id:%s is %s: want one profile (alias merges previousId's profile)", ident, q["id"], c.user, id)
		}
	}
	traits, _ := p["traits"].(map[string]any)
	for k, want := range map[string]any{"email": c.email, "name": "Client " + c.user, "plan": "pro"} {
		if traits[k] != want {
			t.Errorf("trait %s = %v, want %v (traits %v)", k, traits[k], want, traits)
		}
	}
	if !hasIdentifier(p, "email", c.email) {
		t.Errorf("identifiers %v lack email:%s", p["identifiers"], c.email)
	}
	got := timeline(t, base, admin, tenant, id)
	for _, want := range []string{"track Signup Viewed", "identify", "track Order Completed", "page Pricing", "group", "alias"} {
		if !slices.Contains(got, want) {
			t.Errorf("timeline %q lacks %q", got, want)
		}
	}
}

// TestBrowserClient loads @segment/analytics-next's UMD build in headless
// Chromium on a page served from another origin than Cairn's, configured
// with the write key, Cairn as its settings CDN and Cairn as its API host,
// and has an anonymous visitor view a page, start a trial and sign up
// (identify): Cairn must answer the settings and the CORS requests, take
// text/plain JSON with the write key in the body on Segment's short paths,
// and make one profile of the visitor.
func TestBrowserClient(t *testing.T) {
	chromium := clientTool(t, "CAIRN_TEST_CHROMIUM")
	dir := nodeDir(t)
	base, admin, tenant, key := trackingSource(t)

	mux := http.NewServeMux()
	mux.Handle("/analytics-next/", http.StripPrefix("/analytics-next/",
		http.FileServer(http.Dir(filepath.Join(dir, "node_modules", "@segment", "analytics-next", "dist", "umd")))))
	mux.Handle("/", http.FileServer(http.Dir(filepath.Join(dir, "browser"))))
	site := httptest.NewServer(mux)
	t.Cleanup(site.Close)

	// The page names Cairn's host itself, but a site that sets only cdnURL
	// gets it from the settings, which must point at the server that served
	// them.
	res, err := http.Get(base + "/v1/projects/" + key + "/settings")
	if err != nil {
		t.Fatal(err)
	}
	var settings struct {
		Integrations map[string]struct {
			APIHost string `json:"apiHost"`
		} `json:"integrations"`
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if err := json.Unmarshal(body, &settings); err != nil || res.StatusCode != http.StatusOK ||
		!strings.HasPrefix(settings.Integrations["Segment.io"].APIHost, strings.TrimPrefix(base, "http://")+"/") {
		t.Errorf("settings: %d %s; want integrations[\"Segment.io\"].apiHost on %s", res.StatusCode, bytes.TrimSpace(body), base)
	}

	const user, email = "visitor-1", "visitor@example.com"
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "browser.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"CAIRN_CHROMIUM="+chromium,
		"CAIRN_PAGE_URL="+site.URL+"/index.html",
		"CAIRN_URL="+base,
		"CAIRN_WRITE_KEY="+key,
		"CAIRN_USER_ID="+user,
		`CAIRN_USER_TRAITS={"email":"`+email+`","name":"Visitor One"}`,
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node browser.mjs: %v\nreport:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	var report struct {
		AnonymousID string `json:"anonymousId"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &report); err != nil || report.AnonymousID == "" {
		t.Fatalf("report without an anonymousId (%v):\n%s", err, stdout.String())
	}

	p, ok := profileOf(t, base, admin, tenant, "user_id:"+user)
	if !ok {
		t.FailNow()
	}
	id, _ := p["id"].(string)
	if q, ok := profileOf(t, base, admin, tenant, "anonymous_id:"+report.AnonymousID); ok && q["id"] != id {
		t.Errorf("the anonymous visitor is profile %v, the identified user %s: want one", q["id"], id)
	}
	if traits, _ := p["traits"].(map[string]any); traits["email"] != email || traits["name"] != "Visitor One" {
		t.Errorf("traits %v", traits)
	}
	if !hasIdentifier(p, "email", email) {
		t.Errorf("identifiers %v lack email:%s", p["identifiers"], email)
	}
	got := timeline(t, base, admin, tenant, id)
	for _, want := range []string{"page Pricing", "track Trial Started", "identify"} {
		if !slices.Contains(got, want) {
			t.Errorf("timeline %q lacks %q", got, want)
		}
	}
}
