package profiles

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/cairn-cdp/cairn/internal/ids"
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
	// Traits are the event's traits; an identify's include those it sent
	// in context.traits, under the top-level ones.
	Traits     map[string]any
	Properties map[string]any
	Context    map[string]any
	// Raw is the event as received, which the raw zone keeps unchanged,
	// but for the messageId ParseEvent gives an event sent without one.
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
	Type      string `json:"type"`
	MessageID string `json:"messageId"`
	Timestamp string `json:"timestamp"`
	// OriginalTimestamp is when a client library (RudderStack's, Segment's
	// browser library) recorded the event, on the client's clock.
	OriginalTimestamp string `json:"originalTimestamp"`
	SentAt            string `json:"sentAt"`
	// WriteKey authenticates a browser library's single event; it is the
	// source's credential, not part of the event.
	WriteKey    string         `json:"writeKey"`
	UserID      jsontext.Value `json:"userId"`
	AnonymousID jsontext.Value `json:"anonymousId"`
	PreviousID  jsontext.Value `json:"previousId"`
	GroupID     jsontext.Value `json:"groupId"`
	Event       string         `json:"event"`
	Name        string         `json:"name"`
	Traits      map[string]any `json:"traits"`
	Properties  map[string]any `json:"properties"`
	Context     map[string]any `json:"context"`
}

// idString reads an ID that clients send as a string or a number (kept as
// written).
func idString(raw jsontext.Value) (string, bool) {
	switch raw.Kind() {
	case 0, 'n':
		return "", true
	case '"':
		s, err := jsontext.AppendUnquote(nil, raw)
		return string(s), err == nil
	case '0':
		return string(raw), true
	}
	return "", false
}

// ParseEvent validates one event. defaultType is used when the event has
// no type (the single-event endpoints), now stamps events without a
// timestamp.
//
// The event is decoded once, strictly: an object with a duplicate name at
// any depth, invalid UTF-8 or a number out of range is refused, since the
// raw zone keeps the event as received and must never hold a line that
// readers can read two ways. The refusal names the field ("traits.age").
//
// Identify traits sent in context.traits (as rudder-sdk-python does) count
// as traits, under the top-level ones, as Segment's servers read them.
// An event without a messageId gets a new one, written into Raw too, so
// that raw zone readers see the ID the event was recorded under.
func ParseEvent(index int, raw json.RawMessage, defaultType string, now time.Time) (Event, error) {
	bad := func(field, format string, args ...any) (Event, error) {
		return Event{}, &EventError{Index: index, Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	if len(raw) > MaxEventBytes {
		return bad("", "larger than %d bytes", MaxEventBytes)
	}
	var w wireEvent
	if err := jsonv2.Unmarshal(raw, &w); err != nil {
		field, reason := decodeError(raw, err)
		return bad(field, "%s", reason)
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
		raw  jsontext.Value
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
	case "identify":
		if ct, ok := ev.Context["traits"].(map[string]any); ok && len(ct) > 0 {
			traits := make(map[string]any, len(ct)+len(ev.Traits))
			maps.Copy(traits, ct)
			maps.Copy(traits, ev.Traits) // the top-level value wins
			ev.Traits = traits
		}
	}
	var err error
	if ev.Timestamp, err = eventTime(w, now); err != nil {
		return bad(err.Error(), "must be an ISO 8601 date-time")
	}
	if w.Type == "" {
		// The endpoint named the type: the raw line says it too.
		if ev.Raw, err = withMember(ev.Raw, "type", ev.Type); err != nil {
			return bad("", "not a JSON object")
		}
	}
	if w.WriteKey != "" {
		if ev.Raw, err = withoutMember(ev.Raw, "writeKey"); err != nil {
			return bad("", "not a JSON object")
		}
	}
	if ev.MessageID == "" {
		ev.MessageID = newMessageID()
		if ev.Raw, err = withMember(ev.Raw, "messageId", ev.MessageID); err != nil {
			return bad("", "not a JSON object")
		}
	}
	return ev, nil
}

// eventTime is when the event happened, as Segment's and RudderStack's
// servers compute it: the event's own timestamp if it set one; otherwise
// originalTimestamp, corrected for the client's clock skew by the time the
// event spent between the client's sentAt and its arrival (now); now for
// an event that says neither. An unreadable time is an error naming its
// field.
func eventTime(w wireEvent, now time.Time) (time.Time, error) {
	parse := func(field, v string) (time.Time, error) {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return time.Time{}, errors.New(field)
		}
		return t.UTC(), nil
	}
	switch {
	case w.Timestamp != "":
		return parse("timestamp", w.Timestamp)
	case w.OriginalTimestamp == "":
		return now.UTC(), nil
	}
	orig, err := parse("originalTimestamp", w.OriginalTimestamp)
	if err != nil || w.SentAt == "" {
		return orig, err
	}
	sent, err := parse("sentAt", w.SentAt)
	if err != nil {
		return time.Time{}, err
	}
	return now.Add(-sent.Sub(orig)).UTC(), nil
}

// decodeError turns a decoding error into the field it concerns, in the
// dotted form clients write ("traits.age"), and a reason.
func decodeError(raw []byte, err error) (string, string) {
	var se *jsonv2.SemanticError
	var syn *jsontext.SyntacticError
	switch {
	case errors.As(err, &syn) && errors.Is(syn.Err, jsontext.ErrDuplicateName):
		return dotted(syn.JSONPointer), "duplicate name"
	case errors.As(err, &syn) && syn.Err != nil && strings.Contains(syn.Err.Error(), "invalid UTF-8"):
		return dotted(syn.JSONPointer), "invalid UTF-8"
	case errors.As(err, &se) && se.JSONPointer != "":
		field := dotted(se.JSONPointer)
		var kind reflect.Kind
		if se.GoType != nil {
			kind = se.GoType.Kind()
		}
		switch {
		case kind == reflect.Map:
			return field, "must be an object"
		case kind == reflect.String:
			return field, "must be a string"
		case se.JSONKind == '0':
			return field, "number out of range"
		}
		return field, "invalid value"
	}
	if k := jsontext.Value(bytes.TrimSpace(raw)).Kind(); k != '{' {
		return "", "not a JSON object"
	}
	return "", "invalid JSON"
}

// dotted writes a JSON pointer as the dotted path clients know.
func dotted(p jsontext.Pointer) string {
	var b strings.Builder
	for tok := range p.Tokens() {
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}

// newMessageID returns a messageId for an event sent without one.
func newMessageID() string { return ids.New("cairn-") }

// withMember returns a copy of the event object raw with its top-level
// member name set to the string value: an absent one is added first, a
// null or empty one replaced in place, so the rest of the event stays byte
// for byte as sent.
func withMember(raw []byte, name, value string) ([]byte, error) {
	member, _ := jsontext.AppendQuote(nil, value)
	dec := jsontext.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return nil, errors.New("not an object")
	}
	open := int(dec.InputOffset())
	for dec.PeekKind() != '}' {
		tok, err := dec.ReadToken()
		if err != nil {
			return nil, err
		}
		match := tok.String() == name // before the next read voids tok
		val, err := dec.ReadValue()
		if err != nil {
			return nil, err
		}
		if match {
			end := int(dec.InputOffset())
			start := end - len(val)
			return slices.Concat(raw[:start], member, raw[end:]), nil
		}
	}
	prefix, _ := jsontext.AppendQuote(nil, name)
	prefix = append(append(prefix, ':'), member...)
	if rest := bytes.TrimLeft(raw[open:], " \t\r\n"); len(rest) == 0 || rest[0] != '}' {
		prefix = append(prefix, ',')
	}
	return slices.Concat(raw[:open], prefix, raw[open:]), nil
}

// withoutMember returns raw, an event object, without its top-level member
// name, the rest byte for byte as sent; raw itself if it has no such member.
func withoutMember(raw []byte, name string) ([]byte, error) {
	dec := jsontext.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return nil, errors.New("not an object")
	}
	prevEnd, first := int(dec.InputOffset()), true
	for dec.PeekKind() != '}' {
		tok, err := dec.ReadToken()
		if err != nil {
			return nil, err
		}
		match := tok.String() == name // before the next read voids tok
		if _, err := dec.ReadValue(); err != nil {
			return nil, err
		}
		end := int(dec.InputOffset())
		if !match {
			prevEnd, first = end, false
			continue
		}
		// A later member goes with the comma before it (raw[prevEnd:]
		// starts with it); the first one with the comma after it.
		if rest := bytes.TrimLeft(raw[end:], " \t\r\n"); first && len(rest) > 0 && rest[0] == ',' {
			end = len(raw) - len(bytes.TrimLeft(rest[1:], " \t\r\n"))
		}
		return slices.Concat(raw[:prevEnd], raw[end:]), nil
	}
	return raw, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
