// Package tracing is Cairn's OpenTelemetry tracing: the tracer provider,
// off unless the standard OTEL_* variables turn it on, and what carries a
// trace across Cairn's seams: the request's span into the jobs it enqueues
// (through the job's metadata), and trace and span IDs into every log line
// written with a context that has a span.
//
// Spans go to the global tracer provider (otel.GetTracerProvider), so the
// packages that make them (the HTTP middleware, the job middleware, the
// AWS SDK's instrumentation in package awsclient) need no wiring; Setup
// installs the exporting provider when tracing is on, and a test installs
// an in-memory one.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Name is the instrumentation scope of Cairn's own spans.
const Name = "github.com/cairn-cdp/cairn"

// Tracer is Cairn's tracer, from the global provider at the time of use.
func Tracer() trace.Tracer { return otel.GetTracerProvider().Tracer(Name) }

// Propagator carries a span context across a process boundary (a job's
// metadata, a request's traceparent header): W3C trace context.
var Propagator propagation.TextMapPropagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// Enabled reports whether the environment turns tracing on, as the
// OpenTelemetry specification's variables say: OTEL_SDK_DISABLED=true
// turns it off; OTEL_TRACES_EXPORTER=otlp turns it on, =none off; unset,
// an OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) turns it on. Any other exporter, or
// a protocol other than http/protobuf, is an error: Cairn exports OTLP
// over HTTP only.
func Enabled(getenv func(string) string) (bool, error) {
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") {
		return false, nil
	}
	on := getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
	switch e := getenv("OTEL_TRACES_EXPORTER"); e {
	case "":
	case "none":
		return false, nil
	case "otlp":
		on = true
	default:
		return false, fmt.Errorf("OTEL_TRACES_EXPORTER=%s: Cairn exports traces with otlp (or none)", e)
	}
	if !on {
		return false, nil
	}
	for _, v := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if p := getenv(v); p != "" {
			if p != "http/protobuf" {
				return false, fmt.Errorf("%s=%s: Cairn exports OTLP over HTTP (http/protobuf)", v, p)
			}
			break
		}
	}
	return true, nil
}

// Setup installs the global propagator, and, when Enabled, a tracer
// provider that batches spans to the OTLP/HTTP exporter the OTEL_*
// variables configure (endpoint, headers, timeout, sampler, service name:
// "cairn" unless OTEL_SERVICE_NAME says otherwise). It returns the
// function that flushes and stops it; with tracing off, a no-op.
func Setup(ctx context.Context, getenv func(string) string) (shutdown func(context.Context) error, err error) {
	otel.SetTextMapPropagator(Propagator)
	on, err := Enabled(getenv)
	if err != nil || !on {
		return func(context.Context) error { return nil }, err
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	attrs := []resource.Option{resource.WithFromEnv(), resource.WithTelemetrySDK(), resource.WithHost()}
	if getenv("OTEL_SERVICE_NAME") == "" {
		attrs = append(attrs, resource.WithAttributes(semconv.ServiceName("cairn")))
	}
	res, err := resource.New(ctx, attrs...)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	return tp.Shutdown, nil
}
