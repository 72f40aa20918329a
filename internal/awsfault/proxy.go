// Package awsfault is a fault-injecting HTTP proxy to put in front of an AWS
// API emulator (moto) in tests. It covers what the emulator cannot do by
// itself: throttle, drop connections, and report stacks that are still in
// progress or that rolled back (moto completes every stack synchronously and
// never rolls back).
//
// Point an SDK client at Proxy.URL instead of the emulator. Every request is
// forwarded unchanged (Host header included, so SigV4 signatures stay
// valid), except where a rule says otherwise. Rules are scripted per
// operation and may be added and removed while requests flow:
//
//   - Throttle and Fail answer the next n calls with an error, without
//     forwarding them;
//   - Drop closes the connection of the next n calls without answering and
//     without forwarding (the call never reached the emulator);
//   - DropResponse forwards the next n calls, so the emulator acts on them,
//     then closes the connection without answering (the answer was lost);
//   - Rewrite transforms the emulator's successful answers; HoldInProgress
//     and FailStack are ready-made rewrites of DescribeStacks.
//
// # Operations
//
// An operation is named as in the API reference ("DescribeStacks",
// "CreateDatabase", "DeleteObjects"), optionally qualified IAM-style with the
// service's signing name when the bare name is ambiguous
// ("cloudformation:DescribeStacks", "glue:CreateDatabase",
// "s3:DeleteObjects"). The proxy identifies it by protocol:
//
//   - awsQuery (CloudFormation, IAM, STS: the SDK POSTs an
//     application/x-www-form-urlencoded body with Action=...): the Action form
//     field; the proxy reads the body and restores it before forwarding;
//   - awsJson (Glue, DynamoDB, Athena): the X-Amz-Target
//     header, e.g. "AWSGlue.CreateDatabase";
//   - REST-JSON with one path segment per operation (Lake Formation:
//     POST /GrantPermissions): that segment;
//   - REST-XML (S3, path-style): the method, path and sub-resource, for
//     the common bucket and object operations (ListObjectVersions,
//     DeleteObjects, DeleteBucket, HeadBucket, PutObject, GetObject, ...).
//
// Other requests have no name: they are only forwarded.
//
// Throttle answers in the protocol's own error shape: HTTP 400 with code
// Throttling in an awsQuery ErrorResponse (what CloudFormation sends), HTTP
// 400 with ThrottlingException in awsJson and REST-JSON (__type and
// X-Amzn-ErrorType), HTTP 503 with code SlowDown for S3. The message is
// "Rate exceeded" (S3: "Please reduce your request rate.").
//
// A Proxy is safe for concurrent use.
package awsfault

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
)

// Proxy is a running fault-injecting reverse proxy. Create it with New and
// stop it with Close.
type Proxy struct {
	// URL is the proxy's base URL, http://127.0.0.1:<port>.
	URL string

	server  *httptest.Server
	forward *httputil.ReverseProxy

	mu       sync.Mutex
	rules    []*Rule
	calls    map[string]int
	received map[string]int
}

// New starts a proxy on 127.0.0.1 and a free port that forwards to target
// (e.g. "http://127.0.0.1:5000"). It fails if target is not an absolute
// http(s) URL.
func New(target string) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("awsfault: parse target: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("awsfault: target %q is not an absolute http(s) URL", target)
	}
	p := &Proxy{
		calls:    make(map[string]int),
		received: make(map[string]int),
	}
	p.forward = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			// SigV4 signs the Host header: keep the one the client signed.
			r.Out.Host = r.In.Host
		},
		ModifyResponse: p.rewriteResponse,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			http.Error(w, "awsfault: forward: "+err.Error(), http.StatusBadGateway)
		},
	}
	p.server = httptest.NewServer(p)
	p.URL = p.server.URL
	return p, nil
}

// Close stops the proxy, waiting for the requests in flight.
func (p *Proxy) Close() { p.server.Close() }

// Rule is one scripted fault. Remove it to stop it early.
type Rule struct {
	p    *Proxy
	op   string
	kind ruleKind

	// remaining is how many more calls the rule applies to; -1 is no limit.
	// Guarded by p.mu.
	remaining int

	// For kindFail.
	status        int
	code, message string
	throttle      bool

	// For kindRewrite. Rewrites count themselves (see HoldInProgress), so
	// remaining is -1 for them.
	rewrite func([]byte) []byte
}

type ruleKind int

const (
	kindFail ruleKind = iota
	kindDrop
	kindDropResponse
	kindRewrite
)

// Remove stops the rule. Removing it twice is harmless.
func (r *Rule) Remove() {
	r.p.mu.Lock()
	defer r.p.mu.Unlock()
	for i, x := range r.p.rules {
		if x == r {
			r.p.rules = append(r.p.rules[:i:i], r.p.rules[i+1:]...)
			return
		}
	}
}

// Remaining returns how many more calls a Throttle, Fail, Drop or
// DropResponse rule will fault (0 once it is used up or removed), or -1 for
// a rewrite, which has no count of its own.
func (r *Rule) Remaining() int {
	r.p.mu.Lock()
	defer r.p.mu.Unlock()
	if r.kind == kindRewrite {
		return -1
	}
	for _, x := range r.p.rules {
		if x == r {
			return r.remaining
		}
	}
	return 0
}

func (p *Proxy) add(r *Rule) *Rule {
	r.p = p
	p.mu.Lock()
	defer p.mu.Unlock()
	if r.remaining != 0 {
		p.rules = append(p.rules, r)
	}
	return r
}

// Throttle answers the next n calls of op with the protocol's throttling
// error (see the package doc), without forwarding them.
func (p *Proxy) Throttle(op string, n int) *Rule {
	return p.add(&Rule{op: op, kind: kindFail, remaining: max(n, 0), throttle: true})
}

// Fail answers the next n calls of op with an error of the given HTTP
// status, code and message in the protocol's error shape, without
// forwarding them; e.g. Fail("CreateStack", 1, 500, "InternalFailure", "").
func (p *Proxy) Fail(op string, n, status int, code, message string) *Rule {
	return p.add(&Rule{op: op, kind: kindFail, remaining: max(n, 0), status: status, code: code, message: message})
}

// Drop closes the connection of the next n calls of op without answering.
// The calls are not forwarded: the emulator never sees them.
func (p *Proxy) Drop(op string, n int) *Rule {
	return p.add(&Rule{op: op, kind: kindDrop, remaining: max(n, 0)})
}

// DropResponse forwards the next n calls of op, then closes their
// connection without answering: the emulator acted on the call but the
// client never learns it, which is what idempotency tokens are for.
func (p *Proxy) DropResponse(op string, n int) *Rule {
	return p.add(&Rule{op: op, kind: kindDropResponse, remaining: max(n, 0)})
}

// Rewrite passes the body of every successful (2xx) answer to op through
// fn, until the rule is removed. fn may be called concurrently, and must not
// retain body. Rewrites of one operation apply in the order they were
// added.
func (p *Proxy) Rewrite(op string, fn func(body []byte) []byte) *Rule {
	return p.add(&Rule{op: op, kind: kindRewrite, remaining: -1, rewrite: fn})
}

// Calls returns how many calls of op the proxy forwarded to the emulator:
// every call except those answered by Throttle, Fail or Drop (DropResponse
// calls are forwarded, and counted).
func (p *Proxy) Calls(op string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[op]
}

// Received returns how many calls of op reached the proxy, faulted or not.
func (p *Proxy) Received(op string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.received[op]
}

// Reset removes every rule and sets every count back to zero.
func (p *Proxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = nil
	clear(p.calls)
	clear(p.received)
}

type opKey struct{}

// call is what the proxy knows of one request.
type call struct {
	protocol protocol
	service  string // signing name from the credential scope, e.g. "cloudformation"
	name     string // operation name, e.g. "DescribeStacks"; "" if unknown
}

func (c call) matches(op string) bool {
	if c.name == "" {
		return false
	}
	if service, name, ok := strings.Cut(op, ":"); ok {
		return strings.EqualFold(service, c.service) && name == c.name
	}
	return op == c.name
}

// keys are the names under which the call is counted.
func (c call) keys() []string {
	if c.name == "" {
		return nil
	}
	if c.service == "" {
		return []string{c.name}
	}
	return []string{c.name, c.service + ":" + c.name}
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, err := identify(r)
	if err != nil {
		http.Error(w, "awsfault: "+err.Error(), http.StatusBadRequest)
		return
	}

	p.mu.Lock()
	var fault *Rule
	for _, rule := range p.rules {
		if rule.kind != kindRewrite && rule.remaining != 0 && c.matches(rule.op) {
			fault = rule
			break
		}
	}
	if fault != nil {
		fault.remaining--
		if fault.remaining == 0 {
			p.removeLocked(fault)
		}
	}
	for _, k := range c.keys() {
		p.received[k]++
		if fault == nil || fault.kind == kindDropResponse {
			p.calls[k]++
		}
	}
	p.mu.Unlock()

	if fault == nil {
		p.forward.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), opKey{}, c)))
		return
	}
	switch fault.kind {
	case kindFail:
		writeError(w, c, fault)
	case kindDrop:
		_, _ = io.Copy(io.Discard, r.Body)
		hangUp(w)
	case kindDropResponse:
		rec := httptest.NewRecorder()
		p.forward.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), opKey{}, c)))
		hangUp(w)
	}
}

func (p *Proxy) removeLocked(r *Rule) {
	for i, x := range p.rules {
		if x == r {
			p.rules = append(p.rules[:i:i], p.rules[i+1:]...)
			return
		}
	}
}

// hangUp closes the client's connection without writing anything.
func hangUp(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Not hijackable (HTTP/2): abort the handler, which resets the stream.
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

// rewriteResponse applies the rewrite rules of the call's operation to a
// successful answer.
func (p *Proxy) rewriteResponse(resp *http.Response) error {
	c, ok := resp.Request.Context().Value(opKey{}).(call)
	if !ok || resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil
	}
	p.mu.Lock()
	var fns []func([]byte) []byte
	for _, rule := range p.rules {
		if rule.kind == kindRewrite && c.matches(rule.op) {
			fns = append(fns, rule.rewrite)
		}
	}
	p.mu.Unlock()
	if len(fns) == 0 {
		return nil
	}

	var body io.Reader = resp.Body
	if strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			return fmt.Errorf("awsfault: gunzip answer: %w", err)
		}
		body = zr
		resp.Header.Del("Content-Encoding")
	}
	b, err := io.ReadAll(body)
	_ = resp.Body.Close()
	if err != nil {
		return fmt.Errorf("awsfault: read answer: %w", err)
	}
	for _, fn := range fns {
		b = fn(b)
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	resp.ContentLength = int64(len(b))
	resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
	return nil
}
