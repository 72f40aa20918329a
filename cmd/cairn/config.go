package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

// cliConfig is the contexts file: where each context's server is and how to
// get its token. It holds a token itself only when set with --token, which is
// why the file is 0600 in a 0700 directory.
type cliConfig struct {
	CurrentContext string         `yaml:"current-context,omitempty"`
	Contexts       []contextEntry `yaml:"contexts"`
}

// contextEntry is one named context. At most one token source is set.
type contextEntry struct {
	Name      string `yaml:"name"`
	Server    string `yaml:"server"`
	Tenant    string `yaml:"tenant,omitempty"`
	TokenFile string `yaml:"token-file,omitempty"`
	TokenEnv  string `yaml:"token-env,omitempty"`
	Token     string `yaml:"token,omitempty"`
}

func (c *cliConfig) find(name string) *contextEntry {
	for i := range c.Contexts {
		if c.Contexts[i].Name == name {
			return &c.Contexts[i]
		}
	}
	return nil
}

// configPath is CAIRN_CONFIG, or cairn/config in the user's config
// directory (os.UserConfigDir: $XDG_CONFIG_HOME or ~/.config on Linux).
func configPath(getenv func(string) string) (string, error) {
	if p := getenv("CAIRN_CONFIG"); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("finding the config directory (set CAIRN_CONFIG): %w", err)
	}
	return filepath.Join(dir, "cairn", "config"), nil
}

// loadConfig reads the contexts file; a missing file is an empty config.
func loadConfig(path string) (*cliConfig, error) {
	c := &cliConfig{}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if err := yaml.Unmarshal(b, c); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return c, nil
}

// saveConfig writes the contexts file whole, through a temporary file
// renamed over it, so that a crash leaves the old file or the new one and
// the file is never readable by others, even for a moment.
func saveConfig(path string, c *cliConfig) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	b, err := yaml.Marshal(c)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, ".config-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// token reads the context's token from where it says.
func (e *contextEntry) token(getenv func(string) string) (string, error) {
	switch {
	case e.TokenFile != "":
		b, err := os.ReadFile(e.TokenFile)
		if err != nil {
			return "", fmt.Errorf("context %s: reading its token: %w", e.Name, err)
		}
		return strings.TrimSpace(string(b)), nil
	case e.TokenEnv != "":
		t := getenv(e.TokenEnv)
		if t == "" {
			return "", usagef("context %s: its token variable %s is empty", e.Name, e.TokenEnv)
		}
		return t, nil
	default:
		return e.Token, nil
	}
}

// tokenSource describes where the context's token comes from, never the
// token itself.
func (e *contextEntry) tokenSource() string {
	switch {
	case e.TokenFile != "":
		return "file:" + e.TokenFile
	case e.TokenEnv != "":
		return "env:" + e.TokenEnv
	case e.Token != "":
		return "inline"
	default:
		return "none"
	}
}

// target is where a command sends its requests.
type target struct {
	server string
	token  string
	tenant string
}

// resolve picks the server, token and default tenant: flags first, then
// CAIRN_SERVER, CAIRN_TOKEN and CAIRN_TENANT, then the context (--context
// or the current one).
func (a *app) resolve() (target, error) {
	t := target{server: a.server, token: a.token, tenant: a.tenantFlag}
	if t.server == "" {
		t.server = a.getenv("CAIRN_SERVER")
	}
	if t.token == "" {
		t.token = a.getenv("CAIRN_TOKEN")
	}
	if t.tenant == "" {
		t.tenant = a.getenv("CAIRN_TENANT")
	}
	if t.server != "" && t.token != "" && t.tenant != "" && a.contextName == "" {
		return t, nil
	}
	path, cfg, err := a.readConfig()
	if err != nil {
		return t, err
	}
	name := a.contextName
	if name == "" {
		name = cfg.CurrentContext
	}
	if name != "" {
		e := cfg.find(name)
		if e == nil {
			return t, usagef("no context %q in %s", name, path)
		}
		if t.server == "" {
			t.server = e.Server
		}
		if t.tenant == "" {
			t.tenant = e.Tenant
		}
		if t.token == "" {
			if t.token, err = e.token(a.getenv); err != nil {
				return t, err
			}
		}
	}
	if t.server == "" {
		return t, usagef("no server: add a context (cairn config set-context NAME --server URL ...), or give --server or CAIRN_SERVER")
	}
	return t, nil
}
