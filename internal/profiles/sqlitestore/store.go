// Package sqlitestore is the embedded profiles.Store: one SQLite database
// file of its own (modernc.org/sqlite, pure Go), separate from the
// control-plane database, holding the single items table of the profile
// store.
//
// # Design
//
// SQLite allows one writer at a time, so a Store has exactly one writer
// connection, owned by one goroutine, and a small pool of read-only
// connections that, under WAL, read concurrently with it. Transact and
// PutBatch hand their work to the writer goroutine, which executes the
// calls that arrive during one fsync in one SQLite transaction (group
// commit), committed when that fsync ends: every call's conditions are
// checked against the state its predecessors in the group left, a call
// whose condition fails writes nothing and the others go on, and one fsync
// makes the whole group durable before any call returns. Under load this
// turns thousands of small transactions a second into a few dozen
// commits; alone, a call commits at once.
//
// # Durability
//
// Transact and PutBatch return only after their commit is on disk, so a
// crash right after loses nothing. The writer commits to the WAL without
// waiting for the disk (synchronous=NORMAL) and a second goroutine, the
// syncer, fsyncs the WAL and then answers the calls of that commit; while
// it does, the writer executes the calls that arrive into the next commit
// (see run). Reads may therefore see a commit a few milliseconds before it
// is durable: a write that depends on what they saw commits after it, so
// it is never durable without it, and a caller that answers from reads
// alone calls Sync (profiles.Syncer) first.
//
// # Expiry
//
// Items whose ExpiresAt is set and in the past are invisible to reads and
// count as absent for IfAbsent. The writer deletes them in the background
// (Config.SweepInterval), like DynamoDB's TTL.
//
// # Errors
//
// Validation errors (keys without the tenant prefix, ops that name a key
// twice, ...) are returned before anything is written; see storetest's
// package doc for the rules, which dynamostore applies too. Methods called
// after Close return ErrClosed.
//
// # Concurrency
//
// A Store is safe for concurrent use. Only one Store (one process) may
// write to a file: its writer remembers the versions it read and wrote
// (see known), which another writer would make stale. Reading the file
// meanwhile (a backup, the sqlite3 shell) is safe.
package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/cairn-cdp/cairn/internal/profiles"
)

var _ profiles.Store = (*Store)(nil)

// FileName is the conventional name of the database file in the data
// directory.
const FileName = "profiles.db"

// Defaults of Config.
const (
	// DefaultSweepInterval is how often expired items are deleted.
	DefaultSweepInterval = time.Minute
	// sweepChunk is the most expired items deleted in one statement, so a
	// sweep never holds the write lock for long.
	sweepChunk = 1000
	// maxGroup is the most calls the writer takes off its queue at once,
	// and maxOpen the most it executes into one commit.
	maxGroup = 512
	maxOpen  = 4096
)

// ErrClosed is returned by every method of a closed Store.
var ErrClosed = errors.New("sqlitestore: store closed")

// Config configures a Store.
type Config struct {
	// Path is the database file, created if missing. Required.
	Path string
	// Readers is the most read connections; default max(4, GOMAXPROCS).
	Readers int
	// SweepInterval is how often expired items are deleted; default
	// DefaultSweepInterval, negative disables the sweep.
	SweepInterval time.Duration
	// Now is the clock that decides expiry; default time.Now.
	Now func() time.Time
	// Logger logs sweep failures; default slog.Default().
	Logger *slog.Logger
}

// Store is the SQLite profiles.Store. Create it with Open or New; it is
// safe for concurrent use.
type Store struct {
	now    func() time.Time
	logger *slog.Logger

	readDB  *sql.DB
	getStmt *sql.Stmt
	// batchGetStmt reads the keys of a JSON array of [pk, sk] pairs.
	batchGetStmt *sql.Stmt
	// queryStmts holds a statement per queryShape, prepared at open.
	queryStmts map[queryShape]*sql.Stmt

	writeDB *sql.DB
	w       *writer

	reqs chan *request
	// committed carries commits from the writer to the syncer, which
	// owns wal and answers on synced when it is done with one.
	committed chan syncBatch
	synced    chan struct{}
	wal       walFile
	// commits numbers the writer's commits; sync is how many are durable.
	commits   atomic.Int64
	sync      syncState
	closing   chan struct{}
	stopped   chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// schema is created at open. gsi1pk, gsi1sk and expires_at are NULL when
// empty or 0, so that the partial indexes hold only the items that need
// them (and `gsi1pk = ?` or `expires_at < ?` imply the indexes' WHERE).
// The table is WITHOUT ROWID: the primary key is the only lookup path.
const schema = `
CREATE TABLE IF NOT EXISTS items (
	pk         TEXT NOT NULL,
	sk         TEXT NOT NULL,
	gsi1pk     TEXT,
	gsi1sk     TEXT,
	v          INTEGER NOT NULL,
	d          BLOB,
	expires_at INTEGER,
	PRIMARY KEY (pk, sk)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS items_gsi1 ON items (gsi1pk, gsi1sk) WHERE gsi1pk IS NOT NULL;
CREATE INDEX IF NOT EXISTS items_expires_at ON items (expires_at) WHERE expires_at IS NOT NULL;
`

// Connection parameters. busy_timeout only matters when another process
// (a backup, the sqlite3 shell) holds the file. The writer checkpoints
// every 10,000 WAL pages (40 MB) instead of SQLite's 1,000: the commit that
// crosses the mark does the checkpoint, on the writer goroutine, which is
// the store's bottleneck, and a page rewritten many times between two
// checkpoints is copied once (BenchmarkResolve: about 20% more events/s).
// The WAL file keeps its largest size, so commits overwrite it rather than
// grow it. Caches are larger than SQLite's 2 MB default for random point
// lookups.
var (
	writeParams = url.Values{"_pragma": {
		"busy_timeout(10000)",
		"journal_mode(WAL)",
		"synchronous(NORMAL)", // the syncer fsyncs the WAL: see walFile
		"cache_size(-32000)",
		"wal_autocheckpoint(10000)",
		// A call's savepoint (see transact) journals the pages it changes
		// first: in memory, not in a temporary file of 4 KB pwrites.
		"temp_store(MEMORY)",
	}}
	readParams = url.Values{"_pragma": {
		"busy_timeout(10000)",
		"query_only(1)",
		"cache_size(-16000)",
	}}
)

// Open opens (creating if needed) the store in the database file at path
// with the default Config.
func Open(ctx context.Context, path string) (*Store, error) {
	return New(ctx, Config{Path: path})
}

// New opens (creating if needed) the store that cfg describes: it creates
// the schema, checks that WAL is on, prepares statements and starts the
// writer goroutine. Close the Store to stop it.
func New(ctx context.Context, cfg Config) (_ *Store, err error) {
	if cfg.Path == "" || strings.ContainsAny(cfg.Path, "?#") {
		return nil, fmt.Errorf("sqlitestore: invalid database path %q", cfg.Path)
	}
	if cfg.Readers < 0 {
		return nil, fmt.Errorf("sqlitestore: Readers must not be negative, got %d", cfg.Readers)
	}
	if cfg.Readers == 0 {
		cfg.Readers = max(4, runtime.GOMAXPROCS(0))
	}
	if cfg.SweepInterval == 0 {
		cfg.SweepInterval = DefaultSweepInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Store{
		now:        cfg.Now,
		logger:     cfg.Logger,
		queryStmts: make(map[queryShape]*sql.Stmt),
		reqs:       make(chan *request, maxGroup),
		committed:  make(chan syncBatch, 1),
		synced:     make(chan struct{}, 1),
		wal:        walFile{path: cfg.Path + "-wal"},
		sync:       syncState{wake: make(chan struct{})},
		closing:    make(chan struct{}),
		stopped:    make(chan struct{}),
	}
	defer func() {
		if err != nil {
			_ = s.closeDBs()
			err = fmt.Errorf("sqlitestore: open %s: %w", cfg.Path, err)
		}
	}()

	// The writer first: it sets WAL mode, which the file keeps, and
	// creates the schema the readers' statements need.
	if s.writeDB, err = sql.Open("sqlite", cfg.Path+"?"+writeParams.Encode()); err != nil {
		return nil, err
	}
	s.writeDB.SetMaxOpenConns(1)
	conn, err := s.writeDB.Conn(ctx)
	if err != nil {
		return nil, err
	}
	var mode string
	if err := conn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		_ = conn.Close()
		return nil, err
	}
	if !strings.EqualFold(mode, "wal") {
		_ = conn.Close()
		return nil, fmt.Errorf("journal mode is %q, want wal", mode)
	}
	if _, err := conn.ExecContext(ctx, schema); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("create schema: %w", err)
	}
	if s.w, err = newWriter(ctx, conn); err != nil {
		_ = conn.Close()
		return nil, err
	}

	if s.readDB, err = sql.Open("sqlite", cfg.Path+"?"+readParams.Encode()); err != nil {
		return nil, err
	}
	s.readDB.SetMaxOpenConns(cfg.Readers)
	s.readDB.SetMaxIdleConns(cfg.Readers)
	if s.getStmt, err = s.readDB.PrepareContext(ctx, `SELECT coalesce(gsi1pk, ''), coalesce(gsi1sk, ''), v, d, coalesce(expires_at, 0)
		FROM items WHERE pk = ?1 AND sk = ?2`); err != nil {
		return nil, err
	}
	if s.batchGetStmt, err = s.readDB.PrepareContext(ctx, `SELECT i.pk, i.sk, coalesce(i.gsi1pk, ''), coalesce(i.gsi1sk, ''), i.v, i.d, coalesce(i.expires_at, 0)
		FROM json_each(?1) AS k JOIN items AS i ON i.pk = k.value ->> 0 AND i.sk = k.value ->> 1`); err != nil {
		return nil, err
	}
	for _, q := range queryShapes() {
		if s.queryStmts[q], err = s.readDB.PrepareContext(ctx, q.sql()); err != nil {
			return nil, fmt.Errorf("prepare %q: %w", q.sql(), err)
		}
	}

	go s.run(cfg.SweepInterval)
	return s, nil
}

// Close stops the writer, after it has committed and answered every call
// already queued, and closes the database. Calls made after Close return
// ErrClosed. Later calls of Close return what the first returned.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		<-s.stopped
		s.closeErr = s.closeDBs()
	})
	return s.closeErr
}

func (s *Store) closeDBs() error {
	var errs []error
	if s.w != nil {
		errs = append(errs, s.w.close())
	}
	errs = append(errs, s.wal.close())
	if s.writeDB != nil {
		errs = append(errs, s.writeDB.Close())
	}
	for _, st := range s.queryStmts {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	if s.getStmt != nil {
		errs = append(errs, s.getStmt.Close())
	}
	if s.batchGetStmt != nil {
		errs = append(errs, s.batchGetStmt.Close())
	}
	if s.readDB != nil {
		errs = append(errs, s.readDB.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlitestore: close: %w", err)
	}
	return nil
}

func (s *Store) closed() bool {
	select {
	case <-s.closing:
		return true
	default:
		return false
	}
}

// live reports whether an item with expiresAt is visible at now.
func live(expiresAt, now int64) bool { return expiresAt == 0 || expiresAt >= now }

// Get implements profiles.Store.
func (s *Store) Get(ctx context.Context, k profiles.Key) (profiles.Item, bool, error) {
	if _, err := profiles.ValidateKey(k); err != nil {
		return profiles.Item{}, false, err
	}
	if err := ctx.Err(); err != nil {
		return profiles.Item{}, false, err
	}
	if s.closed() {
		return profiles.Item{}, false, ErrClosed
	}
	it, ok, err := s.get(k, s.now().Unix())
	if err != nil {
		return profiles.Item{}, false, fmt.Errorf("sqlitestore: get %s/%s: %w", k.PK, k.SK, err)
	}
	return it, ok, nil
}

// get reads one item. A point lookup takes microseconds, so it runs
// without ctx: a cancellable context costs the driver and database/sql a
// watcher goroutine per statement, which would be most of the cost.
func (s *Store) get(k profiles.Key, now int64) (profiles.Item, bool, error) {
	it := profiles.Item{PK: k.PK, SK: k.SK}
	err := s.getStmt.QueryRow(k.PK, k.SK).Scan(&it.GSI1PK, &it.GSI1SK, &it.Version, &it.Data, &it.ExpiresAt)
	if errors.Is(err, sql.ErrNoRows) {
		return profiles.Item{}, false, nil
	}
	if err != nil {
		return profiles.Item{}, false, err
	}
	if !live(it.ExpiresAt, now) {
		return profiles.Item{}, false, nil
	}
	return it, true, nil
}

// BatchGet implements profiles.Store with one statement that joins the
// keys, sent as a JSON array, to the table: one read transaction for the
// whole batch, rather than a connection round trip per key.
func (s *Store) BatchGet(ctx context.Context, keys []profiles.Key) (map[profiles.Key]profiles.Item, error) {
	for _, k := range keys {
		if _, err := profiles.ValidateKey(k); err != nil {
			return nil, err
		}
	}
	if s.closed() {
		return nil, ErrClosed
	}
	out := make(map[profiles.Key]profiles.Item, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	arg := make([][2]string, 0, len(keys))
	for _, k := range keys {
		if _, dup := out[k]; !dup {
			out[k] = profiles.Item{}
			arg = append(arg, [2]string{k.PK, k.SK})
		}
	}
	clear(out)
	list, err := json.Marshal(arg)
	if err != nil {
		return nil, err
	}
	now := s.now().Unix()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rows, err := s.batchGetStmt.Query(string(list)) // see rowsCtxCheck
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: batch get: %w", err)
	}
	defer rows.Close()
	for n := 1; rows.Next(); n++ {
		if n%rowsCtxCheck == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		var it profiles.Item
		if err := rows.Scan(&it.PK, &it.SK, &it.GSI1PK, &it.GSI1SK, &it.Version, &it.Data, &it.ExpiresAt); err != nil {
			return nil, fmt.Errorf("sqlitestore: batch get: %w", err)
		}
		if live(it.ExpiresAt, now) {
			out[profiles.Key{PK: it.PK, SK: it.SK}] = it
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlitestore: batch get: %w", err)
	}
	return out, nil
}

// rowsCtxCheck is how many rows Query and BatchGet read between looks at
// their context. They run their statement without it: with a cancellable
// context, database/sql and the driver each start a goroutine per
// statement to watch it, which costs more than a point query itself (half
// of BenchmarkQuery's CPU); looking at ctx before the statement and every
// so many rows cancels a long read as well.
const rowsCtxCheck = 256

// queryShape selects one of the prepared query statements.
type queryShape struct {
	gsi1  bool
	desc  bool
	lo    bound // lower bound of the sort key
	hiSet bool  // an exclusive upper bound
}

type bound uint8

const (
	noBound bound = iota
	inclusive
	exclusive
)

func (q queryShape) sql() string {
	pk, sk := "pk", "sk"
	order := "sk"
	if q.gsi1 {
		pk, sk = "gsi1pk", "gsi1sk"
		// Ties on gsi1sk come out in base-key order: the index holds the
		// primary key after its own columns, so this costs no sort.
		order = "gsi1sk, pk, sk"
	}
	var b strings.Builder
	b.WriteString(`SELECT pk, sk, coalesce(gsi1pk, ''), coalesce(gsi1sk, ''), v, d, coalesce(expires_at, 0) FROM items WHERE `)
	b.WriteString(pk + " = ?1")
	switch q.lo {
	case inclusive:
		b.WriteString(" AND " + sk + " >= ?2")
	case exclusive:
		b.WriteString(" AND " + sk + " > ?2")
	}
	if q.hiSet {
		b.WriteString(" AND " + sk + " < ?3")
	}
	b.WriteString(" AND (expires_at IS NULL OR expires_at >= ?4) ORDER BY ")
	if q.desc {
		order = strings.ReplaceAll(order, ",", " DESC,") + " DESC"
	}
	b.WriteString(order + " LIMIT ?5")
	return b.String()
}

// queryShapes returns every queryShape.
func queryShapes() []queryShape {
	var qs []queryShape
	for _, gsi1 := range []bool{false, true} {
		for _, desc := range []bool{false, true} {
			for _, lo := range []bound{noBound, inclusive, exclusive} {
				for _, hiSet := range []bool{false, true} {
					qs = append(qs, queryShape{gsi1: gsi1, desc: desc, lo: lo, hiSet: hiSet})
				}
			}
		}
	}
	return qs
}

// prefixEnd returns the least string greater than every string that starts
// with prefix, or false if there is none. Sort keys compare as bytes.
func prefixEnd(prefix string) (string, bool) {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}

// Query implements profiles.Store. Prefix and After become one range of
// the primary key or of the gsi1 index, so a query reads only the rows it
// returns (and the expired ones among them).
func (s *Store) Query(ctx context.Context, in profiles.QueryInput) ([]profiles.Item, error) {
	if _, err := profiles.TenantOf(in.PK); err != nil {
		return nil, err
	}
	if in.Index != "" && in.Index != "gsi1" {
		return nil, profiles.InvalidInput("unknown index %q", in.Index)
	}
	if in.Limit < 0 {
		return nil, profiles.InvalidInput("negative limit %d", in.Limit)
	}
	if s.closed() {
		return nil, ErrClosed
	}
	q := queryShape{gsi1: in.Index == "gsi1", desc: in.Desc}
	var lo, hi string
	if in.Prefix != "" {
		q.lo, lo = inclusive, in.Prefix
		hi, q.hiSet = prefixEnd(in.Prefix)
	}
	if in.After != "" {
		if !in.Desc && (q.lo == noBound || in.After >= lo) {
			q.lo, lo = exclusive, in.After
		}
		if in.Desc && (!q.hiSet || in.After < hi) {
			q.hiSet, hi = true, in.After
		}
	}
	limit := int64(-1)
	if in.Limit > 0 {
		limit = int64(in.Limit)
	}

	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rows, err := s.queryStmts[q].Query(in.PK, lo, hi, s.now().Unix(), limit) // see rowsCtxCheck
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: query %s: %w", in.PK, err)
	}
	defer func() { _ = rows.Close() }()
	var out []profiles.Item
	if in.Limit > 0 {
		out = make([]profiles.Item, 0, min(in.Limit, 256))
	}
	for n := 1; rows.Next(); n++ {
		if n%rowsCtxCheck == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		var it profiles.Item
		if err := rows.Scan(&it.PK, &it.SK, &it.GSI1PK, &it.GSI1SK, &it.Version, &it.Data, &it.ExpiresAt); err != nil {
			return nil, fmt.Errorf("sqlitestore: query %s: %w", in.PK, err)
		}
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlitestore: query %s: %w", in.PK, err)
	}
	return out, nil
}

// Count implements profiles.Store with the query's range, counted.
func (s *Store) Count(ctx context.Context, in profiles.QueryInput) (int, error) {
	in.Limit = 0
	if _, err := profiles.TenantOf(in.PK); err != nil {
		return 0, err
	}
	if in.Index != "" && in.Index != "gsi1" {
		return 0, profiles.InvalidInput("unknown index %q", in.Index)
	}
	if s.closed() {
		return 0, ErrClosed
	}
	pk, sk := "pk", "sk"
	if in.Index == "gsi1" {
		pk, sk = "gsi1pk", "gsi1sk"
	}
	q := `SELECT count(*) FROM items WHERE ` + pk + ` = ?1 AND (expires_at IS NULL OR expires_at >= ?2)`
	args := []any{in.PK, s.now().Unix()}
	if in.Prefix != "" {
		q += ` AND ` + sk + ` >= ?3`
		args = append(args, in.Prefix)
		if end, ok := prefixEnd(in.Prefix); ok {
			q += ` AND ` + sk + ` < ?4`
			args = append(args, end)
		}
	}
	if in.After != "" {
		q += ` AND ` + sk + ` > ?` + fmt.Sprint(len(args)+1)
		if in.Desc {
			q = strings.Replace(q, sk+` > ?`+fmt.Sprint(len(args)+1), sk+` < ?`+fmt.Sprint(len(args)+1), 1)
		}
		args = append(args, in.After)
	}
	var n int
	if err := s.readDB.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlitestore: count %s: %w", in.PK, err)
	}
	return n, nil
}

// Scan implements profiles.Store: the tenant's items are one range of the
// primary key, read in key order from in.After.
func (s *Store) Scan(ctx context.Context, in profiles.ScanInput) ([]profiles.Item, profiles.Key, error) {
	if _, err := profiles.TenantOf(in.PKPrefix); err != nil {
		return nil, profiles.Key{}, err
	}
	if s.closed() {
		return nil, profiles.Key{}, ErrClosed
	}
	limit := in.Limit
	if limit <= 0 {
		limit = 1000
	}
	end, _ := prefixEnd(in.PKPrefix)
	after := in.After
	if after.PK < in.PKPrefix {
		after = profiles.Key{PK: in.PKPrefix}
	}
	q := `SELECT pk, sk, coalesce(gsi1pk, ''), coalesce(gsi1sk, ''), v, d, coalesce(expires_at, 0) FROM items
		WHERE (pk, sk) > (?1, ?2) AND pk < ?3 AND (expires_at IS NULL OR expires_at >= ?4)`
	args := []any{after.PK, after.SK, end, s.now().Unix(), limit}
	if in.SK != "" {
		q += ` AND sk = ?6`
		args = append(args, in.SK)
	}
	q += ` ORDER BY pk, sk LIMIT ?5`
	rows, err := s.readDB.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, profiles.Key{}, fmt.Errorf("sqlitestore: scan %s: %w", in.PKPrefix, err)
	}
	defer func() { _ = rows.Close() }()
	out := make([]profiles.Item, 0, min(limit, 1024))
	for rows.Next() {
		var it profiles.Item
		if err := rows.Scan(&it.PK, &it.SK, &it.GSI1PK, &it.GSI1SK, &it.Version, &it.Data, &it.ExpiresAt); err != nil {
			return nil, profiles.Key{}, fmt.Errorf("sqlitestore: scan %s: %w", in.PKPrefix, err)
		}
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, profiles.Key{}, fmt.Errorf("sqlitestore: scan %s: %w", in.PKPrefix, err)
	}
	var next profiles.Key
	if len(out) == limit {
		next = profiles.Key{PK: out[len(out)-1].PK, SK: out[len(out)-1].SK}
	}
	return out, next, nil
}
