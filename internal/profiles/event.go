package profiles

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Segment's documented limits.
const (
	MaxEventBytes = 32 << 10
	MaxBatchBytes = 500 << 10
)

// Event types, as Segment names them.
var eventTypes = []string{"identify", "track", "page", "screen", "group", "alias"}

// Event is one Segment-shaped event.
type Event struct {
	Type        string
	MessageID   string
	Timestamp   time.Time
	UserID      string
	AnonymousID string
	PreviousID  string
	GroupID     string
	Event       string
	Name        string
	Traits      map[string]any
	Properties  map[string]any
	Context     map[string]any
	// Raw is the event as received, which the raw zone keeps unchanged.
	Raw json.RawMessage
}

// EventError is a per-event validation failure.
type EventError struct {
	Index  int
	Field  string
	Reason string
}

func (e *EventError) Error() string {
	return fmt.Sprintf("event %d: %s: %s", e.Index, e.Field, e.Reason)
}

type wireEvent struct {
	Type        string          `json:"type"`
	MessageID   string          `json:"messageId"`
	Timestamp   string          `json:"timestamp"`
	SentAt      string          `json:"sentAt"`
	UserID      json.RawMessage `json:"userId"`
	AnonymousID json.RawMessage `json:"anonymousId"`
	PreviousID  json.RawMessage `json:"previousId"`
	GroupID     json.RawMessage `json:"groupId"`
	Event       string          `json:"event"`
	Name        string          `json:"name"`
	Traits      map[string]any  `json:"traits"`
	Properties  map[string]any  `json:"properties"`
	Context     map[string]any  `json:"context"`
}

// idString reads an ID that clients send as a string or a number.
func idString(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", true
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, true
	}
	var n json.Number
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&n) == nil {
		return n.String(), true
	}
	return "", false
}

// ParseEvent validates one event. defaultType is used when the event has
// no type (the single-event endpoints), now stamps events without a
// timestamp.
func ParseEvent(index int, raw json.RawMessage, defaultType string, now time.Time) (Event, error) {
	bad := func(field, format string, args ...any) (Event, error) {
		return Event{}, &EventError{Index: index, Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	if len(raw) > MaxEventBytes {
		return bad("", "larger than %d bytes", MaxEventBytes)
	}
	var w wireEvent
	if err := json.Unmarshal(raw, &w); err != nil {
		return bad("", "not a JSON object")
	}
	ev := Event{Type: w.Type, MessageID: w.MessageID, Event: w.Event, Name: w.Name,
		Traits: w.Traits, Properties: w.Properties, Context: w.Context, Raw: raw}
	if ev.Type == "" {
		ev.Type = defaultType
	}
	if !contains(eventTypes, ev.Type) {
		return bad("type", "must be one of %s", strings.Join(eventTypes, ", "))
	}
	if defaultType != "" && ev.Type != defaultType {
		return bad("type", "must be %s on this endpoint", defaultType)
	}
	var ok bool
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		dst  *string
	}{{"userId", w.UserID, &ev.UserID}, {"anonymousId", w.AnonymousID, &ev.AnonymousID}, {"previousId", w.PreviousID, &ev.PreviousID}, {"groupId", w.GroupID, &ev.GroupID}} {
		if *f.dst, ok = idString(f.raw); !ok {
			return bad(f.name, "must be a string")
		}
		if len(*f.dst) > 1024 {
			return bad(f.name, "longer than 1024 bytes")
		}
	}
	if ev.UserID == "" && ev.AnonymousID == "" {
		return bad("userId", "userId or anonymousId is required")
	}
	if ev.MessageID == "" {
		return bad("messageId", "is required")
	}
	if len(ev.MessageID) > 256 {
		return bad("messageId", "longer than 256 bytes")
	}
	switch ev.Type {
	case "track":
		if ev.Event == "" {
			return bad("event", "is required for track")
		}
	case "alias":
		if ev.PreviousID == "" || ev.UserID == "" {
			return bad("previousId", "alias needs previousId and userId")
		}
	case "group":
		if ev.GroupID == "" {
			return bad("groupId", "is required for group")
		}
	}
	ev.Timestamp = now
	if w.Timestamp != "" {
		t, err := time.Parse(time.RFC3339Nano, w.Timestamp)
		if err != nil {
			return bad("timestamp", "must be an ISO 8601 date-time")
		}
		ev.Timestamp = t
	}
	ev.Timestamp = ev.Timestamp.UTC()
	return ev, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
