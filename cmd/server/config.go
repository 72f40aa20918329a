package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// config is every setting of the server. Each is a flag and a CAIRN_*
// environment variable; a flag given on the command line wins.
type config struct {
	Addr              string
	DataDir           string
	DatabaseURL       string
	SigningKeyFile    string
	Issuer            string
	Audience          string
	OIDCIssuer        string
	OIDCJWKSURL       string
	OIDCAudience      string
	OIDCAudClaim      string
	OIDCTenantClaim   string
	OIDCScopeClaim    string
	LogLevel          string
	MaxBodyBytes      int64
	ShutdownTimeout   time.Duration
	JobPollInterval   time.Duration
	MaxWorkers        int
	Cloud             string
	AWSEndpointURL    string
	StackPollInterval time.Duration
	MaxTenantTokenTTL time.Duration
	MaxAdminTokenTTL  time.Duration
}

// setting describes one configuration entry; the README's table is made
// from the same names.
type setting struct {
	flag, env, def, usage string
	target                any
}

func (c *config) settings() []setting {
	return []setting{
		{"addr", "CAIRN_ADDR", "127.0.0.1:8080", "address to serve the API on", &c.Addr},
		{"data-dir", "CAIRN_DATA_DIR", "./data", "directory for the embedded database, signing key and local zones", &c.DataDir},
		{"database-url", "CAIRN_DATABASE_URL", "", "postgres:// URL; empty uses embedded SQLite in the data directory", &c.DatabaseURL},
		{"signing-key-file", "CAIRN_SIGNING_KEY_FILE", "", "Ed25519 PEM key that signs tokens; default <data-dir>/signing-key.pem, created if absent", &c.SigningKeyFile},
		{"issuer", "CAIRN_ISSUER", "cairn", "iss of the tokens Cairn issues", &c.Issuer},
		{"audience", "CAIRN_AUDIENCE", "cairn-api", "aud of the tokens Cairn issues and accepts", &c.Audience},
		{"oidc-issuer", "CAIRN_OIDC_ISSUER", "", "also trust tokens from this OIDC issuer (e.g. a Cognito user pool)", &c.OIDCIssuer},
		{"oidc-jwks-url", "CAIRN_OIDC_JWKS_URL", "", "JWKS URL of the OIDC issuer", &c.OIDCJWKSURL},
		{"oidc-audience", "CAIRN_OIDC_AUDIENCE", "", "audience required in OIDC tokens", &c.OIDCAudience},
		{"oidc-audience-claim", "CAIRN_OIDC_AUDIENCE_CLAIM", "aud", "claim that carries the audience (Cognito access tokens: client_id)", &c.OIDCAudClaim},
		{"oidc-tenant-claim", "CAIRN_OIDC_TENANT_CLAIM", "custom:tenant_id", "claim of OIDC tokens that carries the tenant ID", &c.OIDCTenantClaim},
		{"oidc-scope-claim", "CAIRN_OIDC_SCOPE_CLAIM", "scope", "claim of OIDC tokens that carries the scopes", &c.OIDCScopeClaim},
		{"max-tenant-token-ttl", "CAIRN_MAX_TENANT_TOKEN_TTL", "24h", "longest lifetime of a tenant token, minted or accepted (at most 720h)", &c.MaxTenantTokenTTL},
		{"max-admin-token-ttl", "CAIRN_MAX_ADMIN_TOKEN_TTL", "24h", "longest lifetime of an admin token, minted or accepted (at most 720h)", &c.MaxAdminTokenTTL},
		{"log-level", "CAIRN_LOG_LEVEL", "info", "debug, info, warn or error", &c.LogLevel},
		{"max-body-bytes", "CAIRN_MAX_BODY_BYTES", "1048576", "largest request body accepted", &c.MaxBodyBytes},
		{"shutdown-timeout", "CAIRN_SHUTDOWN_TIMEOUT", "30s", "how long SIGTERM waits for in-flight requests and jobs", &c.ShutdownTimeout},
		{"job-poll-interval", "CAIRN_JOB_POLL_INTERVAL", "1s", "how often workers look for jobs on SQLite", &c.JobPollInterval},
		{"max-workers", "CAIRN_MAX_WORKERS", "10", "jobs worked at once", &c.MaxWorkers},
		{"cloud", "CAIRN_CLOUD", "local", "where tenant stacks are provisioned: local (directories under the data directory) or aws (CloudFormation)", &c.Cloud},
		{"aws-endpoint-url", "CAIRN_AWS_ENDPOINT_URL", "", "send every AWS API call to this endpoint instead of AWS's own (an emulator, a proxy); the SDK's AWS_ENDPOINT_URL works too", &c.AWSEndpointURL},
		{"stack-poll-interval", "CAIRN_STACK_POLL_INTERVAL", "5s", "how often in-flight stacks are polled (one DescribeStacks round per Region)", &c.StackPollInterval},
	}
}

// register adds the settings to fs with defaults taken from the
// environment, falling back to the built-in defaults.
func (c *config) register(fs *flag.FlagSet, getenv func(string) string) error {
	for _, s := range c.settings() {
		def := s.def
		if v := getenv(s.env); v != "" {
			def = v
		}
		usage := fmt.Sprintf("%s (env %s)", s.usage, s.env)
		switch t := s.target.(type) {
		case *string:
			fs.StringVar(t, s.flag, def, usage)
		case *int64:
			n, err := strconv.ParseInt(def, 10, 64)
			if err != nil {
				return fmt.Errorf("%s: %q is not an integer", s.env, def)
			}
			fs.Int64Var(t, s.flag, n, usage)
		case *int:
			n, err := strconv.Atoi(def)
			if err != nil {
				return fmt.Errorf("%s: %q is not an integer", s.env, def)
			}
			fs.IntVar(t, s.flag, n, usage)
		case *time.Duration:
			d, err := time.ParseDuration(def)
			if err != nil {
				return fmt.Errorf("%s: %q is not a duration", s.env, def)
			}
			fs.DurationVar(t, s.flag, d, usage)
		}
	}
	return nil
}

func (c *config) validate() error {
	if c.SigningKeyFile == "" {
		c.SigningKeyFile = filepath.Join(c.DataDir, "signing-key.pem")
	}
	if c.MaxBodyBytes < 1024 {
		return errors.New("max-body-bytes must be at least 1024")
	}
	if c.Cloud != "local" && c.Cloud != "aws" {
		return fmt.Errorf("cloud %q: want local or aws", c.Cloud)
	}
	if c.StackPollInterval <= 0 {
		return errors.New("stack-poll-interval must be positive")
	}
	if c.MaxWorkers < 1 {
		return errors.New("max-workers must be at least 1")
	}
	for _, d := range []time.Duration{c.MaxTenantTokenTTL, c.MaxAdminTokenTTL} {
		if d < time.Minute || d > 720*time.Hour {
			return fmt.Errorf("token lifetime maximum %s: want 1m to 720h", d)
		}
	}
	if c.OIDCIssuer != "" && c.OIDCJWKSURL == "" {
		return errors.New("oidc-issuer needs oidc-jwks-url")
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		return err
	}
	return nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(s))); err != nil {
		return 0, fmt.Errorf("log-level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// parseConfig parses args (without the subcommand) into a config.
func parseConfig(name string, args []string, getenv func(string) string, stderr io.Writer, extra func(*flag.FlagSet)) (*config, error) {
	var c config
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := c.register(fs, getenv); err != nil {
		return nil, err
	}
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return &c, c.validate()
}
