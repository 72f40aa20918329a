package auth_test

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/cairn-cdp/cairn/internal/auth"
)

func TestLoadOrCreateKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "keys", "signing.pem")
	first, err := auth.LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode = %v, want 0600", perm)
	}
	if info, err := os.Stat(filepath.Dir(path)); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("key dir: %v, %v; want mode 0700", info.Mode().Perm(), err)
	}

	second, err := auth.LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !first.Equal(second) {
		t.Error("second call returned a different key")
	}
	loaded, err := auth.LoadKey(path)
	if err != nil || !first.Equal(loaded) {
		t.Errorf("LoadKey = %v, want the created key", err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("key dir holds %d entries, want only the key (no temp files)", len(entries))
	}
}

func TestLoadKeyErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := auth.LoadKey(filepath.Join(dir, "absent.pem")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("absent file: %v, want fs.ErrNotExist", err)
	}
	rsaDER, err := x509.MarshalPKCS8PrivateKey(newRSAKey(t))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"garbage":     []byte("not a key"),
		"wrong block": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1}}),
		"rsa key":     pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: rsaDER}),
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := auth.LoadKey(path); err == nil {
			t.Errorf("%s: LoadKey succeeded", name)
		}
		if _, err := auth.LoadOrCreateKey(path); err == nil {
			t.Errorf("%s: LoadOrCreateKey succeeded; it must not replace an unreadable key", name)
		}
	}
}

func TestLoadPublicKey(t *testing.T) {
	dir := t.TempDir()
	key := newKey(t)
	privDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pubOf(key))
	if err != nil {
		t.Fatal(err)
	}
	for name, block := range map[string]*pem.Block{
		"public":  {Type: "PUBLIC KEY", Bytes: pubDER},
		"private": {Type: "PRIVATE KEY", Bytes: privDER},
	} {
		path := filepath.Join(dir, name+".pem")
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := auth.LoadPublicKey(path)
		if err != nil || !got.Equal(pubOf(key)) {
			t.Errorf("%s: LoadPublicKey = %v, want the key's public half", name, err)
		}
	}
}
