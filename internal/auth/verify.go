package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// maxTokenSize bounds the work an unauthenticated caller can cause; real
// tokens, Cognito's included, are a few kilobytes.
const maxTokenSize = 16 << 10

// Principal is who a verified token speaks for.
type Principal struct {
	// Subject is the token's sub: "admin" or "tenant:<id>" for Cairn's own
	// tokens, the user or client ID for external ones.
	Subject string
	// TenantID is empty for the admin.
	TenantID string
	Scopes   []string
	// Issuer is the token's iss.
	Issuer string
}

// IsAdmin reports whether p is the ISV admin: scope "admin" and no tenant.
func (p Principal) IsAdmin() bool { return p.TenantID == "" && p.HasScope(ScopeAdmin) }

// HasScope reports whether p holds scope s.
func (p Principal) HasScope(s string) bool { return slices.Contains(p.Scopes, s) }

// Verify checks token (without the "Bearer " prefix) against the issuer its
// iss names and returns the principal it speaks for. Every error matches
// ErrUnauthenticated and is a *TokenError. ctx bounds a JWKS refresh that an
// unknown external kid may trigger.
//
// A token accepted once is accepted again without its signature checked,
// for at most verifiedTTL and never past its exp (see verifiedTokens).
func (a *Authority) Verify(ctx context.Context, token string) (Principal, error) {
	if token == "" {
		return Principal{}, unauthenticated("missing token")
	}
	if len(token) > maxTokenSize {
		return Principal{}, unauthenticated("token too large")
	}
	now := a.now()
	sum := sha256.Sum256([]byte(token))
	if p, ok := a.verified.get(sum, now); ok {
		return p, nil
	}
	p, exp, err := a.verify(ctx, token)
	if err != nil {
		return Principal{}, err
	}
	if !exp.IsZero() {
		until := now.Add(verifiedTTL)
		if exp.Before(until) {
			until = exp
		}
		a.verified.put(sum, p, now, until)
	}
	return p, nil
}

// verify checks a token's signature and claims, and returns its exp.
func (a *Authority) verify(ctx context.Context, token string) (Principal, time.Time, error) {
	fail := func(err error) (Principal, time.Time, error) { return Principal{}, time.Time{}, err }

	// The unverified iss only chooses which issuer's rules apply; the
	// parser below then requires that same iss under the signature.
	unverified, _, err := jwt.NewParser().ParseUnverified(token, jwt.MapClaims{})
	if err != nil {
		if errors.Is(err, jwt.ErrTokenMalformed) {
			return fail(unauthenticated("malformed token"))
		}
		return fail(unauthenticated("unsupported algorithm"))
	}
	iss, _ := unverified.Claims.(jwt.MapClaims)["iss"].(string)
	if iss == "" {
		return fail(unauthenticated("missing issuer"))
	}
	t, ok := a.trusted[iss]
	if !ok {
		return fail(unauthenticated("unknown issuer"))
	}
	if err := t.checkHeader(unverified.Header); err != nil {
		return fail(err)
	}

	claims := jwt.MapClaims{}
	if _, err := t.parser.ParseWithClaims(token, claims, t.keys(ctx)); err != nil {
		return fail(parseError(err, claims, t.audienceClaim))
	}
	if t.audienceClaim != "aud" {
		if err := checkAudience(claims, t.audienceClaim, t.audience); err != nil {
			return fail(err)
		}
	}
	p, err := t.principal(iss, claims)
	if err != nil {
		return fail(err)
	}
	var exp time.Time
	if e, err := claims.GetExpirationTime(); err == nil && e != nil {
		exp = e.Time
	}
	if err := a.checkLifetime(p, claims, exp); err != nil {
		return fail(err)
	}
	return p, exp, nil
}

// checkLifetime refuses a token that lives longer than the maximum of its
// kind: exp minus iat, or minus nbf without iat, or minus now without
// either (what is left of it is then all that is known). A leaked token
// is bounded however its issuer was configured.
func (a *Authority) checkLifetime(p Principal, claims jwt.MapClaims, exp time.Time) error {
	limit := a.maxTenant
	if p.IsAdmin() {
		limit = a.maxAdmin
	}
	start := a.now()
	if iat, err := claims.GetIssuedAt(); err == nil && iat != nil {
		start = iat.Time
	} else if nbf, err := claims.GetNotBefore(); err == nil && nbf != nil {
		start = nbf.Time
	}
	if exp.Sub(start) > limit {
		return unauthenticated("token lifetime exceeds the maximum of " + shortDuration(limit))
	}
	return nil
}

// shortDuration writes 24h rather than 24h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// verifiedTTL bounds how long an accepted token is accepted again without
// its signature checked: a key taken out of an issuer's JWKS stops
// working within it.
const verifiedTTL = time.Minute

// maxVerified bounds the tokens remembered; past it they are forgotten
// all at once.
const maxVerified = 10_000

// verifiedTokens remembers accepted tokens by their SHA-256, so that a
// client's repeated calls cost a hash rather than a signature check.
type verifiedTokens struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]verifiedToken
}

type verifiedToken struct {
	p           Principal
	from, until time.Time
}

// get returns the principal of a token accepted at or before now whose
// entry lasts past now.
func (v *verifiedTokens) get(sum [sha256.Size]byte, now time.Time) (Principal, bool) {
	v.mu.Lock()
	e, ok := v.m[sum]
	v.mu.Unlock()
	if !ok || now.Before(e.from) || !now.Before(e.until) {
		return Principal{}, false
	}
	p := e.p
	p.Scopes = slices.Clone(p.Scopes)
	return p, true
}

func (v *verifiedTokens) put(sum [sha256.Size]byte, p Principal, from, until time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m == nil || len(v.m) >= maxVerified {
		v.m = make(map[[sha256.Size]byte]verifiedToken)
	}
	p.Scopes = slices.Clone(p.Scopes)
	v.m[sum] = verifiedToken{p: p, from: from, until: until}
}

// checkHeader enforces what the parser does not: typ, crit and a present kid.
// It also checks alg so the client is told why, although the parser would
// refuse the alg as well.
func (t *trustedIssuer) checkHeader(h map[string]any) error {
	if typ, ok := h["typ"]; ok {
		s, _ := typ.(string)
		s = strings.TrimPrefix(strings.ToLower(s), "application/")
		if s != "jwt" && s != "at+jwt" {
			return unauthenticated("unsupported token type")
		}
	}
	// No header extension is understood, so RFC 7515 requires refusing any
	// token that marks one critical.
	if _, ok := h["crit"]; ok {
		return unauthenticated("unsupported critical header")
	}
	if alg, _ := h["alg"].(string); !slices.Contains(t.algs, alg) {
		return unauthenticated("unsupported algorithm")
	}
	// Without a kid keyfunc would try every key of the set.
	if kid, _ := h["kid"].(string); kid == "" {
		return unauthenticated("missing key id")
	}
	return nil
}

// parseError turns a jwt parse error into a client-safe TokenError. When a
// token has several faults the first matching case names it.
func parseError(err error, claims jwt.MapClaims, audienceClaim string) error {
	var te *TokenError
	reason := "invalid token"
	switch {
	case errors.As(err, &te):
		return te
	case errors.Is(err, jwt.ErrTokenMalformed):
		reason = "malformed token"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		reason = "invalid signature"
	case errors.Is(err, jwt.ErrInvalidType):
		reason = "malformed claims"
	case errors.Is(err, jwt.ErrTokenExpired):
		reason = "token expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		reason = "token not yet valid"
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		reason = "token issued in the future"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		reason = "issuer mismatch"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		reason = "audience mismatch"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		reason = "missing required claim"
		for _, name := range []string{"exp", audienceClaim} {
			if _, ok := claims[name]; !ok {
				reason = "missing " + name + " claim"
				break
			}
		}
	}
	return unauthenticated(reason)
}

// checkAudience checks an audience carried in a claim other than aud.
func checkAudience(claims jwt.MapClaims, name, want string) error {
	v, ok := claims[name]
	if !ok {
		return unauthenticated("missing " + name + " claim")
	}
	values, ok := stringList(v)
	if !ok {
		return unauthenticated("malformed claims")
	}
	if !slices.Contains(values, want) {
		return unauthenticated("audience mismatch")
	}
	return nil
}

// principal maps verified claims to a Principal, refusing tokens that are
// neither exactly an admin nor exactly a tenant.
func (t *trustedIssuer) principal(iss string, claims jwt.MapClaims) (Principal, error) {
	sub, _ := claims["sub"].(string)
	if sub == "" {
		return Principal{}, unauthenticated("missing subject")
	}
	var tenantID string
	if v, ok := claims[t.tenantClaim]; ok {
		if tenantID, ok = v.(string); !ok {
			return Principal{}, unauthenticated("invalid tenant claim")
		}
	}
	scopes, ok := t.scopes(claims[t.scopeClaim])
	if !ok {
		return Principal{}, unauthenticated("invalid scope claim")
	}
	p := Principal{Subject: sub, TenantID: tenantID, Scopes: scopes, Issuer: iss}
	admin := slices.Contains(scopes, ScopeAdmin)
	switch {
	case tenantID != "" && admin:
		// IsAdmin would say no, but a handler testing HasScope("admin")
		// would say yes: refuse rather than guess.
		return Principal{}, unauthenticated("token is both tenant and admin")
	case tenantID == "" && !admin:
		return Principal{}, unauthenticated("token grants neither tenant nor admin access")
	}
	return p, nil
}

// scopes reads a scope claim: absent, a space-separated string, or an array
// of strings. With a scope prefix, only prefixed scopes are kept, unprefixed.
func (t *trustedIssuer) scopes(v any) ([]string, bool) {
	var scopes []string
	switch v := v.(type) {
	case nil:
		return nil, true
	case string:
		scopes = strings.Fields(v)
	default:
		var ok bool
		if scopes, ok = stringList(v); !ok {
			return nil, false
		}
	}
	if t.scopePrefix == "" {
		return scopes, true
	}
	kept := scopes[:0]
	for _, s := range scopes {
		if rest, ok := strings.CutPrefix(s, t.scopePrefix); ok {
			kept = append(kept, rest)
		}
	}
	return kept, true
}

// stringList reads a claim that is a string or an array of strings.
func stringList(v any) ([]string, bool) {
	switch v := v.(type) {
	case string:
		return []string{v}, true
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	return nil, false
}
