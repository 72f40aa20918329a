package sealed_test

import (
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cairn-cdp/cairn/internal/sealed"
)

func mustKey(t *testing.T) *sealed.Key {
	t.Helper()
	k, err := sealed.ParseKey(sealed.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpen(t *testing.T) {
	old, cur, other := mustKey(t), mustKey(t), mustKey(t)
	ring := sealed.NewKeyring(cur, old)
	secret := []byte("whsec_c2VjcmV0IHNlY3JldCBzZWNyZXQgc2VjcmV0")
	v := ring.Seal(secret, []byte("wh_1"))
	if !sealed.IsSealed(v) || strings.Contains(v, string(secret)) || !strings.Contains(v, "."+cur.ID()+".") {
		t.Fatalf("sealed value %q", v)
	}
	if !ring.Has(old.ID()) || !ring.Has(cur.ID()) || ring.Has(other.ID()) || ring.KeyID() != cur.ID() {
		t.Fatal("the keyring's keys are not the ones it was given")
	}
	if v2 := ring.Seal(secret, []byte("wh_1")); v2 == v {
		t.Fatal("two seals of one plaintext are equal: the nonce is not fresh")
	}
	underOld := sealed.NewKeyring(old).Seal(secret, []byte("wh_1"))
	tampered := []byte(v)
	// Another base64 letter in a place whose bits all count.
	if tampered[len(tampered)-3] == 'A' {
		tampered[len(tampered)-3] = 'B'
	} else {
		tampered[len(tampered)-3] = 'A'
	}

	for _, tc := range []struct {
		name  string
		ring  *sealed.Keyring
		value string
		ad    string
		err   error
	}{
		{"round trip", ring, v, "wh_1", nil},
		{"older key opens", ring, underOld, "wh_1", nil},
		{"other associated data", ring, v, "wh_2", sealed.ErrOpen},
		{"tampered", ring, string(tampered), "wh_1", sealed.ErrOpen},
		{"unknown key", sealed.NewKeyring(other), v, "wh_1", sealed.ErrUnknownKey},
		{"rotated out", sealed.NewKeyring(cur), underOld, "wh_1", sealed.ErrUnknownKey},
		{"plaintext", ring, string(secret), "wh_1", sealed.ErrMalformed},
		{"no key ID", ring, "sealed.v1.abc", "wh_1", sealed.ErrMalformed},
		{"short", ring, "sealed.v1." + cur.ID() + ".AAAA", "wh_1", sealed.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.ring.Open(tc.value, []byte(tc.ad))
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if err == nil && string(got) != string(secret) {
				t.Fatalf("opened %q", got)
			}
			if err != nil && strings.Contains(err.Error(), string(secret)) {
				t.Fatalf("error shows the secret: %v", err)
			}
		})
	}
}

func TestParseKey(t *testing.T) {
	raw := make([]byte, sealed.KeySize)
	for i := range raw {
		raw[i] = byte(i * 7)
	}
	want, err := sealed.NewKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{
		"AAcOFRwjKjE4P0ZNVFtiaXB3foWMk5qhqK+2vcTL0tk=",  // standard, padded
		"AAcOFRwjKjE4P0ZNVFtiaXB3foWMk5qhqK-2vcTL0tk",   // URL-safe, unpadded
		" " + hex.EncodeToString(raw) + "\n",            // hex with white space
		"AAcOFRwjKjE4P0ZNVFtiaXB3foWMk5qhqK+2vcTL0tk\n", // standard, unpadded
	} {
		k, err := sealed.ParseKey(text)
		if err != nil || k.ID() != want.ID() {
			t.Errorf("ParseKey(%q): %v", text, err)
		}
	}
	for _, text := range []string{"", "c2hvcnQ=", hex.EncodeToString(raw[:16]), "not a key at all, not at all!!!!!!!"} {
		if _, err := sealed.ParseKey(text); !errors.Is(err, sealed.ErrMalformed) {
			t.Errorf("ParseKey(%q): %v, want ErrMalformed", text, err)
		}
	}
}

// TestLoad: the key comes from the variable, from a file, or from a file
// generated in the data directory under a permissive umask: mode 0600 in a
// 0700 directory, and the same key at the next start.
func TestLoad(t *testing.T) {
	a, b := sealed.GenerateKey(), sealed.GenerateKey()
	ka, _ := sealed.ParseKey(a)
	kb, _ := sealed.ParseKey(b)
	sealedB := sealed.NewKeyring(kb).Seal([]byte("x"), nil)

	t.Run("variable", func(t *testing.T) {
		r, err := sealed.Load(sealed.Config{Keys: a + ", " + b, DataDir: t.TempDir()})
		if err != nil || r.KeyID() != ka.ID() {
			t.Fatalf("%v %v", r, err)
		}
		if _, err := r.Open(sealedB, nil); err != nil {
			t.Fatalf("older key does not open: %v", err)
		}
	})
	t.Run("file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "kek")
		if err := os.WriteFile(path, []byte("# new key first\n"+b+"\n\n"+a+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		r, err := sealed.Load(sealed.Config{File: path})
		if err != nil || r.KeyID() != kb.ID() {
			t.Fatalf("%v %v", r, err)
		}
	})
	t.Run("refused", func(t *testing.T) {
		empty := filepath.Join(t.TempDir(), "empty")
		if err := os.WriteFile(empty, []byte("# nothing\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		for name, cfg := range map[string]sealed.Config{
			"both":       {Keys: a, File: empty},
			"bad key":    {Keys: "nope"},
			"empty file": {File: empty},
			"no file":    {File: filepath.Join(t.TempDir(), "missing")},
			"nothing":    {},
		} {
			if _, err := sealed.Load(cfg); err == nil {
				t.Errorf("%s: loaded", name)
			} else if strings.Contains(err.Error(), a) {
				t.Errorf("%s: error shows the key: %v", name, err)
			}
		}
	})
	t.Run("generated", func(t *testing.T) {
		old := syscall.Umask(0)
		defer syscall.Umask(old)
		dir := filepath.Join(t.TempDir(), "data")
		r1, err := sealed.Load(sealed.Config{DataDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		r2, err := sealed.Load(sealed.Config{DataDir: dir})
		if err != nil || r2.KeyID() != r1.KeyID() {
			t.Fatalf("second start: %v %v", r2, err)
		}
		for path, want := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, filepath.Join(dir, sealed.DefaultFile): 0o600} {
			if info, err := os.Stat(path); err != nil || info.Mode() != want {
				t.Errorf("%s: %v %v, want %v", path, info.Mode(), err, want)
			}
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 {
			t.Errorf("data directory holds %v", entries)
		}
	})
}
