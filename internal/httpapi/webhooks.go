package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/cairn-cdp/cairn/internal/page"
	"github.com/cairn-cdp/cairn/internal/plans"
	"github.com/cairn-cdp/cairn/internal/webhooks"
)

// The tenant routes and the fleet (admin) routes share these helpers: the
// fleet is tenant "". The gate has already refused another tenant's token
// and every change to a deleted tenant.

func webhookETag(e webhooks.Endpoint) string { return fmt.Sprintf(`"v%d"`, e.Version) }

func webhookLocation(tenant, id string) string {
	if tenant == "" {
		return "/v1/webhooks/" + id
	}
	return "/v1/tenants/" + tenant + "/webhooks/" + id
}

// deliveriesURL is the endpoint's delivery log, the Location of a
// redelivery, a recovery and a test: no route reads one delivery, and the
// log is where their outcome shows.
func deliveriesURL(tenant, id string) string { return webhookLocation(tenant, id) + "/deliveries" }

func toAPIWebhook(e webhooks.Endpoint) WebhookEndpoint {
	out := WebhookEndpoint{
		Id: e.ID, Url: e.URL, Description: e.Description, Enabled: e.Enabled,
		EventTypes: make([]WebhookEventType, len(e.EventTypes)), SegmentIds: nonNil(e.SegmentIDs), Traits: nonNil(e.Traits),
		DisabledReason: optional(e.DisabledReason), FailingSince: e.FailingSince,
		CreatedAt: e.CreatedAt.UTC(), UpdatedAt: e.UpdatedAt.UTC(),
	}
	if e.TenantID != "" {
		out.TenantId = &e.TenantID
	}
	for i, t := range e.EventTypes {
		out.EventTypes[i] = WebhookEventType(t)
	}
	if e.PreviousSecret != "" && e.PreviousSecretExpiresAt != nil {
		out.PreviousSecretExpiresAt = e.PreviousSecretExpiresAt
	}
	return out
}

// withSecret is the endpoint with its secret, in the one answer that shows
// it.
func withSecret(e webhooks.Endpoint, secret string) WebhookEndpointWithSecret {
	a := toAPIWebhook(e)
	return WebhookEndpointWithSecret{
		Id: a.Id, TenantId: a.TenantId, Url: a.Url, Description: a.Description, Enabled: a.Enabled, EventTypes: a.EventTypes,
		SegmentIds: a.SegmentIds, Traits: a.Traits, DisabledReason: a.DisabledReason, FailingSince: a.FailingSince,
		PreviousSecretExpiresAt: a.PreviousSecretExpiresAt, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt, Secret: &secret,
	}
}

func toAPIDelivery(d webhooks.Delivery) WebhookDelivery {
	out := WebhookDelivery{
		Id: d.ID, WebhookId: d.EndpointID, EventId: d.EventID, EventType: d.EventType, Status: WebhookDeliveryStatus(d.Status),
		Attempts: d.Attempts, LastAttemptAt: d.LastAttemptAt, LastError: optional(d.LastError), CreatedAt: d.CreatedAt.UTC(),
		Payload: map[string]any{},
	}
	_ = json.Unmarshal(d.Payload, &out.Payload) // Cairn made it: a JSON object
	if d.Status == webhooks.StatusPending {
		next := d.NextAttemptAt.UTC()
		out.NextAttemptAt = &next
	}
	if d.ResponseStatus != 0 {
		out.ResponseStatus = &d.ResponseStatus
	}
	if len(d.ResponseBody) > 0 {
		body := strings.ToValidUTF8(string(d.ResponseBody), "\uFFFD")
		out.ResponseBody = &body
	}
	return out
}

func nonNil(list []string) []string {
	if list == nil {
		return []string{}
	}
	return list
}

// webhookInput converts a create or update body to the domain's input.
func webhookInput(url, description *string, types *[]WebhookEventType, segments, traits *[]string, enabled *bool) webhooks.EndpointInput {
	in := webhooks.EndpointInput{URL: url, Description: description, SegmentIDs: segments, Traits: traits, Enabled: enabled}
	if types != nil {
		list := make([]string, len(*types))
		for i, t := range *types {
			list[i] = string(t)
		}
		in.EventTypes = &list
	}
	return in
}

// matchVersion applies an optional If-Match field to a resource at version
// current, as ifMatchVersion does for tenants: nil when it is absent or
// "*", current when a strong tag names it, a 412 (mismatch) when none
// does and a 400 when it is malformed.
func matchVersion(h *string, current int64, mismatch error) (*int64, error) {
	if h == nil {
		return nil, nil
	}
	anyTag, tags, err := parseIfMatch(*h)
	if err != nil {
		return nil, ifMatchProblem(err)
	}
	if anyTag {
		return nil, nil
	}
	want := fmt.Sprintf("v%d", current)
	weakOnly := true
	for _, tag := range tags {
		weakOnly = weakOnly && tag.weak
		if !tag.weak && tag.opaque == want {
			return &current, nil
		}
	}
	if weakOnly {
		return nil, errWeakIfMatch
	}
	return nil, mismatch
}

// tenantExists answers 404 for an unknown tenant; the fleet always exists.
func (s *Server) tenantExists(ctx context.Context, tenant string) error {
	if tenant == "" {
		return nil
	}
	_, err := s.tenants.Get(ctx, tenant)
	return err
}

func (s *Server) listWebhooks(ctx context.Context, tenant string, limitP *int, cursor *string) (WebhookEndpointList, error) {
	if err := s.tenantExists(ctx, tenant); err != nil {
		return WebhookEndpointList{}, err
	}
	limit := page.Limit(limitP)
	after, err := decodeCursor(cursor)
	if err != nil {
		return WebhookEndpointList{}, err
	}
	list, err := s.webhooks.List(ctx, tenant, after, limit+1)
	if err != nil {
		return WebhookEndpointList{}, err
	}
	list, next := page.Trim(list, limit, func(e webhooks.Endpoint) int64 { return e.Seq })
	items := make([]WebhookEndpoint, len(list))
	for i, e := range list {
		items[i] = toAPIWebhook(e)
	}
	return WebhookEndpointList{Items: items, NextCursor: next}, nil
}

// The tenant and fleet routes share these helpers, and so does the audit
// event each makes: tenant "" is the fleet's, an event about no tenant.

func (s *Server) createWebhook(ctx context.Context, tenant string, b *WebhookEndpointCreate) (webhooks.Endpoint, string, error) {
	if err := s.tenantExists(ctx, tenant); err != nil {
		return webhooks.Endpoint{}, "", err
	}
	limit, plan := webhooks.MaxEndpoints, (*plans.Plan)(nil)
	if tenant != "" {
		var err error
		if limit, plan, err = s.planCap(ctx, tenant, func(l plans.Limits) *int64 { return l.Webhooks }, webhooks.MaxEndpoints); err != nil {
			return webhooks.Endpoint{}, "", err
		}
	}
	e, secret, err := s.webhooks.CreateWithin(ctx, auditOf(ctx, tenant, "webhook.create", "webhook", ""), tenant, webhookInput(&b.Url, b.Description, &b.EventTypes, b.SegmentIds, b.Traits, b.Enabled), limit)
	return e, secret, errAtPlanLimit(err, webhooks.ErrLimit, "webhook endpoints", limit, plan)
}

func (s *Server) updateWebhook(ctx context.Context, tenant, id string, ifMatch *string, b *WebhookEndpointUpdate) (webhooks.Endpoint, error) {
	e, err := s.webhooks.Get(ctx, tenant, id)
	if err != nil {
		return e, err
	}
	v, err := matchVersion(ifMatch, e.Version, webhooks.ErrVersionMismatch)
	if err != nil {
		return e, err
	}
	return s.webhooks.Update(ctx, auditOf(ctx, tenant, "webhook.update", "webhook", id), tenant, id, v, webhookInput(b.Url, b.Description, b.EventTypes, b.SegmentIds, b.Traits, b.Enabled))
}

func (s *Server) deleteWebhook(ctx context.Context, tenant, id string, ifMatch *string) error {
	e, err := s.webhooks.Get(ctx, tenant, id)
	if err != nil {
		return err
	}
	v, err := matchVersion(ifMatch, e.Version, webhooks.ErrVersionMismatch)
	if err != nil {
		return err
	}
	return s.webhooks.Delete(ctx, auditOf(ctx, tenant, "webhook.delete", "webhook", id), tenant, id, v)
}

func (s *Server) rotateWebhook(ctx context.Context, tenant, id string, graceSeconds *int) (webhooks.Endpoint, string, error) {
	var grace time.Duration
	if graceSeconds != nil {
		grace = time.Duration(*graceSeconds) * time.Second
	}
	return s.webhooks.RotateSecret(ctx, auditOf(ctx, tenant, "webhook.rotate_secret", "webhook", id), tenant, id, grace)
}

func (s *Server) listWebhookDeliveries(ctx context.Context, tenant, id string, limitP *int, cursor *string, status *WebhookDeliveryStatus) (WebhookDeliveryList, error) {
	limit := page.Limit(limitP)
	before, err := decodeCursor(cursor)
	if err != nil {
		return WebhookDeliveryList{}, err
	}
	var st webhooks.Status
	if status != nil {
		st = webhooks.Status(*status)
	}
	list, err := s.webhooks.Deliveries(ctx, tenant, id, st, before, limit+1)
	if err != nil {
		return WebhookDeliveryList{}, err
	}
	list, next := page.Trim(list, limit, func(d webhooks.Delivery) int64 { return d.Seq })
	items := make([]WebhookDelivery, len(list))
	for i, d := range list {
		items[i] = toAPIDelivery(d)
	}
	return WebhookDeliveryList{Items: items, NextCursor: next}, nil
}

// webhookProblem maps the webhooks package's errors.
func webhookProblem(err error) *problem {
	var ve *webhooks.ValidationError
	switch {
	case errors.As(err, &ve):
		return badRequest(ve.Field, ve.Reason)
	case errors.Is(err, webhooks.ErrNotFound):
		return newProblem(http.StatusNotFound, "not-found", "Not found", "No webhook endpoint or delivery has this ID.")
	case errors.Is(err, webhooks.ErrVersionMismatch):
		return newProblem(http.StatusPreconditionFailed, "precondition-failed", "Precondition failed",
			"The webhook endpoint changed since the ETag given in If-Match; read it again.")
	case errors.Is(err, webhooks.ErrLimit):
		return newProblem(http.StatusUnprocessableEntity, "webhook-limit", "Webhook endpoint limit reached",
			fmt.Sprintf("At most %d webhook endpoints; delete one first.", webhooks.MaxEndpoints))
	case errors.Is(err, webhooks.ErrDisabled):
		return newProblem(http.StatusConflict, "webhook-disabled", "Webhook endpoint disabled", "Enable the endpoint first.")
	}
	return nil
}

// Tenant routes.

func (s *Server) ListWebhooks(ctx context.Context, req ListWebhooksRequestObject) (ListWebhooksResponseObject, error) {
	list, err := s.listWebhooks(ctx, req.TenantId, req.Params.Limit, req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	return ListWebhooks200JSONResponse(list), nil
}

func (s *Server) CreateWebhook(ctx context.Context, req CreateWebhookRequestObject) (CreateWebhookResponseObject, error) {
	e, secret, err := s.createWebhook(ctx, req.TenantId, req.Body)
	if err != nil {
		return nil, err
	}
	return CreateWebhook201JSONResponse{Body: withSecret(e, secret),
		Headers: CreateWebhook201ResponseHeaders{Location: webhookLocation(req.TenantId, e.ID), ETag: webhookETag(e)}}, nil
}

func (s *Server) GetWebhook(ctx context.Context, req GetWebhookRequestObject) (GetWebhookResponseObject, error) {
	e, err := s.webhooks.Get(ctx, req.TenantId, req.WebhookId)
	if err != nil {
		return nil, err
	}
	return GetWebhook200JSONResponse{Body: toAPIWebhook(e), Headers: GetWebhook200ResponseHeaders{ETag: webhookETag(e)}}, nil
}

func (s *Server) UpdateWebhook(ctx context.Context, req UpdateWebhookRequestObject) (UpdateWebhookResponseObject, error) {
	e, err := s.updateWebhook(ctx, req.TenantId, req.WebhookId, req.Params.IfMatch, req.Body)
	if err != nil {
		return nil, err
	}
	return UpdateWebhook200JSONResponse{Body: toAPIWebhook(e), Headers: UpdateWebhook200ResponseHeaders{ETag: webhookETag(e)}}, nil
}

func (s *Server) DeleteWebhook(ctx context.Context, req DeleteWebhookRequestObject) (DeleteWebhookResponseObject, error) {
	if err := s.deleteWebhook(ctx, req.TenantId, req.WebhookId, req.Params.IfMatch); err != nil {
		return nil, err
	}
	return DeleteWebhook204Response{}, nil
}

func (s *Server) RotateWebhookSecret(ctx context.Context, req RotateWebhookSecretRequestObject) (RotateWebhookSecretResponseObject, error) {
	e, secret, err := s.rotateWebhook(ctx, req.TenantId, req.WebhookId, req.Params.GraceSeconds)
	if err != nil {
		return nil, err
	}
	return RotateWebhookSecret200JSONResponse{Body: withSecret(e, secret), Headers: RotateWebhookSecret200ResponseHeaders{ETag: webhookETag(e)}}, nil
}

func (s *Server) ListWebhookDeliveries(ctx context.Context, req ListWebhookDeliveriesRequestObject) (ListWebhookDeliveriesResponseObject, error) {
	list, err := s.listWebhookDeliveries(ctx, req.TenantId, req.WebhookId, req.Params.Limit, req.Params.Cursor, req.Params.Status)
	if err != nil {
		return nil, err
	}
	return ListWebhookDeliveries200JSONResponse(list), nil
}

func (s *Server) RedeliverWebhook(ctx context.Context, req RedeliverWebhookRequestObject) (RedeliverWebhookResponseObject, error) {
	d, err := s.webhooks.Redeliver(ctx, auditOf(ctx, req.TenantId, "webhook.redeliver", "webhook_delivery", req.DeliveryId), req.TenantId, req.WebhookId, req.DeliveryId)
	if err != nil {
		return nil, err
	}
	return RedeliverWebhook202JSONResponse{Body: toAPIDelivery(d), Headers: RedeliverWebhook202ResponseHeaders{Location: deliveriesURL(req.TenantId, req.WebhookId)}}, nil
}

func (s *Server) RecoverWebhook(ctx context.Context, req RecoverWebhookRequestObject) (RecoverWebhookResponseObject, error) {
	n, err := s.webhooks.Recover(ctx, auditOf(ctx, req.TenantId, "webhook.recover", "webhook", req.WebhookId), req.TenantId, req.WebhookId, req.Body.Since)
	if err != nil {
		return nil, err
	}
	return RecoverWebhook202JSONResponse{Body: WebhookRecovered{Recovered: n}, Headers: RecoverWebhook202ResponseHeaders{Location: deliveriesURL(req.TenantId, req.WebhookId)}}, nil
}

func (s *Server) TestWebhook(ctx context.Context, req TestWebhookRequestObject) (TestWebhookResponseObject, error) {
	d, err := s.webhooks.Test(ctx, auditOf(ctx, req.TenantId, "webhook.test", "webhook", req.WebhookId), req.TenantId, req.WebhookId)
	if err != nil {
		return nil, err
	}
	return TestWebhook202JSONResponse{Body: toAPIDelivery(d), Headers: TestWebhook202ResponseHeaders{Location: deliveriesURL(req.TenantId, req.WebhookId)}}, nil
}

// Fleet routes (admin only, by the spec's security).

func (s *Server) ListFleetWebhooks(ctx context.Context, req ListFleetWebhooksRequestObject) (ListFleetWebhooksResponseObject, error) {
	list, err := s.listWebhooks(ctx, "", req.Params.Limit, req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	return ListFleetWebhooks200JSONResponse(list), nil
}

func (s *Server) CreateFleetWebhook(ctx context.Context, req CreateFleetWebhookRequestObject) (CreateFleetWebhookResponseObject, error) {
	e, secret, err := s.createWebhook(ctx, "", req.Body)
	if err != nil {
		return nil, err
	}
	return CreateFleetWebhook201JSONResponse{Body: withSecret(e, secret),
		Headers: CreateFleetWebhook201ResponseHeaders{Location: webhookLocation("", e.ID), ETag: webhookETag(e)}}, nil
}

func (s *Server) GetFleetWebhook(ctx context.Context, req GetFleetWebhookRequestObject) (GetFleetWebhookResponseObject, error) {
	e, err := s.webhooks.Get(ctx, "", req.WebhookId)
	if err != nil {
		return nil, err
	}
	return GetFleetWebhook200JSONResponse{Body: toAPIWebhook(e), Headers: GetFleetWebhook200ResponseHeaders{ETag: webhookETag(e)}}, nil
}

func (s *Server) UpdateFleetWebhook(ctx context.Context, req UpdateFleetWebhookRequestObject) (UpdateFleetWebhookResponseObject, error) {
	e, err := s.updateWebhook(ctx, "", req.WebhookId, req.Params.IfMatch, req.Body)
	if err != nil {
		return nil, err
	}
	return UpdateFleetWebhook200JSONResponse{Body: toAPIWebhook(e), Headers: UpdateFleetWebhook200ResponseHeaders{ETag: webhookETag(e)}}, nil
}

func (s *Server) DeleteFleetWebhook(ctx context.Context, req DeleteFleetWebhookRequestObject) (DeleteFleetWebhookResponseObject, error) {
	if err := s.deleteWebhook(ctx, "", req.WebhookId, req.Params.IfMatch); err != nil {
		return nil, err
	}
	return DeleteFleetWebhook204Response{}, nil
}

func (s *Server) RotateFleetWebhookSecret(ctx context.Context, req RotateFleetWebhookSecretRequestObject) (RotateFleetWebhookSecretResponseObject, error) {
	e, secret, err := s.rotateWebhook(ctx, "", req.WebhookId, req.Params.GraceSeconds)
	if err != nil {
		return nil, err
	}
	return RotateFleetWebhookSecret200JSONResponse{Body: withSecret(e, secret), Headers: RotateFleetWebhookSecret200ResponseHeaders{ETag: webhookETag(e)}}, nil
}

func (s *Server) ListFleetWebhookDeliveries(ctx context.Context, req ListFleetWebhookDeliveriesRequestObject) (ListFleetWebhookDeliveriesResponseObject, error) {
	list, err := s.listWebhookDeliveries(ctx, "", req.WebhookId, req.Params.Limit, req.Params.Cursor, req.Params.Status)
	if err != nil {
		return nil, err
	}
	return ListFleetWebhookDeliveries200JSONResponse(list), nil
}

func (s *Server) RedeliverFleetWebhook(ctx context.Context, req RedeliverFleetWebhookRequestObject) (RedeliverFleetWebhookResponseObject, error) {
	d, err := s.webhooks.Redeliver(ctx, auditOf(ctx, "", "webhook.redeliver", "webhook_delivery", req.DeliveryId), "", req.WebhookId, req.DeliveryId)
	if err != nil {
		return nil, err
	}
	return RedeliverFleetWebhook202JSONResponse{Body: toAPIDelivery(d), Headers: RedeliverFleetWebhook202ResponseHeaders{Location: deliveriesURL("", req.WebhookId)}}, nil
}

func (s *Server) RecoverFleetWebhook(ctx context.Context, req RecoverFleetWebhookRequestObject) (RecoverFleetWebhookResponseObject, error) {
	n, err := s.webhooks.Recover(ctx, auditOf(ctx, "", "webhook.recover", "webhook", req.WebhookId), "", req.WebhookId, req.Body.Since)
	if err != nil {
		return nil, err
	}
	return RecoverFleetWebhook202JSONResponse{Body: WebhookRecovered{Recovered: n}, Headers: RecoverFleetWebhook202ResponseHeaders{Location: deliveriesURL("", req.WebhookId)}}, nil
}

func (s *Server) TestFleetWebhook(ctx context.Context, req TestFleetWebhookRequestObject) (TestFleetWebhookResponseObject, error) {
	d, err := s.webhooks.Test(ctx, auditOf(ctx, "", "webhook.test", "webhook", req.WebhookId), "", req.WebhookId)
	if err != nil {
		return nil, err
	}
	return TestFleetWebhook202JSONResponse{Body: toAPIDelivery(d), Headers: TestFleetWebhook202ResponseHeaders{Location: deliveriesURL("", req.WebhookId)}}, nil
}
