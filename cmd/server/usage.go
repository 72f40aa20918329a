package main

import (
	"context"
	"time"

	"github.com/cairn-cdp/cairn/internal/profiles"
	"github.com/cairn-cdp/cairn/internal/usage"
	"github.com/cairn-cdp/cairn/internal/webhooks"
)

// meteredRawZone counts the bytes each tenant's raw zone is written, one
// line and its newline each, once the object is durable.
type meteredRawZone struct {
	profiles.RawZone
	meter *usage.Meter
}

func (z meteredRawZone) Append(ctx context.Context, tenantID string, at time.Time, lines [][]byte) (string, error) {
	key, err := z.RawZone.Append(ctx, tenantID, at, lines)
	if err == nil {
		n := int64(0)
		for _, l := range lines {
			n += int64(len(l)) + 1
		}
		z.meter.Add(tenantID, usage.RawBytes, "", n)
	}
	return key, err
}

// meterDeliveries counts a tenant's webhook deliveries its receiver
// accepted (a 2xx answer); fleet deliveries are no tenant's.
func meterDeliveries(m *usage.Meter) func(webhooks.Delivery, webhooks.Result) {
	return func(d webhooks.Delivery, r webhooks.Result) {
		if r.Status >= 200 && r.Status < 300 {
			m.Add(d.TenantID, usage.WebhookDeliveries, "", 1)
		}
	}
}
