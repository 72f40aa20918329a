package main

// The profiles end to end in AWS mode: Segment events through the real
// server into DynamoDB and the S3 raw zone on moto, read back through the
// API, checked through the AWS API by the key layout of
// internal/profiles/keys.go and internal/profiles/rawzone, then erased.
//
//	scripts/testenv.sh run go test ./cmd/server/ -run TestAWSProfiles -v

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/cairn-cdp/cairn/internal/awsclient/awstest"
	"github.com/cairn-cdp/cairn/internal/provisioner"
	"github.com/cairn-cdp/cairn/internal/testdb"
)

// profilesRegion is the home Region of both tenants of TestAWSProfiles (see
// the Regions in awsenv_test.go).
const profilesRegion = "ap-northeast-2"

// profileEvent is one event TestAWSProfiles sends, as sent.
type profileEvent struct {
	id     string    // messageId
	at     time.Time // its timestamp
	member string    // "first", "anon" or "other": the profile it lands in
	raw    []byte    // the JSON sent, byte for byte
}

// profileScenario is what TestAWSProfiles sends every tenant: a customer
// identified with a user ID, an anonymous ID and an email, who tracks;
// the same customer browsing under a second anonymous ID, then identified
// with it, which merges the two profiles; and a bystander whose events
// share the first batch's raw-zone object. The third batch is a client's
// retry of the second: duplicates, dropped before the raw zone.
type profileScenario struct {
	user, email, anon1, anon2, other string
	batches                          [][]profileEvent
}

func newProfileScenario() profileScenario {
	run := awsRandom(10)
	s := profileScenario{
		user:  "user-" + run,
		email: "Jane." + run + "@Example.com", // identifiers are lowercased; traits kept as sent
		anon1: "anon-1-" + run,
		anon2: "anon-2-" + run,
		other: "other-" + run,
	}
	t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	n := 0
	ev := func(member string, fields map[string]any) profileEvent {
		n++
		e := profileEvent{id: fmt.Sprintf("msg-%s-%d", run, n), at: t0.Add(time.Duration(n) * time.Second), member: member}
		fields["messageId"], fields["timestamp"] = e.id, e.at.Format(time.RFC3339Nano)
		e.raw, _ = json.Marshal(fields)
		return e
	}
	first := []profileEvent{
		ev("first", map[string]any{"type": "identify", "userId": s.user, "anonymousId": s.anon1,
			"traits": map[string]any{"email": s.email, "name": "Jane"}}),
		ev("first", map[string]any{"type": "track", "userId": s.user, "event": "Signed Up"}),
		ev("first", map[string]any{"type": "track", "userId": s.user, "event": "Order Completed",
			"properties": map[string]any{"total": 42.5, "currency": "EUR"}}),
		ev("anon", map[string]any{"type": "track", "anonymousId": s.anon2, "event": "Viewed Pricing"}),
		ev("other", map[string]any{"type": "identify", "userId": s.other, "traits": map[string]any{"email": s.other + "@example.org"}}),
	}
	merge := []profileEvent{
		ev("first", map[string]any{"type": "identify", "userId": s.user, "anonymousId": s.anon2, "traits": map[string]any{"plan": "pro"}}),
	}
	s.batches = [][]profileEvent{first, merge, merge}
	return s
}

// customerEvents are the merged customer's events, newest first as the
// API lists them.
func (s profileScenario) customerEvents() []profileEvent {
	var out []profileEvent
	for _, b := range s.batches[:2] {
		for _, e := range b {
			if e.member != "other" {
				out = append(out, e)
			}
		}
	}
	slices.Reverse(out)
	return out
}

// identifiers are the merged customer's identifiers as the API lists them.
func (s profileScenario) identifiers() []string {
	return []string{"anonymous_id:" + s.anon1, "anonymous_id:" + s.anon2, "email:" + strings.ToLower(s.email), "user_id:" + s.user}
}

// profileTenant is one tenant of TestAWSProfiles and where its data must
// be.
type profileTenant struct {
	id, tier string
	token    string // a tenant token
	table    string // its profile table
	bucket   string // its raw-zone bucket
	prefix   string // its raw-zone prefix in bucket
	// Set once the events are in: the merged customer's profile, the
	// profile merged into it, the bystander's, and the raw-zone object of
	// each batch.
	profile, merged, bystander string
	objects                    []string
}

// keyPrefix is the tenant's partition-key prefix (keys.go's tenantPrefix).
func (p *profileTenant) keyPrefix() string { return "TENANT#" + p.id + "#" }

// TestAWSProfiles runs profiles end to end in AWS mode: a dedicated and a
// pooled tenant each get Segment events through /v1/batch, which build one
// merged profile readable through the API; the items are in the tenant's
// own table or, tenant-prefixed, in the pool's, and the events are in the
// raw zone unchanged; erasing the profile removes it from the API, the
// table and every raw-zone object, and leaves the bystander and the other
// tenant alone.
func TestAWSProfiles(t *testing.T) {
	moto := awstest.Endpoint(t)
	t.Parallel()
	ctx := t.Context()
	keyFile := t.TempDir() + "/signing-key.pem"
	admin := adminToken(t, keyFile)
	dbURL := testdb.Postgres(t)
	base := startAWSServer(t, "profiles", awsVars(t, moto, dbURL, keyFile))
	region := profilesRegion
	ded := awsOnboard(t, base, admin, "dedicated", region)
	pooled := awsOnboard(t, base, admin, "pooled", region)
	awaitTenants(t, base, admin, []string{ded, pooled}, "active", 180*time.Second)
	ddb, s3c := motoDynamo(moto, region), motoS3(moto, region)

	// Where each tenant's data must be, from the stacks as moto has them:
	// the dedicated tenant's own table and bucket, the pool's for the
	// pooled tenant. Cairn reports the same.
	dedStack := describeStack(t, moto, region, dedicatedStack(ded))
	poolStack := describeStack(t, moto, region, provisioner.PoolStackName())
	tenants := []*profileTenant{
		{id: ded, tier: "dedicated", table: stackOutput(dedStack, "ProfileTable"), bucket: stackOutput(dedStack, "RawBucket")},
		{id: pooled, tier: "pooled", table: stackOutput(poolStack, "ProfileTable"), bucket: stackOutput(poolStack, "RawBucket"), prefix: "tenants/" + pooled + "/"},
	}
	if tenants[0].table == "" || tenants[0].table == tenants[1].table || tenants[0].bucket == "" || tenants[0].bucket == tenants[1].bucket {
		t.Fatalf("dedicated table %q and bucket %q, pool table %q and bucket %q: want distinct, non-empty",
			tenants[0].table, tenants[0].bucket, tenants[1].table, tenants[1].bucket)
	}
	for _, p := range tenants {
		out := outputsOf(tenantStacks(t, base, admin, p.id)[region])
		if out["profile_table"] != p.table || out["raw_bucket"] != p.bucket || out["s3_prefix"] != p.prefix {
			t.Fatalf("%s tenant's outputs %v; want profile_table %s, raw_bucket %s, s3_prefix %q", p.tier, out, p.table, p.bucket, p.prefix)
		}
		tok, err := runToken(t, "--tenant", p.id, "--data-dir", filepath.Dir(keyFile), "--signing-key-file", keyFile, "--database-url", dbURL)
		if err != nil {
			t.Fatalf("tenant token: %v", err)
		}
		p.token = tok
	}

	// Both tenants get the same events (same messageIds, same customer):
	// dedup markers, identifiers and profiles are per tenant.
	sc := newProfileScenario()
	for _, p := range tenants {
		ingestProfileEvents(t, base, p, sc)
		checkProfileAPI(t, base, p, sc)
		checkRawZone(ctx, t, s3c, p, sc)
		checkProfileItems(ctx, t, ddb, p, sc)
	}
	// A tenant's token reads nothing of the other tenant.
	mustAPI(t, "GET", base+"/v1/tenants/"+pooled+"/profiles/"+tenants[1].profile, tenants[0].token, "", http.StatusNotFound)
	mustAPI(t, "GET", base+"/v1/tenants/"+ded+"/profiles?identifier="+url.QueryEscape("user_id:"+sc.user), tenants[1].token, "", http.StatusNotFound)
	// Neither tenant's items are where the other's are: the dedicated
	// table holds only its tenant, the pool table nothing of it.
	for _, it := range motoScan(ctx, t, ddb, tenants[0].table, "") {
		if pk := ddbStr(it, "pk"); !strings.HasPrefix(pk, tenants[0].keyPrefix()) {
			t.Errorf("dedicated table %s holds an item of another tenant: pk %q", tenants[0].table, pk)
		}
	}
	if n := len(motoScan(ctx, t, ddb, tenants[1].table, tenants[0].keyPrefix())); n != 0 {
		t.Errorf("the pool table %s holds %d items of the dedicated tenant", tenants[1].table, n)
	}

	// Erase the dedicated tenant's customer: the pooled tenant's same
	// customer stays whole. Then erase the pooled one, suppressing.
	eraseProfile(ctx, t, base, ddb, s3c, tenants[0], sc, false)
	checkProfileAPI(t, base, tenants[1], sc)
	checkRawZone(ctx, t, s3c, tenants[1], sc)
	checkProfileItems(ctx, t, ddb, tenants[1], sc)
	eraseProfile(ctx, t, base, ddb, s3c, tenants[1], sc, true)
}

// describeStack returns a stack as moto describes it.
func describeStack(t *testing.T, endpoint, region, name string) cfntypes.Stack {
	t.Helper()
	out, err := motoCFN(endpoint, region).DescribeStacks(t.Context(), &cloudformation.DescribeStacksInput{StackName: aws.String(name)})
	if err != nil {
		t.Fatalf("moto DescribeStacks %s in %s: %v", name, region, err)
	}
	if len(out.Stacks) != 1 {
		t.Fatalf("moto DescribeStacks %s in %s: %d stacks", name, region, len(out.Stacks))
	}
	return out.Stacks[0]
}

// postSegment posts a Segment batch of events with a write key as HTTP
// Basic user name and returns the answer, which must be a 200.
func postSegment(t *testing.T, base, writeKey string, events []profileEvent) map[string]any {
	t.Helper()
	raws := make([][]byte, len(events))
	for i, e := range events {
		raws[i] = e.raw
	}
	body := slices.Concat([]byte(`{"batch":[`), bytes.Join(raws, []byte(",")), []byte(`],"sentAt":"`+time.Now().UTC().Format(time.RFC3339Nano)+`"}`))
	req, err := http.NewRequest("POST", base+"/v1/batch", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(writeKey, "")
	req.Header.Set("Content-Type", "application/json")
	res, err := apiClient.Do(req)
	if err != nil {
		t.Fatalf("POST /v1/batch: %v", err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("POST /v1/batch: read answer: %v", err)
	}
	var out map[string]any
	if res.StatusCode != http.StatusOK || json.Unmarshal(raw, &out) != nil {
		t.Fatalf("POST /v1/batch: %d %s, want 200 and an ingest result", res.StatusCode, raw)
	}
	return out
}

// ingestProfileEvents creates a source for the tenant and sends it the
// scenario's batches with its write key.
func ingestProfileEvents(t *testing.T, base string, p *profileTenant, sc profileScenario) {
	t.Helper()
	src := mustAPI(t, "POST", base+"/v1/tenants/"+p.id+"/sources", p.token, `{"name":"web"}`, http.StatusCreated)
	key := jstr(src, "write_key")
	if key == "" {
		t.Fatalf("%s tenant: source without its write key: %v", p.tier, src)
	}
	for i, batch := range sc.batches {
		wantAccepted, wantDup := len(batch), 0
		if i == 2 { // the retry
			wantAccepted, wantDup = 0, len(batch)
		}
		r := postSegment(t, base, key, batch)
		if r["success"] != true || jnum(r, "accepted") != wantAccepted || jnum(r, "duplicates") != wantDup || jnum(r, "suppressed") != 0 {
			t.Fatalf("%s tenant, batch %d: %v; want success, %d accepted, %d duplicates", p.tier, i, r, wantAccepted, wantDup)
		}
	}
}

// lookupProfile looks the profile holding the identifier (type:value) up
// through the API, which must answer want.
func lookupProfile(t *testing.T, base string, p *profileTenant, identifier string, want int) map[string]any {
	t.Helper()
	return mustAPI(t, "GET", base+"/v1/tenants/"+p.id+"/profiles?identifier="+url.QueryEscape(identifier), p.token, "", want)
}

// checkProfileAPI checks through the API, with the tenant's token, that
// the customer is one profile with every identifier, trait and event, the
// merged-away profile ID leads to it, and the bystander is apart. It
// records the profile IDs in p.
func checkProfileAPI(t *testing.T, base string, p *profileTenant, sc profileScenario) {
	t.Helper()
	prof := lookupProfile(t, base, p, "user_id:"+sc.user, http.StatusOK)
	p.profile = jstr(prof, "id")
	// The email as sent, in another case than stored: lookups lowercase it.
	for _, id := range append(sc.identifiers(), "email:"+sc.email) {
		if got := jstr(lookupProfile(t, base, p, id, http.StatusOK), "id"); got != p.profile {
			t.Errorf("%s tenant: %s is profile %s, user_id is %s: want one profile", p.tier, id, got, p.profile)
		}
	}
	var ids []string
	idents, _ := prof["identifiers"].([]any)
	for _, it := range idents {
		m, _ := it.(map[string]any)
		ids = append(ids, jstr(m, "type")+":"+jstr(m, "value"))
	}
	if want := sc.identifiers(); !slices.Equal(ids, want) {
		t.Errorf("%s tenant: identifiers %v, want %v", p.tier, ids, want)
	}
	merged, _ := prof["merged_profile_ids"].([]any)
	if len(merged) != 1 || merged[0] == p.profile {
		t.Fatalf("%s tenant: merged_profile_ids %v, want the anonymous profile", p.tier, prof["merged_profile_ids"])
	}
	p.merged, _ = merged[0].(string)
	traits, _ := prof["traits"].(map[string]any)
	if traits["email"] != sc.email || traits["name"] != "Jane" || traits["plan"] != "pro" {
		t.Errorf("%s tenant: traits %v, want the email as sent, name and plan", p.tier, traits)
	}
	if got := jstr(mustAPI(t, "GET", base+"/v1/tenants/"+p.id+"/profiles/"+p.merged, p.token, "", http.StatusOK), "id"); got != p.profile {
		t.Errorf("%s tenant: merged-away profile %s reads as %s, want %s", p.tier, p.merged, got, p.profile)
	}

	// Every event, newest first, each with its member and as sent.
	list := listItems(mustAPI(t, "GET", base+"/v1/tenants/"+p.id+"/profiles/"+p.profile+"/events?limit=50", p.token, "", http.StatusOK))
	want := sc.customerEvents()
	if len(list) != len(want) {
		t.Fatalf("%s tenant: %d events, want %d: %v", p.tier, len(list), len(want), list)
	}
	for i, e := range want {
		got := list[i]
		member := p.profile
		if e.member == "anon" {
			member = p.merged
		}
		var sent map[string]any
		_ = json.Unmarshal(e.raw, &sent)
		ev, _ := got["event"].(map[string]any)
		if jstr(got, "message_id") != e.id || jstr(got, "profile_id") != member || !sameJSON(ev, sent) {
			t.Errorf("%s tenant: event %d is %v; want %s of member %s, as sent: %s", p.tier, i, got, e.id, member, e.raw)
		}
		if ts, err := time.Parse(time.RFC3339Nano, jstr(got, "timestamp")); err != nil || !ts.Equal(e.at) {
			t.Errorf("%s tenant: event %s at %q, want %s", p.tier, e.id, jstr(got, "timestamp"), e.at)
		}
	}

	other := lookupProfile(t, base, p, "user_id:"+sc.other, http.StatusOK)
	p.bystander = jstr(other, "id")
	if p.bystander == p.profile || p.bystander == p.merged {
		t.Errorf("%s tenant: the bystander is in the customer's profile %s", p.tier, p.bystander)
	}
}

func sameJSON(a, b map[string]any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// rawKeyPattern is a raw-zone object key under its prefix:
// events/dt=YYYY-MM-DD/hh=HH/<time>Z-<random>.ndjson.gz.
var rawKeyPattern = regexp.MustCompile(`^events/dt=(\d{4}-\d{2}-\d{2})/hh=(\d{2})/(\d{8}T\d{6}\.\d{9})Z-[a-z2-7]{16}\.ndjson\.gz$`)

// listRawKeys lists the keys under prefix in bucket, in S3's order.
func listRawKeys(ctx context.Context, t *testing.T, s3c *s3.Client, bucket, prefix string) []string {
	t.Helper()
	var keys []string
	pages := s3.NewListObjectsV2Paginator(s3c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatalf("moto ListObjectsV2 %s/%s: %v", bucket, prefix, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys
}

// readRawObject reads a version of a raw-zone object ("" for the current
// one) and returns its lines: it must be gzip-compressed NDJSON, stored as
// such.
func readRawObject(ctx context.Context, t *testing.T, s3c *s3.Client, bucket, key, version string) [][]byte {
	t.Helper()
	in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
	if version != "" {
		in.VersionId = aws.String(version)
	}
	out, err := s3c.GetObject(ctx, in)
	if err != nil {
		t.Fatalf("moto GetObject %s/%s (version %q): %v", bucket, key, version, err)
	}
	defer out.Body.Close()
	body, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatalf("moto GetObject %s/%s: %v", bucket, key, err)
	}
	if aws.ToString(out.ContentEncoding) != "gzip" || aws.ToString(out.ContentType) != "application/x-ndjson" || !bytes.HasPrefix(body, []byte{0x1f, 0x8b}) {
		t.Fatalf("%s/%s: Content-Encoding %q, Content-Type %q, starts % x: want gzip-compressed NDJSON",
			bucket, key, aws.ToString(out.ContentEncoding), aws.ToString(out.ContentType), body[:min(len(body), 4)])
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("%s/%s: %v", bucket, key, err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s/%s: gunzip: %v", bucket, key, err)
	}
	if !bytes.HasSuffix(data, []byte("\n")) {
		t.Errorf("%s/%s: the last line does not end in a newline: %q", bucket, key, data)
	}
	return bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
}

// checkRawZone checks the tenant's raw zone on S3: one object per batch
// of new events (not the retry) under its prefix, partitioned by the hour it was received in, holding
// the batch's events byte for byte. It records the keys in p.
func checkRawZone(ctx context.Context, t *testing.T, s3c *s3.Client, p *profileTenant, sc profileScenario) {
	t.Helper()
	// Everything of the tenant is under its prefix: the whole of its own
	// bucket, or its folder of the pool's, where other pooled tenants'
	// objects are none of its own.
	var keys []string
	for _, k := range listRawKeys(ctx, t, s3c, p.bucket, "") {
		rest, ok := strings.CutPrefix(k, p.prefix)
		if !ok {
			if strings.Contains(k, p.id) {
				t.Errorf("%s tenant: object %s is outside its prefix %s", p.tier, k, p.prefix)
			}
			continue
		}
		m := rawKeyPattern.FindStringSubmatch(rest)
		if m == nil {
			t.Errorf("%s tenant: raw-zone key %q is not %s<events/dt=.../hh=.../time-random.ndjson.gz>", p.tier, k, p.prefix)
			continue
		}
		at, err := time.Parse("20060102T150405.000000000", m[3])
		if err != nil || m[1] != at.Format("2006-01-02") || m[2] != at.Format("15") {
			t.Errorf("%s tenant: key %s is in partition dt=%s/hh=%s, not that of its time %s (%v)", p.tier, k, m[1], m[2], m[3], err)
		}
		if age := time.Since(at); age < 0 || age > time.Hour {
			t.Errorf("%s tenant: key %s was received at %s, not during this test", p.tier, k, at)
		}
		keys = append(keys, k)
	}
	stored := sc.batches[:2]
	if len(keys) != len(stored) {
		t.Fatalf("%s tenant: raw zone %s/%s holds %d objects %v, want one per batch of new events (%d)", p.tier, p.bucket, p.prefix, len(keys), keys, len(stored))
	}
	// Keys sort by time received, so in the order the batches were sent.
	for i, k := range keys {
		lines := readRawObject(ctx, t, s3c, p.bucket, k, "")
		var want [][]byte
		for _, e := range stored[i] {
			want = append(want, e.raw)
		}
		if !slices.EqualFunc(lines, want, bytes.Equal) {
			t.Errorf("%s tenant: object %s (batch %d) holds\n%s\nwant the events as sent\n%s", p.tier, k, i, bytes.Join(lines, []byte("\n")), bytes.Join(want, []byte("\n")))
		}
	}
	p.objects = keys
}

// --- DynamoDB, read raw ---

func ddbStr(item map[string]ddbtypes.AttributeValue, name string) string {
	if v, ok := item[name].(*ddbtypes.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

// ddbData is an item's JSON payload (attribute d, binary).
func ddbData(item map[string]ddbtypes.AttributeValue) []byte {
	if v, ok := item["d"].(*ddbtypes.AttributeValueMemberB); ok {
		return v.Value
	}
	return nil
}

func motoGetItem(ctx context.Context, t *testing.T, ddb *dynamodb.Client, table, pk, sk string) map[string]ddbtypes.AttributeValue {
	t.Helper()
	out, err := ddb.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(table),
		Key:            map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: pk}, "sk": &ddbtypes.AttributeValueMemberS{Value: sk}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatalf("moto GetItem %s %s/%s: %v", table, pk, sk, err)
	}
	return out.Item
}

// motoQuery returns the items of a partition of the table, or of gsi1
// when index is set, in sort-key order.
func motoQuery(ctx context.Context, t *testing.T, ddb *dynamodb.Client, table, pk string, index bool) []map[string]ddbtypes.AttributeValue {
	t.Helper()
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(table),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":pk": &ddbtypes.AttributeValueMemberS{Value: pk}},
	}
	if index {
		in.IndexName, in.KeyConditionExpression = aws.String("gsi1"), aws.String("gsi1pk = :pk")
	}
	var items []map[string]ddbtypes.AttributeValue
	pages := dynamodb.NewQueryPaginator(ddb, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatalf("moto Query %s %s: %v", table, pk, err)
		}
		items = append(items, page.Items...)
	}
	return items
}

// motoScan returns every item of the table whose partition key starts
// with prefix ("" for all).
func motoScan(ctx context.Context, t *testing.T, ddb *dynamodb.Client, table, prefix string) []map[string]ddbtypes.AttributeValue {
	t.Helper()
	in := &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)}
	if prefix != "" {
		in.FilterExpression = aws.String("begins_with(pk, :p)")
		in.ExpressionAttributeValues = map[string]ddbtypes.AttributeValue{":p": &ddbtypes.AttributeValueMemberS{Value: prefix}}
	}
	var items []map[string]ddbtypes.AttributeValue
	pages := dynamodb.NewScanPaginator(ddb, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatalf("moto Scan %s: %v", table, err)
		}
		items = append(items, page.Items...)
	}
	return items
}

func ddbSortKeys(items []map[string]ddbtypes.AttributeValue) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = ddbStr(it, "sk")
	}
	return out
}

// eventSortKey is an event item's sort key: E#<time>#<messageId>, the
// time in UTC to the nanosecond so that keys sort by it.
func eventSortKey(e profileEvent) string {
	return "E#" + e.at.UTC().Format("2006-01-02T15:04:05.000000000Z") + "#" + e.id
}

// checkProfileItems checks the tenant's items in its table, by the layout
// of internal/profiles/keys.go: each identifier indexed to the member that
// brought it, each member's partition with its identifiers and events, the
// merge under the survivor, both members in gsi1 under the root, and the
// retried event's dedup marker naming the one object that holds it.
func checkProfileItems(ctx context.Context, t *testing.T, ddb *dynamodb.Client, p *profileTenant, sc profileScenario) {
	t.Helper()
	pre := p.keyPrefix()
	lowerEmail := strings.ToLower(sc.email)
	for id, member := range map[string]string{
		"user_id#" + sc.user: p.profile, "email#" + lowerEmail: p.profile, "anonymous_id#" + sc.anon1: p.profile,
		"anonymous_id#" + sc.anon2: p.merged, "user_id#" + sc.other: p.bystander,
	} {
		it := motoGetItem(ctx, t, ddb, p.table, pre+"I#"+id, "I")
		var d struct {
			Member string `json:"member"`
		}
		if it == nil || json.Unmarshal(ddbData(it), &d) != nil || d.Member != member {
			t.Errorf("%s tenant: index item %sI#%s in %s: %v, want it to name member %s", p.tier, pre, id, p.table, it, member)
		}
	}

	var first, anon []string
	for _, e := range sc.customerEvents() {
		if e.member == "anon" {
			anon = append(anon, eventSortKey(e))
		} else {
			first = append(first, eventSortKey(e))
		}
	}
	slices.Sort(first)
	got := ddbSortKeys(motoQuery(ctx, t, ddb, p.table, pre+"M#"+p.profile, false))
	want := slices.Concat(first, []string{"I#anonymous_id#" + sc.anon1, "I#email#" + lowerEmail, "I#user_id#" + sc.user, "M"})
	if len(got) != len(want)+1 || !slices.Equal(got[:len(first)], first) || !strings.HasPrefix(got[len(first)], "G#") ||
		!strings.HasSuffix(got[len(first)], "#"+p.merged) || !slices.Equal(got[len(first)+1:], want[len(first):]) {
		t.Errorf("%s tenant: partition %sM#%s holds %q; want events %q, a merge G#<time>#%s, identifiers and M",
			p.tier, pre, p.profile, got, first, p.merged)
	}
	if got, want := ddbSortKeys(motoQuery(ctx, t, ddb, p.table, pre+"M#"+p.merged, false)), append(anon, "I#anonymous_id#"+sc.anon2, "M"); !slices.Equal(got, want) {
		t.Errorf("%s tenant: partition %sM#%s holds %q, want %q", p.tier, pre, p.merged, got, want)
	}
	var members []string
	for _, it := range motoQuery(ctx, t, ddb, p.table, pre+"R#"+p.profile, true) {
		if ddbStr(it, "pk") != pre+"M#"+strings.TrimPrefix(ddbStr(it, "gsi1sk"), "M#") {
			t.Errorf("%s tenant: gsi1 entry %v is not a member item", p.tier, it)
		}
		members = append(members, ddbStr(it, "gsi1sk"))
	}
	if want := []string{"M#" + p.merged, "M#" + p.profile}; !slices.Equal(members, want) && !slices.Equal(members, []string{want[1], want[0]}) {
		t.Errorf("%s tenant: gsi1 %sR#%s lists %q, want %q", p.tier, pre, p.profile, members, want)
	}

	retried := sc.batches[1][0]
	marker := motoGetItem(ctx, t, ddb, p.table, pre+"D#"+retried.id, "D")
	var d struct {
		Objects []string `json:"objects"`
	}
	if marker == nil || json.Unmarshal(ddbData(marker), &d) != nil || !slices.Equal(d.Objects, p.objects[1:]) || len(d.Objects) != 1 {
		t.Errorf("%s tenant: dedup marker of %s: %v, want it to list the objects %q", p.tier, retried.id, marker, p.objects[1:])
	}
}

// eraseProfile erases the customer's profile through the API and checks
// that nothing of it is left: not through the API, not in the table, not
// in any version of any raw-zone object; the bystander's events stay, as
// sent. With suppress, later events naming the customer are dropped.
func eraseProfile(ctx context.Context, t *testing.T, base string, ddb *dynamodb.Client, s3c *s3.Client, p *profileTenant, sc profileScenario, suppress bool) {
	t.Helper()
	er := mustAPI(t, "DELETE", base+"/v1/tenants/"+p.id+"/profiles/"+p.profile+fmt.Sprintf("?suppress=%t", suppress), p.token, "", http.StatusAccepted)
	eid := jstr(er, "id")
	if !regexp.MustCompile(`^era_[a-z2-7]{26}$`).MatchString(eid) || jstr(er, "profile_id") != p.profile || er["suppress"] != suppress {
		t.Fatalf("%s tenant: erasure answer %v", p.tier, er)
	}
	var done map[string]any
	for deadline := time.Now().Add(120 * time.Second); ; {
		done = mustAPI(t, "GET", base+"/v1/tenants/"+p.id+"/erasures/"+eid, p.token, "", http.StatusOK)
		if jstr(done, "status") == "completed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s tenant: erasure %s still %s after 120s: %v", p.tier, eid, jstr(done, "status"), done)
		}
		time.Sleep(100 * time.Millisecond) // polling the API, not waiting blind
	}
	customer := sc.customerEvents()
	if jnum(done, "lines_removed") != len(customer) || jnum(done, "objects_rewritten") != len(p.objects) || jnum(done, "items_deleted") == 0 {
		t.Errorf("%s tenant: completed erasure %v; want %d lines removed from %d objects", p.tier, done, len(customer), len(p.objects))
	}

	// The API knows nothing of it, by ID, merged-away ID or identifier.
	for _, id := range []string{p.profile, p.merged} {
		mustAPI(t, "GET", base+"/v1/tenants/"+p.id+"/profiles/"+id, p.token, "", http.StatusNotFound)
		mustAPI(t, "GET", base+"/v1/tenants/"+p.id+"/profiles/"+id+"/events", p.token, "", http.StatusNotFound)
	}
	for _, id := range append(sc.identifiers(), "email:"+sc.email) {
		lookupProfile(t, base, p, id, http.StatusNotFound)
	}
	if got := jstr(lookupProfile(t, base, p, "user_id:"+sc.other, http.StatusOK), "id"); got != p.bystander {
		t.Errorf("%s tenant: the bystander is now profile %s, was %s", p.tier, got, p.bystander)
	}

	// The table: no member partition, no gsi1 entry, no index entry (or,
	// suppressing, one that marks the identifier suppressed and names no
	// member), and no item that names the customer or its profiles, but
	// for those suppression entries and the erasure's own record, which
	// names the profile it erased and nothing else of it.
	pre := p.keyPrefix()
	for _, m := range []string{p.profile, p.merged} {
		if items := motoQuery(ctx, t, ddb, p.table, pre+"M#"+m, false); len(items) != 0 {
			t.Errorf("%s tenant: %d items left in partition %sM#%s: %q", p.tier, len(items), pre, m, ddbSortKeys(items))
		}
	}
	if items := motoQuery(ctx, t, ddb, p.table, pre+"R#"+p.profile, true); len(items) != 0 {
		t.Errorf("%s tenant: gsi1 still lists %d members under %sR#%s", p.tier, len(items), pre, p.profile)
	}
	lowerEmail := strings.ToLower(sc.email)
	suppressed := map[string]bool{}
	for _, id := range []string{"user_id#" + sc.user, "email#" + lowerEmail, "anonymous_id#" + sc.anon1, "anonymous_id#" + sc.anon2} {
		it := motoGetItem(ctx, t, ddb, p.table, pre+"I#"+id, "I")
		var d struct {
			Member     string `json:"member"`
			Suppressed bool   `json:"suppressed"`
		}
		switch {
		case !suppress && it != nil:
			t.Errorf("%s tenant: index item %sI#%s is left: %s", p.tier, pre, id, ddbData(it))
		case suppress && (it == nil || json.Unmarshal(ddbData(it), &d) != nil || !d.Suppressed || d.Member != ""):
			t.Errorf("%s tenant: index item %sI#%s: %v, want it to mark the identifier suppressed, with no member", p.tier, pre, id, it)
		}
		suppressed[pre+"I#"+id] = suppress
	}
	secrets := []string{p.profile, p.merged, sc.user, sc.anon1, sc.anon2, lowerEmail, sc.email}
	for _, it := range motoScan(ctx, t, ddb, p.table, pre) {
		pk := ddbStr(it, "pk")
		if suppressed[pk] {
			continue
		}
		all := strings.Join([]string{pk, ddbStr(it, "sk"), ddbStr(it, "gsi1pk"), ddbStr(it, "gsi1sk"), string(ddbData(it))}, " ")
		for _, s := range secrets {
			if s == p.profile && strings.HasPrefix(pk, pre+"X#") {
				continue
			}
			if strings.Contains(all, s) {
				t.Errorf("%s tenant: item %s/%s still names %q: %s", p.tier, pk, ddbStr(it, "sk"), s, all)
			}
		}
	}

	// The raw zone: every version of every object, not only the current
	// ones, is free of the customer's events; the first batch's object
	// keeps the bystander's event as sent, the others are gone.
	erased := map[string]bool{}
	for _, e := range customer {
		erased[e.id] = true
	}
	left := map[string]int{}
	pages := s3.NewListObjectVersionsPaginator(s3c, &s3.ListObjectVersionsInput{Bucket: aws.String(p.bucket), Prefix: aws.String(p.prefix + "events/")})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatalf("moto ListObjectVersions %s/%s: %v", p.bucket, p.prefix, err)
		}
		for _, v := range page.Versions {
			key := aws.ToString(v.Key)
			if aws.ToBool(v.IsLatest) {
				left[key]++
			}
			for _, line := range readRawObject(ctx, t, s3c, p.bucket, key, aws.ToString(v.VersionId)) {
				var ev struct {
					MessageID string `json:"messageId"`
				}
				if err := json.Unmarshal(line, &ev); err != nil || erased[ev.MessageID] {
					t.Errorf("%s tenant: %s (version %s) still holds %s", p.tier, key, aws.ToString(v.VersionId), line)
				}
			}
		}
	}
	if len(left) != 1 || left[p.objects[0]] != 1 {
		t.Errorf("%s tenant: raw-zone objects left %v, want only the first batch's %s", p.tier, left, p.objects[0])
	}
	bystander := sc.batches[0][len(sc.batches[0])-1]
	if lines := readRawObject(ctx, t, s3c, p.bucket, p.objects[0], ""); len(lines) != 1 || !bytes.Equal(lines[0], bystander.raw) {
		t.Errorf("%s tenant: %s now holds %q, want only the bystander's event as sent: %s", p.tier, p.objects[0], lines, bystander.raw)
	}
	for _, k := range p.objects[1:] {
		_, err := s3c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(p.bucket), Key: aws.String(k)})
		if !errors.As(err, new(*s3types.NotFound)) {
			t.Errorf("%s tenant: HeadObject %s after erasure: %v, want NotFound", p.tier, k, err)
		}
	}

	if !suppress {
		return
	}
	// Suppressed: an event naming the customer is dropped before the raw
	// zone, so nothing new appears there.
	src := mustAPI(t, "POST", base+"/v1/tenants/"+p.id+"/sources", p.token, `{"name":"after-erasure"}`, http.StatusCreated)
	back := profileEvent{id: "msg-back-" + awsRandom(8)}
	back.raw, _ = json.Marshal(map[string]any{"type": "track", "messageId": back.id, "userId": sc.user, "event": "Came Back"})
	if r := postSegment(t, base, jstr(src, "write_key"), []profileEvent{back}); jnum(r, "suppressed") != 1 || jnum(r, "accepted") != 0 {
		t.Errorf("%s tenant: an event of the erased, suppressed customer: %v, want it suppressed", p.tier, r)
	}
	lookupProfile(t, base, p, "user_id:"+sc.user, http.StatusNotFound)
	if keys := listRawKeys(ctx, t, s3c, p.bucket, p.prefix+"events/"); !slices.Equal(keys, p.objects[:1]) {
		t.Errorf("%s tenant: raw zone after a suppressed event: %q, want only %s", p.tier, keys, p.objects[0])
	}
}
