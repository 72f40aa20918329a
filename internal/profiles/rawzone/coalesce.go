package rawzone

import (
	"cmp"
	"context"
	"sync"
	"time"

	"github.com/cairn-cdp/cairn/internal/profiles"
)

// Coalescer merges concurrent appends of one tenant into one object: while
// an append of the tenant is being written, the appends that arrive wait
// and are then written together, as one object. Under load a tenant's raw
// zone gets fewer, larger objects for the same events (fewer fsyncs on
// local disk, fewer PUTs on S3, better for the query engines that read
// them); a lone append is written at once, as without it.
//
// Every caller of a merged append gets the same object key and returns
// once the object is durable. Appends are merged only within one date-hour
// partition and up to MaxLines lines and MaxBytes bytes.
type Coalescer struct {
	Zone profiles.RawZone
	// MaxLines and MaxBytes bound a merged object (DefaultMaxLines and
	// DefaultMaxBytes if 0); an append that would overflow either is
	// written on its own.
	MaxLines int
	MaxBytes int

	mu     sync.Mutex
	queues map[string]*appendQueue
}

// Coalescer's default bounds: 50 full Segment batches of 100 events, and
// 32 full batches of 500 KB.
const (
	DefaultMaxLines = 5000
	DefaultMaxBytes = 16 << 20
)

var _ profiles.RawZone = (*Coalescer)(nil)

// appendQueue is one tenant's append in flight and the group waiting for
// it to end.
type appendQueue struct {
	next *appendGroup
}

// appendGroup is appends merged into one object.
type appendGroup struct {
	at    time.Time
	lines [][]byte
	bytes int
	ready chan struct{} // closed when the group may be written
	done  chan struct{} // closed when it was
	key   string
	err   error
}

func samePartition(a, b time.Time) bool {
	return a.UTC().Truncate(time.Hour).Equal(b.UTC().Truncate(time.Hour))
}

// Append implements profiles.RawZone.
func (c *Coalescer) Append(ctx context.Context, tenantID string, at time.Time, lines [][]byte) (string, error) {
	maxLines, maxBytes := cmp.Or(c.MaxLines, DefaultMaxLines), cmp.Or(c.MaxBytes, DefaultMaxBytes)
	size := 0
	for _, l := range lines {
		size += len(l) + 1
	}
	c.mu.Lock()
	if c.queues == nil {
		c.queues = map[string]*appendQueue{}
	}
	q, busy := c.queues[tenantID]
	if !busy {
		c.queues[tenantID] = &appendQueue{}
		c.mu.Unlock()
		key, err := c.Zone.Append(ctx, tenantID, at, lines)
		c.finish(tenantID)
		return key, err
	}
	g := q.next
	if g != nil && (!samePartition(g.at, at) || len(g.lines)+len(lines) > maxLines || g.bytes+size > maxBytes) {
		c.mu.Unlock()
		return c.Zone.Append(ctx, tenantID, at, lines) // on its own
	}
	leader := g == nil
	if leader {
		g = &appendGroup{at: at, ready: make(chan struct{}), done: make(chan struct{})}
		q.next = g
	}
	g.lines = append(g.lines, lines...)
	g.bytes += size
	c.mu.Unlock()

	// Waits end with the writes ahead, not with ctx: lines handed to a
	// group are written, and their callers must learn where.
	if !leader {
		<-g.done
		return g.key, g.err
	}
	<-g.ready // the append in flight ended; g is sealed
	// The group's write serves every member: one leaving must not stop it.
	g.key, g.err = c.Zone.Append(context.WithoutCancel(ctx), tenantID, g.at, g.lines)
	close(g.done)
	c.finish(tenantID)
	return g.key, g.err
}

// finish ends the tenant's append in flight: the waiting group, if any, is
// sealed and goes next.
func (c *Coalescer) finish(tenantID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	q := c.queues[tenantID]
	if q.next == nil {
		delete(c.queues, tenantID)
		return
	}
	close(q.next.ready)
	q.next = nil
}

// Waiting returns how many lines of the tenant wait for the append in
// flight to end.
func (c *Coalescer) Waiting(tenantID string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if q := c.queues[tenantID]; q != nil && q.next != nil {
		return len(q.next.lines)
	}
	return 0
}

// Rewrite implements profiles.RawZone.
func (c *Coalescer) Rewrite(ctx context.Context, tenantID, key string, keep func(line []byte) bool) (int, error) {
	return c.Zone.Rewrite(ctx, tenantID, key, keep)
}

// Read implements profiles.RawZone.
func (c *Coalescer) Read(ctx context.Context, tenantID, key string) ([][]byte, error) {
	return c.Zone.Read(ctx, tenantID, key)
}

// List implements profiles.RawZone.
func (c *Coalescer) List(ctx context.Context, tenantID string) ([]string, error) {
	return c.Zone.List(ctx, tenantID)
}
