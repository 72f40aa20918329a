package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-cdp/cairn/internal/awsclient"
	"github.com/cairn-cdp/cairn/internal/portal"
	"github.com/cairn-cdp/cairn/internal/ratelimit"
	"github.com/cairn-cdp/cairn/internal/sealed"
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
	OIDCClientID      string
	OIDCAuthURL       string
	OIDCTokenURL      string
	OIDCScopes        string
	OIDCPortalToken   string
	LogLevel          string
	MaxBodyBytes      int64
	ShutdownTimeout   time.Duration
	JobPollInterval   time.Duration
	MaxWorkers        int
	Cloud             string
	AWSEndpointURL    string
	UsageReportBucket string
	StackPollInterval time.Duration
	// CFNCallRate is the CloudFormation calls a second allowed per Region
	// (provisioner.Throttle).
	CFNCallRate int
	// DriftInterval is how often every stack's drift is detected.
	DriftInterval time.Duration
	// RolloutTemplates, if set, is a directory whose tenant-dedicated.yaml
	// and pool.yaml rollouts apply instead of the embedded templates.
	RolloutTemplates  string
	LakeInterval      time.Duration
	QueryTimeout      time.Duration
	MaxTenantTokenTTL time.Duration
	MaxAdminTokenTTL  time.Duration
	// StackRoleARN, if set, is the service role CloudFormation creates
	// and deletes tenant stacks with (cfn.Config.RoleARN).
	StackRoleARN string
	// TenantRoleBoundary, if set, is the permissions boundary of pooled
	// tenants' own roles (provisioner.Config.TenantRoleBoundary).
	TenantRoleBoundary string
	// Migrate is whether serve brings the schema up to date at start; off,
	// it refuses a schema older than its own (see checkSchema).
	Migrate bool
	// ReplicaLease is how long a replica's lease lasts after a renewal.
	ReplicaLease time.Duration
	// MigrationDrain is how long a tier migration waits after fencing a
	// tenant's writes before it copies the delta (migration.Config.Drain).
	MigrationDrain time.Duration
	// KEKKMSKey, if set, is the ARN of the KMS key whose data key is the
	// key-encryption key (package kmskek).
	KEKKMSKey string
	// WebhookAllowHTTP lets webhook endpoints use http:// URLs.
	WebhookAllowHTTP bool
	// WebhookAllowCIDRs is a comma list of address ranges webhook
	// endpoints may resolve to although they are not public;
	// webhookAllow holds it parsed, by validate.
	WebhookAllowCIDRs string
	webhookAllow      []netip.Prefix
	// RateLimits turns on the plans' rates and monthly quotas and the
	// budget of refused credentials per client address (FailedAuthBurst
	// at once, FailedAuthPerMinute after; 0 a minute turns it off).
	RateLimits          bool
	FailedAuthBurst     int
	FailedAuthPerMinute int
	// TrustedProxies is a comma list of the proxies whose
	// X-Forwarded-For names the client; trustedProxies holds it parsed.
	TrustedProxies string
	trustedProxies ratelimit.Proxies

	// KeyEncryptionKeyFile and KeyEncryptionKey (its environment
	// variable only: a key has no place on a command line) say where the
	// key that seals stored secrets is; see package sealed.
	KeyEncryptionKeyFile string
	KeyEncryptionKey     string
}

// command is a subcommand of the server, as a set bit.
type command uint8

const (
	cmdServe command = 1 << iota
	cmdMigrate
	cmdToken
	cmdLoginLink
	cmdBackup
	cmdRestore
	cmdKeys

	cmdAll = cmdServe | cmdMigrate | cmdToken | cmdLoginLink | cmdBackup | cmdRestore | cmdKeys
)

// setting describes one configuration entry; the README's table is made
// from the same names. cmds are the commands that take it as a flag;
// the others keep its environment value or default.
type setting struct {
	flag, env, def, usage string
	target                any
	cmds                  command
}

func (c *config) settings() []setting {
	return []setting{
		{"addr", "CAIRN_ADDR", "127.0.0.1:8080", "address to serve the API on", &c.Addr, cmdServe | cmdLoginLink},
		{"data-dir", "CAIRN_DATA_DIR", "./data", "directory for the embedded database, the generated key-encryption key and local zones", &c.DataDir, cmdAll},
		{"database-url", "CAIRN_DATABASE_URL", "", "postgres:// URL; empty uses embedded SQLite in the data directory", &c.DatabaseURL, cmdServe | cmdMigrate | cmdToken | cmdLoginLink | cmdKeys},
		{"signing-key-file", "CAIRN_SIGNING_KEY_FILE", "", "Ed25519 PEM key imported (created if absent) as the signing key of a database that has none; signing keys live in the database", &c.SigningKeyFile, cmdServe | cmdToken | cmdLoginLink | cmdKeys},
		{"key-encryption-key-file", sealed.EnvKeyFile, "", "file holding the key-encryption key that seals stored secrets (signing keys, webhook secrets); default <data-dir>/" + sealed.DefaultFile + ", created if absent, unless " + sealed.EnvKey + " holds the key itself", &c.KeyEncryptionKeyFile, cmdServe | cmdToken | cmdLoginLink | cmdKeys | cmdBackup | cmdRestore},
		{"issuer", "CAIRN_ISSUER", "cairn", "iss of the tokens Cairn issues", &c.Issuer, cmdServe | cmdToken | cmdLoginLink},
		{"audience", "CAIRN_AUDIENCE", "cairn-api", "aud of the tokens Cairn issues and accepts", &c.Audience, cmdServe | cmdToken | cmdLoginLink},
		{"oidc-issuer", "CAIRN_OIDC_ISSUER", "", "also trust tokens from this OIDC issuer (e.g. a Cognito user pool)", &c.OIDCIssuer, cmdServe},
		{"oidc-jwks-url", "CAIRN_OIDC_JWKS_URL", "", "JWKS URL of the OIDC issuer (default: its discovery document's jwks_uri)", &c.OIDCJWKSURL, cmdServe},
		{"oidc-audience", "CAIRN_OIDC_AUDIENCE", "", "audience required in OIDC tokens", &c.OIDCAudience, cmdServe},
		{"oidc-audience-claim", "CAIRN_OIDC_AUDIENCE_CLAIM", "aud", "claim that carries the audience (Cognito access tokens: client_id)", &c.OIDCAudClaim, cmdServe},
		{"oidc-tenant-claim", "CAIRN_OIDC_TENANT_CLAIM", "custom:tenant_id", "claim of OIDC tokens that carries the tenant ID", &c.OIDCTenantClaim, cmdServe},
		{"oidc-scope-claim", "CAIRN_OIDC_SCOPE_CLAIM", "scope", "claim of OIDC tokens that carries the scopes", &c.OIDCScopeClaim, cmdServe},
		{"oidc-client-id", "CAIRN_OIDC_CLIENT_ID", "", "the portal's public client at the OIDC issuer; set, the portal offers sign-in there (authorization code with PKCE)", &c.OIDCClientID, cmdServe},
		{"oidc-authorization-url", "CAIRN_OIDC_AUTHORIZATION_URL", "", "authorization endpoint of the OIDC issuer, for the portal (default: from its discovery document)", &c.OIDCAuthURL, cmdServe},
		{"oidc-token-url", "CAIRN_OIDC_TOKEN_URL", "", "token endpoint of the OIDC issuer, for the portal, allowed in its connect-src (default: from its discovery document)", &c.OIDCTokenURL, cmdServe},
		{"oidc-scopes", "CAIRN_OIDC_SCOPES", "openid", "scopes the portal asks the OIDC issuer for, space-separated", &c.OIDCScopes, cmdServe},
		{"oidc-portal-token", "CAIRN_OIDC_PORTAL_TOKEN", "access_token", "which token of the issuer's answer the portal sends: access_token or id_token", &c.OIDCPortalToken, cmdServe},
		{"max-tenant-token-ttl", "CAIRN_MAX_TENANT_TOKEN_TTL", "24h", "longest lifetime of a tenant token, minted or accepted (at most 720h)", &c.MaxTenantTokenTTL, cmdServe | cmdToken | cmdKeys},
		{"max-admin-token-ttl", "CAIRN_MAX_ADMIN_TOKEN_TTL", "24h", "longest lifetime of an admin token, minted or accepted (at most 720h)", &c.MaxAdminTokenTTL, cmdServe | cmdToken | cmdLoginLink | cmdKeys},
		{"log-level", "CAIRN_LOG_LEVEL", "info", "debug, info, warn or error", &c.LogLevel, cmdAll},
		{"max-body-bytes", "CAIRN_MAX_BODY_BYTES", "1048576", "largest request body accepted", &c.MaxBodyBytes, cmdServe},
		{"shutdown-timeout", "CAIRN_SHUTDOWN_TIMEOUT", "30s", "how long SIGTERM waits for in-flight requests and jobs", &c.ShutdownTimeout, cmdServe},
		{"job-poll-interval", "CAIRN_JOB_POLL_INTERVAL", "1s", "how often workers look for jobs on SQLite", &c.JobPollInterval, cmdServe},
		{"max-workers", "CAIRN_MAX_WORKERS", "10", "jobs worked at once", &c.MaxWorkers, cmdServe},
		{"cloud", "CAIRN_CLOUD", "local", "where tenant stacks are provisioned: local (directories under the data directory) or aws (CloudFormation)", &c.Cloud, cmdServe},
		{"aws-endpoint-url", "CAIRN_AWS_ENDPOINT_URL", "", "send every AWS API call to this endpoint instead of AWS's own (an emulator, a proxy); the SDK's AWS_ENDPOINT_URL works too", &c.AWSEndpointURL, cmdServe},
		{"stack-poll-interval", "CAIRN_STACK_POLL_INTERVAL", "5s", "how often in-flight stacks are polled (one DescribeStacks round per Region)", &c.StackPollInterval, cmdServe},
		{"cfn-call-rate", "CAIRN_CFN_CALL_RATE", "4", "with cloud aws, CloudFormation calls a second per Region for stacks, rollouts and drift detection together, divided among the live replicas (AWS throttles per account and Region)", &c.CFNCallRate, cmdServe},
		{"drift-interval", "CAIRN_DRIFT_INTERVAL", "24h", "how often CloudFormation drift detection runs on every stack, a Region at a time", &c.DriftInterval, cmdServe},
		{"rollout-templates", "CAIRN_ROLLOUT_TEMPLATES", "", "directory whose tenant-dedicated.yaml and pool.yaml rollouts apply instead of the templates built in (each file present replaces its template)", &c.RolloutTemplates, cmdServe},
		{"lake-interval", "CAIRN_LAKE_INTERVAL", "5m", "how often every active tenant's raw zone is refined into its clean and curated zones (on Athena with cloud aws, DuckDB otherwise); at least 1s; 0 turns the refinery's sweep off", &c.LakeInterval, cmdServe},
		{"query-timeout", "CAIRN_QUERY_TIMEOUT", "60s", "time limit of a tenant's SQL query over its lake (DuckDB, or Athena with cloud aws); at least 1s", &c.QueryTimeout, cmdServe},
		{"migration-drain", "CAIRN_MIGRATION_DRAIN", "3s", "how long a tier migration waits, after fencing the tenant's writes (503), for every replica to see the fence and finish the writes it admitted before it copies the last changes and switches the tenant; at least 1s", &c.MigrationDrain, cmdServe},
		{"usage-report-bucket", "CAIRN_USAGE_REPORT_BUCKET", "", "s3://bucket[/prefix] (in AWS_REGION) that receives the daily usage reports; empty writes them to <data-dir>/usage-reports", &c.UsageReportBucket, cmdServe},
		{"key-encryption-kms-key", "CAIRN_KEY_ENCRYPTION_KMS_KEY", "", "ARN of an AWS KMS key (or alias) whose data key, kept wrapped in the database, seals the signing keys; instead of CAIRN_KEY_ENCRYPTION_KEY(_FILE)", &c.KEKKMSKey, cmdServe | cmdToken | cmdLoginLink | cmdKeys},
		{"stack-role-arn", "CAIRN_STACK_ROLE_ARN", "", "ARN of the IAM role CloudFormation creates and deletes tenant stacks with (with cloud aws); empty uses the server's own credentials", &c.StackRoleARN, cmdServe},
		{"tenant-role-boundary", "CAIRN_TENANT_ROLE_BOUNDARY", "", "ARN of the managed policy that pooled tenants' own IAM roles are created with as their permissions boundary (with cloud aws; deploy/control-plane.yaml's PooledTenantRoleBoundary)", &c.TenantRoleBoundary, cmdServe},
		{"migrate", "CAIRN_MIGRATE", "true", "bring the database schema up to date at start; false refuses to start on a schema older than this version (run \"server migrate\" first)", &c.Migrate, cmdServe},
		{"replica-lease", "CAIRN_REPLICA_LEASE", "15s", "how long a replica's lease in the database lasts unless renewed (every third of it); a local-engine replica starts only when no other holds one", &c.ReplicaLease, cmdServe},
		{"webhook-allow-http", "CAIRN_WEBHOOK_ALLOW_HTTP", "false", "let webhook endpoints use http:// URLs (https only otherwise)", &c.WebhookAllowHTTP, cmdServe},
		{"webhook-allow-cidrs", "CAIRN_WEBHOOK_ALLOW_CIDRS", "", "comma-separated address ranges (10.0.0.0/8, ...) webhook endpoints may reach although they are private, loopback or link-local", &c.WebhookAllowCIDRs, cmdServe},
		{"rate-limits", "CAIRN_RATE_LIMITS", "true", "enforce the tenants' plans (events a second per source and per tenant, requests a second per token, the monthly quota of events) and the budget of refused credentials per client address", &c.RateLimits, cmdServe},
		{"failed-auth-burst", "CAIRN_FAILED_AUTH_BURST", "20", "requests with a refused token or write key a client address may send at once before its requests are refused (429)", &c.FailedAuthBurst, cmdServe},
		{"failed-auth-per-minute", "CAIRN_FAILED_AUTH_PER_MINUTE", "60", "refused tokens or write keys a client address may send a minute after its burst; 0 sets no limit", &c.FailedAuthPerMinute, cmdServe},
		{"trusted-proxies", "CAIRN_TRUSTED_PROXIES", "", "comma-separated addresses and ranges (10.0.0.0/16, ...) of the load balancers in front of the server, whose X-Forwarded-For names the client; no other request's is believed", &c.TrustedProxies, cmdServe},
	}
}

// register adds the settings that cmd takes to fs, with defaults taken
// from the environment, falling back to the built-in defaults; the other
// settings get that value without a flag.
func (c *config) register(fs *flag.FlagSet, getenv func(string) string, cmd command) error {
	for _, s := range c.settings() {
		def := s.def
		if v := getenv(s.env); v != "" {
			def = v
		}
		usage := fmt.Sprintf("%s (env %s)", s.usage, s.env)
		own := s.cmds&cmd != 0
		switch t := s.target.(type) {
		case *string:
			if own {
				fs.StringVar(t, s.flag, def, usage)
			} else {
				*t = def
			}
		case *int64:
			n, err := strconv.ParseInt(def, 10, 64)
			if err != nil {
				return fmt.Errorf("%s: %q is not an integer", s.env, def)
			}
			if own {
				fs.Int64Var(t, s.flag, n, usage)
			} else {
				*t = n
			}
		case *int:
			n, err := strconv.Atoi(def)
			if err != nil {
				return fmt.Errorf("%s: %q is not an integer", s.env, def)
			}
			if own {
				fs.IntVar(t, s.flag, n, usage)
			} else {
				*t = n
			}
		case *bool:
			b, err := strconv.ParseBool(def)
			if err != nil {
				return fmt.Errorf("%s: %q is not true or false", s.env, def)
			}
			if own {
				fs.BoolVar(t, s.flag, b, usage)
			} else {
				*t = b
			}
		case *time.Duration:
			d, err := time.ParseDuration(def)
			if err != nil {
				return fmt.Errorf("%s: %q is not a duration", s.env, def)
			}
			if own {
				fs.DurationVar(t, s.flag, d, usage)
			} else {
				*t = d
			}
		}
	}
	return nil
}

// awsSettings are the client settings of every AWS adapter (engine,
// catalog, credentials, profile store, raw zone, usage reports, KMS), made
// from the configuration in this one place; calls, if not nil, counts
// their calls.
func (c *config) awsSettings(calls *awsclient.CallCounter) awsclient.Settings {
	return awsclient.Settings{EndpointURL: c.AWSEndpointURL, Calls: calls}
}

func (c *config) validate() error {
	if c.KEKKMSKey != "" && (c.KeyEncryptionKey != "" || c.KeyEncryptionKeyFile != "") {
		return fmt.Errorf("key-encryption-kms-key: set it or %s / %s, not both", sealed.EnvKey, sealed.EnvKeyFile)
	}
	if c.ReplicaLease < time.Second {
		return errors.New("replica-lease must be at least 1s")
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
	if c.MigrationDrain < time.Second {
		return errors.New("migration-drain must be at least 1s")
	}
	if c.LakeInterval != 0 && c.LakeInterval < time.Second {
		return errors.New("lake-interval must be 0 (off) or at least 1s")
	}
	if c.QueryTimeout < time.Second {
		return errors.New("query-timeout must be at least 1s")
	}
	if c.MaxWorkers < 1 {
		return errors.New("max-workers must be at least 1")
	}
	if c.DriftInterval < time.Second {
		return errors.New("drift-interval must be at least 1s")
	}
	if c.CFNCallRate < 1 {
		return errors.New("cfn-call-rate must be at least 1")
	}
	for _, d := range []time.Duration{c.MaxTenantTokenTTL, c.MaxAdminTokenTTL} {
		if d < time.Minute || d > 720*time.Hour {
			return fmt.Errorf("token lifetime maximum %s: want 1m to 720h", d)
		}
	}
	// An OIDC endpoint left unset is read from the issuer's discovery
	// document at start (discoverOIDC); one that is set must be a URL.
	if c.OIDCClientID != "" && c.OIDCIssuer == "" {
		return errors.New("oidc-client-id needs oidc-issuer")
	}
	for _, u := range []struct{ name, v string }{{"oidc-issuer", c.OIDCIssuer}, {"oidc-jwks-url", c.OIDCJWKSURL},
		{"oidc-authorization-url", c.OIDCAuthURL}, {"oidc-token-url", c.OIDCTokenURL}} {
		if _, err := portal.Origin(u.v); u.v != "" && err != nil {
			return fmt.Errorf("%s: %w", u.name, err)
		}
	}
	if c.OIDCPortalToken != "access_token" && c.OIDCPortalToken != "id_token" {
		return fmt.Errorf("oidc-portal-token %q: want access_token or id_token", c.OIDCPortalToken)
	}
	c.webhookAllow = nil
	for _, cidr := range strings.Split(c.WebhookAllowCIDRs, ",") {
		if cidr = strings.TrimSpace(cidr); cidr == "" {
			continue
		}
		p, err := netip.ParsePrefix(cidr)
		if err != nil {
			return fmt.Errorf("webhook-allow-cidrs: %q is not an address range like 10.0.0.0/8", cidr)
		}
		c.webhookAllow = append(c.webhookAllow, p.Masked())
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		return err
	}
	if c.FailedAuthBurst < 1 || c.FailedAuthPerMinute < 0 {
		return errors.New("failed-auth-burst must be at least 1 and failed-auth-per-minute at least 0")
	}
	var err error
	if c.trustedProxies, err = ratelimit.ParseProxies(c.TrustedProxies); err != nil {
		return fmt.Errorf("trusted-proxies: %w", err)
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

// errHelpShown is returned when help was asked for and printed: run
// succeeds.
var errHelpShown = errors.New("help shown")

// commands describes the subcommands for the top-level help.
const commands = `Usage: server [command] [flags]

Commands:
  serve       serve the API (the default when no command is given)
  migrate     bring the database schema up to date and exit
  token       print an ISV admin token (--admin) or a tenant token (--tenant ID)
  login-link  print a one-time sign-in link to the admin portal
  backup      back up the embedded default, while it runs: server backup DIR
  restore     restore a backup into a new data directory: server restore DIR
  keys        rotate the token signing key: server keys rotate
  healthcheck exit 0 if a running server is ready (GET /readyz), 1 if not
  help        print this help, or a command's: server help token

Every flag is also a CAIRN_* environment variable; a flag wins.
Run "server COMMAND --help" for a command's flags.
`

// parseConfig parses args (without the subcommand) into a config, with
// the flags of cmd only; extra adds the command's own flags. Help asked for
// (-h, --help) is printed to stdout and answered with errHelpShown; a
// parse error prints the usage to stderr.
func parseConfig(name string, cmd command, args []string, getenv func(string) string, stdout, stderr io.Writer, extra func(*flag.FlagSet)) (*config, error) {
	c, rest, err := parseConfigArgs(name, "", cmd, args, getenv, stdout, stderr, extra)
	if err == nil && len(rest) > 0 {
		err = fmt.Errorf("unexpected argument %q", rest[0])
	}
	return c, err
}

// parseConfigArgs is parseConfig for a command that takes arguments after
// its flags (named operands in its usage line); it returns them.
func parseConfigArgs(name, operands string, cmd command, args []string, getenv func(string) string, stdout, stderr io.Writer, extra func(*flag.FlagSet)) (*config, []string, error) {
	var c config
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := c.register(fs, getenv, cmd); err != nil {
		return nil, nil, err
	}
	if extra != nil {
		extra(fs)
	}
	fs.Usage = func() {
		w := fs.Output()
		if cmd == cmdServe {
			fmt.Fprint(w, commands)
			fmt.Fprintf(w, "\nFlags of serve:\n")
		} else {
			fmt.Fprintf(w, "Usage: %s [flags]%s\n\nFlags:\n", name, operands)
		}
		fs.PrintDefaults()
	}
	if wantsHelp(args) {
		fs.SetOutput(stdout)
		fs.Usage()
		return nil, nil, errHelpShown
	}
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	c.KeyEncryptionKey = getenv(sealed.EnvKey)
	return &c, fs.Args(), c.validate()
}

// wantsHelp reports whether args ask for help before any "--".
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--h", "--help":
			return true
		}
	}
	return false
}
