// Package profiles ingests customer events, resolves identities into
// unified profiles and serves them.
//
// Storage is behind two ports: Store, a single-table item store in
// DynamoDB's shape (DynamoDB in AWS mode, SQLite by default), which holds
// profiles, identifiers, events, merges and deduplication records; and
// RawZone, the tenant's immutable raw zone. Sources and their write keys
// live in the control-plane database (SourceStore).
package profiles
