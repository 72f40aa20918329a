package httpapi

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/cairn-cdp/cairn/internal/auth"
	"github.com/cairn-cdp/cairn/internal/fleet"
	"github.com/cairn-cdp/cairn/internal/plans"
	"github.com/cairn-cdp/cairn/internal/ratelimit"
	"github.com/cairn-cdp/cairn/internal/tenants"
)

// Limits turns on the enforcement of the plans' rates and monthly quota,
// and of the limit on refused credentials per client address (see
// Config.Limits and package ratelimit).
type Limits struct {
	// Shares returns how many replicas share each limit
	// (replicas.Heartbeat.Live); nil means this replica alone.
	Shares func() int
	// Proxies are the trusted proxies, whose X-Forwarded-For names the
	// client; no other request's is believed.
	Proxies ratelimit.Proxies
	// FailedAuth is how many requests with a refused token or write key a
	// client address may send: Burst at once, then Rate a second. While
	// it is spent, every request of the address to a route that takes
	// credentials is refused before they are checked. A zero Rate turns it
	// off.
	FailedAuth ratelimit.Limit
	// Size bounds the keys each kind of bucket holds; default
	// ratelimit.DefaultSize.
	Size int
}

// Names of the quota policies, as the RateLimit fields and problems name
// them.
const (
	policySource  = "per-source"
	policyTenant  = "per-tenant"
	policyToken   = "per-token"
	policyAddress = "per-address"
	policyMonthly = "monthly-events"
)

// Names of the quotas in tenant.quota_exceeded fleet events.
const (
	quotaMonthlyEvents = "monthly_events"
	quotaProfiles      = "profiles"
)

// quotaWarningHeader tells a tenant over its monthly quota in warn mode
// that its events were accepted all the same.
const quotaWarningHeader = "Cairn-Quota-Warning"

// limiter enforces Limits in the gate and the ingestion handlers. A nil
// *limiter enforces nothing.
type limiter struct {
	log     *slog.Logger
	plans   *plans.Service
	tenants TenantReader
	// One set of buckets a kind of key, so that a kind's keys never push
	// another's out (see ratelimit.Buckets).
	sources, tenantEvents, tokens, addrs *ratelimit.Buckets
	proxies                              ratelimit.Proxies
	failed                               ratelimit.Limit
	quota                                *ratelimit.Quota
	profiles                             *ratelimit.ProfileCounts
	now                                  func() time.Time
}

func newLimiter(cfg Config) *limiter {
	if cfg.Limits == nil {
		return nil
	}
	l := cfg.Limits
	size := l.Size
	return &limiter{
		log: cfg.Logger, plans: cfg.Plans, tenants: cfg.Tenants,
		sources:      ratelimit.NewBuckets(size, l.Shares),
		tenantEvents: ratelimit.NewBuckets(size, l.Shares),
		tokens:       ratelimit.NewBuckets(size, l.Shares),
		addrs:        ratelimit.NewBuckets(size, l.Shares),
		proxies:      l.Proxies, failed: l.FailedAuth,
		quota:    ratelimit.NewQuota(cfg.Usage, cfg.Meter, nil),
		profiles: ratelimit.NewProfileCounts(cfg.Usage, nil),
		now:      time.Now,
	}
}

// addressPolicy is the policy of refused credentials per client address.
func (l *limiter) addressPolicy(st ratelimit.State) ratelimit.Policy {
	return ratelimit.Policy{Name: policyAddress, Quota: int64(l.failed.Burst),
		Window: time.Duration(float64(l.failed.Burst) / l.failed.Rate * float64(time.Second)), State: st}
}

// refuseAddress refuses a request that takes credentials from a client
// address whose budget of refused credentials is spent, before its
// credentials cost anything to check.
func (l *limiter) refuseAddress(r *http.Request) *problem {
	if l == nil || l.failed.Rate <= 0 {
		return nil
	}
	addr := l.proxies.ClientAddr(r)
	if !addr.IsValid() {
		return nil
	}
	st := l.addrs.Ready(ratelimit.AddrKey(addr), l.failed, l.now())
	if st.OK {
		return nil
	}
	p := newProblem(http.StatusTooManyRequests, "too-many-failed-attempts", "Too many failed attempts",
		fmt.Sprintf("Too many requests from this address were refused for their token or write key; retry in %s s.", ratelimit.RetryAfter(st.RetryAfter)))
	p.header = limitHeader([]ratelimit.Policy{l.addressPolicy(st)}, st.RetryAfter)
	return p
}

// failedAuth charges the request's client address for credentials that
// were refused.
func (l *limiter) failedAuth(r *http.Request) {
	if l == nil || l.failed.Rate <= 0 {
		return
	}
	if addr := l.proxies.ClientAddr(r); addr.IsValid() {
		l.addrs.Charge(ratelimit.AddrKey(addr), l.failed, 1, l.now())
	}
}

// limitHeader is the header of a refusal: both RateLimit fields and
// Retry-After.
func limitHeader(ps []ratelimit.Policy, retry time.Duration) http.Header {
	h := http.Header{}
	ratelimit.SetHeaders(h, ps)
	h.Set("Retry-After", ratelimit.RetryAfter(retry))
	return h
}

// ingestLimits is what the gate admitted an ingestion request under, for
// its handler to charge the events it carries and check the monthly
// quota (see Server.chargeEvents).
type ingestLimits struct {
	l      *limiter
	tenant tenants.Tenant
	plan   plans.Plan
	// source is the write key's source, "" for a token's request.
	source   string
	policies []ratelimit.Policy
	header   http.Header
}

type ingestLimitsKey struct{}

// admit applies the plan of a tenant principal's tenant to its request:
// the token's requests a second, and on an ingestion route whether the
// source's and the tenant's event budgets are spent. It sets the RateLimit
// fields of the answer, or returns the 429 that refuses the request. An
// admin's requests have no plan.
func (l *limiter) admit(w http.ResponseWriter, r *http.Request, p auth.Principal, byKey, ingest bool) (*http.Request, *problem) {
	if l == nil || p.IsAdmin() || p.TenantID == "" {
		return r, nil
	}
	ctx := r.Context()
	t, err := l.tenants.Admitted(ctx, p.TenantID)
	if err != nil {
		return r, errInternal
	}
	plan, err := l.plans.Limits(ctx, t.Plan)
	if err != nil {
		l.log.ErrorContext(ctx, "reading the tenant's plan", "tenant_id", t.ID, "plan", t.Plan, "err", err)
		return r, errInternal
	}
	now := l.now()
	var (
		pols    []ratelimit.Policy
		refused []string
		retry   time.Duration
	)
	add := func(name string, q int64, unit string, st ratelimit.State) {
		pols = append(pols, ratelimit.Policy{Name: name, Quota: q, Window: time.Second, Unit: unit, State: st})
		if !st.OK {
			refused = append(refused, name)
			retry = max(retry, st.RetryAfter)
		}
	}
	if q := plan.Limits.RequestsPerSecondPerToken; q != nil && !byKey {
		add(policyToken, *q, "", l.tokens.Take(tokenKey(r), ratelimit.PerSecond(*q), 1, now))
	}
	source := ""
	if ingest {
		source, _ = strings.CutPrefix(p.Subject, sourceSubject)
		if q := plan.Limits.EventsPerSecondPerSource; q != nil && byKey {
			add(policySource, *q, "events", l.sources.Ready(source, ratelimit.PerSecond(*q), now))
		}
		if q := plan.Limits.EventsPerSecondPerTenant; q != nil {
			add(policyTenant, *q, "events", l.tenantEvents.Ready(t.ID, ratelimit.PerSecond(*q), now))
		}
	}
	if len(refused) > 0 {
		pr := newProblem(http.StatusTooManyRequests, "rate-limited", "Too many requests",
			fmt.Sprintf("Over the %s rate of plan %q (%s); retry in %s s.", strings.Join(refused, " and "), plan.Name, describeRates(pols), ratelimit.RetryAfter(retry)))
		pr.header = limitHeader(pols, retry)
		return r, pr
	}
	ratelimit.SetHeaders(w.Header(), pols)
	if ingest {
		if !byKey {
			source = ""
		}
		il := &ingestLimits{l: l, tenant: t, plan: plan, source: source, policies: pols, header: w.Header()}
		r = r.WithContext(context.WithValue(ctx, ingestLimitsKey{}, il))
	}
	return r, nil
}

// describeRates says what each policy allows, for a refusal's detail.
func describeRates(ps []ratelimit.Policy) string {
	var parts []string
	for _, p := range ps {
		unit := "requests"
		if p.Unit != "" {
			unit = p.Unit
		}
		parts = append(parts, fmt.Sprintf("%s: %d %s a second", p.Name, p.Quota, unit))
	}
	return strings.Join(parts, ", ")
}

// tokenKey is the bucket key of a request's bearer token: a digest, so
// the buckets hold no token.
func tokenKey(r *http.Request) string {
	_, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	return string(sum[:16])
}

// chargeEvents applies an admitted ingestion request's n events to its
// tenant's plan: the limit of profiles and the monthly quota first (a
// tenant over one in block mode is refused, charged nothing; in warn mode
// it is told so, and either way the ISV hears of it once a month), then
// the source's and the tenant's event budgets, which may go into debt
// (see package ratelimit). It updates the RateLimit fields of the answer.
func (s *Server) chargeEvents(ctx context.Context, n int) error {
	il, _ := ctx.Value(ingestLimitsKey{}).(*ingestLimits)
	if il == nil {
		return nil
	}
	l, plan, now := il.l, il.plan, il.l.now()
	pols := il.policies
	if q := plan.Limits.Profiles; q != nil {
		if err := s.checkProfiles(ctx, il, *q); err != nil {
			return err
		}
	}
	if q := plan.Limits.MonthlyEvents; q != nil {
		st, err := l.quota.Check(ctx, il.tenant.ID, *q, n)
		if err != nil {
			// Refusing events over a quota that cannot be read would make
			// the database an ingestion outage: they are accepted.
			s.log.WarnContext(ctx, "monthly quota not checked", "tenant_id", il.tenant.ID, "err", err)
		} else {
			if st.Announce {
				s.announceQuota(ctx, il.tenant, plan, quotaMonthlyEvents, st.Limit, st.Month, plan.MonthlyEventsMode,
					func() { l.quota.Unannounce(il.tenant.ID, st.Month) })
			}
			blocked := st.Over && plan.MonthlyEventsMode == plans.ModeBlock
			remaining := st.Limit - st.Used
			if !blocked {
				remaining -= int64(n)
			}
			pols = append(pols, ratelimit.Policy{Name: policyMonthly, Quota: *q, Window: st.Window, Unit: "events",
				State: ratelimit.State{OK: !blocked, Remaining: max(remaining, 0), Reset: st.Reset, RetryAfter: st.Reset}})
			if blocked {
				p := newProblem(http.StatusTooManyRequests, "monthly-events-quota", "Monthly quota of events spent",
					fmt.Sprintf("The tenant's plan %q allows %d events a month and %d were accepted in %s; events are refused until the month ends (UTC).", plan.Name, *q, st.Used, st.Month))
				p.header = limitHeader(pols, st.Reset)
				return p
			}
			if st.Over {
				il.header.Add(quotaWarningHeader, fmt.Sprintf("monthly events quota of plan %q exceeded: %d of %d accepted in %s", plan.Name, st.Used, *q, st.Month))
			}
		}
	}
	for i, p := range pols {
		rate := ratelimit.PerSecond(p.Quota)
		switch p.Name {
		case policySource:
			pols[i].State = l.sources.Charge(il.source, rate, n, now)
		case policyTenant:
			pols[i].State = l.tenantEvents.Charge(il.tenant.ID, rate, n, now)
		}
	}
	ratelimit.SetHeaders(il.header, pols)
	return nil
}

// checkProfiles holds the tenant's last sampled count of profiles against
// its plan's limit q: at or past it, the tenant's events are refused in
// block mode and accepted with a warning in warn mode, and the ISV hears
// of it once a month either way. A count that cannot be read lets the
// events in: the database must not become an ingestion outage.
func (s *Server) checkProfiles(ctx context.Context, il *ingestLimits, q int64) error {
	plan := il.plan
	st, err := il.l.profiles.Check(ctx, il.tenant.ID, q)
	if err != nil {
		s.log.WarnContext(ctx, "limit of profiles not checked", "tenant_id", il.tenant.ID, "err", err)
		return nil
	}
	if !st.Over {
		return nil
	}
	if st.Announce {
		s.announceQuota(ctx, il.tenant, plan, quotaProfiles, st.Limit, st.Month, plan.ProfilesMode,
			func() { il.l.profiles.Unannounce(il.tenant.ID, st.Month) })
	}
	if plan.ProfilesMode == plans.ModeBlock {
		return newProblem(http.StatusForbidden, "profiles-quota", "Limit of profiles reached",
			fmt.Sprintf("The tenant's plan %q allows %d profiles and the tenant has %d; its events are refused until erasures bring it under the limit or the plan is raised.", plan.Name, q, st.Count))
	}
	il.header.Add(quotaWarningHeader, fmt.Sprintf("limit of profiles of plan %q reached: %d of %d", plan.Name, st.Count, q))
	return nil
}

// announceQuota tells the ISV's fleet endpoints that the tenant went over
// a quota of its plan (limit, in the mode); the event's ID is the
// tenant's, the quota's and the month's, so replicas that each see the
// crossing announce it once a month. One that cannot be written is tried
// again at the tenant's next request (unannounce forgets this one).
func (s *Server) announceQuota(ctx context.Context, t tenants.Tenant, plan plans.Plan, quota string, limit int64, month string, mode plans.Mode, unannounce func()) {
	now := time.Now().UTC()
	data := tenants.FleetData(t, now)
	data.Quota, data.Plan, data.Limit, data.Month, data.Mode = quota, plan.Name, limit, month, string(mode)
	ev := fleet.Event{ID: fleet.NewID(t.ID, fleet.TenantQuotaExceeded, quota, month), Type: fleet.TenantQuotaExceeded, At: now, Data: data}
	if err := s.tenants.Announce(ctx, ev); err != nil {
		s.log.WarnContext(ctx, "quota crossing not announced; the next request tries again", "tenant_id", t.ID, "quota", quota, "err", err)
		unannounce()
		return
	}
	s.log.InfoContext(ctx, "tenant over a quota of its plan", "tenant_id", t.ID, "quota", quota, "plan", plan.Name, "limit", limit, "month", month, "mode", mode)
}

// planCap returns the most resources of a kind the tenant's plan allows
// (limit picks the plan's limit) within Cairn's own cap, and the plan when
// its limit is the smaller one.
func (s *Server) planCap(ctx context.Context, tenantID string, limit func(plans.Limits) *int64, cap int) (int, *plans.Plan, error) {
	t, err := s.tenants.Admitted(ctx, tenantID)
	if err != nil {
		return 0, nil, err
	}
	plan, err := s.plans.Limits(ctx, t.Plan)
	if err != nil {
		return 0, nil, err
	}
	if q := limit(plan.Limits); q != nil && *q < int64(cap) {
		return int(*q), &plan, nil
	}
	return cap, nil, nil
}

// planLimit is the 409 of a create past a plan's count limit: the same
// request succeeds once the tenant has fewer, or a larger plan.
func planLimit(what string, limit int, plan *plans.Plan) *problem {
	return newProblem(http.StatusConflict, "plan-limit", "Plan limit reached",
		fmt.Sprintf("The tenant's plan %q allows %d %s and it has them; delete one, or move the tenant to a plan that allows more.", plan.Name, limit, what))
}

// errAtPlanLimit maps a service's limit error to planLimit when the plan's
// limit was the one applied.
func errAtPlanLimit(err, limitErr error, what string, limit int, plan *plans.Plan) error {
	if plan != nil && errors.Is(err, limitErr) {
		return planLimit(what, limit, plan)
	}
	return err
}
