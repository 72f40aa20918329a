package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
)

// DefaultLeeway is the clock skew tolerated unless Config.Leeway says
// otherwise; DefaultKeyReload how often NewFromSource reloads keys unless
// Config.KeyReload says otherwise.
const (
	DefaultLeeway    = 30 * time.Second
	DefaultKeyReload = 30 * time.Second
)

const (
	defaultIssuer   = "cairn"
	defaultAudience = "cairn-api"
	defaultLeeway   = DefaultLeeway
	// maxLeeway keeps a misconfigured leeway from reviving expired tokens.
	maxLeeway = 5 * time.Minute
	// jwksTimeout bounds one fetch of the external JWKS, and so how long a
	// request with an unknown kid can wait for the refresh it triggers.
	jwksTimeout = 10 * time.Second
	// defaultKeyReload and defaultKeyRefetchGap are the KeySource's
	// periodic reload and the shortest gap between reloads that unknown
	// kids trigger.
	defaultKeyReload     = DefaultKeyReload
	defaultKeyRefetchGap = 5 * time.Second
)

// Config configures an Authority. The zero value is valid: Cairn tokens only,
// with the defaults below.
type Config struct {
	// Issuer is the iss of minted tokens and the iss by which Verify
	// recognises Cairn's own tokens. Default "cairn".
	Issuer string
	// Audience is the aud of minted tokens, required in Cairn's own tokens.
	// Default "cairn-api".
	Audience string
	// Leeway is the clock skew tolerated on exp, nbf and iat. Zero means
	// the default, 30s; at most 5m.
	Leeway time.Duration
	// MaxTenantLifetime is the longest lifetime (exp minus iat) of a
	// tenant token: MintTenant refuses a longer TTL and Verify refuses a
	// token that lives longer, whoever issued it. Zero means MaxTenantTTL
	// (24h); at most MaxLifetimeCeiling.
	MaxTenantLifetime time.Duration
	// MaxAdminLifetime is the same for admin tokens. Zero means
	// MaxAdminTTL (24h); at most MaxLifetimeCeiling.
	MaxAdminLifetime time.Duration
	// VerifyKeys are further public keys accepted on Cairn's own tokens and
	// published by JWKS, but never used to sign: typically the previous
	// signing key, kept until the tokens it signed have expired.
	VerifyKeys []ed25519.PublicKey
	// KeyReload is how often an Authority made by NewFromSource reloads
	// its keys. Default 30s.
	KeyReload time.Duration
	// KeyRefetchGap is the shortest time between two reloads that tokens
	// naming an unknown kid trigger (NewFromSource only), so that forged
	// kids cannot make every request a database read. Default 5s.
	KeyRefetchGap time.Duration
	// External, if not nil, trusts tokens from an external OIDC issuer too.
	External *ExternalConfig
	// Logger receives failures to refresh the external JWKS. Default
	// slog.Default().
	Logger *slog.Logger
	// Now is the clock used to mint and verify. Default time.Now.
	Now func() time.Time
}

// ExternalConfig trusts an external OIDC issuer such as an Amazon Cognito
// user pool.
type ExternalConfig struct {
	// Issuer is the exact iss of the issuer's tokens, for example
	// "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf".
	// Required, and different from Config.Issuer.
	Issuer string
	// JWKSURL serves the issuer's public keys. Required: https, or http to a
	// loopback host for tests and local development.
	JWKSURL string
	// Audience is the value AudienceClaim must hold. Required.
	Audience string
	// AudienceClaim names the claim checked against Audience: a string or an
	// array of strings. Default "aud". Cognito access tokens carry the app
	// client ID in "client_id" instead.
	AudienceClaim string
	// TenantClaim names the string claim holding the tenant ID, for example
	// "custom:tenant_id". Default "tenant_id". A token without it is an admin
	// if it has ScopeAdmin and is refused otherwise.
	TenantClaim string
	// ScopeClaim names the claim holding the scopes: a space-separated string
	// (as in Cognito's "scope") or an array of strings. Default "scope".
	ScopeClaim string
	// ScopePrefix, if set, is cut from scopes that start with it and scopes
	// without it are dropped. Cognito names resource-server scopes
	// "<identifier>/<scope>", so "cairn/" maps "cairn/profiles:read" to
	// "profiles:read".
	ScopePrefix string
}

// Authority mints Cairn's tokens and verifies Cairn's and the external
// issuer's. Create it with New; it is safe for concurrent use.
type Authority struct {
	// keys is Cairn's own key set; NewFromSource's reloads replace it.
	keys      atomic.Pointer[keySet]
	source    KeySource
	keyReload time.Duration
	refetch   refetchGate
	logger    *slog.Logger
	issuer    string
	audience  string
	now       func() time.Time
	// maxTenant and maxAdmin are the longest lifetimes of tenant and admin
	// tokens, minted or verified.
	maxTenant, maxAdmin time.Duration
	// trusted maps an iss to the only rules under which a token claiming
	// that iss can be accepted.
	trusted map[string]*trustedIssuer
	// verifyKeys are Config.VerifyKeys, added to every loaded set.
	verifyKeys []ed25519.PublicKey
	// verified remembers the tokens Verify accepted.
	verified verifiedTokens
}

// trustedIssuer holds everything Verify needs for one iss.
type trustedIssuer struct {
	algs   []string
	parser *jwt.Parser
	// keys returns the keyfunc for one Verify call; it returns *TokenError.
	keys func(ctx context.Context) jwt.Keyfunc
	// audienceClaim is checked by Verify when it is not "aud", which the
	// parser checks itself.
	audienceClaim string
	audience      string
	tenantClaim   string
	scopeClaim    string
	scopePrefix   string
}

// New validates cfg, fills in its defaults and returns an Authority signing
// with key. With cfg.External it fetches the external JWKS once (a failure is
// logged, not returned, so an unreachable identity provider does not stop
// Cairn starting; keys are fetched again on first use) and keeps it fresh in
// a goroutine that ends when ctx is done.
func New(ctx context.Context, key ed25519.PrivateKey, cfg Config) (*Authority, error) {
	a, err := newAuthority(ctx, cfg)
	if err != nil {
		return nil, err
	}
	ks, err := newKeySet(KeySet{Signing: key, Verify: cfg.VerifyKeys})
	if err != nil {
		return nil, err
	}
	a.keys.Store(ks)
	return a, nil
}

// NewFromSource is New with keys that may change while the server runs:
// it loads them from src now (an error is returned), again every
// cfg.KeyReload until ctx is done, and when a token names a kid the
// current set lacks (at most once per cfg.KeyRefetchGap). A failed reload
// is logged and the keys loaded last stay in use. cfg.VerifyKeys are
// added to every set src returns.
func NewFromSource(ctx context.Context, src KeySource, cfg Config) (*Authority, error) {
	if src == nil {
		return nil, errors.New("auth: nil key source")
	}
	a, err := newAuthority(ctx, cfg)
	if err != nil {
		return nil, err
	}
	a.source, a.verifyKeys = src, cfg.VerifyKeys
	if err := a.ReloadKeys(ctx); err != nil {
		return nil, err
	}
	go a.reloadEvery(ctx, a.keyReload)
	return a, nil
}

// KeySet is Cairn's own keys at one moment.
type KeySet struct {
	// Signing signs the tokens minted from now on, and verifies.
	Signing ed25519.PrivateKey
	// Verify are further keys that verify tokens but sign none: keys
	// replaced by a rotation, until the tokens they signed have expired.
	Verify []ed25519.PublicKey
}

// KeySource supplies Cairn's own keys to NewFromSource.
type KeySource interface {
	// SigningKeys returns the keys in force now.
	SigningKeys(ctx context.Context) (KeySet, error)
}

// keySet is a KeySet ready for use: kids computed, JWKS rendered.
type keySet struct {
	key  ed25519.PrivateKey
	kid  string
	own  map[string]ed25519.PublicKey
	jwks []byte
}

func newKeySet(ks KeySet) (*keySet, error) {
	if len(ks.Signing) != ed25519.PrivateKeySize {
		return nil, errors.New("auth: signing key is not an Ed25519 private key")
	}
	pub := ks.Signing.Public().(ed25519.PublicKey)
	own := map[string]ed25519.PublicKey{thumbprint(pub): pub}
	published := []ed25519.PublicKey{pub}
	for _, k := range ks.Verify {
		if len(k) != ed25519.PublicKeySize {
			return nil, errors.New("auth: verify key is not an Ed25519 public key")
		}
		if kid := thumbprint(k); own[kid] == nil {
			own[kid] = k
			published = append(published, k)
		}
	}
	jwks, err := marshalJWKS(published)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	return &keySet{key: ks.Signing, kid: thumbprint(pub), own: own, jwks: jwks}, nil
}

// ReloadKeys replaces the keys with those the KeySource returns now. An
// Authority made by New has no source: ReloadKeys does nothing.
func (a *Authority) ReloadKeys(ctx context.Context) error {
	if a.source == nil {
		return nil
	}
	ks, err := a.source.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("auth: load signing keys: %w", err)
	}
	ks.Verify = append(slices.Clone(ks.Verify), a.verifyKeys...)
	set, err := newKeySet(ks)
	if err != nil {
		return err
	}
	a.keys.Store(set)
	return nil
}

func (a *Authority) reloadEvery(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := a.ReloadKeys(ctx); err != nil && ctx.Err() == nil {
				a.logger.WarnContext(ctx, "auth: reloading signing keys failed; the keys loaded last stay in use", "error", err)
			}
		}
	}
}

// refetchGate lets one reload through per gap, for unknown kids.
type refetchGate struct {
	gap  time.Duration
	mu   sync.Mutex
	last time.Time
}

// lookupOwn returns Cairn's key named kid, reloading the keys once (if the
// gate allows) when the current set lacks it: another replica may have
// rotated since the last periodic reload.
func (a *Authority) lookupOwn(ctx context.Context, kid string) (ed25519.PublicKey, bool) {
	if k, ok := a.keys.Load().own[kid]; ok {
		return k, true
	}
	if a.source == nil {
		return nil, false
	}
	a.refetch.mu.Lock()
	defer a.refetch.mu.Unlock()
	// A reload that another request made while this one waited may have
	// brought the key.
	if k, ok := a.keys.Load().own[kid]; ok {
		return k, true
	}
	if !a.refetch.last.IsZero() && time.Since(a.refetch.last) < a.refetch.gap {
		return nil, false
	}
	a.refetch.last = time.Now()
	// Bounded like an external JWKS fetch: a request waits at most this.
	ctx, cancel := context.WithTimeout(ctx, jwksTimeout)
	defer cancel()
	if err := a.ReloadKeys(ctx); err != nil {
		a.logger.WarnContext(ctx, "auth: reloading signing keys for an unknown kid failed", "error", err)
		return nil, false
	}
	k, ok := a.keys.Load().own[kid]
	return k, ok
}

// newAuthority validates cfg and makes an Authority without keys.
func newAuthority(ctx context.Context, cfg Config) (*Authority, error) {
	if cfg.Issuer == "" {
		cfg.Issuer = defaultIssuer
	}
	if cfg.Audience == "" {
		cfg.Audience = defaultAudience
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = defaultLeeway
	}
	if cfg.Leeway < 0 || cfg.Leeway > maxLeeway {
		return nil, fmt.Errorf("auth: leeway %s is outside 0 to %s", cfg.Leeway, maxLeeway)
	}
	if cfg.MaxTenantLifetime == 0 {
		cfg.MaxTenantLifetime = MaxTenantTTL
	}
	if cfg.MaxAdminLifetime == 0 {
		cfg.MaxAdminLifetime = MaxAdminTTL
	}
	for _, d := range []time.Duration{cfg.MaxTenantLifetime, cfg.MaxAdminLifetime} {
		if d < time.Minute || d > MaxLifetimeCeiling {
			return nil, fmt.Errorf("auth: maximum token lifetime %s is outside 1m to %s", d, MaxLifetimeCeiling)
		}
	}
	if cfg.KeyReload == 0 {
		cfg.KeyReload = defaultKeyReload
	}
	if cfg.KeyRefetchGap == 0 {
		cfg.KeyRefetchGap = defaultKeyRefetchGap
	}
	if cfg.KeyReload < 0 || cfg.KeyRefetchGap < 0 {
		return nil, errors.New("auth: key reload intervals must be positive")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}

	a := &Authority{
		keyReload: cfg.KeyReload,
		refetch:   refetchGate{gap: cfg.KeyRefetchGap},
		logger:    cfg.Logger,
		issuer:    cfg.Issuer,
		audience:  cfg.Audience,
		now:       cfg.Now,
		trusted:   map[string]*trustedIssuer{},
		maxTenant: cfg.MaxTenantLifetime,
		maxAdmin:  cfg.MaxAdminLifetime,
	}
	ownAlgs := []string{jwt.SigningMethodEdDSA.Alg()}
	a.trusted[cfg.Issuer] = &trustedIssuer{
		algs:          ownAlgs,
		parser:        newParser(cfg, cfg.Issuer, ownAlgs, cfg.Audience),
		keys:          a.ownKeys,
		audienceClaim: "aud",
		audience:      cfg.Audience,
		tenantClaim:   "tenant_id",
		scopeClaim:    "scope",
	}

	if ext := cfg.External; ext != nil {
		t, err := newExternal(ctx, cfg, *ext)
		if err != nil {
			return nil, err
		}
		a.trusted[ext.Issuer] = t
	}
	return a, nil
}

// newParser returns a parser that checks alg, iss, exp, nbf, iat and, unless
// aud is empty (the audience is then in another claim), aud.
func newParser(cfg Config, iss string, algs []string, aud string) *jwt.Parser {
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(algs),
		jwt.WithIssuer(iss),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(cfg.Now),
	}
	if aud != "" {
		opts = append(opts, jwt.WithAudience(aud))
	}
	return jwt.NewParser(opts...)
}

// ownKeys looks kid up among Cairn's own keys only.
func (a *Authority) ownKeys(ctx context.Context) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		key, ok := a.lookupOwn(ctx, kid)
		if !ok {
			return nil, unauthenticated("unknown key id")
		}
		return key, nil
	}
}

func newExternal(ctx context.Context, cfg Config, ext ExternalConfig) (*trustedIssuer, error) {
	switch {
	case ext.Issuer == "":
		return nil, errors.New("auth: external issuer is required")
	case ext.Issuer == cfg.Issuer:
		return nil, fmt.Errorf("auth: external issuer must differ from Cairn's issuer %q", cfg.Issuer)
	case ext.Audience == "":
		return nil, errors.New("auth: external audience is required")
	}
	if err := checkJWKSURL(ext.JWKSURL); err != nil {
		return nil, err
	}
	if ext.AudienceClaim == "" {
		ext.AudienceClaim = "aud"
	}
	if ext.TenantClaim == "" {
		ext.TenantClaim = "tenant_id"
	}
	if ext.ScopeClaim == "" {
		ext.ScopeClaim = "scope"
	}

	logger := cfg.Logger
	remote, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{ext.JWKSURL}, keyfunc.Override{
		HTTPTimeout: jwksTimeout,
		// Also bounds the refresh an unknown kid triggers. When the
		// limiter's next slot is further away, the wait fails at once
		// instead of holding the request.
		RateLimitWaitMax: jwksTimeout,
		RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
			return func(ctx context.Context, err error) {
				logger.WarnContext(ctx, "auth: fetching external JWKS failed", "url", u, "error", err)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("auth: external JWKS: %w", err)
	}
	keys := func(ctx context.Context) jwt.Keyfunc {
		inner := remote.KeyfuncCtx(ctx)
		return func(t *jwt.Token) (any, error) {
			key, err := inner(t)
			if err != nil {
				// Not found, the refresh failed or the JWK's alg differs
				// from the token's: to the client all mean the same.
				return nil, unauthenticated("unknown key id")
			}
			return key, nil
		}
	}
	algs := []string{"RS256", "RS384", "RS512", "ES256", "ES384", "PS256"}
	parserAud := ""
	if ext.AudienceClaim == "aud" {
		parserAud = ext.Audience
	}
	return &trustedIssuer{
		algs:          algs,
		parser:        newParser(cfg, ext.Issuer, algs, parserAud),
		keys:          keys,
		audienceClaim: ext.AudienceClaim,
		audience:      ext.Audience,
		tenantClaim:   ext.TenantClaim,
		scopeClaim:    ext.ScopeClaim,
		scopePrefix:   ext.ScopePrefix,
	}, nil
}

func checkJWKSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("auth: external JWKS URL %q is not an absolute URL", raw)
	}
	switch {
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return nil
	}
	return fmt.Errorf("auth: external JWKS URL %q must use https", raw)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ownClaims are the claims of the tokens Cairn mints.
type ownClaims struct {
	jwt.RegisteredClaims
	TenantID string `json:"tenant_id,omitempty"`
	// Scope is space-separated, as in RFC 8693 and RFC 9068.
	Scope string `json:"scope"`
}

// MintAdmin returns a token for the ISV admin (subject "admin", scope
// "admin") and its expiry. A zero ttl means DefaultTTL; a negative one or
// one above Config.MaxAdminLifetime returns an error matching ErrInvalidTTL.
func (a *Authority) MintAdmin(ttl time.Duration) (string, time.Time, error) {
	ttl, err := checkTTL(ttl, a.maxAdmin)
	if err != nil {
		return "", time.Time{}, err
	}
	return a.mint("admin", "", []string{ScopeAdmin}, ttl)
}

// MintTenant returns a token for tenantID with the given tenant scopes and
// its expiry. A zero ttl means DefaultTTL. Empty or unknown scopes, or
// ScopeAdmin, return an error matching ErrInvalidScope; a negative ttl or one
// above Config.MaxTenantLifetime returns one matching ErrInvalidTTL. An empty tenant ID
// or one with spaces or control characters is a plain error: callers are
// expected to pass the ID of an existing tenant.
func (a *Authority) MintTenant(tenantID string, scopes []string, ttl time.Duration) (string, time.Time, error) {
	if tenantID == "" || strings.IndexFunc(tenantID, isSpaceOrControl) >= 0 {
		return "", time.Time{}, fmt.Errorf("auth: invalid tenant ID %q", tenantID)
	}
	scopes, err := normalizeTenantScopes(scopes)
	if err != nil {
		return "", time.Time{}, err
	}
	ttl, err = checkTTL(ttl, a.maxTenant)
	if err != nil {
		return "", time.Time{}, err
	}
	return a.mint("tenant:"+tenantID, tenantID, scopes, ttl)
}

func isSpaceOrControl(r rune) bool { return r <= ' ' || r == 0x7f }

func (a *Authority) mint(subject, tenantID string, scopes []string, ttl time.Duration) (string, time.Time, error) {
	// JWT times have whole seconds; truncating first makes the returned
	// expiry equal the token's exp.
	now := a.now().Truncate(time.Second)
	exp := now.Add(ttl)
	claims := ownClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    a.issuer,
			Subject:   subject,
			Audience:  jwt.ClaimStrings{a.audience},
			ExpiresAt: jwt.NewNumericDate(exp),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        rand.Text(),
		},
		TenantID: tenantID,
		Scope:    strings.Join(scopes, " "),
	}
	ks := a.keys.Load()
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	t.Header["kid"] = ks.kid
	s, err := t.SignedString(ks.key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("auth: sign token: %w", err)
	}
	return s, exp, nil
}

// JWKS returns the JWK Set of Cairn's public keys (signing key first, then
// the verify-only keys), for /.well-known/jwks.json. The caller may keep or
// modify the returned slice.
func (a *Authority) JWKS() []byte { return slices.Clone(a.keys.Load().jwks) }

// SigningKeyID returns the kid of the key that signs tokens now.
func (a *Authority) SigningKeyID() string { return a.keys.Load().kid }

// SignInTTL is how long a sign-in code lasts.
const SignInTTL = 10 * time.Minute

// signInAudience sets sign-in codes apart from tokens: Verify refuses a
// code (its aud is not the API's), and VerifySignIn refuses a token.
func (a *Authority) signInAudience() string { return a.audience + "#sign-in" }

// MintSignIn returns a one-time sign-in code for the ISV admin portal and
// its expiry (SignInTTL from now). The code is a signed JWT of its own
// audience; single use is the caller's to enforce, by the code's ID that
// VerifySignIn returns.
func (a *Authority) MintSignIn() (string, time.Time, error) {
	now := a.now().Truncate(time.Second)
	exp := now.Add(SignInTTL)
	claims := ownClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    a.issuer,
			Subject:   "admin",
			Audience:  jwt.ClaimStrings{a.signInAudience()},
			ExpiresAt: jwt.NewNumericDate(exp),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        rand.Text(),
		},
		Scope: "sign-in",
	}
	ks := a.keys.Load()
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	t.Header["kid"] = ks.kid
	s, err := t.SignedString(ks.key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("auth: sign sign-in code: %w", err)
	}
	return s, exp, nil
}

// VerifySignIn checks a sign-in code made by MintSignIn with one of this
// authority's own keys (another replica may have signed it, before a
// rotation) and returns its ID and expiry. Every error matches
// ErrUnauthenticated.
func (a *Authority) VerifySignIn(code string) (id string, exp time.Time, err error) {
	if len(code) > maxTokenSize {
		return "", time.Time{}, unauthenticated("sign-in code too large")
	}
	var claims ownClaims
	_, err = jwt.ParseWithClaims(code, &claims, a.ownKeys(context.Background()),
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(a.issuer), jwt.WithAudience(a.signInAudience()),
		jwt.WithExpirationRequired(), jwt.WithTimeFunc(a.now))
	if err != nil || claims.ID == "" || claims.Scope != "sign-in" {
		return "", time.Time{}, unauthenticated("invalid or expired sign-in code")
	}
	return claims.ID, claims.ExpiresAt.Time, nil
}
