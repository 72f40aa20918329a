package dynamostore

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/cairn-cdp/cairn/internal/profiles"
)

// TableRef names a profile table in a Region, for the calls that work on
// a given table rather than on the one Config.Tables names for a tenant.
type TableRef struct {
	Region string
	Name   string
}

func (s *Store) tableIn(ref TableRef) (table, error) {
	if ref.Region == "" || ref.Name == "" {
		return table{}, fmt.Errorf("dynamostore: table %q in Region %q: empty Region or table name", ref.Name, ref.Region)
	}
	client, err := s.clients.Client(ref.Region)
	if err != nil {
		return table{}, fmt.Errorf("dynamostore: table %s: %w", ref.Name, err)
	}
	return table{client: client, region: ref.Region, name: ref.Name}, nil
}

// CopyCounts is what one CopyTenant found and did.
type CopyCounts struct {
	// Items is how many items of the tenant the source holds.
	Items int64
	// Written and Removed count the target's items written and deleted.
	Written int64
	Removed int64
}

// CopyTenant makes the tenant's items in the table to what they are in
// the table from (a tier migration's copy between a pool table and a
// dedicated one; the keys are the same in both): it reads the target's
// items of the tenant (a consistent Scan filtered on the tenant's key
// prefix), then the source's, writes with BatchWriteItem, retrying
// unprocessed items as PutBatch does, those the target lacks or holds
// otherwise, and deletes from the target those the source no longer has.
//
// It is safe to repeat: a call cut short is done again by the next one,
// which writes only what is still missing or differs. An item written to
// the source behind the scan is left for the next call (the migration's
// delta, under its write fence, is that call). It holds a digest of each
// of the target's items in memory. The target is written by nobody else
// meanwhile: the tenant's reads and writes go to the source until the
// switch.
func (s *Store) CopyTenant(ctx context.Context, tenant string, from, to TableRef) (CopyCounts, error) {
	var c CopyCounts
	prefix, err := profiles.TenantKeyPrefix(tenant)
	if err != nil {
		return c, err
	}
	if from == to {
		return c, fmt.Errorf("dynamostore: copy tenant %s: source and target are both %s", tenant, to.Name)
	}
	src, err := s.tableIn(from)
	if err != nil {
		return c, err
	}
	dst, err := s.tableIn(to)
	if err != nil {
		return c, err
	}
	fail := func(err error) (CopyCounts, error) {
		return c, fmt.Errorf("dynamostore: copy tenant %s from %s to %s: %w", tenant, src.name, dst.name, err)
	}
	have := map[profiles.Key][sha256.Size]byte{}
	err = scanPages(ctx, dst, tenantScan(dst, prefix, false), func(items []map[string]types.AttributeValue) error {
		for _, m := range items {
			it, err := parseItem(m)
			if err != nil {
				return err
			}
			have[profiles.Key{PK: it.PK, SK: it.SK}] = itemDigest(it)
		}
		return nil
	})
	if err != nil {
		return fail(err)
	}
	var puts []types.WriteRequest
	flush := func(atLeast int) error {
		if len(puts) < max(atLeast, 1) {
			return nil
		}
		if err := s.writeBatch(ctx, dst.client, map[string][]types.WriteRequest{dst.name: puts}); err != nil {
			return fmt.Errorf("batch write: %w", err)
		}
		c.Written += int64(len(puts))
		puts = nil
		return nil
	}
	err = scanPages(ctx, src, tenantScan(src, prefix, false), func(items []map[string]types.AttributeValue) error {
		for _, m := range items {
			it, err := parseItem(m)
			if err != nil {
				return err
			}
			c.Items++
			k := profiles.Key{PK: it.PK, SK: it.SK}
			d, found := have[k]
			delete(have, k)
			if found && d == itemDigest(it) {
				continue
			}
			puts = append(puts, types.WriteRequest{PutRequest: &types.PutRequest{Item: m}})
			if err := flush(batchWriteMax); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = flush(1)
	}
	if err != nil {
		return fail(err)
	}
	stale := make([]map[string]types.AttributeValue, 0, len(have))
	for k := range have {
		stale = append(stale, keyAttrs(k))
	}
	for start := 0; start < len(stale); start += batchWriteMax {
		chunk := stale[start:min(start+batchWriteMax, len(stale))]
		if err := s.deleteBatch(ctx, dst, chunk); err != nil {
			return fail(err)
		}
		c.Removed += int64(len(chunk))
	}
	return c, nil
}

// scanPages runs the Scan to its end, handing each page's items to fn.
func scanPages(ctx context.Context, t table, in *dynamodb.ScanInput, fn func([]map[string]types.AttributeValue) error) error {
	for {
		page, err := t.client.Scan(ctx, in)
		if err != nil {
			return fmt.Errorf("scan %s: %w", t.name, err)
		}
		if err := fn(page.Items); err != nil {
			return err
		}
		if len(page.LastEvaluatedKey) == 0 {
			return nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}

// itemDigest identifies an item's stored content.
func itemDigest(it profiles.Item) [sha256.Size]byte {
	h := sha256.New()
	for _, s := range []string{it.PK, it.SK, it.GSI1PK, it.GSI1SK} {
		h.Write(binary.AppendUvarint(nil, uint64(len(s))))
		h.Write([]byte(s))
	}
	h.Write(binary.AppendVarint(nil, it.Version))
	h.Write(binary.AppendVarint(nil, it.ExpiresAt))
	h.Write(it.Data)
	var d [sha256.Size]byte
	h.Sum(d[:0])
	return d
}
