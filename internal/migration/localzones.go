package migration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/cairn-cdp/cairn/internal/placement"
)

// SyncCounts is what one Zones.Sync found and did.
type SyncCounts struct {
	// Objects is how many objects (and catalog entries) the source holds.
	Objects int64
	// Written and Removed count what the target received and lost.
	Written int64
	Removed int64
	// Bytes counts the bytes written.
	Bytes int64
}

// Zones copies a tenant's data between its placements: its zone objects
// and catalog entries, and, where they live in a table of the placement
// (AWS mode), its profile items. Its methods are safe to repeat.
type Zones interface {
	// Sync makes the target's raw, clean and curated zones and catalog
	// tables (and profile items) hold what the source's hold: what the
	// target lacks or holds otherwise is written, what the source no
	// longer has is removed from the target. Objects keep their keys
	// below the placements' prefixes. Every object written is durable
	// when it returns.
	Sync(ctx context.Context, tenantID string, from, to Home) (SyncCounts, error)
	// Clear removes what the provisioner's release of h leaves of the
	// tenant: the catalog tables of h's catalog database (the provisioner
	// removes the database and the objects), and the tenant's profile
	// items in a pool's table. It returns how many it removed.
	Clear(ctx context.Context, tenantID string, h Home) (int64, error)
}

// LocalZones is the embedded default's Zones: the local engine's layout on
// disk under Root (provisioner.LocalEngine, rawzone.Local, the lake's
// DuckDB engine and grants.LocalCatalog):
//
//	<Root>/<region>/buckets/<bucket>/<prefix><key>   an object
//	<Root>/<region>/catalog/<db>/<table>.json        a catalog table
//
// A catalog table copied to a pooled tenant's database is marked shared
// (the pool's tables hold every pooled tenant's rows, and a grant on one
// goes through the tenant's data cells filter); one copied to a dedicated
// tenant's database is its own.
type LocalZones struct {
	Root string
}

var _ Zones = LocalZones{}

// Sync implements Zones.
func (z LocalZones) Sync(ctx context.Context, _ string, from, to Home) (SyncCounts, error) {
	var c SyncCounts
	if z.Root == "" {
		return c, errors.New("local zones: Root is required")
	}
	for _, pair := range [][2]string{{from.RawBucket(), to.RawBucket()}, {from.CleanBucket(), to.CleanBucket()}, {from.CuratedBucket(), to.CuratedBucket()}} {
		if pair[0] == "" || pair[1] == "" {
			continue
		}
		src := z.dir(from.Region, pair[0], from.Prefix())
		dst := z.dir(to.Region, pair[1], to.Prefix())
		if err := syncTree(ctx, src, dst, func(rel string) bool {
			// A dedicated tenant's bucket is all its own; a pooled one's
			// prefix is too. Temporary files of writers are not objects.
			return !strings.HasPrefix(filepath.Base(rel), ".")
		}, nil, &c); err != nil {
			return c, fmt.Errorf("local zones: %s to %s: %w", pair[0], pair[1], err)
		}
	}
	if from.GlueDatabase() != "" && to.GlueDatabase() != "" {
		src := filepath.Join(z.Root, from.Region, "catalog", from.GlueDatabase())
		dst := filepath.Join(z.Root, to.Region, "catalog", to.GlueDatabase())
		shared := to.Kind == placement.Pooled
		if err := syncTree(ctx, src, dst, func(rel string) bool {
			return !strings.Contains(rel, string(filepath.Separator)) && strings.HasSuffix(rel, ".json")
		}, func(b []byte) ([]byte, error) { return markShared(b, shared) }, &c); err != nil {
			return c, fmt.Errorf("local zones: catalog %s to %s: %w", from.GlueDatabase(), to.GlueDatabase(), err)
		}
	}
	return c, nil
}

// Clear implements Zones.
func (z LocalZones) Clear(_ context.Context, _ string, h Home) (int64, error) {
	if h.GlueDatabase() == "" {
		return 0, nil
	}
	dir := filepath.Join(z.Root, h.Region, "catalog", h.GlueDatabase())
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("local zones: %w", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return 0, fmt.Errorf("local zones: %w", err)
	}
	return int64(len(entries)), nil
}

func (z LocalZones) dir(region, bucket, prefix string) string {
	return filepath.Join(z.Root, region, "buckets", bucket, filepath.FromSlash(prefix))
}

// markShared sets a catalog table's shared flag.
func markShared(b []byte, shared bool) ([]byte, error) {
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	doc["shared"] = shared
	return json.Marshal(doc)
}

// syncTree makes the files of dst that keep selects equal those of src
// (transformed by conv, if set), writing durably and removing what src
// lacks. A missing src is an empty one.
func syncTree(ctx context.Context, src, dst string, keep func(rel string) bool, conv func([]byte) ([]byte, error), c *SyncCounts) error {
	seen := map[string]bool{}
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == src {
			return fs.SkipAll
		}
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(src, p)
		if err != nil || !keep(rel) {
			return err
		}
		seen[rel] = true
		c.Objects++
		body, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if conv != nil {
			if body, err = conv(body); err != nil {
				return fmt.Errorf("%s: %w", rel, err)
			}
		}
		target := filepath.Join(dst, rel)
		if have, err := os.ReadFile(target); err == nil && bytes.Equal(have, body) {
			return nil
		}
		if err := writeDurably(target, body); err != nil {
			return err
		}
		c.Written++
		c.Bytes += int64(len(body))
		return nil
	})
	if err != nil {
		return err
	}
	return filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == dst {
			return fs.SkipAll
		}
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(dst, p)
		if err != nil || !keep(rel) || seen[rel] {
			return err
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		c.Removed++
		return nil
	})
}

// writeDurably writes body to file through a synced temporary file renamed
// into place, and syncs the directory, so the file is whole and durable.
func writeDurably(file string, body []byte) error {
	dir := filepath.Dir(file)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(file)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename, nothing is there
	if _, err := f.Write(body); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, file); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
