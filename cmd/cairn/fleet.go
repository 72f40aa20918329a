package main

import (
	"context"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairn-cdp/cairn/client"
)

var (
	stackColumns = cols("REGION", "region", "KIND", "kind", "STATUS", "status", "STACK", "stack_name",
		"STACK STATUS", "stack_status", "ATTEMPT", "attempt", "ERROR", "last_error")
	stackEventColumns = cols("TIME", "time", "RESOURCE", "logical_id", "TYPE", "resource_type", "STATUS", "status", "REASON", "reason")
	poolColumns       = cols("REGION", "region", "STATUS", "status", "STACK", "stack_name", "TENANTS", "tenant_count", "ERROR", "last_error")
	tokenColumns      = cols("TENANT", "tenant_id", "SCOPES", "scopes", "EXPIRES", "expires_at", "TOKEN", "token")
)

func (a *app) stacksCommand() *cobra.Command {
	return a.group("stacks", "A tenant's CDP data stacks, one per Region", []string{"stack"},
		op{
			use: "list", short: "List the tenant's stacks", tenant: true, columns: stackColumns,
			send: func(ctx context.Context, x call) (*http.Response, error) { return x.c.ListTenantStacks(ctx, x.tenant) },
		},
		op{
			use: "events REGION", short: "List the CloudFormation events of the tenant's stack in a Region", tenant: true,
			args: cobra.ExactArgs(1), complete: completeRegionArg, columns: stackEventColumns,
			list: func(ctx context.Context, x call, limit *client.Limit, cursor *client.Cursor) (*http.Response, error) {
				return x.c.ListStackEvents(ctx, x.tenant, client.Region(x.args[0]), &client.ListStackEventsParams{Limit: limit, Cursor: cursor})
			},
		},
		op{
			use: "retry REGION", short: "Replace the tenant's failed stack in a Region", tenant: true,
			args: cobra.ExactArgs(1), complete: completeRegionArg, columns: stackColumns,
			send: func(ctx context.Context, x call) (*http.Response, error) {
				return x.c.RetryStack(ctx, x.tenant, client.Region(x.args[0]))
			},
		},
	)
}

func (a *app) poolsCommand() *cobra.Command {
	return a.group("pools", "The shared pool stacks of pooled tenants, one per Region", []string{"pool"},
		op{
			use: "list", short: "List the pools", columns: poolColumns,
			send: func(ctx context.Context, x call) (*http.Response, error) { return x.c.ListPools(ctx) },
		},
	)
}

func (a *app) tokensCommand() *cobra.Command {
	var (
		scopes []string
		ttl    time.Duration
	)
	return a.group("tokens", "Tokens for a tenant's SDK calls", []string{"token"},
		op{
			use: "create", short: "Mint a token for the tenant", tenant: true, columns: tokenColumns,
			example: `  cairn tokens create --tenant ten_7f3kq2w6xbm4zr5vjc2nd7ayqe --scope profiles:read --scope events:write -o json`,
			send: func(ctx context.Context, x call) (*http.Response, error) {
				if len(scopes) == 0 {
					return nil, usagef("give at least one --scope")
				}
				body := client.TokenCreate{}
				for _, s := range scopes {
					body.Scopes = append(body.Scopes, client.TenantScope(s))
				}
				if x.cmd.Flags().Changed("ttl") {
					secs := int(ttl / time.Second)
					body.TtlSeconds = &secs
				}
				return x.c.CreateTenantToken(ctx, x.tenant, body)
			},
			flags: func(cmd *cobra.Command) {
				cmd.Flags().StringSliceVar(&scopes, "scope", nil, "a scope of the token (repeat, or comma-separate)")
				cmd.Flags().DurationVar(&ttl, "ttl", time.Hour, "the token's lifetime")
				_ = cmd.RegisterFlagCompletionFunc("scope", cobra.FixedCompletions([]string{
					"profiles:read", "profiles:write", "events:write", "segments:read", "segments:write",
					"webhooks:read", "webhooks:write", "grants:write"}, cobra.ShellCompDirectiveNoFileComp))
			},
		},
	)
}
