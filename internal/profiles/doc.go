// Package profiles ingests customer events, resolves identities into
// unified profiles and serves them.
//
// Storage is behind two ports: Store, a single-table item store in
// DynamoDB's shape (DynamoDB in AWS mode, SQLite by default), which holds
// profiles, identifiers, events, merges and deduplication records; and
// RawZone, the tenant's immutable raw zone. Sources and their write keys
// live in the control-plane database (SourceStore).
//
// A segment is defined either by its legacy flat conditions (Segment) or
// by a tree of conditions on traits, events, identifiers and other
// segments (Node, ParseDefinition), which Segment.Tree converts the
// former into; evaluating a tree reads only the Facts a caller gathers.
package profiles
