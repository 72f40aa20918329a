package lake

import (
	"fmt"
	"strings"
)

// Dialect is what differs between the SQL engines that run the
// transformations: type names and the few functions that are spelled
// differently. Everything else in a transformation is SQL both engines
// read alike (joins, CASE, coalesce, window functions, GROUP BY).
type Dialect interface {
	// Name is the dialect's name ("duckdb", "athena").
	Name() string
	// Type names a column type.
	Type(t ColumnType) string
	// ParseTimestamp reads ISO 8601 text (with a zone or Z) as a UTC
	// timestamp, NULL where it is not one.
	ParseTimestamp(expr string) string
	// JSONString extracts the scalar at a JSONPath ($.a.b) of JSON text
	// as text, NULL when absent.
	JSONString(expr, path string) string
	// JSONObjectAgg aggregates key and JSON-text value expressions into
	// the JSON text of one object.
	JSONObjectAgg(key, value string) string
}

// DuckDB is the embedded default's dialect.
var DuckDB Dialect = duckDialect{}

// Athena is AWS mode's dialect (Athena engine version 3, Trino).
var Athena Dialect = athenaDialect{}

type duckDialect struct{}

func (duckDialect) Name() string { return "duckdb" }

func (duckDialect) Type(t ColumnType) string {
	switch t {
	case Timestamp:
		return "TIMESTAMP"
	case JSON:
		return "JSON"
	case BigInt:
		return "BIGINT"
	case Date:
		return "DATE"
	}
	return "VARCHAR"
}

// The instant's microseconds since the epoch make the UTC wall time
// directly: a cast of the TIMESTAMPTZ to TIMESTAMP would go through the
// session's time zone (ICU), seven times slower.
func (duckDialect) ParseTimestamp(expr string) string {
	return fmt.Sprintf("make_timestamp(epoch_us(TRY_CAST(%s AS TIMESTAMPTZ)))", expr)
}

func (duckDialect) JSONString(expr, path string) string {
	return fmt.Sprintf("json_extract_string(%s, %s)", expr, quote(path))
}

func (duckDialect) JSONObjectAgg(key, value string) string {
	return fmt.Sprintf("CAST(json_group_object(%s, CAST(%s AS JSON)) AS JSON)", key, value)
}

type athenaDialect struct{}

func (athenaDialect) Name() string { return "athena" }

func (athenaDialect) Type(t ColumnType) string {
	switch t {
	case Timestamp:
		return "timestamp"
	case JSON:
		return "varchar" // JSON text; Glue columns of type string
	case BigInt:
		return "bigint"
	case Date:
		return "date"
	}
	return "varchar"
}

func (athenaDialect) ParseTimestamp(expr string) string {
	return fmt.Sprintf("CAST(try(from_iso8601_timestamp(%s)) AT TIME ZONE 'UTC' AS timestamp)", expr)
}

func (athenaDialect) JSONString(expr, path string) string {
	return fmt.Sprintf("json_extract_scalar(%s, %s)", expr, quote(path))
}

func (athenaDialect) JSONObjectAgg(key, value string) string {
	return fmt.Sprintf("json_format(CAST(map_agg(%s, json_parse(%s)) AS JSON))", key, value)
}

// quote renders a SQL string literal.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
