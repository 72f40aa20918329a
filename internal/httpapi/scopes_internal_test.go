package httpapi

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/cairn-cdp/cairn/api"
)

// TestScopes: the scopes of an operation come from its x-cairn-scopes, or
// the document's; a spec that puts scopes in a bearer requirement, or says
// them badly, is refused (so the gate does not start on it).
func TestScopes(t *testing.T) {
	const head = `openapi: 3.0.3
info: {title: t, version: "1"}
security:
  - bearerAuth: []
x-cairn-scopes: [[admin]]
components:
  securitySchemes:
    bearerAuth: {type: http, scheme: bearer}
    writeKey: {type: http, scheme: basic}
paths:
  /x:
    get:
      operationId: getX
      responses: {"200": {description: ok}}
`
	tests := []struct {
		name string
		op   string // the operation's own security and extensions
		want [][]string
		err  string
	}{
		{"the document's default", "", [][]string{{"admin"}}, ""},
		{"its own", `security: [{bearerAuth: []}]
x-cairn-scopes: [[admin], ["grants:write"], []]`, [][]string{{"admin"}, {"grants:write"}, {}}, ""},
		{"all of a list", `x-cairn-scopes: [[admin], ["profiles:read", "segments:read"]]`, [][]string{{"admin"}, {"profiles:read", "segments:read"}}, ""},
		{"public", `security: []`, nil, ""},
		{"write key", `security: [{writeKey: []}]`, nil, ""},
		{"scopes in the requirement", `security: [{bearerAuth: [admin]}]`, nil, "belong in x-cairn-scopes"},
		{"a flat list", `x-cairn-scopes: [admin]`, nil, "not a list of scope lists"},
		{"an empty list", `x-cairn-scopes: []`, nil, "not a list of scope lists"},
		{"not a name", `x-cairn-scopes: [[1]]`, nil, "not a scope name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var op strings.Builder
			for line := range strings.SplitSeq(tt.op, "\n") {
				if line != "" {
					fmt.Fprintf(&op, "      %s\n", line)
				}
			}
			doc, err := openapi3.NewLoader().LoadFromData([]byte(head + op.String()))
			if err != nil {
				t.Fatal(err)
			}
			got, err := Scopes(doc, doc.Paths.Find("/x").Get)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one saying %q", err, tt.err)
				}
				if _, err := operationScopes(doc); err == nil {
					t.Fatal("operationScopes took the spec")
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Scopes = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// TestContractScopes: the contract says every bearer route's scopes the
// valid way, and the gate starts on it.
func TestContractScopes(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(api.Spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatal(err)
	}
	scopes, err := operationScopes(doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(scopes) < 40 {
		t.Fatalf("only %d operations take a bearer token", len(scopes))
	}
}

// TestAdmits: a token passes with every scope of one alternative.
func TestAdmits(t *testing.T) {
	need := [][]string{{"admin"}, {"segments:read", "profiles:read"}}
	tests := []struct {
		have []string
		want bool
	}{
		{[]string{"admin"}, true},
		{[]string{"segments:read", "profiles:read", "events:write"}, true},
		{[]string{"segments:read"}, false},
		{nil, false},
	}
	for _, tt := range tests {
		if got := admits(need, tt.have); got != tt.want {
			t.Errorf("admits(%v) = %v, want %v", tt.have, got, tt.want)
		}
	}
	if !admits([][]string{{}}, nil) {
		t.Error("an empty alternative refused a token")
	}
	if admits(nil, []string{"admin"}) {
		t.Error("no alternatives admitted a token")
	}
}
