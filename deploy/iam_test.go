package deploy

import (
	"fmt"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	"golang.org/x/tools/go/packages"
)

const (
	module     = "github.com/cairn-cdp/cairn"
	serverPkg  = module + "/cmd/server"
	sdkService = "github.com/aws/aws-sdk-go-v2/service/"
)

// iamPrefix is the IAM service prefix of each aws-sdk-go-v2 service package
// the server imports. A package missing here fails the test: say which
// prefix its actions have.
var iamPrefix = map[string]string{
	"athena":         "athena",
	"cloudformation": "cloudformation",
	"dynamodb":       "dynamodb",
	"glue":           "glue",
	"iam":            "iam",
	"kms":            "kms",
	"lakeformation":  "lakeformation",
	"s3":             "s3",
	"sts":            "sts",
}

// operationActions maps the SDK operations whose IAM actions are not named
// after them to the actions they need; every other operation needs the
// action of its own name.
var operationActions = map[string][]string{
	// S3 authorizes listings as the bucket's List actions.
	"s3:ListObjectsV2":      {"s3:ListBucket"},
	"s3:ListObjectVersions": {"s3:ListBucketVersions"},
	// DeleteObjects is authorized per key: Cairn deletes versions (of
	// purged buckets and rewritten raw-zone objects), and raw-zone objects
	// are under Object Lock in governance mode, which the calls bypass.
	"s3:DeleteObjects": {"s3:DeleteObject", "s3:DeleteObjectVersion", "s3:BypassGovernanceRetention"},
	// CopyObject reads the source object and writes the copy (a tier
	// migration's zone objects; their tags are not copied).
	"s3:CopyObject": {"s3:GetObject", "s3:PutObject"},
	// A transaction is authorized as the item actions it holds; Cairn's
	// hold puts, updates, deletes and condition checks.
	"dynamodb:TransactWriteItems": {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"},
	// GetCallerIdentity needs no permission: IAM cannot deny it.
	"sts:GetCallerIdentity": nil,
}

// indirectActions are granted to the task role though no SDK call of the
// code names them, each for the reason given.
var indirectActions = map[string]string{
	"iam:PassRole":                "CreateStack passes the stack service role (CAIRN_STACK_ROLE_ARN) to CloudFormation",
	"cloudformation:TagResource":  "CreateStack tags the stack it creates (tag-on-create is authorized as TagResource)",
	"glue:TagResource":            "CreateDatabase tags the pooled tenant's database it creates",
	"iam:TagRole":                 "CreateRole tags the pooled tenant's role it creates (tag-on-create is authorized as TagRole)",
	"glue:GetDatabase":            "Athena reads the tenant's database with the caller's credentials when it plans the refinery's queries",
	"s3:GetBucketLocation":        "Athena checks the buckets of the refinery's UNLOAD locations and results with the caller's credentials",
	"s3:AbortMultipartUpload":     "Athena writes the refinery's UNLOAD files in multipart uploads with the caller's credentials",
	"s3:ListMultipartUploadParts": "Athena writes the refinery's UNLOAD files in multipart uploads with the caller's credentials",
}

// sdkCall is one place that calls an SDK operation.
type sdkCall struct {
	op  string // "s3:PutObject": IAM prefix and operation
	pos token.Position
}

// TestTaskRoleGrantsWhatTheCodeCalls lists every AWS SDK operation that the
// server (./cmd/server and every package of this module it imports; not
// tests, not test helpers) calls, and checks that the template's task role
// grants each one's IAM actions and grants no action beyond them and
// indirectActions. A new SDK call without its action in the policy fails
// here, and so does an action left in the policy when its last call goes.
func TestTaskRoleGrantsWhatTheCodeCalls(t *testing.T) {
	calls := serverSDKCalls(t)
	for _, want := range []string{"cloudformation:CreateStack", "dynamodb:TransactWriteItems", "kms:Decrypt", "s3:PutObject"} {
		if !slices.ContainsFunc(calls, func(c sdkCall) bool { return c.op == want }) {
			t.Fatalf("the code's SDK calls do not include %s, which the server surely makes: the call finder is broken (found %v)", want, calls)
		}
	}

	need := map[string]string{} // IAM action -> why
	for _, c := range calls {
		actions, ok := operationActions[c.op]
		if !ok {
			actions = []string{c.op}
		}
		for _, a := range actions {
			if _, seen := need[a]; !seen {
				need[a] = fmt.Sprintf("%s at %s", c.op, c.pos)
			}
		}
	}
	for a, why := range indirectActions {
		need[a] = "indirect: " + why
	}

	granted := roleActions(t, "TaskRole")
	for _, a := range sortedKeys(need) {
		if !granted[a] {
			t.Errorf("the task role does not grant %s, needed by %s", a, need[a])
		}
	}
	for _, a := range sortedKeys(granted) {
		if strings.ContainsAny(a, "*?") {
			t.Errorf("the task role grants the wildcard action %s: grant the actions the code calls", a)
		} else if _, ok := need[a]; !ok {
			t.Errorf("the task role grants %s, which no SDK call of the server needs: remove it, or list it in indirectActions with the reason", a)
		}
	}
	t.Logf("%d SDK call sites, %d IAM actions", len(calls), len(need))
}

// cfnServicePrefix maps the CloudFormation service names whose IAM prefix
// differs (AWS::KinesisFirehose::DeliveryStream is firehose:...).
var cfnServicePrefix = map[string]string{"kinesisfirehose": "firehose"}

// TestStackServiceRoleCoversTenantTemplates checks that the role
// CloudFormation creates tenant and pool stacks with grants actions of every
// service whose resources templates/*.yaml declare. It is coarse (a service,
// not each action): the tenant templates' exact needs are known only to
// CloudFormation's resource handlers.
func TestStackServiceRoleCoversTenantTemplates(t *testing.T) {
	prefixes := map[string]bool{}
	for a := range roleActions(t, "StackServiceRole") {
		prefix, _, _ := strings.Cut(a, ":")
		prefixes[prefix] = true
	}
	files, err := filepath.Glob("../templates/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no tenant templates under templates/ (%v)", err)
	}
	for _, f := range files {
		doc := loadYAML(t, f)
		resources := mapValue(doc, "Resources")
		if resources == nil {
			t.Fatalf("%s: no Resources", f)
		}
		for i := 0; i+1 < len(resources.Content); i += 2 {
			typ := mapValue(resources.Content[i+1], "Type")
			if typ == nil {
				t.Fatalf("%s: resource %s has no Type", f, resources.Content[i].Value)
			}
			parts := strings.Split(typ.Value, "::") // AWS::S3::Bucket
			if len(parts) != 3 || parts[0] != "AWS" {
				t.Errorf("%s: resource %s has type %q, not AWS::Service::Resource", f, resources.Content[i].Value, typ.Value)
				continue
			}
			prefix := strings.ToLower(parts[1])
			if p, ok := cfnServicePrefix[prefix]; ok {
				prefix = p
			}
			if !prefixes[prefix] {
				t.Errorf("%s: resource %s (%s): the stack service role grants no %s: action", f, resources.Content[i].Value, typ.Value, prefix)
			}
		}
	}
}

// serverSDKCalls returns the SDK operations the server's own packages call:
// methods of a service's *Client (or of an interface of ours that a
// *Client implements), its *PresignClient's Presign methods, and its
// New<Operation>Paginator functions. A waiter fails the test until it is
// mapped to the operation it polls.
func serverSDKCalls(t *testing.T) []sdkCall {
	t.Helper()
	// The module's packages that the server's binary links, found from the
	// import graph (go list, no type-checking), then type-checked with
	// their dependencies' export data.
	graph, err := packages.Load(&packages.Config{Mode: packages.NeedName | packages.NeedImports | packages.NeedDeps, Dir: ".."}, serverPkg)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	packages.Visit(graph, nil, func(p *packages.Package) {
		if p.PkgPath == module || strings.HasPrefix(p.PkgPath, module+"/") {
			paths = append(paths, p.PkgPath)
		}
	})
	if !slices.Contains(paths, serverPkg) {
		t.Fatalf("%s not loaded: %v", serverPkg, paths)
	}
	pkgs, err := packages.Load(&packages.Config{
		Mode: packages.NeedName | packages.NeedImports | packages.NeedTypes | packages.NeedTypesInfo | packages.NeedSyntax,
		Dir:  "..",
	}, paths...)
	if err != nil {
		t.Fatal(err)
	}
	if n := packages.PrintErrors(pkgs); n > 0 {
		t.Fatalf("%d errors loading the server's packages", n)
	}

	// Every service client type the packages see, to recognize our own
	// interfaces that stand for one.
	clients := map[*types.Named]string{} // *Client's named type -> service
	for _, p := range pkgs {
		for _, imp := range p.Types.Imports() {
			svc, ok := servicePackage(imp.Path())
			if !ok {
				continue
			}
			if obj, ok := imp.Scope().Lookup("Client").(*types.TypeName); ok {
				if named, ok := obj.Type().(*types.Named); ok {
					clients[named] = svc
				}
			}
		}
	}

	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	var calls []sdkCall
	seen := map[string]bool{}
	add := func(p *packages.Package, svc, op string, at token.Pos) {
		prefix, ok := iamPrefix[svc]
		if !ok {
			t.Errorf("the server calls the %s service (%s): add its IAM prefix to iamPrefix", svc, op)
			return
		}
		pos := p.Fset.Position(at)
		if rel, err := filepath.Rel(root, pos.Filename); err == nil {
			pos.Filename = rel
		}
		key := prefix + ":" + op + "@" + pos.String()
		if !seen[key] {
			seen[key] = true
			calls = append(calls, sdkCall{op: prefix + ":" + op, pos: pos})
		}
	}
	paginator := regexp.MustCompile(`^New(\w+)Paginator$`)
	waiter := regexp.MustCompile(`^New\w+Waiter$`)

	for _, p := range pkgs {
		for id, sel := range p.TypesInfo.Selections {
			fn, ok := sel.Obj().(*types.Func)
			if !ok || sel.Kind() == types.FieldVal {
				continue
			}
			recv := fn.Type().(*types.Signature).Recv()
			if recv == nil {
				continue
			}
			if iface, ok := recv.Type().Underlying().(*types.Interface); ok && iface.NumMethods() > 0 {
				for named, svc := range clients {
					if types.Implements(types.NewPointer(named), iface) {
						add(p, svc, fn.Name(), id.Sel.Pos())
					}
				}
				continue
			}
			named := namedOf(recv.Type())
			if named == nil || named.Obj().Pkg() == nil {
				continue
			}
			svc, ok := servicePackage(named.Obj().Pkg().Path())
			if !ok {
				continue
			}
			switch name := named.Obj().Name(); {
			case name == "Client" && fn.Name() != "Options":
				add(p, svc, fn.Name(), id.Sel.Pos())
			case name == "PresignClient" && strings.HasPrefix(fn.Name(), "Presign"):
				add(p, svc, strings.TrimPrefix(fn.Name(), "Presign"), id.Sel.Pos())
			case strings.HasSuffix(name, "Waiter"):
				t.Errorf("%s: %s.%s: map the waiter to the operation it polls", p.Fset.Position(id.Pos()), name, fn.Name())
			}
		}
		for id, obj := range p.TypesInfo.Uses {
			fn, ok := obj.(*types.Func)
			if !ok || fn.Pkg() == nil || fn.Type().(*types.Signature).Recv() != nil {
				continue
			}
			svc, ok := servicePackage(fn.Pkg().Path())
			if !ok {
				continue
			}
			if m := paginator.FindStringSubmatch(fn.Name()); m != nil {
				add(p, svc, m[1], id.Pos())
			} else if waiter.MatchString(fn.Name()) {
				t.Errorf("%s: %s.%s: map the waiter to the operation it polls", p.Fset.Position(id.Pos()), svc, fn.Name())
			}
		}
	}
	sort.Slice(calls, func(i, j int) bool { return calls[i].op < calls[j].op })
	return calls
}

// servicePackage reports whether path is a service client package of the
// SDK (".../service/s3", not ".../service/s3/types"), and which.
func servicePackage(path string) (string, bool) {
	svc, ok := strings.CutPrefix(path, sdkService)
	return svc, ok && svc != "" && !strings.Contains(svc, "/") && !strings.HasPrefix(svc, "internal")
}

func namedOf(t types.Type) *types.Named {
	if p, ok := t.(*types.Pointer); ok {
		t = p.Elem()
	}
	n, _ := t.(*types.Named)
	return n
}

// roleActions returns the actions that the inline policies of the
// template's role resource allow. A statement under !If counts with both
// its branches; NotAction, or an Effect other than Allow, fails the test.
func roleActions(t *testing.T, role string) map[string]bool {
	t.Helper()
	doc := loadYAML(t, "control-plane.yaml")
	res := mapValue(mapValue(doc, "Resources"), role)
	if res == nil || mapValue(res, "Type").Value != "AWS::IAM::Role" {
		t.Fatalf("control-plane.yaml has no AWS::IAM::Role %s", role)
	}
	policies := mapValue(mapValue(res, "Properties"), "Policies")
	if policies == nil || len(policies.Content) == 0 {
		t.Fatalf("role %s has no inline policies", role)
	}
	if mapValue(mapValue(res, "Properties"), "ManagedPolicyArns") != nil {
		t.Fatalf("role %s has managed policies: they grant what this test cannot see", role)
	}
	actions := map[string]bool{}
	var statement func(st *yaml.Node)
	statement = func(st *yaml.Node) {
		switch {
		case st.Tag == "!If":
			for _, branch := range st.Content[1:] {
				statement(branch)
			}
			return
		case st.Kind == yaml.ScalarNode && st.Tag == "!Ref" && st.Value == "AWS::NoValue":
			return
		case st.Kind != yaml.MappingNode:
			t.Fatalf("role %s: a statement is not a mapping (line %d)", role, st.Line)
		}
		if e := mapValue(st, "Effect"); e == nil || e.Value != "Allow" {
			t.Fatalf("role %s: statement at line %d is not Effect: Allow", role, st.Line)
		}
		if mapValue(st, "NotAction") != nil {
			t.Fatalf("role %s: statement at line %d uses NotAction", role, st.Line)
		}
		a := mapValue(st, "Action")
		switch {
		case a == nil:
			t.Fatalf("role %s: statement at line %d has no Action", role, st.Line)
		case a.Kind == yaml.ScalarNode:
			actions[a.Value] = true
		default:
			for _, v := range a.Content {
				actions[v.Value] = true
			}
		}
	}
	for _, p := range policies.Content {
		for _, st := range mapValue(mapValue(p, "PolicyDocument"), "Statement").Content {
			statement(st)
		}
	}
	return actions
}

func loadYAML(t *testing.T, path string) *yaml.Node {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return doc.Content[0]
}

// mapValue returns the value of key in the mapping m, or nil.
func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
