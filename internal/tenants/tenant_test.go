package tenants

import (
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestNewIDIsRandomAndPrefixed(t *testing.T) {
	pattern := regexp.MustCompile(`^ten_[a-z2-7]{26}$`)
	seen := map[string]bool{}
	for range 1000 {
		id := NewID()
		if !pattern.MatchString(id) {
			t.Fatalf("NewID() = %q, does not match %s", id, pattern)
		}
		if seen[id] {
			t.Fatalf("NewID() repeated %q", id)
		}
		seen[id] = true
	}
}

func TestOnboardValidation(t *testing.T) {
	ok := OnboardParams{Name: "Acme", Slug: "acme", Tier: TierPooled, HomeRegion: "eu-west-1"}
	tests := []struct {
		name  string
		edit  func(*OnboardParams)
		field string
	}{
		{"empty name", func(p *OnboardParams) { p.Name = "  " }, "name"},
		{"long name", func(p *OnboardParams) { p.Name = strings.Repeat("a", MaxNameLen+1) }, "name"},
		{"short slug", func(p *OnboardParams) { p.Slug = "ab" }, "slug"},
		{"long slug", func(p *OnboardParams) { p.Slug = strings.Repeat("a", 41) }, "slug"},
		{"upper slug", func(p *OnboardParams) { p.Slug = "Acme" }, "slug"},
		{"slug with underscore", func(p *OnboardParams) { p.Slug = "ac_me" }, "slug"},
		{"tier", func(p *OnboardParams) { p.Tier = "shared" }, "tier"},
		{"home region", func(p *OnboardParams) { p.HomeRegion = "eu-west-9" }, "home_region"},
		{"gov region", func(p *OnboardParams) { p.Regions = []string{"us-gov-west-1"} }, "regions"},
		{"too many regions", func(p *OnboardParams) { p.Regions = Regions[:MaxRegions+1] }, "regions"},
		{"email", func(p *OnboardParams) { p.ContactEmail = "Jane <jane@example.com>" }, "contact_email"},
		{"label key", func(p *OnboardParams) { p.Labels = map[string]string{"Bad Key": "x"} }, "labels"},
		{"label value", func(p *OnboardParams) { p.Labels = map[string]string{"k": strings.Repeat("v", MaxLabelValue+1)} }, "labels"},
		{"plan", func(p *OnboardParams) { p.Plan = strings.Repeat("p", MaxPlanLen+1) }, "plan"},
	}
	if _, err := ok.validate(); err != nil {
		t.Fatalf("valid params refused: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := ok
			tt.edit(&p)
			_, err := p.validate()
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != tt.field || !errors.Is(err, ErrInvalid) {
				t.Fatalf("validate() = %v; want a ValidationError on %s", err, tt.field)
			}
		})
	}
}

func TestRegionsAreNormalized(t *testing.T) {
	got, err := normalizeRegions("us-east-1", []string{"eu-west-1", "us-east-1", "eu-west-1"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"eu-west-1", "us-east-1"}; !slices.Equal(got, want) {
		t.Fatalf("normalizeRegions = %v; want %v", got, want)
	}
}
