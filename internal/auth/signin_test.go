package auth_test

import (
	"errors"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/auth"
)

// TestSignInCode: a sign-in code verifies as one, within SignInTTL, only
// with the key that made it, and never as a bearer token; a token never
// verifies as a sign-in code.
func TestSignInCode(t *testing.T) {
	key := newKey(t)
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	now := t0
	a := newAuthority(t, key, auth.Config{Now: func() time.Time { return now }})

	code, exp, err := a.MintSignIn()
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Equal(t0.Add(auth.SignInTTL)) {
		t.Errorf("expiry %v, want %v", exp, t0.Add(auth.SignInTTL))
	}
	id, gotExp, err := a.VerifySignIn(code)
	if err != nil || id == "" || !gotExp.Equal(exp) {
		t.Fatalf("VerifySignIn = %q, %v, %v", id, gotExp, err)
	}
	if _, err := a.Verify(t.Context(), code); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("a sign-in code verified as a bearer token: %v", err)
	}
	admin, _, err := a.MintAdmin(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.VerifySignIn(admin); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("an admin token verified as a sign-in code: %v", err)
	}
	other := newAuthority(t, newKey(t), auth.Config{Now: func() time.Time { return now }})
	if _, _, err := other.VerifySignIn(code); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("another key's authority took the code: %v", err)
	}
	if _, _, err := a.VerifySignIn(code + "x"); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("a tampered code: %v", err)
	}
	now = exp.Add(time.Second)
	if _, _, err := a.VerifySignIn(code); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("an expired code: %v", err)
	}
}
