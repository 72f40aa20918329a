// Package templates holds the two CloudFormation templates that Cairn
// provisions, embedded in the binary:
//
//   - tenant-dedicated.yaml (Dedicated): one stack per dedicated tenant per
//     Region, with the tenant's own KMS key, raw/clean/curated S3 zones,
//     Kinesis ingestion stream, DynamoDB profile table, Glue database, Athena
//     workgroup and data-access role. Parameters: TenantId, TenantSlug, and
//     retention knobs with safe defaults.
//   - pool.yaml (Pool): one shared stack per pool per Region for pooled
//     tenants: the same zones, key, stream, profile table (same key schema and
//     gsi1 index) and an Athena workgroup, plus the pool data-access role from
//     which tenant-scoped credentials are derived with session policies. It has
//     no Glue database: each pooled tenant gets one through the Glue API, named
//     by PooledGlueDatabase. Parameter: PoolId (default "pool").
//
// # Raw landing
//
// Both templates give their Kinesis stream a Firehose delivery stream
// (RawDeliveryStream) into the raw zone bucket, with its own least-privilege
// role, so that streaming producers land in the raw layout the server writes
// and the refinery reads: docs/raw-zone.md is that contract, and
// TestRawDelivery checks the templates against the server's writer. The
// pool's stream partitions by the top-level "tenant_id" of each record
// (Firehose dynamic partitioning), checked against the tenant ID pattern,
// into tenants/<tenant id>/.
//
// A template is versioned by its content: Version is the first 12 hex digits
// of the SHA-256 of the body, so any edit, even to a comment, is a new
// version, and a stack whose recorded version differs is due for UpdateStack.
//
// # Outputs
//
// Both templates expose the same CloudFormation output keys (the pool lacks
// GlueDatabase): RawBucket, CleanBucket, CuratedBucket (bucket names),
// StreamArn, ProfileTable (table name), GlueDatabase (database name),
// DataAccessRoleArn, KmsKeyArn and AthenaWorkGroup (workgroup name). Cairn
// reports them under snake_case keys; OutputKeys maps one to the other.
//
// # Creating the stacks
//
// Stacks need CAPABILITY_IAM (the roles are unnamed). Stack names may not
// contain '_', so a tenant ID cannot be used verbatim in one. Pass the tags
// cairn:tenant-id (or cairn:pool-id) and cairn:managed-by=cairn as stack tags
// too, and tag the KMS key through kms:TagResource: the templates leave it
// untagged because the test emulator cannot create a tagged key.
//
// Buckets and KMS keys are DeletionPolicy RetainExceptOnCreate (so is the
// pool's profile table), with UpdateReplacePolicy Retain: DeleteStack leaves
// them, and purging them is Cairn's job through the service APIs, but a create
// that rolls back deletes them, so a failed stack leaves no orphans behind.
// The stream and the dedicated profile table are deleted with their stack (a
// transient buffer; profiles derived from the retained zones, which an
// offboarded tenant's must not outlive). Raw-zone objects are under Object Lock in GOVERNANCE mode, so
// the purge must delete every object version with BypassGovernanceRetention.
//
// # Under moto (the test emulator, 5.2.5)
//
// Both stacks reach CREATE_COMPLETE, synchronously, in any Region, but:
//
//   - AWS::Glue::Database, AWS::Athena::WorkGroup, AWS::S3::BucketPolicy,
//     AWS::KinesisFirehose::DeliveryStream and AWS::Logs::LogStream are
//     skipped silently (so nothing delivers from the stream to the raw zone
//     under moto), and the GlueDatabase and AthenaWorkGroup outputs
//     are missing from DescribeStacks (not empty: absent). Their names are
//     derivable (DedicatedGlueDatabase, DedicatedWorkGroup, PoolWorkGroup).
//     DescribeStackResources lists each skipped resource as an entry with no
//     logical ID, type or physical ID; DescribeStackResource on one is a 500.
//   - Of the bucket properties only BucketEncryption (without BucketKeyEnabled)
//     and Tags are applied: no versioning, Object Lock, public access block,
//     ownership controls or lifecycle rules. Object Lock can be turned on
//     later through the S3 API only while the bucket is still empty. Do not
//     put the TLS-only bucket policy through the S3 API under moto: moto
//     enforces it, and its endpoint is plain HTTP, so object reads and writes
//     get 403.
//   - The table gets its key schema, gsi1, billing mode and tags, but no TTL,
//     point-in-time recovery or SSE; the stream is one provisioned shard
//     without encryption. Parameter patterns and bounds are not checked, and
//     CAPABILITY_IAM is not required.
//   - DeleteStack honours DeletionPolicy Retain (buckets, KMS keys and the
//     pool table stay) but deletes RetainExceptOnCreate resources: the test
//     environment's moto server (scripts/moto_server.py) retains those too,
//     as AWS does for a stack whose create completed (moto never rolls a
//     create back). UpdateStack succeeds even with no changes (AWS says
//     "No updates are to be performed"), and fails with a 500 if a change
//     touches a bucket.
package templates

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
)

//go:embed *.yaml
var files embed.FS

// File names of the embedded templates.
const (
	DedicatedFile = "tenant-dedicated.yaml"
	PoolFile      = "pool.yaml"
)

// Template is one embedded CloudFormation template.
type Template struct {
	// Name is the template's file name, e.g. "tenant-dedicated.yaml".
	Name string
	// Body is the template text, to pass as TemplateBody (it stays under the
	// 51,200-byte inline limit; a test checks it).
	Body string
	// Version is the first 12 hex digits of the SHA-256 of Body.
	Version string
}

// Dedicated returns the per-tenant (silo) stack template.
func Dedicated() Template { return mustLoad(DedicatedFile) }

// Pool returns the shared pool stack template.
func Pool() Template { return mustLoad(PoolFile) }

// OutputKeys maps each CloudFormation output key of the templates to the key
// under which Cairn reports it.
var OutputKeys = map[string]string{
	"RawBucket":         "raw_bucket",
	"CleanBucket":       "clean_bucket",
	"CuratedBucket":     "curated_bucket",
	"StreamArn":         "stream_arn",
	"ProfileTable":      "profile_table",
	"GlueDatabase":      "glue_database",
	"DataAccessRoleArn": "data_access_role_arn",
	"KmsKeyArn":         "kms_key_arn",
	"AthenaWorkGroup":   "athena_workgroup",
}

// DedicatedGlueDatabase is the name of a dedicated tenant's Glue database, as
// the dedicated template creates it (its GlueDatabase output). Tenant IDs are
// already lowercase letters, digits and '_', which is what Glue allows.
func DedicatedGlueDatabase(tenantID string) string { return "cairn_" + tenantID }

// PooledGlueDatabase is the name Cairn must give a pooled tenant's Glue
// database: the pool data-access role may read only databases named
// cairn_<pool id>_ten_*, so that a pooled tenant's credentials can never reach
// a dedicated tenant's cairn_ten_* database in the same account and Region.
func PooledGlueDatabase(poolID, tenantID string) string {
	return "cairn_" + poolID + "_" + tenantID
}

// PoolSharedGlueDatabase is the name of a pool's Glue database of the lake
// tables its tenants share (a tenant_id partition each). It is not named
// cairn_<pool id>_ten_*: no pooled tenant's own database can be it.
func PoolSharedGlueDatabase(poolID string) string { return "cairn_" + poolID + "_shared" }

// DedicatedWorkGroup is the name of a dedicated tenant's Athena workgroup
// (its AthenaWorkGroup output).
func DedicatedWorkGroup(tenantID string) string { return "cairn-" + tenantID }

// PoolWorkGroup is the name of a pool's Athena workgroup (its AthenaWorkGroup
// output).
func PoolWorkGroup(poolID string) string { return "cairn-" + poolID }

func mustLoad(name string) Template {
	b, err := files.ReadFile(name)
	if err != nil {
		// Unreachable: the file is embedded at build time.
		panic(fmt.Sprintf("templates: %s not embedded: %v", name, err))
	}
	return newTemplate(name, string(b))
}

// newTemplate builds a Template from a name and body, computing Version.
func newTemplate(name, body string) Template {
	return Template{Name: name, Body: body, Version: version(body)}
}

func version(body string) string {
	sum := sha256.Sum256([]byte(body))
	return hex.EncodeToString(sum[:])[:12]
}

// Parse returns the template of body under name, versioned as the
// embedded ones are: a template read from elsewhere (the server's
// --rollout-templates directory).
func Parse(name, body string) Template { return newTemplate(name, body) }
