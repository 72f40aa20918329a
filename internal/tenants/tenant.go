package tenants

import (
	"fmt"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cairn-cdp/cairn/internal/ids"
)

// Tier is how a tenant's data stack is laid out.
type Tier string

// Tiers.
const (
	// TierPooled tenants get a tenant-prefixed slice of a shared pool stack.
	TierPooled Tier = "pooled"
	// TierDedicated tenants get a stack of their own in every Region.
	TierDedicated Tier = "dedicated"
)

// Valid reports whether t is a known tier.
func (t Tier) Valid() bool { return t == TierPooled || t == TierDedicated }

// Tenant is one client company of the ISV.
type Tenant struct {
	ID           string
	Slug         string
	Name         string
	Tier         Tier
	Status       Status
	StatusReason string
	HomeRegion   string
	Regions      []string
	// Plan names the tenant's plan (package plans); "" is the default
	// plan. A name an older version stored as free text, that names no
	// plan, has the default plan's limits.
	Plan         string
	ContactEmail string
	Labels       map[string]string
	// Version increases by one on every change; it is the tenant's ETag.
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
	DeletedAt *time.Time
	// Seq is the store's insertion order. It is never shown to clients
	// except inside an opaque pagination cursor.
	Seq int64
}

// Regions are the AWS commercial Regions a tenant may choose.
var Regions = []string{
	"af-south-1",
	"ap-east-1", "ap-east-2",
	"ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
	"ap-south-1", "ap-south-2",
	"ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4", "ap-southeast-5", "ap-southeast-7",
	"ca-central-1", "ca-west-1",
	"eu-central-1", "eu-central-2",
	"eu-north-1",
	"eu-south-1", "eu-south-2",
	"eu-west-1", "eu-west-2", "eu-west-3",
	"il-central-1",
	"me-central-1", "me-south-1",
	"mx-central-1",
	"sa-east-1",
	"us-east-1", "us-east-2",
	"us-west-1", "us-west-2",
}

// Limits on tenant input.
const (
	MaxNameLen    = 200
	MaxPlanLen    = 64
	MaxLabels     = 50
	MaxLabelKey   = 63
	MaxLabelValue = 256
	MaxRegions    = 10
)

var (
	slugPattern     = regexp.MustCompile(`^[a-z0-9-]{3,40}$`)
	labelKeyPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9_./-]{0,61}[a-z0-9])?$`)
)

// NewID returns a fresh random tenant ID: "ten_" and 26 characters of the
// ID alphabet (ids.New: 128 random bits). IDs carry no order.
func NewID() string {
	return ids.New("ten_")
}

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

func validateSlug(slug string) error {
	if !slugPattern.MatchString(slug) {
		return invalid("slug", "must be 3 to 40 characters of a-z, 0-9 and '-'")
	}
	return nil
}

func validateName(name string) error {
	if strings.TrimSpace(name) == "" {
		return invalid("name", "must not be empty")
	}
	if utf8.RuneCountInString(name) > MaxNameLen {
		return invalid("name", "must be at most %d characters", MaxNameLen)
	}
	return nil
}

func validatePlan(plan string) error {
	if utf8.RuneCountInString(plan) > MaxPlanLen {
		return invalid("plan", "must be at most %d characters", MaxPlanLen)
	}
	return nil
}

// ValidEmail reports whether s is a plain e-mail address (no display name).
func ValidEmail(s string) bool {
	addr, err := mail.ParseAddress(s)
	return err == nil && addr.Address == s && len(s) <= 254
}

func validateEmail(email string) error {
	if email != "" && !ValidEmail(email) {
		return invalid("contact_email", "must be a plain e-mail address")
	}
	return nil
}

func validateLabels(labels map[string]string) error {
	if len(labels) > MaxLabels {
		return invalid("labels", "must have at most %d entries", MaxLabels)
	}
	for k, v := range labels {
		if !labelKeyPattern.MatchString(k) {
			return invalid("labels", "key %q must be 1 to %d characters of a-z, 0-9, '_', '.', '/', '-', starting and ending alphanumeric", k, MaxLabelKey)
		}
		if utf8.RuneCountInString(v) > MaxLabelValue {
			return invalid("labels", "value of %q must be at most %d characters", k, MaxLabelValue)
		}
	}
	return nil
}

// ValidRegion reports whether r is an AWS commercial Region code.
func ValidRegion(r string) bool { return slices.Contains(Regions, r) }

// normalizeRegions checks the Regions and returns them sorted, without
// duplicates, with the home Region included.
func normalizeRegions(home string, regions []string) ([]string, error) {
	if !ValidRegion(home) {
		return nil, invalid("home_region", "%q is not an AWS commercial Region", home)
	}
	out := []string{home}
	for _, r := range regions {
		if !ValidRegion(r) {
			return nil, invalid("regions", "%q is not an AWS commercial Region", r)
		}
		out = append(out, r)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > MaxRegions {
		return nil, invalid("regions", "at most %d Regions", MaxRegions)
	}
	return out, nil
}
