// Command server runs the Cairn control plane.
//
//	server [flags]              serve the API (the default)
//	server migrate [flags]      bring the database schema up to date and exit
//	server token --admin        print an ISV admin token
//	server token --tenant ID [--scopes a,b] [--ttl 1h]
//	                            print a tenant token
//	server login-link [--url U] print a one-time sign-in link to the admin portal
//	server backup DIR           back up the embedded default while it runs
//	server restore [--force] DIR
//	                            restore a backup into the data directory
//	server keys rotate          sign with a new key; the old one verifies until its tokens expire
//	server healthcheck [--url U]
//	                            exit 0 if a running server's /readyz answers 200
//	server help [command]       print the commands, or a command's flags
//
// Every flag is also a CAIRN_* environment variable; see the README.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/riverqueue/river"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/auth"
	"github.com/cairn-cdp/cairn/internal/awsclient"
	"github.com/cairn-cdp/cairn/internal/drift"
	"github.com/cairn-cdp/cairn/internal/fleet"
	"github.com/cairn-cdp/cairn/internal/grants"
	"github.com/cairn-cdp/cairn/internal/grants/lakeformation"
	"github.com/cairn-cdp/cairn/internal/httpapi"
	"github.com/cairn-cdp/cairn/internal/lake"
	"github.com/cairn-cdp/cairn/internal/migration"
	"github.com/cairn-cdp/cairn/internal/offboarding"
	"github.com/cairn-cdp/cairn/internal/placement"
	"github.com/cairn-cdp/cairn/internal/plans"
	"github.com/cairn-cdp/cairn/internal/portal"
	"github.com/cairn-cdp/cairn/internal/profiles"
	"github.com/cairn-cdp/cairn/internal/provisioner"
	"github.com/cairn-cdp/cairn/internal/provisioner/cfn"
	"github.com/cairn-cdp/cairn/internal/ratelimit"
	"github.com/cairn-cdp/cairn/internal/rollouts"
	"github.com/cairn-cdp/cairn/internal/sealed"
	"github.com/cairn-cdp/cairn/internal/store"
	"github.com/cairn-cdp/cairn/internal/store/backend"
	"github.com/cairn-cdp/cairn/internal/tenants"
	"github.com/cairn-cdp/cairn/internal/tracing"
	"github.com/cairn-cdp/cairn/internal/usage"
	"github.com/cairn-cdp/cairn/internal/webhooks"
	"github.com/cairn-cdp/cairn/templates"
	"github.com/cairn-cdp/cairn/web"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "cairn:", err)
		}
		os.Exit(1)
	}
}

// run is the whole program; tests call it with their own arguments,
// environment and streams. It returns when ctx is done (after a graceful
// shutdown) or on a fatal error.
func run(ctx context.Context, args []string, getenv func(string) string, _ io.Reader, stdout, stderr io.Writer) error {
	err := dispatch(ctx, args, getenv, stdout, stderr)
	if errors.Is(err, errHelpShown) {
		return nil
	}
	return err
}

// dispatch runs the subcommand args name ("serve" if none).
func dispatch(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		cfg, err := parseConfig("server", cmdServe, args, getenv, stdout, stderr, nil)
		if err != nil {
			return err
		}
		return serve(ctx, cfg, stdout, stderr, hooks{})
	case "migrate":
		cfg, err := parseConfig("server migrate", cmdMigrate, args, getenv, stdout, stderr, nil)
		if err != nil {
			return err
		}
		return migrate(ctx, cfg, stderr)
	case "token":
		return token(ctx, args, getenv, stdout, stderr)
	case "login-link":
		return loginLink(ctx, args, getenv, stdout, stderr)
	case "backup":
		return backupCmd(ctx, args, getenv, stdout, stderr)
	case "restore":
		return restoreCmd(ctx, args, getenv, stdout, stderr)
	case "keys":
		return keysCommand(ctx, args, getenv, stdout, stderr)
	case "healthcheck":
		return healthcheck(ctx, args, getenv, stdout, stderr)
	case "help":
		// "server help" is "server --help"; "server help token" is
		// "server token --help".
		if len(args) > 0 && args[0] != "serve" {
			return dispatch(ctx, []string{args[0], "--help"}, getenv, stdout, stderr)
		}
		return dispatch(ctx, []string{"--help"}, getenv, stdout, stderr)
	default:
		return fmt.Errorf("unknown command %q (want serve, migrate, token, login-link, keys, backup, restore, healthcheck or help)", cmd)
	}
}

// loadKeyring loads the key-encryption key that seals stored secrets: the
// variable's, the file's, or the one generated in the data directory.
func loadKeyring(cfg *config) (*sealed.Keyring, error) {
	return sealed.Load(sealed.Config{Keys: cfg.KeyEncryptionKey, File: cfg.KeyEncryptionKeyFile, DataDir: cfg.DataDir})
}

func newLogger(cfg *config, w io.Writer) *slog.Logger {
	level, _ := parseLevel(cfg.LogLevel) // validated by parseConfig
	// A line logged with a request's or a job's context names its trace.
	return slog.New(tracing.LogHandler{Handler: slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})})
}

func openStore(ctx context.Context, cfg *config, log *slog.Logger) (store.Backend, error) {
	db, err := backend.Open(ctx, cfg.DatabaseURL, cfg.DataDir, log)
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate: %w", err)
	}
	return db, nil
}

// openServingStore opens the store that serve runs on: migrated first
// (under goose's lock) with cfg.Migrate, otherwise only checked, so that a
// replica started with --migrate=false never serves a schema that its own
// migrations have not reached and never migrates while others serve.
func openServingStore(ctx context.Context, cfg *config, log *slog.Logger) (store.Backend, error) {
	if cfg.Migrate {
		return openStore(ctx, cfg, log)
	}
	db, err := backend.Open(ctx, cfg.DatabaseURL, cfg.DataDir, log)
	if err != nil {
		return nil, err
	}
	if err := db.CheckSchema(ctx); err != nil {
		db.Close()
		if errors.Is(err, store.ErrSchemaBehind) {
			return nil, fmt.Errorf("%w: run \"server migrate\" of this version first, or serve with --migrate (%s=true)", err, "CAIRN_MIGRATE")
		}
		return nil, err
	}
	return db, nil
}

func migrate(ctx context.Context, cfg *config, stderr io.Writer) error {
	log := newLogger(cfg, stderr)
	db, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	log.InfoContext(ctx, "database schema is up to date")
	return db.Close()
}

// newAuthority signs and verifies with the database's signing keys (see
// signingKeys). A serving authority (serving set) reloads them while it
// runs and also trusts the configured OIDC issuer; a command's mints with
// the keys of the moment.
func newAuthority(ctx context.Context, cfg *config, log *slog.Logger, db store.Backend, serving bool) (*auth.Authority, error) {
	keys, err := signingKeys(ctx, cfg, db, log)
	if err != nil {
		return nil, err
	}
	acfg := auth.Config{Issuer: cfg.Issuer, Audience: cfg.Audience, Logger: log,
		MaxTenantLifetime: cfg.MaxTenantTokenTTL, MaxAdminLifetime: cfg.MaxAdminTokenTTL}
	if !serving {
		set, err := keys.SigningKeys(ctx)
		if err != nil {
			return nil, err
		}
		acfg.VerifyKeys = set.Verify
		return auth.New(ctx, set.Signing, acfg)
	}
	if cfg.OIDCIssuer != "" {
		acfg.External = &auth.ExternalConfig{
			Issuer:        cfg.OIDCIssuer,
			JWKSURL:       cfg.OIDCJWKSURL,
			Audience:      cfg.OIDCAudience,
			AudienceClaim: cfg.OIDCAudClaim,
			TenantClaim:   cfg.OIDCTenantClaim,
			ScopeClaim:    cfg.OIDCScopeClaim,
		}
	}
	return auth.NewFromSource(ctx, keys, acfg)
}

// portalOIDC is the portal's OIDC client, or nil when none is configured.
func portalOIDC(cfg *config) *httpapi.OIDCClient {
	if cfg.OIDCClientID == "" {
		return nil
	}
	return &httpapi.OIDCClient{
		Issuer: cfg.OIDCIssuer, AuthorizationURL: cfg.OIDCAuthURL, TokenURL: cfg.OIDCTokenURL,
		ClientID: cfg.OIDCClientID, Scopes: strings.Fields(cfg.OIDCScopes),
		UseIDToken: cfg.OIDCPortalToken == "id_token",
	}
}

// token prints a token for operators, signed with the database's signing
// key; a tenant token is minted only for a tenant the database knows and
// that is not offboarded (see checkTokenTenant). Every token minted is
// recorded in the audit trail (actor "cli") before it is printed: a token
// whose minting cannot be recorded is not handed out.
func token(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var (
		admin  bool
		tenant string
		scopes string
		ttl    time.Duration
	)
	cfg, err := parseConfig("server token", cmdToken, args, getenv, stdout, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&admin, "admin", false, "mint an ISV admin token")
		fs.StringVar(&tenant, "tenant", "", "mint a token for this tenant ID")
		fs.StringVar(&scopes, "scopes", "profiles:read,profiles:write,events:write,segments:read,segments:write,webhooks:read,webhooks:write", "tenant token scopes, comma-separated")
		fs.DurationVar(&ttl, "ttl", time.Hour, "token lifetime")
	})
	if err != nil {
		return err
	}
	if admin == (tenant != "") {
		return errors.New("token: give exactly one of --admin and --tenant ID")
	}
	log := newLogger(cfg, stderr)
	db, err := openStore(ctx, cfg, log)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	defer db.Close()
	if tenant != "" {
		if err := checkTokenTenant(ctx, cfg, db, tenant); err != nil {
			return fmt.Errorf("token: %w", err)
		}
	}
	a, err := newAuthority(ctx, cfg, log, db, false)
	if err != nil {
		return err
	}
	var (
		tok string
		exp time.Time
		rec = audit.Event{Actor: "cli", Action: "token.mint", Outcome: audit.OutcomeOK}
	)
	if admin {
		tok, exp, err = a.MintAdmin(ttl)
		rec.TargetType, rec.TargetID = "admin", "admin"
	} else {
		list := strings.Split(scopes, ",")
		tok, exp, err = a.MintTenant(tenant, list, ttl)
		rec.TenantID, rec.TargetType, rec.TargetID = tenant, "tenant", tenant
		rec = rec.With("scopes", strings.Join(list, ","))
	}
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	if err := db.AuditAppend(ctx, rec.With("expires_at", exp.UTC().Format(time.RFC3339))); err != nil {
		return fmt.Errorf("token: record the token in the audit trail: %w", err)
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}

// checkTokenTenant refuses to mint for a tenant the database does not have
// or that was offboarded: the gate would refuse its token anyway, and an
// operator should learn so now rather than from a 401 later. A suspended or
// still provisioning tenant gets one, as the gate judges those per request.
func checkTokenTenant(ctx context.Context, cfg *config, db store.Backend, id string) error {
	t, err := tenants.NewService(db, nil).Get(ctx, id)
	switch {
	case errors.Is(err, tenants.ErrNotFound):
		return fmt.Errorf("no tenant has the ID %q in %s", id, describeDB(cfg.DatabaseURL))
	case err != nil:
		return fmt.Errorf("read tenant %s: %w", id, err)
	case !t.Status.Live():
		return fmt.Errorf("tenant %s was offboarded (it is %s); it gets no more tokens", id, t.Status)
	}
	return nil
}

// loginLink prints a one-time sign-in link to the admin portal, signed
// like a token; the server that the link names records the code's single
// use when the portal exchanges it.
func loginLink(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var base string
	cfg, err := parseConfig("server login-link", cmdLoginLink, args, getenv, stdout, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&base, "url", "", "the server's base URL (default http://<addr>)")
	})
	if err != nil {
		return err
	}
	if base == "" {
		base = "http://" + cfg.Addr
	}
	log := newLogger(cfg, stderr)
	db, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer db.Close()
	a, err := newAuthority(ctx, cfg, log, db, false)
	if err != nil {
		return err
	}
	link, err := signInLink(a, base)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, link)
	return err
}

// signInLink returns the portal's sign-in URL with a fresh one-time code in
// its fragment, which browsers never send to a server or a Referer.
func signInLink(a *auth.Authority, base string) (string, error) {
	code, _, err := a.MintSignIn()
	if err != nil {
		return "", fmt.Errorf("login-link: %w", err)
	}
	return strings.TrimRight(base, "/") + "/sign-in#code=" + code, nil
}

// serve wires the server explicitly, in order: database, stores, services,
// jobs, handler; then serves until ctx is done and shuts down gracefully.
// hooks lets tests observe a running server; nil fields are ignored.
type hooks struct {
	// ready receives the bound address once the server listens.
	ready chan<- string
	// connState is called on every connection state change.
	connState func(net.Conn, http.ConnState)
	// lakeNow, if set, is the refinery's clock (tests close partitions).
	lakeNow func() time.Time
	// lake, if set, receives the refinery (tests run it at will).
	lake chan<- *lake.Service
	// unmetered serves with neither metering nor rate limits: the
	// baseline benchmarks measure their cost against.
	unmetered bool
}

func serve(ctx context.Context, cfg *config, stdout, stderr io.Writer, h hooks) error {
	log := newLogger(cfg, stderr)
	// Traces, when the OTEL_* variables turn them on: flushed at the very
	// end, after the last job and request.
	stopTracing, err := tracing.Setup(ctx, os.Getenv)
	if err != nil {
		return err
	}
	started := ctx // ctx is replaced below (and nil when joining fails)
	defer func() {
		flush, cancel := context.WithTimeout(context.WithoutCancel(started), 5*time.Second)
		defer cancel()
		if err := stopTracing(flush); err != nil {
			log.Warn("traces not flushed", "err", err)
		}
	}()

	if cfg.DatabaseURL == "" {
		unlock, err := lockDataDir(cfg.DataDir) // restore will not replace it under us
		if err != nil {
			return err
		}
		defer unlock()
	}
	db, err := openServingStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer db.Close()
	// Before anything touches the data directory: the local engine is
	// single-node. ctx ends, too, if the lease is lost for good.
	ctx, leave, liveReplicas, err := joinReplicas(ctx, cfg, db, log)
	if err != nil {
		return err
	}
	defer leave()

	if err := discoverOIDC(ctx, cfg, http.DefaultClient); err != nil {
		return err
	}
	authority, err := newAuthority(ctx, cfg, log, db, true)
	if err != nil {
		return err
	}
	tenantSvc := tenants.NewService(db, nil)
	tenantSvc.SetLogger(log)
	planSvc := plans.NewService(db, nil)
	tenantSvc.SetPlans(planSvc)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "cairn_replicas_live",
		Help: "Replicas with a live lease on the control-plane database, this one included, as this replica last counted them; each takes that share of every rate limit.",
	}, func() float64 { return float64(liveReplicas()) }))
	jobMetrics := newJobMetrics(reg, db)

	// One set of AWS client settings for every adapter, their calls
	// counted for the metrics.
	calls := &awsclient.CallCounter{}
	if cfg.Cloud == "aws" {
		reg.MustRegister(awsCallsCollector{calls})
	}
	awsSettings := cfg.awsSettings(calls)
	engine, catalog, creds, err := newCloud(ctx, cfg, awsSettings, liveReplicas)
	if err != nil {
		return err
	}

	// Where each tenant's data lives, read from the database once per
	// request by the grants broker, the profile store and the raw zone.
	placements := placement.NewLocator(db)
	grantSvc, err := grants.NewService(grants.Config{
		Store: db.Grants(), Catalog: catalog, Credentials: creds, Tenants: tenantSvc, Placements: placements, Logger: log,
	})
	if err != nil {
		return err
	}
	locate := profiles.PlacementLocator{Placements: placements}
	// The meter counts each tenant's usage in memory and flushes it every
	// few seconds. It stops after everything that counts (requests, the
	// webhook dispatcher: their stops are deferred after this one, so run
	// before it) and flushes a last time before the database closes.
	meter := usage.NewMeter(db, nil, log)
	meterCtx, stopMeter := context.WithCancel(context.WithoutCancel(ctx))
	meterDone := make(chan struct{})
	go func() {
		defer close(meterDone)
		meter.Run(meterCtx, usage.DefaultFlushInterval)
	}()
	defer func() { stopMeter(); <-meterDone }()

	profileStore, rawZone, closeProfiles, err := newProfileStores(ctx, cfg, locate, awsSettings)
	if err != nil {
		return err
	}
	defer closeProfiles()
	counting := meter
	if h.unmetered {
		counting = nil // counts nothing: a nil *usage.Meter is a no-op
	}
	rawZone = meteredRawZone{RawZone: rawZone, meter: counting}
	profileSvc := profiles.NewService(profileStore, rawZone, nil)
	sources := profiles.NewSources(db, nil)
	// The profile counts are sampled: by this replica when it changes
	// them, by a periodic job for every tenant.
	sampler, stopSampler, err := newProfileSampler(db, profileSvc, tenantSvc, log)
	if err != nil {
		return err
	}
	defer stopSampler()

	keys, err := keyEncryptionKeys(ctx, cfg, db)
	if err != nil {
		return err
	}
	if cfg.DatabaseURL != "" && cfg.KEKKMSKey == "" && cfg.KeyEncryptionKey == "" && cfg.KeyEncryptionKeyFile == "" {
		log.WarnContext(ctx, "the key-encryption key is this machine's own file in the data directory; replicas sharing the database must share one key",
			"key_id", keys.KeyID(), "set", sealed.EnvKey+" or "+sealed.EnvKeyFile)
	}
	guard := &webhooks.Guard{AllowHTTP: cfg.WebhookAllowHTTP, Allow: cfg.webhookAllow}
	webhookSvc, err := webhooks.New(webhooks.Config{
		Store: db, Sealer: keys, Guard: guard, Sender: &webhooks.Sender{Guard: guard, Timeout: webhooks.DefaultTimeout}, Logger: log,
		OnAttempt: meterDeliveries(counting),
	})
	if err != nil {
		return err
	}
	// Secrets an older version stored as plaintext are sealed now, before
	// anything is served.
	if n, err := webhookSvc.SealStored(ctx); err != nil {
		return fmt.Errorf("seal stored webhook secrets: %w", err)
	} else if n > 0 {
		log.InfoContext(ctx, "sealed the webhook secrets an older version stored in plaintext", "endpoints", n, "key_id", keys.KeyID())
	}
	// Segment transitions and profile changes go out as webhooks.
	profileSvc.SetOutbox(noticeOutbox{webhookSvc})
	// So do tenants' lifecycle and stacks' failures, through the fleet
	// outbox: relayed at once after a change on this replica, and by the
	// periodic job.
	fleetRelay, err := fleet.NewRelay(fleet.Config{Store: db, Publisher: webhooks.FleetPublisher{Service: webhookSvc}, Logger: log})
	if err != nil {
		return err
	}
	tenantSvc.SetFleetNotifier(fleetRelay)

	prov, err := provisioner.New(provisioner.Config{
		Engine: engine, Store: db, Tenants: tenantSvc, PollInterval: cfg.StackPollInterval, Logger: log,
		Fleet: fleetRelay, Busy: lakeRefining(db),
		// Each pooled tenant gets a role of its own, the principal its lake
		// grants and its credentials are on.
		TenantRolePolicy: grants.TenantRolePolicy, TenantRoleBoundary: cfg.TenantRoleBoundary,
	})
	if err != nil {
		return err
	}

	rolloutTemplates, err := loadRolloutTemplates(cfg.RolloutTemplates)
	if err != nil {
		return err
	}
	rolloutSvc, err := rollouts.NewService(rollouts.ServiceConfig{Store: db, Templates: rolloutTemplates})
	if err != nil {
		return err
	}
	rolloutRunner, err := rollouts.NewRunner(rollouts.RunnerConfig{Store: db, Engine: engine, PollInterval: cfg.StackPollInterval, Logger: log, Fleet: fleetRelay})
	if err != nil {
		return err
	}

	// Tenants move between tiers through durable jobs; the fences keep
	// their writes out for the switch.
	fences := migration.NewFences(db, 0, nil, log)
	zones, err := newMigrationZones(ctx, cfg, profileStore, awsSettings)
	if err != nil {
		return err
	}
	migrations, err := migration.New(migration.Config{
		Store: db, Tenants: tenantSvc, Placements: db, Provisioner: prov, Grants: grantSvc, Fences: fences, Zones: zones,
		Drain: cfg.MigrationDrain, PollInterval: cfg.StackPollInterval, Logger: log, Fleet: fleetRelay,
	})
	if err != nil {
		return err
	}
	fencesCtx, stopFences := context.WithCancel(ctx)
	fencesDone := make(chan struct{})
	go func() {
		defer close(fencesDone)
		fences.Run(fencesCtx)
	}()
	defer func() { stopFences(); <-fencesDone }()

	detector, err := drift.New(drift.Config{Store: db, Engine: engine, Interval: cfg.DriftInterval, Logger: log, Fleet: fleetRelay})
	if err != nil {
		return err
	}

	// The refinery (Athena in AWS mode, DuckDB otherwise): erasures reach
	// its zones.
	lakeSvc, lakeEngine, closeLake, err := newLake(ctx, cfg, awsSettings, db, profileSvc, grantSvc, prov, placements, fences, tenantSvc.Get, h.lakeNow)
	if err != nil {
		return fmt.Errorf("lake: %w", err)
	}
	defer closeLake()
	// Tenants' SQL over their lake: the DuckDB sandbox in the embedded
	// default, Athena with each tenant's own credentials in AWS mode.
	querySvc, err := newQueries(cfg, db, lakeEngine, grantSvc, placements, fences, tenantSvc.Get, counting)
	if err != nil {
		return fmt.Errorf("queries: %w", err)
	}
	offboarder, err := offboarding.New(offboarding.Config{
		Store: db, Tenants: tenantSvc, Grants: grantSvc, Sources: sources, Profiles: profileSvc, Stacks: prov,
		// In AWS mode a dedicated tenant's items are in its own table.
		DedicatedTables: cfg.Cloud == "aws",
		PollInterval:    cfg.StackPollInterval, Logger: log,
		Extra: []offboarding.Step{{Name: "forget_queries", Run: querySvc.ForgetTenant}},
	})
	if err != nil {
		return err
	}

	workers := river.NewWorkers()
	prov.Register(workers)
	offboarder.Register(workers)
	rolloutRunner.Register(workers)
	migrations.Register(workers)
	detector.Register(workers)
	grantSvc.Register(workers)
	profileSvc.Register(workers)
	fleetRelay.Register(workers)
	querySvc.Register(workers)
	registerMaintenance(workers, db)
	sweeper := &audienceSweeper{tenants: tenantSvc, profiles: profileSvc}
	river.AddWorker(workers, sweeper)
	periodic := slices.Concat(maintenanceJobs(), audienceJobs(), usageJobs(), prov.PeriodicJobs(), grantSvc.PeriodicJobs(), fleetRelay.PeriodicJobs(),
		rolloutRunner.PeriodicJobs(), detector.PeriodicJobs(), migrations.PeriodicJobs())
	var lakeStatus httpapi.LakeStatus
	if lakeSvc != nil {
		profileSvc.SetZoneEraser(lakeSvc)
		lakeSvc.Register(workers)
		river.AddWorker(workers, &lakeSweeper{tenants: tenantSvc, store: db})
		periodic = append(periodic, lakeJobs(cfg.LakeInterval)...)
		lakeStatus = lakeSvc
		if h.lake != nil {
			h.lake <- lakeSvc
		}
	}
	sink, err := usageSink(ctx, cfg, awsSettings)
	if err != nil {
		return err
	}
	river.AddWorker(workers, &usageReporter{r: &usage.Reporter{Store: db, Sink: sink, Notify: fleetRelay.Notify, Logger: log}})
	river.AddWorker(workers, &profileSampler{s: sampler})
	stopWorkers, err := db.StartWorkers(ctx, store.WorkerConfig{
		Workers:      workers,
		PeriodicJobs: periodic,
		MaxWorkers:   cfg.MaxWorkers,
		PollInterval: cfg.JobPollInterval,
		Logger:       log,
		OnJobDone:    jobMetrics.done,
	})
	if err != nil {
		return fmt.Errorf("start workers: %w", err)
	}

	// The dispatcher runs until shutdown, on a context of its own so that
	// it stops after the HTTP server: requests in flight may enqueue.
	dispatchCtx, stopDispatch := context.WithCancel(context.WithoutCancel(ctx))
	dispatchDone := make(chan struct{})
	var dispatchErr error
	go func() {
		defer close(dispatchDone)
		dispatchErr = webhookSvc.Run(dispatchCtx)
	}()
	defer func() { stopDispatch(); <-dispatchDone }() // before the database closes
	// The relay's immediate passes stop with the dispatcher; what they
	// leave, the periodic job relays on whichever replica runs it.
	relayDone := make(chan struct{})
	go func() {
		defer close(relayDone)
		_ = fleetRelay.Run(dispatchCtx) // returns nil when stopped; passes log their errors
	}()
	defer func() { stopDispatch(); <-relayDone }()
	// One audience sweep at start, on this replica: what a crash left in
	// the profile store's outboxes and queues goes out now, not when River
	// elects a leader and its periodic job comes round.
	sweepDone := make(chan struct{})
	go func() {
		defer close(sweepDone)
		if err := sweeper.Work(dispatchCtx, nil); err != nil && dispatchCtx.Err() == nil {
			log.Error("audience sweep at start", "err", err)
		}
	}()
	defer func() { stopDispatch(); <-sweepDone }()

	handler, err := httpapi.NewServer(httpapi.Config{
		Logger:       log,
		Tenants:      tenantSvc,
		Stacks:       prov,
		Grants:       grantSvc,
		Profiles:     profileSvc,
		Sources:      sources,
		Webhooks:     webhookSvc,
		Audit:        db,
		Auth:         authority,
		Idempotency:  db,
		Ready:        db.Ping,
		Registry:     reg,
		MaxBodyBytes: cfg.MaxBodyBytes,
		PortalOIDC:   portalOIDC(cfg),
		Usage:        db,
		Meter:        counting,
		Rollouts:     rolloutSvc,
		Drift:        db,
		Offboarding:  offboarder,
		Attention:    db,
		Lake:         lakeStatus,
		Queries:      querySvc,
		Plans:        planSvc,
		Limits:       limits(cfg, liveReplicas, h),
		Migrations:   migrations,
		Fence:        fences,
	})
	if err != nil {
		return err
	}
	var connect []string
	if cfg.OIDCClientID != "" {
		origin, _ := portal.Origin(cfg.OIDCTokenURL) // validated with the config
		connect = append(connect, origin)
	}
	handler, err = portal.Handler(web.Dist(), handler, connect...)
	if err != nil {
		return fmt.Errorf("portal: %w", err)
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ConnState:         h.connState,
	}
	url := "http://" + ln.Addr().String()
	fmt.Fprintf(stdout, "Cairn is serving on %s\n", url)
	if cfg.DatabaseURL == "" {
		fmt.Fprintf(stdout, "Get an admin token with: go run ./cmd/server token --admin --data-dir %s\n", cfg.DataDir)
	} else {
		// The signing keys are in the database; the URL may hold a password.
		fmt.Fprintln(stdout, "Get an admin token with: go run ./cmd/server token --admin --database-url \"$CAIRN_DATABASE_URL\" (with this server's key-encryption key)")
	}
	if cfg.DatabaseURL == "" {
		// The embedded default is one person's server: hand them the portal.
		link, err := signInLink(authority, url)
		if err != nil {
			ln.Close()
			return err
		}
		fmt.Fprintf(stdout, "Sign in to the admin portal (the link works once, for %s): %s\n", auth.SignInTTL, link)
	}
	log.InfoContext(ctx, "serving", "url", url, "database", describeDB(cfg.DatabaseURL))
	if h.ready != nil {
		h.ready <- ln.Addr().String()
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	log.Info("shutting down: finishing in-flight requests and jobs")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	httpErr := srv.Shutdown(shutdownCtx)
	stopDispatch()
	select {
	case <-dispatchDone:
	case <-shutdownCtx.Done():
		return errors.Join(httpErr, errors.New("webhook dispatcher: attempts still in flight at the shutdown timeout"), stopWorkers(shutdownCtx))
	}
	jobsErr := stopWorkers(shutdownCtx)
	return errors.Join(leaseLost(ctx), httpErr, dispatchErr, jobsErr)
}

// limits are the rate limits the configuration turns on, each replica
// taking its share of them (live counts the replicas); nil for none.
func limits(cfg *config, live func() int, h hooks) *httpapi.Limits {
	if !cfg.RateLimits || h.unmetered {
		return nil
	}
	return &httpapi.Limits{
		Shares:     live,
		Proxies:    cfg.trustedProxies,
		FailedAuth: ratelimit.Limit{Rate: float64(cfg.FailedAuthPerMinute) / 60, Burst: cfg.FailedAuthBurst},
	}
}

// newCloud returns the provisioning engine, the governance catalog and the
// credential issuer the configuration names, the AWS ones with settings;
// live counts the replicas dividing CloudFormation's budget.
func newCloud(ctx context.Context, cfg *config, settings awsclient.Settings, live func() int) (provisioner.Engine, grants.Catalog, grants.CredentialIssuer, error) {
	switch cfg.Cloud {
	case "local":
		root := filepath.Join(cfg.DataDir, "zones")
		return &provisioner.LocalEngine{Root: root}, &grants.LocalCatalog{Root: root}, grants.LocalCredentials{}, nil
	case "aws":
		cloud, err := cfn.New(ctx, cfn.Config{AWS: settings, RoleARN: cfg.StackRoleARN})
		if err != nil {
			return nil, nil, nil, err
		}
		// Every CloudFormation call of this replica (the poller, rollouts,
		// drift) shares one budget per Region, of which each live replica
		// takes its share; the local engine has none.
		engine := provisioner.Throttle(cloud, provisioner.ThrottleConfig{Rate: float64(cfg.CFNCallRate), Burst: cfg.CFNCallRate, Shares: live})
		lfCfg := lakeformation.Config{AWS: settings}
		catalog, err := lakeformation.NewCatalog(ctx, lfCfg)
		if err != nil {
			return nil, nil, nil, err
		}
		sts, err := lakeformation.NewSTS(ctx, lfCfg)
		if err != nil {
			return nil, nil, nil, err
		}
		return engine, catalog, sts, nil
	default:
		return nil, nil, nil, fmt.Errorf("cloud %q: want local or aws", cfg.Cloud)
	}
}

// loadRolloutTemplates returns the templates rollouts apply: those of dir
// where it has them (read once, at start), the embedded ones otherwise.
func loadRolloutTemplates(dir string) (func(kind string) templates.Template, error) {
	byKind := map[string]templates.Template{
		rollouts.KindDedicated: templates.Dedicated(),
		rollouts.KindPool:      templates.Pool(),
	}
	if dir != "" {
		for kind, name := range map[string]string{rollouts.KindDedicated: templates.DedicatedFile, rollouts.KindPool: templates.PoolFile} {
			body, err := os.ReadFile(filepath.Join(dir, name))
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("rollout templates: %w", err)
			}
			byKind[kind] = templates.Parse(name, string(body))
		}
	}
	return func(kind string) templates.Template { return byKind[kind] }, nil
}

func describeDB(url string) string {
	if url == "" {
		return "embedded sqlite"
	}
	return "postgres"
}
