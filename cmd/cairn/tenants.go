package main

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"time"

	openapi_types "github.com/oapi-codegen/runtime/types"
	"github.com/spf13/cobra"

	"github.com/cairn-cdp/cairn/client"
)

var tenantColumns = cols("ID", "id", "SLUG", "slug", "NAME", "name", "TIER", "tier", "STATUS", "status",
	"HOME", "home_region", "REGIONS", "regions", "UPDATED", "updated_at")

func (a *app) tenantsCommand() *cobra.Command {
	var (
		lf                              tenantFilters
		fields                          tenantFields
		slug, tier, home, file, ifMatch string
		purge                           bool
		w                               waitFlags
		forCond                         string
	)
	ifMatchFlag := func(cmd *cobra.Command) {
		cmd.Flags().StringVar(&ifMatch, "if-match", "", `apply only if the tenant's ETag is this one (e.g. '"v3"')`)
	}
	byID := func(use, short string, send func(ctx context.Context, x call) (*http.Response, error)) op {
		return op{use: use + " TENANT_ID", short: short, args: cobra.ExactArgs(1), complete: a.completeTenantArg,
			columns: tenantColumns, send: send, flags: ifMatchFlag}
	}
	cmd := a.group("tenants", "Onboard tenants and run their lifecycle", []string{"tenant"},
		op{
			use: "list", short: "List tenants", columns: tenantColumns,
			example: `  cairn tenants list --status active --region eu-west-1
  cairn tenants list --label plan=gold --all -o json`,
			list: func(ctx context.Context, x call, limit *client.Limit, cursor *client.Cursor) (*http.Response, error) {
				return x.c.ListTenants(ctx, lf.params(x.cmd, limit, cursor))
			},
			flags: lf.add,
		},
		op{
			use: "get TENANT_ID", short: "Show a tenant", args: cobra.ExactArgs(1), complete: a.completeTenantArg, columns: tenantColumns,
			send: func(ctx context.Context, x call) (*http.Response, error) { return x.c.GetTenant(ctx, x.args[0]) },
		},
		op{
			use: "create", short: "Onboard a tenant (its stacks are provisioned in the background)", columns: tenantColumns,
			example: `  cairn tenants create --name Acme --slug acme --tier pooled --home-region eu-west-1
  cairn tenants wait "$(cairn tenants create -f acme.yaml -o json | jq -r .id)" --for status=active`,
			create: func(ctx context.Context, x call, key *string) (*http.Response, error) {
				p := &client.CreateTenantParams{IdempotencyKey: key}
				if file != "" {
					raw, err := a.readBody(file)
					if err != nil {
						return nil, err
					}
					return x.c.CreateTenantWithBody(ctx, p, "application/json", bytes.NewReader(raw))
				}
				if fields.name == "" || slug == "" || tier == "" || home == "" {
					return nil, usagef("give --name, --slug, --tier and --home-region (or the whole tenant with -f FILE)")
				}
				labels, err := parseLabels(fields.labels)
				if err != nil {
					return nil, err
				}
				return x.c.CreateTenant(ctx, p, client.TenantCreate{Name: fields.name, Slug: slug, Tier: client.Tier(tier),
					HomeRegion: client.Region(home), Regions: toRegions(fields.regions), Plan: optional(x.cmd, "plan", fields.plan),
					ContactEmail: fields.email(x.cmd), Labels: labels})
			},
			flags: func(cmd *cobra.Command) {
				f := cmd.Flags()
				f.StringVar(&slug, "slug", "", "the tenant's unique slug (a-z, 0-9, '-')")
				f.StringVar(&tier, "tier", "", "pooled (a slice of the Region's pool) or dedicated (stacks of its own)")
				f.StringVar(&home, "home-region", "", "where its profiles live")
				f.StringVarP(&file, "filename", "f", "", "the whole TenantCreate body from a JSON or YAML file (- for standard input)")
				fields.add(cmd, "every Region it uses (repeat, or comma-separate); the home Region is always included")
				_ = cmd.RegisterFlagCompletionFunc("home-region", completeRegions)
				_ = cmd.RegisterFlagCompletionFunc("tier", cobra.FixedCompletions([]string{"pooled", "dedicated"}, cobra.ShellCompDirectiveNoFileComp))
			},
		},
		op{
			use: "update TENANT_ID", short: "Change a tenant's name, plan, contact, labels, or add Regions",
			args: cobra.ExactArgs(1), complete: a.completeTenantArg, columns: tenantColumns,
			send: func(ctx context.Context, x call) (*http.Response, error) {
				labels, err := parseLabels(fields.labels)
				if err != nil {
					return nil, err
				}
				return x.c.UpdateTenant(ctx, x.args[0], &client.UpdateTenantParams{IfMatch: optional(x.cmd, "if-match", ifMatch)},
					client.TenantUpdate{Name: optional(x.cmd, "name", fields.name), Plan: optional(x.cmd, "plan", fields.plan),
						ContactEmail: fields.email(x.cmd), Regions: toRegions(fields.regions), Labels: labels})
			},
			flags: func(cmd *cobra.Command) {
				fields.add(cmd, "the whole new Region list (Regions can only be added)")
				ifMatchFlag(cmd)
			},
		},
		byID("suspend", "Suspend a tenant (its grants are taken away)", func(ctx context.Context, x call) (*http.Response, error) {
			return x.c.SuspendTenant(ctx, x.args[0], &client.SuspendTenantParams{IfMatch: optional(x.cmd, "if-match", ifMatch)})
		}),
		byID("resume", "Resume a suspended tenant (its grants are restored)", func(ctx context.Context, x call) (*http.Response, error) {
			return x.c.ResumeTenant(ctx, x.args[0], &client.ResumeTenantParams{IfMatch: optional(x.cmd, "if-match", ifMatch)})
		}),
		byID("retry", "Retry a failed tenant's provisioning, or its offboarding", func(ctx context.Context, x call) (*http.Response, error) {
			return x.c.RetryTenant(ctx, x.args[0], &client.RetryTenantParams{IfMatch: optional(x.cmd, "if-match", ifMatch)})
		}),
		op{
			use: "delete TENANT_ID", aliases: []string{"offboard"}, short: "Offboard a tenant (it is left as a deleted tombstone)",
			args: cobra.ExactArgs(1), complete: a.completeTenantArg, columns: tenantColumns, done: "The tenant is being offboarded.",
			send: func(ctx context.Context, x call) (*http.Response, error) {
				p := &client.DeleteTenantParams{IfMatch: optional(x.cmd, "if-match", ifMatch)}
				if purge {
					p.Purge = &purge
				}
				return x.c.DeleteTenant(ctx, x.args[0], p)
			},
			flags: func(cmd *cobra.Command) {
				cmd.Flags().BoolVar(&purge, "purge", false, "also delete the data buckets, which are otherwise retained")
				ifMatchFlag(cmd)
			},
		},
		op{
			use: "wait TENANT_ID", short: "Wait until a tenant has a status (exit code 5 on timeout)",
			long: `Wait until a tenant's field has a value, --for status=active by default.
A tenant that is failed or deleted never leaves that status by itself: waiting
for another one ends there, with exit code 5.`,
			example: `  cairn tenants wait ten_7f3kq2w6xbm4zr5vjc2nd7ayqe --for status=active --timeout 10m
  cairn tenants wait ten_7f3kq2w6xbm4zr5vjc2nd7ayqe --for status=deleted`,
			args: cobra.ExactArgs(1), complete: a.completeTenantArg,
			send: func(ctx context.Context, x call) (*http.Response, error) {
				cond, err := parseCondition(forCond, "failed", "deleted")
				if err != nil {
					return nil, err
				}
				body, err := a.waitUntil(ctx, w, "tenant "+x.args[0], cond, func(ctx context.Context) ([]byte, error) {
					return read(x.c.GetTenant(ctx, x.args[0]))
				})
				return nil, a.showWaited(body, tenantColumns, err)
			},
			flags: func(cmd *cobra.Command) {
				cmd.Flags().StringVar(&forCond, "for", "status=active", "the condition, FIELD=VALUE")
				w.add(cmd, 10*time.Minute)
			},
		},
	)
	return cmd
}

// tenantFilters are the list's filters.
type tenantFilters struct {
	status, tier, region, query, label string
}

func (l *tenantFilters) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&l.status, "status", "", "only tenants in this status")
	f.StringVar(&l.tier, "tier", "", "only tenants of this tier: pooled or dedicated")
	f.StringVar(&l.region, "region", "", "only tenants in this Region")
	f.StringVarP(&l.query, "q", "q", "", "only tenants whose name, slug or ID contains this text")
	f.StringVar(&l.label, "label", "", "only tenants with this label (key) or label value (key=value)")
	_ = cmd.RegisterFlagCompletionFunc("region", completeRegions)
	_ = cmd.RegisterFlagCompletionFunc("status", cobra.FixedCompletions(
		[]string{"provisioning", "active", "suspended", "failed", "deprovisioning", "deleted"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("tier", cobra.FixedCompletions([]string{"pooled", "dedicated"}, cobra.ShellCompDirectiveNoFileComp))
}

func (l *tenantFilters) params(cmd *cobra.Command, limit *client.Limit, cursor *client.Cursor) *client.ListTenantsParams {
	p := &client.ListTenantsParams{Limit: limit, Cursor: cursor, Q: optional(cmd, "q", l.query), Label: optional(cmd, "label", l.label)}
	if cmd.Flags().Changed("status") {
		s := client.TenantStatus(l.status)
		p.Status = &s
	}
	if cmd.Flags().Changed("tier") {
		t := client.Tier(l.tier)
		p.Tier = &t
	}
	if cmd.Flags().Changed("region") {
		r := client.Region(l.region)
		p.Region = &r
	}
	return p
}

// tenantFields are the fields that create and update share.
type tenantFields struct {
	name, plan, contact string
	regions, labels     []string
}

func (t *tenantFields) add(cmd *cobra.Command, regionsUsage string) {
	f := cmd.Flags()
	f.StringVar(&t.name, "name", "", "the tenant's display name")
	f.StringVar(&t.plan, "plan", "", "the tenant's plan")
	f.StringVar(&t.contact, "contact-email", "", "who to contact about the tenant")
	f.StringSliceVar(&t.regions, "region", nil, regionsUsage)
	f.StringArrayVar(&t.labels, "label", nil, "a label key=value (repeat; on update, the whole new set)")
	_ = cmd.RegisterFlagCompletionFunc("region", completeRegions)
}

func (t *tenantFields) email(cmd *cobra.Command) *openapi_types.Email {
	if !cmd.Flags().Changed("contact-email") {
		return nil
	}
	e := openapi_types.Email(t.contact)
	return &e
}

// parseLabels turns key=value flags into labels.
func parseLabels(ss []string) (*client.Labels, error) {
	if len(ss) == 0 {
		return nil, nil
	}
	l := client.Labels{}
	for _, s := range ss {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return nil, usagef("--label wants key=value, not %q", s)
		}
		l[k] = v
	}
	return &l, nil
}

func toRegions(ss []string) *[]client.Region {
	if len(ss) == 0 {
		return nil
	}
	r := make([]client.Region, len(ss))
	for i, s := range ss {
		r[i] = client.Region(s)
	}
	return &r
}

func addIdempotencyFlag(cmd *cobra.Command) {
	cmd.Flags().String("idempotency-key", "", "the request's Idempotency-Key (default: a new one, reused when the request is retried)")
}
