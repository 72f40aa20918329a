// Package iamsim is a small, offline evaluator of AWS IAM identity-based and
// session policies, for testing the policies Cairn generates without an AWS
// account.
//
// It models the parts of the IAM policy language that Cairn uses: Version,
// Statement (an object or an array), Sid, Effect, Action and NotAction,
// Resource and NotResource, and Condition with the operators StringEquals,
// StringNotEquals, StringEqualsIgnoreCase, StringLike, StringNotLike,
// ArnEquals, ArnLike, ArnNotEquals, ArnNotLike, Bool and Null, the set
// qualifiers ForAllValues: and ForAnyValue:, and the IfExists suffix.
// Anything else (Principal, NotPrincipal, policy variables such as
// ${aws:username}, numeric or date operators) is rejected by Parse, so that a
// test never passes because the evaluator ignored part of a policy.
//
// Evaluation follows the IAM rule for one account: an explicit Deny in any
// policy wins; otherwise any statement that allows the request allows it;
// otherwise the request is implicitly denied. EvaluateSession applies the rule
// for role sessions: the effective permissions are the intersection of the
// role's identity policies and the session policy.
//
// Known simplifications, each of which is documented where it applies:
// resource patterns are matched as whole strings (a '*' may cross the ':'
// between ARN segments), and a condition that uses a single-valued operator
// on a key with several values in the request is true if any value matches.
// Resource-based policies, permissions boundaries, SCPs and cross-account
// rules are not modelled.
//
// Policies are immutable after Parse; Evaluate and EvaluateSession are safe
// for concurrent use.
package iamsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrInvalidPolicy is returned (wrapped) by Parse for a document that is not
// a valid IAM policy or that uses a feature this package does not model.
var ErrInvalidPolicy = errors.New("iamsim: invalid or unsupported policy")

// Effect is a statement's Effect.
type Effect string

// Statement effects.
const (
	EffectAllow Effect = "Allow"
	EffectDeny  Effect = "Deny"
)

// Policy is a parsed identity-based or session policy.
type Policy struct {
	// Version is the policy language version; "2012-10-17" or "2008-10-17"
	// ("2008-10-17" when the document omits it, as IAM does).
	Version    string
	Statements []Statement
}

// Statement is one parsed policy statement. Exactly one of Action and
// NotAction is set, and exactly one of Resource and NotResource.
type Statement struct {
	Sid         string
	Effect      Effect
	Action      []string
	NotAction   []string
	Resource    []string
	NotResource []string
	// Conditions are ANDed; see Condition.
	Conditions []Condition
}

// Condition is one key of one condition operator, e.g. the
// "dynamodb:LeadingKeys" entry under "ForAllValues:StringLike".
type Condition struct {
	// Operator is as written, e.g. "ForAllValues:StringLike" or
	// "StringEqualsIfExists".
	Operator string
	// Key is the context key as written; keys compare case-insensitively.
	Key string
	// Values are the policy's values for Key; a request value matches if it
	// matches any of them.
	Values []string

	set      setQualifier
	ifExists bool
	base     string // operator without qualifier and IfExists
}

type setQualifier int

const (
	setNone setQualifier = iota
	setForAll
	setForAny
)

// operators maps each supported base operator to whether it is negated.
var operators = map[string]bool{
	"StringEquals":           false,
	"StringNotEquals":        true,
	"StringEqualsIgnoreCase": false,
	"StringLike":             false,
	"StringNotLike":          true,
	"ArnEquals":              false,
	"ArnLike":                false,
	"ArnNotEquals":           true,
	"ArnNotLike":             true,
	"Bool":                   false,
	"Null":                   false,
}

// MustParse is Parse for policies that are constants of a test; it panics on
// error.
func MustParse(doc string) Policy {
	p, err := Parse([]byte(doc))
	if err != nil {
		panic(err)
	}
	return p
}

// Parse parses a policy document. It returns an error wrapping
// ErrInvalidPolicy if the document is malformed (including element names in
// the wrong case, which IAM rejects too) or uses anything this package does
// not evaluate.
func Parse(doc []byte) (Policy, error) {
	var top map[string]json.RawMessage
	if err := strictUnmarshal(doc, &top); err != nil {
		return Policy{}, invalid("policy: %v", err)
	}
	if top == nil {
		return Policy{}, invalid("policy: not a JSON object")
	}
	p := Policy{Version: "2008-10-17"}
	for k, raw := range top {
		switch k {
		case "Version":
			if err := json.Unmarshal(raw, &p.Version); err != nil {
				return Policy{}, invalid("Version: %v", err)
			}
			if p.Version != "2012-10-17" && p.Version != "2008-10-17" {
				return Policy{}, invalid("Version %q", p.Version)
			}
		case "Id":
		case "Statement":
		default:
			return Policy{}, invalid("unknown policy element %q", k)
		}
	}
	raw, ok := top["Statement"]
	if !ok {
		return Policy{}, invalid("no Statement")
	}
	var list []json.RawMessage
	if bytes.HasPrefix(bytes.TrimSpace(raw), []byte("[")) {
		if err := json.Unmarshal(raw, &list); err != nil {
			return Policy{}, invalid("Statement: %v", err)
		}
	} else {
		list = []json.RawMessage{raw}
	}
	if len(list) == 0 {
		return Policy{}, invalid("Statement is empty")
	}
	for i, raw := range list {
		s, err := parseStatement(raw, p.Version)
		if err != nil {
			return Policy{}, fmt.Errorf("statement %d: %w", i, err)
		}
		p.Statements = append(p.Statements, s)
	}
	return p, nil
}

func parseStatement(raw json.RawMessage, version string) (Statement, error) {
	var m map[string]json.RawMessage
	if err := strictUnmarshal(raw, &m); err != nil || m == nil {
		return Statement{}, invalid("not a JSON object")
	}
	var s Statement
	for k, v := range m {
		var err error
		switch k {
		case "Sid":
			err = json.Unmarshal(v, &s.Sid)
		case "Effect":
			err = json.Unmarshal(v, &s.Effect)
		case "Action":
			s.Action, err = stringOrList(v)
		case "NotAction":
			s.NotAction, err = stringOrList(v)
		case "Resource":
			s.Resource, err = stringOrList(v)
		case "NotResource":
			s.NotResource, err = stringOrList(v)
		case "Condition":
			s.Conditions, err = parseConditions(v)
		case "Principal", "NotPrincipal":
			return Statement{}, invalid("%s: resource-based policies are not supported", k)
		default:
			return Statement{}, invalid("unknown statement element %q", k)
		}
		if err != nil {
			return Statement{}, invalid("%s: %v", k, err)
		}
	}
	if s.Effect != EffectAllow && s.Effect != EffectDeny {
		return Statement{}, invalid("Effect %q: want Allow or Deny", s.Effect)
	}
	if (s.Action == nil) == (s.NotAction == nil) {
		return Statement{}, invalid("want exactly one of Action and NotAction")
	}
	if (s.Resource == nil) == (s.NotResource == nil) {
		return Statement{}, invalid("want exactly one of Resource and NotResource")
	}
	for _, a := range slices.Concat(s.Action, s.NotAction) {
		if a != "*" && !strings.Contains(a, ":") {
			return Statement{}, invalid("action %q: want service:action", a)
		}
	}
	if version == "2012-10-17" {
		// Policy variables are substituted by IAM; evaluating them as
		// literals would silently give wrong answers.
		vals := slices.Concat(s.Resource, s.NotResource)
		for _, c := range s.Conditions {
			vals = append(vals, c.Values...)
		}
		for _, v := range vals {
			if strings.Contains(v, "${") {
				return Statement{}, invalid("policy variable in %q is not supported", v)
			}
		}
	}
	return s, nil
}

func parseConditions(raw json.RawMessage) ([]Condition, error) {
	var ops map[string]map[string]json.RawMessage
	if err := strictUnmarshal(raw, &ops); err != nil {
		return nil, err
	}
	var out []Condition
	for op, keys := range ops {
		c := Condition{Operator: op, base: op}
		if rest, ok := strings.CutPrefix(op, "ForAllValues:"); ok {
			c.set, c.base = setForAll, rest
		} else if rest, ok := strings.CutPrefix(op, "ForAnyValue:"); ok {
			c.set, c.base = setForAny, rest
		}
		if rest, ok := strings.CutSuffix(c.base, "IfExists"); ok {
			c.ifExists, c.base = true, rest
		}
		if _, ok := operators[c.base]; !ok {
			return nil, fmt.Errorf("operator %q is not supported", op)
		}
		if c.base == "Null" && (c.ifExists || c.set != setNone) {
			return nil, fmt.Errorf("operator %q is not valid", op)
		}
		if len(keys) == 0 {
			return nil, fmt.Errorf("operator %q has no keys", op)
		}
		for key, v := range keys {
			vals, err := conditionValues(v)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %v", op, key, err)
			}
			if c.base == "Bool" || c.base == "Null" {
				for _, b := range vals {
					if !strings.EqualFold(b, "true") && !strings.EqualFold(b, "false") {
						return nil, fmt.Errorf("%s %s: %q is not true or false", op, key, b)
					}
				}
			}
			cc := c
			cc.Key, cc.Values = key, vals
			out = append(out, cc)
		}
	}
	// Map order is random; keep Conditions stable for callers that print them.
	slices.SortFunc(out, func(a, b Condition) int {
		return strings.Compare(a.Operator+"\x00"+a.Key, b.Operator+"\x00"+b.Key)
	})
	return out, nil
}

// stringOrList decodes an element that IAM accepts as a string or a list of
// strings.
func stringOrList(raw json.RawMessage) ([]string, error) {
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, errors.New("want a string or a list of strings")
	}
	if len(list) == 0 {
		return nil, errors.New("empty list")
	}
	return list, nil
}

// conditionValues decodes condition values, which IAM accepts as strings,
// booleans or numbers, alone or in a list.
func conditionValues(raw json.RawMessage) ([]string, error) {
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		list = []json.RawMessage{raw}
	}
	if len(list) == 0 {
		return nil, errors.New("no values")
	}
	out := make([]string, 0, len(list))
	for _, item := range list {
		var v any
		if err := json.Unmarshal(item, &v); err != nil {
			return nil, err
		}
		switch v := v.(type) {
		case string:
			out = append(out, v)
		case bool:
			out = append(out, fmt.Sprint(v))
		case float64:
			out = append(out, string(bytes.TrimSpace(item)))
		default:
			return nil, fmt.Errorf("value %s: want a string, boolean or number", item)
		}
	}
	return out, nil
}

// strictUnmarshal decodes exactly one JSON value.
func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidPolicy, fmt.Sprintf(format, args...))
}
