package main

import (
	"context"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairn-cdp/cairn/client"
)

var (
	usageColumns = cols("START", "start", "EVENTS", "values.events_accepted", "REQUESTS", "values.api_requests",
		"RAW BYTES", "values.raw_bytes", "DELIVERIES", "values.webhook_deliveries", "PROFILES", "values.profiles")
	fleetUsageColumns = cols("TENANT", "tenant_id", "EVENTS", "values.events_accepted", "REQUESTS", "values.api_requests",
		"RAW BYTES", "values.raw_bytes", "DELIVERIES", "values.webhook_deliveries", "PROFILES", "values.profiles")
)

// usageRange reads --from and --to (RFC 3339), to defaulting to now and
// from to back days before to.
func usageRange(from, to string, back int) (time.Time, time.Time, error) {
	end := time.Now().UTC()
	if to != "" {
		t, err := time.Parse(time.RFC3339, to)
		if err != nil {
			return time.Time{}, time.Time{}, usagef("--to wants an RFC 3339 time, e.g. 2026-01-02T15:04:05Z")
		}
		end = t
	}
	start := end.AddDate(0, 0, -back)
	if from != "" {
		t, err := time.Parse(time.RFC3339, from)
		if err != nil {
			return time.Time{}, time.Time{}, usagef("--from wants an RFC 3339 time, e.g. 2026-01-02T15:04:05Z")
		}
		start = t
	}
	return start, end, nil
}

func (a *app) usageCommand() *cobra.Command {
	var from, to, granularity string
	rangeFlags := func(cmd *cobra.Command) {
		f := cmd.Flags()
		f.StringVar(&from, "from", "", "start of the range (RFC 3339)")
		f.StringVar(&to, "to", "", "end of the range (RFC 3339; default now)")
	}
	return a.group("usage", "Metered usage: a tenant's per hour or day, every tenant's totals", nil,
		op{
			use: "show", short: "The tenant's usage per day (default: the last 7 days) or per hour", tenant: true, columns: usageColumns,
			send: func(ctx context.Context, x call) (*http.Response, error) {
				start, end, err := usageRange(from, to, 7)
				if err != nil {
					return nil, err
				}
				g := client.GetTenantUsageParamsGranularity(granularity)
				if g != "hour" && g != "day" {
					return nil, usagef("--granularity wants hour or day")
				}
				return x.c.GetTenantUsage(ctx, x.tenant, &client.GetTenantUsageParams{From: start, To: end, Granularity: &g})
			},
			flags: func(cmd *cobra.Command) {
				rangeFlags(cmd)
				cmd.Flags().StringVar(&granularity, "granularity", "day", "hour or day")
			},
		},
		op{
			use: "fleet", short: "Every tenant's totals over a range (default: the last 30 days)", columns: fleetUsageColumns,
			list: func(ctx context.Context, x call, limit *client.Limit, cursor *client.Cursor) (*http.Response, error) {
				start, end, err := usageRange(from, to, 30)
				if err != nil {
					return nil, err
				}
				return x.c.GetFleetUsage(ctx, &client.GetFleetUsageParams{From: start, To: end, Limit: limit, Cursor: cursor})
			},
			flags: rangeFlags,
		},
	)
}
