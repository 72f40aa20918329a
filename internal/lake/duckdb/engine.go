// Package duckdb is the embedded default's lake engine: DuckDB, in
// process, over the local zones the local provisioning engine lays out
// (<Root>/<region>/buckets/<bucket>/). It renders the lake's
// transformations in lake.DuckDB, reads the raw zone's gzip NDJSON
// objects directly and writes zstd-compressed Parquet files, each written
// beside its place and renamed into it, so a table's partition is either
// the old file or the new one.
//
// DuckDB comes in through cgo (github.com/duckdb/duckdb-go/v2 and its
// bundled static library); only this package imports it.
package duckdb

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/cairn-cdp/cairn/internal/ids"
	"github.com/cairn-cdp/cairn/internal/lake"
	"github.com/cairn-cdp/cairn/internal/profiles"
)

// Config configures an Engine.
type Config struct {
	// Root is the local engine's root directory (the data directory's
	// zones/).
	Root string
	// Threads bounds DuckDB's threads (0: one per core).
	Threads int
	// MemoryLimit bounds DuckDB's memory, e.g. "2GB" ("": DuckDB's
	// default, 80% of the machine's).
	MemoryLimit string
	// Logger receives, at debug level, how long each step of a refine
	// took (where the time goes). Default: discard.
	Logger *slog.Logger
}

// Engine is the DuckDB lake engine. It is safe for concurrent use: each
// call works on a connection of its own.
type Engine struct {
	root string
	db   *sql.DB
	log  *slog.Logger
}

var _ lake.Engine = (*Engine)(nil)

// New opens an in-memory DuckDB database. Close it when done.
func New(cfg Config) (*Engine, error) {
	if cfg.Root == "" {
		return nil, errors.New("duckdb engine: Root must be set")
	}
	settings := []string{
		// Only what is linked in: nothing is downloaded or loaded from
		// disk at run time.
		"SET autoinstall_known_extensions = false",
		"SET autoload_known_extensions = false",
		"SET TimeZone = 'UTC'",
		// Spills and DuckDB's own files under Root: a container image has
		// no home directory, and a read-only working directory.
		"SET home_directory = " + quote(cfg.Root),
		"SET temp_directory = " + quote(filepath.Join(cfg.Root, ".duckdb-tmp")),
	}
	if cfg.Threads > 0 {
		settings = append(settings, fmt.Sprintf("SET threads = %d", cfg.Threads))
	}
	if cfg.MemoryLimit != "" {
		settings = append(settings, "SET memory_limit = "+quote(cfg.MemoryLimit))
	}
	connector, err := duckdb.NewConnector("", func(execer driver.ExecerContext) error {
		for _, s := range settings {
			if _, err := execer.ExecContext(context.Background(), s, nil); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("duckdb engine: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Engine{root: cfg.Root, db: sql.OpenDB(connector), log: log}, nil
}

// Close closes the database.
func (e *Engine) Close() error { return e.db.Close() }

// DB returns the engine's database (tests, the local catalog).
func (e *Engine) DB() *sql.DB { return e.db }

// Dialect implements lake.Engine.
func (e *Engine) Dialect() lake.Dialect { return lake.DuckDB }

func (e *Engine) bucket(loc lake.Location, bucket string) string {
	return filepath.Join(e.root, loc.Region, "buckets", bucket, filepath.FromSlash(loc.Prefix))
}

// rawDir is where the tenant's raw partitions are.
func (e *Engine) rawDir(loc lake.Location) string {
	return filepath.Join(e.bucket(loc, loc.RawBucket), "events")
}

// TableDir returns the directory of a table of the tenant's zones.
func (e *Engine) TableDir(loc lake.Location, t lake.Table) string {
	b := loc.CleanBucket
	if t.Zone == lake.ZoneCurated {
		b = loc.CuratedBucket
	}
	return filepath.Join(e.bucket(loc, b), t.Name)
}

func (e *Engine) partitionFile(loc lake.Location, t lake.Table, p string) string {
	if !t.Partitioned {
		return filepath.Join(e.TableDir(loc, t), "data.parquet")
	}
	pp, _ := lake.ParsePartition(p)
	return filepath.Join(e.TableDir(loc, t), "dt="+pp.Date, "hh="+pp.Hour, "data.parquet")
}

// RawPartitions implements lake.Engine.
func (e *Engine) RawPartitions(ctx context.Context, loc lake.Location) ([]lake.RawPartition, error) {
	dir := e.rawDir(loc)
	days, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("raw partitions: %w", err)
	}
	var out []lake.RawPartition
	for _, d := range days {
		date, ok := strings.CutPrefix(d.Name(), "dt=")
		if !ok || !d.IsDir() {
			continue
		}
		hours, err := os.ReadDir(filepath.Join(dir, d.Name()))
		if err != nil {
			return nil, fmt.Errorf("raw partitions: %w", err)
		}
		for _, h := range hours {
			hour, ok := strings.CutPrefix(h.Name(), "hh=")
			if !ok || !h.IsDir() {
				continue
			}
			p, err := lake.ParsePartition(date + "T" + hour)
			if err != nil {
				continue
			}
			objects, err := os.ReadDir(filepath.Join(dir, d.Name(), h.Name()))
			if err != nil {
				return nil, fmt.Errorf("raw partitions: %w", err)
			}
			rp := lake.RawPartition{Partition: p}
			for _, o := range objects {
				if !strings.HasSuffix(o.Name(), ".ndjson.gz") {
					continue // a rewrite's temporary file
				}
				info, err := o.Info()
				if errors.Is(err, fs.ErrNotExist) {
					continue // erased meanwhile
				}
				if err != nil {
					return nil, fmt.Errorf("raw partitions: %w", err)
				}
				rp.Objects = append(rp.Objects, lake.RawObject{Key: path.Join("events", d.Name(), h.Name(), o.Name()), Size: info.Size(), Modified: info.ModTime().UTC()})
			}
			if len(rp.Objects) > 0 {
				out = append(out, rp)
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b lake.RawPartition) int { return cmp.Compare(a.Partition.String(), b.Partition.String()) })
	return out, nil
}

// session is one connection with the relations a call stages.
type session struct {
	e    *Engine
	conn *sql.Conn
}

func (e *Engine) session(ctx context.Context) (*session, error) {
	conn, err := e.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("duckdb: %w", err)
	}
	return &session{e: e, conn: conn}, nil
}

// close drops what the session staged (temporary relations live as long
// as the pooled connection) and returns the connection.
func (s *session) close() {
	ctx := context.Background()
	rows, err := s.conn.QueryContext(ctx, "SELECT table_name, table_type FROM information_schema.tables WHERE table_catalog = 'temp'")
	if err == nil {
		var drops []string
		for rows.Next() {
			var name, typ string
			if rows.Scan(&name, &typ) == nil {
				kind := "TABLE"
				if typ == "VIEW" {
					kind = "VIEW"
				}
				drops = append(drops, fmt.Sprintf("DROP %s IF EXISTS temp.%s", kind, ident(name)))
			}
		}
		rows.Close()
		slices.Reverse(drops)
		for _, d := range drops {
			_, _ = s.conn.ExecContext(ctx, d)
		}
	}
	s.conn.Close()
}

func (s *session) exec(ctx context.Context, query string) (int64, error) {
	res, err := s.conn.ExecContext(ctx, query)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// stage makes a temporary table of the relation and appends rows to it.
func (s *session) stage(ctx context.Context, rel lake.Relation, rows func(add func(...driver.Value) error) error) error {
	cols := make([]string, len(rel.Columns))
	for i, c := range rel.Columns {
		typ := lake.DuckDB.Type(c.Type)
		if c.Type == lake.JSON {
			// JSON text as appended: the appender would encode a JSON
			// column's value as JSON again.
			typ = "VARCHAR"
		}
		cols[i] = ident(c.Name) + " " + typ
	}
	if _, err := s.exec(ctx, fmt.Sprintf("CREATE OR REPLACE TEMP TABLE %s (%s)", ident(rel.Name), strings.Join(cols, ", "))); err != nil {
		return fmt.Errorf("stage %s: %w", rel.Name, err)
	}
	return s.conn.Raw(func(dc any) error {
		app, err := duckdb.NewAppender(dc.(driver.Conn), "temp", "main", rel.Name)
		if err != nil {
			return fmt.Errorf("stage %s: %w", rel.Name, err)
		}
		if err := rows(app.AppendRow); err != nil {
			app.Close()
			return fmt.Errorf("stage %s: %w", rel.Name, err)
		}
		if err := app.Close(); err != nil {
			return fmt.Errorf("stage %s: %w", rel.Name, err)
		}
		return nil
	})
}

// nullable turns "" into NULL.
func nullable(s string) driver.Value {
	if s == "" {
		return nil
	}
	return s
}

func timeOrNull(t time.Time) driver.Value {
	if t.IsZero() {
		return nil
	}
	return t.UTC()
}

// stageIdentity stages members and identifiers.
func (s *session) stageIdentity(ctx context.Context, snap profiles.Snapshot) error {
	if err := s.stage(ctx, lake.RelMembers, func(add func(...driver.Value) error) error {
		for _, m := range snap.Members {
			if err := add(m.ID, m.Root, timeOrNull(m.CreatedAt), timeOrNull(m.UpdatedAt), nullable(m.Event)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	return s.stage(ctx, lake.RelIdentifiers, func(add func(...driver.Value) error) error {
		for _, id := range snap.Identifiers {
			if err := add(id.Member, id.Type, id.Value, timeOrNull(id.FirstSeen), nullable(id.Event)); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *session) stageErased(ctx context.Context, erased []string) error {
	return s.stage(ctx, lake.RelErased, func(add func(...driver.Value) error) error {
		for _, id := range erased {
			if err := add(id); err != nil {
				return err
			}
		}
		return nil
	})
}

// rawView makes the raw relation over the partition's objects, and the
// objects relation of when each was written.
func (s *session) rawView(ctx context.Context, loc lake.Location, rp lake.RawPartition) error {
	files := make([]string, len(rp.Objects))
	base := s.e.bucket(loc, loc.RawBucket)
	for i, o := range rp.Objects {
		files[i] = quote(filepath.Join(base, filepath.FromSlash(o.Key)))
	}
	if err := s.stage(ctx, lake.RelObjects, func(add func(...driver.Value) error) error {
		for _, o := range rp.Objects {
			// The path as read_json's filename column names it.
			if err := add(filepath.Join(base, filepath.FromSlash(o.Key)), timeOrNull(o.Modified)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	var cols, sel []string
	for _, f := range lake.RawFields {
		typ := "VARCHAR"
		if f.Type == lake.JSON {
			typ = "JSON"
		}
		cols = append(cols, fmt.Sprintf("%s: %s", quote(f.JSON), quote(typ)))
		sel = append(sel, fmt.Sprintf("%s AS %s", ident(f.JSON), ident(f.Column)))
	}
	sel = append(sel, "filename AS raw_object")
	// A view: DuckDB materializes the transformation's received CTE, the
	// one that reads it, once (a table of it too would copy it twice).
	q := fmt.Sprintf(`CREATE OR REPLACE TEMP VIEW raw AS SELECT %s FROM read_json([%s], format = 'newline_delimited', compression = 'gzip', columns = {%s}, filename = true, ignore_errors = true, maximum_object_size = 1048576)`,
		strings.Join(sel, ", "), strings.Join(files, ", "), strings.Join(cols, ", "))
	if _, err := s.exec(ctx, q); err != nil {
		return fmt.Errorf("raw partition %s: %w", rp.Partition, err)
	}
	return nil
}

// write runs a table's transformation into its file (a partition's, or
// the table's), replacing it; a result with no row removes it.
func (s *session) write(ctx context.Context, t lake.Table, query, file string) (lake.TableStats, error) {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return lake.TableStats{}, err
	}
	tmp := file + "." + ids.Random(8) + ".tmp"
	n, err := s.exec(ctx, fmt.Sprintf("COPY (%s) TO %s (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)", query, quote(tmp)))
	if err != nil {
		os.Remove(tmp)
		return lake.TableStats{}, fmt.Errorf("table %s: %w", t.Name, err)
	}
	if n == 0 {
		os.Remove(tmp)
		if err := os.Remove(file); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return lake.TableStats{}, err
		}
		return lake.TableStats{Table: t.Name}, nil
	}
	if err := syncFile(tmp); err != nil {
		os.Remove(tmp)
		return lake.TableStats{}, err
	}
	if err := os.Rename(tmp, file); err != nil {
		os.Remove(tmp)
		return lake.TableStats{}, err
	}
	if err := syncDir(filepath.Dir(file)); err != nil {
		return lake.TableStats{}, err
	}
	info, err := os.Stat(file)
	if err != nil {
		return lake.TableStats{}, err
	}
	return lake.TableStats{Table: t.Name, Rows: n, Bytes: info.Size()}, nil
}

// place moves the Parquet file a partitioned COPY wrote in dir into file,
// replacing it (a directory of several files is written as one first),
// or removes file when dir holds none.
func (s *session) place(ctx context.Context, t lake.Table, dir, file string) (lake.TableStats, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.parquet"))
	if err != nil {
		return lake.TableStats{}, err
	}
	switch len(files) {
	case 0:
		if err := os.Remove(file); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return lake.TableStats{}, err
		}
		return lake.TableStats{Table: t.Name}, nil
	case 1:
	default:
		quoted := make([]string, len(files))
		for i, f := range files {
			quoted[i] = quote(f)
		}
		return s.write(ctx, t, selectFrom(t.Columns, quoted), file)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return lake.TableStats{}, err
	}
	if err := syncFile(files[0]); err != nil {
		return lake.TableStats{}, err
	}
	if err := os.Rename(files[0], file); err != nil {
		return lake.TableStats{}, err
	}
	if err := syncDir(filepath.Dir(file)); err != nil {
		return lake.TableStats{}, err
	}
	info, err := os.Stat(file)
	if err != nil {
		return lake.TableStats{}, err
	}
	var n int64
	if err := s.conn.QueryRowContext(ctx, "SELECT coalesce(sum(num_rows), 0) FROM parquet_file_metadata("+quote(file)+")").Scan(&n); err != nil {
		return lake.TableStats{}, fmt.Errorf("table %s: %w", t.Name, err)
	}
	return lake.TableStats{Table: t.Name, Rows: n, Bytes: info.Size()}, nil
}

// Refine implements lake.Engine.
func (e *Engine) Refine(ctx context.Context, in lake.RefineInput) ([]lake.TableStats, error) {
	s, err := e.session(ctx)
	if err != nil {
		return nil, err
	}
	defer s.close()
	steps := []any{"partition", in.Partition.Partition.String()}
	lap := time.Now()
	step := func(name string) {
		steps = append(steps, name, time.Since(lap))
		lap = time.Now()
	}
	if err := e.register(in.Location, lake.TablesIn(lake.ZoneClean)...); err != nil {
		return nil, err
	}
	if err := s.stageIdentity(ctx, in.Snapshot); err != nil {
		return nil, err
	}
	if err := s.stageErased(ctx, in.Erased); err != nil {
		return nil, err
	}
	step("stage")
	if err := s.rawView(ctx, in.Location, in.Partition); err != nil {
		return nil, err
	}
	q, err := lake.CleanEvents.Render(lake.DuckDB)
	if err != nil {
		return nil, err
	}
	// The clean tables are CleanEvents cut by type (their transformations
	// say so, one each): DuckDB cuts it in the one pass that writes it,
	// a file per type, each then moved into its table's partition.
	p := in.Partition.Partition.String()
	// Beside the tables, on their file system, so that a file moves
	// into place with a rename.
	dir := filepath.Join(e.bucket(in.Location, in.Location.CleanBucket), ".refine-"+ids.Random(8))
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return nil, err
	}
	removeStale(filepath.Dir(dir))
	defer os.RemoveAll(dir)
	names := make([]string, len(lake.RelEvents.Columns))
	for i, c := range lake.RelEvents.Columns {
		names[i] = ident(c.Name)
	}
	if _, err := s.exec(ctx, fmt.Sprintf("COPY (SELECT %s FROM (%s) c) TO %s (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (type), WRITE_PARTITION_COLUMNS true, FILENAME_PATTERN 'data')",
		strings.Join(names, ", "), q, quote(dir))); err != nil {
		return nil, fmt.Errorf("refine %s: %w", p, err)
	}
	step("refine") // read, transform and write: one pass
	defer func() { e.log.DebugContext(ctx, "lake refine steps", steps...) }()
	var out []lake.TableStats
	for _, t := range lake.TablesIn(lake.ZoneClean) {
		st, err := s.place(ctx, t, filepath.Join(dir, "type="+t.EventType), e.partitionFile(in.Location, t, p))
		if err != nil {
			return nil, fmt.Errorf("refine %s: %w", p, err)
		}
		st.Partition = p
		out = append(out, st)
	}
	step("place")
	return out, nil
}

// removeStale removes the working directories of refines that a crash
// cut short, an hour old or more (no refine takes that long).
func removeStale(bucket string) {
	stale, _ := filepath.Glob(filepath.Join(bucket, ".refine-*"))
	for _, d := range stale {
		if info, err := os.Stat(d); err == nil && time.Since(info.ModTime()) > time.Hour {
			_ = os.RemoveAll(d)
		}
	}
}

// ScanRaw reads every field of a raw partition's lines, as Refine does,
// and counts them: the floor under a refine's cost, which benchmarks
// report beside it.
func (e *Engine) ScanRaw(ctx context.Context, loc lake.Location, rp lake.RawPartition) (int64, error) {
	s, err := e.session(ctx)
	if err != nil {
		return 0, err
	}
	defer s.close()
	if err := s.rawView(ctx, loc, rp); err != nil {
		return 0, err
	}
	var fields []string
	for _, f := range lake.RawFields {
		fields = append(fields, fmt.Sprintf("max(length(CAST(%s AS VARCHAR)))", ident(f.Column)))
	}
	var n int64
	var sink any
	err = s.conn.QueryRowContext(ctx, fmt.Sprintf("SELECT count(*), greatest(%s) FROM raw", strings.Join(fields, ", "))).Scan(&n, &sink)
	return n, err
}

// Run executes one transformation of a clean table over a raw partition,
// as its own SQL says (CleanEvents materialized, then the table's
// SELECT), and returns its rows: what Refine's one pass must write into
// the table. Tests compare the two.
func (e *Engine) Run(ctx context.Context, in lake.RefineInput, tr lake.Transformation) ([][]any, error) {
	s, err := e.session(ctx)
	if err != nil {
		return nil, err
	}
	defer s.close()
	if err := s.stageIdentity(ctx, in.Snapshot); err != nil {
		return nil, err
	}
	if err := s.stageErased(ctx, in.Erased); err != nil {
		return nil, err
	}
	if err := s.rawView(ctx, in.Location, in.Partition); err != nil {
		return nil, err
	}
	q, err := lake.CleanEvents.Render(lake.DuckDB)
	if err != nil {
		return nil, err
	}
	if _, err := s.exec(ctx, "CREATE OR REPLACE TEMP TABLE clean_events AS "+q); err != nil {
		return nil, err
	}
	if q, err = tr.Render(lake.DuckDB); err != nil {
		return nil, err
	}
	return scanAll(s.conn.QueryContext(ctx, q))
}

// scanAll reads every row of a query's result.
func scanAll(rows *sql.Rows, err error) ([][]any, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out [][]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		out = append(out, vals)
	}
	return out, rows.Err()
}

// cleanFiles returns the clean zone's partition files, by table.
func (e *Engine) cleanFiles(loc lake.Location) (map[string][]string, error) {
	out := map[string][]string{}
	for _, t := range lake.TablesIn(lake.ZoneClean) {
		files, err := filepath.Glob(filepath.Join(e.TableDir(loc, t), "dt=*", "hh=*", "data.parquet"))
		if err != nil {
			return nil, err
		}
		out[t.Name] = files
	}
	return out, nil
}

// eventsView makes the events relation: the whole clean zone.
func (s *session) eventsView(ctx context.Context, loc lake.Location) error {
	byTable, err := s.e.cleanFiles(loc)
	if err != nil {
		return err
	}
	var files []string
	for _, t := range lake.TablesIn(lake.ZoneClean) {
		for _, f := range byTable[t.Name] {
			files = append(files, quote(f))
		}
	}
	q := "CREATE OR REPLACE TEMP VIEW events AS " + selectFrom(lake.RelEvents.Columns, files)
	if _, err := s.exec(ctx, q); err != nil {
		return fmt.Errorf("events: %w", err)
	}
	return nil
}

// selectFrom reads columns from Parquet files, or is an empty relation of
// those columns when there are none.
func selectFrom(cols []lake.Column, files []string) string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = ident(c.Name)
	}
	if len(files) == 0 {
		typed := make([]string, len(cols))
		for i, c := range cols {
			typed[i] = fmt.Sprintf("CAST(NULL AS %s) AS %s", lake.DuckDB.Type(c.Type), ident(c.Name))
		}
		return "SELECT " + strings.Join(typed, ", ") + " WHERE false"
	}
	return fmt.Sprintf("SELECT %s FROM read_parquet([%s])", strings.Join(names, ", "), strings.Join(files, ", "))
}

// Curate implements lake.Engine.
func (e *Engine) Curate(ctx context.Context, in lake.CurateInput) ([]lake.TableStats, error) {
	s, err := e.session(ctx)
	if err != nil {
		return nil, err
	}
	defer s.close()
	if err := e.register(in.Location, lake.TablesIn(lake.ZoneCurated)...); err != nil {
		return nil, err
	}
	snap := in.Snapshot
	if err := s.stageIdentity(ctx, snap); err != nil {
		return nil, err
	}
	if err := s.stage(ctx, lake.RelMerges, func(add func(...driver.Value) error) error {
		for _, g := range snap.Merges {
			for _, m := range g.Members {
				if err := add(g.Root, g.MergedProfileID, m, timeOrNull(g.At), nullable(g.Event)); err != nil {
					return err
				}
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if err := s.stage(ctx, lake.RelMemberships, func(add func(...driver.Value) error) error {
		for _, m := range snap.Memberships {
			if err := add(m.ProfileID, m.SegmentID, timeOrNull(m.EnteredAt)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if err := s.stage(ctx, lake.RelMemberTraits, func(add func(...driver.Value) error) error {
		for _, m := range snap.Members {
			for name, v := range m.Traits {
				j, err := json.Marshal(v.Value)
				if err != nil {
					return fmt.Errorf("member %s trait %s: %w", m.ID, name, err)
				}
				if err := add(m.ID, name, string(j), timeOrNull(v.At)); err != nil {
					return err
				}
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if err := s.eventsView(ctx, in.Location); err != nil {
		return nil, err
	}
	var out []lake.TableStats
	for _, t := range lake.TablesIn(lake.ZoneCurated) {
		tr, _ := lake.TransformationFor(t.Name)
		q, err := tr.Render(lake.DuckDB)
		if err != nil {
			return nil, err
		}
		st, err := s.write(ctx, t, q, e.partitionFile(in.Location, t, ""))
		if err != nil {
			return nil, fmt.Errorf("curate: %w", err)
		}
		out = append(out, st)
	}
	return out, nil
}

// Purge implements lake.Engine.
func (e *Engine) Purge(ctx context.Context, in lake.PurgeInput) ([]lake.PurgeResult, []lake.TableStats, error) {
	s, err := e.session(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer s.close()
	if err := s.stageErased(ctx, in.IDs); err != nil {
		return nil, nil, err
	}
	clean := lake.PurgeResult{Zone: lake.ZoneClean}
	var rewritten []lake.TableStats
	byTable, err := e.cleanFiles(in.Location)
	if err != nil {
		return nil, nil, err
	}
	for _, t := range lake.TablesIn(lake.ZoneClean) {
		files := byTable[t.Name]
		if len(files) == 0 {
			continue
		}
		quoted := make([]string, len(files))
		for i, f := range files {
			quoted[i] = quote(f)
		}
		// Which files hold erased rows, in one pass over the table.
		rows, err := s.conn.QueryContext(ctx, fmt.Sprintf(`SELECT filename, count(*) FROM read_parquet([%s], filename = true)
WHERE message_id IN (SELECT id FROM erased) OR profile_id IN (SELECT id FROM erased) GROUP BY filename`, strings.Join(quoted, ", ")))
		if err != nil {
			return nil, nil, fmt.Errorf("purge %s: %w", t.Name, err)
		}
		hits := map[string]int64{}
		for rows.Next() {
			var f string
			var n int64
			if err := rows.Scan(&f, &n); err != nil {
				rows.Close()
				return nil, nil, err
			}
			hits[f] = n
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, nil, fmt.Errorf("purge %s: %w", t.Name, err)
		}
		for f, n := range hits {
			q := fmt.Sprintf(`SELECT * FROM read_parquet(%s) WHERE message_id NOT IN (SELECT id FROM erased)
AND (profile_id IS NULL OR profile_id NOT IN (SELECT id FROM erased))`, quote(f))
			st, err := s.write(ctx, t, q, f)
			if err != nil {
				return nil, nil, fmt.Errorf("purge: %w", err)
			}
			st.Partition = partitionOf(f)
			rewritten = append(rewritten, st)
			clean.Partitions++
			clean.Rows += n
		}
	}
	curated := lake.PurgeResult{Zone: lake.ZoneCurated}
	for _, t := range lake.TablesIn(lake.ZoneCurated) {
		cols := t.ProfileColumns()
		f := e.partitionFile(in.Location, t, "")
		if len(cols) == 0 {
			continue
		}
		if _, err := os.Stat(f); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		var conds []string
		for _, c := range cols {
			conds = append(conds, ident(c)+" IN (SELECT id FROM erased)")
		}
		var n int64
		if err := s.conn.QueryRowContext(ctx, fmt.Sprintf("SELECT count(*) FROM read_parquet(%s) WHERE %s", quote(f), strings.Join(conds, " OR "))).Scan(&n); err != nil {
			return nil, nil, fmt.Errorf("purge %s: %w", t.Name, err)
		}
		if n > 0 {
			curated.Partitions++
			curated.Rows += n
		}
	}
	return []lake.PurgeResult{clean, curated}, rewritten, nil
}

// partitionOf reads the partition of a clean partition file's path.
func partitionOf(file string) string {
	hh := filepath.Base(filepath.Dir(file))
	dt := filepath.Base(filepath.Dir(filepath.Dir(file)))
	return strings.TrimPrefix(dt, "dt=") + "T" + strings.TrimPrefix(hh, "hh=")
}

// Stats implements lake.Engine: it reads each file's row count from its
// Parquet footer.
func (e *Engine) Stats(ctx context.Context, loc lake.Location) ([]lake.TableStats, error) {
	var out []lake.TableStats
	byTable, err := e.cleanFiles(loc)
	if err != nil {
		return nil, err
	}
	for _, t := range lake.Tables {
		files := byTable[t.Name]
		if t.Zone == lake.ZoneCurated {
			f := e.partitionFile(loc, t, "")
			if _, err := os.Stat(f); err == nil {
				files = []string{f}
			}
		}
		for _, f := range files {
			info, err := os.Stat(f)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, err
			}
			var n int64
			if err := e.db.QueryRowContext(ctx, "SELECT coalesce(sum(num_rows), 0) FROM parquet_file_metadata("+quote(f)+")").Scan(&n); err != nil {
				return nil, fmt.Errorf("stats %s: %w", f, err)
			}
			st := lake.TableStats{Table: t.Name, Rows: n, Bytes: info.Size()}
			if t.Partitioned {
				st.Partition = partitionOf(f)
			}
			out = append(out, st)
		}
	}
	return out, nil
}

// Catalog makes, on conn, a view per table of the tenant's zones with the
// catalog's names and schemas: the local catalog. A table with no data
// yet is an empty view of its columns.
func (e *Engine) Catalog(ctx context.Context, conn *sql.Conn, loc lake.Location) error {
	byTable, err := e.cleanFiles(loc)
	if err != nil {
		return err
	}
	for _, t := range lake.Tables {
		files := byTable[t.Name]
		if t.Zone == lake.ZoneCurated {
			if f := e.partitionFile(loc, t, ""); fileExists(f) {
				files = []string{f}
			}
		}
		quoted := make([]string, len(files))
		for i, f := range files {
			quoted[i] = quote(f)
		}
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("CREATE OR REPLACE TEMP VIEW %s AS %s", ident(t.Name), selectFrom(t.Columns, quoted))); err != nil {
			return fmt.Errorf("catalog %s: %w", t.Name, err)
		}
	}
	return nil
}

// Query runs query over the tenant's tables (the local catalog's views)
// and returns its rows, each value as the driver scans it. It is for
// tests and tools: it does not confine what query reads.
func (e *Engine) Query(ctx context.Context, loc lake.Location, query string, args ...any) ([][]any, error) {
	conn, err := e.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("duckdb: %w", err)
	}
	defer conn.Close()
	if err := e.Catalog(ctx, conn, loc); err != nil {
		return nil, err
	}
	return scanAll(conn.QueryContext(ctx, query, args...))
}

func fileExists(f string) bool {
	_, err := os.Stat(f)
	return err == nil
}

func syncFile(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func ident(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
