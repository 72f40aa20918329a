package main

import (
	"bytes"
	"context"
	"net/http"

	"github.com/spf13/cobra"

	"github.com/cairn-cdp/cairn/client"
)

var planColumns = cols("NAME", "name", "EVENTS/S SOURCE", "limits.events_per_second_per_source",
	"EVENTS/S TENANT", "limits.events_per_second_per_tenant", "REQUESTS/S TOKEN", "limits.requests_per_second_per_token",
	"PROFILES", "limits.profiles", "MONTHLY EVENTS", "limits.monthly_events", "VERSION", "version")

// plansCommand reads and sets the ISV's plans (admin).
func (a *app) plansCommand() *cobra.Command {
	var file, ifMatch string
	return a.group("plans", "The ISV's plans: each tenant's limits, quotas and rates", []string{"plan"},
		op{
			use: "list", short: "List the plans", columns: planColumns,
			list: func(ctx context.Context, x call, limit *client.Limit, cursor *client.Cursor) (*http.Response, error) {
				return x.c.ListPlans(ctx, &client.ListPlansParams{Limit: limit, Cursor: cursor})
			},
		},
		op{
			use: "get NAME", short: "Show a plan", args: cobra.ExactArgs(1), columns: planColumns,
			send: func(ctx context.Context, x call) (*http.Response, error) {
				return x.c.GetPlan(ctx, x.args[0])
			},
		},
		op{
			use: "set NAME", short: "Make a plan or replace its whole terms from a file (PlanPut)", args: cobra.ExactArgs(1), columns: planColumns,
			example: "  cairn plans set gold -f - <<'EOF'\n  limits: {events_per_second_per_tenant: 5000, profiles: 1000000}\n  profiles_mode: block\n  EOF",
			send: func(ctx context.Context, x call) (*http.Response, error) {
				raw, err := a.readBody(file)
				if err != nil {
					return nil, err
				}
				return x.c.PutPlanWithBody(ctx, x.args[0], &client.PutPlanParams{IfMatch: optional(x.cmd, "if-match", ifMatch)},
					"application/json", bytes.NewReader(raw))
			},
			flags: func(cmd *cobra.Command) {
				fileFlag(&file)(cmd)
				cmd.Flags().StringVar(&ifMatch, "if-match", "", `apply only if the plan's ETag is this one ("*": only if it exists)`)
			},
		},
	)
}
