package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// LoadOrCreateKey returns the Ed25519 private key in the PEM PKCS#8 file at
// path. If the file does not exist it generates a key and writes it there
// (creating missing directories with mode 0700, the file with mode 0600).
//
// The file appears atomically and is never overwritten: a crash leaves no
// half-written key, and when two processes start at once the second one
// loads the key the first one wrote.
func LoadOrCreateKey(path string) (ed25519.PrivateKey, error) {
	key, err := LoadKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	_, key, err = ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode signing key: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})

	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create signing key: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".signing-key-*") // mode 0600
	if err != nil {
		return nil, fmt.Errorf("create signing key: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("create signing key: %w", err)
	}
	// Link, unlike Rename, fails if path exists: a concurrent starter that
	// won the race keeps its key and we load it below.
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("create signing key: %w", err)
	}
	return LoadKey(path)
}

// LoadKey reads an Ed25519 private key from a PEM PKCS#8 ("PRIVATE KEY")
// file. A missing file yields an error matching fs.ErrNotExist.
func LoadKey(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load signing key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("load signing key %s: no PEM PRIVATE KEY block", path)
	}
	key, err := parsePrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("load signing key %s: %w", path, err)
	}
	return key, nil
}

func parsePrivateKey(der []byte) (ed25519.PrivateKey, error) {
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	ed, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%T is not an Ed25519 key", key)
	}
	return ed, nil
}

// LoadPublicKey reads an Ed25519 public key for Config.VerifyKeys from a PEM
// file holding either a PKIX "PUBLIC KEY" or, so a retired key file can be
// reused as is, a PKCS#8 "PRIVATE KEY" (only its public half is kept).
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load public key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("load public key %s: no PEM block", path)
	}
	switch block.Type {
	case "PRIVATE KEY":
		key, err := parsePrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("load public key %s: %w", path, err)
		}
		return key.Public().(ed25519.PublicKey), nil
	case "PUBLIC KEY":
		key, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("load public key %s: %w", path, err)
		}
		ed, ok := key.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("load public key %s: %T is not an Ed25519 key", path, key)
		}
		return ed, nil
	}
	return nil, fmt.Errorf("load public key %s: unexpected PEM block %q", path, block.Type)
}

// thumbprint is the RFC 7638 JWK thumbprint of an Ed25519 public key: the
// base64url SHA-256 of the required members in lexicographic order, with no
// whitespace (RFC 8037 section 2). x is base64url, so needs no escaping.
func thumbprint(pub ed25519.PublicKey) string {
	x := base64.RawURLEncoding.EncodeToString(pub)
	sum := sha256.Sum256([]byte(`{"crv":"Ed25519","kty":"OKP","x":"` + x + `"}`))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
}

// marshalJWKS renders the public keys as an RFC 7517 JWK Set.
func marshalJWKS(keys []ed25519.PublicKey) ([]byte, error) {
	set := struct {
		Keys []jwk `json:"keys"`
	}{Keys: make([]jwk, 0, len(keys))}
	for _, k := range keys {
		set.Keys = append(set.Keys, jwk{
			Kty: "OKP",
			Crv: "Ed25519",
			X:   base64.RawURLEncoding.EncodeToString(k),
			Kid: thumbprint(k),
			Use: "sig",
			Alg: "EdDSA",
		})
	}
	return json.Marshal(set)
}

// KeyID returns the kid Cairn gives pub: its RFC 7638 thumbprint.
func KeyID(pub ed25519.PublicKey) string { return thumbprint(pub) }
