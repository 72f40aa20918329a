package httpapi_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/cairn-cdp/cairn/api"
)

// secretName matches the response fields that may hold a secret; a hint
// (a secret's first characters) or a time about a secret does not.
var secretName = regexp.MustCompile(`secret|key|token|password|credential`)

// TestReplayedSecretsAreDeclared: idempotency remembers the responses of
// the operations that take an Idempotency-Key and replays them, so each
// field of their 2xx answers that may hold a secret must be listed in the
// operation's x-cairn-secrets (never remembered; null in a replay) and
// named in its description, and every listed field must exist. A new
// idempotent operation that answers a secret fails here until it is
// declared.
func TestReplayedSecretsAreDeclared(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(api.Spec)
	if err != nil {
		t.Fatal(err)
	}
	idempotent := 0
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.Parameters.GetByInAndName(openapi3.ParameterInHeader, "Idempotency-Key") == nil {
				continue
			}
			idempotent++
			var declared []string
			if list, ok := op.Extensions["x-cairn-secrets"].([]any); ok {
				for _, f := range list {
					s, _ := f.(string)
					declared = append(declared, s)
				}
			}
			fields := map[string]bool{}
			for code, r := range op.Responses.Map() {
				if !strings.HasPrefix(code, "2") || r.Value == nil {
					continue
				}
				if mt := r.Value.Content.Get("application/json"); mt != nil && mt.Schema != nil {
					collectFields(mt.Schema.Value, fields, 0)
				}
			}
			for f := range fields {
				if secretName.MatchString(f) && !strings.HasSuffix(f, "_hint") && !strings.HasSuffix(f, "_at") && !slices.Contains(declared, f) {
					t.Errorf("%s %s (%s) answers %q, which may be a secret, but x-cairn-secrets does not list it: a replay would show it and the idempotency record would keep it", method, path, op.OperationID, f)
				}
			}
			for _, f := range declared {
				if !fields[f] {
					t.Errorf("%s (%s): x-cairn-secrets lists %q, which no 2xx answer has", op.OperationID, path, f)
				}
				if !strings.Contains(op.Description, "`"+f+"`") {
					t.Errorf("%s (%s): the description must say what a replay answers for `%s`", op.OperationID, path, f)
				}
			}
		}
	}
	if idempotent < 5 {
		t.Fatalf("%d operations take an Idempotency-Key: the test no longer reads the spec", idempotent)
	}
}

// collectFields adds the top-level property names of s (through allOf,
// oneOf and anyOf) to fields.
func collectFields(s *openapi3.Schema, fields map[string]bool, depth int) {
	if s == nil || depth > 8 {
		return
	}
	for name := range s.Properties {
		fields[name] = true
	}
	for _, refs := range []openapi3.SchemaRefs{s.AllOf, s.OneOf, s.AnyOf} {
		for _, r := range refs {
			collectFields(r.Value, fields, depth+1)
		}
	}
}
