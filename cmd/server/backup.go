package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	_ "modernc.org/sqlite" // the database/sql driver of VACUUM INTO

	"github.com/cairn-cdp/cairn/internal/sealed"
	"github.com/cairn-cdp/cairn/internal/store/backend"
)

// A backup is a directory: a consistent copy of every SQLite database of
// the data directory (made by VACUUM INTO, which reads one snapshot while
// the server goes on writing), a copy of every other file (local zones,
// ledgers, key files; each is written whole by a rename, so a copy is
// never half a file), and, written last, the manifest with every file's
// SHA-256. A directory without the manifest is not a backup.
const (
	backupManifestFile = "cairn-backup.json"
	backupFormat       = 1
	// dataLockFile is held (shared) by every server on an embedded data
	// directory, and tried (exclusive) by restore, which refuses to
	// replace a directory a server runs on.
	dataLockFile = "cairn.lock"
)

type backupManifest struct {
	Format    int       `json:"format"`
	CreatedAt time.Time `json:"created_at"`
	// KeyEncryptionKeyID names the key that seals the secrets in the
	// databases ("" when none was configured or generated).
	KeyEncryptionKeyID string `json:"key_encryption_key_id"`
	// KeyEncryptionKeyIncluded is false when the key came from
	// CAIRN_KEY_ENCRYPTION_KEY: the operator keeps it, not the backup.
	KeyEncryptionKeyIncluded bool `json:"key_encryption_key_included"`
	// Files maps each file's slash-separated path in the backup to its
	// SHA-256, hex.
	Files map[string]string `json:"files"`
}

// backupCmd is "server backup DIR": it backs the embedded default's data
// directory up into DIR (new or empty) while a server may be running on it.
func backupCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, rest, err := parseConfigArgs("server backup", " DIR", cmdBackup, args, getenv, stdout, stderr, nil)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return errors.New("backup: name one directory to back up into, after the flags: server backup [flags] DIR")
	}
	if err := embeddedOnly("backup", cfg); err != nil {
		return err
	}
	m, err := backup(ctx, cfg, rest[0])
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	fmt.Fprintf(stdout, "backed up %s into %s: %d files\n", cfg.DataDir, rest[0], len(m.Files))
	if m.KeyEncryptionKeyID != "" && !m.KeyEncryptionKeyIncluded {
		fmt.Fprintf(stdout, "the key-encryption key %s came from %s and is not in the backup: keep it with the backup\n", m.KeyEncryptionKeyID, sealed.EnvKey)
	}
	return nil
}

func embeddedOnly(cmd string, cfg *config) error {
	if cfg.DatabaseURL != "" {
		return fmt.Errorf("%s: covers the embedded default only; with --database-url back PostgreSQL up with its own tools (pg_dump, or PITR) and the profile tables with DynamoDB's backups", cmd)
	}
	return nil
}

// backup writes the backup of cfg's data directory into dir and returns
// its manifest. The databases are copied first, the control-plane one
// first of all, so that the backup holds everything acknowledged before
// it started.
func backup(ctx context.Context, cfg *config, dir string) (backupManifest, error) {
	src := cfg.DataDir
	if _, err := os.Stat(filepath.Join(src, backend.SQLiteFile)); err != nil {
		return backupManifest{}, fmt.Errorf("no Cairn data directory at %s: %w", src, err)
	}
	if err := emptyDir(dir); err != nil {
		return backupManifest{}, err
	}
	m := backupManifest{Format: backupFormat, CreatedAt: time.Now().UTC(), Files: map[string]string{}}
	ok := false
	defer func() {
		if !ok { // leave no half backup that looks whole
			_ = os.Remove(filepath.Join(dir, backupManifestFile))
		}
	}()

	dbs, files, err := dataFiles(src)
	if err != nil {
		return m, err
	}
	for _, rel := range dbs {
		if err := vacuumInto(ctx, filepath.Join(src, rel), filepath.Join(dir, rel)); err != nil {
			return m, fmt.Errorf("copy %s: %w", rel, err)
		}
	}
	for _, rel := range files {
		if err := copyFile(filepath.Join(src, rel), filepath.Join(dir, rel)); errors.Is(err, fs.ErrNotExist) {
			continue // a temporary file, or an object rewritten away meanwhile
		} else if err != nil {
			return m, fmt.Errorf("copy %s: %w", rel, err)
		}
	}
	// The signing keys are in cairn.db, sealed: the key-encryption key
	// below is what opens them.
	kek, err := backupKEK(cfg, dir)
	if err != nil {
		return m, err
	}
	m.KeyEncryptionKeyID, m.KeyEncryptionKeyIncluded = kek.id, kek.included

	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		sum, err := fileSHA256(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		m.Files[filepath.ToSlash(rel)] = sum
		return nil
	})
	if err != nil {
		return m, err
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return m, err
	}
	if err := writeFileSync(filepath.Join(dir, backupManifestFile), append(b, '\n')); err != nil {
		return m, err
	}
	ok = true
	return m, nil
}

type kekInfo struct {
	id       string
	included bool
}

// backupKEK records the key-encryption key the server uses and copies its
// file into the backup unless it is in the data directory (copied with
// the rest) or in the environment (not copied: the operator keeps it).
func backupKEK(cfg *config, dir string) (kekInfo, error) {
	file := cfg.KeyEncryptionKeyFile
	if cfg.KeyEncryptionKey == "" && file == "" {
		file = filepath.Join(cfg.DataDir, sealed.DefaultFile)
		if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
			return kekInfo{}, nil // an older data directory: nothing is sealed
		}
	}
	keys, err := sealed.Load(sealed.Config{Keys: cfg.KeyEncryptionKey, File: file})
	if err != nil {
		return kekInfo{}, err
	}
	if cfg.KeyEncryptionKey != "" {
		return kekInfo{id: keys.KeyID()}, nil
	}
	if !within(cfg.DataDir, file) {
		if err := copyFile(file, filepath.Join(dir, sealed.DefaultFile)); err != nil {
			return kekInfo{}, fmt.Errorf("copy the key-encryption key: %w", err)
		}
	}
	return kekInfo{id: keys.KeyID(), included: true}, nil
}

// dataFiles lists the data directory: its SQLite databases (cairn.db
// first) and every other file worth keeping, as paths relative to src.
// SQLite's -wal, -shm and -journal files, the lock file and temporary
// files (a leading dot, or .tmp) are left out.
func dataFiles(src string) (dbs, files []string, err error) {
	err = filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && path != src {
				return nil // removed while we walked
			}
			return err
		}
		rel, _ := filepath.Rel(src, path)
		name := d.Name()
		switch {
		case d.IsDir():
			return nil
		case !d.Type().IsRegular(), strings.HasPrefix(name, "."), strings.HasSuffix(name, ".tmp"),
			rel == dataLockFile, strings.HasSuffix(name, "-wal"), strings.HasSuffix(name, "-shm"), strings.HasSuffix(name, "-journal"):
		case strings.HasSuffix(name, ".db"):
			dbs = append(dbs, rel)
		default:
			files = append(files, rel)
		}
		return nil
	})
	slices.SortStableFunc(dbs, func(a, b string) int {
		// The control-plane database first: what it names (tenants,
		// sources) was made before what the others hold of it.
		switch {
		case a == b:
			return 0
		case a == backend.SQLiteFile:
			return -1
		case b == backend.SQLiteFile:
			return 1
		}
		return strings.Compare(a, b)
	})
	return dbs, files, err
}

// vacuumInto writes a consistent copy of the live SQLite database src to
// dst, which it creates with mode 0600 (VACUUM INTO keeps the mode of an
// empty file it is given).
func vacuumInto(ctx context.Context, src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if strings.ContainsAny(src, "?#") {
		return fmt.Errorf("unsupported database path %q", src)
	}
	// busy_timeout: the server may hold the write lock a moment.
	db, err := sql.Open("sqlite", src+"?_pragma=busy_timeout(30000)")
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", dst); err != nil {
		return err
	}
	if err := forgetReplicas(ctx, dst); err != nil {
		return err
	}
	return syncFile(dst)
}

// forgetReplicas empties the replicas' leases of a copied control-plane
// database: they are the running server's, not data, and a server started
// on the restored copy must not wait for a lease of a replica that never
// ran on it. A database without the table (profiles.db) is left alone.
func forgetReplicas(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", path)
	if err != nil {
		return err
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'replicas'").Scan(&n); err != nil || n == 0 {
		return err
	}
	_, err = db.ExecContext(ctx, "DELETE FROM replicas")
	return err
}

// copyFile copies src to the new file dst, mode 0600, durably; missing
// directories are made with mode 0700.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return syncFile(filepath.Dir(path))
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// within reports whether path is inside dir.
func within(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && filepath.IsLocal(rel)
}

// emptyDir makes dir (mode 0700) unless it exists; an existing dir must be
// an empty directory, and is made mode 0700.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return os.MkdirAll(dir, 0o700)
	case err != nil:
		return err
	case len(entries) > 0:
		return fmt.Errorf("%s is not empty: back up into a new or empty directory", dir)
	}
	return os.Chmod(dir, 0o700) // it will hold the keys
}

// lockDataDir takes a shared lock on the data directory's lock file and
// holds it until the returned function is called: any number of servers
// may hold it, and restore, which needs it exclusively, refuses to replace
// the directory while one does.
func lockDataDir(dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, dataLockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock the data directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock the data directory: %w", err)
	}
	return func() { f.Close() }, nil
}

// restoreCmd is "server restore DIR": it restores a backup into the data
// directory, which must be new or empty, or, with --force, not in use (its
// contents are moved aside, never deleted).
func restoreCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var force bool
	cfg, rest, err := parseConfigArgs("server restore", " DIR", cmdRestore, args, getenv, stdout, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&force, "force", false, "replace a data directory that is not empty (no server may be running on it); its contents are moved to <data-dir>.replaced-<time>")
	})
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return errors.New("restore: name the backup directory, after the flags: server restore [flags] DIR")
	}
	if err := embeddedOnly("restore", cfg); err != nil {
		return err
	}
	aside, err := restore(ctx, cfg, rest[0], force)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	fmt.Fprintf(stdout, "restored %s into %s\n", rest[0], cfg.DataDir)
	if aside != "" {
		fmt.Fprintf(stdout, "the data directory's former contents are in %s\n", aside)
	}
	return nil
}

// restore checks the backup in dir whole, and that the configured
// key-encryption key opens its secrets, before it changes anything; then it
// copies it beside the data directory and renames the copy into place. It
// returns where a replaced directory's contents went.
func restore(_ context.Context, cfg *config, dir string, force bool) (string, error) {
	m, err := readBackup(dir)
	if err != nil {
		return "", err
	}
	if err := checkRestoredKEK(cfg, dir, m); err != nil {
		return "", err
	}
	target := filepath.Clean(cfg.DataDir)
	replace, err := checkTarget(target, force)
	if err != nil {
		return "", err
	}
	staging := fmt.Sprintf("%s.restoring-%s", target, randomSuffix())
	defer os.RemoveAll(staging) // gone once renamed; otherwise a failed copy
	if err := os.MkdirAll(staging, 0o700); err != nil {
		return "", err
	}
	for rel := range m.Files {
		if err := copyFile(filepath.Join(dir, filepath.FromSlash(rel)), filepath.Join(staging, filepath.FromSlash(rel))); err != nil {
			return "", fmt.Errorf("copy %s: %w", rel, err)
		}
	}
	var aside string
	if replace {
		aside = fmt.Sprintf("%s.replaced-%s", target, time.Now().UTC().Format("20060102T150405Z"))
		if err := os.Rename(target, aside); err != nil {
			return "", err
		}
	} else if err := os.Remove(target); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err // empty, checked above
	}
	if err := os.Rename(staging, target); err != nil {
		return aside, err
	}
	return aside, syncFile(filepath.Dir(target))
}

// readBackup reads dir's manifest and checks every file it lists.
func readBackup(dir string) (backupManifest, error) {
	var m backupManifest
	b, err := os.ReadFile(filepath.Join(dir, backupManifestFile))
	if err != nil {
		return m, fmt.Errorf("%s is not a complete Cairn backup (no %s): %w", dir, backupManifestFile, err)
	}
	if err := json.Unmarshal(b, &m); err != nil || m.Format != backupFormat {
		return m, fmt.Errorf("%s: not a backup of format %d", backupManifestFile, backupFormat)
	}
	if _, ok := m.Files[backend.SQLiteFile]; !ok {
		return m, fmt.Errorf("the backup has no %s", backend.SQLiteFile)
	}
	for rel, want := range m.Files {
		if !filepath.IsLocal(filepath.FromSlash(rel)) {
			return m, fmt.Errorf("the backup names %q, outside it", rel)
		}
		got, err := fileSHA256(filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil {
			return m, fmt.Errorf("the backup is damaged: %w", err)
		}
		if got != want {
			return m, fmt.Errorf("the backup is damaged: %s does not match its checksum", rel)
		}
	}
	return m, nil
}

// checkRestoredKEK refuses a restore whose secrets the server could not
// open: the key it will use (the variable's, the file's, or the backup's
// own file) must hold the key the backup's secrets are sealed under.
func checkRestoredKEK(cfg *config, dir string, m backupManifest) error {
	if m.KeyEncryptionKeyID == "" {
		return nil
	}
	kc := sealed.Config{Keys: cfg.KeyEncryptionKey, File: cfg.KeyEncryptionKeyFile}
	where := sealed.EnvKey
	switch {
	case kc.Keys == "" && kc.File == "" && m.KeyEncryptionKeyIncluded:
		kc.File, where = filepath.Join(dir, sealed.DefaultFile), "the backup's key file"
	case kc.Keys == "" && kc.File == "":
		return fmt.Errorf("the backup's secrets are sealed under key-encryption key %s, which came from %s and is not in the backup: set %s to it", m.KeyEncryptionKeyID, sealed.EnvKey, sealed.EnvKey)
	case kc.File != "":
		where = kc.File
	}
	keys, err := sealed.Load(kc)
	if err != nil {
		return err
	}
	if !keys.Has(m.KeyEncryptionKeyID) {
		return fmt.Errorf("the backup's secrets are sealed under key-encryption key %s, which %s does not hold (it has %s)", m.KeyEncryptionKeyID, where, keys.KeyID())
	}
	return nil
}

// checkTarget says whether the data directory target is to be replaced
// (it holds something, and force allows it) and refuses when that is
// unsafe: a server runs on it, or it is not empty and force is not given.
func checkTarget(target string, force bool) (replace bool, err error) {
	entries, err := os.ReadDir(target)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, err
	}
	if f, err := os.OpenFile(filepath.Join(target, dataLockFile), os.O_RDWR, 0); err == nil {
		defer f.Close()
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			return false, fmt.Errorf("a server is running on %s: stop it first", target)
		}
	}
	if len(entries) == 0 {
		return false, nil
	}
	if !force {
		return false, fmt.Errorf("%s is not empty: restore into a new or empty data directory, or stop its server and pass --force to move its contents aside", target)
	}
	return true, nil
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
