package main

import (
	"bytes"
	"context"
	"net/http"

	"github.com/spf13/cobra"

	"github.com/cairn-cdp/cairn/client"
)

var (
	webhookColumns  = cols("ID", "id", "TENANT", "tenant_id", "URL", "url", "EVENTS", "event_types", "ENABLED", "enabled", "UPDATED", "updated_at")
	webhookSecretCo = append(cols("SECRET", "secret"), webhookColumns...)
	deliveryColumns = cols("ID", "id", "EVENT", "event_type", "STATUS", "status", "ATTEMPTS", "attempts", "CREATED", "created_at")
)

// webhooksCommand serves both kinds of endpoint: a tenant's (with --tenant,
// or the context's tenant) and the ISV's fleet endpoints (without a
// tenant, or with --fleet).
func (a *app) webhooksCommand() *cobra.Command {
	var (
		file, ifMatch, status string
		grace                 int
		fleet                 bool
	)
	// tenantOf is the tenant of the command, or "" for the fleet.
	tenantOf := func() string {
		t, err := a.resolve()
		if err != nil || fleet {
			return ""
		}
		return t.tenant
	}
	body := func() (*bytes.Reader, error) {
		raw, err := a.readBody(file)
		if err != nil {
			return nil, err
		}
		return bytes.NewReader(raw), nil
	}
	cmd := a.group("webhooks", "Webhook endpoints of a tenant (--tenant) or of the fleet (--fleet), and their deliveries", []string{"webhook"},
		op{
			use: "list", short: "List webhook endpoints", columns: webhookColumns,
			list: func(ctx context.Context, x call, limit *client.Limit, cursor *client.Cursor) (*http.Response, error) {
				if t := tenantOf(); t != "" {
					return x.c.ListWebhooks(ctx, t, &client.ListWebhooksParams{Limit: limit, Cursor: cursor})
				}
				return x.c.ListFleetWebhooks(ctx, &client.ListFleetWebhooksParams{Limit: limit, Cursor: cursor})
			},
		},
		op{
			use: "get WEBHOOK_ID", short: "Show a webhook endpoint", args: cobra.ExactArgs(1), columns: webhookColumns,
			send: func(ctx context.Context, x call) (*http.Response, error) {
				if t := tenantOf(); t != "" {
					return x.c.GetWebhook(ctx, t, x.args[0])
				}
				return x.c.GetFleetWebhook(ctx, x.args[0])
			},
		},
		op{
			use: "create", short: "Make a webhook endpoint from a file (WebhookEndpointCreate); its secret is shown once", columns: webhookSecretCo,
			create: func(ctx context.Context, x call, key *string) (*http.Response, error) {
				r, err := body()
				if err != nil {
					return nil, err
				}
				if t := tenantOf(); t != "" {
					return x.c.CreateWebhookWithBody(ctx, t, &client.CreateWebhookParams{IdempotencyKey: key}, "application/json", r)
				}
				return x.c.CreateFleetWebhookWithBody(ctx, &client.CreateFleetWebhookParams{IdempotencyKey: key}, "application/json", r)
			},
			flags: fileFlag(&file),
		},
		op{
			use: "update WEBHOOK_ID", short: "Change a webhook endpoint from a file (WebhookEndpointUpdate)", args: cobra.ExactArgs(1), columns: webhookColumns,
			send: func(ctx context.Context, x call) (*http.Response, error) {
				r, err := body()
				if err != nil {
					return nil, err
				}
				m := optional(x.cmd, "if-match", ifMatch)
				if t := tenantOf(); t != "" {
					return x.c.UpdateWebhookWithBody(ctx, t, x.args[0], &client.UpdateWebhookParams{IfMatch: m}, "application/json", r)
				}
				return x.c.UpdateFleetWebhookWithBody(ctx, x.args[0], &client.UpdateFleetWebhookParams{IfMatch: m}, "application/json", r)
			},
			flags: func(cmd *cobra.Command) {
				fileFlag(&file)(cmd)
				cmd.Flags().StringVar(&ifMatch, "if-match", "", `apply only if the endpoint's ETag is this one`)
			},
		},
		op{
			use: "delete WEBHOOK_ID", short: "Delete a webhook endpoint", args: cobra.ExactArgs(1), columns: webhookColumns, done: "Webhook endpoint deleted.",
			send: func(ctx context.Context, x call) (*http.Response, error) {
				m := optional(x.cmd, "if-match", ifMatch)
				if t := tenantOf(); t != "" {
					return x.c.DeleteWebhook(ctx, t, x.args[0], &client.DeleteWebhookParams{IfMatch: m})
				}
				return x.c.DeleteFleetWebhook(ctx, x.args[0], &client.DeleteFleetWebhookParams{IfMatch: m})
			},
			flags: func(cmd *cobra.Command) {
				cmd.Flags().StringVar(&ifMatch, "if-match", "", `apply only if the endpoint's ETag is this one`)
			},
		},
		op{
			use: "rotate-secret WEBHOOK_ID", short: "Give an endpoint a new signing secret (shown once)", args: cobra.ExactArgs(1), columns: webhookSecretCo,
			send: func(ctx context.Context, x call) (*http.Response, error) {
				var g *int
				if x.cmd.Flags().Changed("grace-seconds") {
					g = &grace
				}
				if t := tenantOf(); t != "" {
					return x.c.RotateWebhookSecret(ctx, t, x.args[0], &client.RotateWebhookSecretParams{GraceSeconds: g})
				}
				return x.c.RotateFleetWebhookSecret(ctx, x.args[0], &client.RotateFleetWebhookSecretParams{GraceSeconds: g})
			},
			flags: func(cmd *cobra.Command) {
				cmd.Flags().IntVar(&grace, "grace-seconds", 0, "how long the old secret keeps signing")
			},
		},
		op{
			use: "deliveries WEBHOOK_ID", short: "List an endpoint's deliveries", args: cobra.ExactArgs(1), columns: deliveryColumns,
			list: func(ctx context.Context, x call, limit *client.Limit, cursor *client.Cursor) (*http.Response, error) {
				var s *client.WebhookDeliveryStatus
				if x.cmd.Flags().Changed("status") {
					v := client.WebhookDeliveryStatus(status)
					s = &v
				}
				if t := tenantOf(); t != "" {
					return x.c.ListWebhookDeliveries(ctx, t, x.args[0], &client.ListWebhookDeliveriesParams{Limit: limit, Cursor: cursor, Status: s})
				}
				return x.c.ListFleetWebhookDeliveries(ctx, x.args[0], &client.ListFleetWebhookDeliveriesParams{Limit: limit, Cursor: cursor, Status: s})
			},
			flags: func(cmd *cobra.Command) {
				cmd.Flags().StringVar(&status, "status", "", "only deliveries in this status")
			},
		},
		op{
			use: "redeliver WEBHOOK_ID DELIVERY_ID", short: "Send a delivery again", args: cobra.ExactArgs(2), columns: deliveryColumns,
			send: func(ctx context.Context, x call) (*http.Response, error) {
				if t := tenantOf(); t != "" {
					return x.c.RedeliverWebhook(ctx, t, x.args[0], x.args[1])
				}
				return x.c.RedeliverFleetWebhook(ctx, x.args[0], x.args[1])
			},
		},
		op{
			use: "recover WEBHOOK_ID", short: "Redeliver the failed deliveries of a period, from a file (WebhookRecover)", args: cobra.ExactArgs(1),
			send: func(ctx context.Context, x call) (*http.Response, error) {
				r, err := body()
				if err != nil {
					return nil, err
				}
				if t := tenantOf(); t != "" {
					return x.c.RecoverWebhookWithBody(ctx, t, x.args[0], "application/json", r)
				}
				return x.c.RecoverFleetWebhookWithBody(ctx, x.args[0], "application/json", r)
			},
			flags: fileFlag(&file),
		},
		op{
			use: "test WEBHOOK_ID", short: "Send a test event to an endpoint", args: cobra.ExactArgs(1), columns: deliveryColumns,
			send: func(ctx context.Context, x call) (*http.Response, error) {
				if t := tenantOf(); t != "" {
					return x.c.TestWebhook(ctx, t, x.args[0])
				}
				return x.c.TestFleetWebhook(ctx, x.args[0])
			},
		},
	)
	cmd.PersistentFlags().BoolVar(&fleet, "fleet", false, "the ISV's fleet endpoints, even when the context names a tenant")
	return cmd
}
