package profiles

import (
	"encoding/json"
	"fmt"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Item layout (single table; every partition key is tenant-prefixed):
//
//	PK                          SK                      what
//	TENANT#t#M#<member>         M                       a member profile: its root, traits and identifier counts (gsi1: TENANT#t#R#<root>, M#<member>)
//	TENANT#t#M#<member>         I#<type>#<value>        an identifier the member holds
//	TENANT#t#M#<member>         E#<time>#<messageId>    an event of the member
//	TENANT#t#M#<root>           G#<time>#<member>       a merge into the root
//	TENANT#t#I#<type>#<value>   I                       which member holds the identifier, or that it is suppressed
//	TENANT#t#D#<messageId>      D                       a processed messageId (expires)
//	TENANT#t#C                  identity                the identity configuration
//	TENANT#t#X#<erasure>        X                       an erasure and its progress
//	TENANT#t#SG                 <segment id>            a segment (IDs sort by creation time)
//	TENANT#t#SC                 count                   how many segments the tenant has
//	TENANT#t#P                  <profile id>            a profile: one item per root, the profile index (count.go)
//	TENANT#t#C                  profile-index           when the profile index was built (count.go)
//	TENANT#t#~purge             <segment>/<segments>    how far an offboarding purge's scan got (DynamoDB only)
//
// and the memberships, aggregates, markers and outbox of audience.go.
//
// A profile is a set of members under one root; its ID is the root's. A
// merge re-points the merged members at the survivor, an unmerge points a
// member back at itself, so every member keeps exactly the identifiers,
// traits and events it brought.
//
// Access patterns (calls are Store calls; on DynamoDB a BatchGet is one
// BatchGetItem per 100 keys and a Transact one TransactWriteItems):
//
//	ingest a batch            Get C; BatchGet D and I of every event; raw zone append;
//	                          events of known members: BatchGet M (identifies only),
//	                          Transact per 100 writes (D if absent, E, M exists or M if version);
//	                          other events: per event, BatchGet M of its holders, Query gsi1
//	                          R#<root> per profile to merge, one Transact (M, I, D, E, G; P of
//	                          a new profile, or of each profile merged away)
//	get a profile             Query M#<id> after "I" (its identifiers and M); Query gsi1 R#<root>;
//	                          BatchGet M and Query M#<member> "I#" for each merged member
//	look up an identifier     Get I, then get a profile
//	list events               get a profile; Query M#<member> "E#" descending, per member
//	list merges               get a profile; Query M#<root> "G#"
//	unmerge                   get a profile; Query M#<member> "G#" per member; Transact
//	                          re-pointing the merged members' M, deleting the G and
//	                          putting the restored profile's P
//	erase                     get a profile; Query M#<member> per member; Get D per event;
//	                          Transact deletes (I or suppressed I first; each M with its P);
//	                          raw zone rewrites
//	count profiles            Get C profile-index; Count P (keys only)
//	segments                  Query SG (list, and the index of what they read, at most
//	                          once a second a replica); Get; make or delete one: Get SC,
//	                          Transact (the segment, SC if its version)
//	a profile's segments      Query PS#<profile>
//	evaluate a batch          BatchGet M of the marked members; BatchGet their PS and A
//	                          items; Transact per 100 writes (see audience.go)
//	compute a segment (job)   Store.Scan of M# (and A#), Query gsi1 SM#<segment>
//	offboard (job only)       Store.DeleteTenant: a key-range delete, or a filtered Scan of
//	                          the pool table on DynamoDB, resumed across job runs
//
// No request path scans.

// KeyPrefix is the prefix of every partition key of the tenant's items,
// "TENANT#<tenant id>#": the one place it is spelled. A pooled tenant's
// stack output key_prefix and the dynamodb:LeadingKeys condition of its
// credentials (package grants) are made with it, so they confine exactly
// the items the stores write.
func KeyPrefix(tenant string) string { return keyPrefix + tenant + "#" }

func memberKey(tenant, member string) Key {
	return Key{PK: KeyPrefix(tenant) + "M#" + member, SK: "M"}
}

func memberIdentKey(tenant, member string, id Identifier) Key {
	return Key{PK: KeyPrefix(tenant) + "M#" + member, SK: "I#" + id.Type + "#" + id.Value}
}

func indexKey(tenant string, id Identifier) Key {
	return Key{PK: KeyPrefix(tenant) + "I#" + id.Type + "#" + id.Value, SK: "I"}
}

func dedupKey(tenant, messageID string) Key {
	return Key{PK: KeyPrefix(tenant) + "D#" + messageID, SK: "D"}
}

func configKey(tenant string) Key { return Key{PK: KeyPrefix(tenant) + "C", SK: "identity"} }

func rootIndex(tenant, root string) string { return KeyPrefix(tenant) + "R#" + root }

// sortTime formats a time so that sort keys order by it.
func sortTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000000Z") }

func eventSK(t time.Time, messageID string) string { return "E#" + sortTime(t) + "#" + messageID }

// traitValue is one trait as a member set it.
type traitValue struct {
	V  any       `json:"v"`
	At time.Time `json:"at"`
}

// memberData is a member profile.
type memberData struct {
	ID        string                `json:"id"`
	Root      string                `json:"root"`
	CreatedAt time.Time             `json:"created_at"`
	UpdatedAt time.Time             `json:"updated_at"`
	Traits    map[string]traitValue `json:"traits,omitempty"`
	// Held counts the identifiers the member holds, by type, for the
	// limit checks: a member gains identifiers only in the transaction
	// that writes it (claim), and never loses one but with all of itself
	// (erasure).
	Held map[string]int `json:"held,omitempty"`
	// Single is set on a member made as a profile of its own, and cleared
	// on a root when another profile merges into it: a root with Single
	// has no other member, so its profile is this item alone (segment
	// evaluation reads no more). Members made before the field existed
	// lack it, which is only slower.
	Single bool `json:"single,omitempty"`
	// Event is the messageId of the event that made the member (the
	// lake's id_graph_updates name it); empty on members made before.
	Event string `json:"event,omitempty"`
}

// member is a member item as read, with its version.
type member struct {
	memberData
	version int64
}

func (m member) item(tenant string) Item {
	d, _ := json.Marshal(m.memberData)
	k := memberKey(tenant, m.ID)
	return Item{PK: k.PK, SK: k.SK, GSI1PK: rootIndex(tenant, m.Root), GSI1SK: "M#" + m.ID, Data: d}
}

// readMember decodes a member item. Every batch of known customers with
// segments reads each one's: encoding/json/v2 decodes what encoding/json
// wrote, a few times faster, and as leniently (any duplicate name, or
// invalid UTF-8, as an item written by hand might hold).
func readMember(it Item) (member, error) {
	var m member
	if err := jsonv2.Unmarshal(it.Data, &m.memberData, memberDecoding); err != nil {
		return m, fmt.Errorf("member item %s: %w", it.PK, err)
	}
	m.version = it.Version
	return m, nil
}

var memberDecoding = jsonv2.JoinOptions(jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))

// identData is an identifier a member holds.
type identData struct {
	Type      string    `json:"type"`
	Value     string    `json:"value"`
	FirstSeen time.Time `json:"first_seen"`
}

// indexData says which member holds an identifier, or that an erasure
// suppressed it: events naming it are dropped, and no member holds it.
type indexData struct {
	Member     string    `json:"member,omitempty"`
	FirstSeen  time.Time `json:"first_seen"`
	Suppressed bool      `json:"suppressed,omitempty"`
	// Event is the messageId of the event that gave the member the
	// identifier; empty on identifiers claimed before it was kept.
	Event string `json:"event,omitempty"`
}

// suppressedIndex is the index item of a suppressed identifier.
func suppressedIndex(tenant string, id Identifier, at time.Time) Item {
	k := indexKey(tenant, id)
	d, _ := json.Marshal(indexData{FirstSeen: at, Suppressed: true})
	return Item{PK: k.PK, SK: k.SK, Data: d}
}

// isSuppressed reports whether an index item marks a suppressed identifier.
func isSuppressed(it Item) bool {
	var d indexData
	return json.Unmarshal(it.Data, &d) == nil && d.Suppressed
}

// eventData is an event as the store keeps it.
type eventData struct {
	MessageID string          `json:"message_id"`
	Type      string          `json:"type"`
	Name      string          `json:"name,omitempty"`
	Timestamp time.Time       `json:"timestamp"`
	Object    string          `json:"object,omitempty"`
	Raw       json.RawMessage `json:"raw"`
}

// mergeData records a merge into a root.
type mergeData struct {
	MergedProfileID string    `json:"merged_profile_id"`
	Members         []string  `json:"members"`
	At              time.Time `json:"at"`
	Identifier      string    `json:"identifier"`
	// Event is the messageId of the event that merged (empty on merges
	// recorded before it was kept).
	Event string `json:"event,omitempty"`
}
