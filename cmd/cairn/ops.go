package main

import (
	"context"
	"net/http"

	"github.com/spf13/cobra"

	"github.com/cairn-cdp/cairn/client"
)

// op describes a command that sends one request (or, for a list, one per
// page) and shows the answer. Exactly one of send, list and create is set.
type op struct {
	use, short, long, example string
	aliases                   []string
	args                      cobra.PositionalArgs
	// tenant says the command acts on the --tenant tenant.
	tenant  bool
	columns columns
	// done is what a table prints when the answer has no body.
	done string
	// complete completes the positional arguments.
	complete cobra.CompletionFunc

	send   func(ctx context.Context, x call) (*http.Response, error)
	list   func(ctx context.Context, x call, limit *client.Limit, cursor *client.Cursor) (*http.Response, error)
	create func(ctx context.Context, x call, key *string) (*http.Response, error)
	// flags adds the command's own flags. Ops of one group may bind a
	// flag to one shared variable (one command runs per process), but
	// only with the same default: pflag writes the default on binding.
	flags func(cmd *cobra.Command)
}

// call is what an op's request is made of.
type call struct {
	cmd    *cobra.Command
	c      *client.Client
	tenant client.TenantID
	args   []string
}

func (a *app) opCommand(o op) *cobra.Command {
	var lf listFlags
	cmd := &cobra.Command{
		Use:               o.use,
		Aliases:           o.aliases,
		Short:             o.short,
		Long:              o.long,
		Example:           o.example,
		Args:              o.args,
		ValidArgsFunction: o.complete,
		RunE: func(cmd *cobra.Command, args []string) error {
			x := call{cmd: cmd, args: args}
			var err error
			if o.tenant {
				x.c, x.tenant, err = a.session()
			} else {
				x.c, err = a.connect()
			}
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var body []byte
			switch {
			case o.list != nil:
				body, err = page(lf.all, func(cursor *string) (*http.Response, error) {
					limit, cur := lf.params(cursor)
					return o.list(ctx, x, limit, cur)
				})
			case o.create != nil:
				body, err = a.create(ctx, cmd, func(key *string) (*http.Response, error) { return o.create(ctx, x, key) })
			default:
				body, err = read(o.send(ctx, x))
			}
			if err != nil {
				return err
			}
			return a.show(body, o.columns, o.done)
		},
	}
	if o.args == nil {
		cmd.Args = cobra.NoArgs
	}
	if o.complete == nil {
		cmd.ValidArgsFunction = cobra.NoFileCompletions
	}
	if o.list != nil {
		lf.add(cmd)
	}
	if o.create != nil {
		addIdempotencyFlag(cmd)
	}
	if o.flags != nil {
		o.flags(cmd)
	}
	return cmd
}

// group makes a parent command of ops.
func (a *app) group(use, short string, aliases []string, ops ...op) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, Aliases: aliases, Args: cobra.ArbitraryArgs, RunE: parentRunE}
	for _, o := range ops {
		cmd.AddCommand(a.opCommand(o))
	}
	return cmd
}

// parentRunE runs a command that only groups others: without arguments it
// shows its help; with an unknown subcommand it is a usage error (cobra
// would show the help and succeed).
func parentRunE(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	return usagef("unknown command %q for %q", args[0], cmd.CommandPath())
}
