package grants

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/cairn-cdp/cairn/internal/profiles"
	"github.com/cairn-cdp/cairn/internal/provisioner"
	"github.com/cairn-cdp/cairn/templates"
)

// MaxSessionPolicyBytes is STS's limit on the plaintext of an inline session
// policy (2,048 characters; SessionPolicy emits ASCII only, so bytes and
// characters agree). STS also packs the policy with the session tags into a
// binary form with a limit of its own, so a policy close to this size can
// still be refused; the tests keep the largest realistic policy well below it.
const MaxSessionPolicyBytes = 2048

// Session policy errors, returned wrapped by SessionPolicy.
var (
	// ErrPolicyInput: a PolicyInput field is missing, malformed or does not
	// belong to the tenant. It is a wiring or data error on Cairn's side,
	// never the caller's request, so it should not be retried unchanged.
	ErrPolicyInput = errors.New("invalid session policy input")
	// ErrPolicyTooLarge: the policy would exceed MaxSessionPolicyBytes.
	ErrPolicyTooLarge = errors.New("session policy too large")
)

// PolicyInput names the data a tenant's credentials may reach: the outputs of
// its stack (dedicated) or of its pool's stack plus its slice (pooled).
type PolicyInput struct {
	// Pooled confines the policy to the tenant's slice of the pool: its S3
	// prefixes and its DynamoDB leading keys. A dedicated tenant's policy
	// covers its own buckets and table whole.
	Pooled bool
	// TenantID is "ten_" and 26 base32 characters.
	TenantID string
	// Region is the commercial (aws partition) Region of the resources and
	// AccountID the 12-digit account that owns them.
	Region, AccountID string
	// RawBucket, CleanBucket and CuratedBucket are the three zone bucket
	// names, which must differ. The policy does not repeat them (the role
	// names them exactly), but they are checked all the same, so that a
	// placement with missing or malformed outputs gets no credentials.
	RawBucket, CleanBucket, CuratedBucket string
	// ProfileTable is the DynamoDB profile table's name.
	ProfileTable string
	// GlueDatabase must be the tenant's own database:
	// provisioner.GlueDatabase for its kind.
	GlueDatabase string
	// KMSKeyARN is the data key, in Region and AccountID.
	KMSKeyARN string
	// StreamARN is the ingestion stream, in Region and AccountID. Required
	// for a dedicated tenant; for a pooled tenant it is checked if set but
	// not granted: the pool stream is shared, and Kinesis cannot confine a
	// reader to one tenant's records nor stop a writer from putting records
	// in another tenant's name.
	StreamARN string
	// AthenaWorkGroup is the tenant's workgroup (dedicated) or the pool's
	// (pooled), as the templates name them.
	AthenaWorkGroup string
}

// Action lists. Each is a subset of what the data-access roles in templates/
// allow (the simulator test exercises every one through the intersection
// with the role). Two are wildcards to save bytes, both bounded by the role's
// explicit list: "dynamodb:*Item" is exactly the seven item actions (GetItem,
// PutItem, UpdateItem, DeleteItem, BatchGetItem, BatchWriteItem,
// ConditionCheckItem), and "glue:Get*" the catalog reads.
var (
	objectActions = []string{"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"}
	itemActions   = []string{"dynamodb:*Item", "dynamodb:Query"}
	// namedActions are on resources the policy names exactly: the Glue
	// catalog, database and tables, the data key and the Athena workgroup.
	namedActions = []string{
		"glue:Get*", "glue:BatchGetPartition",
		"kms:Decrypt", "kms:GenerateDataKey",
		"athena:StartQueryExecution", "athena:StopQueryExecution", "athena:GetQueryExecution",
		"athena:GetQueryResults", "athena:GetWorkGroup",
	}
	// dedicatedActions are added to namedActions for a dedicated tenant:
	// its own stream, and the listing of its workgroup's queries. In the
	// shared pool workgroup ListQueryExecutions would list every tenant's
	// query IDs, and GetQueryExecution on them reveal other tenants' SQL.
	dedicatedActions = []string{
		"athena:ListQueryExecutions",
		"kinesis:DescribeStreamSummary", "kinesis:ListShards", "kinesis:PutRecord", "kinesis:PutRecords",
		"kinesis:GetShardIterator", "kinesis:GetRecords",
	}
)

// SessionPolicy returns the inline session policy, minified JSON, that
// confines a session of the tenant's data-access role (dedicated) or of the
// pool data-access role (pooled) to the tenant's data; policyDocument says
// what it grants. The same input always gives the same bytes.
//
// The effective permissions of the session are the intersection of the
// policy and the role's own policy, and the policy leans on that to fit
// STS's size limit: the role names the exact buckets, so the policy matches
// buckets with "*" and adds only what confines the tenant (its prefixes and
// leading keys), and it names every other resource with its Region and
// account. Bucket names therefore do not count towards the size; the largest
// realistic policy is under 1,800 bytes (see the size test).
//
// It returns an error wrapping ErrPolicyInput if a field is missing or
// malformed, or names another tenant's database or workgroup, rather than
// emit a policy that grants the wrong thing; and one wrapping
// ErrPolicyTooLarge if the result would exceed MaxSessionPolicyBytes.
func SessionPolicy(in PolicyInput) (string, error) {
	out, err := encodePolicy(in, false)
	if err != nil {
		return "", fmt.Errorf("session policy for %s: %w", in.TenantID, err)
	}
	if len(out) > MaxSessionPolicyBytes {
		return "", fmt.Errorf("session policy for %s: %w: %d bytes, the limit is %d",
			in.TenantID, ErrPolicyTooLarge, len(out), MaxSessionPolicyBytes)
	}
	return out, nil
}

// RolePolicy returns the inline policy of a pooled tenant's own role
// (provisioner.Config.TenantRolePolicy): the session policy's statements
// with every resource named exactly (the pool's three buckets, the Glue
// ARNs' Region and account), since no role policy narrows it further. Its
// credentials are still issued with the session policy.
func RolePolicy(in PolicyInput) (string, error) {
	if !in.Pooled {
		return "", fmt.Errorf("role policy for %s: %w: only a pooled tenant's role is Cairn's to write", in.TenantID, ErrPolicyInput)
	}
	out, err := encodePolicy(in, true)
	if err != nil {
		return "", fmt.Errorf("role policy for %s: %w", in.TenantID, err)
	}
	return out, nil
}

// encodePolicy validates in and returns policyDocument's JSON, minified.
func encodePolicy(in PolicyInput, exact bool) (string, error) {
	if err := in.validate(); err != nil {
		return "", err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep '&', '<', '>' literal; validation admits none anyway
	if err := enc.Encode(policyDocument(in, exact)); err != nil {
		return "", err
	}
	return strings.TrimSuffix(buf.String(), "\n"), nil
}

// policyDocument is the one template of every session policy. Its statements,
// in order:
//
//  1. Allow reading, writing and deleting objects: a dedicated tenant any
//     object of the role's buckets (its own three); a pooled tenant only
//     keys under tenants/<tenant id>/, and under athena-results/<tenant id>/
//     where pool.yaml expects pooled Athena results.
//  2. Pooled only: deny every S3 action on a key with the tenant ID as a
//     path segment deeper than those prefixes. IAM's '*' also matches '/',
//     so the leading "*/" of statement 1, meant to match a bucket name, also
//     matches "bucket/tenants/<other tenant>" and would otherwise let the
//     tenant reach a key such as tenants/<other>/tenants/<tenant id>/x. A
//     key of its own that repeats its ID deeper down (tenants/<id>/a/<id>/b)
//     is refused too, a documented oddity that costs nothing in practice.
//  3. Allow s3:ListBucket on the role's buckets; a pooled tenant only with an
//     s3:prefix inside its prefixes ("tenants/<id>/*" matches "tenants/<id>/"
//     itself). A listing without a prefix has no s3:prefix key, so the
//     condition is false and it is denied.
//  4. Allow the item actions and Query on the profile table and its indexes;
//     a pooled tenant only if every partition key in the request starts with
//     TENANT#<tenant id># (dynamodb:LeadingKeys). ForAllValues is true when
//     the request has no leading key at all, so the Null condition requires
//     one. Scan is not granted: it has no leading key to confine it.
//  5. Allow Glue reads of the catalog, the tenant's database and its tables
//     (and a pooled tenant's of the pool's database of shared lake tables,
//     whose rows Lake Formation gives its principals only through its data
//     cells filters; a pooled tenant's Glue ARNs leave the Region and
//     account to the pool role's policy, which pins both, to fit STS's
//     size limit);
//     kms:Decrypt and kms:GenerateDataKey on the data key (S3 and Kinesis
//     need them on the caller's behalf for SSE-KMS); Athena queries in the
//     tenant's (or the pool's) workgroup; and, for a dedicated tenant, its
//     ingestion stream. One statement, because no action of one of these
//     services applies to another's resources, which saves bytes.
//  6. Allow lakeformation:GetDataAccess (what it vends is decided by the
//     Lake Formation grants, not by IAM) and s3:GetBucketLocation, which
//     Athena calls on the buckets it reads and writes; both on "*", bounded
//     by the role.
//
// A pooled tenant gets nothing on the pool's stream: Kinesis can neither
// confine a reader to one tenant's records nor stop a writer from putting
// records in another tenant's name.
//
// Exact (a pooled tenant's role policy, RolePolicy) names the pool's
// buckets in statements 1 and 3 and the Region and account in the Glue
// ARNs of statement 5, where the session policy leaves them to the role.
func policyDocument(in PolicyInput, exact bool) document {
	arn := func(service, resource string) string {
		return "arn:aws:" + service + ":" + in.Region + ":" + in.AccountID + ":" + resource
	}
	table := "table/" + in.ProfileTable
	objects := statement{Effect: "Allow", Action: objectActions, Resource: list{"arn:aws:s3:::*/*"}}
	listing := statement{Effect: "Allow", Action: list{"s3:ListBucket"}, Resource: list{"arn:aws:s3:::*"}}
	items := statement{Effect: "Allow", Action: itemActions,
		Resource: list{arn("dynamodb", table), arn("dynamodb", table+"/index/*")}}
	named := statement{Effect: "Allow", Action: namedActions, Resource: list{
		arn("glue", "catalog"), arn("glue", "database/"+in.GlueDatabase), arn("glue", "table/"+in.GlueDatabase+"/*"),
		in.KMSKeyARN, arn("athena", "workgroup/"+in.AthenaWorkGroup),
	}}
	anywhere := statement{Effect: "Allow", Action: list{"lakeformation:GetDataAccess", "s3:GetBucketLocation"}, Resource: list{"*"}}

	if !in.Pooled {
		named.Action = slices.Concat(named.Action, dedicatedActions)
		named.Resource = append(named.Resource, in.StreamARN)
		return document{Version: "2012-10-17", Statement: []statement{objects, listing, items, named, anywhere}}
	}
	glue := func(resource string) string { return "arn:aws:glue:*:*:" + resource }
	if exact {
		glue = func(resource string) string { return arn("glue", resource) }
	}
	shared := provisioner.PoolGlueDatabase()
	named.Resource = slices.Concat(list{
		glue("catalog"), glue("database/" + in.GlueDatabase), glue("table/" + in.GlueDatabase + "/*"),
		glue("database/" + shared), glue("table/" + shared + "/*"),
	}, named.Resource[3:])
	prefix, results := provisioner.S3Prefix(in.TenantID), athenaResultsPrefix(in.TenantID)
	objects.Resource = list{"arn:aws:s3:::*/" + prefix + "*", "arn:aws:s3:::*/" + results + "*"}
	if exact {
		buckets := []string{in.RawBucket, in.CleanBucket, in.CuratedBucket}
		objects.Resource, listing.Resource = nil, nil
		for _, b := range buckets {
			objects.Resource = append(objects.Resource, "arn:aws:s3:::"+b+"/"+prefix+"*")
			listing.Resource = append(listing.Resource, "arn:aws:s3:::"+b)
		}
		objects.Resource = append(objects.Resource, "arn:aws:s3:::"+in.CuratedBucket+"/"+results+"*")
	}
	nested := statement{Effect: "Deny", Action: list{"s3:*"}, Resource: list{"arn:aws:s3:::*/*/*/" + in.TenantID + "/*"}}
	listing.Condition = conditions{"StringLike": {"s3:prefix": {prefix + "*", results + "*"}}}
	items.Condition = conditions{
		"ForAllValues:StringLike": {"dynamodb:LeadingKeys": {profiles.KeyPrefix(in.TenantID) + "*"}},
		"Null":                    {"dynamodb:LeadingKeys": {"false"}},
	}
	return document{Version: "2012-10-17", Statement: []statement{objects, nested, listing, items, named, anywhere}}
}

// athenaResultsPrefix is a pooled tenant's prefix for Athena query results in
// the pool's curated bucket; pool.yaml's lifecycle rule expires everything
// under athena-results/.
func athenaResultsPrefix(tenantID string) string { return "athena-results/" + tenantID + "/" }

// document, statement, conditions and list are the JSON shape of a policy.
// Struct fields marshal in declaration order and map keys sorted, so the
// output is deterministic.
type (
	document struct {
		Version   string
		Statement []statement
	}
	statement struct {
		Effect    string
		Action    list
		Resource  list
		Condition conditions `json:",omitempty"`
	}
	// conditions maps an operator to its keys and their values.
	conditions map[string]map[string]list
	// list is a JSON list of strings that marshals a single element as a
	// plain string, as IAM allows, to save bytes.
	list []string
)

// MarshalJSON implements json.Marshaler.
func (l list) MarshalJSON() ([]byte, error) {
	if len(l) == 1 {
		return json.Marshal(l[0])
	}
	return json.Marshal([]string(l))
}

var (
	tenantIDPattern = regexp.MustCompile(`^ten_[a-z2-7]{26}$`)
	// regionPattern admits aws-partition Region codes ("ap-southeast-2");
	// "us-gov-west-1" and the ISO Regions do not fit, and cn- is refused
	// separately: their ARNs are not arn:aws:.
	regionPattern = regexp.MustCompile(`^[a-z]{2}-[a-z]+-[1-9][0-9]?$`)
	// bucketPattern is S3's general purpose bucket naming rule, minus the
	// finer points (no "..", not an IP address) that cannot make a policy
	// wrong: the characters that matter, '*', '?' and '$', are excluded.
	bucketPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	tablePattern  = regexp.MustCompile(`^[A-Za-z0-9_.-]{3,255}$`)
	keyIDPattern  = regexp.MustCompile(`^(mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$`)
	streamPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`)
)

// validate checks every field. Besides catching wiring mistakes, it keeps
// IAM's wildcards ('*', '?') and policy variables ("${...}") out of the names
// written into the policy, where they would widen the grant.
func (in PolicyInput) validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrPolicyInput, field, fmt.Sprintf(format, args...))
	}
	if !tenantIDPattern.MatchString(in.TenantID) {
		return bad("TenantID", "%q is not ten_ and 26 base32 characters", in.TenantID)
	}
	if !regionPattern.MatchString(in.Region) || strings.HasPrefix(in.Region, "cn-") {
		return bad("Region", "%q is not an aws-partition Region code", in.Region)
	}
	if !accountPattern.MatchString(in.AccountID) {
		return bad("AccountID", "%q is not a 12-digit account ID", in.AccountID)
	}
	seen := map[string]string{}
	for _, b := range []struct{ field, name string }{
		{"RawBucket", in.RawBucket}, {"CleanBucket", in.CleanBucket}, {"CuratedBucket", in.CuratedBucket},
	} {
		if !bucketPattern.MatchString(b.name) {
			return bad(b.field, "%q is not an S3 bucket name", b.name)
		}
		if other, dup := seen[b.name]; dup {
			return bad(b.field, "%q is also the %s", b.name, other)
		}
		seen[b.name] = b.field
	}
	if !tablePattern.MatchString(in.ProfileTable) {
		return bad("ProfileTable", "%q is not a DynamoDB table name", in.ProfileTable)
	}
	db, wg := templates.DedicatedGlueDatabase(in.TenantID), templates.DedicatedWorkGroup(in.TenantID)
	if in.Pooled {
		db, wg = provisioner.GlueDatabase(provisioner.KindPooled, in.TenantID), templates.PoolWorkGroup(provisioner.PoolID)
	}
	if in.GlueDatabase != db {
		return bad("GlueDatabase", "%q is not the tenant's database %q", in.GlueDatabase, db)
	}
	if in.AthenaWorkGroup != wg {
		return bad("AthenaWorkGroup", "%q is not the tenant's workgroup %q", in.AthenaWorkGroup, wg)
	}
	scope := in.Region + ":" + in.AccountID + ":"
	if id, ok := strings.CutPrefix(in.KMSKeyARN, "arn:aws:kms:"+scope+"key/"); !ok || !keyIDPattern.MatchString(id) {
		return bad("KMSKeyARN", "%q is not the ARN of a KMS key in %s of account %s", in.KMSKeyARN, in.Region, in.AccountID)
	}
	if in.StreamARN != "" || !in.Pooled {
		if name, ok := strings.CutPrefix(in.StreamARN, "arn:aws:kinesis:"+scope+"stream/"); !ok || !streamPattern.MatchString(name) {
			return bad("StreamARN", "%q is not the ARN of a Kinesis stream in %s of account %s", in.StreamARN, in.Region, in.AccountID)
		}
	}
	return nil
}
