package webhooks

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}

// testGuard reaches httptest servers: plain http, 127.0.0.1 allowed.
func testGuard() *Guard { return &Guard{AllowHTTP: true, Allow: loopback} }

// received is what a test receiver saw of one request.
type received struct {
	method string
	header http.Header
	body   []byte
}

// receiver is an httptest server that records requests and answers with
// respond (200 "ok" if nil).
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	requests []received
	hits     atomic.Int32
}

func newReceiver(t *testing.T, respond http.HandlerFunc) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.requests = append(rc.requests, received{r.Method, r.Header.Clone(), body})
		rc.mu.Unlock()
		if respond == nil {
			io.WriteString(w, "ok")
			return
		}
		respond(w, r)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) port(t *testing.T) string {
	t.Helper()
	u, err := url.Parse(rc.URL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Port()
}

func testRequest(u string, secrets ...string) Request {
	return Request{
		URL:       u,
		ID:        "evt_2KWPBgLlAfxdpx2AI54pPJ85f4W",
		Timestamp: time.Unix(1700000000, 0),
		Body:      []byte(`{"type":"profile.created","data":{"id":"p_1"}}`),
		Secrets:   secrets,
	}
}

func TestSendSigned(t *testing.T) {
	rc := newReceiver(t, nil)
	oldSecret, newSecret := NewSecret(), NewSecret()
	s := &Sender{Guard: testGuard()}
	req := testRequest(rc.URL+"/hooks?tenant=t1", newSecret, oldSecret)
	res := s.Send(t.Context(), req)
	if res.Err != nil || res.Status != 200 || !res.Delivered() || res.Gone() {
		t.Fatalf("Send = %+v, want a delivered 200", res)
	}
	if string(res.Body) != "ok" {
		t.Errorf("Body = %q, want ok", res.Body)
	}
	if res.Duration <= 0 {
		t.Errorf("Duration = %v", res.Duration)
	}
	if len(rc.requests) != 1 {
		t.Fatalf("%d requests, want 1", len(rc.requests))
	}
	got := rc.requests[0]
	if got.method != http.MethodPost || !bytes.Equal(got.body, req.Body) {
		t.Errorf("got %s %q, want POST %q", got.method, got.body, req.Body)
	}
	for name, want := range map[string]string{
		"Content-Type":      "application/json",
		"User-Agent":        "Cairn-Webhooks/1",
		"webhook-id":        req.ID,
		"webhook-timestamp": "1700000000",
	} {
		if v := got.header.Get(name); v != want {
			t.Errorf("%s = %q, want %q", name, v, want)
		}
	}
	for _, secret := range []string{oldSecret, newSecret} {
		if err := Verify(secret, got.header, got.body, req.Timestamp, time.Minute); err != nil {
			t.Errorf("the receiver does not verify: %v", err)
		}
	}

	custom := &Sender{Guard: testGuard(), UserAgent: "Cairn-Webhooks/1 (test endpoint)"}
	if res := custom.Send(t.Context(), req); !res.Delivered() {
		t.Fatalf("Send = %+v", res)
	}
	if ua := rc.requests[1].header.Get("User-Agent"); ua != custom.UserAgent {
		t.Errorf("User-Agent = %q, want %q", ua, custom.UserAgent)
	}
}

func TestSendStatuses(t *testing.T) {
	for _, tc := range []struct {
		status          int
		delivered, gone bool
	}{
		{200, true, false},
		{202, true, false},
		{204, true, false},
		{299, true, false},
		{300, false, false},
		{400, false, false},
		{410, false, true},
		{429, false, false},
		{500, false, false},
	} {
		rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(tc.status) })
		res := (&Sender{Guard: testGuard()}).Send(t.Context(), testRequest(rc.URL, NewSecret()))
		if res.Err != nil || res.Status != tc.status || res.Delivered() != tc.delivered || res.Gone() != tc.gone {
			t.Errorf("%d: Send = %+v, Delivered %v, Gone %v", tc.status, res, res.Delivered(), res.Gone())
		}
	}
}

func TestSendRefused(t *testing.T) {
	rc := newReceiver(t, nil)
	secret := NewSecret()
	for _, tc := range []struct {
		name  string
		guard *Guard
		url   string
	}{
		{"http under the default Guard", nil, rc.URL},
		{"http not allowed", &Guard{Allow: loopback}, rc.URL},
		{"loopback not allowed", &Guard{AllowHTTP: true}, rc.URL},
		{"userinfo", testGuard(), strings.Replace(rc.URL, "http://", "http://u:p@", 1)},
		{"metadata", &Guard{AllowHTTP: true, Allow: loopback}, "http://169.254.169.254/latest/meta-data/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := (&Sender{Guard: tc.guard}).Send(t.Context(), testRequest(tc.url, secret))
			if !errors.Is(res.Err, ErrRefusedURL) || res.Status != 0 {
				t.Fatalf("Send = %+v, want ErrRefusedURL", res)
			}
		})
	}
	if n := rc.hits.Load(); n != 0 {
		t.Errorf("the receiver got %d requests, want none", n)
	}

	// A request that cannot be signed is never sent.
	res := (&Sender{Guard: testGuard()}).Send(t.Context(), testRequest(rc.URL))
	if res.Err == nil || res.Status != 0 || rc.hits.Load() != 0 {
		t.Fatalf("unsigned Send = %+v, hits %d; want an error and no request", res, rc.hits.Load())
	}
}

// flipResolver answers with first the first time a name is looked up and
// with then afterwards: a DNS rebinding attacker's name.
type flipResolver struct {
	first, then netip.Addr
	calls       atomic.Int32
}

func (f *flipResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	if f.calls.Add(1) == 1 {
		return []netip.Addr{f.first}, nil
	}
	return []netip.Addr{f.then}, nil
}

func TestSendDNSRebinding(t *testing.T) {
	rc := newReceiver(t, nil)
	endpoint := "http://rebind.example:" + rc.port(t) + "/hook"
	secret := NewSecret()

	// Public at registration, loopback when the webhook is sent.
	flip := &flipResolver{first: netip.MustParseAddr("93.184.215.14"), then: netip.MustParseAddr("127.0.0.1")}
	g := &Guard{AllowHTTP: true, Resolver: flip}
	if err := g.CheckURL(t.Context(), endpoint); err != nil {
		t.Fatalf("CheckURL at registration: %v", err)
	}
	res := (&Sender{Guard: g}).Send(t.Context(), testRequest(endpoint, secret))
	if !errors.Is(res.Err, ErrRefusedURL) || res.Status != 0 {
		t.Fatalf("Send after rebinding = %+v, want ErrRefusedURL", res)
	}
	if !strings.Contains(res.Err.Error(), "rebind.example resolves to 127.0.0.1, a loopback address") {
		t.Errorf("error %q does not say why", res.Err)
	}
	if n := rc.hits.Load(); n != 0 {
		t.Fatalf("the loopback server got %d requests", n)
	}

	// The same name with 127.0.0.1 allowed reaches the server: the dialer
	// resolves with the Guard's Resolver, not the system's.
	allowed := &Guard{AllowHTTP: true, Allow: loopback, Resolver: fakeResolver{"rebind.example": {"127.0.0.1"}}}
	res = (&Sender{Guard: allowed}).Send(t.Context(), testRequest(endpoint, secret))
	if res.Err != nil || !res.Delivered() {
		t.Fatalf("Send with 127.0.0.1 allowed = %+v", res)
	}
	if n := rc.hits.Load(); n != 1 {
		t.Fatalf("the server got %d requests, want 1", n)
	}

	// A name with a refused address among its answers is not dialled at
	// all, even though another would be allowed.
	mixed := &Guard{AllowHTTP: true, Allow: loopback, Resolver: fakeResolver{"rebind.example": {"127.0.0.1", "10.0.0.1"}}}
	res = (&Sender{Guard: mixed}).Send(t.Context(), testRequest(endpoint, secret))
	if !errors.Is(res.Err, ErrRefusedURL) {
		t.Fatalf("Send with a private answer = %+v, want ErrRefusedURL", res)
	}
}

// The dialer's Control checks the address the socket connects to,
// whoever resolved it.
func TestGuardControl(t *testing.T) {
	strict, allowing := &Guard{}, &Guard{Allow: loopback}
	for _, tc := range []struct {
		g       *Guard
		address string
		ok      bool
	}{
		{strict, "93.184.215.14:443", true},
		{strict, "[2606:4700:4700::1111]:443", true},
		{strict, "127.0.0.1:8080", false},
		{strict, "[::1]:443", false},
		{strict, "[::ffff:10.0.0.1]:443", false},
		{strict, "169.254.169.254:80", false},
		{strict, "[fe80::1%eth0]:443", false},
		{strict, "example.com:443", false},
		{allowing, "127.0.0.1:8080", true},
		{allowing, "127.0.0.2:8080", false},
	} {
		err := tc.g.control("tcp", tc.address, nil)
		if tc.ok && err != nil {
			t.Errorf("%s: %v", tc.address, err)
		}
		if !tc.ok && !errors.Is(err, ErrRefusedURL) {
			t.Errorf("%s: control = %v, want ErrRefusedURL", tc.address, err)
		}
	}
}

func TestGuardClientHTTPS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	}))
	t.Cleanup(srv.Close)
	hook := "https://hooks.example:" + strings.TrimPrefix(srv.URL, "https://127.0.0.1:")

	c := (&Guard{Allow: loopback, Resolver: fakeResolver{"hooks.example": {"127.0.0.1"}}}).Client(10 * time.Second)
	tr := c.Transport.(*http.Transport)
	if tr.Proxy != nil {
		t.Error("the client takes a proxy (from the environment?)")
	}
	tr.TLSClientConfig.RootCAs = srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	tr.TLSClientConfig.ServerName = "example.com" // in httptest's certificate
	resp, err := c.Get(hook)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

func TestSendNoRedirect(t *testing.T) {
	var followed atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/hook", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	})
	mux.HandleFunc("/elsewhere", func(http.ResponseWriter, *http.Request) { followed.Add(1) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	res := (&Sender{Guard: testGuard()}).Send(t.Context(), testRequest(srv.URL+"/hook", NewSecret()))
	if res.Err != nil || res.Status != http.StatusFound || res.Delivered() {
		t.Fatalf("Send = %+v, want the 302 itself", res)
	}
	if n := followed.Load(); n != 0 {
		t.Fatalf("the redirect was followed %d times", n)
	}
}

func TestSendResponseBody(t *testing.T) {
	// A body of exactly bytes, of a repeating pattern.
	pattern := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = 'a' + byte(i%26)
		}
		return b
	}
	for _, n := range []int{0, 10, 1023, 1024, 1025, 5000, 64<<10 + 1024} {
		rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) { w.Write(pattern(n)) })
		res := (&Sender{Guard: testGuard()}).Send(t.Context(), testRequest(rc.URL, NewSecret()))
		if want := pattern(min(n, 1024)); res.Err != nil || !bytes.Equal(res.Body, want) {
			t.Errorf("%d-byte body: Send = %v, %d bytes; want the first %d", n, res.Err, len(res.Body), len(want))
		}
	}
}

// A receiver streaming without end costs 65 KiB and a connection, not a
// timeout: Send returns as soon as it has read its bound.
func TestSendEndlessBody(t *testing.T) {
	var wrote atomic.Int64
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		chunk := bytes.Repeat([]byte("x"), 32<<10)
		for wrote.Load() < 1<<30 && r.Context().Err() == nil {
			n, err := w.Write(chunk)
			wrote.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
	s := &Sender{Guard: testGuard(), Timeout: time.Minute}
	res := s.Send(t.Context(), testRequest(rc.URL, NewSecret()))
	if res.Err != nil || res.Status != 200 || len(res.Body) != 1024 {
		t.Fatalf("Send = %v, %d, %d-byte body", res.Err, res.Status, len(res.Body))
	}
	if res.Duration > 20*time.Second {
		t.Fatalf("Send took %v", res.Duration)
	}
	// Closing the server waits for the handler, which ends because the
	// client dropped the connection.
	rc.Close()
	if n := wrote.Load(); n >= 1<<30 {
		t.Fatalf("the server wrote %d bytes: the client kept reading", n)
	}
}

// A body read to its end leaves the connection for the next attempt; one
// past the bound drops it.
func TestSendConnectionReuse(t *testing.T) {
	for _, tc := range []struct {
		name  string
		size  int
		conns int32
	}{
		{"small body", 100, 1},
		{"body within the bound", 60 << 10, 1},
		{"body past the bound", 200 << 10, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var conns atomic.Int32
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Write(bytes.Repeat([]byte("y"), tc.size))
			}))
			srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					conns.Add(1)
				}
			}
			srv.Start()
			t.Cleanup(srv.Close)
			s := &Sender{Guard: testGuard()}
			for range 3 {
				if res := s.Send(t.Context(), testRequest(srv.URL, NewSecret())); !res.Delivered() {
					t.Fatalf("Send = %+v", res)
				}
			}
			if n := conns.Load(); n != tc.conns {
				t.Errorf("%d connections for 3 requests, want %d", n, tc.conns)
			}
		})
	}
}

func TestSendTimeout(t *testing.T) {
	// The handlers read the request body first: only then does the server
	// notice the client hanging up and cancel r.Context(). release ends
	// them anyway before the server closes (cleanups run last first).
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/silent", func(_ http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	mux.HandleFunc("/slow-body", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	s := &Sender{Guard: testGuard(), Timeout: 200 * time.Millisecond}

	res := s.Send(t.Context(), testRequest(srv.URL+"/silent", NewSecret()))
	var ne net.Error
	if res.Status != 0 || !errors.As(res.Err, &ne) || !ne.Timeout() {
		t.Fatalf("Send to a silent receiver = %+v, want a timeout error", res)
	}

	// The receiver answered: its status stands, with what body arrived.
	res = s.Send(t.Context(), testRequest(srv.URL+"/slow-body", NewSecret()))
	if res.Err != nil || res.Status != 200 || string(res.Body) != "partial" {
		t.Fatalf("Send to a slow body = %+v, want 200 and the partial body", res)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	res = (&Sender{Guard: testGuard()}).Send(ctx, testRequest(srv.URL+"/silent", NewSecret()))
	if !errors.Is(res.Err, context.Canceled) {
		t.Fatalf("Send with a cancelled context = %+v", res)
	}
}

func TestSendRetryAfter(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/seconds", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "120")
		w.WriteHeader(http.StatusTooManyRequests)
	})
	mux.HandleFunc("/date", func(w http.ResponseWriter, _ *http.Request) {
		now := time.Now()
		w.Header().Set("Date", now.UTC().Format(http.TimeFormat))
		w.Header().Set("Retry-After", now.Add(time.Hour).UTC().Format(http.TimeFormat))
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	s := &Sender{Guard: testGuard()}

	res := s.Send(t.Context(), testRequest(srv.URL+"/seconds", NewSecret()))
	if res.Status != 429 || res.RetryAfter != 2*time.Minute {
		t.Errorf("seconds: Status %d, RetryAfter %v; want 429, 2m", res.Status, res.RetryAfter)
	}
	res = s.Send(t.Context(), testRequest(srv.URL+"/date", NewSecret()))
	if res.Status != 503 || res.RetryAfter != time.Hour {
		t.Errorf("date: Status %d, RetryAfter %v; want 503, 1h", res.Status, res.RetryAfter)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	date := func(d time.Duration) string { return now.Add(d).Format(http.TimeFormat) }
	for _, tc := range []struct {
		name        string
		value, date string
		want        time.Duration
	}{
		{"absent", "", "", 0},
		{"zero", "0", "", 0},
		{"seconds", "120", "", 2 * time.Minute},
		{"padded", " 30 ", "", 30 * time.Second},
		{"a day", "86400", "", 24 * time.Hour},
		{"over a day", "86401", "", 24 * time.Hour},
		{"overflowing", "99999999999999999999999", "", 24 * time.Hour},
		{"negative", "-5", "", 0},
		{"fraction", "1.5", "", 0},
		{"garbage", "soon", "", 0},
		{"date", date(90 * time.Minute), "", 90 * time.Minute},
		{"RFC 850 date", now.Add(time.Hour).Format(time.RFC850), "", time.Hour},
		{"asctime date", now.Add(time.Hour).Format(time.ANSIC), "", time.Hour},
		{"past date", date(-time.Hour), "", 0},
		{"far date", date(72 * time.Hour), "", 24 * time.Hour},
		// The receiver's clock is 10 minutes fast: its Date says so.
		{"date against Date", date(40 * time.Minute), date(10 * time.Minute), 30 * time.Minute},
		{"date, bad Date", date(40 * time.Minute), "yesterday", 40 * time.Minute},
	} {
		h := http.Header{}
		if tc.value != "" {
			h.Set("Retry-After", tc.value)
		}
		if tc.date != "" {
			h.Set("Date", tc.date)
		}
		if got := parseRetryAfter(h, now); got != tc.want {
			t.Errorf("%s: parseRetryAfter(%q) = %v, want %v", tc.name, tc.value, got, tc.want)
		}
	}
}

// Send is safe for concurrent use; run with -race.
func TestSendConcurrent(t *testing.T) {
	rc := newReceiver(t, nil)
	s := &Sender{Guard: testGuard()}
	secret := NewSecret()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			r := testRequest(rc.URL, secret)
			r.ID = "evt_" + strconv.Itoa(i)
			if res := s.Send(t.Context(), r); !res.Delivered() {
				t.Errorf("Send %d = %+v", i, res)
			}
		})
	}
	wg.Wait()
}
