// Package httpapi serves Cairn's REST API, generated from api/openapi.yaml
// as an oapi-codegen strict server (api.gen.go, never edited by hand).
//
// Handlers are thin: they convert API types to domain calls and back. Every
// request is routed once, by chi, and first passes the spec-driven gate
// (authentication, authorization, body limits, request validation) in the
// route chi matched; every error, 404 and 405 included, is answered as
// RFC 9457 application/problem+json with a request ID. Unknown errors are
// logged with the request and tenant IDs and answered as a generic 500;
// their text never reaches the client.
package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cairn-cdp/cairn/api"
	"github.com/cairn-cdp/cairn/internal/attention"
	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/grants"
	"github.com/cairn-cdp/cairn/internal/idempotency"
	"github.com/cairn-cdp/cairn/internal/plans"
	"github.com/cairn-cdp/cairn/internal/profiles"
	"github.com/cairn-cdp/cairn/internal/tenants"
	"github.com/cairn-cdp/cairn/internal/usage"
	"github.com/cairn-cdp/cairn/internal/webhooks"
)

// DefaultMaxBodyBytes is the request body limit unless Config says otherwise.
const DefaultMaxBodyBytes = 1 << 20

// Authority verifies and mints tokens and publishes the verification keys.
type Authority interface {
	Authenticator
	MintTenant(tenantID string, scopes []string, ttl time.Duration) (string, time.Time, error)
	MintAdmin(ttl time.Duration) (string, time.Time, error)
	VerifySignIn(code string) (id string, exp time.Time, err error)
	JWKS() []byte
}

// Config wires the server. Every field but Ready, MaxBodyBytes, PortalOIDC
// and Now is required.
type Config struct {
	Logger      *slog.Logger
	Tenants     *tenants.Service
	Stacks      StackService
	Grants      *grants.Service
	Profiles    *profiles.Service
	Sources     *profiles.Sources
	Webhooks    *webhooks.Service
	Auth        Authority
	Idempotency idempotency.Store
	// Audit is the audit trail: the audit routes read it, and the changes
	// made outside the control-plane database are recorded in it.
	Audit audit.Store
	// Ready reports whether the server can serve (the database answers).
	Ready func(context.Context) error
	// Registry receives the HTTP and ingestion metrics and serves /metrics.
	Registry *prometheus.Registry
	// MaxBodyBytes limits request bodies; default DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// PortalOIDC, if not nil, is offered to the portal for sign-in.
	PortalOIDC *OIDCClient
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Usage answers the usage reports.
	Usage usage.Store
	// Attention lists the fleet's failed stacks and grants.
	Attention attention.Store
	// Meter, if not nil, counts each tenant's requests and accepted events.
	Meter *usage.Meter
	// Rollouts starts and steers template rollouts.
	Rollouts RolloutService
	// Drift, if not nil, shows stacks' drift in the stacks and pools.
	Drift DriftReader
	// Lake, if not nil, answers the lake status; without it the route is
	// 404.
	Lake LakeStatus
	// Queries runs tenants' SQL over their lake; without it the query
	// routes answer 501.
	Queries LakeQueries
	// Plans serves the plan routes and gives each tenant its limits: the
	// counts of segments and webhook endpoints always, the rates and the
	// monthly quota when Limits is set.
	Plans *plans.Service
	// Limits, if not nil, enforces the plans' rates and monthly quota and
	// the budget of refused credentials per client address.
	Limits *Limits
	// Offboarding, if not nil, shows a deprovisioning tenant's offboarding
	// progress on GET /v1/tenants/{id}.
	Offboarding OffboardingReader
	// Migrations moves tenants between tiers.
	Migrations MigrationService
	// Fence, if not nil, admits each ingestion request's writes, refusing
	// them (503) while the tenant's migration fences them.
	Fence IngestFence
}

// Server implements the generated StrictServerInterface.
type Server struct {
	log      *slog.Logger
	tenants  *tenants.Service
	stacks   StackService
	grants   *grants.Service
	profiles *profiles.Service
	sources  *profiles.Sources
	webhooks *webhooks.Service
	audit    audit.Store
	auth     Authority
	ready    func(context.Context) error
	// signIns records the sign-in codes used, so each is used once.
	signIns idempotency.Store
	now     func() time.Time
	// ingestMetrics count the ingestion routes' events.
	ingestMetrics *ingestMetrics
	// portalOIDC is the portal's OIDC client, or nil.
	portalOIDC *OIDCClient
	// usage answers usage reports; meter counts (nil counts nothing).
	usage usage.Reader
	meter *usage.Meter
	// rollouts starts and steers template rollouts.
	rollouts RolloutService
	// drift reads stacks' drift; nil shows none.
	drift       DriftReader
	offboarding OffboardingReader
	// attention lists what in the fleet needs an operator.
	attention attention.Store
	lake      LakeStatus
	queries   LakeQueries
	plans     *plans.Service
	// migrations moves tenants between tiers; fence admits ingestion
	// writes (nil admits all).
	migrations MigrationService
	fence      IngestFence
}

var _ StrictServerInterface = (*Server)(nil)

// NewServer returns the whole API as one http.Handler.
func NewServer(cfg Config) (http.Handler, error) {
	if cfg.Logger == nil || cfg.Tenants == nil || cfg.Stacks == nil || cfg.Grants == nil || cfg.Profiles == nil || cfg.Sources == nil || cfg.Webhooks == nil || cfg.Audit == nil || cfg.Auth == nil || cfg.Idempotency == nil || cfg.Registry == nil || cfg.Usage == nil || cfg.Rollouts == nil || cfg.Attention == nil || cfg.Plans == nil || cfg.Migrations == nil {
		return nil, errors.New("httpapi: Logger, Tenants, Stacks, Grants, Profiles, Sources, Webhooks, Audit, Auth, Idempotency, Registry, Usage, Rollouts, Attention, Plans and Migrations are required")
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Ready == nil {
		cfg.Ready = func(context.Context) error { return nil }
	}
	// One router: chi matches each request to its route once, and the gate
	// runs inside the route it matched (see gate).
	router := chi.NewRouter()
	g, err := newGate(api.Spec, router, cfg.Auth, cfg.Sources, cfg.Tenants, cfg.MaxBodyBytes)
	if err != nil {
		return nil, err
	}
	g.limits = newLimiter(cfg)
	s := &Server{log: cfg.Logger, tenants: cfg.Tenants, stacks: cfg.Stacks, grants: cfg.Grants, profiles: cfg.Profiles, sources: cfg.Sources, webhooks: cfg.Webhooks, audit: cfg.Audit, auth: cfg.Auth, ready: cfg.Ready,
		signIns: cfg.Idempotency, now: cfg.Now,
		ingestMetrics: newIngestMetrics(cfg.Registry), portalOIDC: cfg.PortalOIDC,
		usage: usage.Reader{Store: cfg.Usage}, meter: cfg.Meter, rollouts: cfg.Rollouts, drift: cfg.Drift, attention: cfg.Attention, lake: cfg.Lake, queries: cfg.Queries, plans: cfg.Plans,
		offboarding: cfg.Offboarding, migrations: cfg.Migrations, fence: cfg.Fence}

	problemHandler := func(w http.ResponseWriter, r *http.Request, err error) {
		writeProblem(w, r, toProblem(r, cfg.Logger, err))
	}
	strict := NewStrictHandlerWithOptions(s, nil, StrictHTTPServerOptions{
		RequestErrorHandlerFunc: func(w http.ResponseWriter, r *http.Request, err error) {
			writeProblem(w, r, badRequest("body", err.Error()))
		},
		ResponseErrorHandlerFunc: problemHandler,
	})
	router.NotFound(g.notFound)
	router.MethodNotAllowed(g.methodNotAllowed)
	router.Handle("/metrics", promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{}))
	g.claimPaths(router)
	HandlerWithOptions(strict, ChiServerOptions{
		// Inline middleware runs once chi has matched the route.
		BaseRouter: router.With(g.middleware, func(next http.Handler) http.Handler {
			return idempotent(cfg.Idempotency, cfg.Now, cfg.Logger, next)
		}),
		ErrorHandlerFunc: func(w http.ResponseWriter, r *http.Request, err error) {
			writeProblem(w, r, badRequest("parameters", err.Error()))
		},
	})
	return observe(cfg.Logger, newMetrics(cfg.Registry), cfg.Meter, router), nil
}

func (s *Server) GetHealth(context.Context, GetHealthRequestObject) (GetHealthResponseObject, error) {
	return GetHealth200JSONResponse{Status: Ok}, nil
}

func (s *Server) GetReady(ctx context.Context, _ GetReadyRequestObject) (GetReadyResponseObject, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := s.ready(ctx); err != nil {
		s.log.WarnContext(ctx, "not ready", "err", err)
		return nil, newProblem(http.StatusServiceUnavailable, "not-ready", "Not ready", "The database does not answer.")
	}
	return GetReady200JSONResponse{Status: Ok}, nil
}

func (s *Server) GetJWKS(context.Context, GetJWKSRequestObject) (GetJWKSResponseObject, error) {
	return jwksResponse(s.auth.JWKS()), nil
}

// jwksResponse writes the key set as the authority rendered it.
type jwksResponse []byte

func (j jwksResponse) VisitGetJWKSResponse(w http.ResponseWriter) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(j)
	return err
}
