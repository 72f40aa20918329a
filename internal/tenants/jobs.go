package tenants

// ProvisionArgs asks the provisioner to bring the tenant's stacks in line
// with its desired Regions and tier. It carries only the key: the worker
// re-reads the tenant every run.
type ProvisionArgs struct {
	TenantID string `json:"tenant_id"`
}

// Kind implements JobArgs.
func (ProvisionArgs) Kind() string { return "tenant_provision" }

// DeprovisionArgs asks the provisioner to take the tenant's stacks away.
type DeprovisionArgs struct {
	TenantID string `json:"tenant_id"`
	// Purge also deletes retained data buckets.
	Purge bool `json:"purge,omitempty"`
}

// Kind implements JobArgs.
func (DeprovisionArgs) Kind() string { return "tenant_deprovision" }

// AccessSyncArgs asks the grants broker to bring the tenant's data access
// in line with its status: taken away while suspended or offboarded,
// restored when it resumes.
type AccessSyncArgs struct {
	TenantID string `json:"tenant_id"`
}

// Kind implements JobArgs.
func (AccessSyncArgs) Kind() string { return "tenant_access_sync" }
