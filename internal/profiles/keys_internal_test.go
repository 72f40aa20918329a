package profiles

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// TestReadMemberDecodesAsEncodingJSON holds readMember (encoding/json/v2)
// to what encoding/json makes of the same member items: those member.item
// writes, with every kind of trait value, and items it would not write
// (a duplicate name, invalid UTF-8), which it reads as leniently.
func TestReadMemberDecodesAsEncodingJSON(t *testing.T) {
	at := time.Date(2026, 12, 7, 1, 2, 3, 456789000, time.UTC)
	written := []memberData{
		{ID: "prof_a", Root: "prof_a", CreatedAt: at, UpdatedAt: at, Single: true},
		{ID: "prof_b", Root: "prof_a", CreatedAt: at, UpdatedAt: at.Add(time.Hour), Event: "m-1",
			Held: map[string]int{"user_id": 1, "email": 2},
			Traits: map[string]traitValue{
				"email":   {V: "b@example.com", At: at},
				"age":     {V: 41.5, At: at},
				"big":     {V: 1e21, At: at},
				"vip":     {V: true, At: at},
				"gone":    {V: nil, At: at},
				"address": {V: map[string]any{"city": "Lyon", "zip": []any{"69001", 2.0}}, At: at},
				"tags":    {V: []any{"a", 1.0, false, nil}, At: at},
				"html":    {V: "<b>&amp;</b> \u2028 é", At: at},
			}},
	}
	var items [][]byte
	for _, d := range written {
		items = append(items, member{memberData: d}.item("ten_x").Data)
	}
	items = append(items,
		[]byte(`{"id":"prof_c","root":"prof_c","id":"prof_d","traits":{"name":{"v":"x","at":"2026-12-07T01:02:03Z"}}}`),
		[]byte("{\"id\":\"prof_e\",\"root\":\"prof_e\",\"traits\":{\"name\":{\"v\":\"bad \xff byte\",\"at\":\"2026-12-07T01:02:03Z\"}}}"),
	)
	for i, data := range items {
		var want memberData
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatalf("item %d: encoding/json: %v", i, err)
		}
		got, err := readMember(Item{PK: "p", Data: data, Version: 7})
		if err != nil {
			t.Fatalf("item %d: readMember: %v", i, err)
		}
		if got.version != 7 || !reflect.DeepEqual(got.memberData, want) {
			t.Errorf("item %d: readMember = %+v (version %d), encoding/json = %+v", i, got.memberData, got.version, want)
		}
	}
}
