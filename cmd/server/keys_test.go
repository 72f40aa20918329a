package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5"

	"github.com/cairn-cdp/cairn/internal/auth"
	"github.com/cairn-cdp/cairn/internal/awsclient/awstest"
	"github.com/cairn-cdp/cairn/internal/replicas"
	"github.com/cairn-cdp/cairn/internal/sealed"
	"github.com/cairn-cdp/cairn/internal/signingkeys"
	"github.com/cairn-cdp/cairn/internal/store/backend"
	"github.com/cairn-cdp/cairn/internal/testdb"
)

// runWith runs a command of the server with vars as its environment and
// returns what it printed.
func runWith(t *testing.T, vars map[string]string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, env(vars), nil, &out, &errOut)
	return strings.TrimSpace(out.String()), err
}

// kidOf returns the kid in a token's header.
func kidOf(t *testing.T, token string) string {
	t.Helper()
	tok, _, err := jwt.NewParser().ParseUnverified(token, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := tok.Header["kid"].(string)
	return kid
}

// jwksKids returns the kids a server's JWKS publishes.
func jwksKids(t *testing.T, url string) []string {
	t.Helper()
	res, err := http.Get(url + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var set struct {
		Keys []struct{ Kid string } `json:"keys"`
	}
	if err := json.NewDecoder(res.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	slices.Sort(kids)
	return kids
}

// signIn exchanges a login-link code at the server at url for an admin
// token that server mints.
func signIn(t *testing.T, vars map[string]string, url string) string {
	t.Helper()
	link, err := runWith(t, vars, "login-link", "--url", url)
	if err != nil {
		t.Fatal(err)
	}
	_, code, _ := strings.Cut(link, "#code=")
	status, body := call(t, "POST", url+"/v1/sign-in", "", `{"code":"`+code+`"}`)
	if status != http.StatusOK {
		t.Fatalf("sign-in: %d %v", status, body)
	}
	return body["token"].(string)
}

// TestReplicasShareSigningKeys: two AWS-mode replicas on one PostgreSQL,
// each with its own data directory and no key file, sign with one key: a
// token one mints verifies on the other, and both publish one JWKS.
func TestReplicasShareSigningKeys(t *testing.T) {
	moto := awstest.Endpoint(t)
	dbURL := testdb.Postgres(t)
	kek := sealed.GenerateKey()
	vars := func() map[string]string {
		return map[string]string{
			"CAIRN_DATA_DIR": t.TempDir(), "CAIRN_DATABASE_URL": dbURL, "CAIRN_KEY_ENCRYPTION_KEY": kek,
			"CAIRN_CLOUD": "aws", "CAIRN_AWS_ENDPOINT_URL": moto, "CAIRN_LOG_LEVEL": "error",
		}
	}
	first, second := vars(), vars()
	urlA, _ := startServer(t, t.Context(), first)
	urlB, _ := startServer(t, t.Context(), second)

	tokA := signIn(t, first, urlA)
	if status, body := call(t, "GET", urlB+"/v1/tenants", tokA, ""); status != http.StatusOK {
		t.Fatalf("a token replica A minted, on replica B: %d %v", status, body)
	}
	tokB := signIn(t, second, urlB)
	if status, body := call(t, "GET", urlA+"/v1/tenants", tokB, ""); status != http.StatusOK {
		t.Fatalf("a token replica B minted, on replica A: %d %v", status, body)
	}
	if a, b := jwksKids(t, urlA), jwksKids(t, urlB); len(a) != 1 || !slices.Equal(a, b) {
		t.Fatalf("JWKS of A %v, of B %v: want one and the same key", a, b)
	}
}

// TestSigningKeyRotation: `server keys rotate` signs with a new key while
// tokens of the old one keep verifying (nobody is logged out); the JWKS
// publishes both until the old key's horizon, then only the new one. The
// private keys are in the database only sealed.
func TestSigningKeyRotation(t *testing.T) {
	dbURL := testdb.Postgres(t)
	kek := sealed.GenerateKey()
	vars := map[string]string{"CAIRN_DATA_DIR": t.TempDir(), "CAIRN_DATABASE_URL": dbURL, "CAIRN_KEY_ENCRYPTION_KEY": kek, "CAIRN_LOG_LEVEL": "error"}
	oldToken, err := runWith(t, vars, "token", "--admin")
	if err != nil {
		t.Fatal(err)
	}
	oldKid := kidOf(t, oldToken)
	oldKey := serverKeys(t, vars).Signing
	url, _ := startServer(t, t.Context(), vars)

	out, err := runWith(t, vars, "keys", "rotate")
	if err != nil {
		t.Fatalf("keys rotate: %v", err)
	}
	newToken, err := runWith(t, vars, "token", "--admin")
	if err != nil {
		t.Fatal(err)
	}
	newKid := kidOf(t, newToken)
	if newKid == oldKid || !strings.Contains(out, newKid+" signs") || !strings.Contains(out, oldKid+" verifies until") {
		t.Fatalf("rotate printed %q; tokens carry %s before and %s after", out, oldKid, newKid)
	}
	newKey := serverKeys(t, vars).Signing

	// The running server verifies both: the new kid makes it reload.
	for _, tok := range []string{oldToken, newToken} {
		if status, body := call(t, "GET", url+"/v1/tenants", tok, ""); status != http.StatusOK {
			t.Fatalf("token of key %s after the rotation: %d %v", kidOf(t, tok), status, body)
		}
	}
	want := []string{oldKid, newKid}
	slices.Sort(want)
	if got := jwksKids(t, url); !slices.Equal(got, want) {
		t.Fatalf("JWKS after the rotation %v, want %v", got, want)
	}
	// The server signs with the new key once it reloaded (here at once:
	// the new token made it).
	if tok := signIn(t, vars, url); kidOf(t, tok) != newKid {
		t.Fatalf("the server signs with %s after the rotation, want %s", kidOf(t, tok), newKid)
	}

	// Past the horizon (max token lifetime, leeway, reload interval) the
	// old key leaves the JWKS.
	cfg, err := parseConfig("server", cmdServe, nil, env(vars), io.Discard, io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	db, err := backend.Open(t.Context(), dbURL, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sealer, err := loadKeyring(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		after time.Duration
		want  []string
	}{
		{keyHorizon(cfg) - time.Minute, want},
		{keyHorizon(cfg) + time.Second, []string{newKid}},
	} {
		later := func() time.Time { return time.Now().Add(tc.after) }
		keys, err := signingkeys.New(signingkeys.Config{Store: db, Sealer: sealer, Horizon: keyHorizon(cfg), Now: later})
		if err != nil {
			t.Fatal(err)
		}
		a, err := auth.NewFromSource(t.Context(), keys, auth.Config{Now: later})
		if err != nil {
			t.Fatal(err)
		}
		var set struct {
			Keys []struct{ Kid string } `json:"keys"`
		}
		if err := json.Unmarshal(a.JWKS(), &set); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, k := range set.Keys {
			got = append(got, k.Kid)
		}
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("JWKS %s after the rotation: %v, want %v", tc.after, got, tc.want)
		}
	}

	// No private key is in the database in any plain form.
	conn, err := pgx.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(t.Context(), "SELECT k::text, sealed_private_key FROM signing_keys k")
	if err != nil {
		t.Fatal(err)
	}
	var dump strings.Builder
	n := 0
	for rows.Next() {
		var row, sealedKey string
		if err := rows.Scan(&row, &sealedKey); err != nil {
			t.Fatal(err)
		}
		if !sealed.IsSealed(sealedKey) {
			t.Errorf("a stored private key is not sealed: %.20s...", sealedKey)
		}
		dump.WriteString(row + "\n")
		n++
	}
	if rows.Err() != nil || n != 2 {
		t.Fatalf("%d key rows, %v; want 2", n, rows.Err())
	}
	for _, key := range []ed25519.PrivateKey{oldKey, newKey} {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		pemBody := strings.Join(strings.Split(string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), "\n")[1:2], "")
		for _, form := range []string{
			hex.EncodeToString(key.Seed()), base64.StdEncoding.EncodeToString(key.Seed()),
			base64.RawURLEncoding.EncodeToString(key.Seed()), string(key.Seed()), pemBody, hex.EncodeToString(der),
		} {
			if strings.Contains(dump.String(), form) {
				t.Fatalf("a private key is in the database in plain form (%.12s...)", form)
			}
		}
	}
}

// TestLocalEngineIsSingleNode: a second local-engine server on the
// PostgreSQL of a live one refuses to start, saying why, and so does an
// AWS-mode one; once the first is killed (no goodbye), the second starts
// when the first's lease lapses.
func TestLocalEngineIsSingleNode(t *testing.T) {
	dbURL := testdb.Postgres(t)
	kek := sealed.GenerateKey()
	vars := func() map[string]string {
		return map[string]string{"CAIRN_DATA_DIR": t.TempDir(), "CAIRN_DATABASE_URL": dbURL, "CAIRN_KEY_ENCRYPTION_KEY": kek,
			"CAIRN_REPLICA_LEASE": "2s", "CAIRN_LOG_LEVEL": "error"}
	}
	firstVars := vars()
	firstVars["CAIRN_ADDR"] = "127.0.0.1:0"
	first := startServerProcess(t, "first", buildServer(t), firstVars)

	second := vars()
	err := serveOnce(t, second)
	if err == nil || !strings.Contains(err.Error(), "the local engine is single-node, so this replica will not start") ||
		!strings.Contains(err.Error(), firstVars["CAIRN_DATA_DIR"]) {
		t.Fatalf("second local-engine server beside a live one: %v", err)
	}
	aws := vars()
	aws["CAIRN_CLOUD"] = "aws"
	if err := serveOnce(t, aws); err == nil || !strings.Contains(err.Error(), "the local engine is single-node") {
		t.Fatalf("an AWS-mode server beside a live local-engine one: %v", err)
	}

	first.Kill(t)
	// The lease lapses on its own, within 2s of the kill.
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(60 * time.Second); ; <-tick.C {
		err := serveOnce(t, second)
		if err == nil {
			break
		}
		if !errors.Is(err, replicas.ErrRefused) || time.Now().After(deadline) {
			t.Fatalf("second server after the first was killed: %v", err)
		}
	}
}

// TestEmbeddedDatabaseIsSingleNode: two servers can open one SQLite file,
// so a second server on a data directory in use refuses to start.
func TestEmbeddedDatabaseIsSingleNode(t *testing.T) {
	dir := t.TempDir()
	startServer(t, t.Context(), map[string]string{"CAIRN_DATA_DIR": dir})
	err := serveOnce(t, map[string]string{"CAIRN_DATA_DIR": dir})
	if !errors.Is(err, replicas.ErrDataDirBusy) || !strings.Contains(err.Error(), "another server is running on the data directory") {
		t.Fatalf("a second server on the data directory: %v", err)
	}
}

// serveOnce starts a server with vars: if it refuses to start, serveOnce
// returns its error; if it serves, serveOnce stops it and returns nil.
func serveOnce(t *testing.T, vars map[string]string) error {
	t.Helper()
	cfg, err := parseConfig("server", cmdServe, []string{"--addr", "127.0.0.1:0"}, env(vars), io.Discard, io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, io.Discard, io.Discard, hooks{ready: ready}) }()
	select {
	case err := <-done:
		return err
	case <-ready:
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("shutdown: %v", err)
		}
		return nil
	case <-time.After(60 * time.Second):
		t.Fatal("server neither started nor refused within 60s")
	}
	return nil
}

// TestKeysCommandHelp: "server keys" takes only rotate, whose help lists
// the database and token lifetime flags and not the server's.
func TestKeysCommandHelp(t *testing.T) {
	for _, args := range [][]string{{"keys", "--help"}, {"help", "keys"}, {"keys", "rotate", "--help"}} {
		out, err := runWith(t, nil, args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		for _, flag := range []string{"-database-url", "-data-dir", "-max-tenant-token-ttl", "-max-admin-token-ttl"} {
			if !strings.Contains(out, flag) {
				t.Errorf("%v lacks %s:\n%s", args, flag, out)
			}
		}
		if strings.Contains(out, "-addr ") || strings.Contains(out, "-cloud ") {
			t.Errorf("%v lists a flag of serve:\n%s", args, out)
		}
	}
	for _, args := range [][]string{{"keys"}, {"keys", "list"}} {
		if _, err := runWith(t, nil, args...); err == nil || !strings.Contains(err.Error(), "server keys rotate") {
			t.Errorf("%v: %v, want an error naming server keys rotate", args, err)
		}
	}
	// Rotating a database that has no key yet gives it one, then rotates.
	vars := map[string]string{"CAIRN_DATA_DIR": t.TempDir()}
	if out, err := runWith(t, vars, "keys", "rotate"); err != nil || !strings.Contains(out, "signs from now on") {
		t.Fatalf("keys rotate on a new database: %q, %v", out, err)
	}
	if set := serverKeys(t, vars); len(set.Verify) != 1 {
		t.Fatalf("after one rotation %d verify-only keys, want 1", len(set.Verify))
	}
}

// TestKMSKeyEncryptionKey: with a KMS key named, replicas on one
// PostgreSQL share a data key that KMS wraps and the database keeps: no
// key file is made, tokens verify across replicas, and the signing key is
// sealed under the data key KMS decrypts.
func TestKMSKeyEncryptionKey(t *testing.T) {
	moto := awstest.Endpoint(t)
	ctx := t.Context()
	dbURL := testdb.Postgres(t)
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion("eu-west-1"))
	if err != nil {
		t.Fatal(err)
	}
	client := kms.NewFromConfig(awsCfg, func(o *kms.Options) { o.BaseEndpoint = aws.String(moto) })
	created, err := client.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("cairn key-encryption key test")})
	if err != nil {
		t.Fatal(err)
	}
	keyARN := aws.ToString(created.KeyMetadata.Arn)
	vars := func() map[string]string {
		return map[string]string{
			"CAIRN_DATA_DIR": t.TempDir(), "CAIRN_DATABASE_URL": dbURL, "CAIRN_KEY_ENCRYPTION_KMS_KEY": keyARN,
			"CAIRN_CLOUD": "aws", "CAIRN_AWS_ENDPOINT_URL": moto, "CAIRN_LOG_LEVEL": "error",
		}
	}
	first, second := vars(), vars()
	urlA, _ := startServer(t, ctx, first)
	urlB, _ := startServer(t, ctx, second)
	if status, body := call(t, "GET", urlB+"/v1/tenants", signIn(t, first, urlA), ""); status != http.StatusOK {
		t.Fatalf("a token replica A minted, on replica B: %d %v", status, body)
	}
	for _, v := range []map[string]string{first, second} {
		if _, err := os.Stat(filepath.Join(v["CAIRN_DATA_DIR"], sealed.DefaultFile)); err == nil {
			t.Fatal("a key-encryption key file was made although a KMS key is named")
		}
	}

	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var wrapped []byte
	var sealedKey string
	if err := conn.QueryRow(ctx, "SELECT wrapped FROM wrapped_key_encryption_keys WHERE kms_key_arn = $1", keyARN).Scan(&wrapped); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT sealed_private_key FROM signing_keys").Scan(&sealedKey); err != nil {
		t.Fatal(err)
	}
	plain, err := client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: wrapped, EncryptionContext: map[string]string{"cairn": "key-encryption-key"}})
	if err != nil {
		t.Fatalf("KMS does not decrypt the stored data key with Cairn's encryption context: %v", err)
	}
	dataKey, err := sealed.NewKey(plain.Plaintext)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sealedKey, "sealed.v1."+dataKey.ID()+".") {
		t.Fatalf("the signing key is not sealed under the KMS data key %s: %.30s...", dataKey.ID(), sealedKey)
	}
	if bytes.Contains(wrapped, plain.Plaintext) {
		t.Fatal("the stored data key holds its plaintext")
	}

	both := vars()
	both["CAIRN_KEY_ENCRYPTION_KEY"] = sealed.GenerateKey()
	if _, err := parseConfig("server", cmdServe, nil, env(both), io.Discard, io.Discard, nil); err == nil {
		t.Fatal("a KMS key and CAIRN_KEY_ENCRYPTION_KEY together were accepted")
	}
}

// TestSigningKeyFileImported: upgrading, the signing key an older version
// left in the data directory becomes the database's, so its tokens stay
// valid; once the database has keys, another key file is ignored.
func TestSigningKeyFileImported(t *testing.T) {
	dir := t.TempDir()
	legacy, err := auth.LoadOrCreateKey(filepath.Join(dir, "signing-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	old, err := auth.New(t.Context(), legacy, auth.Config{})
	if err != nil {
		t.Fatal(err)
	}
	issued, _, err := old.MintAdmin(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"CAIRN_DATA_DIR": dir}
	url, _ := startServer(t, t.Context(), vars)
	if status, body := call(t, "GET", url+"/v1/tenants", issued, ""); status != http.StatusOK {
		t.Fatalf("a token of the older version's key file: %d %v", status, body)
	}
	if kids := jwksKids(t, url); !slices.Equal(kids, []string{kidOf(t, issued)}) {
		t.Fatalf("JWKS %v, want only the imported key %s", kids, kidOf(t, issued))
	}

	other := filepath.Join(t.TempDir(), "other.pem")
	tok, err := runWith(t, map[string]string{"CAIRN_DATA_DIR": dir, "CAIRN_SIGNING_KEY_FILE": other}, "token", "--admin")
	if err != nil {
		t.Fatal(err)
	}
	if kidOf(t, tok) != kidOf(t, issued) {
		t.Fatalf("with another key file, tokens carry %s, want the database's %s", kidOf(t, tok), kidOf(t, issued))
	}
}
