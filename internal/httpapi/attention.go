package httpapi

import (
	"context"

	"github.com/cairn-cdp/cairn/internal/attention"
	"github.com/cairn-cdp/cairn/internal/page"
)

func (s *Server) ListAttention(ctx context.Context, req ListAttentionRequestObject) (ListAttentionResponseObject, error) {
	p := attention.ListParams{Limit: page.Limit(req.Params.Limit) + 1}
	if req.Params.Kind != nil {
		p.Kind = attention.Kind(*req.Params.Kind)
	}
	if req.Params.Region != nil {
		p.Region = string(*req.Params.Region)
	}
	// The cursor carries the last item's position in the list's order.
	if req.Params.Cursor != nil {
		pos, err := page.DecodeString(*req.Params.Cursor)
		if err != nil {
			return nil, err
		}
		if p.After, err = attention.ParsePosition(pos); err != nil {
			return nil, page.ErrBadCursor
		}
	}
	list, err := s.attention.AttentionList(ctx, p)
	if err != nil {
		return nil, err
	}
	list, next := page.TrimString(list, p.Limit-1, func(it attention.Item) string { return it.Position().String() })
	items := make([]AttentionItem, len(list))
	for i, it := range list {
		items[i] = toAPIAttention(it)
	}
	return ListAttention200JSONResponse{Items: items, NextCursor: next}, nil
}

func toAPIAttention(it attention.Item) AttentionItem {
	out := AttentionItem{
		Kind: AttentionKind(it.Kind), Region: Region(it.Region), Status: it.Status, Reason: optional(it.Reason),
		StackName: optional(it.StackName), GrantId: optional(it.GrantID), Principal: optional(it.Principal),
		UpdatedAt: it.UpdatedAt.UTC(),
	}
	if it.TenantID != "" {
		status := TenantStatus(it.TenantStatus)
		out.TenantId, out.TenantSlug, out.TenantName, out.TenantStatus = &it.TenantID, &it.TenantSlug, &it.TenantName, &status
	}
	return out
}
