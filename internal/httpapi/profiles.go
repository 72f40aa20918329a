package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/page"
	"github.com/cairn-cdp/cairn/internal/placement"
	"github.com/cairn-cdp/cairn/internal/profiles"
	"github.com/cairn-cdp/cairn/internal/usage"
)

// maxBatchEvents is the most events a batch may hold (SegmentBatch's
// maxItems in the spec).
const maxBatchEvents = 10000

// Source kinds, the label of the ingestion metrics.
const (
	kindWriteKey = "write_key"
	kindToken    = "token"
)

// ingest splits the body (as the generated request object holds it: the
// bytes sent) into its events in one pass, a batch or one event of
// defaultType, parses each, and ingests the valid ones for the tenant.
// Each event keeps its bytes, so the raw zone stores it as sent.
func (s *Server) ingest(ctx context.Context, tenant, kind string, body []byte, batch bool, defaultType string) (IngestResult, error) {
	if s.fence != nil {
		// A tenant moving tiers refuses writes for the few seconds of its
		// switch (migration.Fences); those admitted before finish first.
		release, retry, ok := s.fence.Enter(tenant)
		if !ok {
			return IngestResult{}, errFenced(retry)
		}
		defer release()
	}
	raws, p := splitEvents(body, batch, maxBatchEvents)
	if p != nil {
		return IngestResult{}, p
	}
	if err := s.chargeEvents(ctx, len(raws)); err != nil {
		return IngestResult{}, err
	}
	now := time.Now()
	events := make([]profiles.Event, 0, len(raws))
	out := IngestResult{Errors: []EventError{}}
	for i, raw := range raws {
		ev, err := profiles.ParseEvent(i, raw, defaultType, now)
		if err == nil {
			err = refuseEventNUL(i, raw)
		}
		var ee *profiles.EventError
		if errors.As(err, &ee) {
			out.Errors = append(out.Errors, EventError{Index: ee.Index, Field: ee.Field, Message: ee.Reason})
			continue
		}
		if err != nil {
			return IngestResult{}, err
		}
		events = append(events, ev)
	}
	start := time.Now()
	res, err := s.profiles.Ingest(ctx, tenant, events)
	s.ingestMetrics.observe(kind, len(raws), time.Since(start), res, out.Errors, err)
	if err != nil {
		return IngestResult{}, err
	}
	s.meter.Add(tenant, usage.EventsAccepted, usageSource(ctx, kind), int64(res.Accepted))
	out.Accepted, out.Duplicates, out.Suppressed = res.Accepted, res.Duplicates, res.Suppressed
	out.Success = len(out.Errors) == 0
	return out, nil
}

// usageSource is the dimension accepted events are metered under: the
// write key's source, or usage.DimensionToken for events sent with a token.
func usageSource(ctx context.Context, kind string) string {
	if p, ok := principalFrom(ctx); ok && kind == kindWriteKey {
		if id, ok := strings.CutPrefix(p.Subject, sourceSubject); ok {
			return id
		}
	}
	return usage.DimensionToken
}

// refuseEventNUL refuses an event that carries U+0000, naming where, as the
// gate refuses it in other requests' bodies: no field of an event means
// anything with it, and stores differ in whether they keep it. JSON can
// only carry it escaped, so most events need no decoding.
func refuseEventNUL(index int, raw []byte) error {
	if !bytes.Contains(raw, []byte(`\u0000`)) {
		return nil
	}
	var doc any
	if json.Unmarshal(raw, &doc) != nil {
		return nil
	}
	if ptr, ok := findNUL(doc, ""); ok {
		return &profiles.EventError{Index: index, Field: ptr, Reason: nulMessage}
	}
	return nil
}

// ingestBody returns the body of an ingestion request's generated request
// object. That holds the body's first JSON value; a body with more after
// it (its length, without surrounding space, as the gate read it, is
// longer) is refused.
func ingestBody(ctx context.Context, body *json.RawMessage) ([]byte, error) {
	if body == nil {
		return nil, badRequest("body", "a JSON request body is required")
	}
	if n, ok := ctx.Value(ctxBodyLen).(int); ok && n != len(bytes.TrimSpace(*body)) {
		return nil, badRequest("body", "must hold one JSON value")
	}
	return *body, nil
}

// segment ingests a write-key route's body for the key's tenant.
func (s *Server) segment(ctx context.Context, body *json.RawMessage, batch bool, typ string) (IngestResult, error) {
	p, _ := principalFrom(ctx)
	b, err := ingestBody(ctx, body)
	if err != nil {
		return IngestResult{}, err
	}
	return s.ingest(ctx, p.TenantID, kindWriteKey, b, batch, typ)
}

func (s *Server) SegmentBatch(ctx context.Context, req SegmentBatchRequestObject) (SegmentBatchResponseObject, error) {
	r, err := s.segment(ctx, req.Body, true, "")
	return SegmentBatch200JSONResponse(r), err
}

func (s *Server) SegmentIdentify(ctx context.Context, req SegmentIdentifyRequestObject) (SegmentIdentifyResponseObject, error) {
	r, err := s.segment(ctx, req.Body, false, "identify")
	return SegmentIdentify200JSONResponse(r), err
}

func (s *Server) SegmentTrack(ctx context.Context, req SegmentTrackRequestObject) (SegmentTrackResponseObject, error) {
	r, err := s.segment(ctx, req.Body, false, "track")
	return SegmentTrack200JSONResponse(r), err
}

func (s *Server) SegmentPage(ctx context.Context, req SegmentPageRequestObject) (SegmentPageResponseObject, error) {
	r, err := s.segment(ctx, req.Body, false, "page")
	return SegmentPage200JSONResponse(r), err
}

func (s *Server) SegmentScreen(ctx context.Context, req SegmentScreenRequestObject) (SegmentScreenResponseObject, error) {
	r, err := s.segment(ctx, req.Body, false, "screen")
	return SegmentScreen200JSONResponse(r), err
}

func (s *Server) SegmentGroup(ctx context.Context, req SegmentGroupRequestObject) (SegmentGroupResponseObject, error) {
	r, err := s.segment(ctx, req.Body, false, "group")
	return SegmentGroup200JSONResponse(r), err
}

func (s *Server) SegmentAlias(ctx context.Context, req SegmentAliasRequestObject) (SegmentAliasResponseObject, error) {
	r, err := s.segment(ctx, req.Body, false, "alias")
	return SegmentAlias200JSONResponse(r), err
}

// The short paths analytics.js posts to.

func (s *Server) SegmentBatchShort(ctx context.Context, req SegmentBatchShortRequestObject) (SegmentBatchShortResponseObject, error) {
	r, err := s.segment(ctx, req.Body, true, "")
	return SegmentBatchShort200JSONResponse(r), err
}

func (s *Server) SegmentIdentifyShort(ctx context.Context, req SegmentIdentifyShortRequestObject) (SegmentIdentifyShortResponseObject, error) {
	r, err := s.segment(ctx, req.Body, false, "identify")
	return SegmentIdentifyShort200JSONResponse(r), err
}

func (s *Server) SegmentTrackShort(ctx context.Context, req SegmentTrackShortRequestObject) (SegmentTrackShortResponseObject, error) {
	r, err := s.segment(ctx, req.Body, false, "track")
	return SegmentTrackShort200JSONResponse(r), err
}

func (s *Server) SegmentPageShort(ctx context.Context, req SegmentPageShortRequestObject) (SegmentPageShortResponseObject, error) {
	r, err := s.segment(ctx, req.Body, false, "page")
	return SegmentPageShort200JSONResponse(r), err
}

func (s *Server) SegmentScreenShort(ctx context.Context, req SegmentScreenShortRequestObject) (SegmentScreenShortResponseObject, error) {
	r, err := s.segment(ctx, req.Body, false, "screen")
	return SegmentScreenShort200JSONResponse(r), err
}

func (s *Server) SegmentGroupShort(ctx context.Context, req SegmentGroupShortRequestObject) (SegmentGroupShortResponseObject, error) {
	r, err := s.segment(ctx, req.Body, false, "group")
	return SegmentGroupShort200JSONResponse(r), err
}

func (s *Server) SegmentAliasShort(ctx context.Context, req SegmentAliasShortRequestObject) (SegmentAliasShortResponseObject, error) {
	r, err := s.segment(ctx, req.Body, false, "alias")
	return SegmentAliasShort200JSONResponse(r), err
}

func (s *Server) IngestEvents(ctx context.Context, req IngestEventsRequestObject) (IngestEventsResponseObject, error) {
	if _, err := s.tenants.Get(ctx, req.TenantId); err != nil {
		return nil, err
	}
	body, err := ingestBody(ctx, req.Body)
	if err != nil {
		return nil, err
	}
	r, err := s.ingest(ctx, req.TenantId, kindToken, body, true, "")
	if err != nil {
		return nil, err
	}
	return IngestEvents200JSONResponse(r), nil
}

// browserRequest is what the gate learnt of a browser settings request:
// the write key's source and where the request was sent.
type browserRequest struct {
	source profiles.Source
	host   string
	scheme string
}

// settingsMaxAge is how long the settings document may be cached: a
// source's revocation reaches browsers within it.
const settingsMaxAge = "public, max-age=60"

func (s *Server) GetSourceSettings(ctx context.Context, req GetSourceSettingsRequestObject) (GetSourceSettingsResponseObject, error) {
	b, ok := ctx.Value(ctxSource).(browserRequest)
	if !ok {
		return nil, errors.New("settings: the gate did not resolve the write key")
	}
	doc := BrowserSettings{
		AnalyticsNextEnabled: true,
		EdgeFunction:         map[string]any{},
		EnabledMiddleware:    map[string]any{},
		MiddlewareSettings:   map[string]any{},
		RemotePlugins:        []map[string]any{},
		// Every event type goes to the Segment.io integration, and no
		// other destination is bundled.
		Plan: map[string]any{
			"track":    map[string]any{"__default": map[string]any{"enabled": true, "integrations": map[string]any{}}},
			"identify": map[string]any{"__default": map[string]any{"enabled": true}},
			"group":    map[string]any{"__default": map[string]any{"enabled": true}},
		},
	}
	// sampleRate 0: the library sends no usage metrics (to Segment's API).
	doc.Metrics.SampleRate = 0
	bundled := false
	doc.Integrations.SegmentIo = BrowserSegmentIO{
		ApiKey: req.WriteKey, ApiHost: b.host + "/v1", Protocol: BrowserSegmentIOProtocol(b.scheme),
		AddBundledMetadata: &bundled, UnbundledIntegrations: &[]string{},
	}
	return GetSourceSettings200JSONResponse{Body: doc, Headers: GetSourceSettings200ResponseHeaders{CacheControl: settingsMaxAge}}, nil
}

func toAPISource(src profiles.Source) Source {
	origins := src.AllowedOrigins
	if origins == nil {
		origins = []string{}
	}
	return Source{
		Id: src.ID, TenantId: src.TenantID, Name: src.Name, KeyHint: src.KeyHint, CreatedAt: src.CreatedAt.UTC(),
		RotatedAt: src.RotatedAt, RevokedAt: src.RevokedAt, Revoked: src.RevokedAt != nil, AllowedOrigins: origins,
	}
}

func withKey(src profiles.Source, key string) SourceWithKey {
	a := toAPISource(src)
	return SourceWithKey{
		Id: a.Id, TenantId: a.TenantId, Name: a.Name, KeyHint: a.KeyHint, CreatedAt: a.CreatedAt,
		RotatedAt: a.RotatedAt, RevokedAt: a.RevokedAt, Revoked: a.Revoked, AllowedOrigins: a.AllowedOrigins, WriteKey: &key,
	}
}

func (s *Server) ListSources(ctx context.Context, req ListSourcesRequestObject) (ListSourcesResponseObject, error) {
	if _, err := s.tenants.Get(ctx, req.TenantId); err != nil {
		return nil, err
	}
	limit := page.Limit(req.Params.Limit)
	after, err := decodeCursor(req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	list, err := s.sources.List(ctx, req.TenantId, after, limit+1)
	if err != nil {
		return nil, err
	}
	list, next := page.Trim(list, limit, func(s profiles.Source) int64 { return s.Seq })
	items := make([]Source, len(list))
	for i, src := range list {
		items[i] = toAPISource(src)
	}
	return ListSources200JSONResponse{Items: items, NextCursor: next}, nil
}

func (s *Server) CreateSource(ctx context.Context, req CreateSourceRequestObject) (CreateSourceResponseObject, error) {
	if _, err := s.tenants.Get(ctx, req.TenantId); err != nil {
		return nil, err
	}
	var origins []string
	if req.Body.AllowedOrigins != nil {
		origins = *req.Body.AllowedOrigins
	}
	src, key, err := s.sources.Create(ctx, auditOf(ctx, req.TenantId, "source.create", "source", ""), req.TenantId, req.Body.Name, origins)
	if err != nil {
		return nil, err
	}
	return CreateSource201JSONResponse{Body: withKey(src, key), Headers: CreateSource201ResponseHeaders{Location: sourceURL(req.TenantId, src.ID)}}, nil
}

func sourceURL(tenant, id string) string { return "/v1/tenants/" + tenant + "/sources/" + id }

func (s *Server) GetSource(ctx context.Context, req GetSourceRequestObject) (GetSourceResponseObject, error) {
	if _, err := s.tenants.Get(ctx, req.TenantId); err != nil {
		return nil, err
	}
	src, err := s.sources.Get(ctx, req.TenantId, req.SourceId)
	if err != nil {
		return nil, err
	}
	return GetSource200JSONResponse(toAPISource(src)), nil
}

func (s *Server) UpdateSource(ctx context.Context, req UpdateSourceRequestObject) (UpdateSourceResponseObject, error) {
	if _, err := s.tenants.Get(ctx, req.TenantId); err != nil {
		return nil, err
	}
	src, err := s.sources.Get(ctx, req.TenantId, req.SourceId)
	if err != nil {
		return nil, err
	}
	if req.Body.AllowedOrigins != nil {
		if src, err = s.sources.SetAllowedOrigins(ctx, auditOf(ctx, req.TenantId, "source.update", "source", req.SourceId), req.TenantId, req.SourceId, *req.Body.AllowedOrigins); err != nil {
			return nil, err
		}
	}
	return UpdateSource200JSONResponse(toAPISource(src)), nil
}

func (s *Server) RevokeSource(ctx context.Context, req RevokeSourceRequestObject) (RevokeSourceResponseObject, error) {
	src, err := s.sources.Revoke(ctx, auditOf(ctx, req.TenantId, "source.revoke", "source", req.SourceId), req.TenantId, req.SourceId)
	if err != nil {
		return nil, err
	}
	return RevokeSource200JSONResponse(toAPISource(src)), nil
}

func (s *Server) RotateSource(ctx context.Context, req RotateSourceRequestObject) (RotateSourceResponseObject, error) {
	src, key, err := s.sources.Rotate(ctx, auditOf(ctx, req.TenantId, "source.rotate", "source", req.SourceId), req.TenantId, req.SourceId)
	if err != nil {
		return nil, err
	}
	return RotateSource200JSONResponse(withKey(src, key)), nil
}

func toAPIConfig(c profiles.IdentityConfig) IdentityConfig {
	out := IdentityConfig{Identifiers: make([]IdentifierRule, len(c.Identifiers))}
	for i, r := range c.Identifiers {
		out.Identifiers[i] = IdentifierRule{Type: r.Type, Priority: r.Priority, Limit: r.Limit}
		if len(r.Blocked) > 0 {
			b := r.Blocked
			out.Identifiers[i].Blocked = &b
		}
	}
	return out
}

func (s *Server) GetIdentityConfig(ctx context.Context, req GetIdentityConfigRequestObject) (GetIdentityConfigResponseObject, error) {
	if _, err := s.tenants.Get(ctx, req.TenantId); err != nil {
		return nil, err
	}
	c, err := s.profiles.IdentityConfig(ctx, req.TenantId)
	if err != nil {
		return nil, err
	}
	return GetIdentityConfig200JSONResponse(toAPIConfig(c)), nil
}

func (s *Server) PutIdentityConfig(ctx context.Context, req PutIdentityConfigRequestObject) (PutIdentityConfigResponseObject, error) {
	if _, err := s.tenants.Get(ctx, req.TenantId); err != nil {
		return nil, err
	}
	var c profiles.IdentityConfig
	for _, r := range req.Body.Identifiers {
		rule := profiles.IdentifierRule{Type: r.Type, Priority: r.Priority, Limit: r.Limit}
		if r.Blocked != nil {
			rule.Blocked = *r.Blocked
		}
		c.Identifiers = append(c.Identifiers, rule)
	}
	c, err := s.profiles.SetIdentityConfig(ctx, req.TenantId, c)
	if err != nil {
		return nil, err
	}
	// The configuration lives in the profile store, which shares no
	// transaction with the control-plane database: the change is recorded
	// once made.
	if err := s.record(ctx, auditOf(ctx, req.TenantId, "identity_config.put", "identity_config", req.TenantId)); err != nil {
		return nil, err
	}
	return PutIdentityConfig200JSONResponse(toAPIConfig(c)), nil
}

func toAPIProfile(p profiles.Profile) Profile {
	out := Profile{
		Id: p.ID, Traits: p.Traits, Segments: p.Segments, MergedProfileIds: p.MergedProfileIDs,
		Identifiers: make([]ProfileIdentifier, len(p.Identifiers)), CreatedAt: p.CreatedAt.UTC(), UpdatedAt: p.UpdatedAt.UTC(),
	}
	if out.MergedProfileIds == nil {
		out.MergedProfileIds = []string{}
	}
	if out.Segments == nil {
		out.Segments = []string{}
	}
	for i, id := range p.Identifiers {
		out.Identifiers[i] = ProfileIdentifier{Type: id.Type, Value: id.Value, FirstSeen: id.FirstSeen.UTC()}
	}
	return out
}

func (s *Server) LookupProfile(ctx context.Context, req LookupProfileRequestObject) (LookupProfileResponseObject, error) {
	typ, value, _ := strings.Cut(req.Params.Identifier, ":")
	p, err := s.profiles.Lookup(ctx, req.TenantId, profiles.Identifier{Type: typ, Value: value})
	if err != nil {
		return nil, err
	}
	return LookupProfile200JSONResponse(toAPIProfile(p)), nil
}

func (s *Server) GetProfile(ctx context.Context, req GetProfileRequestObject) (GetProfileResponseObject, error) {
	p, err := s.profiles.Profile(ctx, req.TenantId, req.ProfileId)
	if err != nil {
		return nil, err
	}
	return GetProfile200JSONResponse(toAPIProfile(p)), nil
}

func (s *Server) ListProfileEvents(ctx context.Context, req ListProfileEventsRequestObject) (ListProfileEventsResponseObject, error) {
	limit := page.Limit(req.Params.Limit)
	cursor, err := decodeStringCursor(req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	name := ""
	if req.Params.Event != nil {
		name = *req.Params.Event
	}
	list, err := s.profiles.Events(ctx, req.TenantId, req.ProfileId, name, cursor, limit+1)
	if err != nil {
		return nil, err
	}
	list, next := page.TrimString(list, limit, func(e profiles.StoredEvent) string { return e.Cursor })
	items := make([]ProfileEvent, len(list))
	for i, e := range list {
		var raw map[string]any
		_ = json.Unmarshal(e.Raw, &raw)
		items[i] = ProfileEvent{MessageId: e.MessageID, Type: e.Type, Name: optional(e.Name), Timestamp: e.Timestamp.UTC(), ProfileId: e.ProfileID, Event: raw}
	}
	return ListProfileEvents200JSONResponse{Items: items, NextCursor: next}, nil
}

func (s *Server) ListProfileMerges(ctx context.Context, req ListProfileMergesRequestObject) (ListProfileMergesResponseObject, error) {
	list, err := s.profiles.Merges(ctx, req.TenantId, req.ProfileId)
	if err != nil {
		return nil, err
	}
	items := make([]Merge, len(list))
	for i, m := range list {
		items[i] = Merge{MergedProfileId: m.MergedProfileID, Members: m.Members, At: m.At.UTC(), Identifier: m.Identifier}
	}
	return ListProfileMerges200JSONResponse{Items: items}, nil
}

func (s *Server) UnmergeProfile(ctx context.Context, req UnmergeProfileRequestObject) (UnmergeProfileResponseObject, error) {
	p, err := s.profiles.Unmerge(ctx, req.TenantId, req.ProfileId, req.Body.ProfileId)
	if err != nil {
		return nil, err
	}
	// Profiles live in the profile store (DynamoDB or the embedded one),
	// which shares no transaction with the control-plane database: the
	// unmerge is recorded once made.
	rec := auditOf(ctx, req.TenantId, "profile.unmerge", "profile", req.ProfileId).With("split_profile_id", req.Body.ProfileId)
	if err := s.record(ctx, rec); err != nil {
		return nil, err
	}
	return UnmergeProfile200JSONResponse(toAPIProfile(p)), nil
}

func toAPIErasure(e profiles.Erasure) Erasure {
	out := Erasure{
		Id: e.ID, ProfileId: e.ProfileID, Status: ErasureStatus(e.Status), Suppress: e.Suppress,
		CreatedAt: e.CreatedAt.UTC(), UpdatedAt: e.UpdatedAt.UTC(),
		ItemsDeleted: e.ItemsDeleted, ObjectsRewritten: e.ObjectsRewritten, LinesRemoved: e.LinesRemoved,
	}
	if len(e.Zones) > 0 {
		zones := make([]ErasureZone, len(e.Zones))
		for i, z := range e.Zones {
			zones[i] = ErasureZone{Zone: ErasureZoneZone(z.Zone), Partitions: z.Partitions, Rows: z.Rows}
		}
		out.Zones = &zones
	}
	return out
}

func (s *Server) EraseProfile(ctx context.Context, req EraseProfileRequestObject) (EraseProfileResponseObject, error) {
	suppress := req.Params.Suppress != nil && *req.Params.Suppress
	e, err := s.profiles.StartErasure(ctx, req.TenantId, req.ProfileId, suppress, func(ctx context.Context, args profiles.ErasureArgs) error {
		// The erasure is carried out in the profile store by this job; its
		// audit event is written with the job, so there is no erasure
		// without its record (nor a record without its job).
		rec := auditOf(ctx, req.TenantId, "profile.erase", "profile", args.ProfileID).With("erasure_id", args.ErasureID)
		rec.Outcome = audit.OutcomeAccepted
		return s.tenants.Enqueue(ctx, rec, args)
	})
	if err != nil {
		return nil, err
	}
	return EraseProfile202JSONResponse{Body: toAPIErasure(e),
		Headers: EraseProfile202ResponseHeaders{Location: "/v1/tenants/" + req.TenantId + "/erasures/" + e.ID}}, nil
}

func (s *Server) GetErasure(ctx context.Context, req GetErasureRequestObject) (GetErasureResponseObject, error) {
	e, err := s.profiles.GetErasure(ctx, req.TenantId, req.ErasureId)
	if err != nil {
		return nil, err
	}
	return GetErasure200JSONResponse(toAPIErasure(e)), nil
}

// profileProblem maps the profiles package's errors.
func profileProblem(err error) *problem {
	var ve *profiles.ValidationError
	switch {
	case errors.As(err, &ve):
		return badRequest(ve.Field, ve.Reason)
	case errors.Is(err, profiles.ErrProfileNotFound):
		return newProblem(http.StatusNotFound, "not-found", "Not found", "No profile has this ID or identifier.")
	case errors.Is(err, profiles.ErrErasureNotFound):
		return newProblem(http.StatusNotFound, "not-found", "Not found", "No erasure has this ID.")
	case errors.Is(err, profiles.ErrSourceNotFound):
		return newProblem(http.StatusNotFound, "not-found", "Not found", "No source has this ID.")
	case errors.Is(err, profiles.ErrSourceNameTaken):
		return newProblem(http.StatusConflict, "source-name-taken", "Source name taken", "The tenant has a live source with this name.")
	case errors.Is(err, profiles.ErrSourceRevoked):
		return newProblem(http.StatusConflict, "source-revoked", "Source revoked", "A revoked source gets no new key and no changes.")
	case errors.Is(err, profiles.ErrNotMerged):
		return newProblem(http.StatusConflict, "not-merged", "Not merged", "That profile was not merged into this one.")
	case errors.Is(err, placement.ErrNotReady):
		return newProblem(http.StatusConflict, "tenant-not-ready", "Tenant not ready", "The tenant's data stack in its home Region is not provisioned yet.")
	}
	return nil
}
