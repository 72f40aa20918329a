package httpapi

import (
	"fmt"
	"slices"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/cairn-cdp/cairn/internal/auth"
)

// extScopes is the extension that names the scopes a bearer token needs.
// Scopes in a requirement of an HTTP bearer scheme are not valid OpenAPI
// 3.0 (only oauth2 and openIdConnect requirements list scopes), and Cairn
// has no OAuth 2 flow to declare, so every bearer requirement is
// `bearerAuth: []` and the scopes stand beside it, on the operation or, as
// the default of operations without their own, on the document. They are
// alternatives, each a list of scopes a token must all hold:
// `[[admin], ["grants:write"]]`; an empty list admits any token of the
// route's tenant.
const extScopes = "x-cairn-scopes"

// bearerScheme is the security scheme of Cairn's JWTs.
const bearerScheme = "bearerAuth"

// writeKeyScopes is what a source's write key is, on the write-key routes:
// a credential of its source's tenant with the scope events:write.
var writeKeyScopes = [][]string{{auth.ScopeEventsWrite}}

// Scopes returns the scope alternatives that a bearer token needs for the
// operation op of doc (see extScopes), or nil when op takes no bearer
// token (a public route, or a source's write key). It returns an error when
// the document says it badly: scopes inside a bearer requirement, or an
// x-cairn-scopes that is missing or not a list of lists of scope names.
func Scopes(doc *openapi3.T, op *openapi3.Operation) ([][]string, error) {
	security := doc.Security
	if op.Security != nil {
		security = *op.Security
	}
	bearer := false
	for _, req := range security {
		scopes, ok := req[bearerScheme]
		if !ok {
			continue
		}
		if len(scopes) > 0 {
			return nil, fmt.Errorf("operation %s: scopes %v in its %s requirement belong in %s", op.OperationID, scopes, bearerScheme, extScopes)
		}
		bearer = true
	}
	if !bearer {
		return nil, nil
	}
	ext, ok := op.Extensions[extScopes]
	if !ok {
		ext, ok = doc.Extensions[extScopes]
	}
	if !ok {
		return nil, fmt.Errorf("operation %s takes a bearer token but says no %s", op.OperationID, extScopes)
	}
	alternatives, ok := ext.([]any)
	if !ok || len(alternatives) == 0 {
		return nil, fmt.Errorf("operation %s: %s is not a list of scope lists", op.OperationID, extScopes)
	}
	need := make([][]string, 0, len(alternatives))
	for _, alt := range alternatives {
		list, ok := alt.([]any)
		if !ok {
			return nil, fmt.Errorf("operation %s: %s is not a list of scope lists", op.OperationID, extScopes)
		}
		scopes := make([]string, 0, len(list))
		for _, s := range list {
			name, ok := s.(string)
			if !ok || name == "" {
				return nil, fmt.Errorf("operation %s: %s holds %v, not a scope name", op.OperationID, extScopes, s)
			}
			scopes = append(scopes, name)
		}
		need = append(need, scopes)
	}
	return need, nil
}

// operationScopes reads the scopes of every operation of doc that takes a
// bearer token, so that a spec that says them badly fails at start.
func operationScopes(doc *openapi3.T) (map[*openapi3.Operation][][]string, error) {
	m := map[*openapi3.Operation][][]string{}
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			need, err := Scopes(doc, op)
			if err != nil {
				return nil, err
			}
			if need != nil {
				m[op] = need
			}
		}
	}
	return m, nil
}

// admits reports whether scopes hold every scope of one of the
// alternatives.
func admits(need [][]string, scopes []string) bool {
	return slices.ContainsFunc(need, func(alt []string) bool {
		return !slices.ContainsFunc(alt, func(s string) bool { return !slices.Contains(scopes, s) })
	})
}
