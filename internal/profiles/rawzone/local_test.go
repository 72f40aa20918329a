package rawzone_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-cdp/cairn/internal/profiles"
	"github.com/cairn-cdp/cairn/internal/profiles/rawzone"
	"github.com/cairn-cdp/cairn/internal/profiles/rawzone/rawzonetest"
	"github.com/cairn-cdp/cairn/internal/provisioner"
	"github.com/cairn-cdp/cairn/templates"
)

func TestLocalContract(t *testing.T) {
	rawzonetest.Run(t, localHarness(t.TempDir(), func(z *rawzone.Local) profiles.RawZone { return z }))
}

// localHarness runs the contract on local zones under root, each wrapped
// by wrap.
func localHarness(root string, wrap func(*rawzone.Local) profiles.RawZone) rawzonetest.Harness {
	return rawzonetest.Harness{
		NewBucket: func(t *testing.T) profiles.RawZoneLocation {
			loc := profiles.RawZoneLocation{Region: "eu-west-1", Bucket: "cairn-test-" + strings.ToLower(rand.Text()[:8]) + "-raw"}
			if err := os.MkdirAll(bucketDir(root, loc), 0o700); err != nil {
				t.Fatal(err)
			}
			return loc
		},
		New: func(_ *testing.T, locate func(context.Context, string) (profiles.RawZoneLocation, error)) profiles.RawZone {
			return wrap(&rawzone.Local{Root: root, Locate: locate})
		},
		Versions: localVersions(root),
	}
}

// localVersions returns the versions of a local object: a file has one,
// the file itself.
func localVersions(root string) func(t *testing.T, loc profiles.RawZoneLocation, key string) [][][]byte {
	return func(t *testing.T, loc profiles.RawZoneLocation, key string) [][][]byte {
		lines, err := readFile(filepath.Join(bucketDir(root, loc), filepath.FromSlash(key)))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		return [][][]byte{lines}
	}
}

// TestLocalEngineLayout appends into the raw bucket the local provisioning
// engine made for a pool, where the engine's DeletePrefix (offboarding a
// pooled tenant) then finds the tenant's objects.
func TestLocalEngineLayout(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	const region = "eu-west-1"
	engine := &provisioner.LocalEngine{Root: root}
	stack := provisioner.StackPrefix + "pool-test"
	if err := engine.CreateStack(ctx, provisioner.CreateStackInput{
		Region: region, Name: stack, Template: templates.Pool(), Parameters: map[string]string{"PoolId": "test"},
	}); err != nil {
		t.Fatal(err)
	}
	stacks, err := engine.Stacks(ctx, region)
	if err != nil {
		t.Fatal(err)
	}
	loc := profiles.RawZoneLocation{Region: region, Bucket: stacks[stack].Outputs["RawBucket"], Prefix: "tenants/ten_x/"}
	z := &rawzone.Local{Root: root, Locate: func(context.Context, string) (profiles.RawZoneLocation, error) { return loc, nil }}

	lines := [][]byte{[]byte(`{"messageId":"m1"}`), []byte(`{"messageId":"m2"}`)}
	at := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	key, err := z.Append(ctx, "ten_x", at, lines)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(root, region, "buckets", loc.Bucket, "tenants", "ten_x", "events", "dt=2025-03-04", "hh=05", filepath.Base(key))
	got, err := readFile(file)
	if err != nil {
		t.Fatalf("object file: %v", err)
	}
	if diff := cmp.Diff(lines, got); diff != "" {
		t.Errorf("file content (-appended +file):\n%s", diff)
	}
	if n, err := z.Rewrite(ctx, "ten_x", key, func(l []byte) bool { return !bytes.Contains(l, []byte("m1")) }); err != nil || n != 1 {
		t.Fatalf("rewrite = %d, %v; want 1", n, err)
	}
	// Neither write left a temporary file behind.
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), ".tmp") {
			t.Errorf("temporary file left: %s", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	if err := engine.DeletePrefix(ctx, region, loc.Bucket, loc.Prefix); err != nil {
		t.Fatal(err)
	}
	if keys, err := z.List(ctx, "ten_x"); err != nil || len(keys) != 0 {
		t.Errorf("list after DeletePrefix = %q, %v; want none", keys, err)
	}
}

// TestLocalNoBucket: the bucket directory is the engine's to make; without
// it Local neither writes nor lists, as S3 would answer NoSuchBucket.
func TestLocalNoBucket(t *testing.T) {
	root := t.TempDir()
	z := &rawzone.Local{Root: root, Locate: func(context.Context, string) (profiles.RawZoneLocation, error) {
		return profiles.RawZoneLocation{Region: "eu-west-1", Bucket: "absent"}, nil
	}}
	if key, err := z.Append(t.Context(), "ten_x", time.Now(), [][]byte{[]byte(`{}`)}); err == nil {
		t.Errorf("append into an absent bucket = %q, want an error", key)
	}
	if keys, err := z.List(t.Context(), "ten_x"); err == nil {
		t.Errorf("list of an absent bucket = %q, want an error", keys)
	}
	if _, err := os.Stat(filepath.Join(root, "eu-west-1")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the refused append made directories: %v", err)
	}
	var unset rawzone.Local
	if _, err := unset.List(t.Context(), "ten_x"); err == nil {
		t.Error("list on a Local without Root and Locate succeeded")
	}
}

func bucketDir(root string, loc profiles.RawZoneLocation) string {
	return filepath.Join(root, loc.Region, "buckets", loc.Bucket)
}

// readFile returns the lines of a gzip NDJSON file.
func readFile(file string) ([][]byte, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return gunzipLines(data)
}

// gunzipLines returns the lines of gzip NDJSON.
func gunzipLines(data []byte) ([][]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		return nil, err
	}
	return splitLines(plain), nil
}

// splitLines splits NDJSON into its lines, which must each end in a
// newline.
func splitLines(data []byte) [][]byte {
	if len(data) == 0 {
		return nil
	}
	if !bytes.HasSuffix(data, []byte{'\n'}) {
		return [][]byte{[]byte("<no final newline>")}
	}
	return bytes.Split(bytes.TrimSuffix(data, []byte{'\n'}), []byte{'\n'})
}
