package webhooks

// TEMPORARY: a minimal stand-in for sign.go, guard.go, send.go and
// backoff.go, which are written on another branch. It has only the
// signatures the service and dispatcher code against; the merge removes
// this file.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// NewSecret returns a new endpoint secret, "whsec_" and base64 of 24 random bytes.
func NewSecret() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

// Sign returns the webhook-signature header value: one v1 signature per secret.
func Sign(secrets []string, id string, ts time.Time, body []byte) (string, error) {
	var sigs []string
	for _, s := range secrets {
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
		if err != nil {
			return "", fmt.Errorf("sign: %w", err)
		}
		m := hmac.New(sha256.New, key)
		fmt.Fprintf(m, "%s.%d.", id, ts.Unix())
		m.Write(body)
		sigs = append(sigs, "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
	}
	return strings.Join(sigs, " "), nil
}

// ErrRefusedURL is wrapped by CheckURL's refusals.
var ErrRefusedURL = errors.New("refused URL")

// Guard decides which URLs webhooks may be sent to.
type Guard struct {
	AllowHTTP bool
	Allow     []netip.Prefix
	Resolver  *net.Resolver
}

// CheckURL refuses a URL that is not https (http if allowed) or whose host
// resolves to a non-public address outside Allow.
func (g *Guard) CheckURL(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%w: not an absolute URL", ErrRefusedURL)
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && g.AllowHTTP) {
		return fmt.Errorf("%w: scheme %s is not allowed", ErrRefusedURL, u.Scheme)
	}
	r := g.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	addrs, err := r.LookupNetIP(ctx, "ip", u.Hostname())
	if err != nil {
		return fmt.Errorf("%w: %s does not resolve", ErrRefusedURL, u.Hostname())
	}
	for _, a := range addrs {
		a = a.Unmap()
		allowed := false
		for _, p := range g.Allow {
			allowed = allowed || p.Contains(a)
		}
		if !allowed && (a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsUnspecified() || a.IsMulticast()) {
			return fmt.Errorf("%w: %s is not a public address", ErrRefusedURL, a)
		}
	}
	return nil
}

// Request is one delivery attempt.
type Request struct {
	URL       string
	ID        string
	Timestamp time.Time
	Body      []byte
	Secrets   []string
}

// Result is the outcome of an attempt.
type Result struct {
	Status     int
	Body       []byte
	RetryAfter time.Duration
	Err        error
	Duration   time.Duration
}

// Delivered reports a 2xx answer.
func (r Result) Delivered() bool { return r.Err == nil && r.Status >= 200 && r.Status < 300 }

// Gone reports a 410 answer.
func (r Result) Gone() bool { return r.Err == nil && r.Status == http.StatusGone }

// Sender sends signed requests.
type Sender struct {
	Guard   *Guard
	Timeout time.Duration
}

// Send makes one attempt.
func (s *Sender) Send(ctx context.Context, r Request) Result {
	start := time.Now()
	res := s.send(ctx, r)
	res.Duration = time.Since(start)
	return res
}

func (s *Sender) send(ctx context.Context, r Request) Result {
	if s.Guard != nil {
		if err := s.Guard.CheckURL(ctx, r.URL); err != nil {
			return Result{Err: err}
		}
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	sig, err := Sign(r.Secrets, r.ID, r.Timestamp, r.Body)
	if err != nil {
		return Result{Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(r.Body))
	if err != nil {
		return Result{Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", r.ID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(r.Timestamp.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		return Result{Err: err}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	res := Result{Status: resp.StatusCode, Body: body}
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
		res.RetryAfter = time.Duration(secs) * time.Second
	}
	return res
}

// placeholderSchedule is the delay after each failure.
var placeholderSchedule = []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}

// NextAttempt returns when to try again after attempts failures; false
// means give up.
func NextAttempt(attempts int, now time.Time, retryAfter time.Duration, rnd func() float64) (time.Time, bool) {
	if attempts < 1 || attempts > len(placeholderSchedule) {
		return time.Time{}, false
	}
	d := placeholderSchedule[attempts-1]
	if rnd != nil {
		d += time.Duration(float64(d) * 0.1 * rnd())
	}
	if retryAfter > d {
		d = retryAfter
	}
	return now.Add(d), true
}
