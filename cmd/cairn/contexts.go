package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func (a *app) configCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Manage contexts: which server to talk to and how to get its token",
		Args:  cobra.ArbitraryArgs,
		RunE:  parentRunE,
		Long: `Contexts, like kubectl's, name a server, how to get its token and
optionally a default tenant. They are kept in cairn/config in the user's
config directory (or CAIRN_CONFIG), with mode 0600.`,
	}
	cmd.AddCommand(a.setContextCommand(), a.useContextCommand(), a.getContextsCommand(),
		a.currentContextCommand(), a.deleteContextCommand())
	return cmd
}

// readConfig reads the contexts file and says where it is.
func (a *app) readConfig() (string, *cliConfig, error) {
	path, err := configPath(a.getenv)
	if err != nil {
		return "", nil, err
	}
	c, err := loadConfig(path)
	return path, c, err
}

func (a *app) editConfig(edit func(path string, c *cliConfig) error) error {
	path, c, err := a.readConfig()
	if err != nil {
		return err
	}
	if err := edit(path, c); err != nil {
		return err
	}
	return saveConfig(path, c)
}

func (a *app) setContextCommand() *cobra.Command {
	var server, tenant, tokenFile, tokenEnv, token string
	cmd := &cobra.Command{
		Use:   "set-context NAME",
		Short: "Create or change a context",
		Long: `Create a context, or change the settings given of an existing one. One of
--token-file, --token-env and --token says where its token comes from; giving
one replaces the others. The first context made becomes the current one.`,
		Example: `  cairn config set-context prod --server https://cairn.example --token-env CAIRN_PROD_TOKEN
  cairn config set-context local --server http://127.0.0.1:8080 --token-file ~/.cairn-token`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sources := 0
			for _, f := range []string{"token-file", "token-env", "token"} {
				if cmd.Flags().Changed(f) {
					sources++
				}
			}
			if sources > 1 {
				return usagef("give at most one of --token-file, --token-env and --token")
			}
			return a.editConfig(func(path string, c *cliConfig) error {
				e := c.find(args[0])
				if e == nil {
					if server == "" {
						return usagef("a new context needs --server")
					}
					c.Contexts = append(c.Contexts, contextEntry{Name: args[0]})
					e = &c.Contexts[len(c.Contexts)-1]
				}
				if cmd.Flags().Changed("server") {
					e.Server = server
				}
				if cmd.Flags().Changed("tenant") {
					e.Tenant = tenant
				}
				if sources == 1 {
					file, err := absPath(tokenFile)
					if err != nil {
						return err
					}
					e.TokenFile, e.TokenEnv, e.Token = file, tokenEnv, token
				}
				if c.CurrentContext == "" {
					c.CurrentContext = e.Name
				}
				fmt.Fprintf(a.stdout, "Context %q set in %s.\n", e.Name, path)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&server, "server", "", "the API's base URL, e.g. https://cairn.example")
	f.StringVar(&tenant, "tenant", "", "the tenant that tenant-scoped commands act on by default")
	f.StringVar(&tokenFile, "token-file", "", "read the token from this file on every command")
	f.StringVar(&tokenEnv, "token-env", "", "read the token from this environment variable on every command")
	f.StringVar(&token, "token", "", "keep this token in the config file itself")
	_ = cmd.RegisterFlagCompletionFunc("tenant", a.completeTenants)
	return cmd
}

func (a *app) useContextCommand() *cobra.Command {
	return &cobra.Command{
		Use:               "use-context NAME",
		Short:             "Make a context the current one",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeContexts,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.editConfig(func(path string, c *cliConfig) error {
				if c.find(args[0]) == nil {
					return usagef("no context %q in %s", args[0], path)
				}
				c.CurrentContext = args[0]
				fmt.Fprintf(a.stdout, "Switched to context %q.\n", args[0])
				return nil
			})
		},
	}
}

func (a *app) deleteContextCommand() *cobra.Command {
	return &cobra.Command{
		Use:               "delete-context NAME",
		Short:             "Delete a context",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeContexts,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.editConfig(func(path string, c *cliConfig) error {
				for i, e := range c.Contexts {
					if e.Name == args[0] {
						c.Contexts = append(c.Contexts[:i], c.Contexts[i+1:]...)
						if c.CurrentContext == args[0] {
							c.CurrentContext = ""
						}
						return nil
					}
				}
				return usagef("no context %q in %s", args[0], path)
			})
		},
	}
}

func (a *app) getContextsCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "get-contexts",
		Short: "List the contexts (never their tokens)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, c, err := a.readConfig()
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CURRENT\tNAME\tSERVER\tTENANT\tTOKEN")
			for _, e := range c.Contexts {
				cur := ""
				if e.Name == c.CurrentContext {
					cur = "*"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", cur, e.Name, e.Server, e.Tenant, e.tokenSource())
			}
			return tw.Flush()
		},
	}
}

func (a *app) currentContextCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "current-context",
		Short: "Print the current context's name",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			path, c, err := a.readConfig()
			if err != nil {
				return err
			}
			if c.CurrentContext == "" {
				return usagef("no current context in %s: cairn config use-context NAME", path)
			}
			fmt.Fprintln(a.stdout, c.CurrentContext)
			return nil
		},
	}
}

func (a *app) completeContexts(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	_, c, err := a.readConfig()
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	var names []string
	for _, e := range c.Contexts {
		names = append(names, e.Name+"\t"+e.Server)
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}

// absPath makes a token file's path absolute (and expands a leading ~/,
// which a shell leaves alone in --token-file=~/...), so that the context
// works from any directory.
func absPath(p string) (string, error) {
	if p == "" {
		return "", nil
	}
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("expanding %s: %w", p, err)
		}
		p = filepath.Join(home, rest)
	}
	return filepath.Abs(p)
}
