package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/cairn-cdp/cairn/internal/auth"
	"github.com/cairn-cdp/cairn/internal/kmskek"
	"github.com/cairn-cdp/cairn/internal/replicas"
	"github.com/cairn-cdp/cairn/internal/sealed"
	"github.com/cairn-cdp/cairn/internal/signingkeys"
	"github.com/cairn-cdp/cairn/internal/store"
)

// legacySigningKeyFile is where versions before the keys moved into the
// database kept the signing key; one found there is imported.
const legacySigningKeyFile = "signing-key.pem"

// signingKeys returns the database's signing keys, storing one first if
// it has none: the key of --signing-key-file (created if absent, as
// before), or one an older version left in the data directory, or a new
// one.
func signingKeys(ctx context.Context, cfg *config, db store.Backend, log *slog.Logger) (*signingkeys.Keys, error) {
	sealer, err := keyEncryptionKeys(ctx, cfg, db)
	if err != nil {
		return nil, err
	}
	keys, err := signingkeys.New(signingkeys.Config{Store: db, Sealer: sealer, Horizon: keyHorizon(cfg), Logger: log})
	if err != nil {
		return nil, err
	}
	var imported ed25519.PrivateKey
	if cfg.SigningKeyFile != "" {
		imported, err = auth.LoadOrCreateKey(cfg.SigningKeyFile)
	} else {
		imported, err = auth.LoadKey(filepath.Join(cfg.DataDir, legacySigningKeyFile))
		if errors.Is(err, fs.ErrNotExist) {
			imported, err = nil, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	if err := keys.Ensure(ctx, imported); err != nil {
		return nil, err
	}
	return keys, nil
}

// keyEncryptionKeys returns the keyring that seals secrets at rest: the
// data key of --key-encryption-kms-key, or loadKeyring's (the operator's
// key, or one generated in the data directory).
func keyEncryptionKeys(ctx context.Context, cfg *config, db store.Backend) (*sealed.Keyring, error) {
	if cfg.KEKKMSKey == "" {
		return loadKeyring(cfg)
	}
	return kmskek.Load(ctx, kmskek.Config{Store: db, KeyARN: cfg.KEKKMSKey, AWS: cfg.awsSettings(nil)})
}

// keyHorizon is how long a rotated-out key keeps verifying: the longest
// token (or sign-in code) lifetime, the clock-skew leeway, and the time
// replicas take to load the new key, during which they still sign with
// the old one.
func keyHorizon(cfg *config) time.Duration {
	return max(cfg.MaxTenantTokenTTL, cfg.MaxAdminTokenTTL, auth.SignInTTL) + auth.DefaultLeeway + auth.DefaultKeyReload
}

// keysCommand runs "server keys rotate".
func keysCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "rotate" {
		if len(args) > 0 && wantsHelp(args[:1]) {
			args = []string{"rotate", "--help"}
		} else {
			return errors.New(`keys: want "server keys rotate"`)
		}
	}
	cfg, err := parseConfig("server keys rotate", cmdKeys, args[1:], getenv, stdout, stderr, nil)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	db, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer db.Close()
	keys, err := signingKeys(ctx, cfg, db, log)
	if err != nil {
		return err
	}
	rot, err := keys.Rotate(ctx)
	if err != nil {
		return fmt.Errorf("keys rotate: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "signing key %s signs from now on (replicas switch within %s)\nsigning key %s verifies until %s, then retires\n",
		rot.New, auth.DefaultKeyReload, rot.Old, rot.RetiresAt.UTC().Format(time.RFC3339))
	return err
}

// joinReplicas takes this replica's lease in the database, refusing to
// start beside a replica that forbids it (see package replicas), and
// keeps it renewed. The returned context is ctx, cancelled with the
// *replicas.RefusedError as its cause if the lease is lost for good;
// leave stops renewing and gives the lease up; live counts the replicas
// with a live lease (replicas.Heartbeat.Live).
func joinReplicas(ctx context.Context, cfg *config, db store.Backend, log *slog.Logger) (_ context.Context, leave func(), live func() int, _ error) {
	host, _ := os.Hostname()
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		dir = cfg.DataDir
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, nil, fmt.Errorf("data directory: %w", err)
	}
	unlock, err := replicas.LockDataDir(dir)
	locked := err == nil
	switch {
	case errors.Is(err, replicas.ErrNoLock):
		unlock = func() {}
	case err != nil:
		return nil, nil, nil, err
	}
	hb, err := replicas.Join(ctx, replicas.Config{
		Store: db, Engine: cfg.Cloud, Host: host, DataDir: dir, Lease: cfg.ReplicaLease, Logger: log,
		// Replicas of one SQLite file would share it across processes,
		// which the embedded store is not made for.
		SingleNode:    cfg.DatabaseURL == "",
		DataDirLocked: locked,
	})
	if err != nil {
		unlock()
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := hb.Run(runCtx); err != nil {
			log.Error("replica lease lost; shutting down", "error", err)
			cancel(err)
		}
	}()
	leave = func() {
		stop()
		<-done
		leaveCtx, cancelLeave := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancelLeave()
		if err := hb.Leave(leaveCtx); err != nil {
			log.Warn("giving up the replica lease", "error", err)
		}
		unlock()
		cancel(nil)
	}
	return ctx, leave, hb.Live, nil
}

// leaseLost is the error that ended ctx if the replica lost its lease.
func leaseLost(ctx context.Context) error {
	if err := context.Cause(ctx); errors.Is(err, replicas.ErrRefused) {
		return err
	}
	return nil
}
