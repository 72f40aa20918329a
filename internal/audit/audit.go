// Package audit is Cairn's audit trail: who changed what, for which tenant,
// in which request, and how it ended.
//
// Every accepted change recorded in the control-plane database (tenants,
// stacks, sources, webhooks, principals, grants) writes its Event in the
// same transaction as the change: the service that makes the change takes
// the request's Event as a parameter and hands it to its store's
// transaction (Appender), so a change and its record commit or roll back
// together. Changes kept elsewhere (the profile store: identity
// configuration, segments, unmerges, erasures) and acts that change no
// stored state (a token minted) are recorded on their own, durably, once
// accepted (Store.AuditAppend outside any other transaction).
//
// A zero Event (no Action) records nothing: it is what Cairn's own jobs
// pass, whose change the request that caused them has recorded already.
package audit

import (
	"context"
	"time"
)

// Outcomes of an Event.
const (
	// OutcomeOK: the change was made.
	OutcomeOK = "ok"
	// OutcomeAccepted: the change was accepted and is carried out by a
	// durable job (an erasure, a recompute).
	OutcomeAccepted = "accepted"
)

// ActorCairn is the actor of events Cairn's own jobs record.
const ActorCairn = "cairn"

// Event is one entry of the audit log.
type Event struct {
	// ID is "aud_" and 26 base32 characters; the store sets it when empty.
	ID string
	// Time is when the change was recorded; the store sets it when zero.
	Time time.Time
	// TenantID is the tenant the change is about, or empty for the fleet
	// (an ISV webhook endpoint).
	TenantID string
	// Actor is the token subject that asked for the change ("admin",
	// "tenant:<id>", an OIDC subject), "cli" for the server's own
	// commands, or ActorCairn for Cairn's jobs.
	Actor string
	// RequestID is the API request's ID (its problem's request_id and
	// Request-Id header), empty outside a request.
	RequestID string
	// Action names what was done: "<resource>.<verb>", e.g.
	// "tenant.create", "source.rotate", "grant.refuse".
	Action string
	// TargetType and TargetID name the resource changed, e.g. "tenant"
	// and its ID, "webhook" and the endpoint's ID.
	TargetType string
	TargetID   string
	// Outcome is OutcomeOK, OutcomeAccepted or an action's own outcome
	// (a grant's status, "refused").
	Outcome string
	// Detail holds what else an auditor needs (a grant's permissions, a
	// refusal's reason). Never a secret.
	Detail map[string]string
	// Seq orders events as the store recorded them; list cursors carry it.
	Seq int64
}

// Zero reports whether e records nothing (it has no Action).
func (e Event) Zero() bool { return e.Action == "" }

// On returns e about the target with this ID (a resource made by the
// change, whose ID the request could not know) and, when e has no
// outcome yet, OutcomeOK.
func (e Event) On(targetID string) Event {
	if e.TargetID == "" {
		e.TargetID = targetID
	}
	if e.Outcome == "" {
		e.Outcome = OutcomeOK
	}
	return e
}

// With returns e with the detail key set (a copy: e's map is not changed).
func (e Event) With(key, value string) Event {
	d := make(map[string]string, len(e.Detail)+1)
	for k, v := range e.Detail {
		d[k] = v
	}
	d[key] = value
	e.Detail = d
	return e
}

// ListParams selects and pages events; zero values do not filter. Results
// are in ascending Seq order.
type ListParams struct {
	TenantID string
	Actor    string
	Action   string
	// From and To bound Time, inclusive and exclusive.
	From     time.Time
	To       time.Time
	AfterSeq int64
	// Limit is the most events to return; <= 0 means no limit.
	Limit int
}

// Appender records events. Every control-plane transaction that makes an
// audited change offers it; a zero Event is skipped.
type Appender interface {
	// AuditAppend adds e, setting an empty ID and a zero Time.
	AuditAppend(ctx context.Context, e Event) error
}

// Store is the audit log in the control-plane database. Implementations
// are safe for concurrent use by several replicas.
type Store interface {
	// AuditAppend records e in a transaction of its own (a zero Event is
	// skipped).
	AuditAppend(ctx context.Context, e Event) error
	// AuditList pages events.
	AuditList(ctx context.Context, p ListParams) ([]Event, error)
}
