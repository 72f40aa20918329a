package profiles

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Built-in identifier types.
const (
	IDUserID      = "user_id"
	IDEmail       = "email"
	IDPhone       = "phone"
	IDAnonymousID = "anonymous_id"
	IDDeviceID    = "device_id"
)

// IdentifierRule configures one identifier type.
type IdentifierRule struct {
	Type string `json:"type"`
	// Priority orders types: 1 is the highest. When a merge would break a
	// limit, the event's lowest-priority identifier is dropped.
	Priority int `json:"priority"`
	// Limit is the most values of the type one profile may hold.
	Limit int `json:"limit"`
	// Blocked values are ignored: exact strings, or regular expressions
	// written between slashes ("/^test-/").
	Blocked []string `json:"blocked,omitempty"`
}

// IdentityConfig is a tenant's identity resolution configuration.
type IdentityConfig struct {
	Identifiers []IdentifierRule `json:"identifiers"`
}

// DefaultIdentityConfig is used until a tenant sets its own.
func DefaultIdentityConfig() IdentityConfig {
	return IdentityConfig{Identifiers: []IdentifierRule{
		{Type: IDUserID, Priority: 1, Limit: 1},
		{Type: IDEmail, Priority: 2, Limit: 5},
		{Type: IDPhone, Priority: 3, Limit: 5},
		{Type: IDDeviceID, Priority: 4, Limit: 5},
		{Type: IDAnonymousID, Priority: 5, Limit: 5},
	}}
}

var typePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// compiledConfig is an IdentityConfig ready to apply.
type compiledConfig struct {
	rules   map[string]IdentifierRule
	blocked map[string][]func(string) bool
}

// Validate checks the configuration and compiles it.
func (c IdentityConfig) compile() (compiledConfig, error) {
	cc := compiledConfig{rules: map[string]IdentifierRule{}, blocked: map[string][]func(string) bool{}}
	if len(c.Identifiers) == 0 || len(c.Identifiers) > 50 {
		return cc, &ValidationError{Field: "identifiers", Reason: "between 1 and 50 identifier types"}
	}
	for i, r := range c.Identifiers {
		field := fmt.Sprintf("identifiers/%d", i)
		if !typePattern.MatchString(r.Type) {
			return cc, &ValidationError{Field: field + "/type", Reason: "lowercase letters, digits and '_', starting with a letter"}
		}
		if _, dup := cc.rules[r.Type]; dup {
			return cc, &ValidationError{Field: field + "/type", Reason: "type " + r.Type + " listed twice"}
		}
		if r.Priority < 1 || r.Limit < 1 || r.Limit > 100 {
			return cc, &ValidationError{Field: field, Reason: "priority must be at least 1 and limit between 1 and 100"}
		}
		for _, b := range r.Blocked {
			if len(b) > 2 && strings.HasPrefix(b, "/") && strings.HasSuffix(b, "/") {
				re, err := regexp.Compile(b[1 : len(b)-1])
				if err != nil {
					return cc, &ValidationError{Field: field + "/blocked", Reason: fmt.Sprintf("bad regular expression %q", b)}
				}
				cc.blocked[r.Type] = append(cc.blocked[r.Type], re.MatchString)
				continue
			}
			exact := b
			cc.blocked[r.Type] = append(cc.blocked[r.Type], func(v string) bool { return v == exact })
		}
		cc.rules[r.Type] = r
	}
	return cc, nil
}

// rule returns the rule of a type; unconfigured custom types (from
// context.externalIds) rank below every configured type with a limit of 5.
func (cc compiledConfig) rule(typ string) IdentifierRule {
	if r, ok := cc.rules[typ]; ok {
		return r
	}
	return IdentifierRule{Type: typ, Priority: 1000, Limit: 5}
}

func (cc compiledConfig) isBlocked(typ, value string) bool {
	for _, f := range cc.blocked[typ] {
		if f(value) {
			return true
		}
	}
	return false
}

// Identifier is one identity of a customer.
type Identifier struct {
	Type  string
	Value string
}

func (id Identifier) String() string { return id.Type + ":" + id.Value }

func traitString(m map[string]any, key string) string {
	if s, ok := m[key].(string); ok {
		return strings.TrimSpace(s)
	}
	return ""
}

// identifiers extracts an event's identifiers, without blocked values and
// duplicates, highest priority first.
func (cc compiledConfig) identifiers(ev Event) []Identifier {
	var ids []Identifier
	add := func(typ, value string) {
		if value == "" || len(value) > 1024 || cc.isBlocked(typ, value) {
			return
		}
		if typ == IDEmail {
			value = strings.ToLower(value)
		}
		id := Identifier{Type: typ, Value: value}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	add(IDUserID, ev.UserID)
	add(IDAnonymousID, ev.AnonymousID)
	if ev.Type == "alias" {
		// previousId is a user ID or an anonymous ID: resolution keeps
		// the one that identifies a profile (see previousOnly).
		add(IDUserID, ev.PreviousID)
		add(IDAnonymousID, ev.PreviousID)
	}
	add(IDEmail, traitString(ev.Traits, "email"))
	add(IDPhone, traitString(ev.Traits, "phone"))
	if dev, ok := ev.Context["device"].(map[string]any); ok {
		add(IDDeviceID, traitString(dev, "id"))
	}
	if ext, ok := ev.Context["externalIds"].([]any); ok {
		for _, x := range ext {
			m, ok := x.(map[string]any)
			if !ok {
				continue
			}
			typ := strings.ToLower(traitString(m, "type"))
			if typePattern.MatchString(typ) {
				add(typ, traitString(m, "id"))
			}
		}
	}
	slices.SortStableFunc(ids, func(a, b Identifier) int { return cc.rule(a.Type).Priority - cc.rule(b.Type).Priority })
	return ids
}

// previousOnly returns those of an alias's identifiers ids that stand for
// its previousId alone: a user_id and an anonymous_id of the same value,
// of which resolution keeps the ones that identify a profile, or the
// anonymous_id when none does (a visitor never seen).
func previousOnly(ev Event, ids []Identifier) []Identifier {
	if ev.Type != "alias" || ev.PreviousID == "" {
		return nil
	}
	var out []Identifier
	for _, id := range ids {
		switch {
		case id.Type == IDUserID && id.Value == ev.PreviousID && ev.PreviousID != ev.UserID,
			id.Type == IDAnonymousID && id.Value == ev.PreviousID && ev.PreviousID != ev.AnonymousID:
			out = append(out, id)
		}
	}
	return out
}

// ValidationError names a bad field of a request.
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Reason }
