package pii

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMatchers(t *testing.T) {
	for _, tc := range []struct {
		kind Kind
		yes  []string
		no   []string
	}{
		{KindEmail,
			[]string{"ada@example.com", "first.last+tag@mail.example.co.uk", "o'brien@example.ie", "X_Y@sub-domain.example.io"},
			[]string{"ada@example", "@example.com", "ada@@example.com", "ada example.com", "ada@example.c", "mailto:ada@example.com", "Ada <ada@example.com>"}},
		{KindIP,
			[]string{"192.0.2.1", "10.0.0.255", "2001:db8::1", "::1", "::ffff:192.0.2.1"},
			[]string{"192.0.2", "256.1.1.1", "1.2.3.4.5", "fe80::1%eth0", "v1.2.3.4", "2024-01-02"}},
		{KindPaymentCard,
			[]string{"4111111111111111", "4111 1111 1111 1111", "4111-1111-1111-1111", "5555555555554444", "378282246310005", "6011111111111117", "3530111333300000", "2223003122003222", "30569309025904"},
			[]string{"4111111111111112", "1234567812345670", "411111111111", "41111111111111111111", "0000000000000000", "9999999999999995", "4111x1111x1111x1111"}},
		{KindPhone,
			[]string{"+14155552671", "+44 20 7946 0958", "+33 1-23-45-67-89", "(415) 555-2671", "415-555-2671", "415.555.2671", "+1 (415) 555-2671"},
			[]string{"14155552671", "4155552671", "2024-01-02", "12:34:56", "+0123456789", "+12", "555-1234", "1700000000"}},
		{KindPostalAddress,
			[]string{"1600 Amphitheatre Parkway, Mountain View", "221B Baker Street", "10 Downing St, London", "742 Evergreen Terrace", "12 rue de Rivoli, Paris", "Hauptstraße 5, Berlin", "Via Roma 10, Milano", "Calle Mayor 3, Madrid"},
			[]string{"Baker Street", "Mountain View, CA", "page 12 of the street guide", "2024 release", "Order 42 shipped"}},
	} {
		for _, s := range tc.yes {
			if !matchers[tc.kind](s) {
				t.Errorf("%s: %q does not match, want a match", tc.kind, s)
			}
		}
		for _, s := range tc.no {
			if matchers[tc.kind](s) {
				t.Errorf("%s: %q matches, want no match", tc.kind, s)
			}
		}
	}
}

func TestWordsAndNames(t *testing.T) {
	for _, tc := range []struct {
		name   string
		parent string
		want   Kind
	}{
		{"email", "", KindEmail},
		{"E_Mail", "", KindEmail},
		{"contactEmail", "", KindEmail},
		{"billing_email", "", KindEmail},
		{"phone_number", "", KindPhone},
		{"mobilePhone", "", KindPhone},
		{"ip", "", KindIP},
		{"client_ip", "", KindIP},
		{"ipAddress", "", KindIP},
		{"first_name", "", KindName},
		{"lastName", "", KindName},
		{"surname", "", KindName},
		{"name", "traits", KindName},
		{"name", "context_traits", KindName},
		{"address", "", KindPostalAddress},
		{"postal_code", "", KindPostalAddress},
		{"zip", "", KindPostalAddress},
		{"shippingAddress", "", KindPostalAddress},
		{"card_number", "", KindPaymentCard},
		{"creditCard", "", KindPaymentCard},
		// Not PII by their names.
		{"name", "", ""},
		{"name", "properties", ""},
		{"event_name", "", ""},
		{"page_name", "", ""},
		{"zipper", "", ""},
		{"ship", "", ""},
		{"description", "", ""},
		{"city", "", ""},
		{"tip", "", ""},
		{"equip", "", ""},
		{"user_id", "", ""},
		{"message_id", "", ""},
	} {
		got, _ := kindOfName(tc.name, normalise(tc.parent))
		if got != tc.want {
			t.Errorf("kindOfName(%q, parent %q) = %q, want %q", tc.name, tc.parent, got, tc.want)
		}
	}
	if got := words("billingAddress_line1-x.y"); !cmp.Equal(got, []string{"billing", "address", "line1", "x", "y"}) {
		t.Errorf("words = %v", got)
	}
}

// rows decodes JSON rows as a reader of the table would hand them over,
// numbers as json.Number.
func rows(t *testing.T, s ...string) []map[string]any {
	t.Helper()
	out := make([]map[string]any, len(s))
	for i, r := range s {
		dec := json.NewDecoder(strings.NewReader(r))
		dec.UseNumber()
		if err := dec.Decode(&out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestClassify(t *testing.T) {
	defaultTypes := []string{"user_id", "email", "phone", "device_id", "anonymous_id"}
	for _, tc := range []struct {
		name    string
		schema  []Column
		samples []map[string]any
		idTypes []string
		want    []Finding
	}{
		{
			name: "identifies: typed columns and JSON traits",
			schema: []Column{{"message_id", "string"}, {"user_id", "string"}, {"anonymous_id", "string"},
				{"traits", "string"}, {"context", "string"}, {"received_at", "timestamp"}},
			samples: rows(t,
				`{"message_id":"m1","user_id":"u1","anonymous_id":"a1","received_at":"2025-01-02T03:04:05Z",
				  "traits":{"email":"ada@example.com","name":"Ada Lovelace","plan":"pro","age":36,
				            "address":{"street":"12 St James's Square","city":"London","postalCode":"SW1Y 4JH"}},
				  "context":{"ip":"192.0.2.1","library":{"name":"analytics.js","version":"2.1.0"},
				             "traits":{"phone":"+44 20 7946 0958"},
				             "externalIds":[{"id":"CRM-42","type":"crm_id","collection":"users","encoding":"none"}]}}`,
				`{"message_id":"m2","user_id":"u2","anonymous_id":"a2","received_at":"2025-01-02T03:04:06Z",
				  "traits":"{\"email\":\"bob@example.org\",\"name\":\"Bob\"}",
				  "context":{"ip":"2001:db8::7","library":{"name":"analytics-go","version":"3.0.0"}}}`),
			idTypes: append(defaultTypes, "crm_id"),
			want: []Finding{
				{"context", "/externalIds/*/id", KindIdentifier, ByIdentifier},
				{"context", "/ip", KindIP, ByName},
				{"context", "/traits/phone", KindPhone, ByIdentifier},
				{"traits", "/address", KindPostalAddress, ByName},
				{"traits", "/email", KindEmail, ByIdentifier},
				{"traits", "/name", KindName, ByName},
			},
		},
		{
			name:    "columns found by their values only",
			schema:  []Column{{"c1", "string"}, {"c2", "string"}, {"c3", "string"}, {"c4", "bigint"}, {"c5", "string"}, {"c6", "string"}},
			samples: rows(t, `{"c1":"ada@example.com","c2":"10.1.2.3","c3":"+14155552671","c4":4111111111111111,"c5":"221B Baker Street","c6":"hello"}`, `{"c1":"bob@example.org","c2":"","c3":null,"c4":5555555555554444,"c5":"742 Evergreen Terrace","c6":"world"}`),
			want: []Finding{
				{"c1", "", KindEmail, ByValues},
				{"c2", "", KindIP, ByValues},
				{"c3", "", KindPhone, ByValues},
				{"c4", "", KindPaymentCard, ByValues},
				{"c5", "", KindPostalAddress, ByValues},
			},
		},
		{
			name:   "half of the values is enough, fewer is not",
			schema: []Column{{"half", "string"}, {"third", "string"}},
			samples: rows(t,
				`{"half":"ada@example.com","third":"ada@example.com"}`,
				`{"half":"n/a","third":"n/a"}`,
				`{"half":"bob@example.org","third":"x"}`,
				`{"half":"?"}`),
			want: []Finding{{"half", "", KindEmail, ByValues}},
		},
		{
			name:    "numbers are not phone numbers, cards need Luhn",
			schema:  []Column{{"ts", "bigint"}, {"order_id", "string"}, {"amount", "double"}},
			samples: rows(t, `{"ts":1700000000,"order_id":"4111111111111112","amount":12.5}`, `{"ts":1700000100,"order_id":"14155552671","amount":3}`),
			want:    []Finding{},
		},
		{
			name:   "external id mapping: the value column of identifier types",
			schema: []Column{{"segment_id", "string"}, {"external_id_type", "string"}, {"external_id_value", "string"}},
			samples: rows(t,
				`{"segment_id":"p1","external_id_type":"user_id","external_id_value":"u1"}`,
				`{"segment_id":"p1","external_id_type":"email","external_id_value":"ada@example.com"}`,
				`{"segment_id":"p2","external_id_type":"crm_id","external_id_value":"CRM-7"}`),
			idTypes: append(defaultTypes, "crm_id"),
			want: []Finding{
				{"external_id_value", "", KindEmail, ByIdentifier},
				{"external_id_value", "", KindIdentifier, ByIdentifier},
			},
		},
		{
			name:    "a column named after a custom identifier type",
			schema:  []Column{{"loyalty_number", "string"}, {"user_id", "string"}, {"device_id", "string"}},
			idTypes: append(defaultTypes, "loyalty_number"),
			want:    []Finding{{"loyalty_number", "", KindIdentifier, ByIdentifier}},
		},
		{
			name:   "names and events are not PII; page and product names neither",
			schema: []Column{{"event", "string"}, {"name", "string"}, {"properties", "string"}},
			samples: rows(t,
				`{"event":"Order Completed","name":"Checkout","properties":{"products":[{"name":"Widget","sku":"W-1"}],"total":9.5}}`),
			want: []Finding{},
		},
		{
			name:    "arrays inside JSON",
			schema:  []Column{{"properties", "string"}},
			samples: rows(t, `{"properties":{"recipients":[{"email":"a@example.com"},{"email":"b@example.com"}],"cc":["c@example.com","d@example.com"]}}`),
			want: []Finding{
				{"properties", "/cc/*", KindEmail, ByValues},
				{"properties", "/recipients/*/email", KindEmail, ByName},
			},
		},
		{
			name:    "keys needing JSON Pointer escapes",
			schema:  []Column{{"properties", "string"}},
			samples: rows(t, `{"properties":{"a/b":{"email":"x@example.com"},"t~":"192.0.2.9"}}`),
			want: []Finding{
				{"properties", "/a~1b/email", KindEmail, ByName},
				{"properties", "/t~0", KindIP, ByValues},
			},
		},
		{
			name:   "columns by name with no samples",
			schema: []Column{{"email", "string"}, {"first_name", "string"}, {"client_ip", "string"}, {"zip", "string"}, {"card_number", "string"}, {"mobile", "string"}, {"plan", "string"}},
			want: []Finding{
				{"card_number", "", KindPaymentCard, ByName},
				{"client_ip", "", KindIP, ByName},
				{"email", "", KindEmail, ByName},
				{"first_name", "", KindName, ByName},
				{"mobile", "", KindPhone, ByName},
				{"zip", "", KindPostalAddress, ByName},
			},
		},
		{
			name:    "an e-mail column is found by the identity configuration before its name",
			schema:  []Column{{"email", "string"}},
			samples: rows(t, `{"email":"ada@example.com"}`),
			idTypes: defaultTypes,
			want:    []Finding{{"email", "", KindEmail, ByIdentifier}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Classify(tc.schema, tc.samples, tc.idTypes)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Classify (-want +got):\n%s", diff)
			}
		})
	}
}

func TestColumnKinds(t *testing.T) {
	got := ColumnKinds([]Finding{
		{"traits", "/email", KindEmail, ByName},
		{"traits", "/name", KindName, ByName},
		{"email", "", KindEmail, ByName},
		{"ctx", "/a/email", KindEmail, ByName},
		{"ctx", "/b/email", KindEmail, ByValues},
	})
	want := map[string]Kind{"traits": KindMixed, "email": KindEmail, "ctx": KindEmail}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ColumnKinds (-want +got):\n%s", diff)
	}
}

// TestClassifyIsDeterministic: map iteration order must not show.
func TestClassifyIsDeterministic(t *testing.T) {
	schema := []Column{{"traits", "string"}, {"context", "string"}}
	samples := rows(t, `{"traits":{"email":"a@example.com","phone":"+14155552671","ip":"192.0.2.1","first_name":"A"},"context":{"ip":"192.0.2.1"}}`)
	first := Classify(schema, samples, nil)
	for range 20 {
		if diff := cmp.Diff(first, Classify(schema, samples, nil)); diff != "" {
			t.Fatalf("Classify changed between runs:\n%s", diff)
		}
	}
}

// BenchmarkClassify classifies a clean-zone identifies table of 10 columns
// from 200 sample rows with JSON traits and context, the sample the
// lakehouse takes of a table it registers.
func BenchmarkClassify(b *testing.B) {
	schema := []Column{{"message_id", "string"}, {"type", "string"}, {"user_id", "string"}, {"anonymous_id", "string"},
		{"profile_id", "string"}, {"timestamp", "timestamp"}, {"received_at", "timestamp"}, {"source", "string"},
		{"traits", "string"}, {"context", "string"}}
	samples := make([]map[string]any, 200)
	for i := range samples {
		samples[i] = map[string]any{
			"message_id": "m" + strings.Repeat("x", 20), "type": "identify", "user_id": "u1", "anonymous_id": "a1",
			"profile_id": "prof_1", "timestamp": "2025-03-04T05:06:07Z", "received_at": "2025-03-04T05:06:08Z", "source": "web",
			"traits":  `{"email":"ada@example.com","name":"Ada","plan":"pro","age":36,"address":{"street":"12 Main Street","city":"Springfield"}}`,
			"context": `{"ip":"192.0.2.1","library":{"name":"analytics.js","version":"2.1.0"},"userAgent":"Mozilla/5.0","locale":"en-US"}`,
		}
	}
	ids := []string{"user_id", "email", "phone", "device_id", "anonymous_id", "crm_id"}
	b.ReportAllocs()
	for b.Loop() {
		Classify(schema, samples, ids)
	}
}
