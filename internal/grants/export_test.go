package grants

import "context"

// RunRevoke runs the grant revoke job's work once.
func (s *Service) RunRevoke(ctx context.Context, tenantID, id string) error {
	return s.revoke(ctx, tenantID, id)
}

// Filters returns the data cells filters the local catalog holds in region.
func (c *LocalCatalog) Filters(region string) ([]CellsFilter, error) {
	l, err := c.read(region)
	return l.Filters, err
}
