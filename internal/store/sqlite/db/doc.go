// Package db is the sqlc-generated query code of the SQLite adapter. Edit
// ../queries.sql, ../provisioner.sql, ../grants.sql or the migrations and
// run go generate ./internal/store; never edit the generated files.
package db
