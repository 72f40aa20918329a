package iamsim

import (
	"errors"
	"testing"
)

func TestGlob(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"", "", true},
		{"", "a", false},
		{"*", "", true},
		{"*", "anything/at:all", true},
		{"abc", "abc", true},
		{"abc", "ABC", false}, // case-sensitive
		{"abc", "abcd", false},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"a?c", "aéc", true}, // '?' is one character, not one byte
		{"tenants/A/*", "tenants/A/", true},
		{"tenants/A/*", "tenants/A/x/y.json", true},
		{"tenants/A/*", "tenants/A", false},
		{"tenants/A/*", "tenants/AB/x", false},
		{"tenants/A/*", "tenants/B/x", false},
		{"*/index/*", "arn:t/index/gsi1", true},
		{"a*b*c", "aXXbYYc", true},
		{"a*b*c", "aXXbYY", false},
		{"a**", "a", true},
		{"*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false}, // no exponential blow-up
		{"TENANT#A#*", "TENANT#A#profile#1", true},
		{"TENANT#A#*", "TENANT#AB#profile#1", false},
	}
	for _, tt := range tests {
		if got := Glob(tt.pattern, tt.s); got != tt.want {
			t.Errorf("Glob(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
}

func TestParseRejects(t *testing.T) {
	tests := map[string]string{
		"not JSON":         `{`,
		"not an object":    `[]`,
		"trailing data":    `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}} {}`,
		"bad version":      `{"Version":"2020-01-01","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`,
		"no statement":     `{"Version":"2012-10-17"}`,
		"empty statements": `{"Version":"2012-10-17","Statement":[]}`,
		"unknown element":  `{"Version":"2012-10-17","Statements":[]}`,
		"lowercase effect": `{"Version":"2012-10-17","Statement":{"effect":"Allow","Action":"*","Resource":"*"}}`,
		"bad effect":       `{"Version":"2012-10-17","Statement":{"Effect":"allow","Action":"*","Resource":"*"}}`,
		"no action":        `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Resource":"*"}}`,
		"action and not":   `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","NotAction":"s3:*","Resource":"*"}}`,
		"no resource":      `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*"}}`,
		"bad action":       `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"GetObject","Resource":"*"}}`,
		"empty action":     `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":[],"Resource":"*"}}`,
		"principal":        `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}}`,
		"policy variable":  `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/${aws:username}/*"}}`,
		"unknown operator": `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"NumericLessThan":{"k":"1"}}}}`,
		"qualified Null":   `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"ForAllValues:Null":{"k":"true"}}}}`,
		"bad Bool value":   `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"Bool":{"k":"yes"}}}}`,
		"no values":        `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"k":[]}}}}`,
		"object value":     `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"k":{}}}}}`,
	}
	for name, doc := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse([]byte(doc)); !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("Parse = %v, want ErrInvalidPolicy", err)
			}
		})
	}
}

func TestParseForms(t *testing.T) {
	// Statement as an object, scalars for Action and Resource, JSON booleans
	// and numbers as condition values, and no Version (IAM's 2008-10-17).
	p, err := Parse([]byte(`{"Statement":{"Sid":"S","Effect":"Deny","NotAction":"iam:*","NotResource":["arn:a","arn:b"],
		"Condition":{"Bool":{"aws:SecureTransport":false},"StringEquals":{"n":[1,"two"]}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if p.Version != "2008-10-17" || len(p.Statements) != 1 {
		t.Fatalf("got %+v", p)
	}
	s := p.Statements[0]
	if s.Sid != "S" || s.Effect != EffectDeny || len(s.NotAction) != 1 || len(s.NotResource) != 2 {
		t.Errorf("statement = %+v", s)
	}
	if len(s.Conditions) != 2 || s.Conditions[0].Operator != "Bool" || s.Conditions[0].Values[0] != "false" ||
		s.Conditions[1].Values[0] != "1" || s.Conditions[1].Values[1] != "two" {
		t.Errorf("conditions = %+v", s.Conditions)
	}
}

// allow wraps one Allow statement's body in a policy.
func allow(body string) string {
	return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",` + body + `}]}`
}

func TestEvaluate(t *testing.T) {
	const (
		obj   = "arn:aws:s3:::bkt/tenants/A/x.json"
		table = "arn:aws:dynamodb:ap-southeast-2:123456789012:table/profiles"
	)
	leading := func(keys ...string) map[string][]string {
		return map[string][]string{"dynamodb:LeadingKeys": keys}
	}
	forAllLeading := allow(`"Action":"dynamodb:*","Resource":"*","Condition":{"ForAllValues:StringLike":{"dynamodb:LeadingKeys":"TENANT#A#*"}}`)
	forAllLeadingRequired := allow(`"Action":"dynamodb:*","Resource":"*","Condition":{
		"ForAllValues:StringLike":{"dynamodb:LeadingKeys":"TENANT#A#*"},"Null":{"dynamodb:LeadingKeys":"false"}}`)
	forAnyLeading := allow(`"Action":"dynamodb:*","Resource":"*","Condition":{"ForAnyValue:StringLike":{"dynamodb:LeadingKeys":["TENANT#A#*","TENANT#C#*"]}}`)

	tests := []struct {
		name     string
		policies []string
		req      Request
		want     Decision
	}{
		// Actions.
		{"exact action", []string{allow(`"Action":"s3:GetObject","Resource":"*"`)}, Request{Action: "s3:GetObject", Resource: obj}, Allow},
		{"other action", []string{allow(`"Action":"s3:GetObject","Resource":"*"`)}, Request{Action: "s3:PutObject", Resource: obj}, ImplicitDeny},
		{"action prefix wildcard", []string{allow(`"Action":"s3:Get*","Resource":"*"`)}, Request{Action: "s3:GetObjectVersion", Resource: obj}, Allow},
		{"action wildcard is not a service wildcard", []string{allow(`"Action":"s3:Get*","Resource":"*"`)}, Request{Action: "s3express:GetObject", Resource: obj}, ImplicitDeny},
		{"action ? wildcard", []string{allow(`"Action":"s3:?etObject","Resource":"*"`)}, Request{Action: "s3:GetObject", Resource: obj}, Allow},
		{"action case-insensitive", []string{allow(`"Action":"S3:getobject","Resource":"*"`)}, Request{Action: "s3:GetObject", Resource: obj}, Allow},
		{"action list", []string{allow(`"Action":["s3:PutObject","s3:GetObject"],"Resource":"*"`)}, Request{Action: "s3:GetObject", Resource: obj}, Allow},
		{"star action", []string{allow(`"Action":"*","Resource":"*"`)}, Request{Action: "iam:CreateUser", Resource: "arn:aws:iam::123456789012:user/x"}, Allow},
		{"NotAction allows others", []string{allow(`"NotAction":"iam:*","Resource":"*"`)}, Request{Action: "s3:GetObject", Resource: obj}, Allow},
		{"NotAction excludes", []string{allow(`"NotAction":"iam:*","Resource":"*"`)}, Request{Action: "IAM:PassRole", Resource: "*"}, ImplicitDeny},

		// Resources.
		{"resource wildcard", []string{allow(`"Action":"s3:*","Resource":"arn:aws:s3:::bkt/tenants/A/*"`)}, Request{Action: "s3:GetObject", Resource: obj}, Allow},
		{"resource other prefix", []string{allow(`"Action":"s3:*","Resource":"arn:aws:s3:::bkt/tenants/B/*"`)}, Request{Action: "s3:GetObject", Resource: obj}, ImplicitDeny},
		{"resource case-sensitive", []string{allow(`"Action":"s3:*","Resource":"arn:aws:s3:::BKT/tenants/A/*"`)}, Request{Action: "s3:GetObject", Resource: obj}, ImplicitDeny},
		{"object pattern is not the bucket", []string{allow(`"Action":"s3:*","Resource":"arn:aws:s3:::bkt/*"`)}, Request{Action: "s3:ListBucket", Resource: "arn:aws:s3:::bkt"}, ImplicitDeny},
		{"NotResource", []string{allow(`"Action":"s3:*","NotResource":"arn:aws:s3:::bkt/tenants/B/*"`)}, Request{Action: "s3:GetObject", Resource: obj}, Allow},
		{"NotResource excludes", []string{allow(`"Action":"s3:*","NotResource":"arn:aws:s3:::bkt/tenants/A/*"`)}, Request{Action: "s3:GetObject", Resource: obj}, ImplicitDeny},

		// Deny wins, across statements and across policies.
		{"no policies", nil, Request{Action: "s3:GetObject", Resource: obj}, ImplicitDeny},
		{"deny overrides allow in one policy", []string{`{"Version":"2012-10-17","Statement":[
			{"Effect":"Allow","Action":"s3:*","Resource":"*"},
			{"Effect":"Deny","Action":"s3:GetObject","Resource":"arn:aws:s3:::bkt/tenants/A/*"}]}`},
			Request{Action: "s3:GetObject", Resource: obj}, ExplicitDeny},
		{"deny overrides allow across policies", []string{
			allow(`"Action":"s3:*","Resource":"*"`),
			`{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"*","Resource":"*"}}`},
			Request{Action: "s3:GetObject", Resource: obj}, ExplicitDeny},
		{"non-matching deny", []string{
			allow(`"Action":"s3:*","Resource":"*"`),
			`{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"s3:DeleteObject","Resource":"*"}}`},
			Request{Action: "s3:GetObject", Resource: obj}, Allow},
		{"deny on condition", []string{
			allow(`"Action":"s3:*","Resource":"*"`),
			`{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"s3:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}}`},
			Request{Action: "s3:GetObject", Resource: obj, Context: map[string][]string{"aws:SecureTransport": {"false"}}}, ExplicitDeny},
		{"deny on condition not met", []string{
			allow(`"Action":"s3:*","Resource":"*"`),
			`{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"s3:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}}`},
			Request{Action: "s3:GetObject", Resource: obj, Context: map[string][]string{"aws:SecureTransport": {"true"}}}, Allow},

		// Single-valued operators.
		{"StringEquals", []string{allow(`"Action":"*","Resource":"*","Condition":{"StringEquals":{"s3:prefix":"tenants/A/"}}`)},
			Request{Action: "s3:ListBucket", Resource: "arn:aws:s3:::bkt", Context: map[string][]string{"s3:prefix": {"tenants/A/"}}}, Allow},
		{"StringEquals has no wildcards", []string{allow(`"Action":"*","Resource":"*","Condition":{"StringEquals":{"s3:prefix":"tenants/*"}}`)},
			Request{Action: "s3:ListBucket", Resource: "arn:aws:s3:::bkt", Context: map[string][]string{"s3:prefix": {"tenants/A/"}}}, ImplicitDeny},
		{"StringEquals absent key", []string{allow(`"Action":"*","Resource":"*","Condition":{"StringEquals":{"s3:prefix":"tenants/A/"}}`)},
			Request{Action: "s3:ListBucket", Resource: "arn:aws:s3:::bkt"}, ImplicitDeny},
		{"condition key case-insensitive", []string{allow(`"Action":"*","Resource":"*","Condition":{"StringEquals":{"S3:Prefix":"tenants/A/"}}`)},
			Request{Action: "s3:ListBucket", Resource: "arn:aws:s3:::bkt", Context: map[string][]string{"s3:prefix": {"tenants/A/"}}}, Allow},
		{"condition value case-sensitive", []string{allow(`"Action":"*","Resource":"*","Condition":{"StringEquals":{"s3:prefix":"TENANTS/A/"}}`)},
			Request{Action: "s3:ListBucket", Resource: "arn:aws:s3:::bkt", Context: map[string][]string{"s3:prefix": {"tenants/A/"}}}, ImplicitDeny},
		{"StringLike values are ORed", []string{allow(`"Action":"*","Resource":"*","Condition":{"StringLike":{"s3:prefix":["tenants/B/*","tenants/A/*"]}}`)},
			Request{Action: "s3:ListBucket", Resource: "arn:aws:s3:::bkt", Context: map[string][]string{"s3:prefix": {"tenants/A/x"}}}, Allow},
		{"StringLike no match", []string{allow(`"Action":"*","Resource":"*","Condition":{"StringLike":{"s3:prefix":"tenants/A/*"}}`)},
			Request{Action: "s3:ListBucket", Resource: "arn:aws:s3:::bkt", Context: map[string][]string{"s3:prefix": {"tenants/"}}}, ImplicitDeny},
		{"StringLike absent key", []string{allow(`"Action":"*","Resource":"*","Condition":{"StringLike":{"s3:prefix":"*"}}`)},
			Request{Action: "s3:ListBucket", Resource: "arn:aws:s3:::bkt"}, ImplicitDeny},
		{"StringNotLike values are NORed", []string{allow(`"Action":"*","Resource":"*","Condition":{"StringNotLike":{"s3:prefix":["tenants/B/*","tenants/C/*"]}}`)},
			Request{Action: "s3:ListBucket", Resource: "arn:aws:s3:::bkt", Context: map[string][]string{"s3:prefix": {"tenants/C/"}}}, ImplicitDeny},
		{"StringNotLike match", []string{allow(`"Action":"*","Resource":"*","Condition":{"StringNotLike":{"s3:prefix":["tenants/B/*","tenants/C/*"]}}`)},
			Request{Action: "s3:ListBucket", Resource: "arn:aws:s3:::bkt", Context: map[string][]string{"s3:prefix": {"tenants/A/"}}}, Allow},
		{"StringNotLike absent key is true", []string{allow(`"Action":"*","Resource":"*","Condition":{"StringNotLike":{"s3:prefix":"tenants/B/*"}}`)},
			Request{Action: "s3:ListBucket", Resource: "arn:aws:s3:::bkt"}, Allow},
		{"IfExists absent key", []string{allow(`"Action":"*","Resource":"*","Condition":{"StringEqualsIfExists":{"s3:prefix":"tenants/A/"}}`)},
			Request{Action: "s3:ListBucket", Resource: "arn:aws:s3:::bkt"}, Allow},
		{"IfExists present key", []string{allow(`"Action":"*","Resource":"*","Condition":{"StringEqualsIfExists":{"s3:prefix":"tenants/A/"}}`)},
			Request{Action: "s3:ListBucket", Resource: "arn:aws:s3:::bkt", Context: map[string][]string{"s3:prefix": {"tenants/B/"}}}, ImplicitDeny},
		{"Bool true", []string{allow(`"Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"true"}}`)},
			Request{Action: "s3:GetObject", Resource: obj, Context: map[string][]string{"aws:SecureTransport": {"true"}}}, Allow},
		{"Bool JSON boolean", []string{allow(`"Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":true}}`)},
			Request{Action: "s3:GetObject", Resource: obj, Context: map[string][]string{"aws:SecureTransport": {"TRUE"}}}, Allow},
		{"Bool mismatch", []string{allow(`"Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"true"}}`)},
			Request{Action: "s3:GetObject", Resource: obj, Context: map[string][]string{"aws:SecureTransport": {"false"}}}, ImplicitDeny},
		{"Bool absent key", []string{allow(`"Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"true"}}`)},
			Request{Action: "s3:GetObject", Resource: obj}, ImplicitDeny},
		{"ArnLike", []string{allow(`"Action":"*","Resource":"*","Condition":{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::123456789012:role/cairn/*"}}`)},
			Request{Action: "kms:Decrypt", Resource: "*", Context: map[string][]string{"aws:PrincipalArn": {"arn:aws:iam::123456789012:role/cairn/x"}}}, Allow},
		{"operators are ANDed", []string{allow(`"Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"true"},"StringLike":{"s3:prefix":"tenants/A/*"}}`)},
			Request{Action: "s3:ListBucket", Resource: "arn:aws:s3:::bkt", Context: map[string][]string{"aws:SecureTransport": {"true"}, "s3:prefix": {"tenants/B/"}}}, ImplicitDeny},
		{"keys are ANDed", []string{allow(`"Action":"*","Resource":"*","Condition":{"StringEquals":{"a":"1","b":"2"}}`)},
			Request{Action: "s3:ListBucket", Resource: "*", Context: map[string][]string{"a": {"1"}}}, ImplicitDeny},

		// Set operators: ForAllValues is vacuously true for an empty or absent
		// key, which is why Cairn's LeadingKeys statement also has a Null check.
		{"ForAllValues one match", []string{forAllLeading}, Request{Action: "dynamodb:GetItem", Resource: table, Context: leading("TENANT#A#p1")}, Allow},
		{"ForAllValues all match", []string{forAllLeading}, Request{Action: "dynamodb:BatchGetItem", Resource: table, Context: leading("TENANT#A#p1", "TENANT#A#p2")}, Allow},
		{"ForAllValues one mismatch", []string{forAllLeading}, Request{Action: "dynamodb:BatchGetItem", Resource: table, Context: leading("TENANT#A#p1", "TENANT#B#p2")}, ImplicitDeny},
		{"ForAllValues no values is true", []string{forAllLeading}, Request{Action: "dynamodb:Scan", Resource: table, Context: leading()}, Allow},
		{"ForAllValues absent key is true", []string{forAllLeading}, Request{Action: "dynamodb:Scan", Resource: table}, Allow},
		{"ForAllValues with Null, absent key", []string{forAllLeadingRequired}, Request{Action: "dynamodb:Scan", Resource: table}, ImplicitDeny},
		{"ForAllValues with Null, no values", []string{forAllLeadingRequired}, Request{Action: "dynamodb:Scan", Resource: table, Context: leading()}, ImplicitDeny},
		{"ForAllValues with Null, match", []string{forAllLeadingRequired}, Request{Action: "dynamodb:Query", Resource: table, Context: leading("TENANT#A#p1")}, Allow},
		{"ForAllValues with Null, mixed", []string{forAllLeadingRequired}, Request{Action: "dynamodb:BatchGetItem", Resource: table, Context: leading("TENANT#A#p1", "TENANT#B#p1")}, ImplicitDeny},
		{"ForAnyValue absent key is false", []string{forAnyLeading}, Request{Action: "dynamodb:Scan", Resource: table}, ImplicitDeny},
		{"ForAnyValue one of several", []string{forAnyLeading}, Request{Action: "dynamodb:BatchGetItem", Resource: table, Context: leading("TENANT#B#p1", "TENANT#C#p1")}, Allow},
		{"ForAnyValue none", []string{forAnyLeading}, Request{Action: "dynamodb:BatchGetItem", Resource: table, Context: leading("TENANT#B#p1", "TENANT#D#p1")}, ImplicitDeny},
		{"ForAllValues:StringNotLike", []string{allow(`"Action":"*","Resource":"*","Condition":{"ForAllValues:StringNotLike":{"aws:TagKeys":"cairn:*"}}`)},
			Request{Action: "s3:PutBucketTagging", Resource: "*", Context: map[string][]string{"aws:TagKeys": {"team", "cairn:tenant-id"}}}, ImplicitDeny},
		{"ForAnyValue:StringEquals", []string{allow(`"Action":"*","Resource":"*","Condition":{"ForAnyValue:StringEquals":{"aws:TagKeys":"team"}}`)},
			Request{Action: "s3:PutBucketTagging", Resource: "*", Context: map[string][]string{"aws:TagKeys": {"team", "cost"}}}, Allow},

		// Null.
		{"Null true, absent", []string{allow(`"Action":"*","Resource":"*","Condition":{"Null":{"aws:TagKeys":"true"}}`)}, Request{Action: "s3:GetObject", Resource: obj}, Allow},
		{"Null true, present", []string{allow(`"Action":"*","Resource":"*","Condition":{"Null":{"aws:TagKeys":"true"}}`)},
			Request{Action: "s3:GetObject", Resource: obj, Context: map[string][]string{"aws:TagKeys": {"a"}}}, ImplicitDeny},
		{"Null false, present", []string{allow(`"Action":"*","Resource":"*","Condition":{"Null":{"aws:TagKeys":"false"}}`)},
			Request{Action: "s3:GetObject", Resource: obj, Context: map[string][]string{"aws:tagkeys": {"a"}}}, Allow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ps []Policy
			for _, doc := range tt.policies {
				ps = append(ps, MustParse(doc))
			}
			if got := Evaluate(ps, tt.req); got != tt.want {
				t.Errorf("Evaluate(%s on %s, %v) = %v, want %v", tt.req.Action, tt.req.Resource, tt.req.Context, got, tt.want)
			}
		})
	}
}

func TestEvaluateSession(t *testing.T) {
	role := []Policy{MustParse(allow(`"Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::bkt/*"`))}
	get := Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::bkt/tenants/A/x"}
	tests := []struct {
		name    string
		session string
		req     Request
		want    Decision
	}{
		{"both allow", allow(`"Action":"s3:GetObject","Resource":"arn:aws:s3:::bkt/tenants/A/*"`), get, Allow},
		{"session narrows", allow(`"Action":"s3:GetObject","Resource":"arn:aws:s3:::bkt/tenants/B/*"`), get, ImplicitDeny},
		{"session cannot widen the action", allow(`"Action":"s3:*","Resource":"*"`), Request{Action: "s3:DeleteObject", Resource: get.Resource}, ImplicitDeny},
		{"session cannot widen the resource", allow(`"Action":"s3:*","Resource":"*"`), Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::other/x"}, ImplicitDeny},
		{"session deny wins", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"s3:GetObject","Resource":"*"}]}`, get, ExplicitDeny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := EvaluateSession(role, MustParse(tt.session), tt.req); got != tt.want {
				t.Errorf("EvaluateSession = %v, want %v", got, tt.want)
			}
		})
	}
	t.Run("role deny wins", func(t *testing.T) {
		roleWithDeny := append([]Policy{}, role...)
		roleWithDeny = append(roleWithDeny, MustParse(`{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"s3:*","Resource":"*"}}`))
		if got := EvaluateSession(roleWithDeny, MustParse(allow(`"Action":"*","Resource":"*"`)), get); got != ExplicitDeny {
			t.Errorf("EvaluateSession = %v, want ExplicitDeny", got)
		}
	})
}

func TestDecisionString(t *testing.T) {
	var zero Decision
	if zero != ImplicitDeny || zero.String() != "ImplicitDeny" || Allow.String() != "Allow" || ExplicitDeny.String() != "ExplicitDeny" {
		t.Errorf("zero=%v Allow=%v ExplicitDeny=%v", zero, Allow, ExplicitDeny)
	}
}
