package athena

import (
	"fmt"
	"strings"

	"github.com/cairn-cdp/cairn/internal/lake"
)

// The statements below are the lake's transformations (package lake, one
// definition each, rendered in lake.Athena) wrapped in what Athena needs
// around them: the relations they read as CTEs over the catalog's tables,
// and an UNLOAD into a versioned prefix. They are pure functions of their
// inputs so that a test can parse every one of them.

// rawTable is the Glue table over the raw zone's events/ prefix (JSON).
const rawTable = "raw_events"

// stagePrefix names the Glue tables of the relations Cairn stages
// (the snapshot, the erased-ID filter, the raw objects' arrival times).
const stagePrefix = "cairn_stage_"

// stageTable is the Glue table a staged relation is read from.
func stageTable(rel lake.Relation) string { return stagePrefix + rel.Name }

// qualified names a table of a database.
func qualified(db, table string) string { return ident(db) + "." + ident(table) }

// scope is where a tenant's tables are and which of their rows are its:
// the raw and staging tables are in its own database, the clean and
// curated tables there too (dedicated) or in the pool's database, shared
// by the pool's tenants (pooled), where a statement reads only the rows
// of the tenant's tenant_id partitions.
type scope struct {
	// db is the tenant's own database.
	db string
	// tables is the clean and curated tables' database: db, or the pool's.
	tables string
	// tenant is set when the tables are shared: the tenant whose rows
	// (tenant_id = tenant) a statement reads.
	tenant string
}

// table names a clean or curated table.
func (s scope) table(name string) string { return qualified(s.tables, name) }

// own is the condition that a clean or curated row is the tenant's, ""
// when every row of the tables is.
func (s scope) own() string {
	if s.tenant == "" {
		return ""
	}
	return tenantColumn + " = " + quote(s.tenant)
}

// tenantColumn is the first partition key of a table shared by a pool.
const tenantColumn = "tenant_id"

// where is a WHERE clause of the non-empty conditions, "" for none.
func where(conds ...string) string {
	var set []string
	for _, c := range conds {
		if c != "" {
			set = append(set, c)
		}
	}
	if len(set) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(set, " AND ")
}

// rawColumn is the Glue column a raw field is read from: Glue lowercases
// column names, and the JSON SerDe matches them to the line's keys
// without regard to case.
func rawColumn(f lake.RawField) string { return strings.ToLower(f.JSON) }

// rawCTE reads one raw partition as the raw relation, the line's object as
// raw_object ("$path": s3://bucket/key, as the objects relation stages it).
func rawCTE(db string, p lake.Partition) string {
	sel := make([]string, 0, len(lake.RawFields)+1)
	for _, f := range lake.RawFields {
		sel = append(sel, ident(rawColumn(f))+" AS "+ident(f.Column))
	}
	sel = append(sel, `"$path" AS raw_object`)
	return fmt.Sprintf("raw AS (SELECT %s FROM %s WHERE dt = %s AND hh = %s)",
		strings.Join(sel, ", "), qualified(db, rawTable), quote(p.Date), quote(p.Hour))
}

// stageCTE reads a staged relation of one run, typed: it is staged as
// JSON strings, and its timestamps as ISO 8601 text.
func stageCTE(db string, rel lake.Relation, run string) string {
	sel := make([]string, len(rel.Columns))
	for i, c := range rel.Columns {
		expr := ident(c.Name)
		switch c.Type {
		case lake.Timestamp:
			expr = lake.Athena.ParseTimestamp(expr)
		case lake.BigInt, lake.Date:
			expr = fmt.Sprintf("CAST(%s AS %s)", expr, lake.Athena.Type(c.Type))
		}
		sel[i] = expr + " AS " + ident(c.Name)
	}
	return fmt.Sprintf("%s AS (SELECT %s FROM %s WHERE run = %s)",
		ident(rel.Name), strings.Join(sel, ", "), qualified(db, stageTable(rel)), quote(run))
}

// eventsCTE is the events relation: every clean table's rows (the
// tenant's).
func eventsCTE(s scope) string {
	names := columnNames(lake.RelEvents.Columns)
	var parts []string
	for _, t := range lake.TablesIn(lake.ZoneClean) {
		parts = append(parts, fmt.Sprintf("SELECT %s FROM %s%s", names, s.table(t.Name), where(s.own())))
	}
	return "events AS (" + strings.Join(parts, " UNION ALL ") + ")"
}

// unload wraps a query in an UNLOAD into a prefix as zstd Parquet,
// partitioned by the named trailing columns if any. Athena documents
// UNLOAD over a SELECT: a query with a WITH clause goes in a subquery,
// where Trino takes one.
func unload(query, to string, partitionedBy ...string) string {
	with := "format = 'PARQUET', compression = 'ZSTD'"
	if len(partitionedBy) > 0 {
		quoted := make([]string, len(partitionedBy))
		for i, p := range partitionedBy {
			quoted[i] = quote(p)
		}
		with += ", partitioned_by = ARRAY[" + strings.Join(quoted, ", ") + "]"
	}
	return fmt.Sprintf("UNLOAD (\nSELECT * FROM (\n%s\n) q\n) TO %s WITH (%s)", query, quote(to), with)
}

// eventTypeColumn is the column the refine's UNLOAD partitions by: a copy
// of type, which Hive-style partitioning takes out of the files, so that
// the clean tables keep their own type column.
const eventTypeColumn = "event_type"

// refineSQL is the UNLOAD of one raw partition's clean events into the
// prefix to, a directory per event type: CleanEvents, cut by type as the
// clean tables' transformation says, in one pass over the raw partition.
func refineSQL(db string, p lake.Partition, run, to string) (string, error) {
	clean, err := lake.CleanEvents.Render(lake.Athena)
	if err != nil {
		return "", err
	}
	ctes := []string{
		rawCTE(db, p),
		stageCTE(db, lake.RelObjects, run),
		stageCTE(db, lake.RelErased, run),
		stageCTE(db, lake.RelMembers, run),
		stageCTE(db, lake.RelIdentifiers, run),
		lake.CleanEvents.Output + " AS (\n" + clean + "\n)",
	}
	// Every clean table's transformation selects the same columns from
	// clean_events where type is its event type (TestCleanCut).
	q := fmt.Sprintf("WITH %s\nSELECT %s, type AS %s FROM %s",
		strings.Join(ctes, ",\n"), columnNames(lake.RelEvents.Columns), eventTypeColumn, lake.CleanEvents.Output)
	return unload(q, to, eventTypeColumn), nil
}

// curateSQL is the UNLOAD of one curated table's transformation into to.
func curateSQL(s scope, t lake.Table, run, to string) (string, error) {
	db := s.db
	tr, ok := lake.TransformationFor(t.Name)
	if !ok {
		return "", fmt.Errorf("no transformation for %s", t.Name)
	}
	body, err := tr.Render(lake.Athena)
	if err != nil {
		return "", err
	}
	ctes := []string{
		stageCTE(db, lake.RelMembers, run),
		stageCTE(db, lake.RelIdentifiers, run),
		stageCTE(db, lake.RelMerges, run),
		stageCTE(db, lake.RelMemberships, run),
		stageCTE(db, lake.RelMemberTraits, run),
		eventsCTE(s),
	}
	q := fmt.Sprintf("WITH %s\nSELECT %s FROM (\n%s\n) t", strings.Join(ctes, ",\n"), columnNames(t.Columns), body)
	return unload(q, to), nil
}

// erasedMatch is the condition that a row names an erased ID in one of
// cols.
func erasedMatch(cols []string) string {
	conds := make([]string, len(cols))
	for i, c := range cols {
		conds[i] = ident(c) + " IN (SELECT id FROM erased)"
	}
	return "(" + strings.Join(conds, " OR ") + ")"
}

// cleanIDColumns are the clean tables' columns an erasure matches.
var cleanIDColumns = []string{"message_id", "profile_id"}

// purgeHitsSQL counts, per clean table and partition, the rows naming an
// erased ID: the partitions a purge rewrites.
func purgeHitsSQL(s scope, run string) string {
	var parts []string
	for _, t := range lake.TablesIn(lake.ZoneClean) {
		parts = append(parts, fmt.Sprintf("SELECT %s AS table_name, dt, hh, count(*) AS n FROM %s%s GROUP BY dt, hh",
			quote(t.Name), s.table(t.Name), where(s.own(), erasedMatch(cleanIDColumns))))
	}
	return fmt.Sprintf("WITH %s\n%s", stageCTE(s.db, lake.RelErased, run), strings.Join(parts, "\nUNION ALL\n"))
}

// purgeCuratedSQL counts the rows of each curated table naming an erased
// ID (Curate drops them). tables are the curated tables that exist.
func purgeCuratedSQL(s scope, run string, tables []lake.Table) string {
	var parts []string
	for _, t := range tables {
		parts = append(parts, fmt.Sprintf("SELECT %s AS table_name, count(*) AS n FROM %s%s",
			quote(t.Name), s.table(t.Name), where(s.own(), erasedMatch(t.ProfileColumns()))))
	}
	return fmt.Sprintf("WITH %s\n%s", stageCTE(s.db, lake.RelErased, run), strings.Join(parts, "\nUNION ALL\n"))
}

// purgeRewriteSQL is the UNLOAD of a clean partition without the rows
// naming an erased ID.
func purgeRewriteSQL(s scope, t lake.Table, p lake.Partition, run, to string) string {
	q := fmt.Sprintf("WITH %s\nSELECT %s FROM %s%s",
		stageCTE(s.db, lake.RelErased, run), columnNames(t.Columns), s.table(t.Name),
		where(s.own(), "dt = "+quote(p.Date), "hh = "+quote(p.Hour), "NOT coalesce("+erasedMatch(cleanIDColumns)+", false)"))
	return unload(q, to)
}

// countSQL counts the rows of clean partitions (by dt and hh) and of
// curated tables, a row per table and partition. Counting reads Parquet
// footers only.
func countSQL(s scope, clean []lake.Table, p *lake.Partition, curated []lake.Table) string {
	var parts []string
	for _, t := range clean {
		conds := []string{s.own()}
		if p != nil {
			conds = append(conds, "dt = "+quote(p.Date), "hh = "+quote(p.Hour))
		}
		parts = append(parts, fmt.Sprintf("SELECT %s AS table_name, dt, hh, count(*) AS n FROM %s%s GROUP BY dt, hh",
			quote(t.Name), s.table(t.Name), where(conds...)))
	}
	for _, t := range curated {
		parts = append(parts, fmt.Sprintf("SELECT %s AS table_name, CAST(NULL AS varchar) AS dt, CAST(NULL AS varchar) AS hh, count(*) AS n FROM %s%s",
			quote(t.Name), s.table(t.Name), where(s.own())))
	}
	return strings.Join(parts, "\nUNION ALL\n")
}

func columnNames(cols []lake.Column) string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = ident(c.Name)
	}
	return strings.Join(names, ", ")
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func ident(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// sampleSQL reads up to limit rows of the table: of the partitions of a
// clean table (YYYY-MM-DDTHH), of the whole of a curated one. Athena
// reads only the partitions named and stops at the limit.
func sampleSQL(s scope, t lake.Table, partitions []string, limit int) string {
	q := fmt.Sprintf("SELECT %s FROM %s", columnNames(t.Columns), s.table(t.Name))
	if !t.Partitioned {
		q += where(s.own())
	} else {
		match := make([]string, 0, len(partitions))
		for _, s := range partitions {
			p, err := lake.ParsePartition(s)
			if err != nil {
				continue
			}
			match = append(match, fmt.Sprintf("(dt = %s AND hh = %s)", quote(p.Date), quote(p.Hour)))
		}
		if len(match) == 0 {
			match = []string{"false"}
		}
		if s.own() == "" {
			q += " WHERE " + strings.Join(match, " OR ")
		} else {
			q += where(s.own(), "("+strings.Join(match, " OR ")+")")
		}
	}
	return fmt.Sprintf("%s LIMIT %d", q, limit)
}
