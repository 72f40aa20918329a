package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/page"
)

// auditOf is the audit event of the change the request in ctx asks for:
// its token's subject as the actor, its request ID, the tenant, the
// action and its target. A handler makes it in one call and hands it to
// the service that makes the change, which writes it in the change's
// transaction (with the ID of a resource it creates as the target ID when
// targetID is empty).
func auditOf(ctx context.Context, tenantID, action, targetType, targetID string) audit.Event {
	p, _ := principalFrom(ctx)
	return audit.Event{
		TenantID: tenantID, Actor: p.Subject, RequestID: requestID(ctx),
		Action: action, TargetType: targetType, TargetID: targetID,
	}
}

// record writes the audit event of an accepted change that no
// control-plane transaction carries: one made in the profile store
// (DynamoDB or the embedded store, which share no transaction with the
// control-plane database), or a token minted, which changes nothing
// stored. It runs once the change is made, so the trail never holds a
// change that did not happen; should it fail, the request is answered as
// an error rather than acknowledged unrecorded (a token is then not handed
// out; a profile-store change is made, and a client reads before it
// retries).
func (s *Server) record(ctx context.Context, e audit.Event) error {
	return s.audit.AuditAppend(ctx, e.On(e.TargetID))
}

// auditFilter turns the audit routes' filters into list parameters; a
// tenant token reads only its own tenant's events, and naming another
// tenant is not found.
func auditFilter(ctx context.Context, tenant *AuditTenant, actor *AuditActor, action *AuditAction, from *AuditFrom, to *AuditTo) (audit.ListParams, error) {
	var p audit.ListParams
	if tenant != nil {
		p.TenantID = *tenant
	}
	if principal, _ := principalFrom(ctx); !principal.IsAdmin() {
		if p.TenantID != "" && p.TenantID != principal.TenantID {
			return p, errNotFound
		}
		p.TenantID = principal.TenantID
	}
	if actor != nil {
		p.Actor = *actor
	}
	if action != nil {
		p.Action = *action
	}
	if from != nil {
		p.From = from.UTC()
	}
	if to != nil {
		p.To = to.UTC()
	}
	return p, nil
}

func toAPIAuditEvent(e audit.Event) AuditEvent {
	detail := e.Detail
	if detail == nil {
		detail = map[string]string{}
	}
	return AuditEvent{
		Id: e.ID, Time: e.Time.UTC().Truncate(time.Microsecond), TenantId: optional(e.TenantID), Actor: e.Actor,
		Action: e.Action, TargetType: e.TargetType, TargetId: e.TargetID, Resource: e.TargetID, RequestId: e.RequestID,
		Outcome: e.Outcome, Detail: detail,
	}
}

func (s *Server) ListAuditEvents(ctx context.Context, req ListAuditEventsRequestObject) (ListAuditEventsResponseObject, error) {
	q := req.Params
	p, err := auditFilter(ctx, q.TenantId, q.Actor, q.Action, q.From, q.To)
	if err != nil {
		return nil, err
	}
	limit := page.Limit(q.Limit)
	if p.AfterSeq, err = decodeCursor(q.Cursor); err != nil {
		return nil, err
	}
	p.Limit = limit + 1
	list, err := s.audit.AuditList(ctx, p)
	if err != nil {
		return nil, err
	}
	list, next := page.Trim(list, limit, func(e audit.Event) int64 { return e.Seq })
	items := make([]AuditEvent, len(list))
	for i, e := range list {
		items[i] = toAPIAuditEvent(e)
	}
	return ListAuditEvents200JSONResponse{Items: items, NextCursor: next}, nil
}

func (s *Server) ExportAuditEvents(ctx context.Context, req ExportAuditEventsRequestObject) (ExportAuditEventsResponseObject, error) {
	q := req.Params
	p, err := auditFilter(ctx, q.TenantId, q.Actor, q.Action, q.From, q.To)
	if err != nil {
		return nil, err
	}
	// The first page is read before the answer starts, so that a database
	// that does not answer is still a 500 problem.
	p.Limit = exportPage
	first, err := s.audit.AuditList(ctx, p)
	if err != nil {
		return nil, err
	}
	return auditExport{s: s, ctx: ctx, p: p, first: first}, nil
}

// exportPage is how many events an export reads from the store at a time.
const exportPage = 500

// auditExport streams every event matching p as NDJSON, a page at a time.
type auditExport struct {
	s     *Server
	ctx   context.Context
	p     audit.ListParams
	first []audit.Event
}

func (x auditExport) VisitExportAuditEventsResponse(w http.ResponseWriter) error {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w) // Encode ends each value with a newline
	list := x.first
	for {
		for _, e := range list {
			if err := enc.Encode(toAPIAuditEvent(e)); err != nil {
				return nil // the client went away
			}
		}
		if len(list) < x.p.Limit {
			return nil
		}
		x.p.AfterSeq = list[len(list)-1].Seq
		var err error
		if list, err = x.s.audit.AuditList(x.ctx, x.p); err != nil {
			// The status is sent: the answer ends early, as the spec says.
			x.s.log.ErrorContext(x.ctx, "audit export", "request_id", requestID(x.ctx), "err", err)
			return nil
		}
	}
}
