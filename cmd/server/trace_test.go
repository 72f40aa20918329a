package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/cairn-cdp/cairn/internal/awsclient/awstest"
	"github.com/cairn-cdp/cairn/internal/testdb"
)

// TestTraceTenantCreation: with a tracer provider installed (in memory
// here, OTLP when the OTEL_* variables say so), one tenant creation makes
// one trace, from the request's span through the provisioning jobs it
// enqueued (their spans children of the request's, through the jobs'
// metadata) to the CloudFormation calls on the emulator, with the tenant
// and the route as attributes.
func TestTraceTenantCreation(t *testing.T) {
	moto := awstest.Endpoint(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	t.Cleanup(func() { otel.SetTracerProvider(prev); _ = tp.Shutdown(t.Context()) })

	keyFile := t.TempDir() + "/signing-key.pem"
	admin := adminToken(t, keyFile)
	url := startAWSServer(t, "trace", awsVars(t, moto, testdb.Postgres(t), keyFile))
	req, _ := http.NewRequest("POST", url+"/v1/tenants", strings.NewReader(awsOnboardBody("dedicated", "eu-south-1"))) // a Region of its own: see awsenv_test.go
	req.Header.Set("Authorization", "Bearer "+admin)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	requestID := res.Header.Get("X-Request-Id")
	if res.StatusCode != http.StatusAccepted || requestID == "" {
		t.Fatalf("onboard: %d, request ID %q", res.StatusCode, requestID)
	}
	loc := res.Header.Get("Location")
	tenant := loc[strings.LastIndex(loc, "/")+1:]
	awaitTenants(t, url, admin, []string{tenant}, "active", 90*time.Second)

	attr := func(s sdktrace.ReadOnlySpan, key string) string {
		for _, kv := range s.Attributes() {
			if string(kv.Key) == key {
				return kv.Value.Emit()
			}
		}
		return ""
	}
	// The spans end as their work does: wait for the CreateStack call's.
	var request sdktrace.ReadOnlySpan
	var jobs, creates []sdktrace.ReadOnlySpan
	deadline := time.Now().Add(30 * time.Second)
	for {
		request, jobs, creates = nil, nil, nil
		spans := rec.Ended()
		for _, s := range spans {
			if attr(s, "cairn.request_id") == requestID {
				request = s
			}
		}
		if request != nil {
			trace := request.SpanContext().TraceID()
			for _, s := range spans {
				if s.SpanContext().TraceID() != trace {
					continue
				}
				switch {
				case strings.HasPrefix(s.Name(), "job "):
					jobs = append(jobs, s)
				case attr(s, "rpc.method") == "CloudFormation/CreateStack":
					creates = append(creates, s)
				}
			}
		}
		if len(creates) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if request == nil {
		t.Fatalf("no span of the request %s among %d spans", requestID, len(rec.Ended()))
	}
	if got := request.Name(); got != "POST /v1/tenants" {
		t.Errorf("request span %q, want POST /v1/tenants", got)
	}
	if attr(request, "http.route") != "/v1/tenants" || attr(request, "http.response.status_code") != "202" {
		t.Errorf("request span attributes %v", request.Attributes())
	}
	if len(jobs) == 0 || len(creates) == 0 {
		t.Fatalf("the request's trace holds %d job spans and %d CreateStack calls; want both", len(jobs), len(creates))
	}
	// Every job span descends from the request: its parent is the request
	// or another job span of the trace.
	ids := map[string]bool{request.SpanContext().SpanID().String(): true}
	for _, j := range jobs {
		ids[j.SpanContext().SpanID().String()] = true
	}
	tenantJob := false
	for _, j := range jobs {
		if !ids[j.Parent().SpanID().String()] {
			t.Errorf("job span %q has parent %s, outside the request's tree", j.Name(), j.Parent().SpanID())
		}
		tenantJob = tenantJob || attr(j, "cairn.tenant_id") == tenant
	}
	if !tenantJob {
		t.Errorf("no job span names the tenant %s", tenant)
	}
	if c := creates[0]; !ids[c.Parent().SpanID().String()] || attr(c, "rpc.system.name") != "aws-api" || attr(c, "aws.region") != "eu-south-1" {
		t.Errorf("CreateStack span %q (parent %s, %v) is not inside a job of the request's trace", c.Name(), c.Parent().SpanID(), c.Attributes())
	}
}
