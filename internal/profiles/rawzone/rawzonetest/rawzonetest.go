// Package rawzonetest is the contract suite of profiles.RawZone: one set
// of tests that every adapter (rawzone.Local, rawzone.S3) must pass.
// Adapters call Run from their own tests.
//
// Every test makes buckets of its own and runs in parallel with the
// others.
package rawzonetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-cdp/cairn/internal/profiles"
	"github.com/cairn-cdp/cairn/internal/profiles/rawzone"
)

// Harness tells Run how to get raw zones and buckets for one adapter.
type Harness struct {
	// NewBucket makes a new, empty bucket of the test's own and returns
	// its Region and name (Prefix empty).
	NewBucket func(t *testing.T) profiles.RawZoneLocation
	// New returns a raw zone that finds tenants' raw zones with locate.
	New func(t *testing.T, locate func(ctx context.Context, tenantID string) (profiles.RawZoneLocation, error)) profiles.RawZone
	// Versions returns the lines of every stored version of the object at
	// key in loc, current or not, in any order: what a reader with access
	// to the bucket itself could still read. Nil when there is none.
	Versions func(t *testing.T, loc profiles.RawZoneLocation, key string) [][][]byte
}

// Tenants of the suite: two in one pool bucket, the first one's ID a
// prefix of the second's, so that a prefix compared without its trailing
// slash would leak; and one with a bucket of its own.
const (
	pooledA   = "ten_a"
	pooledAB  = "ten_ab"
	dedicated = "ten_dedicated"
)

// zones makes the suite's buckets and returns a raw zone that locates the
// suite's tenants in them, and their locations.
func zones(t *testing.T, h Harness) (profiles.RawZone, map[string]profiles.RawZoneLocation) {
	t.Helper()
	pool, own := h.NewBucket(t), h.NewBucket(t)
	locs := map[string]profiles.RawZoneLocation{
		pooledA:   {Region: pool.Region, Bucket: pool.Bucket, Prefix: "tenants/" + pooledA + "/"},
		pooledAB:  {Region: pool.Region, Bucket: pool.Bucket, Prefix: "tenants/" + pooledAB + "/"},
		dedicated: {Region: own.Region, Bucket: own.Bucket},
	}
	z := h.New(t, func(_ context.Context, tenantID string) (profiles.RawZoneLocation, error) {
		loc, ok := locs[tenantID]
		if !ok {
			return profiles.RawZoneLocation{}, fmt.Errorf("no tenant %s", tenantID)
		}
		return loc, nil
	})
	return z, locs
}

// Run runs the contract suite against the adapter h makes.
func Run(t *testing.T, h Harness) {
	tests := []struct {
		name string
		fn   func(*testing.T, Harness)
	}{
		{"AppendRead", testAppendRead},
		{"Partition", testPartition},
		{"AppendRefusesBadLines", testAppendRefusesBadLines},
		{"TenantIsolation", testTenantIsolation},
		{"Rewrite", testRewrite},
		{"RewriteEmptyDeletes", testRewriteEmptyDeletes},
		{"RewriteLeavesNoVersion", testRewriteLeavesNoVersion},
		{"ConcurrentRewrites", testConcurrentRewrites},
		{"LocateError", testLocateError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, h)
		})
	}
}

// at is the receive time of the suite's appends.
var at = time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.UTC)

// event returns an NDJSON line for message id.
func event(id string) []byte {
	return fmt.Appendf(nil, `{"messageId":%q,"type":"track","event":"Order Completed","properties":{"note":"a\nb \u00e9 \"q\""}}`, id)
}

// events returns n lines with message IDs <prefix>-0 ... <prefix>-(n-1).
func events(prefix string, n int) [][]byte {
	lines := make([][]byte, n)
	for i := range lines {
		lines[i] = event(fmt.Sprintf("%s-%d", prefix, i))
	}
	return lines
}

func appendLines(t *testing.T, z profiles.RawZone, tenantID string, at time.Time, lines [][]byte) string {
	t.Helper()
	key, err := z.Append(t.Context(), tenantID, at, lines)
	if err != nil {
		t.Fatalf("append for %s: %v", tenantID, err)
	}
	return key
}

func read(t *testing.T, z profiles.RawZone, tenantID, key string) [][]byte {
	t.Helper()
	lines, err := z.Read(t.Context(), tenantID, key)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return lines
}

func list(t *testing.T, z profiles.RawZone, tenantID string) []string {
	t.Helper()
	keys, err := z.List(t.Context(), tenantID)
	if err != nil {
		t.Fatalf("list for %s: %v", tenantID, err)
	}
	return keys
}

func rewrite(t *testing.T, z profiles.RawZone, tenantID, key string, keep func([]byte) bool) int {
	t.Helper()
	n, err := z.Rewrite(t.Context(), tenantID, key, keep)
	if err != nil {
		t.Fatalf("rewrite %s: %v", key, err)
	}
	return n
}

// dropping returns a keep function that drops the lines of the given
// message IDs.
func dropping(ids ...string) func([]byte) bool {
	return func(line []byte) bool {
		for _, id := range ids {
			if bytes.Contains(line, fmt.Appendf(nil, `"messageId":%q`, id)) {
				return false
			}
		}
		return true
	}
}

// keyPattern is a key's shape below the prefix.
var keyPattern = regexp.MustCompile(`^events/dt=(\d{4}-\d{2}-\d{2})/hh=(\d{2})/\d{8}T\d{6}\.\d{9}Z-[a-z2-7]{16}\.ndjson\.gz$`)

func testAppendRead(t *testing.T, h Harness) {
	z, locs := zones(t, h)
	for tenantID, loc := range locs {
		lines := events(tenantID, 5)
		lines = append(lines, []byte(`{"messageId":"last"}`), []byte(`  {"spaced": true}  `))
		key := appendLines(t, z, tenantID, at, lines)
		rest, ok := strings.CutPrefix(key, loc.Prefix)
		if !ok || !keyPattern.MatchString(rest) {
			t.Errorf("%s: key %q, want %q and %s", tenantID, key, loc.Prefix, keyPattern)
		}
		if diff := cmp.Diff(lines, read(t, z, tenantID, key)); diff != "" {
			t.Errorf("%s: read back (-appended +read):\n%s", tenantID, diff)
		}
		// One more object: each Append is an object of its own, even at the
		// same instant.
		second := appendLines(t, z, tenantID, at, [][]byte{event("second")})
		if second == key {
			t.Errorf("%s: two appends got one key %q", tenantID, key)
		}
		want := []string{key, second}
		slices.Sort(want)
		got := list(t, z, tenantID)
		slices.Sort(got)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: list (-want +got):\n%s", tenantID, diff)
		}
	}
	if _, err := z.Read(t.Context(), pooledA, "tenants/"+pooledA+"/events/dt=2025-03-04/hh=05/absent.ndjson.gz"); !errors.Is(err, rawzone.ErrNotFound) {
		t.Errorf("read of an absent object = %v, want ErrNotFound", err)
	}
}

func testPartition(t *testing.T, h Harness) {
	z, locs := zones(t, h)
	loc := locs[pooledA]
	for _, tt := range []struct {
		at     time.Time
		dt, hh string
	}{
		{at, "2025-03-04", "05"},
		{time.Date(2025, 12, 31, 23, 59, 59, 999999999, time.UTC), "2025-12-31", "23"},
		{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), "2026-01-01", "00"},
		// Partitions are UTC, whatever at's zone.
		{time.Date(2025, 3, 5, 1, 30, 0, 0, time.FixedZone("UTC+2", 2*3600)), "2025-03-04", "23"},
		{time.Date(2025, 3, 4, 22, 0, 0, 0, time.FixedZone("UTC-5", -5*3600)), "2025-03-05", "03"},
	} {
		key := appendLines(t, z, pooledA, tt.at, [][]byte{event("p")})
		m := keyPattern.FindStringSubmatch(strings.TrimPrefix(key, loc.Prefix))
		if m == nil || m[1] != tt.dt || m[2] != tt.hh {
			t.Errorf("append at %s: key %q, want dt=%s/hh=%s", tt.at, key, tt.dt, tt.hh)
		}
		if !strings.HasPrefix(key, loc.Prefix+"events/dt="+tt.dt+"/hh="+tt.hh+"/"+tt.at.UTC().Format("20060102T150405")) {
			t.Errorf("append at %s: key %q does not start with the partition and the time", tt.at, key)
		}
	}
}

func testAppendRefusesBadLines(t *testing.T, h Harness) {
	z, _ := zones(t, h)
	for name, lines := range map[string][][]byte{
		"no lines":     nil,
		"empty line":   {event("a"), {}},
		"newline":      {[]byte("{\"a\":1}\n{\"b\":2}")},
		"trailing eol": {[]byte("{\"a\":1}\n")},
	} {
		if key, err := z.Append(t.Context(), pooledA, at, lines); err == nil {
			t.Errorf("append of %s = %q, want an error", name, key)
		}
	}
	if keys := list(t, z, pooledA); len(keys) != 0 {
		t.Errorf("refused appends left objects %q", keys)
	}
}

func testTenantIsolation(t *testing.T, h Harness) {
	z, locs := zones(t, h)
	keys := map[string][]string{}
	for _, tenantID := range []string{pooledA, pooledAB, dedicated, pooledA, pooledAB} {
		keys[tenantID] = append(keys[tenantID], appendLines(t, z, tenantID, at, events(tenantID, 3)))
	}
	for tenantID, want := range keys {
		slices.Sort(want)
		got := list(t, z, tenantID)
		slices.Sort(got)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("list for %s (-want +got):\n%s", tenantID, diff)
		}
	}
	// Another tenant's key is not in the tenant's raw zone, even in the
	// same bucket, whatever the tenant tries.
	theirs := keys[pooledAB][0]
	for _, key := range []string{
		theirs,
		"tenants/" + pooledA + "/../" + pooledAB + "/" + strings.TrimPrefix(theirs, locs[pooledAB].Prefix),
		"tenants/" + pooledA + "/events/../../" + pooledAB + "/" + strings.TrimPrefix(theirs, locs[pooledAB].Prefix),
		strings.TrimPrefix(theirs, locs[pooledAB].Prefix), // the dedicated layout
		"/" + theirs,
		"",
	} {
		if _, err := z.Read(t.Context(), pooledA, key); !errors.Is(err, rawzone.ErrNotFound) {
			t.Errorf("read of %q by %s = %v, want ErrNotFound", key, pooledA, err)
		}
		if n, err := z.Rewrite(t.Context(), pooledA, key, func([]byte) bool { return false }); !errors.Is(err, rawzone.ErrNotFound) {
			t.Errorf("rewrite of %q by %s = %d, %v; want ErrNotFound", key, pooledA, n, err)
		}
	}
	if got := read(t, z, pooledAB, theirs); len(got) != 3 {
		t.Errorf("the other tenant's object has %d lines after the attempts, want 3", len(got))
	}
}

func testRewrite(t *testing.T, h Harness) {
	z, _ := zones(t, h)
	for _, tenantID := range []string{pooledA, dedicated} {
		lines := events(tenantID, 6)
		key := appendLines(t, z, tenantID, at, lines)

		if n := rewrite(t, z, tenantID, key, func([]byte) bool { return true }); n != 0 {
			t.Errorf("%s: rewrite keeping all = %d, want 0", tenantID, n)
		}
		if diff := cmp.Diff(lines, read(t, z, tenantID, key)); diff != "" {
			t.Errorf("%s: after rewrite keeping all (-want +got):\n%s", tenantID, diff)
		}

		n := rewrite(t, z, tenantID, key, dropping(tenantID+"-1", tenantID+"-4", "absent"))
		if n != 2 {
			t.Errorf("%s: rewrite = %d removed, want 2", tenantID, n)
		}
		want := [][]byte{lines[0], lines[2], lines[3], lines[5]}
		if diff := cmp.Diff(want, read(t, z, tenantID, key)); diff != "" {
			t.Errorf("%s: after rewrite (-want +got):\n%s", tenantID, diff)
		}
		if got := list(t, z, tenantID); !slices.Equal(got, []string{key}) {
			t.Errorf("%s: list after rewrite = %q, want just %q", tenantID, got, key)
		}
		// keep sees each line as stored.
		var seen [][]byte
		rewrite(t, z, tenantID, key, func(line []byte) bool {
			seen = append(seen, bytes.Clone(line))
			return true
		})
		if diff := cmp.Diff(want, seen); diff != "" {
			t.Errorf("%s: keep saw (-want +got):\n%s", tenantID, diff)
		}
	}
}

func testRewriteEmptyDeletes(t *testing.T, h Harness) {
	z, locs := zones(t, h)
	for _, tenantID := range []string{pooledA, dedicated} {
		key := appendLines(t, z, tenantID, at, events(tenantID, 3))
		other := appendLines(t, z, tenantID, at, events("other", 2))

		if n := rewrite(t, z, tenantID, key, dropping(tenantID+"-0", tenantID+"-1", tenantID+"-2")); n != 3 {
			t.Errorf("%s: rewrite dropping every line = %d, want 3", tenantID, n)
		}
		if _, err := z.Read(t.Context(), tenantID, key); !errors.Is(err, rawzone.ErrNotFound) {
			t.Errorf("%s: read of an emptied object = %v, want ErrNotFound", tenantID, err)
		}
		if got := list(t, z, tenantID); !slices.Equal(got, []string{other}) {
			t.Errorf("%s: list after emptying = %q, want just %q", tenantID, got, other)
		}
		if v := h.Versions(t, locs[tenantID], key); len(v) != 0 {
			t.Errorf("%s: %d versions of the emptied object left, want none", tenantID, len(v))
		}
		// Rewriting it again, as an erasure run again would, is a no-op.
		if n := rewrite(t, z, tenantID, key, func([]byte) bool { return false }); n != 0 {
			t.Errorf("%s: rewrite of an erased object = %d, want 0", tenantID, n)
		}
		if got := read(t, z, tenantID, other); len(got) != 2 {
			t.Errorf("%s: the other object has %d lines, want 2", tenantID, len(got))
		}
	}
}

func testRewriteLeavesNoVersion(t *testing.T, h Harness) {
	z, locs := zones(t, h)
	for _, tenantID := range []string{pooledA, dedicated} {
		lines := events(tenantID, 4)
		key := appendLines(t, z, tenantID, at, lines)
		dropped := []string{tenantID + "-2", tenantID + "-0"}
		for _, id := range dropped {
			if n := rewrite(t, z, tenantID, key, dropping(id)); n != 1 {
				t.Errorf("%s: rewrite dropping %s = %d, want 1", tenantID, id, n)
			}
		}
		versions := h.Versions(t, locs[tenantID], key)
		if len(versions) == 0 {
			t.Fatalf("%s: no version of the rewritten object", tenantID)
		}
		for i, v := range versions {
			for _, line := range v {
				if !dropping(dropped...)(line) {
					t.Errorf("%s: version %d of %d still holds dropped line %s", tenantID, i+1, len(versions), line)
				}
			}
		}
		want := [][]byte{lines[1], lines[3]}
		if diff := cmp.Diff([][][]byte{want}, versions); diff != "" {
			t.Errorf("%s: versions (-want +got):\n%s", tenantID, diff)
		}
	}
}

func testConcurrentRewrites(t *testing.T, h Harness) {
	z, locs := zones(t, h)
	const n = 6
	lines := events("c", n+2)
	key := appendLines(t, z, pooledA, at, lines)
	var wg sync.WaitGroup
	removed := make([]int, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			removed[i], errs[i] = z.Rewrite(t.Context(), pooledA, key, dropping(fmt.Sprintf("c-%d", i)))
		})
	}
	wg.Wait()
	total := 0
	for i, err := range errs {
		if err != nil {
			t.Errorf("rewrite %d: %v", i, err)
		}
		total += removed[i]
	}
	if total != n {
		t.Errorf("concurrent rewrites removed %d lines in all, want %d", total, n)
	}
	want := lines[n:]
	if diff := cmp.Diff(want, read(t, z, pooledA, key)); diff != "" {
		t.Errorf("after concurrent rewrites (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([][][]byte{want}, h.Versions(t, locs[pooledA], key)); diff != "" {
		t.Errorf("versions after concurrent rewrites (-want +got):\n%s", diff)
	}
}

func testLocateError(t *testing.T, h Harness) {
	z, _ := zones(t, h)
	if _, err := z.Append(t.Context(), "ten_unknown", at, events("x", 1)); err == nil {
		t.Error("append for a tenant Locate fails on succeeded")
	}
	if _, err := z.List(t.Context(), "ten_unknown"); err == nil {
		t.Error("list for a tenant Locate fails on succeeded")
	}

	// A location that is not a bucket and a prefix is refused.
	bucket := h.NewBucket(t)
	for _, loc := range []profiles.RawZoneLocation{
		{Region: bucket.Region, Bucket: bucket.Bucket, Prefix: "tenants/x"},
		{Region: bucket.Region, Bucket: bucket.Bucket, Prefix: "../x/"},
		{Region: bucket.Region, Bucket: bucket.Bucket, Prefix: "/x/"},
		{Region: bucket.Region, Bucket: "a/b"},
		{Region: "", Bucket: bucket.Bucket},
	} {
		bad := h.New(t, func(context.Context, string) (profiles.RawZoneLocation, error) { return loc, nil })
		if key, err := bad.Append(t.Context(), "ten_x", at, events("x", 1)); err == nil {
			t.Errorf("append at %+v = %q, want an error", loc, key)
		}
	}
}
