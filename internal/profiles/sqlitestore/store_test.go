package sqlitestore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/profiles"
	"github.com/cairn-cdp/cairn/internal/profiles/sqlitestore"
	"github.com/cairn-cdp/cairn/internal/profiles/storetest"
	"github.com/cairn-cdp/cairn/internal/tenants"
)

func open(t testing.TB, cfg sqlitestore.Config) *sqlitestore.Store {
	t.Helper()
	if cfg.Path == "" {
		cfg.Path = filepath.Join(t.TempDir(), sqlitestore.FileName)
	}
	s, err := sqlitestore.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func TestContract(t *testing.T) {
	t.Parallel()
	// One store for every subtest, as in production: the concurrent
	// subtests exercise group commit too.
	s := open(t, sqlitestore.Config{})
	storetest.Run(t, func(*testing.T) profiles.Store { return s })
}

func TestContractStorePerTest(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) profiles.Store { return open(t, sqlitestore.Config{}) })
}

func TestPurgeContract(t *testing.T) {
	t.Parallel()
	s := open(t, sqlitestore.Config{})
	storetest.RunDeleteTenant(t, func(*testing.T) profiles.Store { return s })
}

func pk(tenant, name string) string { return "TENANT#" + tenant + "#" + name }

func TestReopenKeepsWrites(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "profiles.db")
	s, err := sqlitestore.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	k := profiles.Key{PK: pk(tenants.NewID(), "PROFILE#p"), SK: "META"}
	for range 3 {
		if err := s.Transact(ctx, []profiles.Op{{Put: &profiles.Item{PK: k.PK, SK: k.SK, Data: []byte(`{}`)}}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	s = open(t, sqlitestore.Config{Path: path})
	it, ok, err := s.Get(ctx, k)
	if err != nil || !ok || it.Version != 3 {
		t.Fatalf("after reopen: %+v, %v, %v; want version 3", it, ok, err)
	}
}

func TestClosed(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "profiles.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	it := profiles.Item{PK: pk(tenants.NewID(), "P"), SK: "S"}
	if err := s.Transact(ctx, []profiles.Op{{Put: &it}}); !errors.Is(err, sqlitestore.ErrClosed) {
		t.Errorf("Transact after Close: %v", err)
	}
	if err := s.PutBatch(ctx, []profiles.Item{it}); !errors.Is(err, sqlitestore.ErrClosed) {
		t.Errorf("PutBatch after Close: %v", err)
	}
	if _, _, err := s.Get(ctx, profiles.Key{PK: it.PK, SK: it.SK}); !errors.Is(err, sqlitestore.ErrClosed) {
		t.Errorf("Get after Close: %v", err)
	}
	if _, err := s.Query(ctx, profiles.QueryInput{PK: it.PK}); !errors.Is(err, sqlitestore.ErrClosed) {
		t.Errorf("Query after Close: %v", err)
	}
}

// TestCloseAnswersQueuedCalls closes the store while calls are in flight:
// every call returns, with nil (committed) or ErrClosed (not taken), and
// every nil is durable.
func TestCloseAnswersQueuedCalls(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "profiles.db")
	s, err := sqlitestore.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	tenant := tenants.NewID()
	var (
		wg        sync.WaitGroup
		committed sync.Map
		started   = make(chan struct{}, 64)
	)
	for g := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				it := profiles.Item{PK: pk(tenant, "EVENT"), SK: fmt.Sprintf("%d-%d", g, i)}
				err := s.Transact(ctx, []profiles.Op{{Put: &it, IfAbsent: true}})
				select {
				case started <- struct{}{}:
				default:
				}
				if errors.Is(err, sqlitestore.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("Transact: %v", err)
					return
				}
				committed.Store(it.SK, true)
			}
		})
	}
	for range 64 {
		<-started
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	s = open(t, sqlitestore.Config{Path: path})
	n := 0
	committed.Range(func(sk, _ any) bool {
		n++
		if _, ok, err := s.Get(ctx, profiles.Key{PK: pk(tenant, "EVENT"), SK: sk.(string)}); err != nil || !ok {
			t.Errorf("committed %s: %v, %v", sk, ok, err)
		}
		return true
	})
	if n < 64 {
		t.Fatalf("only %d calls committed", n)
	}
}

func TestCanceledContextWritesNothing(t *testing.T) {
	t.Parallel()
	s := open(t, sqlitestore.Config{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	it := profiles.Item{PK: pk(tenants.NewID(), "P"), SK: "S"}
	if err := s.Transact(ctx, []profiles.Op{{Put: &it}}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Transact with a canceled context: %v", err)
	}
	if _, ok, err := s.Get(t.Context(), profiles.Key{PK: it.PK, SK: it.SK}); err != nil || ok {
		t.Fatalf("after a canceled Transact: %v, %v", ok, err)
	}
}

// clock is a settable test clock.
type clock struct{ unix atomic.Int64 }

func (c *clock) now() time.Time { return time.Unix(c.unix.Load(), 0) }

func TestExpiryFollowsClock(t *testing.T) {
	t.Parallel()
	c := &clock{}
	c.unix.Store(1_000_000)
	s := open(t, sqlitestore.Config{Now: c.now, SweepInterval: -1})
	ctx := t.Context()
	k := profiles.Key{PK: pk(tenants.NewID(), "DEDUP#1"), SK: "DEDUP"}
	if err := s.Transact(ctx, []profiles.Op{{Put: &profiles.Item{PK: k.PK, SK: k.SK, ExpiresAt: 1_000_010}, IfAbsent: true}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		at   int64
		live bool
	}{{1_000_000, true}, {1_000_010, true}, {1_000_011, false}} {
		c.unix.Store(tc.at)
		if _, ok, err := s.Get(ctx, k); err != nil || ok != tc.live {
			t.Errorf("at %d: live %v, %v; want %v", tc.at, ok, err, tc.live)
		}
	}
}

func TestSweepDeletesExpiredItems(t *testing.T) {
	t.Parallel()
	c := &clock{}
	c.unix.Store(time.Now().Unix())
	path := filepath.Join(t.TempDir(), "profiles.db")
	s := open(t, sqlitestore.Config{Path: path, Now: c.now, SweepInterval: -1})
	ctx := t.Context()
	tenant := tenants.NewID()
	var items []profiles.Item
	for i := range 2500 { // more than one sweep chunk
		items = append(items, profiles.Item{PK: pk(tenant, "EVENT"), SK: fmt.Sprintf("%05d", i), ExpiresAt: c.unix.Load() + 5})
	}
	items = append(items, profiles.Item{PK: pk(tenant, "PROFILE"), SK: "META"})
	if err := s.PutBatch(ctx, items); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("Sweep before expiry: %d, %v; want 0", n, err)
	}
	c.unix.Add(10)
	if n, err := s.Sweep(ctx); err != nil || n != 2500 {
		t.Fatalf("Sweep after expiry: %d, %v; want 2500", n, err)
	}
	if got := countRows(t, path); got != 1 {
		t.Fatalf("%d rows left, want the live one", got)
	}
}

// countRows counts the items in the database file, bypassing the Store.
func countRows(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=query_only(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	var n int
	if err := db.QueryRowContext(t.Context(), "SELECT count(*) FROM items").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSync has a reader see an item written concurrently and then Sync,
// with the writer busy, and Sync after Close.
func TestSync(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := open(t, sqlitestore.Config{})
	var _ profiles.Syncer = s
	if err := s.Sync(ctx); err != nil { // nothing to wait for
		t.Fatal(err)
	}
	tenant := tenants.NewID()
	for i := range 20 {
		it := profiles.Item{PK: pk(tenant, "EVENT"), SK: fmt.Sprint(i)}
		done := make(chan error, 1)
		go func() { done <- s.Transact(ctx, []profiles.Op{{Put: &it, IfAbsent: true}}) }()
		for {
			_, ok, err := s.Get(ctx, profiles.Key{PK: it.PK, SK: it.SK})
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				break
			}
			runtime.Gosched()
		}
		if err := s.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatalf("Sync after Close: %v", err)
	}
}
