package sqlitestore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairn-cdp/cairn/internal/profiles"
)

// request is one Transact, PutBatch or Sweep call waiting for the writer.
type request struct {
	ops   []profiles.Op   // Transact
	items []profiles.Item // PutBatch
	swept *int64          // Sweep: where to count the deleted items
	done  chan error      // buffered: the writer never blocks on it
	// state is queued until either the writer takes the request or its
	// caller gives up on it, whichever comes first: a request the writer
	// took is always answered, one abandoned is never touched again.
	state atomic.Int32
}

// States of a request.
const (
	queued int32 = iota
	taken
	abandoned
)

func newRequest() *request { return &request{done: make(chan error, 1)} }

// writer is the writer connection and its prepared statements. Only the
// writer goroutine (Store.run) uses it once New returns. Its statements run
// without a context: a call's context is checked before its work starts,
// and a statement interrupted halfway would abort the whole group.
type writer struct {
	conn                    *sql.Conn
	begin, commit, rollback *sql.Stmt
	// meta reads what a condition needs, and what picks the cheapest
	// write: see transact.
	meta *sql.Stmt
	// insertIfAbsent and setDataIf write an item on a condition; replace
	// writes one whose stored state is known; upsert and overwrite one
	// whose state is not.
	insertIfAbsent, setDataIf, replace, upsert, overwrite *sql.Stmt
	del, sweep                                            *sql.Stmt
	// savepoint, rollbackTo and release undo a call's conditional puts
	// when a later condition fails.
	savepoint, rollbackTo, release *sql.Stmt

	// stored is transact's buffer of the stored state of each op's key.
	stored []stored
	// known is what the writer read or wrote of recent items.
	known known
}

// stored is what meta read of an item.
type stored struct {
	found          bool
	version        int64
	expiresAt      int64
	gsi1pk, gsi1sk string
}

func newWriter(ctx context.Context, conn *sql.Conn) (*writer, error) {
	w := &writer{conn: conn}
	for _, p := range []struct {
		st  **sql.Stmt
		sql string
	}{
		// IMMEDIATE takes the write lock at once: the group reads then
		// writes, and must never fail to upgrade a read lock.
		{&w.begin, "BEGIN IMMEDIATE"},
		{&w.commit, "COMMIT"},
		{&w.rollback, "ROLLBACK"},
		{&w.meta, `SELECT v, coalesce(expires_at, 0), coalesce(gsi1pk, ''), coalesce(gsi1sk, '')
			FROM items WHERE pk = ?1 AND sk = ?2`},
		{&w.replace, `UPDATE items SET gsi1pk = ?3, gsi1sk = ?4, v = ?5, d = ?6, expires_at = ?7 WHERE pk = ?1 AND sk = ?2`},
		// Leaving the indexed columns out of SET spares SQLite rewriting
		// their index entries: setDataIf updates only an item whose GSI
		// keys and expiry stay as they are, and whose version is ?5.
		{&w.setDataIf, `UPDATE items SET v = ?3, d = ?4 WHERE pk = ?1 AND sk = ?2 AND v = ?5
			AND (expires_at IS NULL OR expires_at >= ?6) AND gsi1pk IS ?7 AND gsi1sk IS ?8 AND expires_at IS ?9`},
		// An IfAbsent put: a new item, or one replacing an expired item;
		// no row is affected when a live item is stored.
		{&w.insertIfAbsent, `INSERT INTO items (pk, sk, gsi1pk, gsi1sk, v, d, expires_at) VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6)
			ON CONFLICT (pk, sk) DO UPDATE SET gsi1pk = excluded.gsi1pk, gsi1sk = excluded.gsi1sk,
			v = 1, d = excluded.d, expires_at = excluded.expires_at
			WHERE items.expires_at IS NOT NULL AND items.expires_at < ?7`},
		{&w.savepoint, "SAVEPOINT op"},
		{&w.rollbackTo, "ROLLBACK TO op"},
		{&w.release, "RELEASE op"},
		// Stored version + 1, 1 for a new item; an expired item still
		// stored counts as stored, as with DynamoDB's if_not_exists.
		{&w.upsert, `INSERT INTO items (pk, sk, gsi1pk, gsi1sk, v, d, expires_at) VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6)
			ON CONFLICT (pk, sk) DO UPDATE SET gsi1pk = excluded.gsi1pk, gsi1sk = excluded.gsi1sk,
			v = items.v + 1, d = excluded.d, expires_at = excluded.expires_at`},
		// PutBatch: version 1 whatever is stored.
		{&w.overwrite, `INSERT INTO items (pk, sk, gsi1pk, gsi1sk, v, d, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
			ON CONFLICT (pk, sk) DO UPDATE SET gsi1pk = excluded.gsi1pk, gsi1sk = excluded.gsi1sk,
			v = excluded.v, d = excluded.d, expires_at = excluded.expires_at`},
		{&w.del, "DELETE FROM items WHERE pk = ?1 AND sk = ?2"},
		{&w.sweep, fmt.Sprintf(`DELETE FROM items WHERE (pk, sk) IN
			(SELECT pk, sk FROM items WHERE expires_at < ?1 LIMIT %d)`, sweepChunk)},
	} {
		st, err := conn.PrepareContext(ctx, p.sql)
		if err != nil {
			_ = w.close()
			return nil, fmt.Errorf("prepare %q: %w", p.sql, err)
		}
		*p.st = st
	}
	return w, nil
}

func (w *writer) close() error {
	var errs []error
	for _, st := range []*sql.Stmt{w.begin, w.commit, w.rollback, w.meta, w.insertIfAbsent, w.setDataIf, w.replace,
		w.upsert, w.overwrite, w.del, w.sweep, w.savepoint, w.rollbackTo, w.release} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(append(errs, w.conn.Close())...)
}

// Transact implements profiles.Store. If ctx ends before the writer takes
// the call, Transact returns ctx.Err() and nothing is written; once taken,
// the call waits for its commit (one group's worth, milliseconds) and
// returns its outcome. ops are not retained after Transact returns.
func (s *Store) Transact(ctx context.Context, ops []profiles.Op) error {
	if err := profiles.ValidateOps(ops); err != nil {
		return err
	}
	if len(ops) == 0 {
		return nil
	}
	r := newRequest()
	r.ops = ops
	return s.submit(ctx, r)
}

// PutBatch implements profiles.Store: all items are written in one
// transaction, with Version 1, replacing any stored item. Of items that
// share a key, the last one wins.
func (s *Store) PutBatch(ctx context.Context, items []profiles.Item) error {
	for i := range items {
		if _, err := profiles.ValidateItem(&items[i]); err != nil {
			return fmt.Errorf("item %d: %w", i, err)
		}
	}
	if len(items) == 0 {
		return nil
	}
	r := newRequest()
	r.items = items
	return s.submit(ctx, r)
}

func (s *Store) submit(ctx context.Context, r *request) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case s.reqs <- r:
	case <-s.closing:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		if r.state.CompareAndSwap(queued, abandoned) {
			return ctx.Err()
		}
		// Taken: the writer is committing it and will answer.
		return <-r.done
	case <-s.stopped:
		// The writer answers every request it took before it stops; one
		// queued after its last look is never taken.
		select {
		case err := <-r.done:
			return err
		default:
			return ErrClosed
		}
	}
}

// run is the writer goroutine: it executes queued calls and sweeps
// expired items, until Close.
//
// Calls are executed in an open transaction, which is committed whenever
// the syncer is idle: while the syncer fsyncs one commit, the writer
// executes the calls that arrive into the next, so the disk's fsync
// latency overlaps the writer's work instead of stalling it, and under
// load a commit holds every call that arrived during the last fsync. Each
// call's conditions are checked against the state its predecessors in the
// transaction left; a call whose condition fails writes nothing and the
// others go on. Calls are answered by the syncer, once an fsync that began
// after their commit has returned.
func (s *Store) run(sweepInterval time.Duration) {
	synced := make(chan struct{})
	go s.syncer(synced)
	defer func() {
		close(s.committed)
		<-synced
		close(s.stopped)
	}()
	var sweep <-chan time.Time // nil, never ready, when sweeping is off
	var timer *time.Timer
	if sweepInterval > 0 {
		timer = time.NewTimer(sweepInterval)
		defer timer.Stop()
		sweep = timer.C
	}
	g := &groupCommitter{s: s}
	for {
		if !g.syncing {
			g.flush()
		}
		reqs := s.reqs
		if len(g.open) >= maxOpen {
			reqs = nil // the transaction is full: wait for the fsync
		}
		select {
		case r := <-reqs:
			g.take(r)
		collect:
			for range maxGroup {
				select {
				case r := <-s.reqs:
					g.take(r)
				default:
					break collect
				}
			}
		case <-s.synced:
			g.syncing = false
		case <-sweep:
			if g.inTx {
				timer.Reset(10 * time.Millisecond) // after this commit
				continue
			}
			next := sweepInterval
			if s.sweepOnce() == sweepChunk {
				next = 0 // more to delete; calls queued meanwhile go first
			}
			timer.Reset(next)
		case <-s.closing:
			// Calls still queued are executed: their callers wait.
		drain:
			for {
				select {
				case r := <-s.reqs:
					g.take(r)
				default:
					break drain
				}
			}
			for g.syncing || g.inTx || len(g.done) > 0 {
				if g.syncing {
					<-s.synced
					g.syncing = false
				}
				g.flush()
			}
			return
		}
	}
}

// groupCommitter is the writer's transaction and the calls in it.
type groupCommitter struct {
	s *Store
	// inTx is set while a transaction is open; open are the outcomes of
	// the calls executed in it.
	inTx bool
	open []answer
	// done are the outcomes of calls committed but not yet handed to the
	// syncer.
	done []answer
	// syncing is set from handing calls to the syncer until it reports
	// their fsync over.
	syncing bool
}

// answer is a call's outcome, sent once its commit is durable.
type answer struct {
	r   *request
	err error
}

// take executes r in the open transaction, beginning one if needed,
// unless its caller has given up on it.
func (g *groupCommitter) take(r *request) {
	if !r.state.CompareAndSwap(queued, taken) {
		return
	}
	w := g.s.w
	if !g.inTx {
		if _, err := w.begin.Exec(); err != nil {
			r.done <- fmt.Errorf("sqlitestore: write: %w", err)
			return
		}
		g.inTx = true
	}
	err := g.exec(r)
	if err != nil && !errors.Is(err, profiles.ErrConditionFailed) {
		// Roll back, and run each call alone, so that one bad call
		// cannot fail the others.
		w.undo(w.rollback)
		g.inTx = false
		calls := append(g.open, answer{r: r})
		g.open = nil
		for _, a := range calls {
			g.alone(a.r)
		}
		return
	}
	g.open = append(g.open, answer{r: r, err: err})
}

// exec applies r in the open transaction. It returns ErrConditionFailed
// having written nothing.
func (g *groupCommitter) exec(r *request) error {
	w, now := g.s.w, g.s.now().Unix()
	switch {
	case r.ops != nil:
		return w.transact(r.ops, now)
	case r.swept != nil:
		var err error
		*r.swept, err = w.sweepAll(now)
		return err
	case r.items != nil:
		return w.putBatch(r.items)
	}
	return nil
}

// alone runs r in a transaction of its own, with no transaction open.
func (g *groupCommitter) alone(r *request) {
	w := g.s.w
	fail := func(err error) {
		w.undo(w.rollback)
		r.done <- fmt.Errorf("sqlitestore: write: %w", err)
	}
	if _, err := w.begin.Exec(); err != nil {
		fail(err)
		return
	}
	err := g.exec(r)
	if err != nil && !errors.Is(err, profiles.ErrConditionFailed) {
		fail(err)
		return
	}
	g.s.commits.Add(1)
	if _, err := w.commit.Exec(); err != nil {
		fail(err)
		return
	}
	g.done = append(g.done, answer{r: r, err: err})
}

// flush commits the open transaction, if any, and hands the calls
// committed since the last flush to the syncer. Even a call whose
// condition failed waits for the fsync: it read state that may not have
// been durable yet.
func (g *groupCommitter) flush() {
	if g.inTx {
		g.inTx = false
		// A commit is numbered before it becomes visible, so that Sync,
		// having seen it, waits for its fsync.
		g.s.commits.Add(1)
		if _, err := g.s.w.commit.Exec(); err != nil {
			g.s.w.undo(g.s.w.rollback)
			calls := g.open
			g.open = nil
			for _, a := range calls {
				g.alone(a.r)
			}
		}
		g.done = append(g.done, g.open...)
		g.open = g.open[:0]
	}
	if len(g.done) == 0 && g.s.commits.Load() == g.s.syncedUpTo() {
		return
	}
	g.syncing = true
	g.s.committed <- syncBatch{answers: g.done, upTo: g.s.commits.Load()}
	g.done = nil
}

// syncBatch is what the syncer makes durable: the commits numbered up to
// upTo, and the calls to answer then.
type syncBatch struct {
	answers []answer
	upTo    int64
}

// syncer fsyncs the WAL for each batch the writer hands it, then answers
// the batch's calls and tells the writer, which meanwhile goes on
// executing calls into its next commit. It closes done when the writer has
// stopped and every call is answered.
func (s *Store) syncer(done chan<- struct{}) {
	defer close(done)
	for b := range s.committed {
		err := s.wal.sync()
		if err != nil {
			err = fmt.Errorf("sqlitestore: sync: %w", err)
		}
		// A failed fsync is not retried (after one, Linux may have dropped
		// the dirty pages): the calls and Syncs it was for fail.
		s.setSynced(b.upTo, err)
		for _, a := range b.answers {
			a.r.done <- cmp.Or(err, a.err)
		}
		s.synced <- struct{}{}
	}
}

// resize sets *buf to n zero values, reusing its array, and returns it.
func resize[T any](buf *[]T, n int) []T {
	*buf = slices.Grow((*buf)[:0], n)[:n]
	clear(*buf)
	return *buf
}

// transact applies ops if every condition holds; otherwise it returns
// ErrConditionFailed having written nothing.
//
// A conditional put carries its condition in its own statement, so that
// it costs one statement rather than a read and a write: an IfAbsent put
// is an insert that replaces only an expired item, an IfVersion put an
// update of the version and data alone where the version matches and the
// GSI keys and expiry are unchanged (the usual profile update); rows
// affected tell whether the condition held. An IfVersion put that changes
// the GSI keys or expiry, a check and a conditional delete read the stored
// item first. Checks come first and write nothing, then conditional puts,
// then the rest: a failed condition after a conditional put rolls back to
// a savepoint taken before it. An unconditional put is an upsert.
func (w *writer) transact(ops []profiles.Op, now int64) error {
	resize(&w.stored, len(ops))
	puts := 0 // conditional puts, which write as they check
	for i := range ops {
		op := &ops[i]
		if !op.Conditional() {
			continue
		}
		if op.Put != nil && !op.Check {
			puts++
			continue
		}
		if err := w.check(op, &w.stored[i], now); err != nil {
			return err
		}
	}
	if puts > 1 {
		if _, err := w.savepoint.Exec(); err != nil {
			return err
		}
	}
	err := w.conditionalPuts(ops, now)
	if puts > 1 {
		if errors.Is(err, profiles.ErrConditionFailed) {
			if rerr := w.undo(w.rollbackTo); rerr != nil {
				return rerr
			}
		}
		if _, rerr := w.release.Exec(); rerr != nil && err == nil {
			err = rerr
		}
	}
	if err != nil {
		return err
	}
	for i := range ops {
		op := &ops[i]
		var err error
		switch {
		case op.Check || op.Put != nil && op.Conditional():
			// checked, or written above
		case op.Delete != nil:
			if _, err = w.del.Exec(op.Delete.PK, op.Delete.SK); err == nil {
				w.known.set(*op.Delete, stored{})
			}
		default:
			it := op.Put
			_, err = w.upsert.Exec(it.PK, it.SK, nullString(it.GSI1PK), nullString(it.GSI1SK), it.Data, nullInt(it.ExpiresAt))
			w.known.forget(itemKey(it))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// check reads the stored item of op's key into st, from what the writer
// knows or else from the file, and reports whether op's condition holds.
func (w *writer) check(op *profiles.Op, st *stored, now int64) error {
	k := profiles.OpKey(op)
	if kst, ok := w.known.get(k); ok {
		*st = kst
	} else {
		err := w.meta.QueryRow(k.PK, k.SK).Scan(&st.version, &st.expiresAt, &st.gsi1pk, &st.gsi1sk)
		switch {
		case err == nil:
			st.found = true
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		w.known.set(k, *st)
	}
	exists := st.found && live(st.expiresAt, now)
	if op.IfAbsent && exists || op.IfExists && !exists || op.IfVersion != 0 && (!exists || st.version != op.IfVersion) {
		return profiles.ErrConditionFailed
	}
	return nil
}

// conditionalPuts writes the conditional puts of ops, each in one
// statement whose rows affected say whether its condition held, but for an
// IfVersion put whose one statement finds nothing to update: it checks
// first, then writes it whole.
func (w *writer) conditionalPuts(ops []profiles.Op, now int64) error {
	for i := range ops {
		op := &ops[i]
		if op.Put == nil || op.Check || !op.Conditional() {
			continue
		}
		it := op.Put
		var res sql.Result
		var err error
		if op.IfAbsent {
			res, err = w.insertIfAbsent.Exec(it.PK, it.SK, nullString(it.GSI1PK), nullString(it.GSI1SK), it.Data, nullInt(it.ExpiresAt), now)
		} else {
			res, err = w.setDataIf.Exec(it.PK, it.SK, op.IfVersion+1, it.Data, op.IfVersion, now, nullString(it.GSI1PK), nullString(it.GSI1SK), nullInt(it.ExpiresAt))
		}
		if err != nil {
			return err
		}
		version := int64(1)
		if !op.IfAbsent {
			version = op.IfVersion + 1
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 1 {
			w.known.set(itemKey(it), written(it, version))
			continue
		}
		if op.IfAbsent {
			return profiles.ErrConditionFailed
		}
		// The version does not match, or the GSI keys or expiry change.
		if err := w.check(op, &w.stored[i], now); err != nil {
			return err
		}
		if err := w.write(w.replace, it, version); err != nil {
			return err
		}
	}
	return nil
}

func itemKey(it *profiles.Item) profiles.Key { return profiles.Key{PK: it.PK, SK: it.SK} }

// written is the stored state of it once written with version.
func written(it *profiles.Item, version int64) stored {
	return stored{found: true, version: version, expiresAt: it.ExpiresAt, gsi1pk: it.GSI1PK, gsi1sk: it.GSI1SK}
}

// undo runs a rollback statement (rollback, or rollbackTo a savepoint),
// which undoes writes known may describe: it forgets them all.
func (w *writer) undo(rollback *sql.Stmt) error {
	w.known.reset()
	_, err := rollback.Exec()
	return err
}

// putBatch writes items with version 1, replacing any stored item.
func (w *writer) putBatch(items []profiles.Item) error {
	for i := range items {
		if err := w.write(w.overwrite, &items[i], 1); err != nil {
			return err
		}
	}
	return nil
}

// write runs st (replace or overwrite) for it with version.
func (w *writer) write(st *sql.Stmt, it *profiles.Item, version int64) error {
	if _, err := st.Exec(it.PK, it.SK, nullString(it.GSI1PK), nullString(it.GSI1SK), version, it.Data, nullInt(it.ExpiresAt)); err != nil {
		w.known.forget(itemKey(it))
		return err
	}
	w.known.set(itemKey(it), written(it, version))
	return nil
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullInt(n int64) any {
	if n == 0 {
		return nil
	}
	return n
}

// Sweep deletes every expired item now and returns how many it deleted.
// The writer also sweeps on its own every Config.SweepInterval; Sweep is
// for tests and maintenance.
func (s *Store) Sweep(ctx context.Context) (int64, error) {
	var n int64
	r := newRequest()
	r.swept = &n
	if err := s.submit(ctx, r); err != nil {
		return 0, err
	}
	return n, nil
}

// sweepOnce deletes up to sweepChunk expired items in a transaction of its
// own and returns how many.
func (s *Store) sweepOnce() int64 {
	n, err := s.w.sweepChunk(s.now().Unix())
	if err != nil {
		s.logger.Error("sqlitestore: sweep expired items", "error", err)
	}
	return n
}

func (w *writer) sweepChunk(now int64) (int64, error) {
	w.known.reset() // what was deleted is not known
	res, err := w.sweep.Exec(now)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// sweepAll deletes every item expired at now.
func (w *writer) sweepAll(now int64) (int64, error) {
	var total int64
	for {
		n, err := w.sweepChunk(now)
		total += n
		if err != nil || n < sweepChunk {
			return total, err
		}
	}
}

// syncState is how far the syncer got: Sync waits on it.
type syncState struct {
	mu   sync.Mutex
	upTo int64 // commits numbered up to upTo are durable
	err  error // the last fsync's error
	// wake is closed, and replaced, whenever upTo moves.
	wake chan struct{}
}

func (s *Store) setSynced(upTo int64, err error) {
	s.sync.mu.Lock()
	defer s.sync.mu.Unlock()
	s.sync.upTo, s.sync.err = upTo, err
	close(s.sync.wake)
	s.sync.wake = make(chan struct{})
}

func (s *Store) syncedUpTo() int64 {
	s.sync.mu.Lock()
	defer s.sync.mu.Unlock()
	return s.sync.upTo
}

// Sync implements profiles.Syncer: it returns once every commit that a
// read made before the call could have seen is durable. Reads may see a
// commit a few milliseconds before its fsync has returned; a caller that
// answers from reads alone (a duplicate event) calls Sync first. With no
// commit waiting for its fsync, Sync returns at once.
func (s *Store) Sync(ctx context.Context) error {
	target := s.commits.Load()
	for {
		s.sync.mu.Lock()
		upTo, err, wake := s.sync.upTo, s.sync.err, s.sync.wake
		s.sync.mu.Unlock()
		if upTo >= target {
			return err
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.stopped:
			// The writer made every commit durable before it stopped.
			if s.syncedUpTo() >= target {
				return nil
			}
			return ErrClosed
		}
	}
}
