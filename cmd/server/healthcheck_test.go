package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestHealthcheck runs "server healthcheck" against a real server on the
// embedded default (by --url, and by CAIRN_ADDR alone), against a server
// that is not ready, and against nothing.
func TestHealthcheck(t *testing.T) {
	url, _ := startServer(t, t.Context(), map[string]string{"CAIRN_DATA_DIR": t.TempDir()})
	check := func(vars map[string]string, args ...string) error {
		return run(t.Context(), append([]string{"healthcheck"}, args...), env(vars), nil, io.Discard, io.Discard)
	}
	if err := check(nil, "--url", url+"/readyz"); err != nil {
		t.Errorf("healthcheck of a ready server: %v", err)
	}
	if err := check(map[string]string{"CAIRN_ADDR": strings.TrimPrefix(url, "http://")}); err != nil {
		t.Errorf("healthcheck at CAIRN_ADDR: %v", err)
	}

	unready := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "database unreachable", http.StatusServiceUnavailable)
	}))
	defer unready.Close()
	if err := check(nil, "--url", unready.URL+"/readyz"); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("healthcheck of an unready server: %v, want an error naming 503", err)
	}
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	if err := check(nil, "--url", gone.URL+"/readyz", "--timeout", "10s"); err == nil {
		t.Error("healthcheck with no server: no error")
	}
	if err := check(nil, "extra"); err == nil {
		t.Error("healthcheck with an argument: no error")
	}

	var help strings.Builder
	if err := run(t.Context(), []string{"help", "healthcheck"}, env(nil), nil, &help, io.Discard); err != nil || !strings.Contains(help.String(), "-url") || !strings.Contains(help.String(), "-timeout") {
		t.Errorf("server help healthcheck: %v\n%s", err, help.String())
	}
}

func TestReadyzURL(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:8080":    "http://127.0.0.1:8080/readyz",
		"0.0.0.0:8080":      "http://127.0.0.1:8080/readyz",
		":9000":             "http://127.0.0.1:9000/readyz",
		"[::]:8080":         "http://127.0.0.1:8080/readyz",
		"[::1]:8080":        "http://[::1]:8080/readyz",
		"cairn.internal:80": "http://cairn.internal:80/readyz",
	} {
		if got := readyzURL(addr); got != want {
			t.Errorf("readyzURL(%q) = %q, want %q", addr, got, want)
		}
	}
}
