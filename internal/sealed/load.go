package sealed

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Where the operator supplies the keys.
const (
	// EnvKey is the environment variable that holds the keys themselves.
	EnvKey = "CAIRN_KEY_ENCRYPTION_KEY"
	// EnvKeyFile is the environment variable that names a file holding
	// them.
	EnvKeyFile = "CAIRN_KEY_ENCRYPTION_KEY_FILE"
	// DefaultFile is the key file generated in the data directory when
	// the operator supplies none.
	DefaultFile = "key-encryption-key"
)

// Config says where the keys are. Set at most one of Keys and File; with
// neither, the key is DataDir/DefaultFile, generated if it is missing.
type Config struct {
	// Keys holds one or more keys (see ParseKey) separated by commas or
	// white space; the first seals, the others only open.
	Keys string
	// File names a file holding the keys, one a line (lines starting
	// with # are comments); the first seals.
	File string
	// DataDir is where DefaultFile lives when neither Keys nor File is
	// set. It is created with mode 0700 if missing, the file with mode
	// 0600.
	DataDir string
}

// Load returns the Keyring cfg describes, generating DataDir/DefaultFile
// when cfg names no key. The generated file appears atomically and is
// never overwritten: when two processes start at once, both use the key
// the first one wrote. Errors wrap ErrMalformed for a key that does not
// parse, and never include key material.
func Load(cfg Config) (*Keyring, error) {
	switch {
	case cfg.Keys != "" && cfg.File != "":
		return nil, fmt.Errorf("key-encryption key: set %s or %s, not both", EnvKey, EnvKeyFile)
	case cfg.Keys != "":
		r, err := parseKeys(strings.FieldsFunc(cfg.Keys, func(c rune) bool { return c == ',' || c == ' ' || c == '\n' || c == '\t' || c == '\r' }))
		if err != nil {
			return nil, fmt.Errorf("key-encryption key from %s: %w", EnvKey, err)
		}
		return r, nil
	case cfg.File != "":
		return loadFile(cfg.File)
	case cfg.DataDir == "":
		return nil, errors.New("key-encryption key: no key, no key file and no data directory")
	}
	path := filepath.Join(cfg.DataDir, DefaultFile)
	r, err := loadFile(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return r, err
	}
	if err := create(path, "# Cairn's key-encryption key: it seals the secrets stored in the database.\n"+
		"# Back it up with the database; without it they cannot be opened.\n"+GenerateKey()+"\n"); err != nil {
		return nil, fmt.Errorf("create key-encryption key: %w", err)
	}
	return loadFile(path)
}

func loadFile(path string) (*Keyring, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("key-encryption key: %w", err)
	}
	var keys []string
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			keys = append(keys, line)
		}
	}
	r, err := parseKeys(keys)
	if err != nil {
		return nil, fmt.Errorf("key-encryption key file %s: %w", path, err)
	}
	return r, nil
}

func parseKeys(texts []string) (*Keyring, error) {
	if len(texts) == 0 {
		return nil, fmt.Errorf("%w: no key", ErrMalformed)
	}
	keys := make([]*Key, len(texts))
	for i, t := range texts {
		k, err := ParseKey(t)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		keys[i] = k
	}
	return NewKeyring(keys[0], keys[1:]...), nil
}

// create writes data to a new file at path, mode 0600, atomically: it
// appears whole or not at all, and an existing file is left as it is.
func create(path, data string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*") // mode 0600
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	// Link, unlike Rename, fails if path exists: a concurrent starter that
	// won the race keeps its key.
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}
