package provisioner

import (
	"strconv"
	"strings"

	"github.com/cairn-cdp/cairn/internal/profiles"
	"github.com/cairn-cdp/cairn/templates"
)

// PoolID names the pool; one pool stack per Region.
const PoolID = "pool"

// DedicatedStackName is the name of a dedicated tenant's stack in every
// Region. Stack names may not contain '_'.
func DedicatedStackName(tenantID string) string {
	return StackPrefix + strings.ReplaceAll(tenantID, "_", "-")
}

// PoolStackName is the name of the pool stack in every Region.
func PoolStackName() string { return StackPrefix + PoolID }

// token is the ClientRequestToken of one step on one attempt of a stack.
func token(stack, step string, attempt int) string {
	return stack + "-" + step + "-" + strconv.Itoa(attempt)
}

// S3Prefix is a pooled tenant's prefix in each pool bucket.
func S3Prefix(tenantID string) string { return "tenants/" + tenantID + "/" }

// GlueDatabase is the tenant's own Glue database.
func GlueDatabase(kind Kind, tenantID string) string {
	if kind == KindPooled {
		return templates.PooledGlueDatabase(PoolID, tenantID)
	}
	return templates.DedicatedGlueDatabase(tenantID)
}

// PoolGlueDatabase is the pool's Glue database of the lake tables its
// tenants share (package lake/athena makes it at the pool's first run).
func PoolGlueDatabase() string { return templates.PoolSharedGlueDatabase(PoolID) }

// stackOutputs renames a stack's CloudFormation outputs to Cairn's keys.
func stackOutputs(out map[string]string) map[string]string {
	m := make(map[string]string, len(out))
	for k, v := range out {
		if name, ok := templates.OutputKeys[k]; ok && v != "" {
			m[name] = v
		}
	}
	return m
}

// sliceOutputs are a pooled tenant's outputs: the pool's resources, its
// prefixes in them and its own Glue database.
func sliceOutputs(pool Pool, tenantID string) map[string]string {
	m := stackOutputs(pool.Outputs)
	m["glue_database"] = GlueDatabase(KindPooled, tenantID)
	m["s3_prefix"] = S3Prefix(tenantID)
	m["key_prefix"] = profiles.KeyPrefix(tenantID) // the profile stores' key layout
	return m
}

// failedStatus reports whether a stack status is a failure that will not
// heal by waiting.
func failedStatus(s string) bool {
	switch s {
	case StackCreateFailed, StackRollbackComplete, StackRollbackFailed, StackDeleteFailed,
		StackUpdateRollbackComplete, "UPDATE_ROLLBACK_FAILED", "UPDATE_FAILED":
		return true
	}
	return false
}

// completeStatus reports whether a stack is created and usable.
func completeStatus(s string) bool {
	return s == StackCreateComplete || s == StackUpdateComplete
}
