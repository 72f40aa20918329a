package storetest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/auth"
	"github.com/cairn-cdp/cairn/internal/replicas"
	"github.com/cairn-cdp/cairn/internal/sealed"
	"github.com/cairn-cdp/cairn/internal/signingkeys"
	"github.com/cairn-cdp/cairn/internal/store"
)

// keysClock is a clock tests move by hand.
type keysClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *keysClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *keysClock) Add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.now = c.now.Add(d) }

func newSigningKeys(t *testing.T, b store.Backend, clock *keysClock, horizon time.Duration) *signingkeys.Keys {
	t.Helper()
	kek, err := sealed.ParseKey(sealed.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	k, err := signingkeys.New(signingkeys.Config{Store: b, Sealer: sealed.NewKeyring(kek), Horizon: horizon, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func kidSet(t *testing.T, k *signingkeys.Keys) (signing string, verify []string) {
	t.Helper()
	set, err := k.SigningKeys(t.Context())
	if err != nil {
		t.Fatalf("SigningKeys: %v", err)
	}
	for _, pub := range set.Verify {
		verify = append(verify, auth.KeyID(pub))
	}
	return auth.KeyID(set.Signing.Public().(ed25519.PublicKey)), verify
}

// testSigningKeysEnsure: replicas starting at once on an empty database
// agree on one key; an imported key is stored only into an empty table.
func testSigningKeysEnsure(t *testing.T, h Harness) {
	b := newBackend(t, h)
	clock := &keysClock{now: base}
	keys := newSigningKeys(t, b, clock, time.Hour)
	if _, err := keys.SigningKeys(t.Context()); !errors.Is(err, signingkeys.ErrNoCurrentKey) {
		t.Fatalf("SigningKeys of an empty table: %v, want ErrNoCurrentKey", err)
	}
	_, imported, _ := ed25519.GenerateKey(rand.Reader)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			var key ed25519.PrivateKey
			if i == 0 {
				key = imported
			}
			errs[i] = keys.Ensure(t.Context(), key)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent Ensure: %v", err)
	}
	stored, err := b.SigningKeyList(t.Context())
	if err != nil || len(stored) != 1 {
		t.Fatalf("after concurrent Ensure: %d keys, %v; want one", len(stored), err)
	}
	signing, verify := kidSet(t, keys)
	if signing != stored[0].ID || len(verify) != 0 {
		t.Fatalf("key set %s %v, stored %s", signing, verify, stored[0].ID)
	}
	// Once the table has a key, another file's key is ignored.
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	if err := keys.Ensure(t.Context(), other); err != nil {
		t.Fatal(err)
	}
	if again, _ := kidSet(t, keys); again != signing {
		t.Fatalf("Ensure with another key changed the signing key to %s", again)
	}
}

// testSigningKeysRotate: a rotation signs with a new key, the old one
// verifies until the horizon, and the sealed key opens only under its
// own kid and key-encryption key.
func testSigningKeysRotate(t *testing.T, h Harness) {
	b := newBackend(t, h)
	clock := &keysClock{now: base}
	keys := newSigningKeys(t, b, clock, time.Hour)
	if _, err := keys.Rotate(t.Context()); !errors.Is(err, signingkeys.ErrNoCurrentKey) {
		t.Fatalf("Rotate with no key: %v", err)
	}
	if err := keys.Ensure(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	first, _ := kidSet(t, keys)
	clock.Add(time.Minute)
	rot, err := keys.Rotate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if rot.Old != first || rot.New == first || !rot.RetiresAt.Equal(base.Add(time.Minute+time.Hour)) {
		t.Fatalf("rotation %+v, first key %s", rot, first)
	}
	signing, verify := kidSet(t, keys)
	if signing != rot.New || len(verify) != 1 || verify[0] != first {
		t.Fatalf("after rotation: signing %s, verify %v; want %s and [%s]", signing, verify, rot.New, first)
	}
	clock.Add(time.Hour - time.Second)
	if _, verify := kidSet(t, keys); len(verify) != 1 {
		t.Fatalf("a second before the horizon: verify %v", verify)
	}
	clock.Add(time.Second)
	if _, verify := kidSet(t, keys); len(verify) != 0 {
		t.Fatalf("at the horizon: verify %v, want none", verify)
	}

	// Another key-encryption key does not open the stored key.
	if _, err := newSigningKeys(t, b, clock, time.Hour).SigningKeys(t.Context()); !errors.Is(err, sealed.ErrUnknownKey) {
		t.Fatalf("SigningKeys under another key-encryption key: %v, want ErrUnknownKey", err)
	}
}

// testReplicaLeases: a local-engine replica is alone; AWS-mode replicas
// are many; a lapsed lease blocks no one, and the replica that held it
// stops when it finds it taken.
func testReplicaLeases(t *testing.T, h Harness) {
	b := newBackend(t, h)
	clock := &keysClock{now: base}
	const lease = 3 * time.Second
	join := func(engine, dir string) (*replicas.Heartbeat, error) {
		return replicas.Join(t.Context(), replicas.Config{Store: b, Engine: engine, Host: "host-1", DataDir: dir, Lease: lease, Now: clock.Now})
	}
	first, err := join(replicas.EngineLocal, "/data/a")
	if err != nil {
		t.Fatal(err)
	}
	for _, engine := range []string{replicas.EngineLocal, replicas.EngineAWS} {
		_, err := join(engine, "/data/b")
		var refused *replicas.RefusedError
		if !errors.As(err, &refused) || !errors.Is(err, replicas.ErrRefused) || refused.Live.ID != first.ID() || refused.Live.DataDir != "/data/a" {
			t.Fatalf("%s replica beside a live local one: %v", engine, err)
		}
	}
	// Renewed, the lease outlives its first term.
	clock.Add(2 * time.Second)
	if ok, err := b.ReplicaRenew(t.Context(), first.ID(), clock.Now().Add(lease)); !ok || err != nil {
		t.Fatalf("renew: %v %v", ok, err)
	}
	clock.Add(2 * time.Second)
	if _, err := join(replicas.EngineLocal, "/data/b"); !errors.Is(err, replicas.ErrRefused) {
		t.Fatalf("beside a renewed lease: %v", err)
	}
	// Lapsed, it blocks no one.
	clock.Add(lease)
	second, err := join(replicas.EngineLocal, "/data/b")
	if err != nil {
		t.Fatalf("after the lease lapsed: %v", err)
	}
	// Its holder, still running, finds it gone at its next renewal and
	// may not take it again: Run says it must stop.
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	if err := first.Run(ctx); !errors.Is(err, replicas.ErrRefused) {
		t.Fatalf("Run of a replica whose lapsed lease was taken: %v", err)
	}
	// Left, a lease blocks no one either.
	if err := second.Leave(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		hb, err := join(replicas.EngineAWS, "/data/aws")
		if err != nil {
			t.Fatalf("AWS-mode replica %d: %v", i+1, err)
		}
		// Each counts the live replicas, itself included, when it joins.
		if hb.Live() != i+1 {
			t.Fatalf("AWS-mode replica %d counts %d live replicas", i+1, hb.Live())
		}
	}
	if n, err := b.ReplicaCount(t.Context(), clock.Now()); n != 3 || err != nil {
		t.Fatalf("ReplicaCount: %d %v, want 3", n, err)
	}
	if n, err := b.ReplicaCount(t.Context(), clock.Now().Add(lease)); n != 0 || err != nil {
		t.Fatalf("ReplicaCount once the leases lapsed: %d %v, want 0", n, err)
	}
	if _, err := join(replicas.EngineLocal, "/data/c"); !errors.Is(err, replicas.ErrRefused) {
		t.Fatalf("a local replica beside AWS-mode ones: %v", err)
	}
}
