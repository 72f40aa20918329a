package provisioner

import (
	"context"
	"errors"
	"time"

	"github.com/cairn-cdp/cairn/templates"
)

// CloudFormation stack statuses the reconciler acts on. Engines report
// statuses in CloudFormation's own words, whatever their backend.
const (
	StackCreateInProgress         = "CREATE_IN_PROGRESS"
	StackCreateComplete           = "CREATE_COMPLETE"
	StackCreateFailed             = "CREATE_FAILED"
	StackRollbackInProgress       = "ROLLBACK_IN_PROGRESS"
	StackRollbackComplete         = "ROLLBACK_COMPLETE"
	StackRollbackFailed           = "ROLLBACK_FAILED"
	StackDeleteInProgress         = "DELETE_IN_PROGRESS"
	StackDeleteFailed             = "DELETE_FAILED"
	StackUpdateInProgress         = "UPDATE_IN_PROGRESS"
	StackUpdateComplete           = "UPDATE_COMPLETE"
	StackUpdateRollbackComplete   = "UPDATE_ROLLBACK_COMPLETE"
	StackUpdateRollbackInProgress = "UPDATE_ROLLBACK_IN_PROGRESS"
)

// Stack is one stack as an Engine sees it.
type Stack struct {
	Name   string
	ID     string
	Status string
	// Reason is the engine's status reason, e.g. why it rolled back.
	Reason string
	// Outputs are keyed by the template's output logical IDs.
	Outputs map[string]string
	// ChangeSet names the change set the stack was last updated with, ""
	// if none (CloudFormation's ChangeSetId).
	ChangeSet string
}

// StackEvent is one event of a stack, as CloudFormation records them.
type StackEvent struct {
	ID           string
	Time         time.Time
	LogicalID    string
	ResourceType string
	Status       string
	Reason       string
}

// CreateStackInput asks for one stack.
type CreateStackInput struct {
	Region     string
	Name       string
	Template   templates.Template
	Parameters map[string]string
	Tags       map[string]string
	// Token is the ClientRequestToken: repeating a call with the same token
	// never starts a second operation.
	Token string
}

// ErrStackNotFound is returned by StackEvents for a stack that does not
// exist.
var ErrStackNotFound = errors.New("stack not found")

// TenantRole is a pooled tenant's own IAM role: the principal Lake
// Formation grants the tenant's rows of the pool's shared tables to, and
// the role its credentials and queries are issued on. The pool's role
// serves every tenant of the pool, so Lake Formation could not tell them
// apart on it.
type TenantRole struct {
	TenantID string
	// AccountID is the account the role trusts (the pool's).
	AccountID string
	// Policy is the role's inline policy document (JSON): what the tenant
	// reaches in the pool's resources.
	Policy string
	// Boundary, if set, is the ARN of the managed policy the role is
	// created with as its permissions boundary.
	Boundary string
	Tags     map[string]string
}

// TenantRolePath is the IAM path of pooled tenants' roles: under /cairn/,
// whose roles Cairn assumes.
const TenantRolePath = "/cairn/pooled/"

// TenantRoleName names a pooled tenant's own role in a Region: one per
// Region, as the pool's stacks and so the resources its policy names are
// (IAM names are global).
func TenantRoleName(tenantID, region string) string { return "cairn-" + tenantID + "-" + region }

// TenantRolePolicyName names the role's inline policy.
const TenantRolePolicyName = "cairn-tenant-data-access"

// StackPrefix starts the name of every stack Cairn creates; Engine.Stacks
// reports only stacks with this prefix.
const StackPrefix = "cairn-"

// Engine is the provisioning port: the few primitives the reconciler needs
// from CloudFormation (or from the local engine that stands in for it in
// the embedded default). Every method is safe to repeat.
type Engine interface {
	// Stacks returns every stack in region whose name starts with
	// StackPrefix and that is not deleted, keyed by name, with outputs. It
	// reads the whole Region at once (DescribeStacks pages), so a polling
	// round costs calls per Region, not per stack.
	Stacks(ctx context.Context, region string) (map[string]Stack, error)
	// CreateStack starts creating a stack. A stack that already exists
	// under that name is not an error: it returns nil.
	CreateStack(ctx context.Context, in CreateStackInput) error
	// DeleteStack starts deleting a stack; an absent stack is not an error.
	DeleteStack(ctx context.Context, region, name, token string) error
	// StackEvents returns the stack's events, newest first, or
	// ErrStackNotFound.
	StackEvents(ctx context.Context, region, name string) ([]StackEvent, error)
	// EnsureDatabase creates the Glue database (a pooled tenant's own
	// catalog) if it does not exist. locationURI is its data location.
	EnsureDatabase(ctx context.Context, region, name, locationURI string, tags map[string]string) error
	// DeleteDatabase deletes the Glue database; absent is not an error.
	DeleteDatabase(ctx context.Context, region, name string) error
	// DropTenantPartitions drops a tenant's partitions (those whose first
	// value is its ID) of every table of the Glue database that is marked
	// shared (parameter cairn:shared, partitioned by tenant_id first: the
	// lake's tables a pool's tenants share). An absent database is not an
	// error.
	DropTenantPartitions(ctx context.Context, region, database, tenantID string) error
	// DeleteBuckets empties (every object version) and deletes buckets that
	// a stack retained; absent buckets are not an error.
	DeleteBuckets(ctx context.Context, region string, buckets []string) error
	// DeletePrefix deletes every object version under prefix in bucket.
	DeletePrefix(ctx context.Context, region, bucket, prefix string) error
	// EnsureTenantRole creates a pooled tenant's own IAM role in the Region
	// (TenantRolePath, TenantRoleName), which trusts the account with the tenant's ID as
	// external ID, unless it exists, and puts r.Policy as its inline policy
	// (replacing the one it had). It returns the role's ARN. IAM is global:
	// region names the role and picks the client.
	EnsureTenantRole(ctx context.Context, region string, r TenantRole) (string, error)
	// DeleteTenantRole deletes a pooled tenant's own role in the Region and
	// its inline policies; absent is not an error.
	DeleteTenantRole(ctx context.Context, region, tenantID string) error

	// Updates go through change sets (changeset.go): create, inspect,
	// execute. A change set is executed at most once, whatever the number
	// of ExecuteChangeSet calls, which is what keeps a repeated step from
	// updating a stack twice.

	// CreateChangeSet asks for a change set that would update an existing
	// stack to in.Template. A change set of that name that already exists
	// is not an error: it returns nil.
	CreateChangeSet(ctx context.Context, in ChangeSetInput) error
	// DescribeChangeSet returns the change set with its changes, or
	// ErrChangeSetNotFound.
	DescribeChangeSet(ctx context.Context, region, stack, name string) (ChangeSet, error)
	// ExecuteChangeSet starts the update the change set describes, or
	// ErrChangeSetNotFound. CloudFormation executes a change set once and
	// a repeat is answered nil, but the emulator (moto) executes it again:
	// callers describe the change set first and execute only one whose
	// ExecutionStatus is AVAILABLE.
	ExecuteChangeSet(ctx context.Context, region, stack, name, token string) error
	// DeleteChangeSet deletes a change set that was not executed; absent
	// is not an error.
	DeleteChangeSet(ctx context.Context, region, stack, name string) error

	// DetectDrift starts drift detection on the stack and returns the
	// detection's ID, or ErrStackNotFound.
	DetectDrift(ctx context.Context, region, stack string) (string, error)
	// DriftDetection returns the state of a detection DetectDrift started.
	DriftDetection(ctx context.Context, region, detectionID string) (DriftDetection, error)
	// ResourceDrifts returns the stack's resources whose last detection
	// found them MODIFIED or DELETED, or ErrStackNotFound.
	ResourceDrifts(ctx context.Context, region, stack string) ([]ResourceDrift, error)
}
