package main

import (
	"context"
	"encoding/json"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/cairn-cdp/cairn/api"
	"github.com/cairn-cdp/cairn/client"
)

// app is one run of the CLI: its environment, streams and global flags.
type app struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer

	contextName    string
	server         string
	token          string
	tenantFlag     string
	output         string
	requestTimeout time.Duration

	// ran is set once a command's own code starts: an error before that
	// is cobra refusing the command line.
	ran bool
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "cairn",
		Short: "Operate a Cairn control plane: tenants, stacks, data, governance",
		Long: `cairn operates a Cairn control plane over its REST API.

Where it sends requests comes from the current context (cairn config
set-context / use-context), overridden by --context, --server, --token and
--tenant, or by CAIRN_SERVER, CAIRN_TOKEN and CAIRN_TENANT. The contexts file is
cairn/config in the user's config directory, or CAIRN_CONFIG.

Output is a table for people, or the API's own JSON (-o json) or YAML (-o yaml).

` + exitCodesHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if !slices.Contains([]string{"table", "json", "yaml"}, a.output) {
				return usagef("--output must be table, json or yaml, not %q", a.output)
			}
			return nil
		},
	}
	f := root.PersistentFlags()
	f.StringVar(&a.contextName, "context", "", "the context to use instead of the current one")
	f.StringVar(&a.server, "server", "", "the API's base URL (overrides the context; env CAIRN_SERVER)")
	f.StringVar(&a.token, "token", "", "the bearer token (overrides the context; env CAIRN_TOKEN)")
	f.StringVarP(&a.tenantFlag, "tenant", "t", "", "the tenant ID of tenant-scoped commands (env CAIRN_TENANT; default: the context's)")
	f.StringVarP(&a.output, "output", "o", "table", "output format: table, json or yaml")
	f.DurationVar(&a.requestTimeout, "request-timeout", time.Minute, "give up on one request after this long")
	_ = root.RegisterFlagCompletionFunc("context", a.completeContexts)
	_ = root.RegisterFlagCompletionFunc("tenant", a.completeTenants)
	_ = root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))

	root.AddGroup(&cobra.Group{ID: "fleet", Title: "Fleet:"}, &cobra.Group{ID: "data", Title: "Tenant data:"},
		&cobra.Group{ID: "governance", Title: "Governance:"}, &cobra.Group{ID: "cli", Title: "The CLI itself:"})
	for _, c := range []*cobra.Command{a.tenantsCommand(), a.tokensCommand(), a.stacksCommand(), a.poolsCommand(), a.webhooksCommand(), a.usageCommand(), a.plansCommand()} {
		c.GroupID = "fleet"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{a.sourcesCommand(), a.identityCommand(), a.profilesCommand(), a.erasuresCommand(), a.segmentsCommand()} {
		c.GroupID = "data"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{a.principalsCommand(), a.grantsCommand(), a.credentialsCommand(), a.auditCommand()} {
		c.GroupID = "governance"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{a.configCommand()} {
		c.GroupID = "cli"
		root.AddCommand(c)
	}
	root.SetHelpCommandGroupID("cli")
	root.SetCompletionCommandGroupID("cli")
	a.markRuns(root)
	return root
}

// markRuns wraps every command's RunE so that run knows an error came from
// the command and not from parsing its command line.
func (a *app) markRuns(c *cobra.Command) {
	if inner := c.RunE; inner != nil {
		c.RunE = func(cmd *cobra.Command, args []string) error {
			a.ran = true
			return inner(cmd, args)
		}
	}
	for _, sub := range c.Commands() {
		a.markRuns(sub)
	}
}

// tenant is the tenant of a tenant-scoped command.
func (a *app) tenant() (client.TenantID, error) {
	t, err := a.resolve()
	if err != nil {
		return "", err
	}
	if t.tenant == "" {
		return "", usagef("no tenant: give --tenant, CAIRN_TENANT, or set one in the context")
	}
	return t.tenant, nil
}

// session is what a tenant-scoped command needs: the client and the tenant.
func (a *app) session() (*client.Client, client.TenantID, error) {
	tenant, err := a.tenant()
	if err != nil {
		return nil, "", err
	}
	c, err := a.connect()
	return c, tenant, err
}

// listFlags adds --limit, --cursor and --all to a list command.
type listFlags struct {
	limit  int
	cursor string
	all    bool
}

func (l *listFlags) add(cmd *cobra.Command) {
	cmd.Flags().IntVar(&l.limit, "limit", 0, "page size, 1 to 200 (default: the server's, 50)")
	cmd.Flags().StringVar(&l.cursor, "cursor", "", "the next_cursor of the previous page")
	cmd.Flags().BoolVar(&l.all, "all", false, "fetch every page")
}

// params gives the page parameters of one request: the cursor of the
// page being fetched wins over --cursor.
func (l *listFlags) params(cursor *string) (*client.Limit, *client.Cursor) {
	var lim *client.Limit
	if l.limit > 0 {
		lim = &l.limit
	}
	if cursor == nil && l.cursor != "" {
		cursor = &l.cursor
	}
	return lim, cursor
}

func optional(cmd *cobra.Command, flag, value string) *string {
	if !cmd.Flags().Changed(flag) {
		return nil
	}
	return &value
}

// completeTenants offers tenant IDs from the API, with each one's slug and
// status as its description, matching what was typed against ID, slug and
// name (the list's q filter).
func (a *app) completeTenants(cmd *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	c, err := a.connect()
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	limit := 200
	params := &client.ListTenantsParams{Limit: &limit}
	if toComplete != "" {
		params.Q = &toComplete
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
	defer cancel()
	body, err := read(c.ListTenants(ctx, params))
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	var list struct {
		Items []struct{ ID, Slug, Status string } `json:"items"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	var out []string
	for _, t := range list.Items {
		if strings.HasPrefix(t.ID, toComplete) {
			out = append(out, t.ID+"\t"+t.Slug+" ("+t.Status+")")
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeTenantArg completes a command's first argument, a tenant ID.
func (a *app) completeTenantArg(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return a.completeTenants(cmd, args, toComplete)
}

// regions are the Region codes of the contract's Region enum.
func regions() []string {
	var spec struct {
		Components struct {
			Schemas struct {
				Region struct {
					Enum []string `yaml:"enum"`
				} `yaml:"Region"`
			} `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(api.Spec, &spec); err != nil {
		return nil
	}
	return spec.Components.Schemas.Region.Enum
}

func completeRegions(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return regions(), cobra.ShellCompDirectiveNoFileComp
}

// completeRegionArg completes a command's first argument, a Region.
func completeRegionArg(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return completeRegions(cmd, args, toComplete)
}
