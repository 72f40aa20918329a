// Package replicas records the live server replicas of one control-plane
// database, so that the deployment model of each engine is enforced: the
// local engine keeps tenants' zones and profiles in one replica's data
// directory and so is single-node, while AWS mode runs any number of
// replicas.
//
// Each replica holds a lease: a row naming it, its engine, host and data
// directory, that it renews every Lease/3 and that lapses Lease after the
// last renewal (15s by default). Join admits a replica only when no live
// lease forbids it: a local-engine replica needs to be alone; an AWS-mode
// replica needs no live local-engine replica beside it. A replica whose
// lease lapsed (it crashed, or was killed) blocks no one.
//
// Errors: Join returns a *RefusedError (matching ErrRefused) when another
// replica's lease forbids starting; Run returns one when the lease was lost
// and taking it again is refused. Store errors are wrapped. A Heartbeat is
// used by one goroutine at a time (Run, then Leave).
package replicas

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// Engines a replica may run.
const (
	EngineLocal = "local"
	EngineAWS   = "aws"
)

// DefaultLease is the lease of a replica unless configured.
const DefaultLease = 15 * time.Second

// Sentinel errors.
var (
	// ErrRefused is matched by the *RefusedError of Join and Run.
	ErrRefused = errors.New("replicas: refused")
	// ErrDataDirBusy is returned by LockDataDir when another process
	// holds the data directory.
	ErrDataDirBusy = errors.New("replicas: data directory in use")
	// ErrNoLock is returned by LockDataDir where the platform has no
	// advisory file locks.
	ErrNoLock = errors.New("replicas: no file locks on this platform")
)

// Replica is one lease row.
type Replica struct {
	ID        string
	Engine    string
	Host      string
	DataDir   string
	StartedAt time.Time
	// ExpiresAt is when the lease lapses unless renewed.
	ExpiresAt time.Time
}

// Store is the leases' table. Adapters translate their driver errors.
type Store interface {
	// ReplicaJoin, in one transaction that excludes other joins, lists the
	// replicas whose lease lasts past now (other than r), calls admit with
	// them and, if admit returns nil, stores r (replacing a row of its
	// ID). admit's error is returned as is.
	ReplicaJoin(ctx context.Context, r Replica, now time.Time, admit func(live []Replica) error) error
	// ReplicaRenew sets the lease of id to last until expiresAt and
	// reports whether the row was there to renew.
	ReplicaRenew(ctx context.Context, id string, expiresAt time.Time) (bool, error)
	// ReplicaLeave deletes id's lease.
	ReplicaLeave(ctx context.Context, id string) error
	// ReplicaCount returns how many replicas' leases last past now.
	ReplicaCount(ctx context.Context, now time.Time) (int, error)
}

// Config configures Join.
type Config struct {
	// Store is required.
	Store Store
	// Engine is EngineLocal or EngineAWS.
	Engine string
	// Host and DataDir describe the replica to the operator of another
	// one it blocks.
	Host, DataDir string
	// SingleNode makes the replica need to be alone whatever its engine
	// (the embedded SQLite database is one process's).
	SingleNode bool
	// DataDirLocked says the caller holds LockDataDir on DataDir, so a
	// live lease of this Host and DataDir is a dead process's (killed
	// before it could give the lease up) and blocks nothing: a server
	// restarted after a crash starts at once.
	DataDirLocked bool
	// Lease is how long the lease lasts after each renewal; default
	// DefaultLease, at least one second.
	Lease time.Duration
	// Now is the clock; default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// RefusedError says which live replica forbids starting, and why.
type RefusedError struct {
	// Rule is the rule that forbids it, for example "the local engine is
	// single-node".
	Rule string
	// Live is the replica whose lease forbids it.
	Live Replica
}

func (e *RefusedError) Error() string {
	l := e.Live
	return fmt.Sprintf("%s, so this replica will not start: replica %s on host %s (data directory %s, engine %s) is live on this control-plane database, its lease lasting until %s unless renewed. "+
		"Stop that replica (if it died, its lease lapses by then), or run every replica with --cloud aws on PostgreSQL",
		e.Rule, l.ID, l.Host, l.DataDir, l.Engine, l.ExpiresAt.UTC().Format(time.RFC3339))
}

// Is makes errors.Is(err, ErrRefused) true.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// Heartbeat is a joined replica's lease.
type Heartbeat struct {
	cfg Config
	me  Replica
	// live is how many replicas held a live lease at the last renewal,
	// this one included (see Live).
	live atomic.Int64
}

// Join takes a lease for this replica, or returns a *RefusedError naming
// the live replica that forbids it.
func Join(ctx context.Context, cfg Config) (*Heartbeat, error) {
	if cfg.Store == nil {
		return nil, errors.New("replicas: Store is required")
	}
	if cfg.Engine != EngineLocal && cfg.Engine != EngineAWS {
		return nil, fmt.Errorf("replicas: engine %q: want %s or %s", cfg.Engine, EngineLocal, EngineAWS)
	}
	if cfg.Lease == 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.Lease < time.Second {
		return nil, fmt.Errorf("replicas: lease %s is shorter than 1s", cfg.Lease)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	now := cfg.Now()
	h := &Heartbeat{cfg: cfg, me: Replica{
		ID: "rep_" + rand.Text(), Engine: cfg.Engine, Host: cfg.Host, DataDir: cfg.DataDir,
		StartedAt: now.UTC(),
	}}
	if err := h.join(ctx, now); err != nil {
		return nil, err
	}
	h.live.Store(1)
	h.count(ctx, now)
	return h, nil
}

// Live returns how many replicas held a live lease when this one last
// renewed its own, itself included: at least 1. Replicas that share a
// budget (the rate limits of package ratelimit) each take 1/Live of it. A
// replica that joins is counted by the others within Lease/3; one that
// stops, once its lease has lapsed (or at once when it left cleanly).
// Safe for concurrent use.
func (h *Heartbeat) Live() int { return int(h.live.Load()) }

// count refreshes Live; a failed count keeps the last one.
func (h *Heartbeat) count(ctx context.Context, now time.Time) {
	n, err := h.cfg.Store.ReplicaCount(ctx, now)
	if err != nil {
		if ctx.Err() == nil {
			h.cfg.Logger.WarnContext(ctx, "counting the live replicas failed", "replica", h.me.ID, "error", err)
		}
		return
	}
	h.live.Store(int64(max(n, 1)))
}

// ID is the replica's ID in the lease table.
func (h *Heartbeat) ID() string { return h.me.ID }

func (h *Heartbeat) join(ctx context.Context, now time.Time) error {
	r := h.me
	r.ExpiresAt = now.Add(h.cfg.Lease).UTC()
	err := h.cfg.Store.ReplicaJoin(ctx, r, now, func(live []Replica) error {
		for _, l := range live {
			switch {
			case h.cfg.DataDirLocked && l.Host == h.cfg.Host && l.DataDir == h.cfg.DataDir:
				continue
			case h.cfg.Engine == EngineLocal || l.Engine == EngineLocal:
				return &RefusedError{Rule: "the local engine is single-node", Live: l}
			case h.cfg.SingleNode:
				return &RefusedError{Rule: "the embedded SQLite database serves a single replica", Live: l}
			}
		}
		return nil
	})
	var refused *RefusedError
	if err != nil && !errors.As(err, &refused) {
		return fmt.Errorf("replicas: join: %w", err)
	}
	return err
}

// Run renews the lease every Lease/3 until ctx is done. A renewal that
// fails is logged and tried again at the next tick; a lease found gone
// (it lapsed and another replica's join cleared it) is taken again if
// nothing forbids it, and otherwise Run returns the *RefusedError: this
// replica must stop.
func (h *Heartbeat) Run(ctx context.Context) error {
	t := time.NewTicker(h.cfg.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		now := h.cfg.Now()
		ok, err := h.cfg.Store.ReplicaRenew(ctx, h.me.ID, now.Add(h.cfg.Lease).UTC())
		if err == nil && !ok {
			h.cfg.Logger.WarnContext(ctx, "replica lease lapsed; taking it again", "replica", h.me.ID)
			err = h.join(ctx, now)
			if errors.Is(err, ErrRefused) {
				return err
			}
		}
		if err != nil && ctx.Err() == nil {
			h.cfg.Logger.WarnContext(ctx, "renewing the replica lease failed", "replica", h.me.ID, "error", err)
		}
		if err == nil {
			h.count(ctx, now)
		}
	}
}

// Leave gives the lease up, so that another replica may start at once.
func (h *Heartbeat) Leave(ctx context.Context) error {
	if err := h.cfg.Store.ReplicaLeave(ctx, h.me.ID); err != nil {
		return fmt.Errorf("replicas: leave: %w", err)
	}
	return nil
}
