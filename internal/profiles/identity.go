package profiles

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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

// Bounds of the blocked values of an identity configuration. A value is
// checked against every blocked expression of its type, in time that grows
// with the expressions' compiled size, on every event: the bounds keep that
// cost, and the memory of a compiled configuration, small whatever a
// tenant sets.
const (
	// MaxBlockedPerType is the most blocked values of one identifier type.
	MaxBlockedPerType = 100
	// MaxBlocked is the most blocked values of a configuration.
	MaxBlocked = 500
	// MaxBlockedLen is the longest blocked value, in bytes.
	MaxBlockedLen = 500
	// MaxPatternInsts is the most instructions one blocked regular
	// expression may compile to (regexp/syntax), and MaxConfigInsts the
	// most all of a configuration's may, together.
	MaxPatternInsts = 500
	MaxConfigInsts  = 2000
)

// compiledConfig is an IdentityConfig ready to apply. It is read-only once
// made, so safe for concurrent use.
type compiledConfig struct {
	rules   map[string]IdentifierRule
	blocked map[string]blockList
}

// blockList is the blocked values of one type.
type blockList struct {
	exact    map[string]bool
	patterns []*regexp.Regexp
}

// compile validates the configuration and compiles it. Its errors are
// *ValidationError naming the field of the request body at fault
// ("identifiers/1/blocked/3").
func (c IdentityConfig) compile() (compiledConfig, error) {
	cc := compiledConfig{rules: map[string]IdentifierRule{}, blocked: map[string]blockList{}}
	if len(c.Identifiers) == 0 || len(c.Identifiers) > 50 {
		return cc, &ValidationError{Field: "identifiers", Reason: "between 1 and 50 identifier types"}
	}
	blocked, insts := 0, 0
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
		if len(r.Blocked) > MaxBlockedPerType {
			return cc, &ValidationError{Field: field + "/blocked", Reason: fmt.Sprintf("at most %d blocked values a type", MaxBlockedPerType)}
		}
		if blocked += len(r.Blocked); blocked > MaxBlocked {
			return cc, &ValidationError{Field: field + "/blocked", Reason: fmt.Sprintf("at most %d blocked values in all types together", MaxBlocked)}
		}
		var bl blockList
		for j, b := range r.Blocked {
			bfield := fmt.Sprintf("%s/blocked/%d", field, j)
			if b == "" || len(b) > MaxBlockedLen {
				return cc, &ValidationError{Field: bfield, Reason: fmt.Sprintf("between 1 and %d bytes", MaxBlockedLen)}
			}
			if len(b) > 2 && strings.HasPrefix(b, "/") && strings.HasSuffix(b, "/") {
				re, n, err := compilePattern(b[1 : len(b)-1])
				if err != nil {
					return cc, &ValidationError{Field: bfield, Reason: fmt.Sprintf("regular expression %q: %v", b, err)}
				}
				if insts += n; insts > MaxConfigInsts {
					return cc, &ValidationError{Field: bfield, Reason: fmt.Sprintf("the blocked regular expressions compile to more than %d instructions together", MaxConfigInsts)}
				}
				bl.patterns = append(bl.patterns, re)
				continue
			}
			if bl.exact == nil {
				bl.exact = map[string]bool{}
			}
			bl.exact[b] = true
		}
		if bl.exact != nil || bl.patterns != nil {
			cc.blocked[r.Type] = bl
		}
		cc.rules[r.Type] = r
	}
	return cc, nil
}

// compilePattern compiles a blocked regular expression and returns its
// size in instructions, refusing one larger than MaxPatternInsts. The size
// is estimated on the parsed expression first, so a short expression that
// would expand to a huge program (".{1,1000}" repeated) is refused before
// anything big is built.
func compilePattern(expr string) (*regexp.Regexp, int, error) {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil, 0, err
	}
	if patternSize(re) > MaxPatternInsts {
		return nil, 0, fmt.Errorf("compiles to more than %d instructions", MaxPatternInsts)
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return nil, 0, err
	}
	if len(prog.Inst) > MaxPatternInsts {
		return nil, 0, fmt.Errorf("compiles to more than %d instructions", MaxPatternInsts)
	}
	compiled, err := regexp.Compile(expr)
	return compiled, len(prog.Inst), err
}

// patternSize estimates the instructions re compiles to, without
// expanding it, saturating beyond MaxPatternInsts: a counted repetition
// compiles its operand once a count.
func patternSize(re *syntax.Regexp) int {
	const over = MaxPatternInsts + 1
	subs := 0
	for _, sub := range re.Sub {
		subs += patternSize(sub)
		if subs >= over {
			return over
		}
	}
	n := 0
	switch re.Op {
	case syntax.OpLiteral:
		n = len(re.Rune)
	case syntax.OpRepeat:
		// Each copy beyond Min is optional: one more instruction.
		count := re.Max
		if count < 0 { // {n,}: n copies and a star
			count = re.Min + 1
		}
		count = max(count, 1)
		if count > over/max(subs, 1) {
			return over
		}
		n = subs*count + count - re.Min
	case syntax.OpCapture:
		n = subs + 2
	default:
		n = subs + len(re.Sub) + 1
	}
	return min(n, over)
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
	bl, ok := cc.blocked[typ]
	if !ok {
		return false
	}
	if bl.exact[value] {
		return true
	}
	for _, re := range bl.patterns {
		if re.MatchString(value) {
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

// configCache keeps each tenant's compiled identity configuration, so that
// a configuration is compiled once per stored version, not on every batch.
// An entry is the stored item's version and content with what compiling it
// gave; an entry whose item changed is compiled again. It holds at most
// maxCachedConfigs tenants. It is safe for concurrent use.
type configCache struct {
	mu       sync.Mutex
	byTenant map[string]cachedConfig
	// compiles counts the configurations compiled (tests).
	compiles atomic.Int64
}

// maxCachedConfigs bounds the tenants whose configuration a replica keeps
// compiled; beyond it, one entry is forgotten for each new one.
const maxCachedConfigs = 10000

type cachedConfig struct {
	version int64
	data    []byte
	cc      compiledConfig
	err     error
}

// defaultCompiled is DefaultIdentityConfig compiled, for tenants that set
// none.
var defaultCompiled = sync.OnceValue(func() compiledConfig {
	cc, err := DefaultIdentityConfig().compile()
	if err != nil {
		panic(err)
	}
	return cc
})

// compiledConfig returns the tenant's identity configuration compiled: the
// default until the tenant sets one. It reads the stored configuration
// (one Get) and compiles it only if it changed since the last call.
func (s *Service) compiledConfig(ctx context.Context, tenant string) (compiledConfig, error) {
	it, ok, err := s.store.Get(ctx, configKey(tenant))
	if err != nil {
		return compiledConfig{}, err
	}
	if !ok {
		return defaultCompiled(), nil
	}
	c := &s.configs
	c.mu.Lock()
	e, hit := c.byTenant[tenant]
	c.mu.Unlock()
	if hit && e.version == it.Version && bytes.Equal(e.data, it.Data) {
		return e.cc, e.err
	}
	e = cachedConfig{version: it.Version, data: it.Data}
	var cfg IdentityConfig
	if err := json.Unmarshal(it.Data, &cfg); err != nil {
		e.err = fmt.Errorf("identity config: %w", err)
	} else if e.cc, err = cfg.compile(); err != nil {
		e.err = fmt.Errorf("identity config: %w", err)
	}
	c.compiles.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byTenant == nil {
		c.byTenant = map[string]cachedConfig{}
	}
	if _, ok := c.byTenant[tenant]; !ok && len(c.byTenant) >= maxCachedConfigs {
		for k := range c.byTenant {
			delete(c.byTenant, k)
			break
		}
	}
	c.byTenant[tenant] = e
	return e.cc, e.err
}
