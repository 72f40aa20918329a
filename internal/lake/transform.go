package lake

import (
	"fmt"
	"strings"
	"text/template"
)

// Relation is a named input of the transformations that an engine
// provides: the raw partition, the snapshot of the profile store, the
// erased-ID filter, the clean zone read whole.
type Relation struct {
	Name    string
	Columns []Column
}

// RawField is one field of a raw event line and the column it is read
// into. Objects (properties, traits, context) are read as JSON text.
type RawField struct {
	JSON   string
	Column string
	Type   ColumnType
}

// RawFields are the fields of the raw relation. An engine adds the column
// raw_object, the path of the object a line is in, and provides the
// objects relation (RelObjects) with each object's arrival time.
var RawFields = []RawField{
	{"messageId", "message_id", String},
	{"type", "type", String},
	{"event", "event", String},
	{"name", "name", String},
	{"userId", "user_id", String},
	{"anonymousId", "anonymous_id", String},
	{"groupId", "group_id", String},
	{"previousId", "previous_id", String},
	{"timestamp", "ts", String},
	{"originalTimestamp", "original_ts", String},
	{"sentAt", "sent_at", String},
	{"properties", "properties", JSON},
	{"traits", "traits", JSON},
	{"context", "context", JSON},
}

// The relations the transformations read besides raw.
var (
	// RelObjects are the raw partition's objects and when each was
	// written (RawObject.Modified): its events' received_at.
	RelObjects = Relation{Name: "objects", Columns: []Column{{Name: "raw_object", Type: String}, {Name: "received_at", Type: Timestamp}}}
	// RelErased is the tenant's erased-ID filter: message IDs and profile
	// (member) IDs.
	RelErased = Relation{Name: "erased", Columns: []Column{{Name: "id", Type: String}}}
	// RelMembers are the profile store's members.
	RelMembers = Relation{Name: "members", Columns: []Column{
		{Name: "member_id", Type: String}, {Name: "root", Type: String},
		{Name: "created_at", Type: Timestamp}, {Name: "updated_at", Type: Timestamp}, {Name: "event", Type: String},
	}}
	// RelIdentifiers are the identifiers members hold.
	RelIdentifiers = Relation{Name: "identifiers", Columns: []Column{
		{Name: "member_id", Type: String}, {Name: "type", Type: String}, {Name: "value", Type: String},
		{Name: "first_seen", Type: Timestamp}, {Name: "event", Type: String},
	}}
	// RelMerges are the merges, a row per member moved.
	RelMerges = Relation{Name: "merges", Columns: []Column{
		{Name: "root", Type: String}, {Name: "merged_profile_id", Type: String}, {Name: "member_id", Type: String},
		{Name: "merged_at", Type: Timestamp}, {Name: "event", Type: String},
	}}
	// RelMemberships are the stored segment memberships.
	RelMemberships = Relation{Name: "memberships", Columns: []Column{
		{Name: "profile_id", Type: String}, {Name: "segment_id", Type: String}, {Name: "entered_at", Type: Timestamp},
	}}
	// RelMemberTraits are the members' traits, a row per trait.
	RelMemberTraits = Relation{Name: "member_traits", Columns: []Column{
		{Name: "member_id", Type: String}, {Name: "name", Type: String}, {Name: "value", Type: JSON}, {Name: "set_at", Type: Timestamp},
	}}
	// RelEvents is the whole clean zone as one relation (every clean
	// table's rows).
	RelEvents = Relation{Name: "events", Columns: eventColumns}
)

// Transformation is one SQL definition: a SELECT whose rows are Output,
// a clean or curated table or an intermediate relation (CleanEvents) that
// other transformations read. Its SQL is a text/template rendered for a
// Dialect (Render) with the functions ts, jsonString, jsonObjectAgg and
// type, and the table as .Table.
type Transformation struct {
	Output string
	// Table is the table Output names (zero for an intermediate).
	Table Table
	SQL   string
}

// Render returns the transformation's SQL in the dialect.
func (t Transformation) Render(d Dialect) (string, error) {
	tmpl, err := template.New(t.Output).Funcs(template.FuncMap{
		"ts":            d.ParseTimestamp,
		"jsonString":    d.JSONString,
		"jsonObjectAgg": d.JSONObjectAgg,
		"type":          func(name string) string { return d.Type(typeNamed(name)) },
		"quote":         quote,
	}).Option("missingkey=error").Parse(t.SQL)
	if err != nil {
		return "", fmt.Errorf("transformation %s: %w", t.Output, err)
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, t); err != nil {
		return "", fmt.Errorf("transformation %s: %w", t.Output, err)
	}
	return strings.TrimSpace(b.String()), nil
}

func typeNamed(name string) ColumnType {
	switch name {
	case "timestamp":
		return Timestamp
	case "json":
		return JSON
	case "bigint":
		return BigInt
	case "date":
		return Date
	}
	return String
}

// CleanEvents is the intermediate relation of a raw partition's events,
// refined: typed, deduplicated by message ID (the copy received first
// wins), profiles resolved through the snapshot's identifiers (a user ID
// before an anonymous ID), erased IDs left out. Engines materialize it
// once per partition and cut it into the clean tables.
var CleanEvents = Transformation{Output: "clean_events", SQL: `
WITH received AS (
  SELECT r.*, o.received_at
  FROM raw r JOIN objects o ON o.raw_object = r.raw_object
  WHERE r.message_id IS NOT NULL AND r.type IN ('track', 'identify', 'page', 'screen', 'group', 'alias')
),
copies AS (
  SELECT message_id, count(*) AS n FROM received GROUP BY message_id
),
-- Most events have one copy: only the others pay for ordering theirs.
deduped AS (
  SELECT r.* FROM received r JOIN copies c ON c.message_id = r.message_id WHERE c.n = 1
  UNION ALL
  SELECT message_id, type, event, name, user_id, anonymous_id, group_id, previous_id, ts, original_ts, sent_at,
    properties, traits, context, raw_object, received_at
  FROM (
    SELECT r.*, row_number() OVER (PARTITION BY r.message_id ORDER BY r.received_at, r.raw_object) AS copy
    FROM received r JOIN copies c ON c.message_id = r.message_id WHERE c.n > 1
  ) d
  WHERE copy = 1
),
resolved AS (
  SELECT m.root AS profile_id, i.type AS id_type, i.value AS id_value
  FROM identifiers i JOIN members m ON m.member_id = i.member_id
  WHERE i.type IN ('user_id', 'anonymous_id')
)
SELECT
  r.message_id,
  r.type,
  CASE WHEN r.type IN ('page', 'screen') THEN r.name WHEN r.type = 'track' THEN r.event END AS event,
  r.user_id,
  r.anonymous_id,
  coalesce(u.profile_id, a.profile_id) AS profile_id,
  coalesce({{ts "r.ts"}}, r.received_at - ({{ts "r.sent_at"}} - {{ts "r.original_ts"}}), {{ts "r.original_ts"}}, r.received_at) AS "timestamp",
  r.received_at,
  {{jsonString "r.context" "$.library.name"}} AS source,
  r.group_id,
  r.previous_id,
  r.properties,
  r.traits,
  r.context
FROM deduped r
LEFT JOIN resolved u ON u.id_type = 'user_id' AND u.id_value = r.user_id
LEFT JOIN resolved a ON a.id_type = 'anonymous_id' AND a.id_value = r.anonymous_id
-- Erased IDs are unique: these joins find one row or none.
LEFT JOIN erased em ON em.id = r.message_id
LEFT JOIN erased ep ON ep.id = coalesce(u.profile_id, a.profile_id)
WHERE em.id IS NULL AND ep.id IS NULL
`}

// cleanTable cuts one event type's table out of CleanEvents.
const cleanTable = `
SELECT message_id, type, event, user_id, anonymous_id, profile_id, "timestamp", received_at, source,
  group_id, previous_id, properties, traits, context
FROM clean_events
WHERE type = {{quote .Table.EventType}}
`

// curated are the curated tables' definitions, by table.
var curated = map[string]string{
	// A row per member made (its own canonical profile then) and per
	// member moved by a merge.
	"id_graph_updates": `
SELECT member_id AS profile_id, member_id AS canonical_profile_id, event AS triggering_event_id, created_at AS "timestamp"
FROM members
UNION ALL
SELECT member_id AS profile_id, root AS canonical_profile_id, event AS triggering_event_id, merged_at AS "timestamp"
FROM merges
`,
	"id_graph": `
SELECT member_id AS profile_id, root AS canonical_profile_id, updated_at AS "timestamp"
FROM members
`,
	"external_id_mapping_updates": `
SELECT member_id AS profile_id, type AS external_id_type, value AS external_id_value,
  event AS triggering_event_id, first_seen AS "timestamp"
FROM identifiers
`,
	"external_id_mapping": `
SELECT m.root AS canonical_profile_id, i.member_id AS profile_id, i.type AS external_id_type,
  i.value AS external_id_value, i.first_seen AS "timestamp"
FROM identifiers i JOIN members m ON m.member_id = i.member_id
`,
	// Every identify that set traits, with the profile it belongs to now.
	"profile_traits_updates": `
SELECT e.profile_id, m.root AS canonical_profile_id, e.message_id AS triggering_event_id, e."timestamp", e.traits
FROM events e LEFT JOIN members m ON m.member_id = e.profile_id
WHERE e.type = 'identify' AND e.traits IS NOT NULL AND CAST(e.traits AS {{type "string"}}) <> '{}'
`,
	// A profile's traits: each trait's latest value across its members.
	"profile_traits": `
WITH latest AS (
  SELECT m.root, t.name, t.value, t.set_at,
    row_number() OVER (PARTITION BY m.root, t.name ORDER BY t.set_at DESC, t.member_id) AS n
  FROM member_traits t JOIN members m ON m.member_id = t.member_id
)
SELECT root AS canonical_profile_id, {{jsonObjectAgg "name" "value"}} AS traits, max(set_at) AS "timestamp"
FROM latest
WHERE n = 1
GROUP BY root
`,
	"segment_memberships": `
SELECT profile_id, segment_id, entered_at
FROM memberships
`,
	"daily_event_counts": `
SELECT CAST("timestamp" AS DATE) AS day, type, event, count(*) AS events
FROM events
GROUP BY CAST("timestamp" AS DATE), type, event
`,
}

// Transformations returns every table's transformation, clean then
// curated, in Tables' order. The clean tables read CleanEvents.
func Transformations() []Transformation {
	var out []Transformation
	for _, t := range Tables {
		sql := cleanTable
		if t.Zone == ZoneCurated {
			sql = curated[t.Name]
		}
		out = append(out, Transformation{Output: t.Name, Table: t, SQL: sql})
	}
	return out
}

// TransformationFor returns the table's transformation.
func TransformationFor(table string) (Transformation, bool) {
	for _, t := range Transformations() {
		if t.Output == table {
			return t, true
		}
	}
	return Transformation{}, false
}
