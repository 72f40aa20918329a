package webhooks

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The specification's own example (standard-webhooks.md, "Signature
// scheme"): this secret, id, timestamp and body sign to this value.
func TestSignSpecExample(t *testing.T) {
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	body := []byte(`{"test": 2432232314}`)
	got, err := Sign([]string{secret}, "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), body)
	if err != nil {
		t.Fatal(err)
	}
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Errorf("Sign = %q, want %q", got, want)
	}
}

func TestNewSecret(t *testing.T) {
	a, b := NewSecret(), NewSecret()
	if a == b {
		t.Fatal("two NewSecret calls returned the same secret")
	}
	if !strings.HasPrefix(a, "whsec_") {
		t.Fatalf("NewSecret = %q, want the whsec_ prefix", a)
	}
	key, err := ParseSecret(a)
	if err != nil {
		t.Fatal(err)
	}
	if len(key) != 32 {
		t.Errorf("key is %d bytes, want 32", len(key))
	}
	if got := "whsec_" + base64.StdEncoding.EncodeToString(key); got != a {
		t.Errorf("re-encoded %q, want %q", got, a)
	}
}

func TestParseSecret(t *testing.T) {
	key24 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 24))
	key64 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 64))
	key31 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{3}, 31)) // padded
	for _, tc := range []struct {
		name, secret string
		ok           bool
	}{
		{"24 bytes", "whsec_" + key24, true},
		{"64 bytes", "whsec_" + key64, true},
		{"padded", "whsec_" + key31, true},
		{"unpadded", "whsec_" + strings.TrimRight(key31, "="), true},
		{"no prefix", key24, false},
		{"other prefix", "whsk_" + key24, false},
		{"empty key", "whsec_", false},
		{"not base64", "whsec_" + key24[:10] + "!!" + key24[12:], false},
		{"url-safe alphabet", "whsec_" + strings.Repeat("_-", 16), false},
		{"too short", "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 23)), false},
		{"too long", "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 65)), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSecret(tc.secret)
			if tc.ok && err != nil {
				t.Fatalf("ParseSecret: %v", err)
			}
			if !tc.ok {
				if !errors.Is(err, ErrSecret) {
					t.Fatalf("ParseSecret = %v, want ErrSecret", err)
				}
				if key := strings.TrimPrefix(tc.secret, "whsec_"); len(key) > 8 && strings.Contains(err.Error(), key) {
					t.Errorf("error %q contains the secret", err)
				}
			}
		})
	}
}

func TestSignErrors(t *testing.T) {
	now := time.Unix(1700000000, 0)
	for _, tc := range []struct {
		name    string
		secrets []string
		id      string
	}{
		{"no secrets", nil, "msg_1"},
		{"empty id", []string{NewSecret()}, ""},
		{"malformed second secret", []string{NewSecret(), "whsec_nope"}, "msg_1"},
	} {
		if _, err := Sign(tc.secrets, tc.id, now, []byte("{}")); err == nil {
			t.Errorf("%s: Sign succeeded", tc.name)
		}
	}
}

// headers returns the request headers Send would set.
func headers(t *testing.T, secrets []string, id string, ts time.Time, body []byte) http.Header {
	t.Helper()
	sig, err := Sign(secrets, id, ts, body)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, sig)
	return h
}

func TestSignVerify(t *testing.T) {
	oldSecret, newSecret, stranger := NewSecret(), NewSecret(), NewSecret()
	ts := time.Unix(1700000000, 0)
	now := ts.Add(time.Minute)
	body := []byte(`{"type":"profile.created","data":{"id":"p_1"}}`)
	const tol = 5 * time.Minute

	t.Run("round trip", func(t *testing.T) {
		h := headers(t, []string{newSecret}, "msg_1", ts, body)
		if err := Verify(newSecret, h, body, now, tol); err != nil {
			t.Fatal(err)
		}
		if err := Verify(stranger, h, body, now, tol); !errors.Is(err, ErrSignature) {
			t.Fatalf("another secret: Verify = %v, want ErrSignature", err)
		}
	})

	t.Run("rotation", func(t *testing.T) {
		h := headers(t, []string{newSecret, oldSecret}, "msg_1", ts, body)
		sigs := strings.Split(h.Get(HeaderSignature), " ")
		if len(sigs) != 2 || !strings.HasPrefix(sigs[0], "v1,") || !strings.HasPrefix(sigs[1], "v1,") {
			t.Fatalf("signature header %q, want two v1 signatures", h.Get(HeaderSignature))
		}
		// In the order given: the first is the new secret's alone.
		if only := headers(t, []string{newSecret}, "msg_1", ts, body).Get(HeaderSignature); sigs[0] != only {
			t.Errorf("first signature %q, want the new secret's %q", sigs[0], only)
		}
		for name, s := range map[string]string{"old": oldSecret, "new": newSecret} {
			if err := Verify(s, h, body, now, tol); err != nil {
				t.Errorf("receiver with the %s secret: %v", name, err)
			}
		}
		if err := Verify(stranger, h, body, now, tol); !errors.Is(err, ErrSignature) {
			t.Errorf("a third secret: Verify = %v, want ErrSignature", err)
		}
	})

	t.Run("other versions ignored", func(t *testing.T) {
		h := headers(t, []string{newSecret}, "msg_1", ts, body)
		h.Set(HeaderSignature, "v1a,bm90IGEgc2lnbmF0dXJl garbage "+h.Get(HeaderSignature))
		if err := Verify(newSecret, h, body, now, tol); err != nil {
			t.Fatal(err)
		}
		h.Set(HeaderSignature, strings.Replace(h.Get(HeaderSignature), "v1,", "v2,", 1))
		if err := Verify(newSecret, h, body, now, tol); !errors.Is(err, ErrSignature) {
			t.Fatalf("only a v2 signature: Verify = %v, want ErrSignature", err)
		}
	})

	t.Run("tampered", func(t *testing.T) {
		good := headers(t, []string{newSecret}, "msg_1", ts, body)
		for _, tc := range []struct {
			name string
			edit func(h http.Header) []byte
		}{
			{"body", func(http.Header) []byte { return []byte(`{"type":"profile.created","data":{"id":"p_2"}}`) }},
			{"body appended", func(http.Header) []byte { return append(bytes.Clone(body), ' ') }},
			{"id", func(h http.Header) []byte { h.Set(HeaderID, "msg_2"); return body }},
			{"timestamp", func(h http.Header) []byte { h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix()+1, 10)); return body }},
			{"signature", func(h http.Header) []byte {
				s := []byte(h.Get(HeaderSignature))
				s[5] ^= 1
				h.Set(HeaderSignature, string(s))
				return body
			}},
			{"no id", func(h http.Header) []byte { h.Del(HeaderID); return body }},
			{"no timestamp", func(h http.Header) []byte { h.Del(HeaderTimestamp); return body }},
			{"no signature", func(h http.Header) []byte { h.Del(HeaderSignature); return body }},
			{"timestamp not a number", func(h http.Header) []byte { h.Set(HeaderTimestamp, "1700000000.5"); return body }},
			{"huge timestamp", func(h http.Header) []byte { h.Set(HeaderTimestamp, "9223372036854775807"); return body }},
			{"negative timestamp", func(h http.Header) []byte { h.Set(HeaderTimestamp, "-1"); return body }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				h := good.Clone()
				b := tc.edit(h)
				if err := Verify(newSecret, h, b, now, tol); !errors.Is(err, ErrSignature) {
					t.Fatalf("Verify = %v, want ErrSignature", err)
				}
			})
		}
	})

	t.Run("tolerance", func(t *testing.T) {
		h := headers(t, []string{newSecret}, "msg_1", ts, body)
		for _, tc := range []struct {
			name string
			now  time.Time
			ok   bool
		}{
			{"at the timestamp", ts, true},
			{"exactly tolerance late", ts.Add(tol), true},
			{"tolerance late, within the second", ts.Add(tol + 999*time.Millisecond), true},
			{"a second too late", ts.Add(tol + time.Second), false},
			{"exactly tolerance early", ts.Add(-tol), true},
			{"a second too early", ts.Add(-tol - time.Second), false},
		} {
			err := Verify(newSecret, h, body, tc.now, tol)
			if tc.ok && err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			if !tc.ok && !errors.Is(err, ErrSignature) {
				t.Errorf("%s: Verify = %v, want ErrSignature", tc.name, err)
			}
		}
	})

	t.Run("malformed secret", func(t *testing.T) {
		h := headers(t, []string{newSecret}, "msg_1", ts, body)
		if err := Verify("whsec_", h, body, now, tol); !errors.Is(err, ErrSecret) {
			t.Fatalf("Verify = %v, want ErrSecret", err)
		}
	})
}

// TestStandardWebhooksPython has the reference Python library
// (standardwebhooks, pinned in requirements-test.txt) verify what Sign
// makes, so the two sides cannot agree on a mistake.
func TestStandardWebhooksPython(t *testing.T) {
	python := os.Getenv("CAIRN_TEST_PYTHON")
	if python == "" {
		if os.Getenv("CAIRN_TEST_REQUIRE_CLIENTS") == "1" {
			t.Fatal("CAIRN_TEST_PYTHON is not set (scripts/testenv.sh sets it)")
		}
		t.Skip("CAIRN_TEST_PYTHON is not set (scripts/testenv.sh sets it)")
	}
	script, err := filepath.Abs(filepath.Join("testdata", "standardwebhooks_verify.py"))
	if err != nil {
		t.Fatal(err)
	}

	// The library checks timestamps against its own clock, with five
	// minutes' tolerance.
	now := time.Now()
	oldSecret, newSecret := NewSecret(), NewSecret()
	// Keys of the specification's bounds and an unpadded one (24 bytes
	// needs no padding; 25 does).
	short := "whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 24))
	long := "whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 64))
	odd := "whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x3e}, 25))

	type pyCase struct {
		name    string
		secret  string
		headers http.Header
		body    []byte
		ok      bool
	}
	var cases []pyCase
	add := func(name, verifyWith string, secrets []string, id string, ts time.Time, body string, ok bool) {
		cases = append(cases, pyCase{name, verifyWith, headers(t, secrets, id, ts, []byte(body)), []byte(body), ok})
	}
	add("plain", newSecret, []string{newSecret}, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", now, `{"type":"profile.created"}`, true)
	add("24-byte key", short, []string{short}, "evt_1", now.Add(-time.Minute), `{}`, true)
	add("64-byte key", long, []string{long}, "evt_2", now.Add(time.Minute), `{"a":[1,2,3]}`, true)
	add("25-byte key", odd, []string{odd}, "evt_3", now, `{"a":"b"}`, true)
	add("unicode body", newSecret, []string{newSecret}, "evt_4", now, `{"name":"Zoë 🌲","note":"a\nb"}`, true)
	add("empty body", newSecret, []string{newSecret}, "evt_5", now, ``, true)
	add("rotation, new secret", newSecret, []string{newSecret, oldSecret}, "evt_6", now, `{"rot":1}`, true)
	add("rotation, old secret", oldSecret, []string{newSecret, oldSecret}, "evt_6", now, `{"rot":1}`, true)
	add("rotation, other secret", NewSecret(), []string{newSecret, oldSecret}, "evt_6", now, `{"rot":1}`, false)
	add("too old", newSecret, []string{newSecret}, "evt_7", now.Add(-time.Hour), `{}`, false)
	tampered := headers(t, []string{newSecret}, "evt_8", now, []byte(`{"amount":1}`))
	cases = append(cases, pyCase{"tampered body", newSecret, tampered, []byte(`{"amount":9}`), false})
	tamperedID := tampered.Clone()
	tamperedID.Set(HeaderID, "evt_9")
	cases = append(cases, pyCase{"tampered id", newSecret, tamperedID, []byte(`{"amount":1}`), false})

	type wire struct {
		Secret  string            `json:"secret"`
		Headers map[string]string `json:"headers"`
		Body    string            `json:"body"`
	}
	var in []wire
	for _, c := range cases {
		h := map[string]string{}
		for k := range c.headers {
			h[k] = c.headers.Get(k)
		}
		in = append(in, wire{c.secret, h, base64.StdEncoding.EncodeToString(c.body)})
	}
	stdin, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, script)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", python, script, err, stderr.String())
	}
	var results []string
	if err := json.Unmarshal(out, &results); err != nil || len(results) != len(cases) {
		t.Fatalf("script printed %q (%v), want %d results", out, err, len(cases))
	}
	for i, c := range cases {
		if got := results[i] == "ok"; got != c.ok {
			t.Errorf("%s: standardwebhooks says %q, want accepted=%v", c.name, results[i], c.ok)
		}
	}
}
