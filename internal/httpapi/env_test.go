package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/cairn-cdp/cairn/internal/auth"
	"github.com/cairn-cdp/cairn/internal/fleet"
	"github.com/cairn-cdp/cairn/internal/grants"
	"github.com/cairn-cdp/cairn/internal/httpapi"
	"github.com/cairn-cdp/cairn/internal/lake"
	"github.com/cairn-cdp/cairn/internal/migration"
	"github.com/cairn-cdp/cairn/internal/offboarding"
	"github.com/cairn-cdp/cairn/internal/placement"
	"github.com/cairn-cdp/cairn/internal/plans"
	"github.com/cairn-cdp/cairn/internal/profiles"
	"github.com/cairn-cdp/cairn/internal/profiles/rawzone"
	"github.com/cairn-cdp/cairn/internal/profiles/sqlitestore"
	"github.com/cairn-cdp/cairn/internal/provisioner"
	"github.com/cairn-cdp/cairn/internal/provisioner/enginetest"
	"github.com/cairn-cdp/cairn/internal/rollouts"
	"github.com/cairn-cdp/cairn/internal/sealed"
	"github.com/cairn-cdp/cairn/internal/store"
	"github.com/cairn-cdp/cairn/internal/store/backend"
	"github.com/cairn-cdp/cairn/internal/tenants"
	"github.com/cairn-cdp/cairn/internal/testdb"
	"github.com/cairn-cdp/cairn/internal/usage"
	"github.com/cairn-cdp/cairn/internal/webhooks"
	"github.com/cairn-cdp/cairn/templates"
)

// env is a real Cairn API over HTTP on a real database, with the job
// workers running, as the server wires it.
type env struct {
	t       *testing.T
	url     string
	db      store.Backend
	dbURL   string
	dataDir string
	auth    *auth.Authority
	prov    *provisioner.Provisioner
	catalog grants.Catalog
	grants  *grants.Service
	raw     profiles.RawZone
	// profiles is the profile service the API serves.
	profiles *profiles.Service
	admin    string
	jobDone  chan string
	// meter counts usage; tests flush it (no flush loop runs).
	meter *usage.Meter
	// placements locates tenants' data as the server does, counting its
	// reads of the database in placementReads.
	placements     *placement.Locator
	placementReads atomic.Int64
}

// countedPlacements counts the database's placement reads.
type countedPlacements struct {
	placement.Reader
	n *atomic.Int64
}

func (c countedPlacements) TenantPlacements(ctx context.Context, id string) (placement.Tenant, error) {
	c.n.Add(1)
	return c.Reader.TenantPlacements(ctx, id)
}

// backends runs fn once per control-plane database, in parallel with the
// other tests: every environment has a database and data directory of its
// own. opts change the server's configuration (rate limits, say).
func backends(t *testing.T, fn func(t *testing.T, newEnv func() *env), opts ...func(*httpapi.Config)) {
	backendsOn(t, nil, fn, opts...)
}

// backendsOn is backends with the grants broker of each environment on the
// catalog newCatalog makes (the local catalog if nil).
func backendsOn(t *testing.T, newCatalog func(t *testing.T) grants.Catalog, fn func(t *testing.T, newEnv func() *env), opts ...func(*httpapi.Config)) {
	t.Parallel()
	catalog := func(t *testing.T) grants.Catalog {
		if newCatalog == nil {
			return nil
		}
		return newCatalog(t)
	}
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, func() *env { return startEnvWith(t, "", t.TempDir(), catalog(t), opts...) })
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		// Skip (or fail) here, not in a subtest that fn starts; every
		// environment still gets a fresh database of its own.
		testdb.Postgres(t)
		fn(t, func() *env { return startEnvWith(t, testdb.Postgres(t), t.TempDir(), catalog(t), opts...) })
	})
}

func startEnv(t *testing.T, dbURL, dataDir string, opts ...func(*httpapi.Config)) *env {
	t.Helper()
	return startEnvWith(t, dbURL, dataDir, nil, opts...)
}

// startEnvWith is startEnv with the grants broker on catalog (the local
// catalog under the data directory when nil).
func startEnvWith(t *testing.T, dbURL, dataDir string, catalog grants.Catalog, opts ...func(*httpapi.Config)) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	db, err := backend.Open(ctx, dbURL, dataDir, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	key, err := auth.LoadOrCreateKey(filepath.Join(dataDir, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(ctx, key, auth.Config{})
	if err != nil {
		t.Fatal(err)
	}
	svc := tenants.NewService(db, nil)
	planSvc := plans.NewService(db, nil)
	svc.SetPlans(planSvc)
	e := &env{t: t, db: db, dbURL: dbURL, dataDir: dataDir, auth: a, jobDone: make(chan string, 1000),
		meter: usage.NewMeter(db, nil, log)}
	e.placements = placement.NewLocator(countedPlacements{Reader: db, n: &e.placementReads})

	e.catalog = catalog
	if e.catalog == nil {
		e.catalog = &grants.LocalCatalog{Root: filepath.Join(dataDir, "zones")}
	}
	gs, err := grants.NewService(grants.Config{
		Store: db.Grants(), Catalog: e.catalog, Credentials: grants.LocalCredentials{}, Tenants: svc, Placements: e.placements, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.grants = gs
	profileStore, err := sqlitestore.Open(ctx, filepath.Join(dataDir, sqlitestore.FileName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { profileStore.Close() })
	locate := profiles.PlacementLocator{Placements: e.placements}
	e.raw = &rawzone.Local{Root: filepath.Join(dataDir, "zones"), Locate: locate.RawZone}
	ps := profiles.NewService(profileStore, e.raw, nil)
	e.profiles = ps
	sources := profiles.NewSources(db, nil)
	// As in the server: the key-encryption key generated in the data
	// directory seals webhook secrets.
	keys, err := sealed.Load(sealed.Config{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	// Webhooks may go to the test's own receivers on loopback, over http.
	guard := &webhooks.Guard{AllowHTTP: true, Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	hooks, err := webhooks.New(webhooks.Config{Store: db, Sealer: keys, Guard: guard, Sender: &webhooks.Sender{Guard: guard, Timeout: 5 * time.Second}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	// As in the server: fleet events are relayed at once after a change
	// and by the periodic job.
	relay, err := fleet.NewRelay(fleet.Config{Store: db, Publisher: webhooks.FleetPublisher{Service: hooks}, Interval: 200 * time.Millisecond, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	svc.SetFleetNotifier(relay)
	engine := &flakyEngine{Engine: &provisioner.LocalEngine{Root: filepath.Join(dataDir, "zones")}, failing: map[string]bool{}}
	prov, err := provisioner.New(provisioner.Config{
		Engine:       engine,
		Store:        db,
		Tenants:      svc,
		PollInterval: 25 * time.Millisecond,
		Logger:       log,
		Fleet:        relay,
		// As in the server: each pooled tenant gets a role of its own.
		TenantRolePolicy: grants.TenantRolePolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Offboarding as in the embedded default: every tenant's items are in
	// the one profiles.db.
	offboarder, err := offboarding.New(offboarding.Config{Store: db, Tenants: svc, Grants: gs, Sources: sources, Profiles: ps,
		Stacks: prov, PollInterval: 25 * time.Millisecond, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	e.prov = prov
	// Rollouts apply a version of the pool template that replaces its raw
	// bucket (so a rollout halts for approval) and one more resource to
	// dedicated stacks.
	rollSvc, err := rollouts.NewService(rollouts.ServiceConfig{Store: db, Templates: func(kind string) templates.Template {
		if kind == rollouts.KindPool {
			return enginetest.WithBucketName(templates.Pool(), "RawZoneBucket", "cairn-pool-raw-v2")
		}
		return enginetest.WithMarker(templates.Dedicated(), "V2")
	}})
	if err != nil {
		t.Fatal(err)
	}
	rollRunner, err := rollouts.NewRunner(rollouts.RunnerConfig{Store: db, Engine: engine, PollInterval: 25 * time.Millisecond,
		SweepInterval: 200 * time.Millisecond, Logger: log, Fleet: relay})
	if err != nil {
		t.Fatal(err)
	}
	fences := migration.NewFences(db, 100*time.Millisecond, nil, log)
	migrations, err := migration.New(migration.Config{
		Store: db, Tenants: svc, Placements: db, Provisioner: prov, Grants: gs, Fences: fences,
		Zones: migration.LocalZones{Root: filepath.Join(dataDir, "zones")}, Drain: time.Second,
		PollInterval: 25 * time.Millisecond, Logger: log, Fleet: relay,
	})
	if err != nil {
		t.Fatal(err)
	}
	workers := river.NewWorkers()
	prov.Register(workers)
	offboarder.Register(workers)
	migrations.Register(workers)
	rollRunner.Register(workers)
	gs.Register(workers)
	relay.Register(workers)
	ps.Register(workers)
	stop, err := db.StartWorkers(ctx, store.WorkerConfig{
		Workers:      workers,
		PeriodicJobs: slices.Concat(prov.PeriodicJobs(), relay.PeriodicJobs(), rollRunner.PeriodicJobs()),
		PollInterval: 20 * time.Millisecond,
		Logger:       log,
		OnJobDone: func(kind, state string) {
			select {
			case e.jobDone <- kind + ":" + state:
			default:
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = stop(ctx)
	})

	dispatchCtx, stopDispatch := context.WithCancel(context.Background())
	dispatched := make(chan error, 1)
	go func() { dispatched <- hooks.Run(dispatchCtx) }()
	t.Cleanup(func() { stopDispatch(); <-dispatched })
	relayed := make(chan error, 1)
	go func() { relayed <- relay.Run(dispatchCtx) }()
	t.Cleanup(func() { stopDispatch(); <-relayed })

	// Queries without an engine, as in AWS mode: the lake's queries are
	// cmd/server's TestLakeQueries, on the embedded default.
	queries, err := lake.NewQueries(lake.QueriesConfig{Store: db, Dir: filepath.Join(dataDir, "query-results"),
		Locate: func(context.Context, string) (lake.Location, error) {
			return lake.Location{}, lake.ErrQueriesUnavailable
		}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := httpapi.Config{
		Queries: queries,
		Logger:  log, Tenants: svc, Stacks: prov, Grants: gs, Profiles: ps, Sources: sources, Webhooks: hooks, Audit: db, Auth: a, Idempotency: db, Ready: db.Ping,
		Registry: prometheus.NewRegistry(), Usage: db, Meter: e.meter, Rollouts: rollSvc, Drift: db, Attention: db, Plans: planSvc,
		Offboarding: offboarder,
		Migrations:  migrations, Fence: fences,
	}
	for _, o := range opts {
		o(&cfg)
	}
	h, err := httpapi.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	e.url = srv.URL
	if e.admin, _, err = a.MintAdmin(time.Hour); err != nil {
		t.Fatal(err)
	}
	return e
}

// flakyEngine rolls back the first stack of dedicated tenants whose slug
// starts with "fail-", as CloudFormation would report a failed stack, and
// never finishes deleting the stack of one whose slug starts with
// "stuck-", which so stays deprovisioning.
type flakyEngine struct {
	provisioner.Engine
	mu       sync.Mutex
	failing  map[string]bool
	stuck    map[string]bool // stacks whose delete never ends
	deleting map[string]bool // of those, the ones asked to delete
}

func (f *flakyEngine) CreateStack(ctx context.Context, in provisioner.CreateStackInput) error {
	f.mu.Lock()
	if strings.HasPrefix(in.Parameters["TenantSlug"], "fail-") && strings.HasSuffix(in.Token, "-create-1") {
		f.failing[in.Region+"/"+in.Name] = true
	}
	if strings.HasPrefix(in.Parameters["TenantSlug"], "stuck-") {
		if f.stuck == nil {
			f.stuck, f.deleting = map[string]bool{}, map[string]bool{}
		}
		f.stuck[in.Region+"/"+in.Name] = true
	}
	f.mu.Unlock()
	return f.Engine.CreateStack(ctx, in)
}

func (f *flakyEngine) DeleteStack(ctx context.Context, region, name, token string) error {
	f.mu.Lock()
	delete(f.failing, region+"/"+name)
	if f.stuck[region+"/"+name] {
		f.deleting[region+"/"+name] = true
		f.mu.Unlock()
		return nil
	}
	f.mu.Unlock()
	return f.Engine.DeleteStack(ctx, region, name, token)
}

func (f *flakyEngine) Stacks(ctx context.Context, region string) (map[string]provisioner.Stack, error) {
	stacks, err := f.Engine.Stacks(ctx, region)
	f.mu.Lock()
	defer f.mu.Unlock()
	for name, st := range stacks {
		if f.failing[region+"/"+name] {
			st.Status, st.Reason, st.Outputs = provisioner.StackRollbackComplete, "The following resource(s) failed to create: [ProfileTable].", nil
			stacks[name] = st
		}
		if f.deleting[region+"/"+name] {
			st.Status = provisioner.StackDeleteInProgress
			stacks[name] = st
		}
	}
	return stacks, err
}

// resp is a decoded response.
type resp struct {
	status int
	header http.Header
	body   map[string]any
	raw    []byte
}

func (r resp) str(key string) string { s, _ := r.body[key].(string); return s }

// send posts body as is, with exactly the headers given (no Content-Type
// unless one is given); "" values are left out.
func (e *env) send(method, path string, body []byte, headers ...string) resp {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if body == nil {
		req.Body = nil
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] != "" {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	out := resp{status: res.StatusCode, header: res.Header, raw: raw}
	// An NDJSON answer (the audit export) is many objects: raw only.
	if len(raw) > 0 && raw[0] == '{' && res.Header.Get("Content-Type") != "application/x-ndjson" {
		if err := json.Unmarshal(raw, &out.body); err != nil {
			e.t.Fatalf("%s %s: bad JSON %q: %v", method, path, raw, err)
		}
	}
	return out
}

// do sends a request; body is marshalled to JSON unless it is a string.
func (e *env) do(method, path, token string, body any, headers ...string) resp {
	e.t.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		raw = j
	}
	var std []string
	if body != nil {
		std = append(std, "Content-Type", "application/json")
	}
	if token != "" {
		std = append(std, "Authorization", "Bearer "+token)
	}
	return e.send(method, path, raw, append(std, headers...)...)
}

// want fails the test unless r has the status; problem responses must be
// RFC 9457 documents with a request ID.
func (r resp) want(t *testing.T, status int) resp {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.raw)
	}
	if status >= 400 {
		if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
			t.Fatalf("error content type %q: %s", ct, r.raw)
		}
		for _, k := range []string{"type", "title", "detail", "request_id"} {
			if r.str(k) == "" {
				t.Fatalf("problem without %s: %s", k, r.raw)
			}
		}
		if int(r.body["status"].(float64)) != status {
			t.Fatalf("problem status %v, want %d", r.body["status"], status)
		}
	}
	return r
}

func (e *env) onboard(slug string, extra ...map[string]any) resp {
	e.t.Helper()
	body := map[string]any{"name": "Tenant " + slug, "slug": slug, "tier": "pooled", "home_region": "eu-west-1"}
	for _, x := range extra {
		for k, v := range x {
			body[k] = v
		}
	}
	return e.do("POST", "/v1/tenants", e.admin, body)
}

// waitStatus waits, woken by finished jobs, until the tenant has status.
// waitLimit is how long the tests wait for a job's outcome before they
// fail: generous, since it is only reached when something is wrong, and a
// busy machine under the race detector runs jobs many times slower.
const waitLimit = 2 * time.Minute

func (e *env) waitStatus(id, status string) resp {
	e.t.Helper()
	deadline := time.After(waitLimit)
	for {
		r := e.do("GET", "/v1/tenants/"+id, e.admin, nil).want(e.t, 200)
		if r.str("status") == status {
			return r
		}
		select {
		case <-e.jobDone:
		case <-deadline:
			e.t.Fatalf("tenant %s is %s; waited for %s", id, r.str("status"), status)
		}
	}
}

// waitRollout waits for the rollout to be in state.
func (e *env) waitRollout(id, state string) resp {
	e.t.Helper()
	deadline := time.After(waitLimit)
	for {
		r := e.do("GET", "/v1/rollouts/"+id, e.admin, nil).want(e.t, 200)
		if r.str("state") == state {
			return r
		}
		select {
		case <-e.jobDone:
		case <-deadline:
			e.t.Fatalf("rollout %s is %s; waited for %s", id, r.str("state"), state)
		}
	}
}

// activeTenant onboards a tenant and waits for it to be active.
func (e *env) activeTenant(slug string) string {
	e.t.Helper()
	id := e.onboard(slug).want(e.t, 202).str("id")
	e.waitStatus(id, "active")
	return id
}

func (e *env) tenantToken(id string, scopes ...string) string {
	e.t.Helper()
	if len(scopes) == 0 {
		scopes = []string{"profiles:read"}
	}
	tok, _, err := e.auth.MintTenant(id, scopes, time.Hour)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}
