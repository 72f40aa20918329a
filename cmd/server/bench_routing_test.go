package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// BenchmarkRequestOverhead measures what the API does around a handler:
// routing, the token check, authorization and validation. Each case is
// one request at a time over a kept-alive connection to a server in this
// process, so allocs/op counts the server's allocations too: /healthz
// (routing only), an admin's GET of a tenant (plus the token and
// authorization), a tenant creation that validation refuses (plus the
// body's validation, no handler) and an unknown path (a 404).
//
//	go test -run '^$' -bench RequestOverhead -count 6 ./cmd/server
func BenchmarkRequestOverhead(b *testing.B) {
	url, admin, tenant, _, stop := benchTenant(b)
	defer stop()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	for _, c := range []struct {
		name, method, path, token, body string
		want                            int
	}{
		{"healthz", "GET", "/healthz", "", "", 200},
		{"get-tenant", "GET", "/v1/tenants/" + tenant, admin, "", 200},
		{"invalid-create", "POST", "/v1/tenants", admin, `{"name":"x","slug":"Not A Slug","tier":"pooled","home_region":"eu-west-1"}`, 400},
		{"not-found", "GET", "/v1/nowhere", admin, "", 404},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req, _ := http.NewRequest(c.method, url+c.path, strings.NewReader(c.body))
				if c.token != "" {
					req.Header.Set("Authorization", "Bearer "+c.token)
				}
				if c.body != "" {
					req.Header.Set("Content-Type", "application/json")
				}
				res, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != c.want {
					b.Fatalf("%s %s: status %d, want %d", c.method, c.path, res.StatusCode, c.want)
				}
			}
		})
	}
}
