package auth_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/auth"
)

// keySource is a KeySource whose keys a test changes; it counts loads.
type keySource struct {
	mu    sync.Mutex
	set   auth.KeySet
	err   error
	loads int
}

func (s *keySource) SigningKeys(context.Context) (auth.KeySet, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loads++
	return s.set, s.err
}

func (s *keySource) put(set auth.KeySet) { s.mu.Lock(); s.set = set; s.mu.Unlock() }

func (s *keySource) count() int { s.mu.Lock(); defer s.mu.Unlock(); return s.loads }

func publishedKids(t *testing.T, a *auth.Authority) map[string]bool {
	t.Helper()
	var set struct {
		Keys []struct{ Kid string } `json:"keys"`
	}
	if err := json.Unmarshal(a.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, k := range set.Keys {
		out[k.Kid] = true
	}
	return out
}

// TestKeySourceRotation: an Authority on a KeySource follows a rotation
// made elsewhere: a token of the new key makes it reload once, after
// which it signs with the new key and still verifies the old one's
// tokens and sign-in codes. Unknown kids reload at most once per gap.
func TestKeySourceRotation(t *testing.T) {
	oldKey, newKey, stranger := newKey(t), newKey(t), newKey(t)
	src := &keySource{set: auth.KeySet{Signing: oldKey}}
	// A long periodic reload and gap: only the unknown kid reloads here.
	a, err := auth.NewFromSource(t.Context(), src, auth.Config{KeyReload: time.Hour, KeyRefetchGap: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	oldToken, _, err := a.MintAdmin(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	oldCode, _, err := a.MintSignIn()
	if err != nil {
		t.Fatal(err)
	}

	// Another replica rotates: it signs with the new key.
	src.put(auth.KeySet{Signing: newKey, Verify: []ed25519.PublicKey{pubOf(oldKey)}})
	other := newAuthority(t, newKey, auth.Config{VerifyKeys: []ed25519.PublicKey{pubOf(oldKey)}})
	newToken, _, err := other.MintAdmin(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	loads := src.count()
	if _, err := a.Verify(t.Context(), newToken); err != nil {
		t.Fatalf("a token of the rotated-in key: %v", err)
	}
	if src.count() != loads+1 {
		t.Fatalf("%d loads for one unknown kid, want 1", src.count()-loads)
	}
	if a.SigningKeyID() != kidOf(t, pubOf(newKey)) {
		t.Fatal("after the reload the authority does not sign with the new key")
	}
	if kids := publishedKids(t, a); len(kids) != 2 || !kids[kidOf(t, pubOf(oldKey))] || !kids[kidOf(t, pubOf(newKey))] {
		t.Fatalf("JWKS %v, want the old and the new key", kids)
	}
	if _, err := a.Verify(t.Context(), oldToken); err != nil {
		t.Fatalf("a token of the old key after the rotation: %v", err)
	}
	if _, _, err := a.VerifySignIn(oldCode); err != nil {
		t.Fatalf("a sign-in code of the old key after the rotation: %v", err)
	}

	// Forged kids within the gap of that reload load nothing.
	forger := newAuthority(t, stranger, auth.Config{})
	loads = src.count()
	for range 3 {
		forged, _, err := forger.MintAdmin(time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		_, err = a.Verify(t.Context(), forged)
		wantReason(t, err, "unknown key id")
	}
	if src.count() != loads {
		t.Fatalf("%d loads for three unknown kids within the gap, want none", src.count()-loads)
	}
}

// TestKeySourceReloadsPeriodically: keys that change are picked up
// without a token asking, and a failing source keeps the last keys.
func TestKeySourceReloadsPeriodically(t *testing.T) {
	first, second := newKey(t), newKey(t)
	src := &keySource{set: auth.KeySet{Signing: first}}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := auth.NewFromSource(t.Context(), src, auth.Config{KeyReload: 10 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	src.put(auth.KeySet{Signing: second})
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(30 * time.Second); a.SigningKeyID() != kidOf(t, pubOf(second)); <-tick.C {
		if time.Now().After(deadline) {
			t.Fatal("the new key was not loaded within 30s")
		}
	}
	src.mu.Lock()
	src.err = errors.New("database down")
	src.mu.Unlock()
	for n, deadline := src.count(), time.Now().Add(30*time.Second); src.count() < n+2; <-tick.C {
		if time.Now().After(deadline) {
			t.Fatal("no reload attempts within 30s")
		}
	}
	if a.SigningKeyID() != kidOf(t, pubOf(second)) {
		t.Fatal("a failed reload changed the keys")
	}
	if _, _, err := a.MintAdmin(time.Minute); err != nil {
		t.Fatalf("minting while the source fails: %v", err)
	}

	if _, err := auth.NewFromSource(t.Context(), &keySource{err: errors.New("no keys")}, auth.Config{}); err == nil {
		t.Fatal("NewFromSource with a failing source succeeded")
	}
}
