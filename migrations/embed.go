// Package migrations holds Cairn's schema as goose SQL migrations, one
// directory per SQL dialect, embedded so the binary migrates its own
// database.
//
// Version 1 creates Cairn's tables. Version 2 is River's schema: it has no
// file here because it is a goose Go migration registered by each store
// adapter (internal/store/sqlite, internal/store/postgres), so River's
// tables are created inside goose's run, under its lock. Version 3 adds
// the provisioner's placements, pools and stack events; version 4 the
// grants broker's principals, grants and audit events; version 5 the
// profiles service's event sources and their write keys. Version 10 makes
// the audit log the trail of every change: events name their target's type
// and the request that caused them.
//
// sqlc reads these files as the schema of the queries in internal/store.
package migrations

import "embed"

// Postgres holds the PostgreSQL migrations under the directory "postgres".
//
//go:embed postgres/*.sql
var Postgres embed.FS

// RiverVersion is the River schema version that goose migration 2
// installs: River's latest as of River v0.51.2. A River upgrade that brings
// new River migrations needs a new goose Go migration targeting the new
// version; migration 2 keeps this one.
const RiverVersion = 8

// SQLite holds the SQLite migrations under the directory "sqlite".
//
//go:embed sqlite/*.sql
var SQLite embed.FS
