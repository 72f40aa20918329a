// Package dynamostore is the DynamoDB profiles.Store of AWS mode.
//
// # Tables
//
// Every key starts with "TENANT#<tenant id>#". The Store parses the tenant
// ID from the partition key and asks Config.Tables for the tenant's Region
// and table: a dedicated tenant's own table, or the Region's pool table for
// a pooled tenant (whose keys are already tenant-prefixed, so they share
// the table safely). A table has pk and sk (S) as its primary key, a
// global secondary index gsi1 on gsi1pk and gsi1sk (S, projecting all
// attributes) and TTL on expires_at, as in templates/tenant-dedicated.yaml.
// An item is stored as pk, sk, gsi1pk and gsi1sk (S, the last two omitted
// when empty), v (N), d (B, omitted when empty) and expires_at (N, omitted
// when 0).
//
// # Calls
//
//   - Get: one GetItem (consistent read).
//   - BatchGet: one BatchGetItem per 100 distinct keys of a Region
//     (consistent reads), up to Config.Parallelism at once, plus one per
//     retry of unprocessed keys.
//   - Query: one Query per page (1 MB, or the items still wanted when
//     Limit is set), consistent on the table (gsi1 cannot be). Prefix and
//     After become one key condition; expired items are dropped here.
//   - Transact: one TransactWriteItems; a single unconditional op is one
//     UpdateItem or DeleteItem instead (half the write capacity). Calls
//     cancelled by a transaction conflict or throttling are retried (see
//     Config.MaxConflictRetries).
//   - PutBatch: one BatchWriteItem per 25 distinct keys of a Region, up to
//     Config.Parallelism at once, plus one per retry of unprocessed items.
//
// Each call is retried by the SDK's standard retryer (throttling, 5xx,
// transport errors), with clients made as package awsclient describes. Conditional
// writes always go through TransactWriteItems, whose client request token
// (set by the SDK, the same for every retry of one call) makes a retry of a
// write that did happen succeed rather than fail its own condition.
//
// # Errors
//
// Validation errors are returned before any call (see storetest's package
// doc). A failed condition is profiles.ErrConditionFailed; other SDK errors
// are wrapped as "dynamostore: <what>: <cause>" and stay reachable through
// errors.As.
//
// # Concurrency
//
// A Store is safe for concurrent use, by any number of replicas: all
// coordination is by conditions in DynamoDB.
package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"github.com/cairn-cdp/cairn/internal/awsclient"
	"github.com/cairn-cdp/cairn/internal/profiles"
)

var _ profiles.Store = (*Store)(nil)

// Defaults of Config.
const (
	// DefaultMaxAttempts is the default number of attempts per API call,
	// the first one included.
	DefaultMaxAttempts = awsclient.DefaultMaxAttempts
	// DefaultMaxBackoff is the default cap of the delay between two
	// attempts, and between two retries of unprocessed items or of a
	// conflicting transaction: shorter than the provisioner's, since a
	// profile call is on the path of an API request.
	DefaultMaxBackoff = 2 * time.Second
	// DefaultMaxConflictRetries is the default number of times a
	// transaction cancelled by a conflict or by throttling is retried.
	DefaultMaxConflictRetries = 5
	// DefaultParallelism is the default number of concurrent calls of one
	// BatchGet or PutBatch.
	DefaultParallelism = 4
)

// DynamoDB's limits on batch calls.
const (
	batchGetMax   = 100
	batchWriteMax = 25
	// baseBackoff is the first delay before retrying unprocessed items or
	// a conflicting transaction.
	baseBackoff = 20 * time.Millisecond
)

// Config configures a Store.
type Config struct {
	// AWS holds the client settings every adapter shares (SDK
	// configuration and credentials, endpoint, retries, call counter).
	// Its AWS.Region is not used: every call goes to the Region that
	// Tables names. AWS.MaxAttempts also bounds the retries of
	// unprocessed batch items; AWS.MaxBackoff, which caps every delay
	// between retries, defaults to this package's DefaultMaxBackoff.
	AWS awsclient.Settings
	// Tables returns the Region and table name of a tenant's items.
	// Required. It is called once per tenant per Store call, so it should
	// answer from memory.
	Tables func(ctx context.Context, tenantID string) (region, table string, err error)
	// MaxConflictRetries is how many times a transaction cancelled by a
	// conflict (another transaction on the same items) or by throttling
	// is retried before Transact fails; default DefaultMaxConflictRetries,
	// negative for none.
	MaxConflictRetries int
	// Parallelism is the most concurrent calls of one BatchGet or
	// PutBatch; default DefaultParallelism.
	Parallelism int
	// Now is the clock that decides expiry; default time.Now.
	Now func() time.Time
	// PurgePageSize is the Limit of each Scan page of DeleteTenant, the
	// most items a page reads; default 0, DynamoDB's own pages of 1 MB.
	PurgePageSize int32
}

// Store is the DynamoDB profiles.Store. Create it with New; it is safe for
// concurrent use.
type Store struct {
	tables             func(ctx context.Context, tenantID string) (string, string, error)
	clients            *awsclient.Regional[dynamodb.Client]
	maxAttempts        int
	maxBackoff         time.Duration
	maxConflictRetries int
	parallelism        int
	purgePageSize      int32
	now                func() time.Time
}

// New returns a Store. It loads the SDK's default configuration when
// cfg.AWS.AWS is nil, and fails if that fails, if cfg.Tables is nil, or if a
// number of cfg is negative. No call is made until a method needs one.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Tables == nil {
		return nil, errors.New("dynamostore: Config.Tables is required")
	}
	if cfg.Parallelism < 0 {
		return nil, fmt.Errorf("dynamostore: Parallelism must not be negative, got %d", cfg.Parallelism)
	}
	if cfg.PurgePageSize < 0 {
		return nil, fmt.Errorf("dynamostore: PurgePageSize must not be negative, got %d", cfg.PurgePageSize)
	}
	if cfg.AWS.MaxBackoff == 0 {
		// Ours, not awsclient's: a profile call is on an API request's path.
		cfg.AWS.MaxBackoff = DefaultMaxBackoff
	}
	switch {
	case cfg.MaxConflictRetries == 0:
		cfg.MaxConflictRetries = DefaultMaxConflictRetries
	case cfg.MaxConflictRetries < 0:
		cfg.MaxConflictRetries = 0
	}
	if cfg.Parallelism == 0 {
		cfg.Parallelism = DefaultParallelism
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	b, err := cfg.AWS.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("dynamostore: %w", err)
	}
	return &Store{
		tables: cfg.Tables,
		clients: awsclient.NewRegional(func(region string) *dynamodb.Client {
			return dynamodb.NewFromConfig(b.AWS, func(o *dynamodb.Options) {
				o.Region = region
				o.BaseEndpoint = b.BaseEndpoint(o.BaseEndpoint)
			})
		}),
		maxAttempts:        b.MaxAttempts,
		maxBackoff:         b.MaxBackoff,
		maxConflictRetries: cfg.MaxConflictRetries,
		parallelism:        cfg.Parallelism,
		purgePageSize:      cfg.PurgePageSize,
		now:                cfg.Now,
	}, nil
}

// table is where one tenant's items are.
type table struct {
	client *dynamodb.Client
	region string
	name   string
}

func (s *Store) table(ctx context.Context, tenantID string) (table, error) {
	region, name, err := s.tables(ctx, tenantID)
	if err != nil {
		return table{}, fmt.Errorf("dynamostore: table of tenant %s: %w", tenantID, err)
	}
	if region == "" || name == "" {
		return table{}, fmt.Errorf("dynamostore: table of tenant %s: empty Region or table name", tenantID)
	}
	client, err := s.clients.Client(region)
	if err != nil {
		return table{}, fmt.Errorf("dynamostore: table of tenant %s: %w", tenantID, err)
	}
	return table{client: client, region: region, name: name}, nil
}

// tableCache resolves each tenant's table once per Store call.
type tableCache struct {
	s *Store
	m map[string]table
}

func (c *tableCache) get(ctx context.Context, tenantID string) (table, error) {
	if t, ok := c.m[tenantID]; ok {
		return t, nil
	}
	t, err := c.s.table(ctx, tenantID)
	if err != nil {
		return table{}, err
	}
	if c.m == nil {
		c.m = make(map[string]table)
	}
	c.m[tenantID] = t
	return t, nil
}

// Attribute names.
const (
	attrPK        = "pk"
	attrSK        = "sk"
	attrGSI1PK    = "gsi1pk"
	attrGSI1SK    = "gsi1sk"
	attrVersion   = "v"
	attrData      = "d"
	attrExpiresAt = "expires_at"
	indexGSI1     = "gsi1"
)

// Conditions. An item without expires_at never expires (0 is never
// stored), and `expires_at < :now` is false when the attribute is missing.
const (
	condAbsent  = "attribute_not_exists(pk) OR expires_at < :now"
	condVersion = "v = :ver AND (attribute_not_exists(expires_at) OR expires_at >= :now)"
	condExists  = "attribute_exists(pk) AND (attribute_not_exists(expires_at) OR expires_at >= :now)"
)

func attrS(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }
func attrN(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func keyAttrs(k profiles.Key) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: attrS(k.PK), attrSK: attrS(k.SK)}
}

// itemAttrs returns the stored form of it with version.
func itemAttrs(it *profiles.Item, version int64) map[string]types.AttributeValue {
	m := make(map[string]types.AttributeValue, 7)
	m[attrPK], m[attrSK], m[attrVersion] = attrS(it.PK), attrS(it.SK), attrN(version)
	if it.GSI1PK != "" {
		m[attrGSI1PK], m[attrGSI1SK] = attrS(it.GSI1PK), attrS(it.GSI1SK)
	}
	if len(it.Data) > 0 {
		m[attrData] = &types.AttributeValueMemberB{Value: it.Data}
	}
	if it.ExpiresAt != 0 {
		m[attrExpiresAt] = attrN(it.ExpiresAt)
	}
	return m
}

// parseItem converts a stored item back.
func parseItem(m map[string]types.AttributeValue) (profiles.Item, error) {
	var it profiles.Item
	var err error
	str := func(name string, dst *string, required bool) {
		switch v := m[name].(type) {
		case *types.AttributeValueMemberS:
			*dst = v.Value
		case nil:
			if required && err == nil {
				err = fmt.Errorf("attribute %s missing", name)
			}
		default:
			if err == nil {
				err = fmt.Errorf("attribute %s is %T, want S", name, v)
			}
		}
	}
	num := func(name string, dst *int64) {
		switch v := m[name].(type) {
		case *types.AttributeValueMemberN:
			n, perr := strconv.ParseInt(v.Value, 10, 64)
			if perr != nil && err == nil {
				err = fmt.Errorf("attribute %s: %w", name, perr)
			}
			*dst = n
		case nil:
		default:
			if err == nil {
				err = fmt.Errorf("attribute %s is %T, want N", name, v)
			}
		}
	}
	str(attrPK, &it.PK, true)
	str(attrSK, &it.SK, true)
	str(attrGSI1PK, &it.GSI1PK, false)
	str(attrGSI1SK, &it.GSI1SK, false)
	num(attrVersion, &it.Version)
	num(attrExpiresAt, &it.ExpiresAt)
	switch v := m[attrData].(type) {
	case *types.AttributeValueMemberB:
		it.Data = v.Value
	case nil:
	default:
		if err == nil {
			err = fmt.Errorf("attribute %s is %T, want B", attrData, v)
		}
	}
	if err != nil {
		return profiles.Item{}, fmt.Errorf("dynamostore: malformed item %s/%s: %w", it.PK, it.SK, err)
	}
	return it, nil
}

// live reports whether an item with expiresAt is visible at now.
func live(expiresAt, now int64) bool { return expiresAt == 0 || expiresAt >= now }

// Get implements profiles.Store with one consistent GetItem.
func (s *Store) Get(ctx context.Context, k profiles.Key) (profiles.Item, bool, error) {
	tenant, err := profiles.ValidateKey(k)
	if err != nil {
		return profiles.Item{}, false, err
	}
	t, err := s.table(ctx, tenant)
	if err != nil {
		return profiles.Item{}, false, err
	}
	out, err := t.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(t.name),
		Key:            keyAttrs(k),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return profiles.Item{}, false, fmt.Errorf("dynamostore: get %s/%s: %w", k.PK, k.SK, err)
	}
	if out.Item == nil {
		return profiles.Item{}, false, nil
	}
	it, err := parseItem(out.Item)
	if err != nil {
		return profiles.Item{}, false, err
	}
	if !live(it.ExpiresAt, s.now().Unix()) {
		return profiles.Item{}, false, nil
	}
	return it, true, nil
}

// tableKey is a key with its table: batch calls group keys by Region and
// may span tables.
type tableKey struct {
	table string
	key   profiles.Key
}

// byRegion groups values by Region, keeping their order.
type byRegion[V any] struct {
	order   []string
	clients map[string]*dynamodb.Client
	values  map[string][]V
}

func (g *byRegion[V]) add(t table, v V) {
	if g.values == nil {
		g.clients, g.values = make(map[string]*dynamodb.Client), make(map[string][]V)
	}
	if _, ok := g.values[t.region]; !ok {
		g.order = append(g.order, t.region)
		g.clients[t.region] = t.client
	}
	g.values[t.region] = append(g.values[t.region], v)
}

// chunks calls fn for every chunk of at most size values of one Region,
// up to parallelism at once, and returns the first error.
func (g *byRegion[V]) chunks(ctx context.Context, size, parallelism int, fn func(ctx context.Context, c *dynamodb.Client, chunk []V) error) error {
	eg, ctx := errgroup.WithContext(ctx)
	eg.SetLimit(parallelism)
	for _, region := range g.order {
		c, vs := g.clients[region], g.values[region]
		for start := 0; start < len(vs); start += size {
			chunk := vs[start:min(start+size, len(vs))]
			eg.Go(func() error { return fn(ctx, c, chunk) })
		}
	}
	return eg.Wait()
}

// BatchGet implements profiles.Store with consistent BatchGetItem calls of
// up to 100 distinct keys, retrying unprocessed keys.
func (s *Store) BatchGet(ctx context.Context, keys []profiles.Key) (map[profiles.Key]profiles.Item, error) {
	tenants := make([]string, len(keys))
	for i, k := range keys {
		var err error
		if tenants[i], err = profiles.ValidateKey(k); err != nil {
			return nil, err
		}
	}
	var (
		tc     = tableCache{s: s}
		groups byRegion[tableKey]
		seen   = make(map[profiles.Key]struct{}, len(keys))
	)
	for i, k := range keys {
		if _, dup := seen[k]; dup {
			continue // BatchGetItem rejects a key asked twice
		}
		seen[k] = struct{}{}
		t, err := tc.get(ctx, tenants[i])
		if err != nil {
			return nil, err
		}
		groups.add(t, tableKey{table: t.name, key: k})
	}

	now := s.now().Unix()
	var mu sync.Mutex
	out := make(map[profiles.Key]profiles.Item, len(seen))
	err := groups.chunks(ctx, batchGetMax, s.parallelism, func(ctx context.Context, c *dynamodb.Client, chunk []tableKey) error {
		req := make(map[string]types.KeysAndAttributes)
		for _, tk := range chunk {
			ka := req[tk.table]
			ka.Keys = append(ka.Keys, keyAttrs(tk.key))
			ka.ConsistentRead = aws.Bool(true)
			req[tk.table] = ka
		}
		for attempt := 0; len(req) > 0; attempt++ {
			if attempt > 0 {
				if attempt >= s.maxAttempts {
					return fmt.Errorf("dynamostore: batch get: keys still unprocessed after %d attempts", attempt)
				}
				if err := s.sleep(ctx, attempt); err != nil {
					return err
				}
			}
			res, err := c.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
			if err != nil {
				return fmt.Errorf("dynamostore: batch get: %w", err)
			}
			for _, items := range res.Responses {
				for _, m := range items {
					it, err := parseItem(m)
					if err != nil {
						return err
					}
					if live(it.ExpiresAt, now) {
						mu.Lock()
						out[profiles.Key{PK: it.PK, SK: it.SK}] = it
						mu.Unlock()
					}
				}
			}
			req = res.UnprocessedKeys
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// sleep waits before retry attempt (1, 2, ...): exponential backoff from
// baseBackoff with full jitter, capped at MaxBackoff.
func (s *Store) sleep(ctx context.Context, attempt int) error {
	ceiling := float64(baseBackoff) * math.Pow(2, float64(attempt-1))
	d := time.Duration(rand.Float64() * min(ceiling, float64(s.maxBackoff)))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Query implements profiles.Store with Query calls, paging until Limit.
//
// Prefix and After become one key condition: begins_with(sk, Prefix), or
// sk > After (sk < After descending) when After is inside the prefix's
// range, in which case the first item past the range ends the query. So a
// query reads no item before its range and at most one page past it.
func (s *Store) Query(ctx context.Context, in profiles.QueryInput) ([]profiles.Item, error) {
	tenant, err := profiles.TenantOf(in.PK)
	if err != nil {
		return nil, err
	}
	if in.Index != "" && in.Index != indexGSI1 {
		return nil, profiles.InvalidInput("unknown index %q", in.Index)
	}
	if in.Limit < 0 {
		return nil, profiles.InvalidInput("negative limit %d", in.Limit)
	}
	t, err := s.table(ctx, tenant)
	if err != nil {
		return nil, err
	}

	pkName, skName := attrPK, attrSK
	if in.Index == indexGSI1 {
		pkName, skName = attrGSI1PK, attrGSI1SK
	}
	values := map[string]types.AttributeValue{":pk": attrS(in.PK)}
	cond := pkName + " = :pk"
	var after, prefix bool // the key condition's sort-key term
	p, a := in.Prefix, in.After
	switch {
	case a == "":
		prefix = p != ""
	case p == "":
		after = true
	case !in.Desc && a < p, in.Desc && a > p && !strings.HasPrefix(a, p):
		prefix = true // After is outside the range, on the side it starts
	case strings.HasPrefix(a, p) && (!in.Desc || a != p):
		after = true // inside the range: stop at its end
	default:
		return nil, nil // After is past the range: nothing in it follows
	}
	switch {
	case prefix:
		cond += " AND begins_with(" + skName + ", :prefix)"
		values[":prefix"] = attrS(p)
	case after && in.Desc:
		cond += " AND " + skName + " < :after"
		values[":after"] = attrS(a)
	case after:
		cond += " AND " + skName + " > :after"
		values[":after"] = attrS(a)
	}
	stopOutside := after && p != ""

	input := &dynamodb.QueryInput{
		TableName:                 aws.String(t.name),
		KeyConditionExpression:    aws.String(cond),
		ExpressionAttributeValues: values,
		ScanIndexForward:          aws.Bool(!in.Desc),
		// gsi1 cannot be read consistently: what it holds may lag the
		// table by a moment.
		ConsistentRead: aws.Bool(in.Index == ""),
	}
	if in.Index != "" {
		input.IndexName = aws.String(in.Index)
	}
	now := s.now().Unix()
	var out []profiles.Item
	for {
		if in.Limit > 0 {
			input.Limit = aws.Int32(int32(min(in.Limit-len(out), math.MaxInt32)))
		}
		page, err := t.client.Query(ctx, input)
		if err != nil {
			return nil, fmt.Errorf("dynamostore: query %s: %w", in.PK, err)
		}
		for _, m := range page.Items {
			it, err := parseItem(m)
			if err != nil {
				return nil, err
			}
			sk := it.SK
			if in.Index != "" {
				sk = it.GSI1SK
			}
			if stopOutside && !strings.HasPrefix(sk, p) {
				return out, nil
			}
			if !live(it.ExpiresAt, now) {
				continue
			}
			out = append(out, it)
			if len(out) == in.Limit {
				return out, nil
			}
		}
		if len(page.LastEvaluatedKey) == 0 {
			return out, nil
		}
		input.ExclusiveStartKey = page.LastEvaluatedKey
	}
}

// PutBatch implements profiles.Store with BatchWriteItem calls of up to 25
// distinct keys, retrying unprocessed items. Of items that share a key, the
// last one wins.
func (s *Store) PutBatch(ctx context.Context, items []profiles.Item) error {
	tenants := make([]string, len(items))
	for i := range items {
		var err error
		if tenants[i], err = profiles.ValidateItem(&items[i]); err != nil {
			return fmt.Errorf("item %d: %w", i, err)
		}
	}
	// BatchWriteItem rejects a key written twice in one call.
	last := make(map[profiles.Key]int, len(items))
	for i := range items {
		last[profiles.Key{PK: items[i].PK, SK: items[i].SK}] = i
	}
	var (
		tc     = tableCache{s: s}
		groups byRegion[int]
	)
	for i := range items {
		if last[profiles.Key{PK: items[i].PK, SK: items[i].SK}] != i {
			continue
		}
		t, err := tc.get(ctx, tenants[i])
		if err != nil {
			return err
		}
		groups.add(t, i)
	}
	return groups.chunks(ctx, batchWriteMax, s.parallelism, func(ctx context.Context, c *dynamodb.Client, chunk []int) error {
		req := make(map[string][]types.WriteRequest)
		for _, i := range chunk {
			name := tc.m[tenants[i]].name
			req[name] = append(req[name], types.WriteRequest{PutRequest: &types.PutRequest{Item: itemAttrs(&items[i], 1)}})
		}
		if err := s.writeBatch(ctx, c, req); err != nil {
			return fmt.Errorf("dynamostore: put batch: %w", err)
		}
		return nil
	})
}

// writeBatch sends one BatchWriteItem call's requests, retrying the
// unprocessed ones with backoff.
func (s *Store) writeBatch(ctx context.Context, c *dynamodb.Client, req map[string][]types.WriteRequest) error {
	for attempt := 0; len(req) > 0; attempt++ {
		if attempt > 0 {
			if attempt >= s.maxAttempts {
				return fmt.Errorf("items still unprocessed after %d attempts", attempt)
			}
			if err := s.sleep(ctx, attempt); err != nil {
				return err
			}
		}
		res, err := c.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: req})
		if err != nil {
			return err
		}
		req = res.UnprocessedItems
	}
	return nil
}

// Count implements profiles.Store with Query calls that Select COUNT. An
// expired item not yet deleted by TTL counts until it is.
func (s *Store) Count(ctx context.Context, in profiles.QueryInput) (int, error) {
	tenant, err := profiles.TenantOf(in.PK)
	if err != nil {
		return 0, err
	}
	if in.Index != "" && in.Index != indexGSI1 {
		return 0, profiles.InvalidInput("unknown index %q", in.Index)
	}
	t, err := s.table(ctx, tenant)
	if err != nil {
		return 0, err
	}
	pkName, skName := attrPK, attrSK
	if in.Index == indexGSI1 {
		pkName, skName = attrGSI1PK, attrGSI1SK
	}
	values := map[string]types.AttributeValue{":pk": attrS(in.PK)}
	cond := pkName + " = :pk"
	if in.Prefix != "" {
		cond += " AND begins_with(" + skName + ", :prefix)"
		values[":prefix"] = attrS(in.Prefix)
	}
	input := &dynamodb.QueryInput{
		TableName:                 aws.String(t.name),
		KeyConditionExpression:    aws.String(cond),
		ExpressionAttributeValues: values,
		Select:                    types.SelectCount,
		ConsistentRead:            aws.Bool(in.Index == ""),
	}
	if in.Index != "" {
		input.IndexName = aws.String(in.Index)
	}
	n := 0
	for {
		page, err := t.client.Query(ctx, input)
		if err != nil {
			return 0, fmt.Errorf("dynamostore: count %s: %w", in.PK, err)
		}
		n += int(page.Count)
		if len(page.LastEvaluatedKey) == 0 {
			return n, nil
		}
		input.ExclusiveStartKey = page.LastEvaluatedKey
	}
}

// Scan implements profiles.Store with a filtered, consistent Scan of the
// tenant's table, resumed from in.After (the last key of a page, which
// DynamoDB takes as ExclusiveStartKey).
func (s *Store) Scan(ctx context.Context, in profiles.ScanInput) ([]profiles.Item, profiles.Key, error) {
	tenant, err := profiles.TenantOf(in.PKPrefix)
	if err != nil {
		return nil, profiles.Key{}, err
	}
	t, err := s.table(ctx, tenant)
	if err != nil {
		return nil, profiles.Key{}, err
	}
	limit := in.Limit
	if limit <= 0 {
		limit = 1000
	}
	filter := "begins_with(#pk, :prefix)"
	values := map[string]types.AttributeValue{":prefix": attrS(in.PKPrefix)}
	names := map[string]string{"#pk": attrPK}
	if in.SK != "" {
		filter += " AND #sk = :sk"
		values[":sk"] = attrS(in.SK)
		names["#sk"] = attrSK
	}
	input := &dynamodb.ScanInput{
		TableName:                 aws.String(t.name),
		FilterExpression:          aws.String(filter),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
		ConsistentRead:            aws.Bool(true),
		Limit:                     aws.Int32(int32(limit)),
	}
	if in.After.PK != "" {
		input.ExclusiveStartKey = keyAttrs(in.After)
	}
	now := s.now().Unix()
	var out []profiles.Item
	for {
		page, err := t.client.Scan(ctx, input)
		if err != nil {
			return nil, profiles.Key{}, fmt.Errorf("dynamostore: scan %s: %w", in.PKPrefix, err)
		}
		for _, m := range page.Items {
			it, err := parseItem(m)
			if err != nil {
				return nil, profiles.Key{}, err
			}
			if live(it.ExpiresAt, now) {
				out = append(out, it)
			}
		}
		if len(page.LastEvaluatedKey) == 0 {
			return out, profiles.Key{}, nil
		}
		pk, _ := page.LastEvaluatedKey[attrPK].(*types.AttributeValueMemberS)
		sk, _ := page.LastEvaluatedKey[attrSK].(*types.AttributeValueMemberS)
		if pk == nil || sk == nil {
			return nil, profiles.Key{}, fmt.Errorf("dynamostore: scan %s: last key without pk and sk", in.PKPrefix)
		}
		last := profiles.Key{PK: pk.Value, SK: sk.Value}
		if len(out) > 0 {
			return out, last, nil
		}
		input.ExclusiveStartKey = page.LastEvaluatedKey
	}
}
