package profiles_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/cairn-cdp/cairn/internal/profiles"
)

// benchEvent is a typical analytics.js identify of about 1 KB.
var benchEvent = json.RawMessage(`{"type":"identify","messageId":"ajs-next-1733212800000-5f0c6e1b-8d8e-4b67-9f0e-7b4f0f0b2a11","anonymousId":"0b9c1f4e-6f5a-4c2e-9a53-1f2e3d4c5b6a","userId":"user-8842","timestamp":"2026-12-03T08:00:00.000Z","sentAt":"2026-12-03T08:00:00.120Z","traits":{"email":"jane.doe@example.com","name":"Jane Doe","plan":"pro","age":37,"logins":1204,"company":{"name":"Acme","employees":250}},"context":{"library":{"name":"analytics.js","version":"next-1.70.0"},"page":{"path":"/account","referrer":"https://example.com/","search":"","title":"Account","url":"https://app.example.com/account"},"userAgent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36","locale":"en-US","ip":"203.0.113.7","timezone":"Europe/Paris","campaign":{"name":"winter","source":"newsletter","medium":"email"}},"integrations":{"All":true}}`)

func BenchmarkParseEvent(b *testing.B) {
	now := time.Now()
	b.SetBytes(int64(len(benchEvent)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := profiles.ParseEvent(0, benchEvent, "", now); err != nil {
			b.Fatal(err)
		}
	}
}

func TestParseEvent(t *testing.T) {
	now := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	big := `{"userId":"u","messageId":"m","type":"track","event":"E","properties":{"p":"` + strings.Repeat("x", profiles.MaxEventBytes) + `"}}`
	tests := []struct {
		name  string
		raw   string
		field string // of the EventError; none if reason is empty
		// reason is a substring of the refusal's reason; "" for an accepted event
		reason string
		check  func(t *testing.T, ev profiles.Event)
		// defaultType is the endpoint's type (single-event routes)
		defaultType string
	}{
		{name: "identify", raw: `{"type":"identify","messageId":"m1","userId":"u1","traits":{"email":"a@example.com"}}`,
			check: func(t *testing.T, ev profiles.Event) {
				if ev.MessageID != "m1" || ev.UserID != "u1" || ev.Traits["email"] != "a@example.com" || !ev.Timestamp.Equal(now) {
					t.Errorf("event %+v", ev)
				}
			}},
		{name: "numeric userId kept as written", raw: `{"type":"track","event":"E","messageId":"m","userId":12.50}`,
			check: func(t *testing.T, ev profiles.Event) {
				if ev.UserID != "12.50" {
					t.Errorf("userId %q", ev.UserID)
				}
			}},
		{name: "escaped userId", raw: `{"type":"track","event":"E","messageId":"m","userId":"\u00e9\n"}`,
			check: func(t *testing.T, ev profiles.Event) {
				if ev.UserID != "é\n" {
					t.Errorf("userId %q", ev.UserID)
				}
			}},
		{name: "context traits alone", raw: `{"type":"identify","messageId":"m","userId":"u","context":{"traits":{"email":"c@example.com","plan":"pro"}}}`,
			check: func(t *testing.T, ev profiles.Event) {
				if ev.Traits["email"] != "c@example.com" || ev.Traits["plan"] != "pro" {
					t.Errorf("traits %v", ev.Traits)
				}
			}},
		{name: "top-level traits win over context traits", raw: `{"type":"identify","messageId":"m","userId":"u","traits":{"plan":"pro"},"context":{"traits":{"email":"c@example.com","plan":"free"}}}`,
			check: func(t *testing.T, ev profiles.Event) {
				if ev.Traits["email"] != "c@example.com" || ev.Traits["plan"] != "pro" || len(ev.Traits) != 2 {
					t.Errorf("traits %v", ev.Traits)
				}
			}},
		{name: "context traits of a track are not traits", raw: `{"type":"track","event":"E","messageId":"m","userId":"u","context":{"traits":{"plan":"free"}}}`,
			check: func(t *testing.T, ev profiles.Event) {
				if len(ev.Traits) != 0 {
					t.Errorf("traits %v", ev.Traits)
				}
			}},
		{name: "missing messageId is given one", raw: ` { "userId":"u", "type":"track","event":"E"}`,
			check: func(t *testing.T, ev profiles.Event) {
				checkGeneratedID(t, ev, ` { "userId":"u", "type":"track","event":"E"}`)
			}},
		{name: "null messageId is given one", raw: `{"userId":"u","messageId":null,"type":"track","event":"E"}`,
			check: func(t *testing.T, ev profiles.Event) {
				checkGeneratedID(t, ev, `{"userId":"u","messageId":null,"type":"track","event":"E"}`)
			}},
		{name: "empty messageId is given one", raw: `{"userId":"u","type":"track","event":"E","messageId" : ""}`,
			check: func(t *testing.T, ev profiles.Event) {
				checkGeneratedID(t, ev, `{"userId":"u","type":"track","event":"E","messageId" : ""}`)
			}},
		{name: "nested messageId is not the event's", raw: `{"userId":"u","type":"track","event":"E","properties":{"messageId":"p"}}`,
			check: func(t *testing.T, ev profiles.Event) {
				checkGeneratedID(t, ev, `{"userId":"u","type":"track","event":"E","properties":{"messageId":"p"}}`)
			}},
		{name: "duplicate top-level name", raw: `{"type":"track","event":"E","messageId":"m","userId":"u1","userId":"u2"}`, field: "userId", reason: "duplicate"},
		{name: "duplicate nested name", raw: `{"type":"track","event":"E","messageId":"m","userId":"u","context":{"page":{"url":"a","url":"b"}}}`, field: "context.page.url", reason: "duplicate"},
		{name: "duplicate name in an ignored member", raw: `{"type":"track","event":"E","messageId":"m","userId":"u","integrations":{"All":true,"All":false}}`, field: "integrations.All", reason: "duplicate"},
		{name: "invalid UTF-8", raw: "{\"type\":\"track\",\"event\":\"E\",\"messageId\":\"m\",\"userId\":\"u\",\"properties\":{\"q\":\"\xff\"}}", field: "properties.q", reason: "UTF-8"},
		{name: "invalid UTF-8 in an ignored member", raw: "{\"type\":\"track\",\"event\":\"E\",\"messageId\":\"m\",\"userId\":\"u\",\"x\":\"\xc3\"}", field: "x", reason: "UTF-8"},
		{name: "number out of range", raw: `{"type":"identify","messageId":"m","userId":"u","traits":{"age":1e400}}`, field: "traits.age", reason: "out of range"},
		{name: "traits not an object", raw: `{"type":"identify","messageId":"m","userId":"u","traits":"pro"}`, field: "traits", reason: "object"},
		{name: "type not a string", raw: `{"type":5,"messageId":"m","userId":"u"}`, field: "type", reason: "string"},
		{name: "userId an object", raw: `{"type":"identify","messageId":"m","userId":{"id":1}}`, field: "userId", reason: "string"},
		{name: "array", raw: `[{"type":"identify"}]`, field: "", reason: "not a JSON object"},
		{name: "truncated", raw: `{"type":"identify","userId":`, field: "", reason: "JSON"},
		{name: "too large", raw: big, field: "", reason: "larger than"},
		{name: "no identity", raw: `{"type":"identify","messageId":"m"}`, field: "userId", reason: "required"},
		{name: "track without event", raw: `{"type":"track","messageId":"m","userId":"u"}`, field: "event", reason: "required"},
		{name: "alias without previousId", raw: `{"type":"alias","messageId":"m","userId":"u"}`, field: "previousId", reason: "previousId"},
		{name: "originalTimestamp corrected by the client's clock skew",
			// The client's clock is 10 minutes fast: it stamped the event 2 s
			// before it sent it, so it happened 2 s before it arrived.
			raw: `{"type":"track","event":"E","messageId":"m","userId":"u","originalTimestamp":"2026-12-03T08:09:58Z","sentAt":"2026-12-03T08:10:00Z"}`,
			check: func(t *testing.T, ev profiles.Event) {
				if want := now.Add(-2 * time.Second); !ev.Timestamp.Equal(want) {
					t.Errorf("timestamp %v, want %v", ev.Timestamp, want)
				}
			}},
		{name: "originalTimestamp without sentAt",
			raw: `{"type":"track","event":"E","messageId":"m","userId":"u","originalTimestamp":"2026-12-01T00:00:00+01:00"}`,
			check: func(t *testing.T, ev profiles.Event) {
				if want := time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC); !ev.Timestamp.Equal(want) {
					t.Errorf("timestamp %v, want %v", ev.Timestamp, want)
				}
			}},
		{name: "timestamp wins over originalTimestamp",
			raw: `{"type":"track","event":"E","messageId":"m","userId":"u","timestamp":"2026-12-02T00:00:00Z","originalTimestamp":"2026-12-01T00:00:00Z","sentAt":"2026-12-01T00:00:01Z"}`,
			check: func(t *testing.T, ev profiles.Event) {
				if want := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC); !ev.Timestamp.Equal(want) {
					t.Errorf("timestamp %v, want %v", ev.Timestamp, want)
				}
			}},
		{name: "bad originalTimestamp", raw: `{"type":"track","event":"E","messageId":"m","userId":"u","originalTimestamp":"soon"}`, field: "originalTimestamp", reason: "ISO 8601"},
		{name: "bad sentAt", raw: `{"type":"track","event":"E","messageId":"m","userId":"u","originalTimestamp":"2026-12-01T00:00:00Z","sentAt":"later"}`, field: "sentAt", reason: "ISO 8601"},
		{name: "writeKey first leaves the raw line",
			raw: `{"writeKey":"wk_secret", "type":"track","event":"E","messageId":"m","userId":"u"}`,
			check: func(t *testing.T, ev profiles.Event) {
				if got, want := string(ev.Raw), `{"type":"track","event":"E","messageId":"m","userId":"u"}`; got != want {
					t.Errorf("raw %s, want %s", got, want)
				}
			}},
		{name: "writeKey last leaves the raw line",
			raw: `{"type":"track","event":"E","messageId":"m","userId":"u","properties":{"writeKey":"kept"} , "writeKey":"wk_secret"}`,
			check: func(t *testing.T, ev profiles.Event) {
				if got, want := string(ev.Raw), `{"type":"track","event":"E","messageId":"m","userId":"u","properties":{"writeKey":"kept"}}`; got != want {
					t.Errorf("raw %s, want %s", got, want)
				}
			}},
		{name: "writeKey alone with a generated messageId",
			raw: `{"type":"track","event":"E","userId":"u","writeKey":"wk_secret"}`,
			check: func(t *testing.T, ev profiles.Event) {
				if strings.Contains(string(ev.Raw), "wk_secret") || !strings.Contains(string(ev.Raw), ev.MessageID) {
					t.Errorf("raw %s", ev.Raw)
				}
			}},
		{name: "the endpoint's type is written into the raw line",
			raw: `{"event":"E","messageId":"m","userId":"u"}`, defaultType: "track",
			check: func(t *testing.T, ev profiles.Event) {
				if got, want := string(ev.Raw), `{"type":"track","event":"E","messageId":"m","userId":"u"}`; ev.Type != "track" || got != want {
					t.Errorf("type %q, raw %s, want %s", ev.Type, got, want)
				}
			}},
		{name: "bad timestamp", raw: `{"type":"identify","messageId":"m","userId":"u","timestamp":"yesterday"}`, field: "timestamp", reason: "ISO 8601"},
		{name: "long messageId", raw: `{"type":"identify","userId":"u","messageId":"` + strings.Repeat("m", 257) + `"}`, field: "messageId", reason: "256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := profiles.ParseEvent(3, json.RawMessage(tt.raw), tt.defaultType, now)
			if tt.reason == "" {
				if err != nil {
					t.Fatal(err)
				}
				tt.check(t, ev)
				return
			}
			var ee *profiles.EventError
			if !errors.As(err, &ee) {
				t.Fatalf("got %v, want an EventError", err)
			}
			if ee.Index != 3 || ee.Field != tt.field || !strings.Contains(ee.Reason, tt.reason) {
				t.Fatalf("got %+v, want field %q and a reason with %q", ee, tt.field, tt.reason)
			}
		})
	}
}

// checkGeneratedID checks that an event sent as raw without a messageId
// got one, and that its Raw is the event as sent with that messageId, and
// only it, added.
func checkGeneratedID(t *testing.T, ev profiles.Event, raw string) {
	t.Helper()
	if ev.MessageID == "" {
		t.Fatal("no messageId")
	}
	var got, want map[string]any
	if err := jsonv2.Unmarshal(ev.Raw, &got); err != nil { // strict: one messageId only
		t.Fatalf("raw %s: %v", ev.Raw, err)
	}
	if err := json.Unmarshal([]byte(raw), &want); err != nil {
		t.Fatal(err)
	}
	want["messageId"] = ev.MessageID
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("raw %s, want %v", ev.Raw, want)
	}
	again, err := profiles.ParseEvent(0, ev.Raw, "", time.Now())
	if err != nil || again.MessageID != ev.MessageID {
		t.Fatalf("raw reads as %q, %v; want %q", again.MessageID, err, ev.MessageID)
	}
	other, _ := profiles.ParseEvent(0, json.RawMessage(raw), "", time.Now())
	if other.MessageID == ev.MessageID {
		t.Fatal("two events got one messageId")
	}
}
