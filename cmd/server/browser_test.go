package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestBrowserAndCompressedIngestion plays analytics.js and rudder-sdk-node
// against the real server on the embedded default: the library loads its
// settings from the server as its cdnURL, sends a track call to the host
// those settings name, with the write key in a text/plain body, from an
// origin the source allows; the Node library sends a gzip batch under a
// form media type. Both land on one profile and in /metrics.
func TestBrowserAndCompressedIngestion(t *testing.T) {
	dir := t.TempDir()
	admin, err := runToken(t, "--admin", "--data-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	url, _ := startServer(t, context.Background(), map[string]string{"CAIRN_DATA_DIR": dir, "CAIRN_STACK_POLL_INTERVAL": "50ms"})
	_, tenant := call(t, "POST", url+"/v1/tenants", admin, `{"name":"Shop","slug":"shop","tier":"pooled","home_region":"eu-west-1"}`)
	id := jstr(tenant, "id")
	awaitTenants(t, url, admin, []string{id}, "active", time.Minute)
	status, src := call(t, "POST", url+"/v1/tenants/"+id+"/sources", admin, `{"name":"web","allowed_origins":["https://shop.example"]}`)
	if status != http.StatusCreated {
		t.Fatalf("create source: %d %v", status, src)
	}
	key := jstr(src, "write_key")

	send := func(method, target string, body []byte, headers ...string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, target, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		return res, raw
	}

	// analytics.js: settings from <cdnURL>/v1/projects/<writeKey>/settings.
	res, raw := send("GET", url+"/v1/projects/"+key+"/settings", nil, "Origin", "https://shop.example")
	if res.StatusCode != http.StatusOK || res.Header.Get("Access-Control-Allow-Origin") != "https://shop.example" {
		t.Fatalf("settings: %d %v %s", res.StatusCode, res.Header, raw)
	}
	var settings struct {
		Integrations map[string]struct {
			APIKey   string `json:"apiKey"`
			APIHost  string `json:"apiHost"`
			Protocol string `json:"protocol"`
		} `json:"integrations"`
	}
	if err := json.Unmarshal(raw, &settings); err != nil {
		t.Fatal(err)
	}
	seg := settings.Integrations["Segment.io"]
	// The library posts to `${protocol}://${apiHost}/${type[0]}`.
	remote := seg.Protocol + "://" + seg.APIHost
	if remote != url+"/v1" || seg.APIKey != key {
		t.Fatalf("settings point the library at %s with key %q; want %s/v1", remote, seg.APIKey, url)
	}
	track := `{"type":"track","event":"Viewed","anonymousId":"anon-7","userId":"user-7","messageId":"ajs-1","writeKey":"` + key + `","timestamp":"2026-11-26T10:00:00Z"}`
	res, raw = send("POST", remote+"/t", []byte(track), "Content-Type", "text/plain", "Origin", "https://shop.example")
	if res.StatusCode != http.StatusOK || !strings.Contains(string(raw), `"accepted":1`) {
		t.Fatalf("analytics.js track: %d %s", res.StatusCode, raw)
	}
	res, raw = send("POST", remote+"/t", []byte(strings.Replace(track, "ajs-1", "ajs-2", 1)), "Content-Type", "text/plain", "Origin", "https://elsewhere.example")
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("a foreign origin: %d %s", res.StatusCode, raw)
	}

	// rudder-sdk-node: a gzip batch sent as application/x-www-form-urlencoded.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte(`{"batch":[{"type":"identify","userId":"user-7","messageId":"rn-1","traits":{"email":"seven@example.com"}}],"sentAt":"2026-11-26T10:00:01Z"}`))
	_ = zw.Close()
	res, raw = send("POST", url+"/v1/batch", gz.Bytes(), "Content-Type", "application/x-www-form-urlencoded", "Content-Encoding", "gzip",
		"Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(key+":")))
	if res.StatusCode != http.StatusOK || !strings.Contains(string(raw), `"accepted":1`) {
		t.Fatalf("rudder-sdk-node batch: %d %s", res.StatusCode, raw)
	}

	status, p := call(t, "GET", url+"/v1/tenants/"+id+"/profiles?identifier=email:seven@example.com", admin, "")
	if status != http.StatusOK {
		t.Fatalf("profile: %d %v", status, p)
	}
	if ids, _ := p["identifiers"].([]any); len(ids) != 3 {
		t.Fatalf("the browser's and the server's events made more than one profile: %v", p)
	}
	_, raw = send("GET", url+"/metrics", nil)
	if !strings.Contains(string(raw), `cairn_ingest_events_total{outcome="accepted",reason="",source_kind="write_key"} 2`) {
		t.Errorf("/metrics does not count the two accepted events:\n%s", grepLines(string(raw), "cairn_ingest_events_total"))
	}
}

func grepLines(text, prefix string) string {
	var out []string
	for line := range strings.SplitSeq(text, "\n") {
		if strings.HasPrefix(line, prefix) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
