package attention_test

import (
	"errors"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/attention"
)

func TestPositionText(t *testing.T) {
	at := time.Date(2026, 5, 6, 7, 8, 9, 123456000, time.FixedZone("CEST", 2*60*60))
	for _, it := range []attention.Item{
		{Kind: attention.KindStack, TenantID: "ten_a", Region: "eu-west-1", UpdatedAt: at},
		{Kind: attention.KindPoolStack, Region: "us-east-1", UpdatedAt: at},
		{Kind: attention.KindGrant, TenantID: "ten_a", Region: "eu-west-1", GrantID: "grt_x|y", UpdatedAt: at},
		{},
	} {
		p := it.Position()
		got, err := attention.ParsePosition(p.String())
		if err != nil || !got.UpdatedAt.Equal(p.UpdatedAt) || got.UpdatedAt.Location() != time.UTC || got.Kind != p.Kind || got.Key != p.Key {
			t.Errorf("ParsePosition(%q) = %+v, %v; want %+v", p.String(), got, err, p)
		}
	}
	if k := (attention.Item{Kind: attention.KindStack, TenantID: "ten_a", Region: "eu-west-1"}).Key(); k != "ten_a/eu-west-1" {
		t.Errorf("stack key %q", k)
	}
	for _, bad := range []string{
		"", "F", "2026-05-06T05:08:09Z", "2026-05-06T05:08:09Z|stack", "2026-05-06T05:08:09Z|stack|",
		"2026-05-06T05:08:09Z||ten_a/eu-west-1", "2026-05-06T05:08:09Z|tenant|ten_a", "yesterday|grant|grt_x",
	} {
		if _, err := attention.ParsePosition(bad); !errors.Is(err, attention.ErrBadPosition) {
			t.Errorf("ParsePosition(%q) = %v, want ErrBadPosition", bad, err)
		}
	}
}
