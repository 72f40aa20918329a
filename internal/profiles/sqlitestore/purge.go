package sqlitestore

import (
	"context"
	"fmt"

	"golang.org/x/sync/errgroup"

	"github.com/cairn-cdp/cairn/internal/profiles"
)

// purgePage is the most keys DeleteTenant reads, then deletes, at a time:
// as many as a sweep chunk, so a page holds the write lock about as long
// as a sweep does.
const purgePage = sweepChunk

// DeleteTenant implements profiles.Store. A tenant's items are one range
// of the primary key, [TENANT#<tenant>#, TENANT#<tenant>$), so it reads
// only them (expired ones included), a page of purgePage keys at a time in
// key order, each page after the last key of the one before. It deletes a
// page as Transact calls of MaxTransactOps deletes submitted together: the
// writer commits them in one group, one transaction and one fsync, and
// calls of other tenants queued meanwhile go in between pages. An item
// written behind the read position while it runs is left for the next
// call. It returns how many items it deleted before an error, with the
// error (also ErrPurgeUnfinished if ctx ended after some were).
func (s *Store) DeleteTenant(ctx context.Context, tenant string) (int, error) {
	prefix, err := profiles.TenantKeyPrefix(tenant)
	if err != nil {
		return 0, err
	}
	if s.closed() {
		return 0, ErrClosed
	}
	end, _ := prefixEnd(prefix) // the prefix ends in '#', so it has one
	deleted := 0
	// Sort keys are never empty, so (prefix, "") sorts before every key of
	// the range.
	after := profiles.Key{PK: prefix}
	fail := func(err error) (int, error) {
		if deleted > 0 && ctx.Err() != nil {
			err = fmt.Errorf("%w: %w", profiles.ErrPurgeUnfinished, err)
		}
		return deleted, fmt.Errorf("sqlitestore: delete tenant %s: %w", tenant, err)
	}
	for {
		keys, err := s.keyPage(ctx, after, end)
		if err != nil {
			return fail(err)
		}
		n, err := s.deleteKeys(ctx, keys)
		deleted += n
		if err != nil {
			return fail(err)
		}
		if len(keys) < purgePage {
			return deleted, nil
		}
		after = keys[len(keys)-1]
	}
}

// keyPage reads up to purgePage keys after after and before the partition
// key end, in key order. The row-value comparison is a range of the
// primary key.
func (s *Store) keyPage(ctx context.Context, after profiles.Key, end string) ([]profiles.Key, error) {
	rows, err := s.readDB.QueryContext(ctx, `SELECT pk, sk FROM items
		WHERE (pk, sk) > (?1, ?2) AND pk < ?3 ORDER BY pk, sk LIMIT ?4`,
		after.PK, after.SK, end, purgePage)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	keys := make([]profiles.Key, 0, purgePage)
	for rows.Next() {
		var k profiles.Key
		if err := rows.Scan(&k.PK, &k.SK); err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

// deleteKeys deletes keys (of one tenant, each once) and returns how many
// it deleted: those of the Transact calls that succeeded.
func (s *Store) deleteKeys(ctx context.Context, keys []profiles.Key) (int, error) {
	var eg errgroup.Group
	done := make([]int, (len(keys)+profiles.MaxTransactOps-1)/profiles.MaxTransactOps)
	for i := range done {
		chunk := keys[i*profiles.MaxTransactOps : min((i+1)*profiles.MaxTransactOps, len(keys))]
		eg.Go(func() error {
			ops := make([]profiles.Op, len(chunk))
			for j := range chunk {
				ops[j].Delete = &chunk[j]
			}
			if err := s.Transact(ctx, ops); err != nil {
				return err
			}
			done[i] = len(chunk)
			return nil
		})
	}
	err := eg.Wait()
	n := 0
	for _, d := range done {
		n += d
	}
	return n, err
}
