package ratelimit

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The fields follow draft-ietf-httpapi-ratelimit-headers-10 (27 September
// 2025), the revision current when they were written: RateLimit-Policy is
// a List of quota policy Items, each a String naming the policy with its
// quota q and window w (seconds); RateLimit a List of service limit Items,
// each naming a policy with its remaining quota r and t, the seconds until
// more quota is made available. Items are Structured Field Values (RFC
// 9651). A policy whose unit is not requests (events) says so in a
// vendor-prefixed parameter, as the draft asks of parameters of one's own:
// the draft's quota unit (qu) takes only registered units.
const (
	PolicyField = "RateLimit-Policy"
	LimitField  = "RateLimit"
)

// Policy is one quota policy a response reports.
type Policy struct {
	// Name identifies the policy, e.g. "per-source".
	Name string
	// Quota is how many units the policy allows per Window.
	Quota int64
	// Window is the policy's time window.
	Window time.Duration
	// Unit, when not empty, names what Quota counts if not requests
	// ("events"), in the parameter cairn-unit.
	Unit string
	// State is the policy's quota as the request left it.
	State State
}

// SetHeaders sets both fields on h for ps, in their order; none for no
// policy.
func SetHeaders(h http.Header, ps []Policy) {
	if len(ps) == 0 {
		return
	}
	var pol, lim strings.Builder
	for i, p := range ps {
		if i > 0 {
			pol.WriteString(", ")
			lim.WriteString(", ")
		}
		writeString(&pol, p.Name)
		pol.WriteString(";q=")
		pol.WriteString(strconv.FormatInt(max(p.Quota, 0), 10))
		pol.WriteString(";w=")
		pol.WriteString(strconv.FormatInt(ceilSeconds(p.Window), 10))
		if p.Unit != "" {
			pol.WriteString(";cairn-unit=")
			writeString(&pol, p.Unit)
		}
		writeString(&lim, p.Name)
		lim.WriteString(";r=")
		lim.WriteString(strconv.FormatInt(max(p.State.Remaining, 0), 10))
		lim.WriteString(";t=")
		t := p.State.Reset
		if !p.State.OK {
			// Refused: no quota until the retry, which the draft wants
			// no earlier than the effective window's end.
			t = p.State.RetryAfter
		}
		lim.WriteString(strconv.FormatInt(ceilSeconds(t), 10))
	}
	h.Set(PolicyField, pol.String())
	h.Set(LimitField, lim.String())
}

// RetryAfter is the Retry-After value (delay-seconds) of a wait: whole
// seconds, rounded up, at least 1.
func RetryAfter(d time.Duration) string { return strconv.FormatInt(max(ceilSeconds(d), 1), 10) }

func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(math.Ceil(d.Seconds()))
}

// writeString writes s as a Structured Field String: quoted, with '"'
// and '\' escaped. Names here are printable ASCII.
func writeString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		if c >= 0x20 && c < 0x7f {
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
}
