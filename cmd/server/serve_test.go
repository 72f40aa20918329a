package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the server's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestShutdownFinishesInFlightRequests begins a request, shuts the server
// down while its body is still arriving, and expects the request to be
// answered and acknowledged state to be kept.
func TestShutdownFinishesInFlightRequests(t *testing.T) {
	dir := t.TempDir()
	admin, err := runToken(t, "--admin", "--data-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	active := make(chan struct{}, 1)
	url, done := startServerHooks(t, ctx, map[string]string{"CAIRN_DATA_DIR": dir}, hooks{
		connState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateActive {
				select {
				case active <- struct{}{}:
				default:
				}
			}
		},
	})

	body, w := io.Pipe()
	req, _ := http.NewRequest("POST", url+"/v1/tenants", body)
	req.Header.Set("Authorization", "Bearer "+admin)
	req.Header.Set("Content-Type", "application/json")
	type result struct {
		status int
		err    error
	}
	res := make(chan result, 1)
	go func() {
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			res <- result{err: err}
			return
		}
		r.Body.Close()
		res <- result{status: r.StatusCode}
	}()
	if _, err := io.WriteString(w, `{"name":"Late","slug":"late",`); err != nil {
		t.Fatal(err)
	}
	<-active // the server is reading the request
	stop()   // SIGTERM: stop accepting, finish what is in flight
	if _, err := io.WriteString(w, `"tier":"pooled","home_region":"eu-west-1"}`); err != nil {
		t.Fatal(err)
	}
	w.Close()
	r := <-res
	if r.err != nil || r.status != http.StatusAccepted {
		t.Fatalf("in-flight request: %d, %v", r.status, r.err)
	}
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}

	// Restarted, the acknowledged tenant is there.
	ctx2, stop2 := context.WithCancel(context.Background())
	defer stop2()
	url, _ = startServer(t, ctx2, map[string]string{"CAIRN_DATA_DIR": dir})
	status, list := call(t, "GET", url+"/v1/tenants", admin, "")
	if status != 200 || len(list["items"].([]any)) != 1 {
		t.Fatalf("after restart: %d %v", status, list)
	}
}

// TestMetricsAndLogs checks /metrics and that every request is logged as
// JSON with its request ID, and the tenant ID on tenant routes.
func TestMetricsAndLogs(t *testing.T) {
	dir := t.TempDir()
	admin, err := runToken(t, "--admin", "--data-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := parseConfig("server", cmdServe, []string{"--addr", "127.0.0.1:0", "--data-dir", dir}, env(nil), io.Discard, io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	ready := make(chan string, 1)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, io.Discard, &logs, hooks{ready: ready}) }()
	url := "http://" + <-ready
	defer func() { stop(); <-done }()

	_, tenant := call(t, "POST", url+"/v1/tenants", admin, `{"name":"Metered","slug":"metered","tier":"pooled","home_region":"eu-west-1"}`)
	id := tenant["id"].(string)
	call(t, "GET", url+"/v1/tenants/"+id, admin, "")
	call(t, "GET", url+"/v1/tenants/"+id+"-nope", admin, "")

	if n := metric(t, url, "cairn_http_requests_total", `route="/v1/tenants/{tenant_id}"`, `method="GET"`, `status="200"`); n != 1 {
		t.Fatalf("requests metric for GET /v1/tenants/{tenant_id} 200 = %v", n)
	}
	if n := metric(t, url, "cairn_http_request_duration_seconds_count", `route="/v1/tenants"`, `method="POST"`); n != 1 {
		t.Fatalf("latency histogram count = %v", n)
	}
	if n := metric(t, url, "cairn_jobs", `state="available"`); n < 0 {
		t.Fatalf("queue depth = %v", n)
	}
	if !strings.Contains(logs.String(), `"msg":"request"`) {
		t.Fatalf("no request logs:\n%s", logs.String())
	}
	found, problem := false, false
	for _, line := range strings.Split(logs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil || rec["msg"] != "request" {
			continue
		}
		if status, _ := rec["status"].(float64); status >= 400 && status < 500 {
			// A refusal's log line says which problem it was.
			if p, _ := rec["problem"].(string); !strings.HasPrefix(p, "urn:cairn:problem:") {
				t.Fatalf("a %v request log without its problem type: %s", status, line)
			}
			problem = true
		}
		if rec["request_id"] == nil || rec["route"] == nil || rec["status"] == nil {
			t.Fatalf("request log without IDs: %s", line)
		}
		if rec["route"] == "/v1/tenants/{tenant_id}" && rec["tenant_id"] == id {
			found = true
		}
		if strings.Contains(line, "Bearer") || strings.Contains(line, admin) {
			t.Fatalf("a token reached the logs: %s", line)
		}
	}
	if !found {
		t.Fatalf("no log line names tenant %s:\n%s", id, logs.String())
	}
	if !problem {
		t.Fatalf("no 4xx request log (GET of an unknown tenant):\n%s", logs.String())
	}

	// Each status transition is logged once, at INFO, with the tenant.
	awaitTenants(t, url, admin, []string{id}, "active", 30*time.Second)
	moves, stacks := 0, 0
	for _, line := range strings.Split(logs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil || rec["level"] != "INFO" {
			continue
		}
		switch rec["msg"] {
		case "tenant status changed":
			if rec["tenant_id"] == id && rec["from"] == "provisioning" && rec["to"] == "active" && rec["home_region"] == "eu-west-1" {
				moves++
			}
		case "stack status changed":
			if rec["region"] == "eu-west-1" && rec["to"] == "ready" {
				stacks++
			}
		case "producer: Producer job counts":
			t.Fatalf("River's routine line at INFO: %s", line)
		}
	}
	if moves != 1 || stacks != 1 {
		t.Fatalf("provisioning → active logged %d times, a stack becoming ready %d times; want once each:\n%s", moves, stacks, logs.String())
	}
}
