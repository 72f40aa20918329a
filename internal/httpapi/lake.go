package httpapi

import (
	"context"

	"github.com/cairn-cdp/cairn/internal/lake"
)

// LakeStatus reads a tenant's lake (lake.Service).
type LakeStatus interface {
	Status(ctx context.Context, tenant string) (lake.Status, error)
}

func (s *Server) GetTenantLake(ctx context.Context, req GetTenantLakeRequestObject) (GetTenantLakeResponseObject, error) {
	if _, err := s.tenants.Get(ctx, req.TenantId); err != nil {
		return nil, err
	}
	if s.lake == nil {
		return nil, errNotFound
	}
	st, err := s.lake.Status(ctx, req.TenantId)
	if err != nil {
		return nil, err
	}
	out := TenantLake{TenantId: req.TenantId, PendingPartitions: st.Pending, Tables: make([]LakeTable, len(st.Tables))}
	if st.RawLatest != "" {
		out.RawLatestPartition = &st.RawLatest
	}
	for i, t := range st.Tables {
		lt := LakeTable{Name: t.Table, Zone: LakeTableZone(t.Zone), Partitions: t.Partitions, Rows: t.Rows, Bytes: t.Bytes, LagSeconds: int64(t.Lag.Seconds())}
		if t.LastPartition != "" {
			lt.LastPartition = &t.LastPartition
		}
		if !t.RefinedAt.IsZero() {
			at := t.RefinedAt.UTC()
			lt.RefinedAt = &at
		}
		out.Tables[i] = lt
	}
	return GetTenantLake200JSONResponse(out), nil
}
