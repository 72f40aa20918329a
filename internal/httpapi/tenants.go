package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-cdp/cairn/internal/offboarding"
	"github.com/cairn-cdp/cairn/internal/page"
	"github.com/cairn-cdp/cairn/internal/tenants"
)

// Converters between API and domain types. API types never reach the
// domain and domain types never reach the wire.

func toAPITenant(t tenants.Tenant) Tenant {
	regions := make([]Region, len(t.Regions))
	for i, r := range t.Regions {
		regions[i] = Region(r)
	}
	out := Tenant{
		Id:           t.ID,
		Slug:         t.Slug,
		Name:         t.Name,
		Tier:         Tier(t.Tier),
		Status:       TenantStatus(t.Status),
		HomeRegion:   Region(t.HomeRegion),
		Regions:      regions,
		Plan:         t.Plan,
		ContactEmail: t.ContactEmail,
		Labels:       t.Labels,
		Version:      t.Version,
		CreatedAt:    t.CreatedAt.UTC(),
		UpdatedAt:    t.UpdatedAt.UTC(),
	}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	if t.StatusReason != "" {
		out.StatusReason = &t.StatusReason
	}
	if t.DeletedAt != nil {
		d := t.DeletedAt.UTC()
		out.DeletedAt = &d
	}
	return out
}

func toOnboardParams(b TenantCreate) tenants.OnboardParams {
	p := tenants.OnboardParams{
		Name:       b.Name,
		Slug:       b.Slug,
		Tier:       tenants.Tier(b.Tier),
		HomeRegion: string(b.HomeRegion),
	}
	if b.Regions != nil {
		for _, r := range *b.Regions {
			p.Regions = append(p.Regions, string(r))
		}
	}
	if b.Plan != nil {
		p.Plan = *b.Plan
	}
	if b.ContactEmail != nil {
		p.ContactEmail = string(*b.ContactEmail)
	}
	if b.Labels != nil {
		p.Labels = *b.Labels
	}
	return p
}

func etag(t tenants.Tenant) string { return fmt.Sprintf(`"v%d"`, t.Version) }

// entityTag is one entity tag of an If-Match field (RFC 9110, 8.8.3).
type entityTag struct {
	weak   bool
	opaque string // between the quotes
}

// parseIfMatch parses an If-Match field value as RFC 9110 defines it: "*"
// (anyTag), or a comma-separated list of entity tags, each a quoted string
// of visible characters but DQUOTE (obs-text allowed), marked weak with a
// leading "W/"; whitespace around elements and empty elements are allowed
// (5.6.1). Anything else, an unquoted version included, is an error saying
// what is wrong.
func parseIfMatch(h string) (anyTag bool, tags []entityTag, err error) {
	const ows = " \t"
	if strings.Trim(h, ows) == "*" {
		return true, nil, nil
	}
	rest := h
	for {
		rest = strings.TrimLeft(rest, ows+",")
		if rest == "" {
			break
		}
		var tag entityTag
		if strings.HasPrefix(rest, "W/") {
			tag.weak, rest = true, rest[2:]
		}
		if !strings.HasPrefix(rest, `"`) {
			if strings.HasPrefix(rest, "*") {
				return false, nil, errors.New(`"*" must stand alone`)
			}
			return false, nil, errors.New(`an entity tag is a quoted string, like "v3" or W/"v3"`)
		}
		end := strings.IndexByte(rest[1:], '"')
		if end < 0 {
			return false, nil, errors.New("an entity tag lacks its closing quote")
		}
		tag.opaque = rest[1 : 1+end]
		if strings.IndexFunc(tag.opaque, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
			return false, nil, errors.New("an entity tag holds a space or a control character")
		}
		tags = append(tags, tag)
		rest = strings.TrimLeft(rest[2+end:], ows)
		if rest != "" && rest[0] != ',' {
			return false, nil, errors.New("entity tags must be separated by commas")
		}
	}
	if len(tags) == 0 {
		return false, nil, errors.New(`want "*" or at least one entity tag`)
	}
	return false, tags, nil
}

const ifMatchHeader = "If-Match"

// ifMatchProblem is the 400 of a malformed If-Match.
func ifMatchProblem(err error) *problem {
	return badRequest(ifMatchHeader, "not an entity tag list as RFC 9110 defines it: "+err.Error())
}

// errWeakIfMatch answers an If-Match whose only tags are weak: If-Match
// compares strongly (RFC 9110, 13.1.1), so they never match.
var errWeakIfMatch = newProblem(http.StatusPreconditionFailed, "precondition-failed", "Precondition failed",
	"If-Match compares entity tags strongly, so a weak tag (W/) never matches; send the ETag as it was read.")

// ifMatchVersion returns the version an update must find for the tenant's
// If-Match field: nil for "*", the tenant's current version when a strong
// tag of the list names it (the store still checks it did not change since),
// and a 412 when none does. A malformed field is a 400.
func (s *Server) ifMatchVersion(ctx context.Context, id, h string) (*int64, error) {
	anyTag, tags, err := parseIfMatch(h)
	if err != nil {
		return nil, ifMatchProblem(err)
	}
	if anyTag {
		return nil, nil
	}
	t, err := s.tenants.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	want := strings.Trim(etag(t), `"`)
	weakOnly := true
	for _, tag := range tags {
		weakOnly = weakOnly && tag.weak
		if !tag.weak && tag.opaque == want {
			return &t.Version, nil
		}
	}
	if weakOnly {
		return nil, errWeakIfMatch
	}
	return nil, tenants.ErrVersionMismatch
}

// ifMatch is ifMatchVersion for an optional If-Match header: nil when it
// is absent.
func (s *Server) ifMatch(ctx context.Context, id string, h *string) (*int64, error) {
	if h == nil {
		return nil, nil
	}
	return s.ifMatchVersion(ctx, id, *h)
}

func (s *Server) ListTenants(ctx context.Context, req ListTenantsRequestObject) (ListTenantsResponseObject, error) {
	limit := page.Limit(req.Params.Limit)
	p := tenants.ListParams{Limit: limit + 1}
	var err error
	if req.Params.Cursor != nil {
		if p.AfterSeq, err = page.Decode(*req.Params.Cursor); err != nil {
			return nil, err
		}
	}
	if req.Params.Status != nil {
		p.Status = tenants.Status(*req.Params.Status)
	}
	if req.Params.Tier != nil {
		p.Tier = tenants.Tier(*req.Params.Tier)
	}
	if req.Params.Region != nil {
		p.Region = string(*req.Params.Region)
	}
	if req.Params.Q != nil {
		p.Search = *req.Params.Q
	}
	if req.Params.Label != nil {
		key, value, ok := strings.Cut(*req.Params.Label, "=")
		p.LabelKey = key
		if ok {
			p.LabelValue = &value
		}
	}
	list, err := s.tenants.List(ctx, p)
	if err != nil {
		return nil, err
	}
	list, next := page.Trim(list, limit, func(t tenants.Tenant) int64 { return t.Seq })
	items := make([]Tenant, len(list))
	for i, t := range list {
		items[i] = toAPITenant(t)
	}
	return ListTenants200JSONResponse{Items: items, NextCursor: next}, nil
}

func (s *Server) CreateTenant(ctx context.Context, req CreateTenantRequestObject) (CreateTenantResponseObject, error) {
	p := toOnboardParams(*req.Body)
	p.Audit = auditOf(ctx, "", "tenant.create", "tenant", "")
	t, err := s.tenants.Onboard(ctx, p)
	if err != nil {
		return nil, err
	}
	return CreateTenant202JSONResponse{
		Body:    toAPITenant(t),
		Headers: CreateTenant202ResponseHeaders{Location: tenantURL(t.ID), ETag: etag(t)},
	}, nil
}

func (s *Server) GetTenant(ctx context.Context, req GetTenantRequestObject) (GetTenantResponseObject, error) {
	t, err := s.tenants.Get(ctx, req.TenantId)
	if err != nil {
		return nil, err
	}
	body := toAPITenant(t)
	if t.Status == tenants.StatusDeprovisioning && s.offboarding != nil {
		p, err := s.offboarding.Progress(ctx, t.ID)
		if err != nil {
			return nil, err
		}
		body.Offboarding = toAPIOffboarding(p)
	}
	return GetTenant200JSONResponse{Body: body, Headers: GetTenant200ResponseHeaders{ETag: etag(t)}}, nil
}

// OffboardingReader reads how far a tenant's offboarding got
// (offboarding.Offboarder).
type OffboardingReader interface {
	Progress(ctx context.Context, tenantID string) (offboarding.Progress, error)
}

var _ OffboardingReader = (*offboarding.Offboarder)(nil)

func toAPIOffboarding(p offboarding.Progress) *OffboardingProgress {
	out := &OffboardingProgress{Done: make([]OffboardingStep, len(p.Done)), Pending: p.Pending}
	for i, d := range p.Done {
		out.Done[i] = OffboardingStep{Step: d.Step, FinishedAt: d.At.UTC()}
	}
	return out
}

func (s *Server) UpdateTenant(ctx context.Context, req UpdateTenantRequestObject) (UpdateTenantResponseObject, error) {
	p := tenants.UpdateParams{Name: req.Body.Name, Plan: req.Body.Plan, Labels: (*map[string]string)(req.Body.Labels)}
	if req.Body.ContactEmail != nil {
		e := string(*req.Body.ContactEmail)
		p.ContactEmail = &e
	}
	if req.Body.Regions != nil {
		regions := make([]string, len(*req.Body.Regions))
		for i, r := range *req.Body.Regions {
			regions[i] = string(r)
		}
		p.Regions = &regions
	}
	v, err := s.ifMatch(ctx, req.TenantId, req.Params.IfMatch)
	if err != nil {
		return nil, err
	}
	p.IfVersion = v
	p.Audit = auditOf(ctx, req.TenantId, "tenant.update", "tenant", req.TenantId)
	t, err := s.tenants.Update(ctx, req.TenantId, p)
	if err != nil {
		return nil, err
	}
	return UpdateTenant200JSONResponse{Body: toAPITenant(t), Headers: UpdateTenant200ResponseHeaders{ETag: etag(t)}}, nil
}

// tenantURL is the tenant's URL, for Location.
func tenantURL(id string) string { return "/v1/tenants/" + id }

func (s *Server) DeleteTenant(ctx context.Context, req DeleteTenantRequestObject) (DeleteTenantResponseObject, error) {
	purge := req.Params.Purge != nil && *req.Params.Purge
	v, err := s.ifMatch(ctx, req.TenantId, req.Params.IfMatch)
	if err != nil {
		return nil, err
	}
	t, err := s.tenants.Offboard(ctx, auditOf(ctx, req.TenantId, "tenant.delete", "tenant", req.TenantId).With("purge", strconv.FormatBool(purge)), req.TenantId, v, purge)
	if err != nil {
		return nil, err
	}
	return DeleteTenant202JSONResponse{Body: toAPITenant(t), Headers: DeleteTenant202ResponseHeaders{Location: tenantURL(t.ID)}}, nil
}

func tenantOK(t tenants.Tenant) TenantOKJSONResponse {
	return TenantOKJSONResponse{Body: toAPITenant(t), Headers: TenantOKResponseHeaders{ETag: etag(t)}}
}

func (s *Server) SuspendTenant(ctx context.Context, req SuspendTenantRequestObject) (SuspendTenantResponseObject, error) {
	v, err := s.ifMatch(ctx, req.TenantId, req.Params.IfMatch)
	if err != nil {
		return nil, err
	}
	t, err := s.tenants.Suspend(ctx, auditOf(ctx, req.TenantId, "tenant.suspend", "tenant", req.TenantId), req.TenantId, v)
	if err != nil {
		return nil, err
	}
	return SuspendTenant200JSONResponse{tenantOK(t)}, nil
}

func (s *Server) ResumeTenant(ctx context.Context, req ResumeTenantRequestObject) (ResumeTenantResponseObject, error) {
	v, err := s.ifMatch(ctx, req.TenantId, req.Params.IfMatch)
	if err != nil {
		return nil, err
	}
	t, err := s.tenants.Resume(ctx, auditOf(ctx, req.TenantId, "tenant.resume", "tenant", req.TenantId), req.TenantId, v)
	if err != nil {
		return nil, err
	}
	return ResumeTenant200JSONResponse{tenantOK(t)}, nil
}

func (s *Server) RetryTenant(ctx context.Context, req RetryTenantRequestObject) (RetryTenantResponseObject, error) {
	v, err := s.ifMatch(ctx, req.TenantId, req.Params.IfMatch)
	if err != nil {
		return nil, err
	}
	t, err := s.tenants.Retry(ctx, auditOf(ctx, req.TenantId, "tenant.retry", "tenant", req.TenantId), req.TenantId, v)
	if err != nil {
		return nil, err
	}
	return RetryTenant202JSONResponse{TenantAcceptedJSONResponse{Body: toAPITenant(t), Headers: TenantAcceptedResponseHeaders{Location: tenantURL(t.ID)}}}, nil
}

func (s *Server) CreateTenantToken(ctx context.Context, req CreateTenantTokenRequestObject) (CreateTenantTokenResponseObject, error) {
	t, err := s.tenants.Get(ctx, req.TenantId)
	if err != nil {
		return nil, err
	}
	if t.Status != tenants.StatusActive {
		return nil, newProblem(http.StatusConflict, "tenant-not-active", "Tenant not active",
			"Tokens are minted only for active tenants; this tenant is "+string(t.Status)+".")
	}
	ttl := time.Hour
	if req.Body.TtlSeconds != nil {
		ttl = time.Duration(*req.Body.TtlSeconds) * time.Second
	}
	scopes := make([]string, len(req.Body.Scopes))
	for i, sc := range req.Body.Scopes {
		scopes[i] = string(sc)
	}
	token, exp, err := s.auth.MintTenant(t.ID, scopes, ttl)
	if err != nil {
		return nil, err
	}
	// Minting changes nothing stored: the audit event is the token's only
	// trace, and a token whose minting cannot be recorded is not handed out.
	rec := auditOf(ctx, t.ID, "token.mint", "tenant", t.ID).With("scopes", strings.Join(scopes, ",")).
		With("expires_at", exp.UTC().Format(time.RFC3339))
	if err := s.record(ctx, rec); err != nil {
		return nil, err
	}
	return CreateTenantToken201JSONResponse{
		Token:     token,
		TokenType: TokenTokenTypeBearer,
		TenantId:  t.ID,
		Scopes:    req.Body.Scopes,
		ExpiresAt: exp.UTC(),
	}, nil
}
