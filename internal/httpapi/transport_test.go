package httpapi_test

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// deflated compresses b as HTTP deflate: a zlib stream, or, with raw, the
// bare deflate stream some clients send under that name.
func deflated(t *testing.T, b []byte, raw bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	var zw io.WriteCloser
	if raw {
		zw, _ = flate.NewWriter(&buf, flate.DefaultCompression)
	} else {
		zw = zlib.NewWriter(&buf)
	}
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// rawLines returns every line of the tenant's raw zone.
func (e *env) rawLines(tenantID string) []string {
	e.t.Helper()
	ctx := context.Background()
	keys, err := e.raw.List(ctx, tenantID)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, k := range keys {
		lines, err := e.raw.Read(ctx, tenantID, k)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, l := range lines {
			out = append(out, string(l))
		}
	}
	return out
}

// accepted fails unless r is a 200 that accepted n events and refused none.
func accepted(t *testing.T, r resp, n int) {
	t.Helper()
	r.want(t, 200)
	if r.body["accepted"] != float64(n) || r.body["success"] != true {
		t.Fatalf("accepted %v, want %d: %s", r.body["accepted"], n, r.raw)
	}
}

func TestIngestCompressedBodies(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		id := e.activeTenant("zip-co")
		key := e.source(id, "server")
		// Spacing as a client may send it: each event must reach the raw
		// zone byte for byte.
		ev := func(msg string) string {
			return `{"type": "track",  "messageId":"` + msg + `", "userId":"u-zip", "event":"Zipped", "properties": {"n": 1.50}}`
		}
		batch := func(msgs ...string) []byte {
			var evs []string
			for _, m := range msgs {
				evs = append(evs, ev(m))
			}
			return []byte(`{"batch": [` + strings.Join(evs, ", ") + `], "sentAt": "2026-11-26T10:00:00Z"}`)
		}
		auth := basic(key)
		accepted(t, e.send("POST", "/v1/batch", gzipped(t, batch("gz-1", "gz-2")), "Authorization", auth, "Content-Type", "application/json", "Content-Encoding", "gzip"), 2)
		accepted(t, e.send("POST", "/v1/batch", deflated(t, batch("zl-1"), false), "Authorization", auth, "Content-Type", "application/json", "Content-Encoding", "deflate"), 1)
		accepted(t, e.send("POST", "/v1/b", deflated(t, batch("df-1"), true), "Authorization", auth, "Content-Type", "text/plain", "Content-Encoding", "deflate"), 1)
		accepted(t, e.send("POST", "/v1/t", gzipped(t, []byte(ev("gz-t"))), "Authorization", auth, "Content-Type", "text/plain", "Content-Encoding", "gzip"), 1)
		// rudder-sdk-node: gzip under a form media type.
		accepted(t, e.send("POST", "/v1/batch", gzipped(t, batch("rn-1")), "Authorization", auth, "Content-Type", "application/x-www-form-urlencoded", "Content-Encoding", "gzip"), 1)
		// The tenant-token route takes the same bodies.
		tok := e.tenantToken(id, "events:write")
		accepted(t, e.send("POST", "/v1/tenants/"+id+"/events", gzipped(t, batch("tk-1")), "Authorization", "Bearer "+tok, "Content-Encoding", "gzip"), 1)

		lines := e.rawLines(id)
		for _, m := range []string{"gz-1", "gz-2", "zl-1", "df-1", "gz-t", "rn-1", "tk-1"} {
			if !slices.Contains(lines, ev(m)) {
				t.Errorf("raw zone lacks %s as sent; it holds %q", m, lines)
			}
		}
	})
}

func TestIngestRefusesBadStreams(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		id := e.activeTenant("bomb-co")
		key := e.source(id, "server")
		auth := basic(key)
		tok := e.tenantToken(id, "events:write")

		// 10 MB of zeros compress to about 10 KB; it is refused as too
		// large, from what it inflates to.
		bomb := gzipped(t, append([]byte(`{"batch":[],"x":"`), make([]byte, 10<<20)...))
		if len(bomb) > 64<<10 {
			t.Fatalf("the bomb is %d bytes compressed", len(bomb))
		}
		for _, r := range []resp{
			e.send("POST", "/v1/batch", bomb, "Authorization", auth, "Content-Type", "application/json", "Content-Encoding", "gzip"),
			e.send("POST", "/v1/t", bomb, "Authorization", auth, "Content-Type", "text/plain", "Content-Encoding", "gzip"),
			e.send("POST", "/v1/tenants/"+id+"/events", bomb, "Authorization", "Bearer "+tok, "Content-Encoding", "gzip"),
		} {
			r.want(t, 400)
			if !strings.Contains(r.str("detail"), "at most 512000 bytes") {
				t.Errorf("bomb: %s", r.raw)
			}
		}
		good := []byte(`{"batch":[{"type":"track","messageId":"never","userId":"u-bad","event":"E"}]}`)
		// A corrupt stream is a bad request.
		corrupt := gzipped(t, good)
		corrupt[len(corrupt)-6] ^= 0xff // the CRC
		e.send("POST", "/v1/batch", corrupt, "Authorization", auth, "Content-Encoding", "gzip").want(t, 400)
		e.send("POST", "/v1/batch", good, "Authorization", auth, "Content-Encoding", "gzip").want(t, 400)
		e.send("POST", "/v1/batch", []byte{0x78}, "Authorization", auth, "Content-Encoding", "deflate").want(t, 400)
		// Another encoding is unsupported.
		e.send("POST", "/v1/batch", good, "Authorization", auth, "Content-Encoding", "br").want(t, 415)
		e.send("POST", "/v1/tenants/"+id+"/events", good, "Authorization", "Bearer "+tok, "Content-Encoding", "compress").want(t, 415)
		// Routes other than ingestion take no encoding.
		e.send("POST", "/v1/tenants/"+id+"/sources", gzipped(t, []byte(`{"name":"zipped"}`)), "Authorization", "Bearer "+e.admin,
			"Content-Type", "application/json", "Content-Encoding", "gzip").want(t, 415)
		// Bodies that are not a JSON object, or a batch without an array.
		for _, b := range []string{`[1]`, `"x"`, `{"batch":{}}`, `{"batch":[{"type":"track"}]} trailing`, `{"sentAt":"x"}`, `{"batch":[1,}`} {
			e.send("POST", "/v1/batch", []byte(b), "Authorization", auth, "Content-Type", "application/json").want(t, 400)
		}
		e.send("POST", "/v1/track", []byte(`[{"type":"track"}]`), "Authorization", auth, "Content-Type", "application/json").want(t, 400)
		if lines := e.rawLines(id); len(lines) != 0 {
			t.Fatalf("refused requests stored %q", lines)
		}
		e.do("GET", "/v1/tenants/"+id+"/profiles?identifier=user_id:u-bad", e.admin, nil).want(t, 404)
	})
}

func TestIngestMediaTypes(t *testing.T) {
	e := startEnv(t, "", t.TempDir())
	id := e.activeTenant("media-co")
	key := e.source(id, "server")
	for i, ct := range []string{"application/json", "application/json; charset=utf-8", "application/vnd.segment+json", "text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", ""} {
		body := fmt.Sprintf(`{"batch":[{"type":"track","messageId":"ct-%d","userId":"u","event":"E"}]}`, i)
		accepted(t, e.send("POST", "/v1/batch", []byte(body), "Authorization", basic(key), "Content-Type", ct), 1)
	}
	for _, ct := range []string{"application/xml", "multipart/form-data; boundary=x", "text/html", "not a media type"} {
		e.send("POST", "/v1/batch", []byte(`{"batch":[]}`), "Authorization", basic(key), "Content-Type", ct).want(t, 415)
	}
	// Other routes keep requiring JSON.
	e.send("POST", "/v1/tenants/"+id+"/sources", []byte(`{"name":"plain"}`), "Authorization", "Bearer "+e.admin, "Content-Type", "text/plain").want(t, 415)
	e.send("POST", "/v1/tenants/"+id+"/sources", []byte(`{"name":"none"}`), "Authorization", "Bearer "+e.admin).want(t, 415)
}

func TestWriteKeyInBody(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		id := e.activeTenant("wk-co")
		key := e.source(id, "browser")
		other := e.source(id, "other")
		// analytics.js: text/plain, no Authorization, the key in the body.
		for path, typ := range map[string]string{"/v1/t": "track", "/v1/i": "identify", "/v1/p": "page", "/v1/g": "group", "/v1/a": "alias", "/v1/s": "screen"} {
			ev := map[string]any{"type": typ, "messageId": "body-" + typ, "userId": "u-body", "anonymousId": "a-body", "writeKey": key,
				"event": "Clicked", "groupId": "g1", "previousId": "a-body", "name": "Home"}
			b, _ := json.Marshal(ev)
			accepted(t, e.send("POST", path, b, "Content-Type", "text/plain"), 1)
		}
		batch := func(msg, wk string) []byte {
			b, _ := json.Marshal(map[string]any{"batch": []any{segEvent("track", msg, map[string]any{"userId": "u-body", "event": "E"})}, "writeKey": wk})
			return b
		}
		accepted(t, e.send("POST", "/v1/b", batch("b-1", key), "Content-Type", "text/plain"), 1)
		// Basic and body may both carry the key, if it is the same one.
		accepted(t, e.send("POST", "/v1/batch", batch("b-2", key), "Authorization", basic(key), "Content-Type", "application/json"), 1)
		// Two different keys are refused, whichever is valid.
		for _, r := range []resp{
			e.send("POST", "/v1/batch", batch("b-3", other), "Authorization", basic(key), "Content-Type", "application/json"),
			e.send("POST", "/v1/b", batch("b-4", "wk_unknown"), "Authorization", basic(key), "Content-Type", "text/plain"),
		} {
			r.want(t, 401)
			if !strings.Contains(r.str("detail"), "two different write keys") {
				t.Errorf("two keys: %s", r.raw)
			}
			// Segment's and RudderStack's libraries read code and
			// message: without them they retry a refusal for minutes.
			if r.str("code") != "unauthorized" || r.str("message") != r.str("detail") {
				t.Errorf("tracking problem without code and message: %s", r.raw)
			}
		}
		// The tenant API's problems keep to RFC 9457's members.
		if r := e.send("GET", "/v1/tenants/"+id+"/sources", nil); r.str("code") != "" || r.str("message") != "" || r.str("detail") == "" {
			t.Errorf("tenant API problem: %s", r.raw)
		}
		e.send("POST", "/v1/b", batch("b-5", "wk_unknown"), "Content-Type", "text/plain").want(t, 401)
		e.send("POST", "/v1/b", batch("b-6", ""), "Content-Type", "text/plain").want(t, 401)
		if n := len(e.rawLines(id)); n != 8 {
			t.Fatalf("%d events stored, want 8", n)
		}
	})
}

func TestBrowserSettings(t *testing.T) {
	e := startEnv(t, "", t.TempDir())
	id := e.activeTenant("cdn-co")
	src := e.do("POST", "/v1/tenants/"+id+"/sources", e.admin, map[string]any{"name": "web"}).want(t, 201)
	key := src.str("write_key")
	r := e.send("GET", "/v1/projects/"+key+"/settings", nil).want(t, 200)
	if cc := r.header.Get("Cache-Control"); !strings.HasPrefix(cc, "public, max-age=") {
		t.Errorf("Cache-Control %q", cc)
	}
	seg := r.body["integrations"].(map[string]any)["Segment.io"].(map[string]any)
	host := strings.TrimPrefix(e.url, "http://")
	if seg["apiKey"] != key || seg["apiHost"] != host+"/v1" || seg["protocol"] != "http" {
		t.Errorf("Segment.io settings %v; want apiKey, apiHost %s/v1, protocol http", seg, host)
	}
	if r.body["analyticsNextEnabled"] != true || r.body["metrics"].(map[string]any)["sampleRate"] != 0.0 {
		t.Errorf("settings: %s", r.raw)
	}
	// Behind a TLS-terminating proxy the library is sent to https.
	r = e.send("GET", "/v1/projects/"+key+"/settings", nil, "X-Forwarded-Proto", "https").want(t, 200)
	if p := r.body["integrations"].(map[string]any)["Segment.io"].(map[string]any)["protocol"]; p != "https" {
		t.Errorf("protocol %v behind TLS", p)
	}
	e.send("GET", "/v1/projects/wk_unknown/settings", nil).want(t, 404)
	e.do("DELETE", "/v1/tenants/"+id+"/sources/"+src.str("id"), e.admin, nil).want(t, 200)
	e.send("GET", "/v1/projects/"+key+"/settings", nil).want(t, 404)
}

func TestCORS(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		id := e.activeTenant("cors-co")
		shop := "https://shop.example"
		src := e.do("POST", "/v1/tenants/"+id+"/sources", e.admin, map[string]any{"name": "shop", "allowed_origins": []string{shop, "http://localhost:3000"}}).want(t, 201)
		if got := src.body["allowed_origins"]; fmt.Sprint(got) != "[https://shop.example http://localhost:3000]" {
			t.Fatalf("allowed_origins at create: %s", src.raw)
		}
		key := src.str("write_key")
		anyKey := e.source(id, "anywhere")

		// Preflight: any origin may ask; the request itself is checked.
		for _, path := range []string{"/v1/batch", "/v1/t", "/v1/projects/" + key + "/settings"} {
			r := e.send("OPTIONS", path, nil, "Origin", "https://evil.example", "Access-Control-Request-Method", "POST",
				"Access-Control-Request-Headers", "content-type,authorization")
			if r.status != 204 {
				t.Fatalf("preflight %s: %d %s", path, r.status, r.raw)
			}
			h := r.header
			if h.Get("Access-Control-Allow-Origin") != "*" || h.Get("Access-Control-Max-Age") == "" || h.Get("Access-Control-Allow-Credentials") != "" {
				t.Errorf("preflight %s headers %v", path, h)
			}
			for _, want := range []string{"Content-Type", "Authorization", "Content-Encoding"} {
				if !strings.Contains(h.Get("Access-Control-Allow-Headers"), want) {
					t.Errorf("preflight %s allows headers %q, not %s", path, h.Get("Access-Control-Allow-Headers"), want)
				}
			}
		}
		// The admin and tenant API answer no CORS.
		r := e.send("OPTIONS", "/v1/tenants/"+id+"/sources", nil, "Origin", shop, "Access-Control-Request-Method", "POST").want(t, 405)
		if r.header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("the tenant API answered CORS: %v", r.header)
		}
		r = e.send("GET", "/v1/tenants/"+id+"/sources", nil, "Origin", shop, "Authorization", "Bearer "+e.admin).want(t, 200)
		if r.header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("the tenant API answered CORS: %v", r.header)
		}

		post := func(msg, k, origin string) resp {
			b, _ := json.Marshal(map[string]any{"type": "track", "messageId": msg, "userId": "u-cors", "event": "E", "writeKey": k})
			return e.send("POST", "/v1/t", b, "Content-Type", "text/plain", "Origin", origin)
		}
		corsOK := func(r resp, origin string) {
			t.Helper()
			accepted(t, r, 1)
			if r.header.Get("Access-Control-Allow-Origin") != origin || !slices.Contains(r.header.Values("Vary"), "Origin") || r.header.Get("Access-Control-Allow-Credentials") != "" {
				t.Errorf("CORS headers %v, want origin %s and Vary: Origin", r.header, origin)
			}
		}
		corsOK(post("c-1", key, shop), shop)
		corsOK(post("c-2", key, "http://localhost:3000"), "http://localhost:3000")
		corsOK(post("c-3", anyKey, "https://evil.example"), "*")
		accepted(t, post("c-4", key, ""), 1) // a server library sends no Origin
		refused := post("c-5", key, "https://evil.example").want(t, 403)
		if refused.header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("a refused origin was allowed to read: %v", refused.header)
		}
		e.send("GET", "/v1/projects/"+key+"/settings", nil, "Origin", "https://evil.example").want(t, 403)
		if s := e.send("GET", "/v1/projects/"+key+"/settings", nil, "Origin", shop).want(t, 200); s.header.Get("Access-Control-Allow-Origin") != shop {
			t.Errorf("settings CORS: %v", s.header)
		}

		// PATCH narrows, widens and validates the list.
		path := "/v1/tenants/" + id + "/sources/" + src.str("id")
		tok := e.tenantToken(id, "events:write")
		u := e.do("PATCH", path, tok, map[string]any{"allowed_origins": []string{"https://evil.example"}}).want(t, 200)
		if fmt.Sprint(u.body["allowed_origins"]) != "[https://evil.example]" {
			t.Fatalf("PATCH: %s", u.raw)
		}
		post("c-6", key, shop).want(t, 403)
		corsOK(post("c-7", key, "https://evil.example"), "https://evil.example")
		e.do("PATCH", path, tok, map[string]any{"allowed_origins": []string{}}).want(t, 200)
		corsOK(post("c-8", key, shop), "*")
		// A scheme's default port is left out, as browsers send it.
		u = e.do("PATCH", path, tok, map[string]any{"allowed_origins": []string{"https://shop.example:443", "http://[::1]:8080"}}).want(t, 200)
		if fmt.Sprint(u.body["allowed_origins"]) != "[https://shop.example http://[::1]:8080]" {
			t.Fatalf("PATCH with a default port: %s", u.raw)
		}
		corsOK(post("c-9", key, shop), shop)
		for _, bad := range []string{"https://Shop.example", "https://shop.example/", "https://shop.example:0", "https://shop.example:65536", "ftp://shop.example", "shop.example", "https://shop.example?x", "http://:80"} {
			e.do("PATCH", path, tok, map[string]any{"allowed_origins": []string{bad}}).want(t, 400)
		}
		e.do("PATCH", path, tok, map[string]any{}).want(t, 400)
		e.do("PATCH", "/v1/tenants/"+id+"/sources/src_"+strings.Repeat("a", 26), tok, map[string]any{"allowed_origins": []string{}}).want(t, 404)
		e.do("PATCH", path, e.tenantToken(id, "profiles:read"), map[string]any{"allowed_origins": []string{}}).want(t, 403)
		e.do("PATCH", path, e.admin, map[string]any{"allowed_origins": []string{}}).want(t, 200)
		got := e.do("GET", "/v1/tenants/"+id+"/sources", tok, nil).want(t, 200)
		if !strings.Contains(string(got.raw), `"allowed_origins":[]`) {
			t.Errorf("list after clearing: %s", got.raw)
		}

		// A revoked source no longer changes.
		e.do("DELETE", path, tok, nil).want(t, 200)
		e.do("PATCH", path, tok, map[string]any{"allowed_origins": []string{shop}}).want(t, 409)
		stored := e.rawLines(id)
		if len(stored) != 7 {
			t.Fatalf("%d events stored, want 7 (c-5 and c-6 refused): %q", len(stored), stored)
		}
		for _, l := range stored {
			if strings.Contains(l, `"c-5"`) || strings.Contains(l, `"c-6"`) {
				t.Errorf("a refused origin's event was stored: %s", l)
			}
		}
	})
}

// metricValue reads one sample from the Prometheus text exposition.
func metricValue(t *testing.T, text, name string, labels ...string) float64 {
	t.Helper()
	for line := range strings.SplitSeq(text, "\n") {
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	return 0
}

func TestIngestMetrics(t *testing.T) {
	e := startEnv(t, "", t.TempDir())
	id := e.activeTenant("metrics-co")
	key := e.source(id, "server")
	e.segment("/v1/batch", key, map[string]any{"batch": []any{
		segEvent("track", "m-1", map[string]any{"userId": "u", "event": "E"}),
		segEvent("track", "m-2", map[string]any{"userId": "u"}),
		segEvent("track", "m-3", map[string]any{"event": "E"}),
	}}).want(t, 200)
	e.segment("/v1/track", key, segEvent("track", "m-1", map[string]any{"userId": "u", "event": "E"})).want(t, 200)
	e.do("POST", "/v1/tenants/"+id+"/events", e.tenantToken(id, "events:write"), map[string]any{"batch": []any{
		segEvent("identify", "t-1", map[string]any{"userId": "u"}),
		segEvent("identify", "t-2", map[string]any{"userId": "v"}),
	}}).want(t, 200)

	r := e.send("GET", "/metrics", nil)
	text := string(r.raw)
	for _, c := range []struct {
		labels []string
		want   float64
	}{
		{[]string{`source_kind="write_key"`, `outcome="accepted"`}, 1},
		{[]string{`source_kind="write_key"`, `outcome="duplicate"`}, 1},
		{[]string{`source_kind="write_key"`, `outcome="rejected"`, `reason="event"`}, 1},
		{[]string{`source_kind="write_key"`, `outcome="rejected"`, `reason="malformed"`}, 0},
		{[]string{`source_kind="write_key"`, `outcome="rejected"`, `reason="userId"`}, 1},
		{[]string{`source_kind="token"`, `outcome="accepted"`}, 2},
		{[]string{`source_kind="token"`, `outcome="suppressed"`}, 0},
	} {
		if got := metricValue(t, text, "cairn_ingest_events_total", c.labels...); got != c.want {
			t.Errorf("cairn_ingest_events_total%v = %v, want %v", c.labels, got, c.want)
		}
	}
	if got := metricValue(t, text, "cairn_ingest_batch_events_count", `source_kind="write_key"`); got != 2 {
		t.Errorf("batch size observations %v, want 2", got)
	}
	if got := metricValue(t, text, "cairn_ingest_batch_events_sum", `source_kind="write_key"`); got != 4 {
		t.Errorf("batch size sum %v, want 4", got)
	}
	if got := metricValue(t, text, "cairn_ingest_duration_seconds_count", `source_kind="token"`); got != 1 {
		t.Errorf("duration observations %v, want 1", got)
	}
	if regexp.MustCompile(`cairn_ingest_[a-z_]+\{[^}]*ten_`).MatchString(text) {
		t.Errorf("an ingestion metric is labelled by tenant")
	}
}

// TestSourceUpdateStaysWithItsTenant: another tenant's token reaches
// neither a source's PATCH nor its settings, and changes nothing.
func TestSourceUpdateStaysWithItsTenant(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		a := e.activeTenant("patch-a")
		b := e.activeTenant("patch-b")
		src := e.do("POST", "/v1/tenants/"+a+"/sources", e.admin, map[string]any{"name": "web", "allowed_origins": []string{"https://a.example"}}).want(t, 201)
		path := "/v1/tenants/" + a + "/sources/" + src.str("id")
		bTok := e.tenantToken(b, "profiles:write", "profiles:read", "events:write")
		e.do("PATCH", path, bTok, map[string]any{"allowed_origins": []string{}}).want(t, 404)
		// Not through its own tenant's path either: the source is A's.
		e.do("PATCH", "/v1/tenants/"+b+"/sources/"+src.str("id"), bTok, map[string]any{"allowed_origins": []string{}}).want(t, 404)
		list := e.do("GET", "/v1/tenants/"+a+"/sources", e.admin, nil).want(t, 200)
		if !strings.Contains(string(list.raw), `"allowed_origins":["https://a.example"]`) {
			t.Fatalf("A's source changed: %s", list.raw)
		}
	})
}
