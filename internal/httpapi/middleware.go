package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairn-cdp/cairn/internal/auth"
	"github.com/cairn-cdp/cairn/internal/ids"
	"github.com/cairn-cdp/cairn/internal/placement"
	"github.com/cairn-cdp/cairn/internal/tracing"
	"github.com/cairn-cdp/cairn/internal/usage"
)

type ctxKey int

const (
	ctxRequestID ctxKey = iota
	ctxPrincipal
	ctxRoute
	ctxSource
	ctxBodyLen
)

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(ctxRequestID).(string)
	return id
}

func principalFrom(ctx context.Context) (auth.Principal, bool) {
	p, ok := ctx.Value(ctxPrincipal).(auth.Principal)
	return p, ok
}

// routeInfo is filled in by the OpenAPI middleware once it has matched the
// request, so the outer logging and metrics middleware can label by route
// template and tenant rather than by raw path.
type routeInfo struct {
	template string
	tenantID string
	// tenantKnown says the tenant exists (the gate read it): only a known
	// tenant's requests are metered, not those naming any tenant ID.
	tenantKnown bool
	// idempotent is true for operations that take an Idempotency-Key.
	idempotent bool
	// tracking is true for the routes that tracking libraries call.
	tracking bool
	// secrets are the response fields never remembered (x-cairn-secrets).
	secrets []string
	// problem is the type of the problem the request was answered with,
	// for its log line.
	problem string
}

func newRequestID() string {
	return ids.New("req_")
}

// statusRecorder remembers the status code a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += n
	return n, err
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// metrics are the HTTP metrics this package exports.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_http_requests_total",
			Help: "HTTP requests by route template, method and status code.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cairn_http_request_duration_seconds",
			Help:    "HTTP request latency by route template and method.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "method"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// observe is the outermost middleware: it assigns the request ID, recovers
// panics as a 500 problem, and logs and measures every request; a request
// of a tenant's route or write key counts as the tenant's API request.
func observe(log *slog.Logger, m *metrics, meter *usage.Meter, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := newRequestID()
		info := &routeInfo{template: "unmatched"}
		// A span per request, continuing the caller's trace (traceparent);
		// named after its route once the gate has matched it.
		ctx := tracing.Propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := tracing.Tracer().Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("url.path", r.URL.Path),
				attribute.String("cairn.request_id", id)))
		defer span.End()
		ctx = context.WithValue(ctx, ctxRequestID, id)
		ctx = context.WithValue(ctx, ctxRoute, info)
		// Where the tenant's data lives is read once per request, however
		// often its profile table and raw zone are called.
		ctx = placement.Scope(ctx)
		r = r.WithContext(ctx)
		w.Header().Set("X-Request-Id", id)
		rec := &statusRecorder{ResponseWriter: w}

		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.ErrorContext(ctx, "panic serving request", "request_id", id, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				if rec.status == 0 {
					writeProblem(rec, r, errInternal)
				}
			}
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			span.SetName(r.Method + " " + info.template)
			span.SetAttributes(attribute.String("http.route", info.template), attribute.Int("http.response.status_code", status))
			if info.tenantID != "" {
				span.SetAttributes(attribute.String("cairn.tenant_id", info.tenantID))
			}
			if status >= 500 {
				span.SetStatus(codes.Error, http.StatusText(status))
			}
			elapsed := time.Since(start)
			m.requests.WithLabelValues(info.template, r.Method, strconv.Itoa(status)).Inc()
			m.duration.WithLabelValues(info.template, r.Method).Observe(elapsed.Seconds())
			attrs := []any{
				"request_id", id, "method", r.Method, "route", info.template, "path", r.URL.Path,
				"status", status, "bytes", rec.bytes, "duration_ms", float64(elapsed.Microseconds()) / 1000,
			}
			if info.tenantID != "" {
				attrs = append(attrs, "tenant_id", info.tenantID)
			}
			if info.tenantKnown {
				meter.Add(info.tenantID, usage.APIRequests, "", 1)
			}
			if info.problem != "" {
				attrs = append(attrs, "problem", info.problem)
			}
			level := slog.LevelInfo
			if status >= 500 {
				level = slog.LevelError
			}
			log.Log(ctx, level, "request", attrs...)
		}()
		next.ServeHTTP(rec, r)
	})
}
