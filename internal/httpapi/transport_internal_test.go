package httpapi

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
)

// TestBombInflatesBounded: a gzip body that inflates to 10 MB is refused
// after inflating little more than the limit. It runs alone (not in
// parallel), so the allocation count is this test's.
func TestBombInflatesBounded(t *testing.T) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(make([]byte, 10<<20))
	_ = zw.Close()
	bomb := buf.Bytes()

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r := httptest.NewRequest(http.MethodPost, "/v1/batch", bytes.NewReader(bomb))
	r.Header.Set("Content-Encoding", "gzip")
	_, p := readIngestBody(r, 512000, http.StatusBadRequest)
	runtime.ReadMemStats(&after)
	if p == nil || p.status != http.StatusBadRequest {
		t.Fatalf("bomb answered %+v, want 400", p)
	}
	// io.ReadAll grows its buffer to about twice what it reads.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Errorf("reading the bomb allocated %d bytes", alloc)
	}
}

func TestBodyWriteKey(t *testing.T) {
	for _, tt := range []struct {
		body, want string
		err        bool
	}{
		{`{"writeKey":"wk_a","batch":[]}`, "wk_a", false},
		{`{"batch":[{"writeKey":"wk_inner"}],"writeKey":"wk_a"}`, "wk_a", false},
		{`{"batch":[{"writeKey":"wk_inner"}]}`, "", false},
		{`{"writeKey":"wk_a","writeKey":"wk_a"}`, "wk_a", false},
		{`{"writeKey":"wk_a","writeKey":"wk_b"}`, "", true},
		{`{"writeKey":5}`, "", false},
		{`{"writeKey":{"x":1}}`, "", false},
		{`[{"writeKey":"wk_a"}]`, "", false},
		{`not json`, "", false},
		{``, "", false},
	} {
		got, err := bodyWriteKey([]byte(tt.body))
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("bodyWriteKey(%s) = %q, %v; want %q, error %v", tt.body, got, err, tt.want, tt.err)
		}
	}
}

func TestSplitEvents(t *testing.T) {
	for _, tt := range []struct {
		body  string
		batch bool
		want  []string
		field string
	}{
		{`{"batch":[{"a": 1}, {"b":[1, 2]}],"sentAt":"x"}`, true, []string{`{"a": 1}`, `{"b":[1, 2]}`}, ""},
		{` {"context":{},"batch":[]} `, true, []string{}, ""},
		{"{\"batch\":[{\"a\":\n 1,\r\n\"s\":\"x y\"}]}", true, []string{`{"a":1,"s":"x y"}`}, ""},
		{`{"batch":[1, "x"]}`, true, []string{`1`, `"x"`}, ""},
		{`{"batch":[{"a":1}],"batch":{}}`, true, []string{`{"a":1}`}, ""},
		{` {"type": "track"}` + "\n", false, []string{`{"type": "track"}`}, ""},
		{`{"batch":{}}`, true, nil, "batch"},
		{`{"sentAt":"x"}`, true, nil, "batch"},
		{`[]`, true, nil, "body"},
		{`{"batch":[]} {}`, true, nil, "body"},
		{`{"batch":[1,]}`, true, nil, "batch"},
		{`[{"type":"track"}]`, false, nil, "body"},
		{`{"type":"track"} x`, false, nil, "body"},
		{`{"batch":[1,2,3]}`, true, nil, "batch"}, // over the test's limit of 2
	} {
		limit := 10
		if strings.Contains(tt.body, "1,2,3") {
			limit = 2
		}
		got, p := splitEvents([]byte(tt.body), tt.batch, limit)
		if tt.field != "" {
			if p == nil || len(p.fields) != 1 || p.fields[0].Field != tt.field {
				t.Errorf("splitEvents(%s) = %q, %+v; want a problem naming %s", tt.body, got, p, tt.field)
			}
			continue
		}
		if p != nil {
			t.Errorf("splitEvents(%s): %v", tt.body, p)
			continue
		}
		var s []string
		for _, r := range got {
			s = append(s, string(r))
		}
		if strings.Join(s, "|") != strings.Join(tt.want, "|") {
			t.Errorf("splitEvents(%s) = %q, want %q", tt.body, s, tt.want)
		}
	}
}
