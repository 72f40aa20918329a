package main

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDataFilesArePrivate runs the server on a fresh data directory under
// umask 022, uses every store that writes there (control-plane database,
// key-encryption key, replica lock, profile store, local zones with a raw-zone object, the local
// catalog with a grant), stops it, and finds every file mode 0600 and
// every directory 0700: the SQLite databases and their -wal and -shm files
// included, which SQLite creates with the mode of the database file.
//
// Not parallel: the umask is the process's.
func TestDataFilesArePrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)

	dir := filepath.Join(t.TempDir(), "data")
	admin, err := runToken(t, "--admin", "--data-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	url, done := startServer(t, ctx, map[string]string{"CAIRN_DATA_DIR": dir})
	status, tenant := call(t, "POST", url+"/v1/tenants", admin, `{"name":"Files","slug":"files-co","tier":"dedicated","home_region":"eu-west-1"}`)
	if status != http.StatusAccepted {
		t.Fatalf("onboard: %d %v", status, tenant)
	}
	id := tenant["id"].(string)
	awaitTenants(t, url, admin, []string{id}, "active", 30*time.Second)
	base := url + "/v1/tenants/" + id
	status, src := call(t, "POST", base+"/sources", admin, `{"name":"web"}`)
	if status != http.StatusCreated {
		t.Fatalf("source: %d %v", status, src)
	}
	req, _ := http.NewRequest("POST", url+"/v1/identify", strings.NewReader(`{"userId":"u1","traits":{"plan":"gold"}}`))
	req.SetBasicAuth(src["write_key"].(string), "")
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("identify: %v %v", res, err)
	}
	res.Body.Close()
	const principal = "arn:aws:iam::123456789012:role/files"
	if status, body := call(t, "POST", base+"/principals", admin, `{"principal":"`+principal+`"}`); status != http.StatusCreated {
		t.Fatalf("principal: %d %v", status, body)
	}
	_, stacks := call(t, "GET", base+"/stacks", admin, "")
	glue := outputsOf(listItems(stacks)[0])["glue_database"]
	status, grant := call(t, "POST", base+"/grants", admin, `{"principal":"`+principal+`","resource":{"region":"eu-west-1","database":"`+glue+`"},"permissions":["SELECT"]}`)
	if status != http.StatusAccepted {
		t.Fatalf("grant: %d %v", status, grant)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(30 * time.Second); grant["status"] != "active"; <-tick.C {
		if time.Now().After(deadline) {
			t.Fatalf("grant is %v", grant["status"])
		}
		_, grant = call(t, "GET", base+"/grants/"+grant["id"].(string), admin, "")
	}
	// While it runs (the -wal and -shm files exist) and after it stopped.
	checkPrivate(t, dir, "cairn.db", "cairn.db-wal", "cairn.db-shm", "profiles.db", "profiles.db-wal", "key-encryption-key", "replica.lock", "zones", ".gz")
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	checkPrivate(t, dir, "cairn.db", "profiles.db", "key-encryption-key", "replica.lock", "zones", ".gz")
}

// checkPrivate fails the test unless every file under dir is mode 0600 and
// every directory 0700, and the walk saw each of names (file names,
// or extensions with their dot).
func checkPrivate(t *testing.T, dir string, names ...string) {
	t.Helper()
	seen := map[string]bool{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // a temporary file of a running server, renamed meanwhile
		}
		if err != nil {
			return err
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700 | fs.ModeDir
		}
		if info.Mode() != want {
			t.Errorf("%s: mode %v, want %v", rel, info.Mode(), want)
		}
		seen[filepath.Ext(path)] = true
		seen[d.Name()] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if !seen[name] {
			t.Errorf("no %s in the data directory: the test no longer sees it", name)
		}
	}
}
