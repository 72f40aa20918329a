// Package signingkeys keeps the Ed25519 keys that sign Cairn's tokens in
// the control-plane database, so that every replica signs and verifies
// with the same keys, and rotates them without logging anyone out.
//
// A key's private half is stored sealed (package sealed) under the
// operator's key-encryption key, with the key's kid as associated data: the
// database alone never yields a key that signs. Its public half is stored
// as is, so verifying needs no unsealing.
//
// At most one key is current: it signs. Rotate adds a new current key and
// marks the old one superseded; a superseded key still verifies (and is
// published in the JWKS) for Config.Horizon, the longest time a token it
// signed can live, then it is dropped from the set SigningKeys returns;
// rows superseded longer than any configuration's horizon are deleted at
// the next rotation.
//
// Errors: Store errors are wrapped; ErrNoCurrentKey and ErrRotationRace are
// documented where returned. Keys is safe for concurrent use; it holds no
// state of its own beyond its configuration.
package signingkeys

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cairn-cdp/cairn/internal/auth"
	"github.com/cairn-cdp/cairn/internal/sealed"
)

// Sentinel errors.
var (
	// ErrNoCurrentKey is returned by SigningKeys and Rotate when the
	// database holds no current key: Ensure was never run on it.
	ErrNoCurrentKey = errors.New("signingkeys: no current signing key")
	// ErrRotationRace is returned by Rotate when another rotation
	// committed at the same time; run it again.
	ErrRotationRace = errors.New("signingkeys: another rotation happened at the same time")
)

// forgetAfter is how long after its supersession a key's row is kept: past
// the horizon of any configuration (the lifetime ceiling, the leeway's
// maximum and the reload interval), with a margin.
const forgetAfter = auth.MaxLifetimeCeiling + 24*time.Hour

// Key is one stored signing key.
type Key struct {
	// ID is the key's kid, the RFC 7638 thumbprint of Public.
	ID     string
	Public ed25519.PublicKey
	// SealedPrivate is the private key's seed, sealed with ID as
	// associated data.
	SealedPrivate string
	CreatedAt     time.Time
	// SupersededAt is when a newer key replaced this one; nil for the
	// current key.
	SupersededAt *time.Time
}

// Store is the keys' table. Adapters translate their driver errors.
type Store interface {
	// SigningKeyList returns every stored key, newest first.
	SigningKeyList(ctx context.Context) ([]Key, error)
	// SigningKeyInsert adds k and reports whether it did: it does not
	// when k is current (SupersededAt nil) and another current key exists,
	// or when a key of k's ID exists.
	SigningKeyInsert(ctx context.Context, k Key) (bool, error)
	// SigningKeyRotate, in one transaction, marks the current key
	// superseded at k.CreatedAt, inserts k as current and deletes the
	// keys superseded before forgetBefore. It returns ErrRotationRace
	// when k cannot be inserted as current.
	SigningKeyRotate(ctx context.Context, k Key, forgetBefore time.Time) error
}

// Config configures Keys.
type Config struct {
	// Store and Sealer are required. Sealer seals new keys and opens the
	// current one.
	Store  Store
	Sealer *sealed.Keyring
	// Horizon is how long a superseded key keeps verifying: the longest
	// token lifetime the servers accept, plus their clock-skew leeway,
	// plus the time a replica may take to load a new key (its reload
	// interval), since it signs with the old key until then. Required.
	Horizon time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Keys is the signing keys in the database. It implements
// auth.KeySource.
type Keys struct {
	store   Store
	sealer  *sealed.Keyring
	horizon time.Duration
	now     func() time.Time
	logger  *slog.Logger
}

var _ auth.KeySource = (*Keys)(nil)

// New validates cfg and returns Keys.
func New(cfg Config) (*Keys, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("signingkeys: Store is required")
	case cfg.Sealer == nil:
		return nil, errors.New("signingkeys: Sealer is required")
	case cfg.Horizon <= 0:
		return nil, errors.New("signingkeys: Horizon must be positive")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Keys{store: cfg.Store, sealer: cfg.Sealer, horizon: cfg.Horizon, now: cfg.Now, logger: cfg.Logger}, nil
}

// Ensure makes sure the database has a current key. When it has none it
// stores imported (a key file of an older version, or the operator's
// CAIRN_SIGNING_KEY_FILE) or, if imported is nil, a new key; when
// replicas start at once, one key wins and all use it. When the database
// has a current key, an imported key it does not hold is ignored, and
// said so in the log: the database's keys sign.
func (k *Keys) Ensure(ctx context.Context, imported ed25519.PrivateKey) error {
	keys, err := k.store.SigningKeyList(ctx)
	if err != nil {
		return fmt.Errorf("signing keys: %w", err)
	}
	if current(keys) != nil {
		if imported != nil && !holds(keys, kidOf(imported)) {
			k.logger.WarnContext(ctx, "signing key file ignored: the control-plane database has signing keys, which sign",
				"file_kid", kidOf(imported))
		}
		return nil
	}
	key := imported
	if key == nil {
		if _, key, err = ed25519.GenerateKey(rand.Reader); err != nil {
			return fmt.Errorf("signing keys: generate: %w", err)
		}
	}
	inserted, err := k.store.SigningKeyInsert(ctx, k.seal(key, k.now()))
	if err != nil {
		return fmt.Errorf("signing keys: store: %w", err)
	}
	if !inserted {
		// Another replica stored its key first; check that one is current.
		if keys, err = k.store.SigningKeyList(ctx); err != nil {
			return fmt.Errorf("signing keys: %w", err)
		}
		if current(keys) == nil {
			return ErrNoCurrentKey
		}
	}
	return nil
}

// SigningKeys implements auth.KeySource: the current key, unsealed, signs;
// the keys superseded less than Horizon ago verify.
func (k *Keys) SigningKeys(ctx context.Context) (auth.KeySet, error) {
	keys, err := k.store.SigningKeyList(ctx)
	if err != nil {
		return auth.KeySet{}, fmt.Errorf("signing keys: %w", err)
	}
	cur := current(keys)
	if cur == nil {
		return auth.KeySet{}, ErrNoCurrentKey
	}
	seed, err := k.sealer.Open(cur.SealedPrivate, associated(cur.ID))
	if err != nil {
		return auth.KeySet{}, fmt.Errorf("signing key %s: %w (every replica needs the same key-encryption key, %s or %s)",
			cur.ID, err, sealed.EnvKey, sealed.EnvKeyFile)
	}
	if len(seed) != ed25519.SeedSize {
		return auth.KeySet{}, fmt.Errorf("signing key %s: stored seed is %d bytes", cur.ID, len(seed))
	}
	set := auth.KeySet{Signing: ed25519.NewKeyFromSeed(seed)}
	now := k.now()
	for _, key := range keys {
		if key.SupersededAt != nil && now.Before(key.SupersededAt.Add(k.horizon)) {
			set.Verify = append(set.Verify, key.Public)
		}
	}
	return set, nil
}

// Rotation is what Rotate did.
type Rotation struct {
	// New is the kid of the key that signs from now on; Old the kid of
	// the key it replaced, which verifies until RetiresAt.
	New, Old  string
	RetiresAt time.Time
}

// Rotate makes a new key current. The replaced key keeps verifying for
// Horizon. Replicas sign with the new key once they reload (within their
// reload interval), and verify it at once: a token naming a kid they
// lack makes them reload. It returns ErrNoCurrentKey when there is no key
// to rotate, and ErrRotationRace when another rotation won.
func (k *Keys) Rotate(ctx context.Context) (Rotation, error) {
	keys, err := k.store.SigningKeyList(ctx)
	if err != nil {
		return Rotation{}, fmt.Errorf("signing keys: %w", err)
	}
	old := current(keys)
	if old == nil {
		return Rotation{}, ErrNoCurrentKey
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Rotation{}, fmt.Errorf("signing keys: generate: %w", err)
	}
	now := k.now()
	stored := k.seal(key, now)
	if err := k.store.SigningKeyRotate(ctx, stored, now.Add(-forgetAfter)); err != nil {
		return Rotation{}, fmt.Errorf("signing keys: rotate: %w", err)
	}
	return Rotation{New: stored.ID, Old: old.ID, RetiresAt: now.Add(k.horizon)}, nil
}

// seal makes the stored form of a new current key.
func (k *Keys) seal(key ed25519.PrivateKey, now time.Time) Key {
	id := kidOf(key)
	return Key{
		ID:            id,
		Public:        key.Public().(ed25519.PublicKey),
		SealedPrivate: k.sealer.Seal(key.Seed(), associated(id)),
		CreatedAt:     now.UTC(),
	}
}

// associated binds a sealed key to its row: a sealed key copied to
// another kid does not open.
func associated(kid string) []byte { return []byte("cairn signing key " + kid) }

func kidOf(key ed25519.PrivateKey) string { return auth.KeyID(key.Public().(ed25519.PublicKey)) }

func current(keys []Key) *Key {
	for i := range keys {
		if keys[i].SupersededAt == nil {
			return &keys[i]
		}
	}
	return nil
}

func holds(keys []Key, kid string) bool {
	for _, k := range keys {
		if k.ID == kid {
			return true
		}
	}
	return false
}
