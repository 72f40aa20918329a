package webhooks_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/sealed"
	"github.com/cairn-cdp/cairn/internal/store/sqlite"
	"github.com/cairn-cdp/cairn/internal/testdb"
	"github.com/cairn-cdp/cairn/internal/webhooks"
)

// waitTimeout bounds every wait for the dispatcher; it only matters when a
// test is about to fail.
const waitTimeout = 20 * time.Second

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 5, 6, 7, 8, 9, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// attempt is one attempt the dispatcher recorded.
type attempt struct {
	d   webhooks.Delivery
	res webhooks.Result
}

// harness is a Service on a real SQLite store with a settable clock; its
// dispatcher runs until the test ends and reports every attempt.
type harness struct {
	t        *testing.T
	svc      *webhooks.Service
	store    *sqlite.DB
	keys     *sealed.Keyring
	clock    *clock
	attempts chan attempt
}

type option func(*webhooks.Config)

func newHarness(t *testing.T, opts ...option) *harness {
	t.Helper()
	db, err := sqlite.Open(t.Context(), testdb.SQLitePath(t), slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, store: db, keys: newKeyring(t), clock: newClock(), attempts: make(chan attempt, 1000)}
	guard := &webhooks.Guard{AllowHTTP: true, Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	cfg := webhooks.Config{
		Store: db, Sealer: h.keys, Guard: guard, Sender: &webhooks.Sender{Guard: guard, Timeout: 500 * time.Millisecond},
		Now: h.clock.Now, Rand: func() float64 { return 0 },
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
		// Only Notify and finished attempts start a round.
		PollInterval: time.Hour,
		OnAttempt:    func(d webhooks.Delivery, r webhooks.Result) { h.attempts <- attempt{d, r} },
	}
	for _, o := range opts {
		o(&cfg)
	}
	h.svc, err = webhooks.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error)
	go func() { stopped <- h.svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-stopped; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return h
}

// newKeyring returns a key-encryption keyring with one fresh key.
func newKeyring(t *testing.T) *sealed.Keyring {
	t.Helper()
	k, err := sealed.ParseKey(sealed.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	return sealed.NewKeyring(k)
}

// endpoint creates an endpoint of tenant at url for the types.
func (h *harness) endpoint(tenant, url string, types ...string) webhooks.Endpoint {
	h.t.Helper()
	e, secret, err := h.svc.Create(h.t.Context(), audit.Event{}, tenant, webhooks.EndpointInput{URL: &url, EventTypes: &types})
	if err != nil {
		h.t.Fatalf("create endpoint: %v", err)
	}
	if !strings.HasPrefix(secret, "whsec_") {
		h.t.Fatalf("secret %q", secret)
	}
	return e
}

func (h *harness) enqueue(events ...webhooks.Event) {
	h.t.Helper()
	if err := h.svc.Enqueue(h.t.Context(), events); err != nil {
		h.t.Fatalf("enqueue: %v", err)
	}
}

// wait returns the next n attempts.
func (h *harness) wait(n int) []attempt {
	h.t.Helper()
	var out []attempt
	deadline := time.After(waitTimeout)
	for len(out) < n {
		select {
		case a := <-h.attempts:
			out = append(out, a)
		case <-deadline:
			h.t.Fatalf("waited %s for %d attempts, got %d", waitTimeout, n, len(out))
		}
	}
	return out
}

// next advances the clock past any retry and wakes the dispatcher.
func (h *harness) next(d time.Duration) {
	h.clock.Advance(d)
	h.svc.Notify()
}

func (h *harness) deliveries(e webhooks.Endpoint, status webhooks.Status) []webhooks.Delivery {
	h.t.Helper()
	ds, err := h.svc.Deliveries(h.t.Context(), e.TenantID, e.ID, status, 0, 0)
	if err != nil {
		h.t.Fatal(err)
	}
	return ds
}

// request is one request a receiver got.
type request struct {
	id, signature string
	header        http.Header
	body          []byte
	data          map[string]any
}

// receiver is an HTTP endpoint whose answer a test sets.
type receiver struct {
	t    *testing.T
	srv  *httptest.Server
	addr string

	mu       sync.Mutex
	answer   func(w http.ResponseWriter, r *http.Request)
	requests []request
	got      chan request
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{t: t, got: make(chan request, 1000), answer: func(w http.ResponseWriter, r *http.Request) {}}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	rc.addr = rc.srv.Listener.Addr().String()
	t.Cleanup(func() { rc.srv.Close() })
	return rc
}

func (rc *receiver) URL() string { return "http://" + rc.addr + "/hook" }

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req := request{id: r.Header.Get("webhook-id"), signature: r.Header.Get("webhook-signature"), header: r.Header.Clone(), body: body}
	var payload struct {
		Data map[string]any `json:"data"`
	}
	_ = json.Unmarshal(body, &payload)
	req.data = payload.Data
	rc.mu.Lock()
	rc.requests = append(rc.requests, req)
	answer := rc.answer
	rc.mu.Unlock()
	rc.got <- req
	answer(w, r)
}

func (rc *receiver) set(answer func(w http.ResponseWriter, r *http.Request)) {
	rc.mu.Lock()
	rc.answer = answer
	rc.mu.Unlock()
}

func status(code int) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
}

// hang answers only once the client has gone.
func hang(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }

// close stops the receiver: connections are refused.
func (rc *receiver) close() { rc.srv.Close() }

// reopen serves again on the same address.
func (rc *receiver) reopen() {
	rc.t.Helper()
	ln, err := net.Listen("tcp", rc.addr)
	if err != nil {
		rc.t.Fatalf("listen again on %s: %v", rc.addr, err)
	}
	rc.srv = httptest.NewUnstartedServer(http.HandlerFunc(rc.serve))
	rc.srv.Listener.Close()
	rc.srv.Listener = ln
	rc.srv.Start()
}

func (rc *receiver) received() []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]request(nil), rc.requests...)
}

// event returns a profile.created event n of profile in tenant.
func event(tenant, profile string, n int) webhooks.Event {
	return webhooks.Event{
		ID: fmt.Sprintf("evt_%s_%s_%03d", tenant, profile, n), Type: webhooks.ProfileCreated, TenantID: tenant, ProfileID: profile,
		At: time.Date(2025, 5, 6, 7, 8, 9, 0, time.UTC), Data: json.RawMessage(fmt.Sprintf(`{"profile_id":%q,"n":%d}`, profile, n)),
	}
}
