package iamsim

import (
	"strings"
)

// Request is one authorization request: an action on a resource with its
// request context.
type Request struct {
	// Action is "service:Action", e.g. "s3:GetObject".
	Action string
	// Resource is the ARN the action is on, e.g.
	// "arn:aws:s3:::bucket/key".
	Resource string
	// Context holds the request's condition keys and their values, e.g.
	// "s3:prefix": {"tenants/ten_a/"} or "dynamodb:LeadingKeys": {"TENANT#a#1"}.
	// Keys compare case-insensitively. A key that is absent and a key with no
	// values are the same to every operator.
	Context map[string][]string
}

// Decision is the outcome of an evaluation. The zero value is ImplicitDeny,
// so an unset Decision never allows.
type Decision int

// Decisions, from IAM's evaluation logic.
const (
	// ImplicitDeny: no statement allows the request (and none denies it).
	ImplicitDeny Decision = iota
	// Allow: a statement allows the request and none denies it.
	Allow
	// ExplicitDeny: a Deny statement matches the request.
	ExplicitDeny
)

// String returns the decision's name.
func (d Decision) String() string {
	switch d {
	case Allow:
		return "Allow"
	case ExplicitDeny:
		return "ExplicitDeny"
	default:
		return "ImplicitDeny"
	}
}

// Evaluate decides req against a set of policies that apply together (e.g. all
// identity policies of a role): an explicit Deny in any of them wins,
// otherwise any Allow allows, otherwise the request is implicitly denied.
// No policies means ImplicitDeny.
func Evaluate(policies []Policy, req Request) Decision {
	ctx := foldContext(req.Context)
	d := ImplicitDeny
	for _, p := range policies {
		for _, s := range p.Statements {
			if !s.matches(req, ctx) {
				continue
			}
			if s.Effect == EffectDeny {
				return ExplicitDeny
			}
			d = Allow
		}
	}
	return d
}

// EvaluateSession decides req for a role session created with a session
// policy (AssumeRole's Policy parameter): the session may do only what both
// the role's identity policies and the session policy allow, and an explicit
// Deny in either wins. A session policy can therefore narrow a role, never
// widen it.
func EvaluateSession(rolePolicies []Policy, sessionPolicy Policy, req Request) Decision {
	role := Evaluate(rolePolicies, req)
	session := Evaluate([]Policy{sessionPolicy}, req)
	switch {
	case role == ExplicitDeny || session == ExplicitDeny:
		return ExplicitDeny
	case role == Allow && session == Allow:
		return Allow
	default:
		return ImplicitDeny
	}
}

func (s Statement) matches(req Request, ctx map[string][]string) bool {
	if s.Action != nil && !anyMatch(s.Action, req.Action, matchAction) {
		return false
	}
	if s.NotAction != nil && anyMatch(s.NotAction, req.Action, matchAction) {
		return false
	}
	if s.Resource != nil && !anyMatch(s.Resource, req.Resource, Glob) {
		return false
	}
	if s.NotResource != nil && anyMatch(s.NotResource, req.Resource, Glob) {
		return false
	}
	for _, c := range s.Conditions {
		if !c.holds(ctx) {
			return false
		}
	}
	return true
}

func anyMatch(patterns []string, v string, match func(pattern, v string) bool) bool {
	for _, p := range patterns {
		if match(p, v) {
			return true
		}
	}
	return false
}

// matchAction matches an action pattern; IAM action names, service prefix
// included, are case-insensitive.
func matchAction(pattern, action string) bool {
	return Glob(strings.ToLower(pattern), strings.ToLower(action))
}

// holds evaluates one condition key against the request context.
//
// Without a set qualifier, a positive operator holds if a request value
// matches any policy value, and a negated one (StringNotEquals, ...) holds if
// no request value matches any policy value; an absent key makes a positive
// operator false and a negated one true, as in IAM. IAM expects single-valued
// keys here; for a key with several request values this package treats the
// positive operators as "any value matches", which is the permissive reading.
//
// ForAllValues holds if every request value satisfies the operator, and so
// also when the key is absent or empty: IAM documents this, and it is why an
// Allow with ForAllValues must be paired with a Null condition (or another
// check) that the key is present. ForAnyValue holds if at least one request
// value satisfies the operator, so never for an absent key.
//
// The IfExists suffix makes the condition hold when the key is absent. Null
// with "true" holds if the key is absent, with "false" if it is present.
func (c Condition) holds(ctx map[string][]string) bool {
	vals := ctx[strings.ToLower(c.Key)]
	if c.base == "Null" {
		want := strings.EqualFold(c.Values[0], "true")
		for _, v := range c.Values[1:] {
			if strings.EqualFold(v, "true") != want {
				return false // contradictory values can never hold together
			}
		}
		return (len(vals) == 0) == want
	}
	if len(vals) == 0 && c.ifExists {
		return true
	}
	negated := operators[c.base]
	// sat reports whether one request value satisfies the operator: matches
	// some policy value, or for a negated operator matches none.
	sat := func(v string) bool {
		for _, p := range c.Values {
			if c.matchOne(p, v) {
				return !negated
			}
		}
		return negated
	}
	switch c.set {
	case setForAll:
		for _, v := range vals {
			if !sat(v) {
				return false
			}
		}
		return true
	case setForAny:
		for _, v := range vals {
			if sat(v) {
				return true
			}
		}
		return false
	}
	if len(vals) == 0 {
		return negated
	}
	if negated {
		for _, v := range vals {
			if !sat(v) {
				return false
			}
		}
		return true
	}
	for _, v := range vals {
		if sat(v) {
			return true
		}
	}
	return false
}

// matchOne compares one policy value with one request value, without
// negation.
func (c Condition) matchOne(policy, request string) bool {
	switch c.base {
	case "StringEquals", "StringNotEquals":
		return policy == request
	case "StringEqualsIgnoreCase":
		return strings.EqualFold(policy, request)
	case "Bool":
		return strings.EqualFold(policy, request)
	default: // StringLike, StringNotLike and the Arn operators
		return Glob(policy, request)
	}
}

// Glob reports whether str matches the pattern pat, where '*' matches any run of
// characters (including none) and '?' matches exactly one character; every
// other character matches itself, case-sensitively. It is the matching of
// StringLike and of Resource elements. Unlike IAM's ARN matching, a '*' may
// match across the ':' separating ARN segments; this only matters for
// patterns with a '*' in the middle of an ARN segment, which Cairn's policies
// do not use.
func Glob(pat, str string) bool {
	// Iterative matcher with single-star backtracking: never exponential.
	// Runes, so that '?' matches one character rather than one byte.
	pattern, s := []rune(pat), []rune(str)
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]) && pattern[p] != '*':
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// foldContext lowercases the context's keys so that lookups are
// case-insensitive, as IAM's are.
func foldContext(ctx map[string][]string) map[string][]string {
	out := make(map[string][]string, len(ctx))
	for k, v := range ctx {
		k = strings.ToLower(k)
		out[k] = append(out[k], v...)
	}
	return out
}
