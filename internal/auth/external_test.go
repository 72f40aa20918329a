package auth_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/auth"
	"github.com/golang-jwt/jwt/v5"
)

const extIssuer = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Test"

// jwksServer serves an RSA JWK Set, as Cognito does, and counts fetches.
func jwksServer(t *testing.T, kid string, key *rsa.PublicKey) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	doc, err := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
		"n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes()),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	var fetches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write(doc)
	}))
	t.Cleanup(srv.Close)
	return srv, &fetches
}

func newRSAKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestVerifyExternal(t *testing.T) {
	ownKey, extKey, strangerKey := newKey(t), newRSAKey(t), newRSAKey(t)
	srv, fetches := jwksServer(t, "ext-1", &extKey.PublicKey)
	a := newAuthority(t, ownKey, auth.Config{
		Now: (&clock{now: t0}).Now,
		External: &auth.ExternalConfig{
			Issuer:        extIssuer,
			JWKSURL:       srv.URL,
			Audience:      "client-123",
			AudienceClaim: "client_id",
			TenantClaim:   "custom:tenant_id",
		},
	})

	// claims are a Cognito-style access token for a tenant user.
	claims := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{
			"iss": extIssuer, "client_id": "client-123", "sub": "user-1", "token_use": "access",
			"custom:tenant_id": "ten_1", "scope": "openid profiles:read",
			"iat": t0.Unix(), "exp": t0.Add(time.Hour).Unix(),
		}
		if edit != nil {
			edit(c)
		}
		return c
	}
	kid := func(k string) map[string]any { return map[string]any{"kid": k} }
	rs := func(edit func(jwt.MapClaims)) string {
		return sign(t, jwt.SigningMethodRS256, extKey, kid("ext-1"), claims(edit))
	}

	tests := []struct {
		name   string
		token  string
		want   auth.Principal
		reason string
	}{
		{
			name:  "tenant user",
			token: rs(nil),
			want:  auth.Principal{Subject: "user-1", TenantID: "ten_1", Scopes: []string{"openid", "profiles:read"}, Issuer: extIssuer},
		},
		{
			name: "admin by scope array",
			token: rs(func(c jwt.MapClaims) {
				delete(c, "custom:tenant_id")
				c["scope"] = []string{"admin"}
			}),
			want: auth.Principal{Subject: "user-1", Scopes: []string{"admin"}, Issuer: extIssuer},
		},
		{
			name:  "PS256 with the same key",
			token: sign(t, jwt.SigningMethodPS256, extKey, kid("ext-1"), claims(nil)),
			// The JWK says alg RS256, so keyfunc refuses the key for PS256.
			reason: "unknown key id",
		},
		{"no tenant, no admin", rs(func(c jwt.MapClaims) { delete(c, "custom:tenant_id") }), auth.Principal{}, "token grants neither tenant nor admin access"},
		{"unknown key", sign(t, jwt.SigningMethodRS256, strangerKey, kid("ext-2"), claims(nil)), auth.Principal{}, "unknown key id"},
		{"stranger key, known kid", sign(t, jwt.SigningMethodRS256, strangerKey, kid("ext-1"), claims(nil)), auth.Principal{}, "invalid signature"},
		{"missing kid", sign(t, jwt.SigningMethodRS256, extKey, nil, claims(nil)), auth.Principal{}, "missing key id"},
		{"our iss, external key", rs(func(c jwt.MapClaims) { c["iss"] = "cairn"; c["aud"] = "cairn-api" }), auth.Principal{}, "unsupported algorithm"},
		{"external iss, our key", sign(t, jwt.SigningMethodEdDSA, ownKey, kid(kidOf(t, pubOf(ownKey))), claims(nil)), auth.Principal{}, "unsupported algorithm"},
		{"HS256 keyed with the modulus", sign(t, jwt.SigningMethodHS256, extKey.N.Bytes(), kid("ext-1"), claims(nil)), auth.Principal{}, "unsupported algorithm"},
		{"wrong client_id", rs(func(c jwt.MapClaims) { c["client_id"] = "other-client" }), auth.Principal{}, "audience mismatch"},
		{"aud instead of client_id", rs(func(c jwt.MapClaims) { delete(c, "client_id"); c["aud"] = "client-123" }), auth.Principal{}, "missing client_id claim"},
		{"expired", rs(func(c jwt.MapClaims) { c["exp"] = t0.Add(-time.Minute).Unix() }), auth.Principal{}, "token expired"},
		{"missing exp", rs(func(c jwt.MapClaims) { delete(c, "exp") }), auth.Principal{}, "missing exp claim"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := a.Verify(t.Context(), tc.token)
			wantReason(t, err, tc.reason)
			if !equalPrincipal(p, tc.want) {
				t.Errorf("principal = %+v, want %+v", p, tc.want)
			}
		})
	}

	// An unknown kid may trigger one refetch, rate limited: a flood of them
	// must not reach the identity provider.
	before := fetches.Load()
	stranger := sign(t, jwt.SigningMethodRS256, strangerKey, kid("ext-3"), claims(nil))
	for range 5 {
		_, err := a.Verify(t.Context(), stranger)
		wantReason(t, err, "unknown key id")
	}
	if n := fetches.Load() - before; n > 1 {
		t.Errorf("5 unknown kids caused %d JWKS fetches, want at most 1", n)
	}
}

func TestVerifyExternalScopePrefix(t *testing.T) {
	extKey := newRSAKey(t)
	srv, _ := jwksServer(t, "ext-1", &extKey.PublicKey)
	a := newAuthority(t, newKey(t), auth.Config{
		Now: (&clock{now: t0}).Now,
		External: &auth.ExternalConfig{
			Issuer:      extIssuer,
			JWKSURL:     srv.URL,
			Audience:    "cairn-api",
			ScopePrefix: "cairn/",
		},
	})
	tok := sign(t, jwt.SigningMethodRS256, extKey, map[string]any{"kid": "ext-1"}, jwt.MapClaims{
		"iss": extIssuer, "aud": []string{"cairn-api"}, "sub": "svc", "tenant_id": "ten_1",
		"scope": "openid cairn/profiles:read other/admin", "exp": t0.Add(time.Hour).Unix(),
	})
	p, err := a.Verify(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"profiles:read"}; p.TenantID != "ten_1" || !slices.Equal(p.Scopes, want) {
		t.Errorf("principal = %+v, want tenant ten_1 with scopes %v", p, want)
	}
}
