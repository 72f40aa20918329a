package profiles

import (
	"context"
	"errors"
)

// The profile store is a single-table key-value model in DynamoDB's shape,
// so that the same resolution code runs on DynamoDB in AWS mode and on the
// embedded store by default. Every partition key starts with
// "TENANT#<tenant id>#", so a dynamodb:LeadingKeys condition can confine a
// pooled tenant's credentials to its own items, and so can gsi1pk.

// Item is one stored item.
type Item struct {
	PK string
	SK string
	// GSI1PK and GSI1SK index the item in gsi1 when GSI1PK is set.
	GSI1PK string
	GSI1SK string
	// Version increases on every write (optimistic concurrency); the store
	// sets it: 1 on first write.
	Version int64
	// Data is the item's document: JSON, but for a member's combined
	// aggregates, which have a binary form (aggcodec.go).
	Data []byte
	// ExpiresAt, when not zero, is a Unix time after which the item may be
	// deleted (DynamoDB TTL). Readers must ignore expired items: the
	// emulator and DynamoDB itself may keep them for a while.
	ExpiresAt int64
	// memo is Data decoded, kept with the item by the item cache (see
	// itemcache.go); stores neither read nor write it.
	memo *memo
}

// Key names an item.
type Key struct {
	PK string
	SK string
}

// Op is one write of a transaction: exactly one of Put and Delete is set.
type Op struct {
	Put    *Item
	Delete *Key
	// IfAbsent requires that no unexpired item exists under the key.
	IfAbsent bool
	// IfVersion, when not zero, requires the stored item's Version to equal
	// it (and the item to exist).
	IfVersion int64
	// IfExists requires an unexpired item under the key, whatever its
	// version. It is for Check and Delete ops only.
	IfExists bool
	// Check only checks the condition (IfAbsent, IfVersion or IfExists) on
	// the key of Put or Delete, writing nothing (DynamoDB ConditionCheck).
	Check bool
}

// Conditional reports whether the op has a condition.
func (op *Op) Conditional() bool { return op.IfAbsent || op.IfVersion != 0 || op.IfExists }

// QueryInput reads items of one partition (or of one gsi1 partition), in
// sort-key order.
type QueryInput struct {
	// PK is the partition key, or the gsi1 partition key when Index is
	// "gsi1".
	PK    string
	Index string
	// Prefix, if set, keeps only sort keys that start with it.
	Prefix string
	// After, if set, starts after this sort key (in the query's order).
	After string
	// Desc reads in descending sort-key order.
	Desc bool
	// Limit bounds the items returned; 0 means all.
	Limit int
}

// Sentinel errors of Store implementations.
var (
	// ErrConditionFailed is returned by Transact when a condition of any op
	// failed; nothing was written.
	ErrConditionFailed = errors.New("condition failed")
	// ErrTooManyOps is returned by Transact for more than MaxTransactOps.
	ErrTooManyOps = errors.New("too many operations in one transaction")
)

// MaxTransactOps is the most ops in one Transact (DynamoDB's limit).
const MaxTransactOps = 100

// Store is the profile store port. Implementations are safe for
// concurrent use by several replicas: all coordination is by conditions.
type Store interface {
	// Get returns the item, or false if there is none (or it expired).
	Get(ctx context.Context, k Key) (Item, bool, error)
	// BatchGet returns the items that exist among keys (any number; the
	// implementation batches, 100 keys a call on DynamoDB).
	BatchGet(ctx context.Context, keys []Key) (map[Key]Item, error)
	// Query reads a partition in sort-key order.
	Query(ctx context.Context, in QueryInput) ([]Item, error)
	// Transact applies ops all or nothing. A failed condition returns
	// ErrConditionFailed and writes nothing. Puts set Version to the
	// stored version + 1 (1 for a new item). All ops of one call belong to
	// one tenant.
	Transact(ctx context.Context, ops []Op) error
	// PutBatch writes items unconditionally, in as few calls as the store
	// allows (25 items a call on DynamoDB), with Version 1: it is for items
	// written once, such as events.
	PutBatch(ctx context.Context, items []Item) error
	// DeleteTenant deletes every item of the tenant, expired ones
	// included, and returns how many it found and deleted; see
	// TenantKeyPrefix. It is for the offboarding job only, never a request
	// path: it reads the tenant's whole key range on SQLite and scans the
	// whole table on DynamoDB. It is not atomic, and items the tenant
	// writes while it runs may survive it; calling it again deletes what is
	// left (and returns 0 once nothing is). A call cut short by ctx keeps
	// what it deleted, and on DynamoDB its progress through the table, so
	// that the next call does not read it again; its error is then also
	// ErrPurgeUnfinished. A tenant that is not a tenant ID is
	// ErrInvalidInput, and deletes nothing.
	DeleteTenant(ctx context.Context, tenant string) (int, error)
	// Count returns how many items Query would return for in (its Limit
	// ignored), reading keys only where the store can (DynamoDB's Select
	// COUNT).
	Count(ctx context.Context, in QueryInput) (int, error)
	// Scan reads, across partitions, the live items of one tenant whose
	// partition key starts with in.PKPrefix and whose sort key is in.SK,
	// a page at a time: it returns up to in.Limit items (at least one
	// unless the scan is done) and the key to pass as in.After for the
	// next page, zero when there is none. Pages come in no particular
	// order across calls. It is for background jobs (a segment's
	// recompute), never a request path: SQLite reads the key range,
	// DynamoDB scans the table with a filter.
	Scan(ctx context.Context, in ScanInput) ([]Item, Key, error)
}

// ScanInput selects the items of a Scan.
type ScanInput struct {
	// PKPrefix starts with a tenant's key prefix (TENANT#<id>#).
	PKPrefix string
	SK       string
	After    Key
	// Limit bounds a page; 0 means 1000.
	Limit int
}

// Syncer is implemented by a Store whose reads may see a write a moment
// before it is durable (sqlitestore commits, then fsyncs). Sync returns
// once every write that a read made before the call could have seen is
// durable. A caller that answers from reads alone, such as a duplicate
// event's acknowledgement, calls it first, so that it never acknowledges
// what a crash could still undo.
type Syncer interface {
	Sync(ctx context.Context) error
}
