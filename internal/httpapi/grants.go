package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/cairn-cdp/cairn/internal/grants"
	"github.com/cairn-cdp/cairn/internal/page"
	"github.com/cairn-cdp/cairn/internal/placement"
)

// catalogNotReady answers the grant routes of a tenant whose catalog in the
// Region is not provisioned (placement.ErrNotReady, which the profile
// routes answer as tenant-not-ready).
func catalogNotReady(err error) error {
	if errors.Is(err, placement.ErrNotReady) {
		return newProblem(http.StatusConflict, "catalog-not-ready", "Catalog not ready", "The tenant's catalog in that Region is not provisioned yet.")
	}
	return err
}

func toAPIGrant(g grants.Grant) Grant {
	perms := make([]Permission, len(g.Permissions))
	for i, p := range g.Permissions {
		perms[i] = Permission(p)
	}
	res := GrantResource{Region: Region(g.Resource.Region), Database: g.Resource.Database, Table: optional(g.Resource.Table)}
	if len(g.Resource.Columns) > 0 {
		cols := g.Resource.Columns
		res.Columns = &cols
	}
	if len(g.Resource.Tags) > 0 {
		tags := TagExpression(g.Resource.Tags)
		res.Tag = &tags
	}
	return Grant{
		Id: g.ID, TenantId: g.TenantID, Principal: g.Principal, Resource: res, Permissions: perms,
		CellsFilter: optional(g.CellsFilter), Status: GrantStatus(g.Status), Reason: optional(g.Reason),
		CreatedBy: g.CreatedBy, CreatedAt: g.CreatedAt.UTC(), UpdatedAt: g.UpdatedAt.UTC(),
	}
}

func toAPIPrincipal(p grants.Principal) Principal {
	return Principal{Principal: p.Principal, TenantId: p.TenantID, CreatedAt: p.CreatedAt.UTC()}
}

func decodeCursor(c *string) (int64, error) {
	if c == nil {
		return 0, nil
	}
	return page.Decode(*c)
}

// decodeStringCursor is decodeCursor for lists ordered by a store's own
// position (page.EncodeString).
func decodeStringCursor(c *string) (string, error) {
	if c == nil {
		return "", nil
	}
	return page.DecodeString(*c)
}

func (s *Server) ListPrincipals(ctx context.Context, req ListPrincipalsRequestObject) (ListPrincipalsResponseObject, error) {
	limit := page.Limit(req.Params.Limit)
	after, err := decodeCursor(req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	list, err := s.grants.Principals(ctx, req.TenantId, after, limit+1)
	if err != nil {
		return nil, err
	}
	list, next := page.Trim(list, limit, func(p grants.Principal) int64 { return p.Seq })
	items := make([]Principal, len(list))
	for i, p := range list {
		items[i] = toAPIPrincipal(p)
	}
	return ListPrincipals200JSONResponse{Items: items, NextCursor: next}, nil
}

func (s *Server) RegisterPrincipal(ctx context.Context, req RegisterPrincipalRequestObject) (RegisterPrincipalResponseObject, error) {
	rec := auditOf(ctx, req.TenantId, "principal.register", "principal", req.Body.Principal)
	p, created, err := s.grants.RegisterPrincipal(ctx, rec, req.TenantId, req.Body.Principal)
	if err != nil {
		return nil, err
	}
	if created {
		return RegisterPrincipal201JSONResponse(toAPIPrincipal(p)), nil
	}
	return RegisterPrincipal200JSONResponse(toAPIPrincipal(p)), nil
}

func (s *Server) RemovePrincipal(ctx context.Context, req RemovePrincipalRequestObject) (RemovePrincipalResponseObject, error) {
	rec := auditOf(ctx, req.TenantId, "principal.remove", "principal", req.Body.Principal)
	if err := s.grants.RemovePrincipal(ctx, rec, req.TenantId, req.Body.Principal); err != nil {
		return nil, err
	}
	return RemovePrincipal204Response{}, nil
}

func (s *Server) ListGrants(ctx context.Context, req ListGrantsRequestObject) (ListGrantsResponseObject, error) {
	limit := page.Limit(req.Params.Limit)
	after, err := decodeCursor(req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	p := grants.GrantListParams{TenantID: req.TenantId, AfterSeq: after, Limit: limit + 1}
	if req.Params.Principal != nil {
		p.Principal = *req.Params.Principal
	}
	if req.Params.Status != nil {
		p.Status = grants.Status(*req.Params.Status)
	}
	list, err := s.grants.Grants(ctx, p)
	if err != nil {
		return nil, err
	}
	list, next := page.Trim(list, limit, func(g grants.Grant) int64 { return g.Seq })
	items := make([]Grant, len(list))
	for i, g := range list {
		items[i] = toAPIGrant(g)
	}
	return ListGrants200JSONResponse{Items: items, NextCursor: next}, nil
}

// grantURL is the grant's URL, for Location.
func grantURL(tenant, id string) string { return "/v1/tenants/" + tenant + "/grants/" + id }

func (s *Server) CreateGrant(ctx context.Context, req CreateGrantRequestObject) (CreateGrantResponseObject, error) {
	p, _ := principalFrom(ctx)
	b := req.Body
	r := grants.GrantRequest{
		TenantID: req.TenantId, Principal: b.Principal, Audit: auditOf(ctx, req.TenantId, "grant.create", "grant", ""), Admin: p.IsAdmin(),
		Resource: grants.Resource{Region: string(b.Resource.Region), Database: b.Resource.Database},
	}
	if b.Resource.Table != nil {
		r.Resource.Table = *b.Resource.Table
	}
	if b.Resource.Columns != nil {
		r.Resource.Columns = *b.Resource.Columns
	}
	if b.Resource.Tag != nil {
		r.Resource.Tags = grants.TagExpression(*b.Resource.Tag)
	}
	for _, p := range b.Permissions {
		r.Permissions = append(r.Permissions, string(p))
	}
	g, _, err := s.grants.Grant(ctx, r)
	if err != nil {
		return nil, catalogNotReady(err)
	}
	return CreateGrant202JSONResponse{Body: toAPIGrant(g), Headers: CreateGrant202ResponseHeaders{Location: grantURL(g.TenantID, g.ID)}}, nil
}

func (s *Server) GetGrant(ctx context.Context, req GetGrantRequestObject) (GetGrantResponseObject, error) {
	g, err := s.grants.GetGrant(ctx, req.TenantId, req.GrantId)
	if err != nil {
		return nil, err
	}
	return GetGrant200JSONResponse(toAPIGrant(g)), nil
}

func (s *Server) RevokeGrant(ctx context.Context, req RevokeGrantRequestObject) (RevokeGrantResponseObject, error) {
	g, err := s.grants.Revoke(ctx, auditOf(ctx, req.TenantId, "grant.revoke", "grant", req.GrantId), req.TenantId, req.GrantId)
	if err != nil {
		return nil, err
	}
	return RevokeGrant202JSONResponse{Body: toAPIGrant(g), Headers: RevokeGrant202ResponseHeaders{Location: grantURL(g.TenantID, g.ID)}}, nil
}

func (s *Server) ReconcileGrants(ctx context.Context, req ReconcileGrantsRequestObject) (ReconcileGrantsResponseObject, error) {
	r, err := s.grants.Reconcile(ctx, auditOf(ctx, req.TenantId, "grant.reconcile", "tenant", req.TenantId), req.TenantId)
	if err != nil {
		return nil, err
	}
	out := ReconcileGrants200JSONResponse{Repaired: r.Repaired, Regions: r.Regions, Unmanaged: []CatalogPermission{}, DroppedFilters: []DroppedCellsFilter{}}
	for _, f := range r.Dropped {
		out.DroppedFilters = append(out.DroppedFilters, DroppedCellsFilter{Region: f.Region, Database: f.Database, Table: f.Table, Name: f.Name})
	}
	if out.Repaired == nil {
		out.Repaired = []string{}
	}
	if out.Regions == nil {
		out.Regions = []string{}
	}
	for _, p := range r.Unmanaged {
		cp := CatalogPermission{Principal: p.Principal, Permissions: p.Permissions, CellsFilter: optional(p.CellsFilter)}
		cp.Resource.Region, cp.Resource.Database, cp.Resource.Table = p.Resource.Region, p.Resource.Database, optional(p.Resource.Table)
		if len(p.Resource.Columns) > 0 {
			cols := p.Resource.Columns
			cp.Resource.Columns = &cols
		}
		if p.AllTables {
			cp.Resource.AllTables = &p.AllTables
		}
		if len(p.Resource.Tags) > 0 {
			tags := map[string][]string(p.Resource.Tags)
			cp.Resource.Tag = &tags
		}
		out.Unmanaged = append(out.Unmanaged, cp)
	}
	return out, nil
}

func (s *Server) CreateCredentials(ctx context.Context, req CreateCredentialsRequestObject) (CreateCredentialsResponseObject, error) {
	c, err := s.grants.Credentials(ctx, auditOf(ctx, req.TenantId, "credentials.issue", "role", ""), req.TenantId)
	if err != nil {
		return nil, catalogNotReady(err)
	}
	return CreateCredentials201JSONResponse{
		AccessKeyId: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken,
		ExpiresAt: c.Expiration.UTC(), Region: Region(c.Region), RoleArn: c.RoleARN, Outputs: outputs(c.Outputs),
	}, nil
}
