package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairn-cdp/cairn/client"
)

var (
	principalColumns = cols("PRINCIPAL", "principal", "TENANT", "tenant_id", "CREATED", "created_at")
	grantColumns     = cols("ID", "id", "PRINCIPAL", "principal", "REGION", "resource.region", "DATABASE", "resource.database",
		"TABLE", "resource.table", "PERMISSIONS", "permissions", "STATUS", "status", "REASON", "reason")
	reconcileColumns = cols("REGIONS", "regions", "REPAIRED", "repaired", "UNMANAGED", "unmanaged")
	auditColumns     = cols("TIME", "time", "TENANT", "tenant_id", "ACTOR", "actor", "ACTION", "action",
		"TARGET", "target_type", "ID", "target_id", "OUTCOME", "outcome", "REQUEST", "request_id", "DETAIL", "detail")
)

func (a *app) principalsCommand() *cobra.Command {
	return a.group("principals", "The AWS principals that may receive the tenant's grants", []string{"principal"},
		op{
			use: "list", short: "List the tenant's principals", tenant: true, columns: principalColumns,
			list: func(ctx context.Context, x call, limit *client.Limit, cursor *client.Cursor) (*http.Response, error) {
				return x.c.ListPrincipals(ctx, x.tenant, &client.ListPrincipalsParams{Limit: limit, Cursor: cursor})
			},
		},
		op{
			use: "add PRINCIPAL", short: "Register an AWS account ID or role ARN for the tenant", tenant: true,
			args: cobra.ExactArgs(1), columns: principalColumns,
			create: func(ctx context.Context, x call, key *string) (*http.Response, error) {
				return x.c.RegisterPrincipal(ctx, x.tenant, &client.RegisterPrincipalParams{IdempotencyKey: key}, client.PrincipalRef{Principal: x.args[0]})
			},
		},
		op{
			use: "remove PRINCIPAL", short: "Release a principal from the tenant", tenant: true,
			args: cobra.ExactArgs(1), columns: principalColumns, done: "Principal removed.",
			send: func(ctx context.Context, x call) (*http.Response, error) {
				return x.c.RemovePrincipal(ctx, x.tenant, client.PrincipalRef{Principal: x.args[0]})
			},
		},
	)
}

func (a *app) grantsCommand() *cobra.Command {
	var (
		principal, status, region, database, table, file string
		columnNames, permissions                         []string
	)
	return a.group("grants", "Lake Formation grants on the tenant's data", []string{"grant"},
		op{
			use: "list", short: "List the tenant's grants", tenant: true, columns: grantColumns,
			list: func(ctx context.Context, x call, limit *client.Limit, cursor *client.Cursor) (*http.Response, error) {
				p := &client.ListGrantsParams{Limit: limit, Cursor: cursor, Principal: optional(x.cmd, "principal", principal)}
				if x.cmd.Flags().Changed("status") {
					s := client.GrantStatus(status)
					p.Status = &s
				}
				return x.c.ListGrants(ctx, x.tenant, p)
			},
			flags: func(cmd *cobra.Command) {
				cmd.Flags().StringVar(&principal, "principal", "", "only grants to this principal")
				cmd.Flags().StringVar(&status, "status", "", "only grants in this status")
			},
		},
		op{
			use: "get GRANT_ID", short: "Show a grant", tenant: true, args: cobra.ExactArgs(1), columns: grantColumns,
			send: func(ctx context.Context, x call) (*http.Response, error) {
				return x.c.GetGrant(ctx, x.tenant, x.args[0])
			},
		},
		op{
			use: "create", short: "Grant a principal permissions on the tenant's database, a table or columns", tenant: true, columns: grantColumns,
			example: `  cairn grants create --tenant ten_7f3kq2w6xbm4zr5vjc2nd7ayqe --principal 123456789012 \
    --region eu-west-1 --database cairn_acme --table events --permission SELECT`,
			create: func(ctx context.Context, x call, key *string) (*http.Response, error) {
				p := &client.CreateGrantParams{IdempotencyKey: key}
				if file != "" {
					raw, err := a.readBody(file)
					if err != nil {
						return nil, err
					}
					return x.c.CreateGrantWithBody(ctx, x.tenant, p, "application/json", bytes.NewReader(raw))
				}
				if principal == "" || region == "" || database == "" || len(permissions) == 0 {
					return nil, usagef("give --principal, --region, --database and --permission (or the whole grant with -f FILE)")
				}
				body := client.GrantCreate{Principal: principal,
					Resource: client.GrantResource{Region: client.Region(region), Database: database, Table: optional(x.cmd, "table", table)}}
				if len(columnNames) > 0 {
					body.Resource.Columns = &columnNames
				}
				for _, perm := range permissions {
					body.Permissions = append(body.Permissions, client.Permission(perm))
				}
				return x.c.CreateGrant(ctx, x.tenant, p, body)
			},
			flags: func(cmd *cobra.Command) {
				f := cmd.Flags()
				f.StringVar(&principal, "principal", "", "the registered principal to grant to")
				f.StringVar(&region, "region", "", "the Region of the tenant's database")
				f.StringVar(&database, "database", "", "the tenant's Glue database (its stacks' glue_database)")
				f.StringVar(&table, "table", "", "a table of the database (default: the database itself)")
				f.StringSliceVar(&columnNames, "column", nil, "a column of the table (repeat; default: every column)")
				f.StringSliceVar(&permissions, "permission", nil, "SELECT, DESCRIBE, ... (repeat)")
				f.StringVarP(&file, "filename", "f", "", "the whole GrantCreate body from a JSON or YAML file")
				_ = cmd.RegisterFlagCompletionFunc("region", completeRegions)
				_ = cmd.RegisterFlagCompletionFunc("permission", cobra.FixedCompletions(
					[]string{"SELECT", "DESCRIBE", "INSERT", "DELETE", "ALTER", "DROP", "DATA_LOCATION_ACCESS"}, cobra.ShellCompDirectiveNoFileComp))
			},
		},
		op{
			use: "revoke GRANT_ID", short: "Revoke a grant", tenant: true, args: cobra.ExactArgs(1), columns: grantColumns,
			done: "Grant revoked.",
			send: func(ctx context.Context, x call) (*http.Response, error) {
				return x.c.RevokeGrant(ctx, x.tenant, x.args[0])
			},
		},
		op{
			use: "reconcile", short: "Re-apply grants missing from Lake Formation; report permissions made outside Cairn", tenant: true,
			columns: reconcileColumns,
			send:    func(ctx context.Context, x call) (*http.Response, error) { return x.c.ReconcileGrants(ctx, x.tenant) },
		},
	)
}

func (a *app) auditCommand() *cobra.Command {
	var (
		actor, action, from, to string
		all                     bool
	)
	return a.group("audit", "The audit trail: every change made through the API, who made it and in which request", nil,
		op{
			use: "list", short: "List audit events (of --tenant, or of every tenant without it)", columns: auditColumns,
			list: func(ctx context.Context, x call, limit *client.Limit, cursor *client.Cursor) (*http.Response, error) {
				p := &client.ListAuditEventsParams{Limit: limit, Cursor: cursor,
					Actor: optional(x.cmd, "actor", actor), Action: optional(x.cmd, "action", action)}
				if !all {
					if t, err := a.resolve(); err == nil && t.tenant != "" {
						p.TenantId = &t.tenant
					}
				}
				for _, tf := range []struct {
					flag, value string
					into        **time.Time
				}{{"from", from, &p.From}, {"to", to, &p.To}} {
					if tf.value == "" {
						continue
					}
					t, err := time.Parse(time.RFC3339, tf.value)
					if err != nil {
						return nil, usagef("--%s wants an RFC 3339 time, e.g. 2026-01-02T15:04:05Z", tf.flag)
					}
					*tf.into = &t
				}
				return x.c.ListAuditEvents(ctx, p)
			},
			flags: func(cmd *cobra.Command) {
				f := cmd.Flags()
				f.StringVar(&actor, "actor", "", "only events by this actor")
				f.StringVar(&action, "action", "", "only events of this action")
				f.StringVar(&from, "from", "", "only events at or after this time (RFC 3339)")
				f.StringVar(&to, "to", "", "only events before this time (RFC 3339)")
				f.BoolVar(&all, "every-tenant", false, "ignore the context's tenant: list every tenant's events")
			},
		},
	)
}

// credentialsCommand prints short-lived AWS credentials confined to the
// tenant's data, in the shapes the AWS tools read.
func (a *app) credentialsCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "credentials",
		Short: "Issue one-hour AWS credentials confined to the tenant's data",
		Long: `Issue one-hour AWS credentials on the tenant's data-access role, confined to
its buckets (or pool prefixes) and its DynamoDB keys.

--format env (the default) prints export lines for a shell; --format process
prints the JSON of the AWS CLI's credential_process (Version 1); -o json or
-o yaml print the API's answer, with the stack outputs.`,
		Example: `  eval "$(cairn credentials --tenant ten_7f3kq2w6xbm4zr5vjc2nd7ayqe)"

  # ~/.aws/config
  [profile tenant-acme]
  credential_process = cairn credentials --context prod --tenant ten_7f3kq2w6xbm4zr5vjc2nd7ayqe --format process
  region = eu-west-1
  # then: aws --profile tenant-acme s3 ls`,
		Args:              cobra.NoArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "env" && format != "process" {
				return usagef("--format must be env or process, not %q", format)
			}
			c, tenant, err := a.session()
			if err != nil {
				return err
			}
			body, err := read(c.CreateCredentials(cmd.Context(), tenant))
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("output") && !cmd.Flags().Changed("format") {
				return a.show(body, nil, "")
			}
			var cr struct {
				AccessKeyID     string `json:"access_key_id"`
				SecretAccessKey string `json:"secret_access_key"`
				SessionToken    string `json:"session_token"`
				ExpiresAt       string `json:"expires_at"`
				Region          string `json:"region"`
			}
			if err := json.Unmarshal(body, &cr); err != nil {
				return transportError{fmt.Errorf("reading the credentials: %w", err)}
			}
			if format == "process" {
				out, err := json.MarshalIndent(map[string]any{
					"Version": 1, "AccessKeyId": cr.AccessKeyID, "SecretAccessKey": cr.SecretAccessKey,
					"SessionToken": cr.SessionToken, "Expiration": cr.ExpiresAt,
				}, "", "  ")
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(a.stdout, "%s\n", out)
				return err
			}
			for _, kv := range [][2]string{{"AWS_ACCESS_KEY_ID", cr.AccessKeyID}, {"AWS_SECRET_ACCESS_KEY", cr.SecretAccessKey},
				{"AWS_SESSION_TOKEN", cr.SessionToken}, {"AWS_REGION", cr.Region}, {"AWS_CREDENTIAL_EXPIRATION", cr.ExpiresAt}} {
				fmt.Fprintf(a.stdout, "export %s=%s\n", kv[0], shellQuote(kv[1]))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "env", "env (export lines) or process (credential_process JSON)")
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"env", "process"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
