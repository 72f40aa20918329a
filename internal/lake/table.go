package lake

import "slices"

// Zone names.
const (
	ZoneRaw     = "raw"
	ZoneClean   = "clean"
	ZoneCurated = "curated"
)

// ColumnType is a column's logical type; a Dialect names it.
type ColumnType int

// Column types.
const (
	String ColumnType = iota
	Timestamp
	// JSON is JSON text: an object of properties, traits or context.
	JSON
	BigInt
	Date
)

// Column is one column of a table.
type Column struct {
	Name string
	Type ColumnType
	// ProfileID marks the columns holding profile IDs: an erasure removes
	// the rows whose value it names.
	ProfileID bool
}

// Table is one table of the clean or curated zone, as the catalog lists it.
type Table struct {
	Name string
	Zone string
	// EventType is the event type a clean table holds.
	EventType string
	Columns   []Column
	// Partitioned tables are partitioned by dt (YYYY-MM-DD) and hh (HH),
	// the raw partition they were refined from; others are one object.
	Partitioned bool
}

// eventColumns are the clean tables' columns, the same for every event
// type so that the zone reads as one table where it must (daily counts).
var eventColumns = []Column{
	{Name: "message_id", Type: String},
	{Name: "type", Type: String},
	// event is a track's event name, a page's or screen's name.
	{Name: "event", Type: String},
	{Name: "user_id", Type: String},
	{Name: "anonymous_id", Type: String},
	// profile_id is the profile the event's identifiers resolved to when
	// its partition was refined (NULL when none did yet).
	{Name: "profile_id", Type: String, ProfileID: true},
	// timestamp is when the event happened: its timestamp, or its
	// originalTimestamp corrected for the client's clock skew, as
	// ingestion computes it.
	{Name: "timestamp", Type: Timestamp},
	{Name: "received_at", Type: Timestamp},
	// source is the library that sent the event (context.library.name):
	// the raw zone does not record which of the tenant's sources did.
	{Name: "source", Type: String},
	{Name: "group_id", Type: String},
	{Name: "previous_id", Type: String},
	{Name: "properties", Type: JSON},
	{Name: "traits", Type: JSON},
	{Name: "context", Type: JSON},
}

// Tables is the catalog: every clean and curated table, in order.
var Tables = []Table{
	{Name: "tracks", Zone: ZoneClean, EventType: "track", Columns: eventColumns, Partitioned: true},
	{Name: "identifies", Zone: ZoneClean, EventType: "identify", Columns: eventColumns, Partitioned: true},
	{Name: "pages", Zone: ZoneClean, EventType: "page", Columns: eventColumns, Partitioned: true},
	{Name: "screens", Zone: ZoneClean, EventType: "screen", Columns: eventColumns, Partitioned: true},
	{Name: "groups", Zone: ZoneClean, EventType: "group", Columns: eventColumns, Partitioned: true},
	{Name: "aliases", Zone: ZoneClean, EventType: "alias", Columns: eventColumns, Partitioned: true},

	{Name: "id_graph_updates", Zone: ZoneCurated, Columns: []Column{
		{Name: "profile_id", Type: String, ProfileID: true},
		{Name: "canonical_profile_id", Type: String, ProfileID: true},
		{Name: "triggering_event_id", Type: String},
		{Name: "timestamp", Type: Timestamp},
	}},
	{Name: "id_graph", Zone: ZoneCurated, Columns: []Column{
		{Name: "profile_id", Type: String, ProfileID: true},
		{Name: "canonical_profile_id", Type: String, ProfileID: true},
		{Name: "timestamp", Type: Timestamp},
	}},
	{Name: "external_id_mapping_updates", Zone: ZoneCurated, Columns: []Column{
		{Name: "profile_id", Type: String, ProfileID: true},
		{Name: "external_id_type", Type: String},
		{Name: "external_id_value", Type: String},
		{Name: "triggering_event_id", Type: String},
		{Name: "timestamp", Type: Timestamp},
	}},
	{Name: "external_id_mapping", Zone: ZoneCurated, Columns: []Column{
		{Name: "canonical_profile_id", Type: String, ProfileID: true},
		{Name: "profile_id", Type: String, ProfileID: true},
		{Name: "external_id_type", Type: String},
		{Name: "external_id_value", Type: String},
		{Name: "timestamp", Type: Timestamp},
	}},
	{Name: "profile_traits_updates", Zone: ZoneCurated, Columns: []Column{
		{Name: "profile_id", Type: String, ProfileID: true},
		{Name: "canonical_profile_id", Type: String, ProfileID: true},
		{Name: "triggering_event_id", Type: String},
		{Name: "timestamp", Type: Timestamp},
		{Name: "traits", Type: JSON},
	}},
	{Name: "profile_traits", Zone: ZoneCurated, Columns: []Column{
		{Name: "canonical_profile_id", Type: String, ProfileID: true},
		{Name: "traits", Type: JSON},
		{Name: "timestamp", Type: Timestamp},
	}},
	{Name: "segment_memberships", Zone: ZoneCurated, Columns: []Column{
		{Name: "profile_id", Type: String, ProfileID: true},
		{Name: "segment_id", Type: String},
		{Name: "entered_at", Type: Timestamp},
	}},
	{Name: "daily_event_counts", Zone: ZoneCurated, Columns: []Column{
		{Name: "day", Type: Date},
		{Name: "type", Type: String},
		{Name: "event", Type: String},
		{Name: "events", Type: BigInt},
	}},
}

// TablesIn returns the tables of a zone.
func TablesIn(zone string) []Table {
	var out []Table
	for _, t := range Tables {
		if t.Zone == zone {
			out = append(out, t)
		}
	}
	return out
}

// TableNamed returns the table with the name.
func TableNamed(name string) (Table, bool) {
	i := slices.IndexFunc(Tables, func(t Table) bool { return t.Name == name })
	if i < 0 {
		return Table{}, false
	}
	return Tables[i], true
}

// ProfileColumns returns the names of the table's profile ID columns.
func (t Table) ProfileColumns() []string {
	var out []string
	for _, c := range t.Columns {
		if c.ProfileID {
			out = append(out, c.Name)
		}
	}
	return out
}
