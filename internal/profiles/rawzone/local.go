package rawzone

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cairn-cdp/cairn/internal/profiles"
)

// Local is the embedded default's raw zone: files on disk in the layout
// of the local provisioning engine (provisioner.LocalEngine), where a
// bucket is the directory <Root>/<region>/buckets/<bucket>/ and an object
// the file at its key below it.
//
// The bucket directory must exist (the engine makes it when it builds the
// tenant's or the pool's stack); Local makes the directories below it.
// Append and Rewrite write a temporary file next to the object, fsync it,
// rename it into place and fsync the directory, so an object is either
// absent or whole and is durable when they return.
//
// Set both fields. A Local is safe for concurrent use: Rewrites of one
// object queue up. Nothing coordinates two Locals, so use one Local per
// Root, in one process, as the embedded default does.
type Local struct {
	// Root is the local engine's root directory.
	Root string
	// Locate returns where a tenant's raw zone is.
	Locate func(ctx context.Context, tenantID string) (profiles.RawZoneLocation, error)

	rewrites keyLocks
}

var _ profiles.RawZone = (*Local)(nil)

// zone returns the tenant's location and its bucket directory.
func (l *Local) zone(ctx context.Context, tenantID string) (profiles.RawZoneLocation, string, error) {
	if l.Root == "" || l.Locate == nil {
		return profiles.RawZoneLocation{}, "", errors.New("local raw zone: Root and Locate must be set")
	}
	loc, err := l.Locate(ctx, tenantID)
	if err != nil {
		return profiles.RawZoneLocation{}, "", fmt.Errorf("locate tenant %s: %w", tenantID, err)
	}
	if err := checkLocation(loc); err != nil {
		return profiles.RawZoneLocation{}, "", fmt.Errorf("tenant %s: %w", tenantID, err)
	}
	return loc, filepath.Join(l.Root, loc.Region, "buckets", loc.Bucket), nil
}

// Append implements profiles.RawZone.
func (l *Local) Append(ctx context.Context, tenantID string, at time.Time, lines [][]byte) (string, error) {
	loc, bucketDir, err := l.zone(ctx, tenantID)
	if err != nil {
		return "", fmt.Errorf("rawzone: append: %w", err)
	}
	body, err := encode(lines)
	if err != nil {
		return "", fmt.Errorf("rawzone: append: %w", err)
	}
	key := newKey(loc.Prefix, at)
	file := filepath.Join(bucketDir, filepath.FromSlash(key))
	if err := mkdirAllSync(bucketDir, filepath.Dir(file)); err != nil {
		return "", fmt.Errorf("rawzone: append: %w", err)
	}
	if err := writeFileSync(file, body); err != nil {
		return "", fmt.Errorf("rawzone: append: %w", err)
	}
	return key, nil
}

// Rewrite implements profiles.RawZone.
func (l *Local) Rewrite(ctx context.Context, tenantID, key string, keep func(line []byte) bool) (int, error) {
	loc, bucketDir, err := l.zone(ctx, tenantID)
	if err != nil {
		return 0, fmt.Errorf("rawzone: rewrite: %w", err)
	}
	if !inZone(loc, key) {
		return 0, fmt.Errorf("rawzone: rewrite: %w", errNotInZone(tenantID, key))
	}
	file := filepath.Join(bucketDir, filepath.FromSlash(key))

	unlock, err := l.rewrites.lock(ctx, file)
	if err != nil {
		return 0, fmt.Errorf("rawzone: rewrite %s: %w", key, err)
	}
	defer unlock()
	lines, err := readObject(file)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil // already erased
	}
	if err != nil {
		return 0, fmt.Errorf("rawzone: rewrite %s: %w", key, err)
	}
	kept := filter(lines, keep)
	removed := len(lines) - len(kept)
	switch {
	case removed == 0:
		return 0, nil
	case len(kept) == 0:
		if err := os.Remove(file); err != nil {
			return 0, fmt.Errorf("rawzone: rewrite %s: %w", key, err)
		}
		if err := syncDir(filepath.Dir(file)); err != nil {
			return 0, fmt.Errorf("rawzone: rewrite %s: %w", key, err)
		}
		return removed, nil
	}
	body, err := encode(kept)
	if err != nil {
		return 0, fmt.Errorf("rawzone: rewrite %s: %w", key, err)
	}
	if err := writeFileSync(file, body); err != nil {
		return 0, fmt.Errorf("rawzone: rewrite %s: %w", key, err)
	}
	return removed, nil
}

// Read implements profiles.RawZone. It returns ErrNotFound for an object
// that does not exist.
func (l *Local) Read(ctx context.Context, tenantID, key string) ([][]byte, error) {
	loc, bucketDir, err := l.zone(ctx, tenantID)
	if err != nil {
		return nil, fmt.Errorf("rawzone: read: %w", err)
	}
	if !inZone(loc, key) {
		return nil, fmt.Errorf("rawzone: read: %w", errNotInZone(tenantID, key))
	}
	lines, err := readObject(filepath.Join(bucketDir, filepath.FromSlash(key)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("rawzone: read %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("rawzone: read %s: %w", key, err)
	}
	return lines, nil
}

// List implements profiles.RawZone. Keys are in lexical order. It fails
// if the bucket directory does not exist.
func (l *Local) List(ctx context.Context, tenantID string) ([]string, error) {
	loc, bucketDir, err := l.zone(ctx, tenantID)
	if err != nil {
		return nil, fmt.Errorf("rawzone: list: %w", err)
	}
	if _, err := os.Stat(bucketDir); err != nil {
		return nil, fmt.Errorf("rawzone: list: bucket %s in %s: %w", loc.Bucket, loc.Region, err)
	}
	var keys []string
	events := filepath.Join(bucketDir, filepath.FromSlash(loc.Prefix+eventsDir))
	err = filepath.WalkDir(events, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == events {
			return fs.SkipAll // nothing appended yet
		}
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(bucketDir, p)
		if err != nil {
			return err
		}
		// Temporary files (".<name>.tmp-*") are not objects, and neither is
		// anything else that is not a key.
		if key := filepath.ToSlash(rel); inZone(loc, key) {
			keys = append(keys, key)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("rawzone: list: %w", err)
	}
	slices.Sort(keys)
	return keys, nil
}

// readObject returns the lines of the object file at file.
func readObject(file string) ([][]byte, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return decode(bytes.NewReader(data))
}

// writeFileSync writes data to file durably and atomically: to a
// temporary file in the same directory, fsynced, renamed over file, and
// then the directory fsynced so that the rename survives a crash.
func writeFileSync(file string, data []byte) (err error) {
	dir := filepath.Dir(file)
	f, err := os.CreateTemp(dir, "."+filepath.Base(file)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), file); err != nil {
		return err
	}
	return syncDir(dir)
}

// mkdirAllSync makes dir and any missing parents below base, which must
// exist, fsyncing each parent a directory was made in so that the new
// entries are durable too.
func mkdirAllSync(base, dir string) error {
	if fi, err := os.Stat(base); err != nil {
		return fmt.Errorf("bucket directory: %w", err)
	} else if !fi.IsDir() {
		return fmt.Errorf("bucket directory %s is not a directory", base)
	}
	rel, err := filepath.Rel(base, dir)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return fmt.Errorf("%s is not below %s", dir, base)
	}
	parent := base
	for seg := range strings.SplitSeq(rel, string(filepath.Separator)) {
		if seg == "." {
			continue
		}
		p := filepath.Join(parent, seg)
		switch err := os.Mkdir(p, 0o700); {
		case err == nil:
			if err := syncDir(parent); err != nil {
				return err
			}
		case errors.Is(err, fs.ErrExist):
			if fi, err := os.Stat(p); err != nil {
				return err
			} else if !fi.IsDir() {
				return fmt.Errorf("%s is not a directory", p)
			}
		default:
			return err
		}
		parent = p
	}
	return nil
}

// syncDir fsyncs a directory, making the creations, renames and removals
// of its entries durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		_ = d.Close()
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return d.Close()
}
