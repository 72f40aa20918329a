package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/go-chi/chi/v5"

	"github.com/cairn-cdp/cairn/internal/auth"
	"github.com/cairn-cdp/cairn/internal/jsonptr"
	"github.com/cairn-cdp/cairn/internal/profiles"
	"github.com/cairn-cdp/cairn/internal/tenants"
)

// scopeAdmin is the scope of ISV admin tokens.
const scopeAdmin = "admin"

// gate is the spec-driven front door of the API. chi routes each request
// once (404 and 405 otherwise, see notFound and methodNotAllowed); the
// gate runs in the route it found, as the route's middleware, and, in
// order: finds its OpenAPI operation by the route's pattern, refuses a
// client address that sent too many refused credentials (429, limits.go),
// authenticates the bearer token (401), authorizes it against the
// operation's security requirements and the {tenant_id} in the path (403,
// or 404 for another tenant's resources so that tenant IDs cannot be
// probed), applies the tenant's plan's rates (429, limits.go), reads the
// body under the size limit (413), checks its media type (415) and
// validates the request against the spec with kin-openapi (400, naming the
// field).
type gate struct {
	// routes are the document's operations by method and path template,
	// which are chi's route patterns too.
	routes map[string]*routers.Route
	// mux is the router the gate runs in, for the methods a path allows.
	mux     *chi.Mux
	auth    Authenticator
	keys    WriteKeyAuthenticator
	tenants TenantReader
	maxBody int64
	// formats are the document's format validators, for each request.
	formats []openapi3.SchemaValidationOption
	// scopes are the scope alternatives of each operation that takes a
	// bearer token (see Scopes).
	scopes map[*openapi3.Operation][][]string
	// limits enforces the plans' rates and the budget of refused
	// credentials per client address (limits.go); nil enforces nothing.
	limits *limiter
}

// WriteKeyAuthenticator maps a source's write key to its tenant.
type WriteKeyAuthenticator interface {
	Authenticate(ctx context.Context, key string) (profiles.Source, error)
}

// writeKeyScheme is the security scheme of the Segment-compatible routes:
// HTTP Basic with the write key as the user name.
const writeKeyScheme = "writeKey"

// TenantReader is what the gate needs to refuse tokens of tenants that are
// suspended or gone: the tenant as read at most tenants.AdmissionMaxAge ago.
type TenantReader interface {
	Admitted(ctx context.Context, id string) (tenants.Tenant, error)
}

// Authenticator verifies bearer tokens.
type Authenticator interface {
	Verify(ctx context.Context, token string) (auth.Principal, error)
}

func newGate(spec []byte, mux *chi.Mux, a Authenticator, keys WriteKeyAuthenticator, t TenantReader, maxBody int64) (*gate, error) {
	doc, err := openapi3.NewLoader().LoadFromData(spec)
	if err != nil {
		return nil, fmt.Errorf("load spec: %w", err)
	}
	// The document's own, not kin-openapi's global registry: servers made
	// side by side (replicas in tests) must not write one map while
	// another validates with it.
	doc.SetStringFormatValidator("email", openapi3.NewCallbackValidator(func(s string) error {
		if !tenants.ValidEmail(s) {
			return errors.New("not a plain e-mail address")
		}
		return nil
	}))
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("validate spec: %w", err)
	}
	scopes, err := operationScopes(doc)
	if err != nil {
		return nil, fmt.Errorf("spec scopes: %w", err)
	}
	routes := map[string]*routers.Route{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			routes[method+" "+path] = &routers.Route{Spec: doc, Path: path, PathItem: item, Method: method, Operation: op}
		}
	}
	return &gate{routes: routes, mux: mux, auth: a, keys: keys, tenants: t, maxBody: maxBody, formats: doc.GetSchemaValidationOptions(), scopes: scopes}, nil
}

// middleware is the gate as the middleware of the routes chi matched.
func (g *gate) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, p := g.admit(w, r)
		if p != nil {
			writeProblem(w, r, p)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// notFound answers a request that no route matches.
func (g *gate) notFound(w http.ResponseWriter, r *http.Request) { writeProblem(w, r, errNotFound) }

// methodNotAllowed answers a request whose path has routes, but none for
// its method (see claimPaths): a CORS preflight of a route browsers call,
// or 405. A method chi does not know on a path without routes is a 404, as
// on any path.
func (g *gate) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodOptions && g.preflight(w, r) {
		return
	}
	allowed := g.allowed(r)
	if allowed == "" {
		writeProblem(w, r, errNotFound)
		return
	}
	p := newProblem(http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed",
		r.Method+" is not allowed on this resource.")
	p.header = http.Header{"Allow": {allowed}}
	writeProblem(w, r, p)
}

// chiMethods are the methods chi routes.
var chiMethods = []string{http.MethodConnect, http.MethodDelete, http.MethodGet, http.MethodHead,
	http.MethodOptions, http.MethodPatch, http.MethodPost, http.MethodPut, http.MethodTrace}

// claimPaths routes every method that a path of the document does not
// take to methodNotAllowed. OpenAPI matches a concrete path before a
// templated one whatever the method, so GET .../grants/reconcile (POST
// only) is a 405; chi, left alone, would try the templated sibling
// .../grants/{grant_id} for a method the concrete path lacks.
func (g *gate) claimPaths(r chi.Router) {
	paths := map[string]bool{}
	for _, route := range g.routes {
		paths[route.Path] = true
	}
	for path := range paths {
		for _, m := range chiMethods {
			if g.routes[m+" "+path] == nil {
				r.MethodFunc(m, path, g.methodNotAllowed)
			}
		}
	}
}

// find returns the operation whose route serves method on the request's
// path, as chi would route it, or nil.
func (g *gate) find(r *http.Request, method string) *routers.Route {
	path := r.URL.RawPath
	if path == "" {
		path = r.URL.Path
	}
	return g.routes[method+" "+g.mux.Find(chi.NewRouteContext(), method, path)]
}

// pathParams returns the path parameters of the route chi matched,
// unescaped.
func pathParams(r *http.Request) map[string]string {
	rctx := chi.RouteContext(r.Context())
	params := make(map[string]string, len(rctx.URLParams.Keys))
	for i, k := range rctx.URLParams.Keys {
		v := rctx.URLParams.Values[i]
		if u, err := url.PathUnescape(v); err == nil {
			v = u
		}
		params[k] = v
	}
	return params
}

func (g *gate) admit(w http.ResponseWriter, r *http.Request) (*http.Request, *problem) {
	route := g.routes[r.Method+" "+chi.RouteContext(r.Context()).RoutePattern()]
	if route == nil {
		return r, errNotFound // a route the document does not have: none is registered
	}
	params := pathParams(r)
	if info, ok := r.Context().Value(ctxRoute).(*routeInfo); ok {
		info.template = route.Path
		info.tenantID = params["tenant_id"]
		info.idempotent = route.Operation.Parameters.GetByInAndName(openapi3.ParameterInHeader, idempotencyHeader) != nil
		if fields, ok := route.Operation.Extensions[extSecrets].([]any); ok {
			for _, f := range fields {
				if name, ok := f.(string); ok {
					info.secrets = append(info.secrets, name)
				}
			}
		}
	}
	ingest := route.Operation.Extensions[extIngest] == true
	cors := route.Operation.Extensions[extCORS] == true
	if info, ok := r.Context().Value(ctxRoute).(*routeInfo); ok {
		info.tracking = ingest || cors
	}
	if cors {
		// Any origin may read the answer until the source is known, so
		// that a browser sees why a request without one was refused.
		allowOrigin(w.Header(), r.Header.Get("Origin"), nil)
	}

	security := route.Spec.Security
	if route.Operation.Security != nil {
		security = *route.Operation.Security
	}
	byKey := false
	if len(security) > 0 {
		_, byKey = security[0][writeKeyScheme]
		if p := g.limits.refuseAddress(r); p != nil {
			return r, p
		}
	}

	// A write-key route reads its body before authenticating, since the
	// key may be in it; other routes authenticate first.
	var body []byte
	readBody := func() *problem {
		if route.Operation.RequestBody == nil {
			return nil
		}
		limit, tooBig := g.maxBody, http.StatusRequestEntityTooLarge
		if v, ok := route.Operation.Extensions["x-cairn-max-body"].(float64); ok {
			// An operation's own documented limit (Segment's batch size) is
			// a bad request, not a server limit.
			limit, tooBig = int64(v), http.StatusBadRequest
		}
		var p *problem
		if ingest {
			body, p = readIngestBody(r, limit, tooBig)
		} else {
			body, p = g.readBody(r, limit, tooBig)
		}
		return p
	}
	if byKey {
		if p := readBody(); p != nil {
			return r, p
		}
	}

	if len(security) > 0 {
		var (
			principal auth.Principal
			p         *problem
		)
		if byKey {
			var src profiles.Source
			principal, src, p = g.authenticateWriteKey(r, body)
			if p == nil && cors {
				p = checkOrigin(w.Header(), r.Header.Get("Origin"), src)
			}
		} else {
			principal, p = g.authenticate(r)
		}
		if p != nil {
			if p.status == http.StatusUnauthorized && credentialsSent(r, byKey, body) {
				g.limits.failedAuth(r)
			}
			return r, p
		}
		need := g.scopes[route.Operation]
		if byKey {
			need = writeKeyScopes
		}
		if p := g.authorize(r.Context(), principal, need, params["tenant_id"]); p != nil {
			return r, p
		}
		if principal.IsAdmin() && params["tenant_id"] != "" {
			if p := g.refuseDeleted(w, r, params["tenant_id"]); p != nil {
				return r, p
			}
		}
		var lp *problem
		if r, lp = g.limits.admit(w, r, principal, byKey, ingest); lp != nil {
			return r, lp
		}
		r = r.WithContext(context.WithValue(r.Context(), ctxPrincipal, principal))
	}
	if cors && params["write_key"] != "" {
		// A public route named by a write key (the browser settings): the
		// key's source decides the origins.
		if p := g.limits.refuseAddress(r); p != nil {
			return r, p
		}
		src, p := g.source(r, params["write_key"])
		if p != nil && p.status == http.StatusNotFound {
			g.limits.failedAuth(r) // a write key guessed
		}
		if p == nil {
			p = checkOrigin(w.Header(), r.Header.Get("Origin"), src)
		}
		if p != nil {
			return r, p
		}
		scheme := "http"
		if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
			scheme = "https"
		}
		w.Header().Add("Vary", "X-Forwarded-Proto")
		r = r.WithContext(context.WithValue(r.Context(), ctxSource, browserRequest{source: src, host: r.Host, scheme: scheme}))
	}
	if !byKey {
		if p := readBody(); p != nil {
			return r, p
		}
	}
	if ingest {
		// The generated handler decodes the first JSON value only; its
		// handler refuses a body with more (see ingestBody).
		r = r.WithContext(context.WithValue(r.Context(), ctxBodyLen, len(bytes.TrimSpace(body))))
	}

	// The ingestion routes' bodies are read once, by their handlers:
	// ParseEvent judges each event, so neither the spec's body schema
	// (a slow decode of the whole batch) nor the NUL scan runs here.
	in := &openapi3filter.RequestValidationInput{
		Request:    r,
		PathParams: params,
		Route:      route,
		Options: &openapi3filter.Options{
			AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, SkipSettingDefaults: true,
			SchemaValidationOptions: append(slices.Clip(g.formats), openapi3.MultiErrors()), ExcludeRequestBody: ingest,
			MultiError: true,
		},
	}
	if err := openapi3filter.ValidateRequest(r.Context(), in); err != nil {
		return r, validationProblem(err)
	}
	if ingest {
		body = nil
	}
	if p := refuseNUL(params, r.URL.Query(), body); p != nil {
		return r, p
	}
	return r, nil
}

// allowed lists the methods the spec has for the request's path.
func (g *gate) allowed(r *http.Request) string {
	var methods []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if g.find(r, m) != nil {
			methods = append(methods, m)
		}
	}
	return strings.Join(methods, ", ")
}

func unauthorized(detail string) *problem {
	p := newProblem(http.StatusUnauthorized, "unauthorized", "Unauthorized", detail)
	p.header = http.Header{"Www-Authenticate": {`Bearer realm="cairn", error="invalid_token"`}}
	return p
}

func (g *gate) authenticate(r *http.Request) (auth.Principal, *problem) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if h == "" || !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		p := unauthorized("This route needs an Authorization: Bearer token.")
		p.header.Set("Www-Authenticate", `Bearer realm="cairn"`)
		return auth.Principal{}, p
	}
	principal, err := g.auth.Verify(r.Context(), strings.TrimSpace(token))
	if err != nil {
		var te *auth.TokenError
		if errors.As(err, &te) {
			return auth.Principal{}, unauthorized("The bearer token was refused: " + te.Reason + ".")
		}
		return auth.Principal{}, errInternal
	}
	return principal, nil
}

// authorize applies the operation's scope alternatives (see Scopes): the
// principal needs every scope of at least one of them. Admins hold
// "admin"; a tenant principal may only reach routes of its own tenant, and
// only while that tenant is live and not suspended. A route without
// alternatives admits no one.
func (g *gate) authorize(ctx context.Context, p auth.Principal, need [][]string, pathTenant string) *problem {
	forbidden := func(detail string) *problem {
		return newProblem(http.StatusForbidden, "forbidden", "Forbidden", detail)
	}
	if p.IsAdmin() {
		if !admits(need, []string{scopeAdmin}) {
			return forbidden("This route is not for admin tokens.")
		}
		return nil
	}
	tenantRoute := slices.ContainsFunc(need, func(alt []string) bool { return !slices.Contains(alt, scopeAdmin) })
	if !tenantRoute {
		return forbidden("This route needs an admin token.")
	}
	if pathTenant != "" && pathTenant != p.TenantID {
		return errNotFound
	}
	t, err := g.tenants.Admitted(ctx, p.TenantID)
	switch {
	case errors.Is(err, tenants.ErrNotFound):
		return unauthorized("The token's tenant does not exist.")
	case err != nil:
		return errInternal
	}
	knownTenant(ctx, t.ID)
	switch {
	case t.Status == tenants.StatusSuspended:
		return forbidden("The tenant is suspended.")
	case !t.Status.Live():
		return unauthorized("The token's tenant has been offboarded.")
	}
	if !admits(need, p.Scopes) {
		return forbidden(missingScopes(need, p.Scopes))
	}
	return nil
}

// missingScopes says which scopes a tenant token lacks for a route: those
// of the one alternative it comes closest to, or, when the route has
// alternatives of one scope each, any one of them.
func missingScopes(need [][]string, have []string) string {
	var alternatives [][]string
	for _, alt := range need {
		if slices.Contains(alt, scopeAdmin) {
			continue
		}
		var missing []string
		for _, s := range alt {
			if !slices.Contains(have, s) {
				missing = append(missing, s)
			}
		}
		alternatives = append(alternatives, missing)
	}
	if len(alternatives) == 0 {
		return "This route needs an admin token."
	}
	single := true
	var names []string
	for _, m := range alternatives {
		single = single && len(m) == 1
		names = append(names, strings.Join(m, " and "))
	}
	if len(names) > 1 && single {
		return "The token lacks the scope this route needs: one of " + strings.Join(names, ", ") + "."
	}
	slices.SortFunc(alternatives, func(a, b []string) int { return len(a) - len(b) })
	return "The token lacks the scope this route needs: " + strings.Join(alternatives[0], " and ") + "."
}

// errTenantDeleted answers every change to an offboarded tenant.
var errTenantDeleted = newProblem(http.StatusConflict, "tenant-deleted", "Tenant deleted",
	"The tenant was offboarded and is deleted; its routes take no more changes.")

// errTenantDeprovisioning answers a change to a tenant being offboarded.
var errTenantDeprovisioning = newProblem(http.StatusConflict, "tenant-deprovisioning", "Tenant being offboarded",
	"The tenant is being offboarded; its routes take no more changes (its status says when it is deleted).")

// tenantStatusHeader tells a reader of a deleted tenant's routes that the
// tenant is deleted: what they answer is its tombstone's history.
const tenantStatusHeader = "Cairn-Tenant-Status"

// knownTenant notes that the request's tenant exists, when it is the one
// the route names (or the write key's).
func knownTenant(ctx context.Context, id string) {
	if info, ok := ctx.Value(ctxRoute).(*routeInfo); ok && info.tenantID == id {
		info.tenantKnown = true
	}
}

// refuseDeleted refuses any request but a read on the routes of a deleted
// tenant, before the body is read, so that whatever the request no change
// reaches a handler (and so no River job, source, segment or principal is
// made for a tombstone). A tenant being offboarded (deprovisioning) is
// refused the same way, but for its own lifecycle (the DELETE that a
// client may repeat, a retry), which the tenants service judges. It runs
// for admins only: authorize has refused a deleted tenant's own token
// already. An unknown tenant passes, for the handler to answer 404.
func (g *gate) refuseDeleted(w http.ResponseWriter, r *http.Request, tenantID string) *problem {
	t, err := g.tenants.Admitted(r.Context(), tenantID)
	switch {
	case errors.Is(err, tenants.ErrNotFound):
		return nil
	case err != nil:
		return errInternal
	}
	knownTenant(r.Context(), t.ID)
	switch {
	case t.Status != tenants.StatusDeleted && t.Status != tenants.StatusDeprovisioning:
		return nil
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		w.Header().Set(tenantStatusHeader, string(t.Status))
		return nil
	case t.Status == tenants.StatusDeleted:
		return errTenantDeleted
	}
	if info, ok := r.Context().Value(ctxRoute).(*routeInfo); ok && lifecycleRoutes[r.Method+" "+info.template] {
		return nil
	}
	return errTenantDeprovisioning
}

// lifecycleRoutes are the changes a tenant being offboarded still takes
// to the tenants service, which judges them by its status.
var lifecycleRoutes = map[string]bool{
	"DELETE /v1/tenants/{tenant_id}":     true,
	"POST /v1/tenants/{tenant_id}/retry": true,
}

// readBody enforces the size limit and the media type and leaves the body
// readable again for the validator and the handler. It returns the body.
func (g *gate) readBody(r *http.Request, limit int64, tooBig int) ([]byte, *problem) {
	if enc := r.Header.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "identity") {
		return nil, unsupportedMediaType("Only the ingestion routes take a Content-Encoding; send this body uncompressed.")
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge(limit, tooBig)
		}
		return nil, badRequest("body", "could not be read")
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if len(body) == 0 {
		return nil, badRequest("body", "a JSON request body is required")
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return nil, unsupportedMediaType("The request body must be application/json.")
	}
	if mt != "application/json" {
		r.Header.Set("Content-Type", "application/json")
	}
	return body, nil
}

// authenticateWriteKey authenticates a Segment-style request: the source's
// write key is the Basic user name, or the body's top-level "writeKey" (as
// analytics.js sends it). A request with two different keys is refused.
func (g *gate) authenticateWriteKey(r *http.Request, body []byte) (auth.Principal, profiles.Source, *problem) {
	refuse := func(detail string) (auth.Principal, profiles.Source, *problem) {
		p := unauthorized(detail)
		p.header.Set("Www-Authenticate", `Basic realm="cairn"`)
		return auth.Principal{}, profiles.Source{}, p
	}
	key, _, _ := r.BasicAuth()
	inBody, err := bodyWriteKey(body)
	switch {
	case err != nil || (key != "" && inBody != "" && key != inBody):
		return refuse("The request carries two different write keys; send one.")
	case key == "":
		key = inBody
	}
	if key == "" {
		return refuse("This route needs the source's write key as the HTTP Basic user name or the body's writeKey.")
	}
	src, err := g.keys.Authenticate(r.Context(), key)
	switch {
	case errors.Is(err, profiles.ErrSourceNotFound), errors.Is(err, profiles.ErrSourceRevoked):
		return refuse("The write key is not valid.")
	case err != nil:
		return auth.Principal{}, profiles.Source{}, errInternal
	}
	if info, ok := r.Context().Value(ctxRoute).(*routeInfo); ok {
		info.tenantID = src.TenantID
	}
	knownTenant(r.Context(), src.TenantID)
	return auth.Principal{Subject: sourceSubject + src.ID, TenantID: src.TenantID, Scopes: []string{auth.ScopeEventsWrite}}, src, nil
}

// credentialsSent reports whether a request carried credentials (a bearer
// token, a write key as the Basic user or the body's writeKey): refused,
// they count against its client address (limits.go); a request without
// any costs nothing to refuse.
func credentialsSent(r *http.Request, byKey bool, body []byte) bool {
	if r.Header.Get("Authorization") != "" {
		return true
	}
	key, err := bodyWriteKey(body)
	return byKey && (err != nil || key != "")
}

// sourceSubject prefixes the source ID in a write key's principal.
const sourceSubject = "source:"

// source returns the live source of a write key in a public route's path;
// 404 for an unknown or revoked key.
func (g *gate) source(r *http.Request, key string) (profiles.Source, *problem) {
	src, err := g.keys.Authenticate(r.Context(), key)
	switch {
	case errors.Is(err, profiles.ErrSourceNotFound), errors.Is(err, profiles.ErrSourceRevoked):
		return profiles.Source{}, newProblem(http.StatusNotFound, "not-found", "Not found", "No live source has this write key.")
	case err != nil:
		return profiles.Source{}, errInternal
	}
	if info, ok := r.Context().Value(ctxRoute).(*routeInfo); ok {
		info.tenantID = src.TenantID
	}
	knownTenant(r.Context(), src.TenantID)
	return src, nil
}

// validationProblem turns a validator error into a 400 that names every
// offending field: a JSON pointer into the body, or a parameter's name,
// each once, in the order the validator found them.
func validationProblem(err error) *problem {
	var fields []FieldError
	seen := map[FieldError]bool{}
	for _, e := range flatten(err) {
		f, p := fieldError(e)
		if p != nil {
			return p
		}
		if !seen[f] {
			seen[f] = true
			fields = append(fields, f)
		}
	}
	if len(fields) == 0 {
		return badRequest("body", "is invalid")
	}
	p := badRequest(fields[0].Field, fields[0].Message)
	p.fields = fields
	if len(fields) > 1 {
		p.detail = fmt.Sprintf("%s: %s (and %d more in errors)", fields[0].Field, fields[0].Message, len(fields)-1)
	}
	return p
}

// flatten lists the single errors inside the validator's (multi-)errors.
func flatten(err error) []error {
	var multi openapi3.MultiError
	if errors.As(err, &multi) {
		var out []error
		for _, e := range multi {
			// A request error wraps the schema errors of its parameter or
			// body: each one keeps the request error's context.
			var reqErr *openapi3filter.RequestError
			var inner openapi3.MultiError
			if errors.As(e, &reqErr) && errors.As(reqErr.Err, &inner) {
				for _, ie := range flatten(inner) {
					out = append(out, &openapi3filter.RequestError{Input: reqErr.Input, Parameter: reqErr.Parameter, RequestBody: reqErr.RequestBody, Reason: reqErr.Reason, Err: ie})
				}
				continue
			}
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// fieldError names one validator error's field and says what is wrong, or
// returns the problem that answers it whole (a malformed If-Match).
func fieldError(err error) (FieldError, *problem) {
	var (
		reqErr    *openapi3filter.RequestError
		schemaErr *openapi3.SchemaError
	)
	field, msg := "body", err.Error()
	if errors.As(err, &reqErr) {
		msg = reqErr.Reason
		if reqErr.Parameter != nil {
			field = reqErr.Parameter.Name
			if field == ifMatchHeader && reqErr.Input != nil && reqErr.Input.Request != nil {
				// The spec's pattern refused it; the parser says why.
				if _, _, err := parseIfMatch(reqErr.Input.Request.Header.Get(ifMatchHeader)); err != nil {
					return FieldError{}, ifMatchProblem(err)
				}
			}
		}
	}
	if errors.As(err, &schemaErr) {
		if ptr := schemaErr.JSONPointer(); len(ptr) > 0 && (reqErr == nil || reqErr.Parameter == nil) {
			field = "/" + strings.Join(ptr, "/")
		}
		msg = schemaErr.Reason
		if schemaErr.SchemaField == "enum" && schemaErr.Schema != nil && len(schemaErr.Schema.Enum) > maxListedValues {
			// A long list (the Regions) is the schema's to show, not
			// every answer's.
			msg = fmt.Sprintf("%s is not one of the %d values the schema allows", compactJSON(schemaErr.Value), len(schemaErr.Schema.Enum))
		}
	}
	if msg == "" {
		msg = "is invalid"
	}
	return FieldError{Field: field, Message: msg}, nil
}

// maxListedValues is the longest enum a validation message lists.
const maxListedValues = 8

// compactJSON renders a value as JSON, cut to 60 bytes.
func compactJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(b) > 60 {
		return string(b[:57]) + "..."
	}
	return string(b)
}

// nulMessage is the reason given for a request that carries U+0000.
const nulMessage = "must not contain the NUL character (U+0000)"

// refuseNUL answers 400, naming where, for a request that carries U+0000 in
// a path or query parameter or anywhere in its JSON body, keys included.
// PostgreSQL can store it in neither text nor jsonb, so the write would fail
// as a 500 there while SQLite stored it; no name, label or parameter of this
// API means anything with it. Refusing it here treats every route and both
// stores alike. It runs after validation, so a request gets it only if
// nothing else is wrong.
func refuseNUL(pathParams map[string]string, query url.Values, body []byte) *problem {
	for _, name := range slices.Sorted(maps.Keys(pathParams)) {
		if strings.ContainsRune(pathParams[name], 0) {
			return badRequest(name, nulMessage)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(query)) {
		if strings.ContainsRune(name, 0) || slices.ContainsFunc(query[name], func(v string) bool { return strings.ContainsRune(v, 0) }) {
			return badRequest(name, nulMessage)
		}
	}
	// JSON can only carry U+0000 escaped, so most bodies need no decoding.
	if !bytes.Contains(body, []byte(`\u0000`)) {
		return nil
	}
	var doc any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if dec.Decode(&doc) != nil {
		return nil // the validator has judged the body already
	}
	if ptr, ok := findNUL(doc, ""); ok {
		if ptr == "" {
			ptr = "body"
		}
		return badRequest(ptr, nulMessage)
	}
	return nil
}

// findNUL returns the JSON pointer, below ptr, of the first string or key in
// v that contains U+0000, keys in sorted order so the answer is stable.
func findNUL(v any, ptr string) (string, bool) {
	switch v := v.(type) {
	case string:
		return ptr, strings.ContainsRune(v, 0)
	case []any:
		for i, item := range v {
			if p, ok := findNUL(item, ptr+"/"+strconv.Itoa(i)); ok {
				return p, true
			}
		}
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			p := jsonptr.Append(ptr, k)
			if strings.ContainsRune(k, 0) {
				return p, true
			}
			if p, ok := findNUL(v[k], p); ok {
				return p, true
			}
		}
	}
	return "", false
}
