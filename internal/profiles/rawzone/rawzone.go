// Package rawzone implements profiles.RawZone, a tenant's immutable raw
// zone: Local on the embedded default's disk, S3 in AWS mode. The
// contract suite both pass is in rawzone/rawzonetest.
//
// # Layout
//
// Every object is one Append: gzip-compressed newline-delimited JSON,
// under its tenant's location (profiles.RawZoneLocation), at
//
//	<prefix>events/dt=YYYY-MM-DD/hh=HH/<time>-<random>.ndjson.gz
//
// where the partition and <time> are Append's at in UTC (<time> as
// 20060102T150405.000000000Z) and <random> is 16 characters (ids.Random) of
// crypto/rand, so that keys never collide and sort by time within an hour.
// The key Append returns, and that Rewrite, Read and List take and give,
// is that whole path: the S3 object key, or locally the file's path
// relative to the bucket directory.
//
// # Keys and tenants
//
// Each call finds the tenant's location with the adapter's Locate and only
// ever touches keys under <prefix>events/ there, so two tenants sharing a
// pool bucket under different prefixes never see or change each other's
// objects: a key outside the tenant's raw zone is ErrNotFound, as if it
// did not exist. Keys must also be clean slash-separated paths whose
// segments do not start with "." (locally, temporary files do).
//
// # Erasure
//
// Rewrite is how erasure removes lines. It is idempotent: an object that
// is already gone (an earlier Rewrite emptied it) is rewritten with 0
// lines removed and no error, so an erasure that failed halfway can run
// again.
package rawzone

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/cairn-cdp/cairn/internal/ids"
	"github.com/cairn-cdp/cairn/internal/profiles"
)

// Sentinel errors of Local and S3.
var (
	// ErrNotFound is returned by Read for an object that does not exist,
	// and by Read and Rewrite for a key that is not in the tenant's raw
	// zone.
	ErrNotFound = errors.New("raw zone object not found")
	// ErrConflict is returned by S3.Rewrite when the object kept changing
	// under it (concurrent rewrites) for every one of its attempts.
	ErrConflict = errors.New("raw zone object changed concurrently")
)

// eventsDir is the directory of events under a location's prefix.
const eventsDir = "events/"

// ContentType is the media type of raw-zone objects; S3 stores it with
// Content-Encoding gzip.
const ContentType = "application/x-ndjson"

// newKey returns a new object key under prefix for events received at at.
func newKey(prefix string, at time.Time) string {
	at = at.UTC()
	random := ids.Random(10)
	return prefix + eventsDir +
		"dt=" + at.Format("2006-01-02") + "/hh=" + at.Format("15") + "/" +
		at.Format("20060102T150405.000000000") + "Z-" + random + ".ndjson.gz"
}

// checkLocation rejects locations that could name something other than a
// bucket and a prefix in it: an empty or path-like Region or Bucket, a
// Prefix that is not "" or a clean relative path ending in "/".
func checkLocation(loc profiles.RawZoneLocation) error {
	for what, name := range map[string]string{"region": loc.Region, "bucket": loc.Bucket} {
		if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) {
			return fmt.Errorf("bad %s %q in raw zone location", what, name)
		}
	}
	if loc.Prefix == "" {
		return nil
	}
	if !strings.HasSuffix(loc.Prefix, "/") || !cleanPath(strings.TrimSuffix(loc.Prefix, "/")) {
		return fmt.Errorf("bad prefix %q in raw zone location: want \"\" or a clean relative path ending in /", loc.Prefix)
	}
	return nil
}

// cleanPath reports whether p is a non-empty, clean, relative
// slash-separated path with no segment starting with "." and no
// backslash.
func cleanPath(p string) bool {
	if p == "" || path.Clean(p) != p || strings.HasPrefix(p, "/") || strings.Contains(p, `\`) {
		return false
	}
	for seg := range strings.SplitSeq(p, "/") {
		if strings.HasPrefix(seg, ".") {
			return false
		}
	}
	return true
}

// inZone reports whether key names an object of the raw zone at loc.
func inZone(loc profiles.RawZoneLocation, key string) bool {
	return strings.HasPrefix(key, loc.Prefix+eventsDir) && cleanPath(key)
}

// errNotInZone is the error for a key outside the tenant's raw zone.
func errNotInZone(tenantID, key string) error {
	return fmt.Errorf("key %q is not in tenant %s's raw zone: %w", key, tenantID, ErrNotFound)
}

// gzipWriters keeps compressors for reuse: each holds about 1 MB of state.
// A sync.Pool would drop them at every other garbage collection, which
// under ingestion comes several times a second. The raw zone favours
// ingestion speed over the last bytes of compression.
var gzipWriters = make(chan *gzip.Writer, 4)

func getGzipWriter() *gzip.Writer {
	select {
	case zw := <-gzipWriters:
		return zw
	default:
		zw, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed) // a valid level
		return zw
	}
}

func putGzipWriter(zw *gzip.Writer) {
	select {
	case gzipWriters <- zw:
	default: // enough kept
	}
}

// encode returns lines as gzip-compressed NDJSON. Each line must be
// non-empty and hold no newline, or the object could not be split back
// into the same lines; there must be at least one.
func encode(lines [][]byte) ([]byte, error) {
	if len(lines) == 0 {
		return nil, errors.New("no lines")
	}
	var buf bytes.Buffer
	zw := getGzipWriter()
	defer putGzipWriter(zw)
	zw.Reset(&buf)
	for i, line := range lines {
		if len(line) == 0 || bytes.IndexByte(line, '\n') >= 0 {
			return nil, fmt.Errorf("line %d is empty or holds a newline", i)
		}
		_, _ = zw.Write(line) // writes to a bytes.Buffer do not fail
		_, _ = zw.Write([]byte{'\n'})
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decode returns the lines of a gzip-compressed NDJSON object, skipping
// empty ones. It reads concatenated gzip members as one stream.
func decode(r io.Reader) ([][]byte, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("gunzip: %w", err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("gunzip: %w", err)
	}
	var lines [][]byte
	for line := range bytes.SplitSeq(data, []byte{'\n'}) {
		if len(line) > 0 {
			lines = append(lines, line)
		}
	}
	return lines, nil
}

// filter returns the lines keep is true for.
func filter(lines [][]byte, keep func([]byte) bool) [][]byte {
	var kept [][]byte
	for _, line := range lines {
		if keep(line) {
			kept = append(kept, line)
		}
	}
	return kept
}

// keyLocks serialises Rewrites of one object within a process, so that
// they queue up instead of each writing the object filtered by its own
// keep only (Local) or racing each other's conditional puts (S3). The
// zero value is ready to use; it is safe for concurrent use.
type keyLocks struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	ch   chan struct{} // holds a token while locked
	refs int           // holders and waiters
}

// lock locks name, waiting until it is free or ctx is done, and returns
// the function that unlocks it.
func (k *keyLocks) lock(ctx context.Context, name string) (unlock func(), err error) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = make(map[string]*keyLock)
	}
	l := k.locks[name]
	if l == nil {
		l = &keyLock{ch: make(chan struct{}, 1)}
		k.locks[name] = l
	}
	l.refs++
	k.mu.Unlock()

	release := func() {
		k.mu.Lock()
		defer k.mu.Unlock()
		if l.refs--; l.refs == 0 {
			delete(k.locks, name)
		}
	}
	select {
	case l.ch <- struct{}{}:
		return func() { <-l.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}
