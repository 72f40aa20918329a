package duckdb

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/cairn-cdp/cairn/internal/lake"
)

// QuerierConfig bounds the queries a Querier runs.
type QuerierConfig struct {
	// MemoryLimit is each query's memory limit (DefaultQueryMemory); a
	// query needing more fails rather than spilling to disk.
	MemoryLimit string
	// Threads is each query's threads (DefaultQueryThreads).
	Threads int
	// MaxSQL bounds a statement's length in bytes (DefaultMaxSQL).
	MaxSQL int
}

// Defaults of QuerierConfig.
const (
	DefaultQueryMemory  = "1GB"
	DefaultQueryThreads = 2
	DefaultMaxSQL       = lake.DefaultMaxSQL
)

// Querier runs tenants' queries in a sandbox: each query gets a DuckDB
// database of its own, in memory, where the only relations are views by
// the catalog's names (lake.Tables) over the tenant's own clean and
// curated Parquet files. Before the query is even parsed, the database's
// configuration is set and locked: external access off (no file but the
// tenant's zones, no network, no ATTACH, no COPY, no INSTALL or LOAD),
// the memory limit without spilling, the threads. The statement is checked
// with DuckDB's own parser (json_serialize_sql, then a prepared statement
// and its type) to refuse with a reason what the sandbox would refuse
// anyway, and what it would not say clearly. It is safe for concurrent
// use.
type Querier struct {
	e   *Engine
	cfg QuerierConfig
}

var _ lake.Querier = (*Querier)(nil)

// NewQuerier returns the sandbox over e's zones.
func NewQuerier(e *Engine, cfg QuerierConfig) *Querier {
	cfg.MemoryLimit = cmp.Or(cfg.MemoryLimit, DefaultQueryMemory)
	cfg.Threads = cmp.Or(cfg.Threads, DefaultQueryThreads)
	cfg.MaxSQL = cmp.Or(cfg.MaxSQL, DefaultMaxSQL)
	return &Querier{e: e, cfg: cfg}
}

// sandbox is one query's database and its connection.
type sandbox struct {
	db   *sql.DB
	conn *sql.Conn
	// files are the Parquet files of each table.
	files map[string][]string
}

func (s *sandbox) close() {
	s.conn.Close()
	s.db.Close()
}

// tableFiles returns the Parquet files of every table of the tenant.
func (q *Querier) tableFiles(loc lake.Location) (map[string][]string, error) {
	files, err := q.e.cleanFiles(loc)
	if err != nil {
		return nil, err
	}
	for _, t := range lake.TablesIn(lake.ZoneCurated) {
		if f := q.e.partitionFile(loc, t, ""); fileExists(f) {
			files[t.Name] = []string{f}
		}
	}
	return files, nil
}

// open makes the tenant's sandbox.
func (q *Querier) open(ctx context.Context, loc lake.Location) (*sandbox, error) {
	files, err := q.tableFiles(loc)
	if err != nil {
		return nil, err
	}
	connector, err := duckdb.NewConnector("", nil)
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	s := &sandbox{db: db, conn: conn, files: files}
	// The views read the tenant's zones, and nothing else may be read:
	// the directories the views name are the only ones allowed once
	// external access is off.
	var allowed []string
	for _, b := range []string{loc.CleanBucket, loc.CuratedBucket} {
		allowed = append(allowed, quote(q.e.bucket(loc, b)+string(filepath.Separator)))
	}
	settings := []string{
		"SET autoinstall_known_extensions = false",
		"SET autoload_known_extensions = false",
		"SET TimeZone = 'UTC'",
		fmt.Sprintf("SET threads = %d", q.cfg.Threads),
		"SET memory_limit = " + quote(q.cfg.MemoryLimit),
		// No spilling: a query over its memory limit fails, and writes
		// nothing to disk.
		"SET temp_directory = ''",
		"SET allowed_directories = [" + strings.Join(allowed, ", ") + "]",
		"SET enable_external_access = false",
		"SET lock_configuration = true",
	}
	for _, t := range lake.Tables {
		quoted := make([]string, len(files[t.Name]))
		for i, f := range files[t.Name] {
			quoted[i] = quote(f)
		}
		settings = append(settings, fmt.Sprintf("CREATE VIEW %s AS %s", ident(t.Name), selectFrom(t.Columns, quoted)))
	}
	for _, st := range settings {
		if _, err := conn.ExecContext(ctx, st); err != nil {
			s.close()
			return nil, fmt.Errorf("sandbox: %s: %w", st, err)
		}
	}
	return s, nil
}

// CheckQuery implements lake.Querier.
func (q *Querier) CheckQuery(ctx context.Context, loc lake.Location, query string) error {
	s, err := q.open(ctx, loc)
	if err != nil {
		return err
	}
	defer s.close()
	_, err = q.check(ctx, s, query)
	return err
}

// parsed is json_serialize_sql's answer.
type parsed struct {
	Error      bool   `json:"error"`
	Message    string `json:"error_message"`
	Statements []any  `json:"statements"`
}

// tableFunctions are the table functions a query may call: they make
// rows, and read nothing.
var tableFunctions = []string{"range", "generate_series", "unnest", "json_each", "json_tree"}

// check validates query in s and returns the tables it reads.
func (q *Querier) check(ctx context.Context, s *sandbox, query string) ([]string, error) {
	if len(query) > q.cfg.MaxSQL {
		return nil, lake.Refuse(lake.RefusedTooLong, fmt.Sprintf("The statement is %d bytes long; at most %d are accepted.", len(query), q.cfg.MaxSQL))
	}
	if strings.TrimSpace(query) == "" {
		return nil, lake.Refuse(lake.RefusedSyntax, "The statement is empty.")
	}
	var text string
	if err := s.conn.QueryRowContext(ctx, "SELECT json_serialize_sql(?::VARCHAR)::VARCHAR", query).Scan(&text); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	var p parsed
	if err := json.Unmarshal([]byte(text), &p); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	if p.Error {
		if strings.Contains(p.Message, "Only SELECT statements") {
			return nil, q.refuseKind(s, query)
		}
		return nil, lake.Refuse(lake.RefusedSyntax, "The statement does not parse: "+firstLine(p.Message))
	}
	if len(p.Statements) != 1 {
		return nil, lake.Refuse(lake.RefusedNotSelect, fmt.Sprintf("The text holds %d statements; send one SELECT (or WITH) statement.", len(p.Statements)))
	}
	refs := references{ctes: map[string]bool{}}
	refs.walk(p.Statements[0])
	for _, f := range refs.functions {
		if slices.Contains(tableFunctions, strings.ToLower(f)) {
			continue
		}
		return nil, lake.Refuse(lake.RefusedFileAccess, fmt.Sprintf("The table function %s is not available: a query reads its tenant's tables only, no files and no network.", f))
	}
	var tables []string
	for _, t := range refs.tables {
		switch {
		case t.schema != "" || t.catalog != "":
			return nil, lake.Refuse(lake.RefusedOtherTenant, fmt.Sprintf("%s: name tables alone (%s, not a qualified name): a query sees its tenant's own tables only.", t.String(), t.name))
		case refs.ctes[strings.ToLower(t.name)]:
		case strings.ContainsAny(t.name, "/\\.:"):
			return nil, lake.Refuse(lake.RefusedFileAccess, fmt.Sprintf("%q is not a table: a query reads its tenant's tables only, no files and no network.", t.name))
		default:
			table, ok := lake.TableNamed(strings.ToLower(t.name))
			if !ok {
				return nil, lake.Refuse(lake.RefusedUnknownTable, fmt.Sprintf("There is no table %s; the tables are %s.", t.name, tableNames()))
			}
			if !slices.Contains(tables, table.Name) {
				tables = append(tables, table.Name)
			}
		}
	}
	// Binding it resolves every name and type; the sandbox refuses what
	// the walk above did not see.
	var kind duckdb.StmtType
	err := s.conn.Raw(func(dc any) error {
		stmt, err := dc.(*duckdb.Conn).Prepare(query)
		if err != nil {
			return err
		}
		defer stmt.Close()
		kind, err = stmt.(*duckdb.Stmt).StatementType()
		return err
	})
	if err != nil {
		return nil, refusal(err)
	}
	if kind != duckdb.STATEMENT_TYPE_SELECT {
		return nil, lake.Refuse(lake.RefusedNotSelect, "Only a SELECT (or WITH) statement is accepted.")
	}
	return tables, nil
}

// refuseKind says why a statement that is not a SELECT is refused, by its
// type as DuckDB prepares it (preparing runs nothing), or by its first
// word when it does not prepare.
func (q *Querier) refuseKind(s *sandbox, query string) error {
	kind := duckdb.STATEMENT_TYPE_INVALID
	_ = s.conn.Raw(func(dc any) error {
		stmt, err := dc.(*duckdb.Conn).Prepare(query)
		if err != nil {
			return err
		}
		defer stmt.Close()
		kind, err = stmt.(*duckdb.Stmt).StatementType()
		return err
	})
	word := strings.ToUpper(firstWord(query))
	switch {
	case kind == duckdb.STATEMENT_TYPE_SET || kind == duckdb.STATEMENT_TYPE_VARIABLE_SET || kind == duckdb.STATEMENT_TYPE_PRAGMA ||
		word == "SET" || word == "RESET" || word == "PRAGMA":
		return lake.Refuse(lake.RefusedSettings, "Settings cannot be changed: "+word+" is refused; send one SELECT (or WITH) statement.")
	case kind == duckdb.STATEMENT_TYPE_ATTACH || kind == duckdb.STATEMENT_TYPE_DETACH || word == "ATTACH" || word == "DETACH" || word == "USE":
		return lake.Refuse(lake.RefusedAttach, "Other databases cannot be attached or used: "+word+" is refused; a query sees its tenant's tables only.")
	case kind == duckdb.STATEMENT_TYPE_COPY || kind == duckdb.STATEMENT_TYPE_EXPORT || word == "COPY" || word == "EXPORT" || word == "IMPORT":
		return lake.Refuse(lake.RefusedFileAccess, word+" is refused: a query reads and writes no files; download its result as CSV instead.")
	case kind == duckdb.STATEMENT_TYPE_LOAD || kind == duckdb.STATEMENT_TYPE_EXTENSION || word == "INSTALL" || word == "LOAD" || word == "FORCE" || word == "UPDATE" && strings.Contains(strings.ToUpper(query), "EXTENSION"):
		return lake.Refuse(lake.RefusedExtension, "Extensions cannot be installed or loaded: "+word+" is refused.")
	case slices.Contains([]duckdb.StmtType{duckdb.STATEMENT_TYPE_INSERT, duckdb.STATEMENT_TYPE_UPDATE, duckdb.STATEMENT_TYPE_DELETE,
		duckdb.STATEMENT_TYPE_CREATE, duckdb.STATEMENT_TYPE_CREATE_FUNC, duckdb.STATEMENT_TYPE_ALTER, duckdb.STATEMENT_TYPE_DROP}, kind) ||
		slices.Contains([]string{"INSERT", "UPDATE", "DELETE", "CREATE", "ALTER", "DROP", "TRUNCATE", "MERGE", "REPLACE"}, word):
		return lake.Refuse(lake.RefusedWrite, word+" is a write: queries are read-only; send one SELECT (or WITH) statement.")
	}
	return lake.Refuse(lake.RefusedNotSelect, word+" is refused: send one SELECT (or WITH) statement.")
}

// refusal maps DuckDB's error binding or running a checked query.
func refusal(err error) error {
	var de *duckdb.Error
	if !errors.As(err, &de) {
		return lake.Refuse(lake.RefusedInvalid, "The query is invalid: "+firstLine(err.Error()))
	}
	msg := firstLine(de.Msg)
	switch de.Type {
	case duckdb.ErrorTypePermission:
		return lake.Refuse(lake.RefusedFileAccess, "Refused: a query reads its tenant's tables only, no files and no network ("+msg+").")
	case duckdb.ErrorTypeOutOfMemory:
		return lake.Refuse(lake.RefusedMemoryLimit, "The query ran over its memory limit; aggregate more, or read fewer columns or rows ("+msg+").")
	case duckdb.ErrorTypeCatalog:
		return lake.Refuse(lake.RefusedUnknownTable, msg+" The tables are "+tableNames()+".")
	case duckdb.ErrorTypeParser:
		return lake.Refuse(lake.RefusedSyntax, "The statement does not parse: "+msg)
	}
	return lake.Refuse(lake.RefusedInvalid, "The query is invalid: "+msg)
}

// RunQuery implements lake.Querier.
func (q *Querier) RunQuery(ctx context.Context, in lake.QueryInput, w lake.ResultWriter) (lake.QueryStats, error) {
	var st lake.QueryStats
	start := time.Now()
	s, err := q.open(ctx, in.Location)
	if err != nil {
		return st, err
	}
	defer s.close()
	tables, err := q.check(ctx, s, in.SQL)
	if err != nil {
		return st, err
	}
	for _, t := range tables {
		for _, f := range s.files[t] {
			if info, err := os.Stat(f); err == nil {
				st.BytesScanned += info.Size()
			}
		}
	}
	err = q.run(ctx, s, in.SQL, w, &st)
	st.Elapsed = time.Since(start)
	if err == nil {
		return st, nil
	}
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return st, lake.Refuse(lake.RefusedTimeLimit, "The query ran over its time limit and was stopped; aggregate more, or read fewer rows.")
	case ctx.Err() != nil:
		return st, ctx.Err()
	}
	var de *duckdb.Error
	if errors.As(err, &de) {
		return st, refusal(err)
	}
	return st, err
}

func (q *Querier) run(ctx context.Context, s *sandbox, query string, w lake.ResultWriter, st *lake.QueryStats) error {
	rows, err := s.conn.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	types, err := rows.ColumnTypes()
	if err != nil {
		return err
	}
	cols := make([]lake.ResultColumn, len(types))
	for i, t := range types {
		cols[i] = lake.ResultColumn{Name: t.Name(), Type: t.DatabaseTypeName()}
	}
	if err := w.Columns(cols); err != nil {
		return err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		out := make([]any, len(vals))
		for i, v := range vals {
			out[i] = jsonValue(v)
		}
		if err := w.Row(out); err != nil {
			return err
		}
		st.Rows++
	}
	return rows.Err()
}

// jsonValue converts a value as the driver scans it to one JSON encodes
// as a reader expects: times in RFC 3339, blobs in base64, big numbers and
// decimals as text, maps with text keys.
func jsonValue(v any) any {
	switch x := v.(type) {
	case nil, bool, string, int8, int16, int32, int64, uint8, uint16, uint32, uint64, float32, float64, int, uint:
		return x
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case []byte:
		return base64.StdEncoding.EncodeToString(x)
	case *big.Int:
		return x.String()
	case duckdb.Decimal:
		return x.String()
	case duckdb.UUID:
		return x.String()
	case *duckdb.UUID:
		return x.String()
	case duckdb.Interval:
		return fmt.Sprintf("%d months %d days %d microseconds", x.Months, x.Days, x.Micros)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonValue(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonValue(e)
		}
		return out
	case duckdb.Map:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(jsonValue(k))] = jsonValue(e)
		}
		return out
	}
	return fmt.Sprint(v)
}

// references are the relations a parsed statement names.
type references struct {
	tables    []tableRef
	functions []string
	ctes      map[string]bool
}

type tableRef struct{ catalog, schema, name string }

func (t tableRef) String() string {
	return strings.Join(slices.DeleteFunc([]string{t.catalog, t.schema, t.name}, func(s string) bool { return s == "" }), ".")
}

// walk visits json_serialize_sql's tree: every base table, table function
// and common table expression, wherever it is (subqueries, joins, CTEs,
// set operations).
func (r *references) walk(n any) {
	switch x := n.(type) {
	case []any:
		for _, e := range x {
			r.walk(e)
		}
	case map[string]any:
		switch x["type"] {
		case "BASE_TABLE":
			r.tables = append(r.tables, tableRef{catalog: str(x["catalog_name"]), schema: str(x["schema_name"]), name: str(x["table_name"])})
		case "TABLE_FUNCTION":
			if f, ok := x["function"].(map[string]any); ok {
				r.functions = append(r.functions, str(f["function_name"]))
			}
		}
		if m, ok := x["cte_map"].(map[string]any); ok {
			if entries, ok := m["map"].([]any); ok {
				for _, e := range entries {
					if kv, ok := e.(map[string]any); ok {
						r.ctes[strings.ToLower(str(kv["key"]))] = true
					}
				}
			}
		}
		for _, v := range x {
			r.walk(v)
		}
	}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func tableNames() string {
	names := make([]string, len(lake.Tables))
	for i, t := range lake.Tables {
		names[i] = t.Name
	}
	return strings.Join(names, ", ")
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// firstWord is the statement's first word, after comments.
func firstWord(s string) string {
	for {
		s = strings.TrimSpace(s)
		switch {
		case strings.HasPrefix(s, "--"):
			_, s, _ = strings.Cut(s, "\n")
		case strings.HasPrefix(s, "/*"):
			_, s, _ = strings.Cut(s, "*/")
		default:
			f := strings.FieldsFunc(s, func(r rune) bool { return !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') })
			if len(f) == 0 {
				return ""
			}
			return f[0]
		}
	}
}
