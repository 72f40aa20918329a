package templates

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cairn-cdp/cairn/internal/profiles"
	"github.com/cairn-cdp/cairn/internal/profiles/rawzone"
)

var update = flag.Bool("update", false, "rewrite testdata/outputs.golden")

// cfn is a template decoded to plain maps, slices and scalars, with the
// short-form intrinsics (!Ref, !GetAtt, !Sub, ...) rewritten to their long
// form ({"Ref": ...}, {"Fn::GetAtt": [...]}, ...).
type cfn map[string]any

func parse(t *testing.T, tpl Template) cfn {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(tpl.Body), &doc); err != nil {
		t.Fatalf("%s: not YAML: %v", tpl.Name, err)
	}
	v, err := decode(&doc)
	if err != nil {
		t.Fatalf("%s: %v", tpl.Name, err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s: top level is %T, want a mapping", tpl.Name, v)
	}
	return m
}

func decode(n *yaml.Node) (any, error) {
	var v any
	switch n.Kind {
	case yaml.DocumentNode:
		return decode(n.Content[0])
	case yaml.AliasNode:
		return decode(n.Alias)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if _, dup := m[k]; dup {
				return nil, fmt.Errorf("line %d: duplicate key %q", n.Content[i].Line, k)
			}
			val, err := decode(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[k] = val
		}
		v = m
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			val, err := decode(c)
			if err != nil {
				return nil, err
			}
			s = append(s, val)
		}
		v = s
	case yaml.ScalarNode:
		if !strings.HasPrefix(n.Tag, "!") || strings.HasPrefix(n.Tag, "!!") {
			if err := n.Decode(&v); err != nil {
				return nil, fmt.Errorf("line %d: %w", n.Line, err)
			}
			return v, nil
		}
		v = n.Value
	}
	switch tag := n.Tag; {
	case !strings.HasPrefix(tag, "!") || strings.HasPrefix(tag, "!!"):
		return v, nil
	case tag == "!Ref":
		return map[string]any{"Ref": v}, nil
	case tag == "!GetAtt":
		if s, ok := v.(string); ok {
			res, attr, _ := strings.Cut(s, ".")
			return map[string]any{"Fn::GetAtt": []any{res, attr}}, nil
		}
		return map[string]any{"Fn::GetAtt": v}, nil
	default:
		return map[string]any{"Fn::" + tag[1:]: v}, nil
	}
}

func (c cfn) section(name string) map[string]any {
	m, _ := c[name].(map[string]any)
	return m
}

func (c cfn) resources() map[string]map[string]any {
	out := map[string]map[string]any{}
	for id, r := range c.section("Resources") {
		out[id] = r.(map[string]any)
	}
	return out
}

func (c cfn) ofType(typ string) []string {
	var ids []string
	for id, r := range c.resources() {
		if r["Type"] == typ {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

func props(r map[string]any) map[string]any {
	p, _ := r["Properties"].(map[string]any)
	return p
}

// get walks a path of map keys and slice indexes.
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			s, ok := v.([]any)
			if !ok || k >= len(s) {
				return nil
			}
			v = s[k]
		}
	}
	return v
}

func all() []Template { return []Template{Dedicated(), Pool()} }

func TestTemplatesParse(t *testing.T) {
	for _, tpl := range all() {
		t.Run(tpl.Name, func(t *testing.T) {
			c := parse(t, tpl)
			if c["AWSTemplateFormatVersion"] != "2010-09-09" {
				t.Errorf("AWSTemplateFormatVersion = %v", c["AWSTemplateFormatVersion"])
			}
			if len(c.resources()) == 0 || len(c.section("Outputs")) == 0 {
				t.Fatal("no Resources or no Outputs")
			}
			// TemplateBody inline is capped at 51,200 bytes; past that the
			// engine would have to upload the template to S3 first.
			if n := len(tpl.Body); n > 51200 {
				t.Errorf("body is %d bytes, over the 51,200-byte TemplateBody limit", n)
			}
		})
	}
}

// TestReferencesResolve catches a Ref, GetAtt or ${} in a Sub that names
// nothing, which CloudFormation only reports at CreateStack time.
func TestReferencesResolve(t *testing.T) {
	subVar := regexp.MustCompile(`\$\{([^}!]+)\}`)
	for _, tpl := range all() {
		t.Run(tpl.Name, func(t *testing.T) {
			c := parse(t, tpl)
			known := map[string]bool{}
			for id := range c.section("Parameters") {
				known[id] = true
			}
			for id := range c.resources() {
				known[id] = true
			}
			check := func(name, where string) {
				if strings.HasPrefix(name, "AWS::") {
					return
				}
				if !known[name] {
					t.Errorf("%s refers to unknown %q", where, name)
				}
			}
			var walk func(v any, where string)
			walk = func(v any, where string) {
				switch x := v.(type) {
				case map[string]any:
					for k, val := range x {
						switch k {
						case "Ref":
							check(fmt.Sprint(val), where)
						case "Fn::GetAtt":
							check(fmt.Sprint(get(val, 0)), where)
						case "Fn::Sub":
							s, _ := val.(string)
							for _, m := range subVar.FindAllStringSubmatch(s, -1) {
								res, _, _ := strings.Cut(m[1], ".")
								check(res, where)
							}
						}
						walk(val, where+"."+k)
					}
				case []any:
					for i, val := range x {
						walk(val, fmt.Sprintf("%s[%d]", where, i))
					}
				}
			}
			walk(c.section("Resources"), "Resources")
			walk(c.section("Outputs"), "Outputs")
		})
	}
}

func TestOutputs(t *testing.T) {
	ded := parse(t, Dedicated()).section("Outputs")
	pool := parse(t, Pool()).section("Outputs")
	for key := range OutputKeys {
		if _, ok := ded[key]; !ok {
			t.Errorf("dedicated template has no output %s", key)
		}
		_, inPool := pool[key]
		if want := key != "GlueDatabase"; inPool != want {
			t.Errorf("pool template output %s present = %v, want %v", key, inPool, want)
		}
	}
	// Every output must have a Cairn name, or the engine would drop it.
	for name, outs := range map[string]map[string]any{"dedicated": ded, "pool": pool} {
		for key := range outs {
			if _, ok := OutputKeys[key]; !ok {
				t.Errorf("%s output %s is missing from OutputKeys", name, key)
			}
		}
	}
	snake := regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
	for key, cairn := range OutputKeys {
		if !snake.MatchString(cairn) {
			t.Errorf("OutputKeys[%s] = %q, not snake_case", key, cairn)
		}
	}
	if got := parse(t, Pool()).ofType("AWS::Glue::Database"); len(got) != 0 {
		t.Errorf("pool template creates Glue databases %v; pooled tenants get theirs via the Glue API", got)
	}
}

// TestStatefulResourcesLeaveNoOrphans checks the deletion policies of the
// stateful resources: kept on deletion and replacement, except that a create
// that rolls back deletes them (RetainExceptOnCreate, never plain Retain,
// which orphans them), or deleted with the stack by design.
func TestStatefulResourcesLeaveNoOrphans(t *testing.T) {
	// The stream is a transient buffer; the dedicated profile table must go
	// with its tenant (offboarding relies on it).
	deleted := map[string]bool{DedicatedFile + "/ProfilesTable": true, DedicatedFile + "/IngestStream": true, PoolFile + "/IngestStream": true}
	for _, tpl := range all() {
		t.Run(tpl.Name, func(t *testing.T) {
			c := parse(t, tpl)
			res := c.resources()
			for _, typ := range []string{"AWS::S3::Bucket", "AWS::KMS::Key", "AWS::DynamoDB::Table", "AWS::Kinesis::Stream"} {
				for _, id := range c.ofType(typ) {
					r := res[id]
					if r["DeletionPolicy"] == "Retain" {
						t.Errorf("%s: DeletionPolicy Retain orphans it when a create rolls back; want RetainExceptOnCreate", id)
					}
					if deleted[tpl.Name+"/"+id] {
						continue
					}
					if r["DeletionPolicy"] != "RetainExceptOnCreate" || r["UpdateReplacePolicy"] != "Retain" {
						t.Errorf("%s: DeletionPolicy %v, UpdateReplacePolicy %v; want RetainExceptOnCreate and Retain", id, r["DeletionPolicy"], r["UpdateReplacePolicy"])
					}
				}
			}
		})
	}
}

func TestBuckets(t *testing.T) {
	for _, tpl := range all() {
		t.Run(tpl.Name, func(t *testing.T) {
			c := parse(t, tpl)
			res := c.resources()
			buckets := c.ofType("AWS::S3::Bucket")
			if len(buckets) != 3 {
				t.Fatalf("buckets %v, want the three zones", buckets)
			}
			// Bucket logical ID -> its bucket policy's statements.
			policies := map[string][]any{}
			for _, id := range c.ofType("AWS::S3::BucketPolicy") {
				p := props(res[id])
				b := fmt.Sprint(get(p, "Bucket", "Ref"))
				stmts, _ := get(p, "PolicyDocument", "Statement").([]any)
				policies[b] = append(policies[b], stmts...)
			}
			for _, id := range buckets {
				r, p := res[id], props(res[id])
				if r["DeletionPolicy"] != "RetainExceptOnCreate" || r["UpdateReplacePolicy"] != "Retain" {
					t.Errorf("%s: DeletionPolicy %v, UpdateReplacePolicy %v, want RetainExceptOnCreate and Retain", id, r["DeletionPolicy"], r["UpdateReplacePolicy"])
				}
				if _, named := p["BucketName"]; named {
					t.Errorf("%s: has a BucketName; bucket names are global, let CloudFormation name it", id)
				}
				sse := get(p, "BucketEncryption", "ServerSideEncryptionConfiguration", 0)
				if get(sse, "ServerSideEncryptionByDefault", "SSEAlgorithm") != "aws:kms" ||
					!reflect.DeepEqual(get(sse, "ServerSideEncryptionByDefault", "KMSMasterKeyID"), map[string]any{"Fn::GetAtt": []any{"KmsKey", "Arn"}}) ||
					get(sse, "BucketKeyEnabled") != true {
					t.Errorf("%s: encryption %v, want SSE-KMS with KmsKey and BucketKeyEnabled", id, sse)
				}
				if get(p, "VersioningConfiguration", "Status") != "Enabled" {
					t.Errorf("%s: versioning not enabled", id)
				}
				for _, k := range []string{"BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"} {
					if get(p, "PublicAccessBlockConfiguration", k) != true {
						t.Errorf("%s: PublicAccessBlockConfiguration.%s is not true", id, k)
					}
				}
				if get(p, "OwnershipControls", "Rules", 0, "ObjectOwnership") != "BucketOwnerEnforced" {
					t.Errorf("%s: ownership is not BucketOwnerEnforced", id)
				}
				rules, _ := get(p, "LifecycleConfiguration", "Rules").([]any)
				var noncurrent, multipart bool
				for _, rule := range rules {
					noncurrent = noncurrent || get(rule, "NoncurrentVersionExpiration") != nil
					multipart = multipart || get(rule, "AbortIncompleteMultipartUpload") != nil
				}
				if !noncurrent || !multipart {
					t.Errorf("%s: lifecycle lacks noncurrent-version expiry (%v) or multipart abort (%v)", id, noncurrent, multipart)
				}
				if !denysInsecureTransport(id, policies[id]) {
					t.Errorf("%s: no bucket policy denying aws:SecureTransport=false on the bucket and its objects", id)
				}
			}
		})
	}
}

func denysInsecureTransport(bucket string, stmts []any) bool {
	arn := map[string]any{"Fn::GetAtt": []any{bucket, "Arn"}}
	objects := map[string]any{"Fn::Sub": "${" + bucket + ".Arn}/*"}
	for _, s := range stmts {
		if get(s, "Effect") != "Deny" || get(s, "Principal") != "*" || get(s, "Action") != "s3:*" {
			continue
		}
		if get(s, "Condition", "Bool", "aws:SecureTransport") != "false" {
			continue
		}
		r, _ := get(s, "Resource").([]any)
		if slices.ContainsFunc(r, func(v any) bool { return reflect.DeepEqual(v, arn) }) &&
			slices.ContainsFunc(r, func(v any) bool { return reflect.DeepEqual(v, objects) }) {
			return true
		}
	}
	return false
}

func TestRawZoneIsImmutable(t *testing.T) {
	for _, tpl := range all() {
		t.Run(tpl.Name, func(t *testing.T) {
			c := parse(t, tpl)
			for _, id := range c.ofType("AWS::S3::Bucket") {
				p := props(c.resources()[id])
				locked := get(p, "ObjectLockEnabled") == true
				if raw := id == "RawZoneBucket"; locked != raw {
					t.Errorf("%s: ObjectLockEnabled = %v, want %v (only the raw zone is immutable)", id, locked, raw)
				}
				if !locked {
					continue
				}
				if get(p, "ObjectLockConfiguration", "ObjectLockEnabled") != "Enabled" ||
					get(p, "ObjectLockConfiguration", "Rule", "DefaultRetention", "Mode") != "GOVERNANCE" ||
					get(p, "ObjectLockConfiguration", "Rule", "DefaultRetention", "Days") == nil {
					t.Errorf("%s: want a GOVERNANCE default retention in days, got %v", id, get(p, "ObjectLockConfiguration"))
				}
				var transition bool
				rules, _ := get(p, "LifecycleConfiguration", "Rules").([]any)
				for _, rule := range rules {
					transition = transition || get(rule, "Transitions") != nil
				}
				if !transition {
					t.Errorf("%s: no transition to a cheaper storage class", id)
				}
			}
			// The outputs must point at the locked bucket.
			if got := get(c.section("Outputs"), "RawBucket", "Value", "Ref"); got != "RawZoneBucket" {
				t.Errorf("RawBucket output refers to %v", got)
			}
		})
	}
}

// TestProfileTablesMatch pins the key schema the profile store relies on, and
// that both tiers share it.
func TestProfileTablesMatch(t *testing.T) {
	var schemas []any
	for _, tpl := range all() {
		c := parse(t, tpl)
		ids := c.ofType("AWS::DynamoDB::Table")
		if len(ids) != 1 {
			t.Fatalf("%s: tables %v, want one", tpl.Name, ids)
		}
		p := props(c.resources()[ids[0]])
		if p["BillingMode"] != "PAY_PER_REQUEST" ||
			get(p, "PointInTimeRecoverySpecification", "PointInTimeRecoveryEnabled") != true ||
			get(p, "SSESpecification", "SSEEnabled") != true || get(p, "SSESpecification", "SSEType") != "KMS" ||
			get(p, "TimeToLiveSpecification", "AttributeName") != "expires_at" || get(p, "TimeToLiveSpecification", "Enabled") != true {
			t.Errorf("%s: table settings wrong: %v", tpl.Name, p)
		}
		want := []any{
			map[string]any{"AttributeName": "pk", "KeyType": "HASH"},
			map[string]any{"AttributeName": "sk", "KeyType": "RANGE"},
		}
		if !reflect.DeepEqual(p["KeySchema"], want) {
			t.Errorf("%s: KeySchema %v", tpl.Name, p["KeySchema"])
		}
		if get(p, "GlobalSecondaryIndexes", 0, "IndexName") != "gsi1" ||
			get(p, "GlobalSecondaryIndexes", 0, "KeySchema", 0, "AttributeName") != "gsi1pk" ||
			get(p, "GlobalSecondaryIndexes", 0, "KeySchema", 1, "AttributeName") != "gsi1sk" ||
			get(p, "GlobalSecondaryIndexes", 0, "Projection", "ProjectionType") != "ALL" {
			t.Errorf("%s: gsi1 wrong: %v", tpl.Name, p["GlobalSecondaryIndexes"])
		}
		schemas = append(schemas, []any{p["AttributeDefinitions"], p["KeySchema"], p["GlobalSecondaryIndexes"]})
	}
	if !reflect.DeepEqual(schemas[0], schemas[1]) {
		t.Errorf("dedicated and pool tables differ in schema:\n%v\n%v", schemas[0], schemas[1])
	}
}

// TestKeyPolicy checks the KMS key policy, which is a JSON string (see the
// template) that cfn-lint cannot look into.
func TestKeyPolicy(t *testing.T) {
	placeholder := regexp.MustCompile(`\$\{[^}]+\}`)
	for _, tpl := range all() {
		t.Run(tpl.Name, func(t *testing.T) {
			c := parse(t, tpl)
			p := props(c.resources()["KmsKey"])
			if p["EnableKeyRotation"] != true {
				t.Error("key rotation is off")
			}
			src, ok := get(p, "KeyPolicy", "Fn::Sub").(string)
			if !ok {
				t.Fatalf("KeyPolicy is %T, want a !Sub JSON string", p["KeyPolicy"])
			}
			var doc struct {
				Version   string
				Statement []struct {
					Sid       string
					Effect    string
					Principal struct{ AWS string }
					Action    any
					Resource  string
					Condition map[string]map[string]string
				}
			}
			if err := json.Unmarshal([]byte(placeholder.ReplaceAllString(src, "x")), &doc); err != nil {
				t.Fatalf("key policy is not JSON: %v", err)
			}
			var root, role bool
			for _, s := range doc.Statement {
				if s.Effect != "Allow" || s.Principal.AWS != "arn:x:iam::x:root" {
					continue
				}
				switch {
				case s.Condition == nil:
					root = s.Action == "kms:*"
				case s.Condition["ArnEquals"]["aws:PrincipalArn"] == "x":
					role = true
				}
			}
			if doc.Version != "2012-10-17" || !root || !role {
				t.Errorf("key policy must let the account root administer and the role use the key: %+v", doc)
			}
			if !strings.Contains(src, `"${DataAccessRole.Arn}"`) {
				t.Error("key policy does not name the data-access role")
			}
		})
	}
}

func TestTags(t *testing.T) {
	// Types that take Tags; the KMS key is left out on purpose (see the template).
	taggable := map[string]bool{
		"AWS::S3::Bucket": true, "AWS::Kinesis::Stream": true, "AWS::DynamoDB::Table": true,
		"AWS::IAM::Role": true, "AWS::Athena::WorkGroup": true, "AWS::KinesisFirehose::DeliveryStream": true,
		"AWS::Logs::LogGroup": true,
	}
	for _, tc := range []struct {
		tpl   Template
		idTag string
		param string
	}{{Dedicated(), "cairn:tenant-id", "TenantId"}, {Pool(), "cairn:pool-id", "PoolId"}} {
		t.Run(tc.tpl.Name, func(t *testing.T) {
			for id, r := range parse(t, tc.tpl).resources() {
				if !taggable[fmt.Sprint(r["Type"])] {
					continue
				}
				tags := map[string]any{}
				list, _ := props(r)["Tags"].([]any)
				for _, tag := range list {
					tags[fmt.Sprint(get(tag, "Key"))] = get(tag, "Value")
				}
				if !reflect.DeepEqual(tags[tc.idTag], map[string]any{"Ref": tc.param}) || tags["cairn:managed-by"] != "cairn" {
					t.Errorf("%s: tags %v, want %s and cairn:managed-by=cairn", id, tags, tc.idTag)
				}
			}
		})
	}
}

// TestNamesMatchTemplates keeps the Go name helpers and the templates in step.
func TestNamesMatchTemplates(t *testing.T) {
	ded := parse(t, Dedicated())
	res := ded.resources()
	if got := get(props(res["GlueCatalogDatabase"]), "DatabaseInput", "Name", "Fn::Sub"); got != "cairn_${TenantId}" ||
		DedicatedGlueDatabase("ten_x") != "cairn_ten_x" {
		t.Errorf("dedicated Glue database name %v does not match DedicatedGlueDatabase", got)
	}
	if got := get(props(res["QueryWorkGroup"]), "Name", "Fn::Sub"); got != "cairn-${TenantId}" || DedicatedWorkGroup("ten_x") != "cairn-ten_x" {
		t.Errorf("dedicated workgroup name %v does not match DedicatedWorkGroup", got)
	}
	pool := parse(t, Pool())
	if got := get(props(pool.resources()["QueryWorkGroup"]), "Name", "Fn::Sub"); got != "cairn-${PoolId}" || PoolWorkGroup("pool") != "cairn-pool" {
		t.Errorf("pool workgroup name %v does not match PoolWorkGroup", got)
	}
	// The pool role may read exactly the databases PooledGlueDatabase names.
	if !strings.Contains(Pool().Body, ":database/cairn_${PoolId}_ten_*") ||
		PooledGlueDatabase("pool", "ten_x") != "cairn_pool_ten_x" {
		t.Error("pool role's Glue resources do not match PooledGlueDatabase")
	}
	tenantID := regexp.MustCompile(`^ten_[a-z2-7]{26}$`)
	if got := get(ded.section("Parameters"), "TenantId", "AllowedPattern"); got != tenantID.String() {
		t.Errorf("TenantId AllowedPattern = %v", got)
	}
	glueName := regexp.MustCompile(`^[a-z0-9_]{1,255}$`)
	if name := DedicatedGlueDatabase("ten_abcdefghijklmnopqrstuvwxyz"); !glueName.MatchString(name) {
		t.Errorf("%s is not a valid Glue name", name)
	}
	if name := PooledGlueDatabase("pool", "ten_abcdefghijklmnopqrstuvwxyz"); !glueName.MatchString(name) {
		t.Errorf("%s is not a valid Glue name", name)
	}
}

func TestVersion(t *testing.T) {
	hex12 := regexp.MustCompile(`^[0-9a-f]{12}$`)
	for _, load := range []func() Template{Dedicated, Pool} {
		a, b := load(), load()
		if a.Version != b.Version || !hex12.MatchString(a.Version) {
			t.Errorf("%s: versions %q and %q, want one stable 12-hex-digit version", a.Name, a.Version, b.Version)
		}
		sum := sha256.Sum256([]byte(a.Body))
		if want := hex.EncodeToString(sum[:])[:12]; a.Version != want {
			t.Errorf("%s: Version %s, want %s", a.Name, a.Version, want)
		}
		changed := newTemplate(a.Name, a.Body+"\n# edited\n")
		if changed.Version == a.Version {
			t.Errorf("%s: Version did not change with the body", a.Name)
		}
		if again := newTemplate(a.Name, a.Body); again != a {
			t.Errorf("%s: rebuilding from the same body gave %+v", a.Name, again)
		}
	}
	if Dedicated().Version == Pool().Version {
		t.Error("both templates have the same version")
	}
	if Dedicated().Name != DedicatedFile || Pool().Name != PoolFile {
		t.Errorf("names %q, %q", Dedicated().Name, Pool().Name)
	}
}

// TestGolden pins each template's outputs and resources, so that a change to
// either is a deliberate one. Regenerate with: go test ./templates -update
func TestGolden(t *testing.T) {
	var buf bytes.Buffer
	for i, tpl := range all() {
		if i > 0 {
			buf.WriteString("\n")
		}
		c := parse(t, tpl)
		fmt.Fprintf(&buf, "# %s\noutputs:\n", tpl.Name)
		var outs []string
		for key := range c.section("Outputs") {
			outs = append(outs, key)
		}
		sort.Strings(outs)
		for _, key := range outs {
			fmt.Fprintf(&buf, "  %s -> %s\n", key, OutputKeys[key])
		}
		buf.WriteString("resources:\n")
		var lines []string
		for id, r := range c.resources() {
			lines = append(lines, fmt.Sprintf("  %s %s", r["Type"], id))
		}
		sort.Strings(lines)
		buf.WriteString(strings.Join(lines, "\n") + "\n")
	}
	path := filepath.Join("testdata", "outputs.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (create it with: go test ./templates -update)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("outputs or resources changed; if that is intended, run go test ./templates -update\n--- got\n%s\n--- want\n%s", buf.Bytes(), want)
	}
}

// TestCfnLint runs cfn-lint when it is on PATH (make test puts .venv/bin
// first); `make lint-templates` runs it as well.
func TestCfnLint(t *testing.T) {
	bin, err := exec.LookPath("cfn-lint")
	if err != nil {
		t.Skip("cfn-lint not on PATH")
	}
	// A version-manager shim can be on PATH without a working cfn-lint behind it.
	if out, err := exec.Command(bin, "--version").CombinedOutput(); err != nil {
		t.Skipf("cfn-lint on PATH does not run: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--", DedicatedFile, PoolFile).CombinedOutput()
	if err != nil {
		t.Errorf("cfn-lint: %v\n%s", err, out)
	}
}

// firehosePlaceholder matches a Firehose prefix expression.
var firehosePlaceholder = regexp.MustCompile(`!\{([a-zA-Z]+):([^}]+)\}`)

// renderPrefix evaluates a Firehose S3 prefix as Firehose would for a
// record arriving at at (its time zone is UTC) whose partition keys are
// keys.
func renderPrefix(t *testing.T, prefix string, at time.Time, keys map[string]string) string {
	t.Helper()
	layouts := map[string]string{"yyyy-MM-dd": "2006-01-02", "HH": "15"}
	return firehosePlaceholder.ReplaceAllStringFunc(prefix, func(m string) string {
		sub := firehosePlaceholder.FindStringSubmatch(m)
		switch sub[1] {
		case "timestamp":
			layout, ok := layouts[sub[2]]
			if !ok {
				t.Fatalf("prefix %q: timestamp pattern %q is not one the raw zone uses", prefix, sub[2])
			}
			return at.UTC().Format(layout)
		case "partitionKeyFromQuery":
			v, ok := keys[sub[2]]
			if !ok {
				t.Fatalf("prefix %q: no partition key %q", prefix, sub[2])
			}
			return v
		}
		t.Fatalf("prefix %q: unknown expression %s", prefix, m)
		return ""
	})
}

// TestRawDelivery checks each template's Firehose delivery stream from its
// Kinesis stream into the raw zone: it lands objects where and as the
// server's raw zone writer does (the contract in docs/raw-zone.md), keeps
// errors out of the events, and its role holds no more than the delivery
// needs.
func TestRawDelivery(t *testing.T) {
	const tenant = "ten_abcdefghijklmnopqrstuvwxyz"
	at := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, tc := range []struct {
		tpl       Template
		rawPrefix string            // the tenant's prefix in the raw bucket, as the provisioner names it
		keys      map[string]string // the partition keys of a record of the tenant
		objects   []string          // the key prefixes the role may write
	}{
		{Dedicated(), "", nil, []string{"events/*", "firehose-errors/*"}},
		{Pool(), "tenants/" + tenant + "/", map[string]string{"tenant_id": tenant}, []string{"tenants/*", "firehose-errors/*"}},
	} {
		t.Run(tc.tpl.Name, func(t *testing.T) {
			c := parse(t, tc.tpl)
			res := c.resources()
			ids := c.ofType("AWS::KinesisFirehose::DeliveryStream")
			if len(ids) != 1 {
				t.Fatalf("delivery streams %v, want one", ids)
			}
			p := props(res[ids[0]])
			if p["DeliveryStreamType"] != "KinesisStreamAsSource" ||
				!reflect.DeepEqual(get(p, "KinesisStreamSourceConfiguration", "KinesisStreamARN"), map[string]any{"Fn::GetAtt": []any{"IngestStream", "Arn"}}) {
				t.Errorf("source: %v", get(p, "KinesisStreamSourceConfiguration"))
			}
			dest := get(p, "ExtendedS3DestinationConfiguration")
			if !reflect.DeepEqual(get(dest, "BucketARN"), map[string]any{"Fn::GetAtt": []any{"RawZoneBucket", "Arn"}}) {
				t.Errorf("destination bucket: %v", get(dest, "BucketARN"))
			}
			if get(dest, "CompressionFormat") != "GZIP" || get(dest, "FileExtension") != ".ndjson.gz" || get(dest, "CustomTimeZone") != "UTC" {
				t.Errorf("objects are not gzip NDJSON named .ndjson.gz in UTC partitions: %v", dest)
			}
			if !reflect.DeepEqual(get(dest, "EncryptionConfiguration", "KMSEncryptionConfig", "AWSKMSKeyARN"), map[string]any{"Fn::GetAtt": []any{"KmsKey", "Arn"}}) {
				t.Errorf("objects are not encrypted with the stack's key: %v", get(dest, "EncryptionConfiguration"))
			}
			var delimiter bool
			procs, _ := get(dest, "ProcessingConfiguration", "Processors").([]any)
			for _, pr := range procs {
				delimiter = delimiter || (get(pr, "Type") == "AppendDelimiterToRecord" && get(pr, "Parameters", 0, "ParameterValue") == `\n`)
			}
			if !delimiter {
				t.Error("records are not ended with a newline (NDJSON)")
			}

			// Where Firehose puts a record is where the server's writer
			// puts the tenant's events of the same hour.
			prefix := renderPrefix(t, get(dest, "Prefix").(string), at, tc.keys)
			root := t.TempDir()
			// The local engine makes the bucket directory with the stack.
			if err := os.MkdirAll(filepath.Join(root, "eu-west-1", "buckets", "raw"), 0o700); err != nil {
				t.Fatal(err)
			}
			zone := &rawzone.Local{Root: root, Locate: func(context.Context, string) (profiles.RawZoneLocation, error) {
				return profiles.RawZoneLocation{Region: "eu-west-1", Bucket: "raw", Prefix: tc.rawPrefix}, nil
			}}
			key, err := zone.Append(t.Context(), tenant, at, [][]byte{[]byte(`{"type":"track"}`)})
			if err != nil {
				t.Fatal(err)
			}
			if path.Dir(key)+"/" != prefix || !strings.HasSuffix(key, get(dest, "FileExtension").(string)) {
				t.Errorf("Firehose writes under %q, the server wrote %q", prefix, key)
			}
			errorsPrefix := get(dest, "ErrorOutputPrefix").(string)
			if !strings.HasPrefix(errorsPrefix, "firehose-errors/") || !strings.Contains(errorsPrefix, "!{firehose:error-output-type}") {
				t.Errorf("error output prefix %q is not under firehose-errors/ by error type", errorsPrefix)
			}

			if tc.keys != nil {
				// Dynamic partitioning on a tenant ID it checks: a record
				// with another value cannot reach any tenant's prefix.
				if get(dest, "DynamicPartitioningConfiguration", "Enabled") != true {
					t.Error("the pool's stream is not partitioned by tenant")
				}
				var query string
				for _, pr := range procs {
					if get(pr, "Type") == "MetadataExtraction" {
						query, _ = get(pr, "Parameters", 0, "ParameterValue").(string)
					}
				}
				tenantPattern := get(parse(t, Dedicated()).section("Parameters"), "TenantId", "AllowedPattern").(string)
				if !strings.Contains(query, "tenant_id:") || !strings.Contains(query, `test("`+tenantPattern+`")`) {
					t.Errorf("metadata extraction %q does not take tenant_id checked against %s", query, tenantPattern)
				}
			}

			// The role: Firehose in this account only, and the least it needs.
			role := props(res["RawDeliveryRole"])
			trust := get(role, "AssumeRolePolicyDocument", "Statement", 0)
			if get(trust, "Principal", "Service") != "firehose.amazonaws.com" || get(trust, "Condition", "StringEquals", "aws:SourceAccount") == nil {
				t.Errorf("trust: %v", trust)
			}
			stmts, _ := get(props(res["RawDeliveryPolicy"]), "PolicyDocument", "Statement").([]any)
			for _, s := range stmts {
				actions, _ := get(s, "Action").([]any)
				if a, ok := get(s, "Action").(string); ok {
					actions = []any{a}
				}
				for _, a := range actions {
					if strings.Contains(a.(string), "*") {
						t.Errorf("%s: wildcard action %s", get(s, "Sid"), a)
					}
				}
				switch get(s, "Sid") {
				case "RawObjects":
					var got []string
					rs, _ := get(s, "Resource").([]any)
					for _, r := range rs {
						got = append(got, strings.TrimPrefix(get(r, "Fn::Sub").(string), "${RawZoneBucket.Arn}/"))
					}
					if !slices.Equal(got, tc.objects) {
						t.Errorf("objects the role may write: %v, want %v", got, tc.objects)
					}
					if !slices.Equal(actions, []any{"s3:PutObject", "s3:AbortMultipartUpload"}) {
						t.Errorf("object actions: %v", actions)
					}
				case "DataKey":
					if get(s, "Condition", "StringEquals", "kms:ViaService") == nil {
						t.Error("the data key is not limited to Kinesis and S3")
					}
				}
			}
		})
	}
}

// TestQueryScanCutoff: every workgroup stops a query past the per-query
// scan cutoff, a parameter (10 GiB unless set, at least Athena's least).
func TestQueryScanCutoff(t *testing.T) {
	for _, tpl := range all() {
		t.Run(tpl.Name, func(t *testing.T) {
			c := parse(t, tpl)
			groups := c.ofType("AWS::Athena::WorkGroup")
			if len(groups) == 0 {
				t.Fatal("no workgroup")
			}
			for _, id := range groups {
				if got := get(props(c.resources()[id]), "WorkGroupConfiguration", "BytesScannedCutoffPerQuery", "Ref"); got != "QueryBytesScannedCutoff" {
					t.Errorf("%s: BytesScannedCutoffPerQuery is %v, want the QueryBytesScannedCutoff parameter", id, got)
				}
			}
			param := get(c.section("Parameters"), "QueryBytesScannedCutoff")
			if get(param, "Type") != "Number" || fmt.Sprint(get(param, "Default")) != "10737418240" || fmt.Sprint(get(param, "MinValue")) != "10000000" {
				t.Errorf("QueryBytesScannedCutoff: %v", param)
			}
		})
	}
}
