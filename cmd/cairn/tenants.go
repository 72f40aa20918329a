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
	cmd := &cobra.Command{
		Use:     "tenants",
		Aliases: []string{"tenant"},
		Short:   "Onboard tenants and run their lifecycle",
		Args:    cobra.ArbitraryArgs,
		RunE:    parentRunE,
	}
	cmd.AddCommand(a.tenantsListCommand(), a.tenantsGetCommand(), a.tenantsCreateCommand(),
		a.tenantsUpdateCommand(), a.tenantsWaitCommand(), a.tenantsDeleteCommand())
	for _, op := range []struct {
		use, short string
		call       func(c *client.Client, ctx context.Context, id string, ifMatch *string) (*http.Response, error)
	}{
		{"suspend", "Suspend a tenant (its grants are taken away)", func(c *client.Client, ctx context.Context, id string, m *string) (*http.Response, error) {
			return c.SuspendTenant(ctx, id, &client.SuspendTenantParams{IfMatch: m})
		}},
		{"resume", "Resume a suspended tenant (its grants are restored)", func(c *client.Client, ctx context.Context, id string, m *string) (*http.Response, error) {
			return c.ResumeTenant(ctx, id, &client.ResumeTenantParams{IfMatch: m})
		}},
		{"retry", "Retry a failed tenant's provisioning, or its offboarding", func(c *client.Client, ctx context.Context, id string, m *string) (*http.Response, error) {
			return c.RetryTenant(ctx, id, &client.RetryTenantParams{IfMatch: m})
		}},
	} {
		var ifMatch string
		sub := &cobra.Command{
			Use:               op.use + " TENANT_ID",
			Short:             op.short,
			Args:              cobra.ExactArgs(1),
			ValidArgsFunction: a.completeTenantArg,
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := a.connect()
				if err != nil {
					return err
				}
				body, err := read(op.call(c, cmd.Context(), args[0], optional(cmd, "if-match", ifMatch)))
				if err != nil {
					return err
				}
				return a.show(body, tenantColumns, "")
			},
		}
		sub.Flags().StringVar(&ifMatch, "if-match", "", `apply only if the tenant's ETag is this one (e.g. '"v3"')`)
		cmd.AddCommand(sub)
	}
	return cmd
}

func (a *app) tenantsListCommand() *cobra.Command {
	var (
		lf                                 listFlags
		status, tier, region, query, label string
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List tenants",
		Example: `  cairn tenants list --status active --region eu-west-1
  cairn tenants list --label plan=gold --all -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			body, err := page(lf.all, func(cursor *string) (*http.Response, error) {
				p := &client.ListTenantsParams{Q: optional(cmd, "q", query), Label: optional(cmd, "label", label)}
				p.Limit, p.Cursor = lf.params(cursor)
				if cmd.Flags().Changed("status") {
					s := client.TenantStatus(status)
					p.Status = &s
				}
				if cmd.Flags().Changed("tier") {
					t := client.Tier(tier)
					p.Tier = &t
				}
				if cmd.Flags().Changed("region") {
					r := client.Region(region)
					p.Region = &r
				}
				return c.ListTenants(cmd.Context(), p)
			})
			if err != nil {
				return err
			}
			return a.show(body, tenantColumns, "")
		},
	}
	lf.add(cmd)
	f := cmd.Flags()
	f.StringVar(&status, "status", "", "only tenants in this status")
	f.StringVar(&tier, "tier", "", "only tenants of this tier: pooled or dedicated")
	f.StringVar(&region, "region", "", "only tenants in this Region")
	f.StringVarP(&query, "q", "q", "", "only tenants whose name, slug or ID contains this text")
	f.StringVar(&label, "label", "", "only tenants with this label (key) or label value (key=value)")
	_ = cmd.RegisterFlagCompletionFunc("region", completeRegions)
	_ = cmd.RegisterFlagCompletionFunc("status", cobra.FixedCompletions(
		[]string{"provisioning", "active", "suspended", "failed", "deprovisioning", "deleted"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("tier", cobra.FixedCompletions([]string{"pooled", "dedicated"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func (a *app) tenantsGetCommand() *cobra.Command {
	return &cobra.Command{
		Use:               "get TENANT_ID",
		Short:             "Show a tenant",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeTenantArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			body, err := read(c.GetTenant(cmd.Context(), args[0]))
			if err != nil {
				return err
			}
			return a.show(body, tenantColumns, "")
		},
	}
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

func (a *app) tenantsCreateCommand() *cobra.Command {
	var (
		name, slug, tier, home, plan, email, file string
		regionList, labelList                     []string
	)
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Onboard a tenant (its stacks are provisioned in the background)",
		Example: `  cairn tenants create --name Acme --slug acme --tier pooled --home-region eu-west-1
  cairn tenants wait "$(cairn tenants create -f acme.yaml -o json | jq -r .id)" --for status=active`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			var send func(key *string) (*http.Response, error)
			if file != "" {
				raw, err := a.readBody(file)
				if err != nil {
					return err
				}
				send = func(key *string) (*http.Response, error) {
					return c.CreateTenantWithBody(cmd.Context(), &client.CreateTenantParams{IdempotencyKey: key}, "application/json", bytes.NewReader(raw))
				}
			} else {
				if name == "" || slug == "" || tier == "" || home == "" {
					return usagef("give --name, --slug, --tier and --home-region (or the whole tenant with -f FILE)")
				}
				labels, err := parseLabels(labelList)
				if err != nil {
					return err
				}
				body := client.TenantCreate{Name: name, Slug: slug, Tier: client.Tier(tier), HomeRegion: client.Region(home),
					Regions: toRegions(regionList), Plan: optional(cmd, "plan", plan), Labels: labels}
				if email != "" {
					e := openapi_types.Email(email)
					body.ContactEmail = &e
				}
				send = func(key *string) (*http.Response, error) {
					return c.CreateTenant(cmd.Context(), &client.CreateTenantParams{IdempotencyKey: key}, body)
				}
			}
			out, err := a.create(cmd.Context(), cmd, send)
			if err != nil {
				return err
			}
			return a.show(out, tenantColumns, "")
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "the tenant's display name")
	f.StringVar(&slug, "slug", "", "the tenant's unique slug (a-z, 0-9, '-')")
	f.StringVar(&tier, "tier", "", "pooled (a slice of the Region's pool) or dedicated (stacks of its own)")
	f.StringVar(&home, "home-region", "", "where its profiles live")
	f.StringSliceVar(&regionList, "region", nil, "every Region it uses (repeat, or comma-separate); the home Region is always included")
	f.StringVar(&plan, "plan", "", "the tenant's plan")
	f.StringVar(&email, "contact-email", "", "who to contact about the tenant")
	f.StringArrayVar(&labelList, "label", nil, "a label key=value (repeat)")
	f.StringVarP(&file, "filename", "f", "", "the whole TenantCreate body from a JSON or YAML file (- for standard input)")
	addIdempotencyFlag(cmd)
	_ = cmd.RegisterFlagCompletionFunc("home-region", completeRegions)
	_ = cmd.RegisterFlagCompletionFunc("region", completeRegions)
	_ = cmd.RegisterFlagCompletionFunc("tier", cobra.FixedCompletions([]string{"pooled", "dedicated"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func addIdempotencyFlag(cmd *cobra.Command) {
	cmd.Flags().String("idempotency-key", "", "the request's Idempotency-Key (default: a new one, reused when the request is retried)")
}

func (a *app) tenantsUpdateCommand() *cobra.Command {
	var (
		name, plan, email, ifMatch string
		regionList, labelList      []string
	)
	cmd := &cobra.Command{
		Use:               "update TENANT_ID",
		Short:             "Change a tenant's name, plan, contact, labels, or add Regions",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeTenantArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			labels, err := parseLabels(labelList)
			if err != nil {
				return err
			}
			body := client.TenantUpdate{Name: optional(cmd, "name", name), Plan: optional(cmd, "plan", plan),
				Regions: toRegions(regionList), Labels: labels}
			if cmd.Flags().Changed("contact-email") {
				e := openapi_types.Email(email)
				body.ContactEmail = &e
			}
			out, err := read(c.UpdateTenant(cmd.Context(), args[0], &client.UpdateTenantParams{IfMatch: optional(cmd, "if-match", ifMatch)}, body))
			if err != nil {
				return err
			}
			return a.show(out, tenantColumns, "")
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "the new display name")
	f.StringVar(&plan, "plan", "", "the new plan")
	f.StringVar(&email, "contact-email", "", "the new contact")
	f.StringSliceVar(&regionList, "region", nil, "the whole new Region list (Regions can only be added)")
	f.StringArrayVar(&labelList, "label", nil, "a label key=value of the whole new label set (repeat)")
	f.StringVar(&ifMatch, "if-match", "", `apply only if the tenant's ETag is this one (e.g. '"v3"')`)
	_ = cmd.RegisterFlagCompletionFunc("region", completeRegions)
	return cmd
}

func (a *app) tenantsDeleteCommand() *cobra.Command {
	var (
		purge   bool
		ifMatch string
	)
	cmd := &cobra.Command{
		Use:               "delete TENANT_ID",
		Aliases:           []string{"offboard"},
		Short:             "Offboard a tenant (it is left as a deleted tombstone)",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeTenantArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			p := &client.DeleteTenantParams{IfMatch: optional(cmd, "if-match", ifMatch)}
			if purge {
				p.Purge = &purge
			}
			body, err := read(c.DeleteTenant(cmd.Context(), args[0], p))
			if err != nil {
				return err
			}
			return a.show(body, tenantColumns, "Tenant "+args[0]+" is being offboarded.")
		},
	}
	cmd.Flags().BoolVar(&purge, "purge", false, "also delete the data buckets, which are otherwise retained")
	cmd.Flags().StringVar(&ifMatch, "if-match", "", `apply only if the tenant's ETag is this one (e.g. '"v3"')`)
	return cmd
}

func (a *app) tenantsWaitCommand() *cobra.Command {
	var (
		w       waitFlags
		forCond string
	)
	cmd := &cobra.Command{
		Use:   "wait TENANT_ID",
		Short: "Wait until a tenant has a status (exit code 5 on timeout)",
		Long: `Wait until a tenant's field has a value, --for status=active by default.
A tenant that is failed or deleted never leaves that status by itself: waiting
for another one ends there, with exit code 5.`,
		Example: `  cairn tenants wait ten_7f3kq2w6xbm4zr5vjc2nd7ayqe --for status=active --timeout 10m
  cairn tenants wait ten_7f3kq2w6xbm4zr5vjc2nd7ayqe --for status=deleted`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeTenantArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			cond, err := parseCondition(forCond, "failed", "deleted")
			if err != nil {
				return err
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			body, err := a.waitUntil(cmd.Context(), w, "tenant "+args[0], cond, func(ctx context.Context) ([]byte, error) {
				return read(c.GetTenant(ctx, args[0]))
			})
			return a.showWaited(body, tenantColumns, err)
		},
	}
	cmd.Flags().StringVar(&forCond, "for", "status=active", "the condition, FIELD=VALUE")
	w.add(cmd, 10*time.Minute)
	return cmd
}
