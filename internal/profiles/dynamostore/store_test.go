package dynamostore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/cairn-cdp/cairn/internal/awsclient"
	"github.com/cairn-cdp/cairn/internal/awsclient/awstest"
	"github.com/cairn-cdp/cairn/internal/awsfault"
	"github.com/cairn-cdp/cairn/internal/profiles"
	"github.com/cairn-cdp/cairn/internal/profiles/dynamostore"
	"github.com/cairn-cdp/cairn/internal/profiles/dynamostore/dynamotest"
	"github.com/cairn-cdp/cairn/internal/profiles/storetest"
	"github.com/cairn-cdp/cairn/internal/tenants"
)

const (
	regionA = "us-east-1"
	regionB = "eu-west-1"
)

func dynamoClient(endpoint, region string) *dynamodb.Client {
	return dynamodb.NewFromConfig(awstest.Config(regionA), func(o *dynamodb.Options) {
		o.Region, o.BaseEndpoint = region, aws.String(endpoint)
	})
}

// createTable creates a profile table as templates/tenant-dedicated.yaml
// declares it (pk/sk, gsi1 on gsi1pk/gsi1sk projecting all, on-demand) and
// deletes it when the test ends.
func createTable(t *testing.T, endpoint, region string) string {
	t.Helper()
	name := "cairn-test-profiles-" + strings.ToLower(rand.Text()[:10])
	c := dynamoClient(endpoint, region)
	s := func(n string) types.AttributeDefinition {
		return types.AttributeDefinition{AttributeName: aws.String(n), AttributeType: types.ScalarAttributeTypeS}
	}
	key := func(pk, sk string) []types.KeySchemaElement {
		return []types.KeySchemaElement{
			{AttributeName: aws.String(pk), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(sk), KeyType: types.KeyTypeRange},
		}
	}
	_, err := c.CreateTable(t.Context(), &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{s("pk"), s("sk"), s("gsi1pk"), s("gsi1sk")},
		KeySchema:            key("pk", "sk"),
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
			IndexName:  aws.String("gsi1"),
			KeySchema:  key("gsi1pk", "gsi1sk"),
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateTimeToLive(t.Context(), &dynamodb.UpdateTimeToLiveInput{
		TableName:               aws.String(name),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String("expires_at"), Enabled: aws.Bool(true)},
	}); err != nil {
		t.Fatal(err)
	}
	if err := dynamodb.NewTableExistsWaiter(c).Wait(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(name)}, time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// t.Context() is canceled by the time cleanups run.
		if _, err := c.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)}); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return name
}

// newStore returns a Store on endpoint with a CallCounter and short
// backoffs. tables routes tenants.
func newStore(t *testing.T, endpoint string, tables func(ctx context.Context, tenantID string) (string, string, error), opts ...func(*dynamostore.Config)) (*dynamostore.Store, *awsclient.CallCounter) {
	t.Helper()
	awsCfg := awstest.Config(regionA)
	calls := &awsclient.CallCounter{}
	cfg := dynamostore.Config{
		AWS: awsclient.Settings{
			AWS:         &awsCfg,
			EndpointURL: endpoint,
			// moto's transactions are not atomic without it: see
			// dynamotest.SerialTransactions.
			HTTPClient: &dynamotest.SerialTransactions{},
			Calls:      calls,
			MaxBackoff: 5 * time.Millisecond,
		},
		Tables: tables,
	}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := dynamostore.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, calls
}

// oneTable routes every tenant to table in region.
func oneTable(region, table string) func(context.Context, string) (string, string, error) {
	return func(context.Context, string) (string, string, error) { return region, table, nil }
}

func TestContract(t *testing.T) {
	endpoint := awstest.Endpoint(t)
	t.Parallel()
	storetest.Run(t, newTableStore(endpoint))
}

func TestPurgeContract(t *testing.T) {
	endpoint := awstest.Endpoint(t)
	t.Parallel()
	storetest.RunDeleteTenant(t, newTableStore(endpoint))
}

// newTableStore returns a newStore function for the contract suites: a
// Store on a table of the subtest's own.
func newTableStore(endpoint string) func(t *testing.T) profiles.Store {
	return func(t *testing.T) profiles.Store {
		s, _ := newStore(t, endpoint, oneTable(regionA, createTable(t, endpoint, regionA)))
		return s
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	awsCfg := awstest.Config(regionA)
	for name, cfg := range map[string]dynamostore.Config{
		"no Tables":         {AWS: awsclient.Settings{AWS: &awsCfg}},
		"negative attempts": {AWS: awsclient.Settings{AWS: &awsCfg, MaxAttempts: -1}, Tables: oneTable(regionA, "t")},
		"negative backoff":  {AWS: awsclient.Settings{AWS: &awsCfg, MaxBackoff: -1}, Tables: oneTable(regionA, "t")},
		"negative parallel": {AWS: awsclient.Settings{AWS: &awsCfg}, Tables: oneTable(regionA, "t"), Parallelism: -1},
		"negative page":     {AWS: awsclient.Settings{AWS: &awsCfg}, Tables: oneTable(regionA, "t"), PurgePageSize: -1},
	} {
		if _, err := dynamostore.New(t.Context(), cfg); err == nil {
			t.Errorf("New (%s): no error", name)
		}
	}
}

func pk(tenant, name string) string { return "TENANT#" + tenant + "#" + name }

// rawGet reads an item straight from a table.
func rawGet(t *testing.T, endpoint, region, table, pk, sk string) map[string]types.AttributeValue {
	t.Helper()
	out, err := dynamoClient(endpoint, region).GetItem(t.Context(), &dynamodb.GetItemInput{
		TableName: aws.String(table),
		Key:       map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: sk}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

// TestRouting puts a dedicated tenant in its own table in one Region and
// two pooled tenants in a pool table in another, and checks every method
// goes to the right table.
func TestRouting(t *testing.T) {
	endpoint := awstest.Endpoint(t)
	t.Parallel()
	dedicated, pooledA, pooledB := tenants.NewID(), tenants.NewID(), tenants.NewID()
	dedicatedTable := createTable(t, endpoint, regionA)
	poolTable := createTable(t, endpoint, regionB)
	var lookups atomic.Int64
	s, calls := newStore(t, endpoint, func(_ context.Context, tenantID string) (string, string, error) {
		lookups.Add(1)
		switch tenantID {
		case dedicated:
			return regionA, dedicatedTable, nil
		case pooledA, pooledB:
			return regionB, poolTable, nil
		}
		return "", "", fmt.Errorf("unknown tenant %s", tenantID)
	})
	ctx := t.Context()

	item := func(tenant, name string) profiles.Item {
		return profiles.Item{PK: pk(tenant, name), SK: "META", Data: []byte(`{}`), GSI1PK: pk(tenant, "G"), GSI1SK: name}
	}
	for _, tenant := range []string{dedicated, pooledA, pooledB} {
		it := item(tenant, "TX")
		if err := s.Transact(ctx, []profiles.Op{{Put: &it, IfAbsent: true}}); err != nil {
			t.Fatal(err)
		}
	}
	var batch []profiles.Item
	for _, tenant := range []string{dedicated, pooledA, pooledB} {
		for i := range 30 {
			batch = append(batch, item(tenant, fmt.Sprintf("B%02d", i)))
		}
	}
	lookups.Store(0)
	if err := s.PutBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if got := lookups.Load(); got != 3 {
		t.Errorf("PutBatch of 3 tenants looked tables up %d times, want 3", got)
	}
	// 30 items per tenant; the two pooled tenants share a Region: 2 calls
	// in regionA (30 items), 3 in regionB (60 items).
	if got := calls.Total("DynamoDB.BatchWriteItem"); got != 5 {
		t.Errorf("BatchWriteItem calls: %d, want 5", got)
	}

	for _, c := range []struct {
		tenant, region, table, other string
	}{
		{dedicated, regionA, dedicatedTable, poolTable},
		{pooledA, regionB, poolTable, dedicatedTable},
		{pooledB, regionB, poolTable, dedicatedTable},
	} {
		for _, name := range []string{"TX", "B00", "B29"} {
			if rawGet(t, endpoint, c.region, c.table, pk(c.tenant, name), "META") == nil {
				t.Errorf("%s of %s not in %s", name, c.tenant, c.table)
			}
		}
	}
	if rawGet(t, endpoint, regionA, dedicatedTable, pk(pooledA, "TX"), "META") != nil {
		t.Error("a pooled tenant's item is in the dedicated table")
	}

	keys := []profiles.Key{{PK: pk(dedicated, "TX"), SK: "META"}, {PK: pk(pooledA, "TX"), SK: "META"}, {PK: pk(pooledB, "B07"), SK: "META"}}
	got, err := s.BatchGet(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("BatchGet across Regions: %d items, want 3", len(got))
	}
	// Each pooled tenant's queries see only its own items.
	for _, tenant := range []string{pooledA, pooledB} {
		items, err := s.Query(ctx, profiles.QueryInput{PK: pk(tenant, "G"), Index: "gsi1"})
		if err != nil {
			t.Fatal(err)
		}
		if len(items) != 31 {
			t.Errorf("gsi1 query of %s: %d items, want 31", tenant, len(items))
		}
	}

	// A tenant Tables does not know: an error, no call.
	calls.Reset()
	unknown := tenants.NewID()
	if _, _, err := s.Get(ctx, profiles.Key{PK: pk(unknown, "X"), SK: "META"}); err == nil || !strings.Contains(err.Error(), "unknown tenant") {
		t.Errorf("Get of an unknown tenant: %v", err)
	}
	if n := len(calls.Snapshot()); n != 0 {
		t.Errorf("%d calls for an unknown tenant", n)
	}
}

// TestCallsPerOperation pins the DynamoDB calls each method makes.
func TestCallsPerOperation(t *testing.T) {
	endpoint := awstest.Endpoint(t)
	t.Parallel()
	s, calls := newStore(t, endpoint, oneTable(regionA, createTable(t, endpoint, regionA)))
	ctx := t.Context()
	tenant := tenants.NewID()

	check := func(what string, want map[string]int64) {
		t.Helper()
		got := calls.Snapshot()
		for op, n := range want {
			if got[op] != n {
				t.Errorf("%s: %d %s calls, want %d (all: %v)", what, got[op], op, n, got)
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s: calls %v, want %v", what, got, want)
		}
		calls.Reset()
	}

	var items []profiles.Item
	for i := range 260 {
		items = append(items, profiles.Item{PK: pk(tenant, "EVENTS"), SK: fmt.Sprintf("%03d", i), Data: []byte(`{}`)})
	}
	if err := s.PutBatch(ctx, items); err != nil {
		t.Fatal(err)
	}
	check("PutBatch of 260", map[string]int64{"DynamoDB.BatchWriteItem": 11})

	keys := make([]profiles.Key, len(items))
	for i, it := range items {
		keys[i] = profiles.Key{PK: it.PK, SK: it.SK}
	}
	if got, err := s.BatchGet(ctx, keys); err != nil || len(got) != 260 {
		t.Fatalf("BatchGet: %d, %v", len(got), err)
	}
	check("BatchGet of 260", map[string]int64{"DynamoDB.BatchGetItem": 3})

	if _, _, err := s.Get(ctx, keys[0]); err != nil {
		t.Fatal(err)
	}
	check("Get", map[string]int64{"DynamoDB.GetItem": 1})

	if got, err := s.Query(ctx, profiles.QueryInput{PK: pk(tenant, "EVENTS"), Limit: 10}); err != nil || len(got) != 10 {
		t.Fatalf("Query: %d, %v", len(got), err)
	}
	check("Query with Limit 10", map[string]int64{"DynamoDB.Query": 1})

	it := items[0]
	if err := s.Transact(ctx, []profiles.Op{{Put: &it}}); err != nil {
		t.Fatal(err)
	}
	check("Transact of one unconditional put", map[string]int64{"DynamoDB.UpdateItem": 1})
	if err := s.Transact(ctx, []profiles.Op{{Delete: &keys[1]}}); err != nil {
		t.Fatal(err)
	}
	check("Transact of one unconditional delete", map[string]int64{"DynamoDB.DeleteItem": 1})
	if err := s.Transact(ctx, []profiles.Op{{Put: &it, IfVersion: 2}}); err != nil {
		t.Fatal(err)
	}
	check("Transact of one conditional put", map[string]int64{"DynamoDB.TransactWriteItems": 1})
	if err := s.Transact(ctx, []profiles.Op{{Put: &it, IfVersion: 3}, {Delete: &keys[2]}, {Delete: &keys[3], IfVersion: 1, Check: true}}); err != nil {
		t.Fatal(err)
	}
	check("Transact of three ops", map[string]int64{"DynamoDB.TransactWriteItems": 1})
}

// TestStoredAttributes checks the stored form that the tables' TTL and
// IAM conditions rely on.
func TestStoredAttributes(t *testing.T) {
	endpoint := awstest.Endpoint(t)
	t.Parallel()
	table := createTable(t, endpoint, regionA)
	s, _ := newStore(t, endpoint, oneTable(regionA, table))
	tenant := tenants.NewID()
	full := profiles.Item{PK: pk(tenant, "P"), SK: "FULL", GSI1PK: pk(tenant, "G"), GSI1SK: "x", Data: []byte(`{"a":1}`), ExpiresAt: time.Now().Unix() + 60}
	bare := profiles.Item{PK: pk(tenant, "P"), SK: "BARE"}
	if err := s.Transact(t.Context(), []profiles.Op{{Put: &full, IfAbsent: true}, {Put: &bare, IfAbsent: true}}); err != nil {
		t.Fatal(err)
	}
	got := rawGet(t, endpoint, regionA, table, full.PK, full.SK)
	want := map[string]string{"pk": "S", "sk": "S", "gsi1pk": "S", "gsi1sk": "S", "v": "N", "d": "B", "expires_at": "N"}
	if len(got) != len(want) {
		t.Errorf("full item attributes: %v", got)
	}
	for name, typ := range want {
		if !hasType(got[name], typ) {
			t.Errorf("attribute %s: %T, want %s", name, got[name], typ)
		}
	}
	// Optional attributes are omitted, never empty.
	got = rawGet(t, endpoint, regionA, table, bare.PK, bare.SK)
	if len(got) != 3 {
		t.Errorf("bare item attributes: %v, want pk, sk, v", got)
	}

	// An unconditional put removes what the new item lacks.
	if err := s.Transact(t.Context(), []profiles.Op{{Put: &profiles.Item{PK: full.PK, SK: full.SK}}}); err != nil {
		t.Fatal(err)
	}
	got = rawGet(t, endpoint, regionA, table, full.PK, full.SK)
	if len(got) != 3 || got["v"].(*types.AttributeValueMemberN).Value != "2" {
		t.Errorf("after an unconditional put of a bare item: %v", got)
	}
}

func hasType(v types.AttributeValue, typ string) bool {
	switch v.(type) {
	case *types.AttributeValueMemberS:
		return typ == "S"
	case *types.AttributeValueMemberN:
		return typ == "N"
	case *types.AttributeValueMemberB:
		return typ == "B"
	}
	return false
}

// faultTransport answers the next n TransactWriteItems calls with a
// TransactionCanceledException whose reasons are reasons, without sending
// them; the rest go through.
type faultTransport struct {
	n       atomic.Int64
	reasons string
	sent    atomic.Int64
}

func (f *faultTransport) Do(r *http.Request) (*http.Response, error) {
	if r.Header.Get("X-Amz-Target") == "DynamoDB_20120810.TransactWriteItems" {
		f.sent.Add(1)
		if f.n.Add(-1) >= 0 {
			body := `{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException",` +
				`"message":"Transaction cancelled, please refer cancellation reasons for specific reasons",` +
				`"CancellationReasons":` + f.reasons + `}`
			return &http.Response{
				StatusCode: http.StatusBadRequest,
				Header:     http.Header{"Content-Type": {"application/x-amz-json-1.0"}},
				Body:       io.NopCloser(bytes.NewReader([]byte(body))),
				Request:    r,
			}, nil
		}
	}
	return http.DefaultClient.Do(r)
}

func TestTransactRetriesConflicts(t *testing.T) {
	endpoint := awstest.Endpoint(t)
	t.Parallel()
	table := createTable(t, endpoint, regionA)
	tenant := tenants.NewID()
	it := profiles.Item{PK: pk(tenant, "P"), SK: "META", Data: []byte(`{}`)}
	other := profiles.Item{PK: pk(tenant, "P"), SK: "OTHER", Data: []byte(`{}`)}
	ops := []profiles.Op{{Put: &it, IfAbsent: true}, {Put: &other}}

	ft := &faultTransport{reasons: `[{"Code":"None"},{"Code":"TransactionConflict","Message":"Transaction is ongoing for the item"}]`}
	s, _ := newStore(t, endpoint, oneTable(regionA, table), func(c *dynamostore.Config) {
		c.AWS.HTTPClient = ft
		c.MaxConflictRetries = 3
	})

	// Three conflicts, then success: retried.
	ft.n.Store(3)
	if err := s.Transact(t.Context(), ops); err != nil {
		t.Fatalf("Transact after 3 conflicts: %v", err)
	}
	if got := ft.sent.Load(); got != 4 {
		t.Errorf("%d TransactWriteItems calls, want 4", got)
	}

	// More conflicts than retries: an error that is not a condition
	// failure.
	it2 := profiles.Item{PK: pk(tenant, "P2"), SK: "META"}
	ft.sent.Store(0)
	ft.n.Store(10)
	err := s.Transact(t.Context(), []profiles.Op{{Put: &it2, IfAbsent: true}})
	if err == nil || errors.Is(err, profiles.ErrConditionFailed) {
		t.Fatalf("Transact after persistent conflicts: %v", err)
	}
	if got := ft.sent.Load(); got != 4 {
		t.Errorf("%d TransactWriteItems calls, want 4 (1 + MaxConflictRetries)", got)
	}

	// A condition failure next to a conflict is a condition failure, at
	// once.
	ft.sent.Store(0)
	ft.n.Store(1)
	ft.reasons = `[{"Code":"ConditionalCheckFailed"},{"Code":"TransactionConflict"}]`
	if err := s.Transact(t.Context(), []profiles.Op{{Put: &it2, IfAbsent: true}, {Put: &other}}); !errors.Is(err, profiles.ErrConditionFailed) {
		t.Fatalf("Transact with a failed condition: %v", err)
	}
	if got := ft.sent.Load(); got != 1 {
		t.Errorf("%d TransactWriteItems calls, want 1", got)
	}
}

// tokenRecorder records the ClientRequestToken of every TransactWriteItems
// attempt it sends.
type tokenRecorder struct {
	mu     sync.Mutex
	tokens []string
}

func (tr *tokenRecorder) Do(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".TransactWriteItems") {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		var in struct{ ClientRequestToken string }
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, err
		}
		tr.mu.Lock()
		tr.tokens = append(tr.tokens, in.ClientRequestToken)
		tr.mu.Unlock()
	}
	return http.DefaultClient.Do(r)
}

// TestTransactRetryKeepsToken loses the answer to a TransactWriteItems
// call that DynamoDB applied: the SDK's retry must carry the same client
// request token, which makes DynamoDB answer the retry with the first
// call's success instead of failing its condition against the call's own
// write. moto ignores the token (it applies the retry again), so here the
// retry of an IfAbsent put fails its condition; what the test pins is the
// token, which real DynamoDB honours.
func TestTransactRetryKeepsToken(t *testing.T) {
	endpoint := awstest.Endpoint(t)
	t.Parallel()
	table := createTable(t, endpoint, regionA)
	proxy, err := awsfault.New(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	tr := &tokenRecorder{}
	s, calls := newStore(t, proxy.URL, oneTable(regionA, table), func(c *dynamostore.Config) { c.AWS.HTTPClient = tr })

	tenant := tenants.NewID()
	it := profiles.Item{PK: pk(tenant, "IDENT#x"), SK: "IDENT", Data: []byte(`{}`)}
	proxy.DropResponse("TransactWriteItems", 1)
	err = s.Transact(t.Context(), []profiles.Op{{Put: &it, IfAbsent: true}})
	if err != nil && !errors.Is(err, profiles.ErrConditionFailed) {
		t.Fatal(err)
	}
	if got := calls.Attempts("DynamoDB.TransactWriteItems"); got != 2 {
		t.Fatalf("%d attempts, want 2", got)
	}
	if len(tr.tokens) != 2 || tr.tokens[0] == "" || tr.tokens[0] != tr.tokens[1] {
		t.Fatalf("tokens of the attempts: %q, want one token twice", tr.tokens)
	}
	got, ok, err := s.Get(t.Context(), profiles.Key{PK: it.PK, SK: it.SK})
	if err != nil || !ok || got.Version != 1 {
		t.Fatalf("after the retried call: %+v, %v, %v; want the item at version 1", got, ok, err)
	}
	// A new call has a new token.
	it2 := profiles.Item{PK: pk(tenant, "IDENT#y"), SK: "IDENT"}
	if err := s.Transact(t.Context(), []profiles.Op{{Put: &it2, IfAbsent: true}}); err != nil {
		t.Fatal(err)
	}
	if len(tr.tokens) != 3 || tr.tokens[2] == tr.tokens[0] {
		t.Fatalf("tokens: %q, want a new one for a new call", tr.tokens)
	}
}
