package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/sealed"
	"github.com/cairn-cdp/cairn/internal/webhooks"
)

// hookReceiver records the webhook requests it gets and answers 200.
type hookReceiver struct {
	srv *httptest.Server
	got chan *http.Request
}

func newHookReceiver(t *testing.T) *hookReceiver {
	r := &hookReceiver{got: make(chan *http.Request, 100)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
		select {
		case r.got <- req:
		default:
		}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// awaitSigned waits for a request of the event type and checks that every
// secret signed it.
func (r *hookReceiver) awaitSigned(t *testing.T, typ string, secrets ...string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case req := <-r.got:
			body, _ := io.ReadAll(req.Body)
			if !bytes.Contains(body, []byte(`"`+typ+`"`)) {
				continue
			}
			for _, s := range secrets {
				if err := webhooks.Verify(s, req.Header, body, time.Now(), time.Minute); err != nil {
					t.Errorf("%s not signed by a secret the API showed: %v", typ, err)
				}
			}
			return
		case <-deadline:
			t.Fatalf("no %s delivery in 30s", typ)
		}
	}
}

// webhookVars lets the server deliver to the test's receivers on loopback.
func webhookVars(dir string) map[string]string {
	return map[string]string{"CAIRN_DATA_DIR": dir, "CAIRN_WEBHOOK_ALLOW_HTTP": "true", "CAIRN_WEBHOOK_ALLOW_CIDRS": "127.0.0.0/8"}
}

// embedded is a real server on a fresh embedded data directory, with an
// admin token and one active pooled tenant.
type embedded struct {
	dir, admin, base, tenantID string
	stop                       context.CancelFunc
	done                       <-chan error
}

func startEmbedded(t *testing.T, slug string) embedded {
	t.Helper()
	e := embedded{dir: filepath.Join(t.TempDir(), "data")}
	var err error
	if e.admin, err = runToken(t, "--admin", "--data-dir", e.dir); err != nil {
		t.Fatal(err)
	}
	var ctx context.Context
	ctx, e.stop = context.WithCancel(context.Background())
	e.base, e.done = startServer(t, ctx, webhookVars(e.dir))
	status, tenant := call(t, "POST", e.base+"/v1/tenants", e.admin, `{"name":"`+slug+`","slug":"`+slug+`","tier":"pooled","home_region":"eu-west-1"}`)
	if status != http.StatusAccepted {
		t.Fatalf("onboard: %d %v", status, tenant)
	}
	e.tenantID = tenant["id"].(string)
	awaitTenants(t, e.base, e.admin, []string{e.tenantID}, "active", 30*time.Second)
	return e
}

// shutdown stops the server and waits for it.
func (e embedded) shutdown(t *testing.T) {
	t.Helper()
	e.stop()
	if err := <-e.done; err != nil {
		t.Fatal(err)
	}
}

// TestNoSecretAtRest creates sources (one with an Idempotency-Key, replayed)
// and rotates one, creates a tenant and a fleet webhook endpoint (one
// replayed) and rotates a secret, sends events with the write keys, and
// then scans every file of the data directory, the SQLite -wal files
// included, while the server runs and after it stopped, and a backup of
// it: no write key and no webhook secret the API showed is there. A replay
// shows no secret either. Every file is mode 0600 and every directory 0700
// although the umask lets anything through.
//
// Not parallel: the umask is the process's.
func TestNoSecretAtRest(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)

	e := startEmbedded(t, "secret-co")
	dir, admin, base := e.dir, e.admin, e.base
	tenant := base + "/v1/tenants/" + e.tenantID
	var secrets []string

	idem := map[string]string{"Idempotency-Key": "src-once"}
	status, _, src := callHeader(t, "POST", tenant+"/sources", admin, `{"name":"web"}`, idem)
	if status != http.StatusCreated || src["write_key"] == nil {
		t.Fatalf("source: %d %v", status, src)
	}
	secrets = append(secrets, src["write_key"].(string))
	status, h, replay := callHeader(t, "POST", tenant+"/sources", admin, `{"name":"web"}`, idem)
	if status != http.StatusCreated || replay["id"] != src["id"] || replay["write_key"] != nil || h.Get("Cairn-Secret-Redacted") != "write_key" {
		t.Errorf("replayed source create: %d %v %v", status, h, replay)
	}
	status, other := call(t, "POST", tenant+"/sources", admin, `{"name":"app"}`)
	if status != http.StatusCreated {
		t.Fatalf("source: %d %v", status, other)
	}
	secrets = append(secrets, other["write_key"].(string))
	status, rotated := call(t, "POST", tenant+"/sources/"+other["id"].(string)+"/rotate", admin, "")
	if status != http.StatusOK {
		t.Fatalf("rotate: %d %v", status, rotated)
	}
	secrets = append(secrets, rotated["write_key"].(string))
	for _, key := range []string{secrets[0], secrets[2]} {
		// The browser form too: its body's writeKey must not reach the
		// raw zone.
		req, _ := http.NewRequest("POST", base+"/v1/t", strings.NewReader(`{"writeKey":"`+key+`","type":"track","event":"Seen","userId":"u1"}`))
		req.Header.Set("Content-Type", "text/plain")
		res, err := http.DefaultClient.Do(req)
		if err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("track: %v %v", res, err)
		}
		res.Body.Close()
	}

	rc := newHookReceiver(t)
	// segment.entered: no segment exists, so only the test events below
	// reach the receiver.
	hookBody := `{"url":"` + rc.srv.URL + `/hook","event_types":["segment.entered"]}`
	idem = map[string]string{"Idempotency-Key": "hook-once"}
	status, _, hook := callHeader(t, "POST", tenant+"/webhooks", admin, hookBody, idem)
	if status != http.StatusCreated || hook["secret"] == nil {
		t.Fatalf("webhook: %d %v", status, hook)
	}
	secrets = append(secrets, hook["secret"].(string))
	status, h, replay = callHeader(t, "POST", tenant+"/webhooks", admin, hookBody, idem)
	if status != http.StatusCreated || replay["id"] != hook["id"] || replay["secret"] != nil || h.Get("Cairn-Secret-Redacted") != "secret" {
		t.Errorf("replayed webhook create: %d %v %v", status, h, replay)
	}
	status, rot := call(t, "POST", tenant+"/webhooks/"+hook["id"].(string)+"/rotate-secret", admin, `{}`)
	if status != http.StatusOK || rot["secret"] == nil {
		t.Fatalf("rotate secret: %d %v", status, rot)
	}
	secrets = append(secrets, rot["secret"].(string))
	status, fleetHook := call(t, "POST", base+"/v1/webhooks", admin, `{"url":"`+rc.srv.URL+`/fleet","event_types":["tenant.suspended"]}`)
	if status != http.StatusCreated || fleetHook["secret"] == nil {
		t.Fatalf("fleet webhook: %d %v", status, fleetHook)
	}
	secrets = append(secrets, fleetHook["secret"].(string))
	// The endpoint signs with both secrets of its rotation, opened from
	// what is stored sealed.
	if status, _ := call(t, "POST", tenant+"/webhooks/"+hook["id"].(string)+"/test", admin, ""); status != http.StatusAccepted {
		t.Fatalf("test delivery: %d", status)
	}
	rc.awaitSigned(t, "webhook.test", secrets[3], secrets[4])

	// The token signing key lives in cairn.db, sealed: its private half
	// shows nowhere either.
	seed := serverKeys(t, map[string]string{"CAIRN_DATA_DIR": dir}).Signing.Seed()
	secrets = append(secrets, string(seed), base64.StdEncoding.EncodeToString(seed), base64.RawURLEncoding.EncodeToString(seed), hex.EncodeToString(seed))

	// While it runs (the -wal and -shm files exist), in a backup, and
	// after it stopped.
	checkNoSecret(t, dir, secrets)
	checkPrivate(t, dir, "cairn.db", "cairn.db-wal", "profiles.db", "profiles.db-wal", sealed.DefaultFile, dataLockFile, "zones", ".gz")
	backupDir := filepath.Join(t.TempDir(), "backup")
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"backup", "--data-dir", dir, backupDir}, env(nil), nil, &out, &errOut); err != nil {
		t.Fatalf("backup: %v %s", err, errOut.String())
	}
	checkNoSecret(t, backupDir, secrets)
	checkPrivate(t, backupDir, "cairn.db", "profiles.db", sealed.DefaultFile, backupManifestFile, ".gz")
	e.shutdown(t)
	checkNoSecret(t, dir, secrets)
	checkPrivate(t, dir, "cairn.db", "profiles.db", sealed.DefaultFile, "zones", ".gz")
}

// checkNoSecret fails the test if any file under dir holds any of the
// secrets, or the key of a whsec_ secret.
func checkNoSecret(t *testing.T, dir string, secrets []string) {
	t.Helper()
	var needles []string
	for _, s := range secrets {
		needles = append(needles, s, strings.TrimPrefix(s, webhooks.SecretPrefix))
	}
	files := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // a temporary file, renamed into place meanwhile
		}
		if err != nil {
			return err
		}
		files++
		for _, s := range needles {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds a secret the API showed once (%.12s...)", path, s)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 4 {
		t.Fatalf("scanned %d files in %s: the test no longer sees the data", files, dir)
	}
}

// TestBackupUnderLoad backs the embedded default up while events pour in,
// restores the backup into a new data directory and starts a server there:
// every event acknowledged before the backup began is served (its profile
// and its place in the profile's timeline), the tokens of the old server
// still work (the signing key came along), the write key still works, and
// the webhook endpoint still signs with the secret shown at its creation
// (the key-encryption key came along). Restores that would be unsafe are
// refused and change nothing.
func TestBackupUnderLoad(t *testing.T) {
	e := startEmbedded(t, "backup-co")
	dir, admin, base := e.dir, e.admin, e.base
	tenant := "/v1/tenants/" + e.tenantID
	status, src := call(t, "POST", base+tenant+"/sources", admin, `{"name":"web"}`)
	if status != http.StatusCreated {
		t.Fatalf("source: %d %v", status, src)
	}
	writeKey := src["write_key"].(string)
	rc := newHookReceiver(t)
	// segment.entered: no segment exists, so no delivery of the load
	// queues ahead of the test event after the restore.
	status, hook := call(t, "POST", base+tenant+"/webhooks", admin, `{"url":"`+rc.srv.URL+`/hook","event_types":["segment.entered"]}`)
	if status != http.StatusCreated {
		t.Fatalf("webhook: %d %v", status, hook)
	}

	// The load: workers send batches of identifies until told to stop;
	// acked holds the users of every acknowledged batch, in order.
	var (
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
	)
	load, stopLoad := context.WithCancel(context.Background())
	defer stopLoad()
	client := &http.Client{Timeout: 30 * time.Second}
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; load.Err() == nil; n++ {
				var users []string
				var events []string
				for i := range 5 {
					u := fmt.Sprintf("u-%d-%d-%d", w, n, i)
					users = append(users, u)
					events = append(events, `{"type":"identify","userId":"`+u+`","messageId":"m-`+u+`","traits":{"n":`+fmt.Sprint(n)+`}}`)
				}
				req, _ := http.NewRequest("POST", base+"/v1/batch", strings.NewReader(`{"batch":[`+strings.Join(events, ",")+`]}`))
				req.SetBasicAuth(writeKey, "")
				req.Header.Set("Content-Type", "application/json")
				res, err := client.Do(req)
				if err != nil {
					continue // the server is stopping
				}
				res.Body.Close()
				if res.StatusCode == http.StatusOK {
					mu.Lock()
					acked = append(acked, users...)
					mu.Unlock()
				}
			}
		}()
	}
	ackedNow := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), acked...)
	}
	for deadline := time.Now().Add(60 * time.Second); len(ackedNow()) < 200; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d events acknowledged in 60s, want 200", len(ackedNow()))
		}
	}

	before := ackedNow()
	backupDir := filepath.Join(t.TempDir(), "backup")
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"backup", "--data-dir", dir, backupDir}, env(nil), nil, &out, &errOut); err != nil {
		t.Fatalf("backup: %v %s", err, errOut.String())
	}
	during := ackedNow()
	stopLoad()
	wg.Wait()
	t.Logf("backup under load: %d events acknowledged before it began, %d by its end; %s", len(before), len(during), strings.TrimSpace(out.String()))

	refusals(t, dir, backupDir)
	e.shutdown(t)

	restored := filepath.Join(t.TempDir(), "restored")
	out.Reset()
	errOut.Reset()
	if err := run(context.Background(), []string{"restore", "--data-dir", restored, backupDir}, env(nil), nil, &out, &errOut); err != nil {
		t.Fatalf("restore: %v %s", err, errOut.String())
	}
	ctx2, stop2 := context.WithCancel(context.Background())
	defer stop2()
	base2, _ := startServer(t, ctx2, webhookVars(restored))
	for _, u := range before {
		status, prof := call(t, "GET", base2+tenant+"/profiles?identifier="+url.QueryEscape("user_id:"+u), admin, "")
		if status != http.StatusOK {
			t.Errorf("acknowledged user %s after restore: %d %v", u, status, prof)
			continue
		}
		status, evs := call(t, "GET", base2+tenant+"/profiles/"+prof["id"].(string)+"/events", admin, "")
		found := false
		for _, ev := range listItems(evs) {
			found = found || ev["message_id"] == "m-"+u
		}
		if status != http.StatusOK || !found {
			t.Errorf("acknowledged event m-%s is not in its profile's timeline after restore: %d %v", u, status, evs)
		}
	}
	req, _ := http.NewRequest("POST", base2+"/v1/identify", strings.NewReader(`{"userId":"after-restore"}`))
	req.SetBasicAuth(writeKey, "")
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("the write key after restore: %v %v", res, err)
	}
	res.Body.Close()
	if status, body := call(t, "POST", base2+tenant+"/webhooks/"+hook["id"].(string)+"/test", admin, ""); status != http.StatusAccepted {
		t.Fatalf("test delivery after restore: %d %v", status, body)
	}
	rc.awaitSigned(t, "webhook.test", hook["secret"].(string))
}

// refusals tries the unsafe backups and restores while the server on dir
// runs, and the restore with --force once it would be safe: each is
// refused with a clear error and changes nothing.
func refusals(t *testing.T, dir, backupDir string) {
	t.Helper()
	root := t.TempDir()
	copyTree := func(name string) string {
		dst := filepath.Join(root, name)
		err := filepath.WalkDir(backupDir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(backupDir, path)
			return copyFile(path, filepath.Join(dst, rel))
		})
		if err != nil {
			t.Fatal(err)
		}
		return dst
	}
	incomplete := copyTree("incomplete")
	if err := os.Remove(filepath.Join(incomplete, backupManifestFile)); err != nil {
		t.Fatal(err)
	}
	damaged := copyTree("damaged")
	f, err := os.OpenFile(filepath.Join(damaged, "profiles.db"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("x"))
	f.Close()
	occupied := filepath.Join(root, "occupied")
	if err := os.MkdirAll(occupied, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(occupied, "keep"), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(root, "fresh")

	for _, tc := range []struct {
		name string
		args []string
		vars map[string]string
		want string
	}{
		{"over a live data directory", []string{"restore", "--force", "--data-dir", dir, backupDir}, nil, "a server is running"},
		{"over a directory that is not empty", []string{"restore", "--data-dir", occupied, backupDir}, nil, "not empty"},
		{"an incomplete backup", []string{"restore", "--data-dir", fresh, incomplete}, nil, "not a complete Cairn backup"},
		{"a damaged backup", []string{"restore", "--data-dir", fresh, damaged}, nil, "does not match its checksum"},
		{"under another key-encryption key", []string{"restore", "--data-dir", fresh, backupDir}, map[string]string{sealed.EnvKey: sealed.GenerateKey()}, "sealed under key-encryption key"},
		{"with a database URL", []string{"restore", "--data-dir", fresh, backupDir}, map[string]string{"CAIRN_DATABASE_URL": "postgres://localhost/cairn"}, "embedded default only"},
		{"backup into a directory that is not empty", []string{"backup", "--data-dir", dir, occupied}, nil, "not empty"},
		{"backup of no data directory", []string{"backup", "--data-dir", fresh, filepath.Join(root, "nothing")}, nil, "no Cairn data directory"},
	} {
		var out, errOut bytes.Buffer
		err := run(context.Background(), tc.args, env(tc.vars), nil, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(occupied, "keep")); err != nil || string(b) != "mine" {
		t.Errorf("a refused restore changed the directory: %q %v", b, err)
	}
	for _, p := range []string{fresh, filepath.Join(root, "nothing")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("a refused command made %s", p)
		}
	}
	siblings, _ := filepath.Glob(dir + ".*")
	if len(siblings) > 0 {
		t.Errorf("a refused restore left %v", siblings)
	}

	// With --force, a stopped directory's contents are moved aside.
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"restore", "--force", "--data-dir", occupied, backupDir}, env(nil), nil, &out, &errOut); err != nil {
		t.Fatalf("restore --force: %v %s", err, errOut.String())
	}
	aside, _ := filepath.Glob(occupied + ".replaced-*")
	if len(aside) != 1 {
		t.Fatalf("the replaced contents are not aside: %v", aside)
	}
	if b, err := os.ReadFile(filepath.Join(aside[0], "keep")); err != nil || string(b) != "mine" {
		t.Errorf("the replaced contents: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(occupied, "cairn.db")); err != nil {
		t.Errorf("nothing restored: %v", err)
	}
}
