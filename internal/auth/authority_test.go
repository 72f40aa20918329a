package auth_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/auth"
	"github.com/golang-jwt/jwt/v5"
)

func TestMintVerifyRoundTrip(t *testing.T) {
	clk := &clock{now: t0}
	a := newAuthority(t, newKey(t), auth.Config{Now: clk.Now})

	t.Run("admin", func(t *testing.T) {
		tok, exp, err := a.MintAdmin(0)
		if err != nil {
			t.Fatal(err)
		}
		if !exp.Equal(t0.Add(auth.DefaultTTL)) {
			t.Errorf("expiry = %v, want %v", exp, t0.Add(auth.DefaultTTL))
		}
		p, err := a.Verify(t.Context(), tok)
		if err != nil {
			t.Fatal(err)
		}
		want := auth.Principal{Subject: "admin", Scopes: []string{"admin"}, Issuer: "cairn"}
		if !equalPrincipal(p, want) || !p.IsAdmin() {
			t.Errorf("principal = %+v (admin %v), want admin %+v", p, p.IsAdmin(), want)
		}
	})

	t.Run("tenant", func(t *testing.T) {
		tok, exp, err := a.MintTenant("ten_1", []string{"segments:write", "profiles:read", "profiles:read"}, 2*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if !exp.Equal(t0.Add(2 * time.Hour)) {
			t.Errorf("expiry = %v, want %v", exp, t0.Add(2*time.Hour))
		}
		p, err := a.Verify(t.Context(), tok)
		if err != nil {
			t.Fatal(err)
		}
		want := auth.Principal{Subject: "tenant:ten_1", TenantID: "ten_1", Scopes: []string{"profiles:read", "segments:write"}, Issuer: "cairn"}
		if !equalPrincipal(p, want) {
			t.Errorf("principal = %+v, want %+v", p, want)
		}
		if p.IsAdmin() || !p.HasScope("segments:write") || p.HasScope("profiles:write") {
			t.Errorf("IsAdmin/HasScope wrong for %+v", p)
		}
	})

	t.Run("registered claims", func(t *testing.T) {
		tok, _, err := a.MintTenant("ten_1", []string{"profiles:read"}, 0)
		if err != nil {
			t.Fatal(err)
		}
		header, claims := decode(t, tok)
		if header["alg"] != "EdDSA" || header["typ"] != "JWT" || header["kid"] == "" {
			t.Errorf("header = %v", header)
		}
		unix := float64(t0.Unix())
		want := map[string]any{
			"iss": "cairn", "aud": []any{"cairn-api"}, "sub": "tenant:ten_1", "tenant_id": "ten_1",
			"scope": "profiles:read", "iat": unix, "nbf": unix, "exp": unix + 3600,
		}
		for k, v := range want {
			if got, _ := json.Marshal(claims[k]); string(got) != mustJSON(t, v) {
				t.Errorf("claim %s = %s, want %s", k, got, mustJSON(t, v))
			}
		}
		other, _, _ := a.MintTenant("ten_1", []string{"profiles:read"}, 0)
		_, otherClaims := decode(t, other)
		if jti, _ := claims["jti"].(string); len(jti) < 20 || jti == otherClaims["jti"] {
			t.Errorf("jti %q is not random (other %q)", jti, otherClaims["jti"])
		}
	})
}

func TestMintErrors(t *testing.T) {
	a := newAuthority(t, newKey(t), auth.Config{})
	tenant := func(id string, scopes []string, ttl time.Duration) func() error {
		return func() error {
			_, _, err := a.MintTenant(id, scopes, ttl)
			return err
		}
	}
	admin := func(ttl time.Duration) func() error {
		return func() error {
			_, _, err := a.MintAdmin(ttl)
			return err
		}
	}
	read := []string{"profiles:read"}
	tests := []struct {
		name string
		mint func() error
		want error // nil: success
	}{
		{"every tenant scope", tenant("ten_1", []string{"profiles:read", "profiles:write", "segments:read", "segments:write", "grants:write", "events:write"}, 0), nil},
		{"tenant ttl at 24h", tenant("ten_1", read, auth.MaxTenantTTL), nil},
		{"admin ttl at 24h", admin(auth.MaxAdminTTL), nil},
		{"unknown scope", tenant("ten_1", []string{"profiles:read", "profiles:delete"}, 0), auth.ErrInvalidScope},
		{"admin scope for tenant", tenant("ten_1", []string{"admin"}, 0), auth.ErrInvalidScope},
		{"no scopes", tenant("ten_1", nil, 0), auth.ErrInvalidScope},
		{"tenant ttl above 24h", tenant("ten_1", read, auth.MaxTenantTTL+time.Second), auth.ErrInvalidTTL},
		{"negative tenant ttl", tenant("ten_1", read, -time.Second), auth.ErrInvalidTTL},
		{"admin ttl above 24h", admin(auth.MaxAdminTTL + time.Second), auth.ErrInvalidTTL},
		{"negative admin ttl", admin(-time.Second), auth.ErrInvalidTTL},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.mint(); !errors.Is(err, tc.want) {
				t.Fatalf("error = %v, want %v", err, tc.want)
			}
		})
	}
	for _, id := range []string{"", "ten 1", "ten_1\n"} {
		err := tenant(id, read, 0)()
		if err == nil || errors.Is(err, auth.ErrInvalidScope) || errors.Is(err, auth.ErrInvalidTTL) {
			t.Errorf("MintTenant(%q) error = %v, want a plain error", id, err)
		}
	}
}

func TestVerifyRejects(t *testing.T) {
	key, other := newKey(t), newKey(t)
	kid := kidOf(t, pubOf(key))
	a := newAuthority(t, key, auth.Config{Now: (&clock{now: t0}).Now})

	// header and claims return a valid tenant token's parts; each case
	// breaks exactly one thing.
	header := func() map[string]any { return map[string]any{"typ": "JWT", "kid": kid} }
	claims := func() jwt.MapClaims {
		return jwt.MapClaims{
			"iss": "cairn", "aud": "cairn-api", "sub": "tenant:ten_1", "tenant_id": "ten_1",
			"scope": "profiles:read", "iat": t0.Unix(), "nbf": t0.Unix(), "exp": t0.Add(time.Hour).Unix(),
		}
	}
	ed := func(h map[string]any, c jwt.MapClaims) string { return sign(t, jwt.SigningMethodEdDSA, key, h, c) }
	withClaim := func(name string, v any) string {
		c := claims()
		if v == nil {
			delete(c, name)
		} else {
			c[name] = v
		}
		return ed(header(), c)
	}
	withHeader := func(name string, v any) string {
		h := header()
		if v == nil {
			delete(h, name)
		} else {
			h[name] = v
		}
		return ed(h, claims())
	}

	minted, _, err := a.MintTenant("ten_1", []string{"profiles:read"}, 0)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		token  string
		reason string // empty: accepted
	}{
		{"valid control", ed(header(), claims()), ""},
		{"no typ", withHeader("typ", nil), ""},
		{"typ at+jwt", withHeader("typ", "application/at+jwt"), ""},
		{"aud array", withClaim("aud", []string{"other", "cairn-api"}), ""},
		{"scope array", withClaim("scope", []string{"profiles:read"}), ""},
		{"no iat or nbf", ed(header(), jwt.MapClaims{"iss": "cairn", "aud": "cairn-api", "sub": "admin", "scope": "admin", "exp": t0.Add(time.Minute).Unix()}), ""},

		{"empty", "", "missing token"},
		{"garbage", "not.a.jwt", "malformed token"},
		{"too large", ed(header(), jwt.MapClaims{"iss": "cairn", "pad": strings.Repeat("x", 20000)}), "token too large"},
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, header(), claims()), "unsupported algorithm"},
		{"HS256 keyed with the public key", sign(t, jwt.SigningMethodHS256, []byte(pubOf(key)), header(), claims()), "unsupported algorithm"},
		{"unknown alg", forgeHeader(t, ed(header(), claims()), map[string]any{"alg": "XS999", "kid": kid}), "unsupported algorithm"},
		{"typ other", withHeader("typ", "dpop+jwt"), "unsupported token type"},
		{"crit header", withHeader("crit", []string{"exp"}), "unsupported critical header"},
		{"missing kid", withHeader("kid", nil), "missing key id"},
		{"unknown kid", withHeader("kid", kidOf(t, pubOf(other))), "unknown key id"},
		{"other key, our kid", sign(t, jwt.SigningMethodEdDSA, other, header(), claims()), "invalid signature"},
		{"tampered tenant_id", tamper(t, minted, "tenant_id", "ten_2"), "invalid signature"},
		{"tampered scope", tamper(t, minted, "scope", "profiles:read profiles:write"), "invalid signature"},
		{"wrong iss", withClaim("iss", "evil"), "unknown issuer"},
		{"missing iss", withClaim("iss", nil), "missing issuer"},
		{"wrong aud", withClaim("aud", "other-api"), "audience mismatch"},
		{"missing aud", withClaim("aud", nil), "missing aud claim"},
		{"missing exp", withClaim("exp", nil), "missing exp claim"},
		{"exp not a number", withClaim("exp", "tomorrow"), "malformed claims"},
		{"expired", withClaim("exp", t0.Add(-time.Hour).Unix()), "token expired"},
		{"not yet valid", withClaim("nbf", t0.Add(time.Hour).Unix()), "token not yet valid"},
		{"issued in the future", withClaim("iat", t0.Add(time.Hour).Unix()), "token issued in the future"},
		{"missing sub", withClaim("sub", nil), "missing subject"},
		{"tenant claim not a string", withClaim("tenant_id", 7), "invalid tenant claim"},
		{"scope not strings", withClaim("scope", 7), "invalid scope claim"},
		{"neither tenant nor admin", withClaim("tenant_id", nil), "token grants neither tenant nor admin access"},
		{"tenant with admin scope", withClaim("scope", "admin profiles:read"), "token is both tenant and admin"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := a.Verify(t.Context(), tc.token)
			wantReason(t, err, tc.reason)
			if err != nil && tc.token != "" && strings.Contains(err.Error(), tc.token) {
				t.Errorf("error %q contains the token", err)
			}
		})
	}
}

// TestVerifyClock moves the clock around a token minted at t0 with a 1h TTL
// and the default 30s leeway.
func TestVerifyClock(t *testing.T) {
	clk := &clock{now: t0}
	a := newAuthority(t, newKey(t), auth.Config{Now: clk.Now})
	tok, _, err := a.MintAdmin(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		at     time.Time
		reason string
	}{
		{t0.Add(-29 * time.Second), ""},
		{t0.Add(-31 * time.Second), "token not yet valid"},
		{t0.Add(time.Hour + 29*time.Second), ""},
		{t0.Add(time.Hour + 30*time.Second), "token expired"},
		{t0.Add(48 * time.Hour), "token expired"},
	}
	for _, tc := range tests {
		t.Run(tc.at.Sub(t0).String(), func(t *testing.T) {
			clk.now = tc.at
			_, err := a.Verify(t.Context(), tok)
			wantReason(t, err, tc.reason)
		})
	}
}

func TestVerifyKeysForRotation(t *testing.T) {
	oldKey, newKeyPair := newKey(t), newKey(t)
	old := newAuthority(t, oldKey, auth.Config{})
	tok, _, err := old.MintTenant("ten_1", []string{"profiles:read"}, 0)
	if err != nil {
		t.Fatal(err)
	}

	rotated := newAuthority(t, newKeyPair, auth.Config{VerifyKeys: []ed25519.PublicKey{pubOf(oldKey), pubOf(newKeyPair)}})
	if _, err := rotated.Verify(t.Context(), tok); err != nil {
		t.Errorf("token of the previous key: %v", err)
	}
	if got, want := jwksKids(t, rotated.JWKS()), []string{kidOf(t, pubOf(newKeyPair)), kidOf(t, pubOf(oldKey))}; !slices.Equal(got, want) {
		t.Errorf("JWKS kids = %v, want %v (signing key first, duplicates dropped)", got, want)
	}

	forgotten := newAuthority(t, newKeyPair, auth.Config{})
	_, err = forgotten.Verify(t.Context(), tok)
	wantReason(t, err, "unknown key id")
}

func TestNewRejectsBadConfig(t *testing.T) {
	ext := func(f func(*auth.ExternalConfig)) *auth.ExternalConfig {
		e := &auth.ExternalConfig{Issuer: "https://idp.example", JWKSURL: "https://idp.example/jwks.json", Audience: "client"}
		f(e)
		return e
	}
	tests := []struct {
		name string
		key  ed25519.PrivateKey
		cfg  auth.Config
	}{
		{"no key", nil, auth.Config{}},
		{"short key", newKey(t)[:10], auth.Config{}},
		{"negative leeway", newKey(t), auth.Config{Leeway: -time.Second}},
		{"huge leeway", newKey(t), auth.Config{Leeway: time.Hour}},
		{"bad verify key", newKey(t), auth.Config{VerifyKeys: []ed25519.PublicKey{{1, 2, 3}}}},
		{"external without issuer", newKey(t), auth.Config{External: ext(func(e *auth.ExternalConfig) { e.Issuer = "" })}},
		{"external issuer is ours", newKey(t), auth.Config{External: ext(func(e *auth.ExternalConfig) { e.Issuer = "cairn" })}},
		{"external without audience", newKey(t), auth.Config{External: ext(func(e *auth.ExternalConfig) { e.Audience = "" })}},
		{"external without JWKS URL", newKey(t), auth.Config{External: ext(func(e *auth.ExternalConfig) { e.JWKSURL = "" })}},
		{"external JWKS over plain http", newKey(t), auth.Config{External: ext(func(e *auth.ExternalConfig) { e.JWKSURL = "http://idp.example/jwks.json" })}},
		{"external JWKS relative", newKey(t), auth.Config{External: ext(func(e *auth.ExternalConfig) { e.JWKSURL = "/jwks.json" })}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := auth.New(t.Context(), tc.key, tc.cfg); err == nil {
				t.Fatal("New succeeded, want error")
			}
		})
	}
}

func TestJWKS(t *testing.T) {
	key := newKey(t)
	a := newAuthority(t, key, auth.Config{})
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(a.JWKS(), &set); err != nil {
		t.Fatalf("JWKS is not JSON: %v", err)
	}
	if len(set.Keys) != 1 {
		t.Fatalf("JWKS has %d keys, want 1", len(set.Keys))
	}
	want := map[string]string{
		"kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA",
		"kid": kidOf(t, pubOf(key)), "x": b64(pubOf(key)),
	}
	for k, v := range want {
		if set.Keys[0][k] != v {
			t.Errorf("%s = %q, want %q", k, set.Keys[0][k], v)
		}
	}
	if _, ok := set.Keys[0]["d"]; ok {
		t.Error("JWKS leaks the private key")
	}

	tok, _, err := a.MintAdmin(0)
	if err != nil {
		t.Fatal(err)
	}
	if h, _ := decode(t, tok); h["kid"] != want["kid"] {
		t.Errorf("token kid = %v, want the JWKS kid %s", h["kid"], want["kid"])
	}
}

// TestJWKSThumbprintRFC8037 checks the kid against the worked example of
// RFC 8037 appendix A.3.
func TestJWKSThumbprintRFC8037(t *testing.T) {
	seed, err := base64.RawURLEncoding.DecodeString("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
	if err != nil {
		t.Fatal(err)
	}
	a := newAuthority(t, ed25519.NewKeyFromSeed(seed), auth.Config{})
	if got, want := jwksKids(t, a.JWKS()), []string{"kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"}; !slices.Equal(got, want) {
		t.Errorf("kids = %v, want %v", got, want)
	}
}

func jwksKids(t *testing.T, doc []byte) []string {
	t.Helper()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(doc, &set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}

func equalPrincipal(a, b auth.Principal) bool {
	return a.Subject == b.Subject && a.TenantID == b.TenantID && a.Issuer == b.Issuer && slices.Equal(a.Scopes, b.Scopes)
}

// decode returns a token's header and claims without verifying it.
func decode(t *testing.T, token string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	for i, dst := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatal(err)
		}
	}
	return header, claims
}

// tamper sets one claim in a signed token and keeps the old signature.
func tamper(t *testing.T, token, claim string, value any) string {
	t.Helper()
	_, claims := decode(t, token)
	claims[claim] = value
	parts := strings.Split(token, ".")
	parts[1] = b64([]byte(mustJSON(t, claims)))
	return strings.Join(parts, ".")
}

// forgeHeader replaces a signed token's header and keeps the old signature.
func forgeHeader(t *testing.T, token string, header map[string]any) string {
	t.Helper()
	parts := strings.Split(token, ".")
	parts[0] = b64([]byte(mustJSON(t, header)))
	return strings.Join(parts, ".")
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestVerifyConcurrently(t *testing.T) {
	a := newAuthority(t, newKey(t), auth.Config{})
	tok, _, err := a.MintTenant("ten_1", []string{"profiles:read"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := a.Verify(t.Context(), tok); err != nil {
				t.Error(err)
			}
			if _, _, err := a.MintAdmin(0); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}

// An accepted token is remembered, but never past its exp, never before
// the time it was accepted, and its principal cannot be changed through
// an answer.
func TestVerifyRemembersWithinExpiry(t *testing.T) {
	clk := &clock{now: t0}
	a := newAuthority(t, newKey(t), auth.Config{Now: clk.Now})
	tok, _, err := a.MintTenant("ten_1", []string{"profiles:read"}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		at     time.Duration
		reason string
	}{
		{0, ""},
		{9 * time.Second, ""}, // remembered
		{-31 * time.Second, "token not yet valid"}, // before it was accepted: checked again
		{20 * time.Second, ""},                     // past exp, within the leeway: checked again
		{41 * time.Second, "token expired"},
		{5 * time.Second, ""},
	} {
		clk.now = t0.Add(tc.at)
		p, err := a.Verify(t.Context(), tok)
		wantReason(t, err, tc.reason)
		if err == nil {
			if p.TenantID != "ten_1" || !slices.Equal(p.Scopes, []string{"profiles:read"}) {
				t.Fatalf("at %s: principal %+v", tc.at, p)
			}
			p.Scopes[0] = "admin"
		}
	}
}

// TestVerifyRefusesLongLivedTokens: a token whose lifetime (exp minus iat,
// or nbf, or the time of verification when it has neither) exceeds the
// maximum of its kind is refused, naming why, however far it is from
// expiring. Defaults: 24h for tenant and admin tokens alike.
func TestVerifyRefusesLongLivedTokens(t *testing.T) {
	key := newKey(t)
	kid := kidOf(t, pubOf(key))
	clk := &clock{now: t0}
	tenant := func(iat, exp time.Duration) jwt.MapClaims {
		return jwt.MapClaims{"iss": "cairn", "aud": "cairn-api", "sub": "tenant:ten_1", "tenant_id": "ten_1",
			"scope": "profiles:read", "iat": t0.Add(iat).Unix(), "exp": t0.Add(exp).Unix()}
	}
	admin := func(iat, exp time.Duration) jwt.MapClaims {
		return jwt.MapClaims{"iss": "cairn", "aud": "cairn-api", "sub": "admin", "scope": "admin",
			"iat": t0.Add(iat).Unix(), "exp": t0.Add(exp).Unix()}
	}
	noIat := func(c jwt.MapClaims) jwt.MapClaims { delete(c, "iat"); return c }
	withNbf := func(c jwt.MapClaims, nbf time.Duration) jwt.MapClaims {
		c = noIat(c)
		c["nbf"] = t0.Add(nbf).Unix()
		return c
	}
	ed := func(c jwt.MapClaims) string {
		return sign(t, jwt.SigningMethodEdDSA, key, map[string]any{"typ": "JWT", "kid": kid}, c)
	}
	const day = 24 * time.Hour
	tests := []struct {
		name   string
		cfg    auth.Config
		claims jwt.MapClaims
		reason string
	}{
		{"tenant at 24h", auth.Config{}, tenant(0, day), ""},
		{"tenant over 24h", auth.Config{}, tenant(0, day+time.Second), "token lifetime exceeds the maximum of 24h"},
		{"tenant issued long ago, valid now", auth.Config{}, tenant(-day-time.Hour, time.Hour), "token lifetime exceeds the maximum of 24h"},
		{"admin at 24h", auth.Config{}, admin(0, day), ""},
		{"admin over 24h", auth.Config{}, admin(0, 30*day), "token lifetime exceeds the maximum of 24h"},
		{"no iat: nbf counts", auth.Config{}, withNbf(tenant(0, day+time.Hour), 0), "token lifetime exceeds the maximum of 24h"},
		{"neither: what is left counts", auth.Config{}, noIat(admin(0, day+time.Hour)), "token lifetime exceeds the maximum of 24h"},
		{"neither, within", auth.Config{}, noIat(admin(0, day)), ""},
		{"configured tenant maximum", auth.Config{MaxTenantLifetime: time.Hour}, tenant(0, 2*time.Hour), "token lifetime exceeds the maximum of 1h"},
		{"configured admin maximum", auth.Config{MaxAdminLifetime: 7 * day}, admin(0, 7*day), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Now = clk.Now
			_, err := newAuthority(t, key, cfg).Verify(t.Context(), ed(tc.claims))
			wantReason(t, err, tc.reason)
		})
	}

	// Minting holds to the same maximum.
	a := newAuthority(t, key, auth.Config{MaxTenantLifetime: time.Hour, MaxAdminLifetime: 2 * time.Hour})
	if _, _, err := a.MintTenant("ten_1", []string{"profiles:read"}, time.Hour+time.Second); !errors.Is(err, auth.ErrInvalidTTL) {
		t.Errorf("MintTenant above the configured maximum: %v", err)
	}
	if _, _, err := a.MintAdmin(2*time.Hour + time.Second); !errors.Is(err, auth.ErrInvalidTTL) {
		t.Errorf("MintAdmin above the configured maximum: %v", err)
	}
	if _, _, err := a.MintAdmin(2 * time.Hour); err != nil {
		t.Errorf("MintAdmin at the configured maximum: %v", err)
	}
	for _, bad := range []auth.Config{{MaxTenantLifetime: -time.Hour}, {MaxAdminLifetime: 31 * day}} {
		if _, err := auth.New(t.Context(), key, bad); err == nil {
			t.Errorf("New accepted %+v", bad)
		}
	}
}
