package httpapi

import (
	"regexp"
	"slices"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/cairn-cdp/cairn/api"
)

// TestParseIfMatch: If-Match is "*" or a list of entity tags (RFC 9110,
// 8.8.3 and 13.1.1), each a quoted string optionally marked weak with
// "W/", a list allowing optional whitespace and empty elements (5.6.1).
// Anything else is malformed.
func TestParseIfMatch(t *testing.T) {
	tests := []struct {
		in   string
		any  bool
		tags []entityTag
		bad  bool
	}{
		{in: `*`, any: true},
		{in: `  *  `, any: true},
		{in: `"v3"`, tags: []entityTag{{opaque: "v3"}}},
		{in: `W/"v3"`, tags: []entityTag{{weak: true, opaque: "v3"}}},
		{in: `""`, tags: []entityTag{{opaque: ""}}},
		{in: `"v1", "v3"`, tags: []entityTag{{opaque: "v1"}, {opaque: "v3"}}},
		{in: `"v1",W/"v2" ,	"x,y"`, tags: []entityTag{{opaque: "v1"}, {weak: true, opaque: "v2"}, {opaque: "x,y"}}},
		{in: `, "v1",, "v2",`, tags: []entityTag{{opaque: "v1"}, {opaque: "v2"}}},
		{in: "\"caf\xc3\xa9\"", tags: []entityTag{{opaque: "caf\xc3\xa9"}}}, // obs-text

		{in: ``, bad: true},
		{in: ` , `, bad: true},
		{in: `v3`, bad: true},
		{in: `3`, bad: true},
		{in: `"v3`, bad: true},
		{in: `v3"`, bad: true},
		{in: `w/"v3"`, bad: true},
		{in: `W/v3`, bad: true},
		{in: `W/ "v3"`, bad: true},
		{in: `"v 3"`, bad: true},
		{in: `"v"3"`, bad: true},
		{in: `"v3" "v4"`, bad: true},
		{in: `*, "v3"`, bad: true},
		{in: `"v3", *`, bad: true},
		{in: "\"v\x7f\"", bad: true},
		{in: "\"v\t\"", bad: true},
	}
	// The spec's pattern, which the gate checks first and schemathesis
	// generates from, agrees with the parser.
	doc, err := openapi3.NewLoader().LoadFromData(api.Spec)
	if err != nil {
		t.Fatal(err)
	}
	param := doc.Paths.Find("/v1/tenants/{tenant_id}").Patch.Parameters.GetByInAndName("header", ifMatchHeader)
	pattern := regexp.MustCompile(param.Schema.Value.Pattern)
	// Every operation that takes If-Match states the same pattern.
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if p := op.Parameters.GetByInAndName("header", ifMatchHeader); p != nil && p.Schema.Value.Pattern != pattern.String() {
				t.Errorf("%s %s: If-Match pattern %q, want the parser's %q", method, path, p.Schema.Value.Pattern, pattern)
			}
		}
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if pattern.MatchString(tc.in) == tc.bad {
				t.Errorf("the spec's pattern matches %q: %v, want %v", tc.in, !tc.bad, !tc.bad)
			}
			anyTag, tags, err := parseIfMatch(tc.in)
			if tc.bad {
				if err == nil {
					t.Fatalf("parsed as any=%v %+v, want an error", anyTag, tags)
				}
				return
			}
			if err != nil || anyTag != tc.any || !slices.Equal(tags, tc.tags) {
				t.Fatalf("got any=%v %+v %v, want any=%v %+v", anyTag, tags, err, tc.any, tc.tags)
			}
		})
	}
}
