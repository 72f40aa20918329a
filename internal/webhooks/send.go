package webhooks

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultUserAgent is sent when a Sender has no UserAgent.
const DefaultUserAgent = "Cairn-Webhooks/1"

// defaultSendTimeout bounds a request, body included, when a Sender has
// no Timeout. Not exported: the service's DefaultTimeout, the same
// value, is the one callers see.
const defaultSendTimeout = 15 * time.Second

const (
	// resultBodyBytes of a response are kept, for the delivery log.
	resultBodyBytes = 1024
	// drainBytes more are read and discarded, so the connection can be
	// reused; a longer body drops it instead.
	drainBytes = 64 << 10
)

// Request is one delivery attempt.
type Request struct {
	URL string
	// ID is the webhook-id: the event's ID, the same on every attempt.
	ID string
	// Timestamp is the webhook-timestamp: the time of this attempt.
	Timestamp time.Time
	Body      []byte
	// Secrets sign the request, one signature each, in this order.
	Secrets []string
}

// Result is what an attempt came to.
type Result struct {
	// Status is the response's status code; 0 when no response arrived.
	Status int
	// Body is the first 1024 bytes of the response body. The rest is read
	// and discarded up to 64 KiB, and past that the connection is dropped.
	Body []byte
	// RetryAfter is the response's Retry-After (seconds or an HTTP date),
	// at most 24h; 0 if none or unparseable.
	RetryAfter time.Duration
	// Err is why no response arrived: a transport error, a timeout, a
	// refusal (wrapping ErrRefusedURL) or a request that could not be
	// signed. It is nil whenever Status is set, whatever the status.
	Err error
	// Duration is how long the attempt took, reading the body included.
	Duration time.Duration
}

// Delivered reports a 2xx response.
func (r Result) Delivered() bool { return r.Status >= 200 && r.Status < 300 }

// Gone reports a 410 response: the receiver wants no more deliveries.
func (r Result) Gone() bool { return r.Status == http.StatusGone }

// Sender makes delivery attempts. Its fields must be set before the first
// Send and not changed after; it then is safe for concurrent use and
// reuses connections across calls. It must not be copied after first use.
type Sender struct {
	// Guard checks each URL and dialled address; nil is the zero Guard
	// (https only, no exceptions).
	Guard *Guard
	// Timeout bounds each attempt, reading the response included;
	// 15s if zero.
	Timeout time.Duration
	// UserAgent is the User-Agent header; DefaultUserAgent if empty.
	UserAgent string

	once   sync.Once
	guard  *Guard
	client *http.Client
}

func (s *Sender) init() {
	s.once.Do(func() {
		s.guard = s.Guard
		if s.guard == nil {
			s.guard = &Guard{}
		}
		timeout := s.Timeout
		if timeout <= 0 {
			timeout = defaultSendTimeout
		}
		s.client = s.guard.Client(timeout)
	})
}

// Send POSTs r.Body to r.URL with Content-Type application/json and the
// Standard Webhooks headers (webhook-id, webhook-timestamp in Unix
// seconds, webhook-signature over every secret), and returns what came of
// it; it never follows a redirect. The URL is checked again (scheme,
// userinfo) and so is every address dialled, so an endpoint registered
// when the Guard allowed more is still refused. Send returns when the
// response is read or ctx is done.
func (s *Sender) Send(ctx context.Context, r Request) Result {
	s.init()
	start := time.Now()
	res := s.send(ctx, r)
	res.Duration = time.Since(start)
	return res
}

func (s *Sender) send(ctx context.Context, r Request) Result {
	if _, err := s.guard.checkSyntax(r.URL); err != nil {
		return Result{Err: err}
	}
	sig, err := Sign(r.Secrets, r.ID, r.Timestamp, r.Body)
	if err != nil {
		return Result{Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(r.Body))
	if err != nil {
		return Result{Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderID, r.ID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(r.Timestamp.Unix(), 10))
	req.Header.Set(HeaderSignature, sig)
	ua := s.UserAgent
	if ua == "" {
		ua = DefaultUserAgent
	}
	req.Header.Set("User-Agent", ua)

	resp, err := s.client.Do(req)
	if err != nil {
		return Result{Err: err}
	}
	defer resp.Body.Close()
	res := Result{
		Status:     resp.StatusCode,
		RetryAfter: parseRetryAfter(resp.Header, time.Now()),
	}
	// A body that fails half-way, or outlasts the timeout, still leaves
	// the status: the receiver answered.
	res.Body, _ = io.ReadAll(io.LimitReader(resp.Body, resultBodyBytes))
	// A body read to its end lets Close keep the connection for the next
	// attempt; one longer than the bound is cut off, and Close drops the
	// connection, so a receiver streaming without end costs nothing more.
	io.CopyN(io.Discard, resp.Body, drainBytes)
	return res
}

// maxRetryAfter caps a receiver's Retry-After.
const maxRetryAfter = 24 * time.Hour

// parseRetryAfter reads Retry-After as delay-seconds or an HTTP date; a
// date is measured from the response's Date header when it has one (the
// receiver's clock against the receiver's clock), else from now. The
// result is within [0, 24h]; 0 when absent or malformed.
func parseRetryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if strings.Trim(v, "0123456789") == "" {
		secs, err := strconv.ParseInt(v, 10, 64)
		if err != nil || secs > int64(maxRetryAfter/time.Second) {
			// Only an overflowing number fails to parse here.
			return maxRetryAfter
		}
		return time.Duration(secs) * time.Second
	}
	at, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	if date, err := http.ParseTime(h.Get("Date")); err == nil {
		now = date
	}
	return min(max(at.Sub(now), 0), maxRetryAfter)
}
