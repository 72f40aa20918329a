package httpapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/cairn-cdp/cairn/internal/auth"
	"github.com/cairn-cdp/cairn/internal/grants"
	"github.com/cairn-cdp/cairn/internal/page"
	"github.com/cairn-cdp/cairn/internal/provisioner"
	"github.com/cairn-cdp/cairn/internal/tenants"
)

// problemTypePrefix starts every problem type URI; the rest names the kind.
const problemTypePrefix = "urn:cairn:problem:"

// problem is an error that knows its RFC 9457 representation.
type problem struct {
	status int
	kind   string
	title  string
	detail string
	fields []FieldError
	header http.Header
}

func (p *problem) Error() string { return p.detail }

func newProblem(status int, kind, title, detail string) *problem {
	return &problem{status: status, kind: kind, title: title, detail: detail}
}

func badRequest(field, message string) *problem {
	p := newProblem(http.StatusBadRequest, "invalid-request", "Invalid request", field+": "+message)
	p.fields = []FieldError{{Field: field, Message: message}}
	return p
}

var (
	errInternal = newProblem(http.StatusInternalServerError, "internal", "Internal server error",
		"The server could not complete the request; quote the request ID to the operator.")
	errNotFound = newProblem(http.StatusNotFound, "not-found", "Not found", "No such resource.")
)

// toProblem maps an error from a domain or from this package to its problem.
// It is the one place that translates domain sentinel errors to HTTP.
// Unknown errors become a generic 500 and are logged with the request's IDs;
// their text never reaches the client.
func toProblem(r *http.Request, log *slog.Logger, err error) *problem {
	var (
		p       *problem
		ve      *tenants.ValidationError
		te      *tenants.TransitionError
		refusal *grants.Refusal
	)
	switch {
	case errors.As(err, &p):
		return p
	case errors.As(err, &ve):
		return badRequest(ve.Field, ve.Reason)
	case errors.As(err, &te):
		return newProblem(http.StatusConflict, "illegal-transition", "Illegal state transition",
			"Cannot "+string(te.Event)+" a tenant that is "+string(te.From)+".")
	case errors.Is(err, tenants.ErrNotFound):
		return newProblem(http.StatusNotFound, "not-found", "Not found", "No tenant has this ID.")
	case errors.Is(err, tenants.ErrRegionRemoved):
		return newProblem(http.StatusConflict, "region-removal", "Regions can only be added",
			"The new Region list leaves out a Region the tenant has; Regions can only be added.")
	case errors.Is(err, tenants.ErrSlugTaken):
		return newProblem(http.StatusConflict, "slug-taken", "Slug taken", "Another tenant already uses this slug.")
	case errors.Is(err, tenants.ErrVersionMismatch):
		return newProblem(http.StatusPreconditionFailed, "precondition-failed", "Precondition failed",
			"The tenant changed since the ETag given in If-Match; read it again.")
	case migrationProblem(err) != nil:
		return migrationProblem(err)
	case profileProblem(err) != nil:
		return profileProblem(err)
	case segmentProblem(err) != nil:
		return segmentProblem(err)
	case webhookProblem(err) != nil:
		return webhookProblem(err)
	case rolloutProblem(err) != nil:
		return rolloutProblem(err)
	case planProblem(err) != nil:
		return planProblem(err)
	case queryProblem(err) != nil:
		return queryProblem(err)
	case errors.As(err, &refusal):
		return grantProblem(refusal.Err, refusal.Detail)
	case errors.Is(err, grants.ErrNotFound):
		return newProblem(http.StatusNotFound, "not-found", "Not found", "No such principal or grant for this tenant.")
	case errors.Is(err, grants.ErrPrincipalInUse):
		return newProblem(http.StatusConflict, "principal-in-use", "Principal in use", "Revoke the principal's grants before removing it.")
	case errors.Is(err, provisioner.ErrNotFound):
		return newProblem(http.StatusNotFound, "not-found", "Not found", "The tenant has no stack in this Region.")
	case errors.Is(err, provisioner.ErrNotRetryable):
		return newProblem(http.StatusConflict, "not-retryable", "Nothing to retry", "The stack has not failed; only a failed stack can be retried.")
	case errors.Is(err, auth.ErrInvalidTTL):
		// Its text is Cairn's own: the lifetime asked for and the maximum.
		return badRequest("ttl_seconds", strings.TrimPrefix(err.Error(), auth.ErrInvalidTTL.Error()+": "))
	case errors.Is(err, page.ErrBadCursor):
		return badRequest("cursor", "not a cursor this API returned")
	}
	log.ErrorContext(r.Context(), "request failed", "err", err)
	return errInternal
}

// grantProblem maps a broker refusal: an unregistered principal is 422, a
// resource outside the tenant's catalog or an admin-only permission 403,
// another tenant's principal 409.
func grantProblem(err error, detail string) *problem {
	switch {
	case errors.Is(err, grants.ErrUnregistered):
		return newProblem(http.StatusUnprocessableEntity, "principal-not-registered", "Principal not registered", detail+".")
	case errors.Is(err, grants.ErrOutsideCatalog):
		return newProblem(http.StatusForbidden, "outside-catalog", "Outside the tenant's catalog", detail+".")
	case errors.Is(err, grants.ErrAdminOnly):
		return newProblem(http.StatusForbidden, "admin-only-permission", "Admin-only permission", detail+".")
	case errors.Is(err, grants.ErrPrincipalTaken):
		return newProblem(http.StatusConflict, "principal-taken", "Principal taken", detail+".")
	}
	return errInternal
}

// writeProblem writes p as application/problem+json.
func writeProblem(w http.ResponseWriter, r *http.Request, p *problem) {
	body := Problem{
		Type:      problemTypePrefix + p.kind,
		Title:     p.title,
		Status:    p.status,
		Detail:    p.detail,
		RequestId: requestID(r.Context()),
	}
	if len(p.fields) > 0 {
		body.Errors = &p.fields
	}
	instance := r.URL.Path
	body.Instance = &instance
	if info, ok := r.Context().Value(ctxRoute).(*routeInfo); ok {
		info.problem = body.Type
		if info.tracking {
			body.Code, body.Message = &p.kind, &body.Detail
		}
	}
	for k, v := range p.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.status)
	_ = json.NewEncoder(w).Encode(body)
}
