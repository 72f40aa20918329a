package httpapi_test

import (
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/cairn-cdp/cairn/api"
)

// noLocation lists the operations whose 201 or 202 declares no Location,
// each with why: there is nothing a GET could read back.
var noLocation = map[string]string{
	"createTenantToken": "a minted token is not kept",
	"createCredentials": "temporary AWS credentials are not kept",
	"registerPrincipal": "a principal has no URL of its own; routes name it in the body",
}

// TestLocationOnCreatedAndAccepted: every 201 and 202 of the spec declares
// a required Location header (issue #12), except the operations of
// noLocation, whose descriptions say why. A stale exemption fails too.
func TestLocationOnCreatedAndAccepted(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(api.Spec)
	if err != nil {
		t.Fatal(err)
	}
	exempted := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			for _, code := range []string{"201", "202"} {
				r := op.Responses.Value(code)
				if r == nil {
					continue
				}
				h := r.Value.Headers["Location"]
				declared := h != nil && h.Value.Required
				_, exempt := noLocation[op.OperationID]
				switch {
				case exempt && declared:
					t.Errorf("%s %s (%s) %s declares Location but is listed in noLocation", method, path, op.OperationID, code)
				case exempt:
					exempted[op.OperationID] = true
					if !strings.Contains(op.Description, "no `Location`") {
						t.Errorf("%s (%s): its description must say why the %s has no `Location`", op.OperationID, path, code)
					}
				case !declared:
					t.Errorf("%s %s (%s) answers %s without a required Location header", method, path, op.OperationID, code)
				}
			}
		}
	}
	for id, why := range noLocation {
		if !exempted[id] {
			t.Errorf("noLocation lists %s (%s), which answers no 201 or 202", id, why)
		}
	}
}

// follow GETs the response's Location with token and wants a 200 there.
func (e *env) follow(t *testing.T, r resp, token string) resp {
	t.Helper()
	loc := r.header.Get("Location")
	if !strings.HasPrefix(loc, "/v1/") {
		t.Fatalf("Location %q: %s", loc, r.raw)
	}
	return e.do("GET", loc, token, nil).want(t, 200)
}
