// Package auth issues and verifies the bearer tokens that guard every /v1
// route of the Cairn API.
//
// Cairn signs its own tokens with Ed25519 (JWS alg EdDSA). New takes a fixed
// signing key (LoadKey and LoadOrCreateKey read PEM PKCS#8 files);
// NewFromSource takes a KeySource (the server's is the control-plane
// database, package signingkeys) and follows its changes: it reloads every
// Config.KeyReload (30s) and, when a token names a kid it lacks, at once (at
// most once per Config.KeyRefetchGap, 5s), so a key rotated in on another
// replica verifies everywhere at once. Authority.JWKS publishes the public
// half of the signing key and of every verify-only key (a rotated-out key
// until its tokens have expired, Config.VerifyKeys) as RFC 8037 OKP keys
// whose kid is the RFC 7638 thumbprint.
//
// An external OIDC issuer (for example Amazon Cognito) may be trusted as
// well. Its keys come from its JWKS URL through keyfunc, which caches them,
// refreshes them hourly and re-fetches (at most every five minutes) when a
// token names an unknown kid.
//
// Verification follows RFC 8725. The token's iss selects the trusted issuer;
// that issuer alone decides the algorithm allow-list (EdDSA for Cairn; RS256,
// RS384, RS512, ES256, ES384 and PS256 for the external issuer; never none or
// HMAC) and the key set in which the required kid is looked up. Keys named by
// the token itself (jku, jwk, x5u) are ignored. iss, aud (or the configured
// audience claim), exp and sub are required; nbf and iat are honoured with
// Config.Leeway of clock skew. A typ header other than JWT or at+jwt, and any
// crit header, are rejected.
//
// A verified token yields a Principal: the ISV admin (scope "admin", no
// tenant) or a tenant principal (a tenant ID and tenant scopes). A token that
// yields neither, or both, is rejected.
//
// Clock skew: exp, nbf and iat are checked with Config.Leeway (default 30s,
// at most 5m) of tolerance, so a token is accepted from 30s before its
// nbf or iat until 30s after its exp; a token whose iat is further in the
// future than that is refused as issued in the future.
//
// Lifetime: a verified token must not live longer than the maximum of its
// kind, Config.MaxTenantLifetime or Config.MaxAdminLifetime (both 24h by
// default, at most MaxLifetimeCeiling, 30 days). The lifetime is exp minus
// iat (minus nbf without iat, minus the time of verification without
// either); the leeway does not stretch it. This holds for the external
// issuer's tokens too, and MintTenant and MintAdmin refuse longer TTLs.
//
// Defaults: issuer "cairn", audience "cairn-api", leeway 30s, token lifetime
// DefaultTTL (1h), at most 24h for tenant and admin tokens alike.
//
// Errors: every error Verify returns matches ErrUnauthenticated and is a
// *TokenError whose Reason is short and safe to show a client. MintAdmin and
// MintTenant return errors matching ErrInvalidScope or ErrInvalidTTL for bad
// input. New returns plain errors for invalid configuration.
//
// Concurrency: an Authority is safe for concurrent use; its own keys are
// replaced atomically by reloads. The external key cache is synchronized
// internally. The refresh goroutines (external JWKS, KeySource) live until
// the context given to New or NewFromSource is done.
package auth
