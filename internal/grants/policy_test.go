package grants_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/cairn-cdp/cairn/internal/grants"
	"github.com/cairn-cdp/cairn/internal/iamsim"
	"github.com/cairn-cdp/cairn/templates"
)

// The -update flag rewrites testdata/*.golden.json. It is registered in init,
// after every package-level variable, so that another test file of this
// package that declares its own "update" flag as a variable wins instead of
// panicking on a redefinition; both then share one flag.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files under testdata/")
	}
}

func updating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// Example values, resolved the way CloudFormation would name things.
const (
	tenantA   = "ten_aaaaaaaaaaaaaaaaaaaaaaaaaa"
	tenantB   = "ten_bbbbbbbbbbbbbbbbbbbbbbbbbb"
	region    = "ap-southeast-2"
	account   = "123456789012"
	keyARN    = "arn:aws:kms:ap-southeast-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	streamARN = "arn:aws:kinesis:ap-southeast-2:123456789012:stream/cairn-pool-IngestStream-AbCdEf123456"
)

// pooledInput is tenant id's slice of the pool "pool".
func pooledInput(id string) grants.PolicyInput {
	return grants.PolicyInput{
		Pooled: true, TenantID: id, Region: region, AccountID: account,
		RawBucket:       "cairn-pool-rawzonebucket-1a2b3c4d5e6f",
		CleanBucket:     "cairn-pool-cleanzonebucket-1a2b3c4d5e6f",
		CuratedBucket:   "cairn-pool-curatedzonebucket-1a2b3c4d5e6f",
		ProfileTable:    "cairn-pool-ProfilesTable-1A2B3C4D5E6F",
		GlueDatabase:    "cairn_pool_" + id,
		KMSKeyARN:       keyARN,
		StreamARN:       streamARN,
		AthenaWorkGroup: "cairn-pool",
	}
}

// dedicatedInput is tenant id's own stack.
func dedicatedInput(id string) grants.PolicyInput {
	stack := "cairn-" + strings.ReplaceAll(id, "_", "-")
	return grants.PolicyInput{
		TenantID: id, Region: region, AccountID: account,
		RawBucket:       stack + "-rawzonebucket-9z8y7x6w",
		CleanBucket:     stack + "-cleanzonebucket-9z8y7x",
		CuratedBucket:   stack + "-curatedzonebucket-9z8y",
		ProfileTable:    stack + "-ProfilesTable-9Z8Y7X6W5V4U",
		GlueDatabase:    "cairn_" + id,
		KMSKeyARN:       "arn:aws:kms:ap-southeast-2:123456789012:key/9876fedc-98fe-76dc-54ba-0987654321fe",
		StreamARN:       "arn:aws:kinesis:ap-southeast-2:123456789012:stream/" + stack + "-IngestStream-9Z8Y7X6W5V4U",
		AthenaWorkGroup: "cairn-" + id,
	}
}

// longestInput has the longest values Cairn can meet in practice: 63-byte
// bucket names (S3's maximum), a 14-byte Region, a multi-Region key ARN, and
// 64-byte table and stream names. CloudFormation names those
// <stack>-<logical id>-<12 random characters>, 62 and 63 bytes for a
// dedicated stack (cairn-ten-<26 characters>), the longest Cairn makes.
func longestInput(pooled bool) grants.PolicyInput {
	in := dedicatedInput(tenantA)
	if pooled {
		in = pooledInput(tenantA)
	}
	in.RawBucket = strings.Repeat("r", 63)
	in.CleanBucket = strings.Repeat("c", 63)
	in.CuratedBucket = strings.Repeat("u", 63)
	in.ProfileTable = strings.Repeat("T", 64)
	in.KMSKeyARN = "arn:aws:kms:ap-southeast-2:123456789012:key/mrk-" + strings.Repeat("0", 32)
	in.StreamARN = "arn:aws:kinesis:ap-southeast-2:123456789012:stream/" + strings.Repeat("S", 64)
	return in
}

// sizeBudget is the size the longest realistic policy must stay within:
// 10% below grants.MaxSessionPolicyBytes, for the packed-size limit and for growth.
const sizeBudget = grants.MaxSessionPolicyBytes * 9 / 10

func mustPolicy(t *testing.T, in grants.PolicyInput) string {
	t.Helper()
	p, err := grants.SessionPolicy(in)
	if err != nil {
		t.Fatalf("grants.SessionPolicy: %v", err)
	}
	return p
}

func TestSessionPolicyGolden(t *testing.T) {
	for name, in := range map[string]grants.PolicyInput{
		"pooled":    pooledInput(tenantA),
		"dedicated": dedicatedInput(tenantA),
	} {
		t.Run(name, func(t *testing.T) {
			got := mustPolicy(t, in)
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, []byte(got), "", "  "); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, got)
			}
			pretty.WriteByte('\n')
			path := filepath.Join("testdata", name+".golden.json")
			if updating() {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestSessionPolicyGolden -update to create it)", err)
			}
			if !bytes.Equal(pretty.Bytes(), want) {
				t.Errorf("policy differs from %s (run with -update if the change is intended):\n%s", path, pretty.Bytes())
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, want); err != nil || compact.String() != got {
				t.Errorf("the policy is not the minified golden file (err %v)", err)
			}
		})
	}
}

func TestSessionPolicySize(t *testing.T) {
	for _, pooled := range []bool{true, false} {
		name := map[bool]string{true: "pooled", false: "dedicated"}[pooled]
		t.Run(name, func(t *testing.T) {
			typical := mustPolicy(t, map[bool]grants.PolicyInput{true: pooledInput(tenantA), false: dedicatedInput(tenantA)}[pooled])
			longest := mustPolicy(t, longestInput(pooled))
			t.Logf("%s: typical %d bytes, longest %d bytes (budget %d, STS limit %d)",
				name, len(typical), len(longest), sizeBudget, grants.MaxSessionPolicyBytes)
			if len(longest) > sizeBudget {
				t.Errorf("longest %s policy is %d bytes, over the budget of %d", name, len(longest), sizeBudget)
			}
			if strings.ContainsAny(longest, " \n\t") {
				t.Errorf("policy is not minified")
			}
			// Bucket names are left to the role, so their length is free.
			in := longestInput(pooled)
			in.RawBucket, in.CleanBucket, in.CuratedBucket = "abc", "abd", "abe"
			if short := mustPolicy(t, in); len(short) != len(longest) {
				t.Errorf("policy size depends on bucket names: %d bytes with short names, %d with long ones", len(short), len(longest))
			}
		})
	}
	// Names at the services' own maxima (a 255-byte table name, twice in the
	// policy; a 128-byte stream name) may not fit: grants.SessionPolicy must then
	// refuse, never truncate or emit an oversized policy.
	for _, pooled := range []bool{true, false} {
		in := longestInput(pooled)
		in.ProfileTable = strings.Repeat("T", 255)
		in.StreamARN = "arn:aws:kinesis:ap-southeast-2:123456789012:stream/" + strings.Repeat("S", 128)
		p, err := grants.SessionPolicy(in)
		switch {
		case err == nil && len(p) <= grants.MaxSessionPolicyBytes:
			t.Logf("maximal names, pooled=%v: %d bytes", pooled, len(p))
		case err == nil:
			t.Errorf("maximal names, pooled=%v: %d bytes, over the limit", pooled, len(p))
		case !errors.Is(err, grants.ErrPolicyTooLarge) || p != "":
			t.Errorf("maximal names, pooled=%v: %q, %v; want grants.ErrPolicyTooLarge", pooled, p, err)
		default:
			t.Logf("maximal names, pooled=%v: %v", pooled, err)
		}
	}
}

func TestSessionPolicyDeterministic(t *testing.T) {
	for _, in := range []grants.PolicyInput{pooledInput(tenantA), dedicatedInput(tenantA)} {
		first := mustPolicy(t, in)
		for range 50 {
			if again := mustPolicy(t, in); again != first {
				t.Fatalf("grants.SessionPolicy is not deterministic:\n%s\n%s", first, again)
			}
		}
	}
	if mustPolicy(t, pooledInput(tenantA)) == mustPolicy(t, pooledInput(tenantB)) {
		t.Error("two tenants got the same pooled policy")
	}
}

func TestSessionPolicyRejects(t *testing.T) {
	tests := []struct {
		name   string
		pooled bool
		edit   func(*grants.PolicyInput)
	}{
		{"empty tenant", true, func(in *grants.PolicyInput) { in.TenantID = "" }},
		{"wildcard tenant", true, func(in *grants.PolicyInput) { in.TenantID = "ten_*"; in.GlueDatabase = "cairn_pool_ten_*" }},
		{"uppercase tenant", true, func(in *grants.PolicyInput) { in.TenantID = strings.ToUpper(tenantA) }},
		{"tenant with a slash", true, func(in *grants.PolicyInput) { in.TenantID = "ten_aaaaaaaaaaaaa/aaaaaaaaaaaa" }},
		{"policy variable tenant", true, func(in *grants.PolicyInput) { in.TenantID = "${aws:userid}" }},
		{"empty region", true, func(in *grants.PolicyInput) { in.Region = "" }},
		{"wildcard region", true, func(in *grants.PolicyInput) { in.Region = "*" }},
		{"china region", true, func(in *grants.PolicyInput) { in.Region = "cn-north-1" }},
		{"govcloud region", true, func(in *grants.PolicyInput) { in.Region = "us-gov-west-1" }},
		{"short account", true, func(in *grants.PolicyInput) { in.AccountID = "12345678901" }},
		{"wildcard account", true, func(in *grants.PolicyInput) { in.AccountID = "*" }},
		{"empty bucket", true, func(in *grants.PolicyInput) { in.RawBucket = "" }},
		{"wildcard bucket", true, func(in *grants.PolicyInput) { in.CleanBucket = "cairn-*" }},
		{"bucket too long", true, func(in *grants.PolicyInput) { in.CuratedBucket = strings.Repeat("b", 64) }},
		{"uppercase bucket", true, func(in *grants.PolicyInput) { in.RawBucket = "Cairn-raw" }},
		{"bucket with a key", true, func(in *grants.PolicyInput) { in.RawBucket = "cairn-raw/tenants" }},
		{"same bucket twice", true, func(in *grants.PolicyInput) { in.CuratedBucket = in.RawBucket }},
		{"empty table", true, func(in *grants.PolicyInput) { in.ProfileTable = "" }},
		{"wildcard table", true, func(in *grants.PolicyInput) { in.ProfileTable = "cairn-*" }},
		{"table ARN for a name", true, func(in *grants.PolicyInput) {
			in.ProfileTable = "arn:aws:dynamodb:ap-southeast-2:123456789012:table/t"
		}},
		{"another tenant's database", true, func(in *grants.PolicyInput) { in.GlueDatabase = "cairn_pool_" + tenantB }},
		{"dedicated database for a pooled tenant", true, func(in *grants.PolicyInput) { in.GlueDatabase = "cairn_" + tenantA }},
		{"pooled database for a dedicated tenant", false, func(in *grants.PolicyInput) { in.GlueDatabase = "cairn_pool_" + tenantA }},
		{"wildcard database", true, func(in *grants.PolicyInput) { in.GlueDatabase = "cairn_pool_*" }},
		{"another tenant's workgroup", false, func(in *grants.PolicyInput) { in.AthenaWorkGroup = "cairn-" + tenantB }},
		{"primary workgroup", true, func(in *grants.PolicyInput) { in.AthenaWorkGroup = "primary" }},
		{"empty key", true, func(in *grants.PolicyInput) { in.KMSKeyARN = "" }},
		{"key alias", true, func(in *grants.PolicyInput) {
			in.KMSKeyARN = "arn:aws:kms:ap-southeast-2:123456789012:alias/cairn/pools/pool"
		}},
		{"key in another region", true, func(in *grants.PolicyInput) { in.KMSKeyARN = strings.Replace(keyARN, region, "eu-west-1", 1) }},
		{"key in another account", true, func(in *grants.PolicyInput) { in.KMSKeyARN = strings.Replace(keyARN, account, "210987654321", 1) }},
		{"wildcard key", true, func(in *grants.PolicyInput) { in.KMSKeyARN = "arn:aws:kms:ap-southeast-2:123456789012:key/*" }},
		{"local key", true, func(in *grants.PolicyInput) { in.KMSKeyARN = "local:key/cairn-pool" }},
		{"dedicated without stream", false, func(in *grants.PolicyInput) { in.StreamARN = "" }},
		{"stream in another account", false, func(in *grants.PolicyInput) { in.StreamARN = strings.Replace(in.StreamARN, account, "210987654321", 1) }},
		{"wildcard stream", false, func(in *grants.PolicyInput) { in.StreamARN = "arn:aws:kinesis:ap-southeast-2:123456789012:stream/*" }},
		{"pooled with a malformed stream", true, func(in *grants.PolicyInput) { in.StreamARN = "local:stream/cairn-pool" }},
	}
	// The unedited inputs are valid, so each case fails for its own edit.
	mustPolicy(t, pooledInput(tenantA))
	mustPolicy(t, dedicatedInput(tenantA))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := dedicatedInput(tenantA)
			if tt.pooled {
				in = pooledInput(tenantA)
			}
			tt.edit(&in)
			p, err := grants.SessionPolicy(in)
			if !errors.Is(err, grants.ErrPolicyInput) {
				t.Fatalf("grants.SessionPolicy = %v, %q; want grants.ErrPolicyInput", err, p)
			}
			if p != "" {
				t.Errorf("grants.SessionPolicy returned a policy with its error: %s", p)
			}
		})
	}
	// A pooled tenant needs no stream: the pool's is not granted.
	in := pooledInput(tenantA)
	in.StreamARN = ""
	if p := mustPolicy(t, in); p != mustPolicy(t, pooledInput(tenantA)) {
		t.Errorf("pooled policy depends on StreamARN")
	}
}

// rolePolicy reads the data-access role's policy (DataAccessPolicy) from a
// template as CloudFormation would deploy it, resolving !Ref, !GetAtt and !Sub
// with vars, so that the simulator tests follow the templates as they change.
func rolePolicy(t *testing.T, tpl templates.Template, vars map[string]string) iamsim.Policy {
	t.Helper()
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(tpl.Body), &root); err != nil {
		t.Fatalf("%s: %v", tpl.Name, err)
	}
	node := root.Content[0]
	for _, key := range []string{"Resources", "DataAccessPolicy", "Properties", "PolicyDocument"} {
		node = mappingValue(node, key)
		if node == nil {
			t.Fatalf("%s: no %s on the way to DataAccessPolicy's PolicyDocument", tpl.Name, key)
		}
	}
	v, err := resolveIntrinsics(node, vars)
	if err != nil {
		t.Fatalf("%s: DataAccessPolicy: %v", tpl.Name, err)
	}
	doc, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	p, err := iamsim.Parse(doc)
	if err != nil {
		t.Fatalf("%s: DataAccessPolicy: %v\n%s", tpl.Name, err, doc)
	}
	return p
}

func mappingValue(n *yaml.Node, key string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

var subVar = regexp.MustCompile(`\$\{([^}]*)\}`)

// resolveIntrinsics turns a YAML node into plain values with the short-form
// intrinsics a policy uses (!Ref, !GetAtt, !Sub) replaced by vars; any other
// intrinsic, or a name missing from vars, is an error.
func resolveIntrinsics(n *yaml.Node, vars map[string]string) (any, error) {
	lookup := func(name string) (string, error) {
		v, ok := vars[name]
		if !ok {
			return "", fmt.Errorf("line %d: no example value for %s", n.Line, name)
		}
		return v, nil
	}
	switch n.Tag {
	case "!Ref":
		return lookup(n.Value)
	case "!GetAtt":
		return lookup(n.Value)
	case "!Sub":
		var err error
		out := subVar.ReplaceAllStringFunc(n.Value, func(m string) string {
			v, e := lookup(m[2 : len(m)-1])
			if e != nil && err == nil {
				err = e
			}
			return v
		})
		return out, err
	}
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") { // "!!str" etc. are YAML's own tags
		return nil, fmt.Errorf("line %d: intrinsic %s is not resolved by this test", n.Line, n.Tag)
	}
	switch n.Kind {
	case yaml.ScalarNode:
		return n.Value, nil
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := resolveIntrinsics(c, vars)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			v, err := resolveIntrinsics(n.Content[i+1], vars)
			if err != nil {
				return nil, err
			}
			out[n.Content[i].Value] = v
		}
		return out, nil
	}
	return nil, fmt.Errorf("line %d: unexpected YAML node kind %v", n.Line, n.Kind)
}

// stackVars are example values, consistent with in, for the parameters,
// pseudo parameters and attributes that the templates' DataAccessPolicy uses.
func stackVars(in grants.PolicyInput) map[string]string {
	return map[string]string{
		"AWS::Partition":        "aws",
		"AWS::Region":           in.Region,
		"AWS::AccountId":        in.AccountID,
		"PoolId":                "pool",
		"TenantId":              in.TenantID,
		"RawZoneBucket.Arn":     "arn:aws:s3:::" + in.RawBucket,
		"CleanZoneBucket.Arn":   "arn:aws:s3:::" + in.CleanBucket,
		"CuratedZoneBucket.Arn": "arn:aws:s3:::" + in.CuratedBucket,
		"ProfilesTable.Arn":     "arn:aws:dynamodb:" + in.Region + ":" + in.AccountID + ":table/" + in.ProfileTable,
		"KmsKey.Arn":            in.KMSKeyARN,
		"IngestStream.Arn":      in.StreamARN,
	}
}

// simCheck is one request and what the session must get.
type simCheck struct {
	name string
	req  iamsim.Request
	want simOutcome
}

type simOutcome int

const (
	// wantAllow: the session policy allows the request and so does its
	// intersection with the role, which shows the role covers the grant.
	wantAllow simOutcome = iota
	// wantDeny: the session policy alone denies it, whatever the role allows.
	// Everything that separates one tenant from another is of this kind.
	wantDeny
	// wantRoleDeny: the intersection denies it, but the session policy alone
	// would allow it, because the policy leaves this bound to the role (which
	// buckets; see grants.SessionPolicy).
	wantRoleDeny
)

// runSimChecks evaluates each check against the session policy alone and
// against its intersection with the role's policy.
func runSimChecks(t *testing.T, role iamsim.Policy, session iamsim.Policy, checks []simCheck) {
	t.Helper()
	for _, c := range checks {
		alone := iamsim.Evaluate([]iamsim.Policy{session}, c.req)
		both := iamsim.EvaluateSession([]iamsim.Policy{role}, session, c.req)
		var ok bool
		switch c.want {
		case wantAllow:
			ok = alone == iamsim.Allow && both == iamsim.Allow
		case wantDeny:
			ok = alone != iamsim.Allow && both != iamsim.Allow
		case wantRoleDeny:
			ok = both != iamsim.Allow
		}
		if !ok {
			t.Errorf("%s: session policy %v, with the role %v; want %s\n  %s on %s %v",
				c.name, alone, both, [...]string{"allowed", "denied", "denied by the role"}[c.want],
				c.req.Action, c.req.Resource, c.req.Context)
		}
	}
}

// exercised checks that every action an Allow statement of the session
// policy grants is exercised by at least one allowed check, so that no grant
// goes untested, and none is dead because the role lacks it (runSimChecks
// evaluates the allowed checks through the intersection with the role).
func exercised(t *testing.T, session iamsim.Policy, checks []simCheck) {
	t.Helper()
	for _, s := range session.Statements {
		if s.Effect != iamsim.EffectAllow {
			continue
		}
		for _, a := range s.Action {
			found := false
			for _, c := range checks {
				if c.want == wantAllow && iamsim.Glob(strings.ToLower(a), strings.ToLower(c.req.Action)) {
					found = true
					break
				}
			}
			if !found {
				t.Errorf("the policy grants %s, but no allowed check exercises it", a)
			}
		}
	}
}

func s3Object(bucket, key string) string { return "arn:aws:s3:::" + bucket + "/" + key }

func ddbTable(in grants.PolicyInput) string {
	return "arn:aws:dynamodb:" + in.Region + ":" + in.AccountID + ":table/" + in.ProfileTable
}

func glueARN(in grants.PolicyInput, resource string) string {
	return "arn:aws:glue:" + in.Region + ":" + in.AccountID + ":" + resource
}

func withPrefix(p string) map[string][]string { return map[string][]string{"s3:prefix": {p}} }

func leadingKeys(keys ...string) map[string][]string {
	return map[string][]string{"dynamodb:LeadingKeys": keys}
}

func TestPooledSessionPolicyConfinesTenant(t *testing.T) {
	a, b := pooledInput(tenantA), pooledInput(tenantB)
	session, err := iamsim.Parse([]byte(mustPolicy(t, a)))
	if err != nil {
		t.Fatalf("generated policy does not parse: %v", err)
	}
	role := rolePolicy(t, templates.Pool(), stackVars(a))

	table, wg := ddbTable(a), "arn:aws:athena:ap-southeast-2:123456789012:workgroup/cairn-pool"
	pA, pB := "tenants/"+tenantA+"/", "tenants/"+tenantB+"/"
	kA, kB := "TENANT#"+tenantA+"#", "TENANT#"+tenantB+"#"
	dbA, dbB := a.GlueDatabase, b.GlueDatabase

	// The role alone reaches every pooled tenant: the session policy is what
	// confines A. (This also shows the role parsed to something that allows.)
	for _, req := range []iamsim.Request{
		{Action: "s3:GetObject", Resource: s3Object(a.RawBucket, pB+"x.json")},
		{Action: "dynamodb:Scan", Resource: table},
		{Action: "glue:GetTable", Resource: glueARN(a, "table/"+dbB+"/events")},
	} {
		if got := iamsim.Evaluate([]iamsim.Policy{role}, req); got != iamsim.Allow {
			t.Fatalf("the pool role alone: %s on %s = %v, want Allow", req.Action, req.Resource, got)
		}
	}

	checks := []simCheck{
		// S3 objects.
		{"get own raw object", iamsim.Request{Action: "s3:GetObject", Resource: s3Object(a.RawBucket, pA+"x.json")}, wantAllow},
		{"put own clean object", iamsim.Request{Action: "s3:PutObject", Resource: s3Object(a.CleanBucket, pA+"events/2024/x.parquet")}, wantAllow},
		{"delete own curated object", iamsim.Request{Action: "s3:DeleteObject", Resource: s3Object(a.CuratedBucket, pA+"x.parquet")}, wantAllow},
		{"abort own multipart upload", iamsim.Request{Action: "s3:AbortMultipartUpload", Resource: s3Object(a.RawBucket, pA+"big.json")}, wantAllow},
		{"write own Athena results", iamsim.Request{Action: "s3:PutObject", Resource: s3Object(a.CuratedBucket, "athena-results/"+tenantA+"/q.csv")}, wantAllow},
		{"get B's raw object", iamsim.Request{Action: "s3:GetObject", Resource: s3Object(a.RawBucket, pB+"x.json")}, wantDeny},
		{"put B's curated object", iamsim.Request{Action: "s3:PutObject", Resource: s3Object(a.CuratedBucket, pB+"x.json")}, wantDeny},
		{"get object at the bucket root", iamsim.Request{Action: "s3:GetObject", Resource: s3Object(a.RawBucket, "x.json")}, wantDeny},
		{"get object named like the prefix", iamsim.Request{Action: "s3:GetObject", Resource: s3Object(a.RawBucket, "tenants/"+tenantA)}, wantDeny},
		{"get object of a longer tenant ID", iamsim.Request{Action: "s3:GetObject", Resource: s3Object(a.RawBucket, "tenants/"+tenantA+"b/x.json")}, wantDeny},
		{"get B's Athena results", iamsim.Request{Action: "s3:GetObject", Resource: s3Object(a.CuratedBucket, "athena-results/"+tenantB+"/q.csv")}, wantDeny},
		{"get the shared Athena results", iamsim.Request{Action: "s3:GetObject", Resource: s3Object(a.CuratedBucket, "athena-results/q.csv")}, wantDeny},
		{"key of B's that nests A's prefix", iamsim.Request{Action: "s3:GetObject", Resource: s3Object(a.RawBucket, pB+pA+"x.json")}, wantDeny},
		{"delete B's key that nests A's prefix", iamsim.Request{Action: "s3:DeleteObject", Resource: s3Object(a.CleanBucket, pB+"copy/"+pA+"x.json")}, wantDeny},
		{"B's Athena results that nest A's prefix", iamsim.Request{Action: "s3:GetObject", Resource: s3Object(a.CuratedBucket, "athena-results/"+tenantB+"/"+pA+"x")}, wantDeny},
		{"key that nests A's prefix under another top level", iamsim.Request{Action: "s3:GetObject", Resource: s3Object(a.RawBucket, "exports/"+pA+"x.json")}, wantDeny},
		{"own key repeating the ID (documented refusal)", iamsim.Request{Action: "s3:GetObject", Resource: s3Object(a.RawBucket, pA+"sub/"+tenantA+"/x")}, wantDeny},
		{"get object in another bucket", iamsim.Request{Action: "s3:GetObject", Resource: s3Object("another-bucket", pA+"x.json")}, wantRoleDeny},
		{"get an object version", iamsim.Request{Action: "s3:GetObjectVersion", Resource: s3Object(a.RawBucket, pA+"x.json")}, wantDeny},
		{"bypass governance retention", iamsim.Request{Action: "s3:BypassGovernanceRetention", Resource: s3Object(a.RawBucket, pA+"x.json")}, wantDeny},

		// S3 listing.
		{"list own prefix", iamsim.Request{Action: "s3:ListBucket", Resource: "arn:aws:s3:::" + a.RawBucket, Context: withPrefix(pA)}, wantAllow},
		{"list under own prefix", iamsim.Request{Action: "s3:ListBucket", Resource: "arn:aws:s3:::" + a.CleanBucket, Context: withPrefix(pA + "events/2024/")}, wantAllow},
		{"list own Athena results", iamsim.Request{Action: "s3:ListBucket", Resource: "arn:aws:s3:::" + a.CuratedBucket, Context: withPrefix("athena-results/" + tenantA + "/")}, wantAllow},
		{"list tenants/", iamsim.Request{Action: "s3:ListBucket", Resource: "arn:aws:s3:::" + a.RawBucket, Context: withPrefix("tenants/")}, wantDeny},
		{"list B's prefix", iamsim.Request{Action: "s3:ListBucket", Resource: "arn:aws:s3:::" + a.RawBucket, Context: withPrefix(pB)}, wantDeny},
		{"list own ID without the slash", iamsim.Request{Action: "s3:ListBucket", Resource: "arn:aws:s3:::" + a.RawBucket, Context: withPrefix("tenants/" + tenantA)}, wantDeny},
		{"list the whole bucket", iamsim.Request{Action: "s3:ListBucket", Resource: "arn:aws:s3:::" + a.RawBucket}, wantDeny},
		{"list with an empty prefix", iamsim.Request{Action: "s3:ListBucket", Resource: "arn:aws:s3:::" + a.RawBucket, Context: withPrefix("")}, wantDeny},
		{"list B's prefix that nests A's", iamsim.Request{Action: "s3:ListBucket", Resource: "arn:aws:s3:::" + a.RawBucket, Context: withPrefix(pB + pA)}, wantDeny},
		{"bucket location", iamsim.Request{Action: "s3:GetBucketLocation", Resource: "arn:aws:s3:::" + a.CuratedBucket}, wantAllow},
		{"list versions", iamsim.Request{Action: "s3:ListBucketVersions", Resource: "arn:aws:s3:::" + a.RawBucket, Context: withPrefix(pA)}, wantDeny},
		{"delete the bucket", iamsim.Request{Action: "s3:DeleteBucket", Resource: "arn:aws:s3:::" + a.RawBucket}, wantDeny},
		{"change the bucket policy", iamsim.Request{Action: "s3:PutBucketPolicy", Resource: "arn:aws:s3:::" + a.RawBucket}, wantDeny},

		// DynamoDB.
		{"query own items", iamsim.Request{Action: "dynamodb:Query", Resource: table, Context: leadingKeys(kA + "profile#1")}, wantAllow},
		{"query own items by index", iamsim.Request{Action: "dynamodb:Query", Resource: table + "/index/gsi1", Context: leadingKeys(kA + "email#x")}, wantAllow},
		{"get own item", iamsim.Request{Action: "dynamodb:GetItem", Resource: table, Context: leadingKeys(kA + "profile#1")}, wantAllow},
		{"batch get own items", iamsim.Request{Action: "dynamodb:BatchGetItem", Resource: table, Context: leadingKeys(kA+"profile#1", kA+"profile#2")}, wantAllow},
		{"put own item", iamsim.Request{Action: "dynamodb:PutItem", Resource: table, Context: leadingKeys(kA + "profile#1")}, wantAllow},
		{"condition check own item", iamsim.Request{Action: "dynamodb:ConditionCheckItem", Resource: table, Context: leadingKeys(kA + "profile#1")}, wantAllow},
		{"get B's item", iamsim.Request{Action: "dynamodb:GetItem", Resource: table, Context: leadingKeys(kB + "profile#1")}, wantDeny},
		{"update B's item", iamsim.Request{Action: "dynamodb:UpdateItem", Resource: table, Context: leadingKeys(kB + "profile#1")}, wantDeny},
		{"batch get A's and B's items", iamsim.Request{Action: "dynamodb:BatchGetItem", Resource: table, Context: leadingKeys(kA+"profile#1", kB+"profile#1")}, wantDeny},
		{"batch write A's and B's items", iamsim.Request{Action: "dynamodb:BatchWriteItem", Resource: table, Context: leadingKeys(kA+"profile#1", kB+"profile#1")}, wantDeny},
		{"query B's items by index", iamsim.Request{Action: "dynamodb:Query", Resource: table + "/index/gsi1", Context: leadingKeys(kB + "email#x")}, wantDeny},
		{"key without the tenant separator", iamsim.Request{Action: "dynamodb:GetItem", Resource: table, Context: leadingKeys("TENANT#" + tenantA)}, wantDeny},
		{"key of a longer tenant ID", iamsim.Request{Action: "dynamodb:GetItem", Resource: table, Context: leadingKeys("TENANT#" + tenantA + "b#profile#1")}, wantDeny},
		{"scan", iamsim.Request{Action: "dynamodb:Scan", Resource: table}, wantDeny},
		{"scan with a leading key in the context", iamsim.Request{Action: "dynamodb:Scan", Resource: table, Context: leadingKeys(kA + "x")}, wantDeny},
		{"query without leading keys", iamsim.Request{Action: "dynamodb:Query", Resource: table}, wantDeny},
		{"query with an empty leading-key set", iamsim.Request{Action: "dynamodb:Query", Resource: table, Context: leadingKeys()}, wantDeny},
		{"PartiQL", iamsim.Request{Action: "dynamodb:PartiQLSelect", Resource: table, Context: leadingKeys(kA + "x")}, wantDeny},
		{"delete the table", iamsim.Request{Action: "dynamodb:DeleteTable", Resource: table}, wantDeny},
		{"another table", iamsim.Request{Action: "dynamodb:GetItem", Resource: table + "-other", Context: leadingKeys(kA + "x")}, wantDeny},
		{"table in another Region", iamsim.Request{Action: "dynamodb:GetItem", Resource: strings.Replace(table, region, "eu-west-1", 1), Context: leadingKeys(kA + "x")}, wantDeny},

		// Glue.
		{"read the catalog", iamsim.Request{Action: "glue:GetDatabase", Resource: glueARN(a, "catalog")}, wantAllow},
		{"get own database", iamsim.Request{Action: "glue:GetDatabase", Resource: glueARN(a, "database/"+dbA)}, wantAllow},
		{"get own table", iamsim.Request{Action: "glue:GetTable", Resource: glueARN(a, "table/"+dbA+"/events")}, wantAllow},
		{"get own partitions", iamsim.Request{Action: "glue:GetPartitions", Resource: glueARN(a, "table/"+dbA+"/events")}, wantAllow},
		{"batch get own partitions", iamsim.Request{Action: "glue:BatchGetPartition", Resource: glueARN(a, "table/"+dbA+"/events")}, wantAllow},
		{"batch get B's partitions", iamsim.Request{Action: "glue:BatchGetPartition", Resource: glueARN(a, "table/"+dbB+"/events")}, wantDeny},
		{"list every database", iamsim.Request{Action: "glue:GetDatabases", Resource: glueARN(a, "database/*")}, wantDeny},
		{"get B's table", iamsim.Request{Action: "glue:GetTable", Resource: glueARN(a, "table/"+dbB+"/events")}, wantDeny},
		{"get B's database", iamsim.Request{Action: "glue:GetDatabase", Resource: glueARN(a, "database/"+dbB)}, wantDeny},
		{"get the pool's shared table", iamsim.Request{Action: "glue:GetTable", Resource: glueARN(a, "table/cairn_pool_shared/tracks")}, wantAllow},
		{"get the pool's shared partitions", iamsim.Request{Action: "glue:GetPartitions", Resource: glueARN(a, "table/cairn_pool_shared/tracks")}, wantAllow},
		{"get the pool's shared database", iamsim.Request{Action: "glue:GetDatabase", Resource: glueARN(a, "database/cairn_pool_shared")}, wantAllow},
		{"update the pool's shared table", iamsim.Request{Action: "glue:UpdateTable", Resource: glueARN(a, "table/cairn_pool_shared/tracks")}, wantDeny},
		{"create a partition of the pool's shared table", iamsim.Request{Action: "glue:CreatePartition", Resource: glueARN(a, "table/cairn_pool_shared/tracks")}, wantDeny},
		{"get own table in another Region", iamsim.Request{Action: "glue:GetTable", Resource: strings.Replace(glueARN(a, "table/"+dbA+"/events"), a.Region, "eu-west-1", 1)}, wantRoleDeny},
		{"get own table in another account", iamsim.Request{Action: "glue:GetTable", Resource: strings.Replace(glueARN(a, "table/"+dbA+"/events"), a.AccountID, "999999999999", 1)}, wantRoleDeny},
		{"get a dedicated tenant's table", iamsim.Request{Action: "glue:GetTable", Resource: glueARN(a, "table/cairn_"+tenantA+"/events")}, wantDeny},
		{"create a table", iamsim.Request{Action: "glue:CreateTable", Resource: glueARN(a, "table/"+dbA+"/new")}, wantDeny},
		{"delete own database", iamsim.Request{Action: "glue:DeleteDatabase", Resource: glueARN(a, "database/"+dbA)}, wantDeny},

		// KMS, Athena, Kinesis, Lake Formation.
		{"decrypt with the data key", iamsim.Request{Action: "kms:Decrypt", Resource: a.KMSKeyARN}, wantAllow},
		{"generate a data key", iamsim.Request{Action: "kms:GenerateDataKey", Resource: a.KMSKeyARN}, wantAllow},
		{"schedule key deletion", iamsim.Request{Action: "kms:ScheduleKeyDeletion", Resource: a.KMSKeyARN}, wantDeny},
		{"decrypt with another key", iamsim.Request{Action: "kms:Decrypt", Resource: strings.Replace(keyARN, "1234abcd", "ffffffff", 1)}, wantDeny},
		{"start a query", iamsim.Request{Action: "athena:StartQueryExecution", Resource: wg}, wantAllow},
		{"get query results", iamsim.Request{Action: "athena:GetQueryResults", Resource: wg}, wantAllow},
		{"get a query", iamsim.Request{Action: "athena:GetQueryExecution", Resource: wg}, wantAllow},
		{"stop a query", iamsim.Request{Action: "athena:StopQueryExecution", Resource: wg}, wantAllow},
		{"get the workgroup", iamsim.Request{Action: "athena:GetWorkGroup", Resource: wg}, wantAllow},
		{"change the workgroup", iamsim.Request{Action: "athena:UpdateWorkGroup", Resource: wg}, wantDeny},
		{"list the pool's queries", iamsim.Request{Action: "athena:ListQueryExecutions", Resource: wg}, wantDeny},
		{"query in another workgroup", iamsim.Request{Action: "athena:StartQueryExecution", Resource: strings.TrimSuffix(wg, "cairn-pool") + "primary"}, wantDeny},
		{"read the shared stream", iamsim.Request{Action: "kinesis:GetRecords", Resource: streamARN}, wantDeny},
		{"write the shared stream", iamsim.Request{Action: "kinesis:PutRecord", Resource: streamARN}, wantDeny},
		{"Lake Formation data access", iamsim.Request{Action: "lakeformation:GetDataAccess", Resource: "*"}, wantAllow},
		{"Lake Formation grant", iamsim.Request{Action: "lakeformation:GrantPermissions", Resource: "*"}, wantDeny},

		// IAM and STS.
		{"iam:CreateUser", iamsim.Request{Action: "iam:CreateUser", Resource: "arn:aws:iam::123456789012:user/x"}, wantDeny},
		{"iam:PassRole", iamsim.Request{Action: "iam:PassRole", Resource: "arn:aws:iam::123456789012:role/cairn/x"}, wantDeny},
		{"iam:PutRolePolicy", iamsim.Request{Action: "iam:PutRolePolicy", Resource: "*"}, wantDeny},
		{"sts:AssumeRole", iamsim.Request{Action: "sts:AssumeRole", Resource: "*"}, wantDeny},
	}
	runSimChecks(t, role, session, checks)
	exercised(t, session, checks)
}

func TestDedicatedSessionPolicy(t *testing.T) {
	a, b := dedicatedInput(tenantA), dedicatedInput(tenantB)
	session, err := iamsim.Parse([]byte(mustPolicy(t, a)))
	if err != nil {
		t.Fatalf("generated policy does not parse: %v", err)
	}
	role := rolePolicy(t, templates.Dedicated(), stackVars(a))
	table := ddbTable(a)
	wg := "arn:aws:athena:ap-southeast-2:123456789012:workgroup/cairn-" + tenantA

	checks := []simCheck{
		{"get any own object", iamsim.Request{Action: "s3:GetObject", Resource: s3Object(a.RawBucket, "x.json")}, wantAllow},
		{"put any own object", iamsim.Request{Action: "s3:PutObject", Resource: s3Object(a.CuratedBucket, "athena-results/q.csv")}, wantAllow},
		{"delete own object", iamsim.Request{Action: "s3:DeleteObject", Resource: s3Object(a.CleanBucket, "a/b.json")}, wantAllow},
		{"abort own multipart upload", iamsim.Request{Action: "s3:AbortMultipartUpload", Resource: s3Object(a.RawBucket, "big.json")}, wantAllow},
		{"list own bucket", iamsim.Request{Action: "s3:ListBucket", Resource: "arn:aws:s3:::" + a.CleanBucket}, wantAllow},
		{"bucket location", iamsim.Request{Action: "s3:GetBucketLocation", Resource: "arn:aws:s3:::" + a.CuratedBucket}, wantAllow},
		{"get B's object", iamsim.Request{Action: "s3:GetObject", Resource: s3Object(b.RawBucket, "x.json")}, wantRoleDeny},
		{"list B's bucket", iamsim.Request{Action: "s3:ListBucket", Resource: "arn:aws:s3:::" + b.RawBucket}, wantRoleDeny},
		{"delete own bucket", iamsim.Request{Action: "s3:DeleteBucket", Resource: "arn:aws:s3:::" + a.RawBucket}, wantDeny},
		{"bypass governance retention", iamsim.Request{Action: "s3:BypassGovernanceRetention", Resource: s3Object(a.RawBucket, "x.json")}, wantDeny},

		{"get own item", iamsim.Request{Action: "dynamodb:GetItem", Resource: table, Context: leadingKeys("p#1")}, wantAllow},
		{"batch write own items", iamsim.Request{Action: "dynamodb:BatchWriteItem", Resource: table, Context: leadingKeys("p#1", "p#2")}, wantAllow},
		{"query own index", iamsim.Request{Action: "dynamodb:Query", Resource: table + "/index/gsi1", Context: leadingKeys("e#1")}, wantAllow},
		{"get B's item", iamsim.Request{Action: "dynamodb:GetItem", Resource: ddbTable(b), Context: leadingKeys("p#1")}, wantDeny},
		{"scan own table", iamsim.Request{Action: "dynamodb:Scan", Resource: table}, wantDeny},
		{"delete own table", iamsim.Request{Action: "dynamodb:DeleteTable", Resource: table}, wantDeny},

		{"get own table", iamsim.Request{Action: "glue:GetTable", Resource: glueARN(a, "table/"+a.GlueDatabase+"/events")}, wantAllow},
		{"batch get own partitions", iamsim.Request{Action: "glue:BatchGetPartition", Resource: glueARN(a, "table/"+a.GlueDatabase+"/events")}, wantAllow},
		{"get B's table", iamsim.Request{Action: "glue:GetTable", Resource: glueARN(a, "table/"+b.GlueDatabase+"/events")}, wantDeny},
		{"get a pooled tenant's table", iamsim.Request{Action: "glue:GetTable", Resource: glueARN(a, "table/cairn_pool_"+tenantA+"/events")}, wantDeny},

		{"decrypt with own key", iamsim.Request{Action: "kms:Decrypt", Resource: a.KMSKeyARN}, wantAllow},
		{"generate a data key", iamsim.Request{Action: "kms:GenerateDataKey", Resource: a.KMSKeyARN}, wantAllow},
		{"decrypt with another key", iamsim.Request{Action: "kms:Decrypt", Resource: strings.Replace(a.KMSKeyARN, "9876fedc", "5555aaaa", 1)}, wantDeny},

		{"describe own stream", iamsim.Request{Action: "kinesis:DescribeStreamSummary", Resource: a.StreamARN}, wantAllow},
		{"list own shards", iamsim.Request{Action: "kinesis:ListShards", Resource: a.StreamARN}, wantAllow},
		{"write own stream", iamsim.Request{Action: "kinesis:PutRecord", Resource: a.StreamARN}, wantAllow},
		{"batch write own stream", iamsim.Request{Action: "kinesis:PutRecords", Resource: a.StreamARN}, wantAllow},
		{"iterate own stream", iamsim.Request{Action: "kinesis:GetShardIterator", Resource: a.StreamARN}, wantAllow},
		{"read own stream", iamsim.Request{Action: "kinesis:GetRecords", Resource: a.StreamARN}, wantAllow},
		{"read B's stream", iamsim.Request{Action: "kinesis:GetRecords", Resource: b.StreamARN}, wantDeny},
		{"delete own stream", iamsim.Request{Action: "kinesis:DeleteStream", Resource: a.StreamARN}, wantDeny},

		{"start a query", iamsim.Request{Action: "athena:StartQueryExecution", Resource: wg}, wantAllow},
		{"stop a query", iamsim.Request{Action: "athena:StopQueryExecution", Resource: wg}, wantAllow},
		{"get a query", iamsim.Request{Action: "athena:GetQueryExecution", Resource: wg}, wantAllow},
		{"get query results", iamsim.Request{Action: "athena:GetQueryResults", Resource: wg}, wantAllow},
		{"get the workgroup", iamsim.Request{Action: "athena:GetWorkGroup", Resource: wg}, wantAllow},
		{"list own queries", iamsim.Request{Action: "athena:ListQueryExecutions", Resource: wg}, wantAllow},
		{"query in B's workgroup", iamsim.Request{Action: "athena:StartQueryExecution", Resource: strings.Replace(wg, tenantA, tenantB, 1)}, wantDeny},

		{"Lake Formation data access", iamsim.Request{Action: "lakeformation:GetDataAccess", Resource: "*"}, wantAllow},
		{"iam:CreateAccessKey", iamsim.Request{Action: "iam:CreateAccessKey", Resource: "*"}, wantDeny},
		{"sts:AssumeRole", iamsim.Request{Action: "sts:AssumeRole", Resource: "*"}, wantDeny},
	}
	runSimChecks(t, role, session, checks)
	exercised(t, session, checks)
}

// TestPooledRolePolicyConfinesTenant: a pooled tenant's own role's policy
// (RolePolicy), with no role above it, reaches the tenant's prefixes of
// the pool's three buckets and its catalog in the pool's Region and
// account, and nothing the session policy leaves to the pool role: the
// same prefix in another bucket, another Region's catalog. A dedicated
// tenant's role is its stack's, never Cairn's to write.
func TestPooledRolePolicyConfinesTenant(t *testing.T) {
	a := pooledInput(tenantA)
	doc, err := grants.RolePolicy(a)
	if err != nil {
		t.Fatal(err)
	}
	role, err := iamsim.Parse([]byte(doc))
	if err != nil {
		t.Fatalf("role policy does not parse: %v\n%s", err, doc)
	}
	pA, pB := "tenants/"+tenantA+"/", "tenants/"+tenantB+"/"
	dbA := a.GlueDatabase
	for _, c := range []struct {
		name  string
		req   iamsim.Request
		allow bool
	}{
		{"get own raw object", iamsim.Request{Action: "s3:GetObject", Resource: s3Object(a.RawBucket, pA+"x.json")}, true},
		{"put own clean object", iamsim.Request{Action: "s3:PutObject", Resource: s3Object(a.CleanBucket, pA+"x.parquet")}, true},
		{"write own Athena results", iamsim.Request{Action: "s3:PutObject", Resource: s3Object(a.CuratedBucket, "athena-results/"+tenantA+"/q.csv")}, true},
		{"list own prefix", iamsim.Request{Action: "s3:ListBucket", Resource: "arn:aws:s3:::" + a.RawBucket, Context: withPrefix(pA)}, true},
		{"get own table", iamsim.Request{Action: "glue:GetTable", Resource: glueARN(a, "table/"+dbA+"/events")}, true},
		{"get the pool's shared table", iamsim.Request{Action: "glue:GetTable", Resource: glueARN(a, "table/cairn_pool_shared/tracks")}, true},
		{"get B's raw object", iamsim.Request{Action: "s3:GetObject", Resource: s3Object(a.RawBucket, pB+"x.json")}, false},
		{"own prefix in another bucket", iamsim.Request{Action: "s3:GetObject", Resource: s3Object("another-bucket", pA+"x.json")}, false},
		{"list own prefix of another bucket", iamsim.Request{Action: "s3:ListBucket", Resource: "arn:aws:s3:::another-bucket", Context: withPrefix(pA)}, false},
		{"own Athena results in another bucket", iamsim.Request{Action: "s3:GetObject", Resource: s3Object(a.RawBucket, "athena-results/"+tenantA+"/q.csv")}, false},
		{"own table in another Region", iamsim.Request{Action: "glue:GetTable", Resource: strings.Replace(glueARN(a, "table/"+dbA+"/events"), a.Region, "eu-west-1", 1)}, false},
		{"own table in another account", iamsim.Request{Action: "glue:GetTable", Resource: strings.Replace(glueARN(a, "table/"+dbA+"/events"), a.AccountID, "999999999999", 1)}, false},
		{"scan the profile table", iamsim.Request{Action: "dynamodb:Scan", Resource: ddbTable(a)}, false},
	} {
		if got := iamsim.Evaluate([]iamsim.Policy{role}, c.req) == iamsim.Allow; got != c.allow {
			t.Errorf("%s: allowed %v, want %v", c.name, got, c.allow)
		}
	}
	d := a
	d.Pooled = false
	if _, err := grants.RolePolicy(d); !errors.Is(err, grants.ErrPolicyInput) {
		t.Errorf("a dedicated tenant's role policy: %v, want ErrPolicyInput", err)
	}
}
