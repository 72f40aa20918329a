package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cairn-cdp/cairn/internal/testdb"
)

// awaitShutdown waits for a server stopped by its context to return, and
// fails the test if it returned an error or took more than a minute.
func awaitShutdown(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("server did not shut down")
	}
}

// rawZoneBytes is what the tenant's raw zone files hold, decompressed,
// under the embedded default's data directory.
func rawZoneBytes(t *testing.T, dir, tenant string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(filepath.Join(dir, "zones"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.Contains(path, tenant) || !strings.Contains(path, "/events/") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		m, err := io.Copy(io.Discard, zr)
		n += m
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestUsageAcrossRestart: what a tenant sends is metered (events, raw zone
// bytes, webhook deliveries its receiver accepted), and a clean shutdown
// flushes the last counts, so the report after a restart equals what was
// sent.
func TestUsageAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	admin, err := runToken(t, "--admin", "--data-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	rcv := newReceiver(t)
	ctx, stop := context.WithCancel(context.Background())
	base, done := startServer(t, ctx, activationVars(dir))
	a := setUpActivation(t, base, admin, "metered", rcv.URL())
	const users = 5
	for i := range users {
		identify(t, http.DefaultClient, base, a, fmt.Sprintf("user-%d", i), "free")
	}
	// Every delivery recorded as delivered before the shutdown: none is
	// retried, so none is counted, after the restart.
	awaitDeliveries(t, base, a, time.Minute, "a delivered profile.created for every user", func(ds []map[string]any) bool {
		n := 0
		for _, d := range ds {
			if d["status"] == "delivered" {
				n++
			}
		}
		return n == users && len(ds) == users
	})
	stop()
	awaitShutdown(t, done)
	delivered := 0
	for _, h := range rcv.Hooks() {
		if h.Status >= 200 && h.Status < 300 {
			delivered++
		}
	}

	base, _ = startServer(t, context.Background(), activationVars(dir))
	now := time.Now().UTC()
	q := url.Values{"from": {now.Add(-time.Hour).Format(time.RFC3339)}, "to": {now.Add(time.Hour).Format(time.RFC3339)}, "granularity": {"hour"}}
	status, got := call(t, "GET", base+"/v1/tenants/"+a.ID+"/usage?"+q.Encode(), admin, "")
	if status != http.StatusOK {
		t.Fatalf("usage: %d %v", status, got)
	}
	sum := map[string]int64{}
	for _, b := range got["buckets"].([]any) {
		for k, v := range b.(map[string]any)["values"].(map[string]any) {
			sum[k] += int64(v.(float64))
		}
	}
	if sum["events_accepted"] != users {
		t.Errorf("events_accepted %d, want %d", sum["events_accepted"], users)
	}
	if want := rawZoneBytes(t, dir, a.ID); sum["raw_bytes"] != want || want == 0 {
		t.Errorf("raw_bytes %d, want the %d bytes the raw zone holds", sum["raw_bytes"], want)
	}
	if sum["webhook_deliveries"] != int64(delivered) {
		t.Errorf("webhook_deliveries %d, want the %d the receiver accepted", sum["webhook_deliveries"], delivered)
	}
	// The set-up's requests (token, webhook, segment) and the identifies.
	if sum["api_requests"] < users+3 {
		t.Errorf("api_requests %d, want at least %d", sum["api_requests"], users+3)
	}
}

// TestUsageReportToBucket: with usage-report-bucket set, the daily report
// lands in the bucket under its prefix, where the ISV's billing reads it.
func TestUsageReportToBucket(t *testing.T) {
	endpoint := awsTestEndpoint(t)
	bucket := "cairn-usage-" + awsRandom(8)
	raw := motoS3(endpoint, "us-east-1")
	if _, err := raw.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	if _, err := newS3Sink(t.Context(), "http://"+bucket, endpoint, nil); err == nil {
		t.Error("an http:// bucket URL was accepted")
	}
	sink, err := newS3Sink(t.Context(), "s3://"+bucket+"/billing/", endpoint, nil)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("date,tenant_id,metric,dimension,value\n2026-12-02,ten_a,api_requests,,5\n")
	loc, err := sink.Put(t.Context(), "usage-2026-12-02.csv", body)
	if err != nil {
		t.Fatal(err)
	}
	if want := "s3://" + bucket + "/billing/usage-2026-12-02.csv"; loc != want {
		t.Errorf("location %q, want %q", loc, want)
	}
	out, err := raw.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("billing/usage-2026-12-02.csv")})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	got, _ := io.ReadAll(out.Body)
	if !bytes.Equal(got, body) || aws.ToString(out.ContentType) != "text/csv" {
		t.Errorf("object %q (%s), want the report as text/csv", got, aws.ToString(out.ContentType))
	}
}

// usageProfilesRegion is the Region of TestUsageProfiles' pooled tenant in
// AWS mode: a pool of its own.
const usageProfilesRegion = "ca-central-1"

// TestUsageProfiles: the profiles a tenant has are metered as a level, on
// the embedded default and in AWS mode (PostgreSQL and a DynamoDB pool
// table): six users make six profiles, a visitor one more, an identify
// merging the visitor one less, an erasure one less again; a restart keeps
// the count and samples it again without adding anything up, and a day's
// value is its last hour's, not a sum.
func TestUsageProfiles(t *testing.T) {
	t.Run("embedded", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		admin, err := runToken(t, "--admin", "--data-dir", dir)
		if err != nil {
			t.Fatal(err)
		}
		testUsageProfiles(t, admin, "eu-west-1", activationVars(dir))
	})
	t.Run("aws", func(t *testing.T) {
		moto := awsTestEndpoint(t)
		t.Parallel()
		keyFile := t.TempDir() + "/signing-key.pem"
		testUsageProfiles(t, adminToken(t, keyFile), usageProfilesRegion, awsVars(t, moto, testdb.Postgres(t), keyFile))
	})
}

func testUsageProfiles(t *testing.T, admin, region string, vars map[string]string) {
	ctx, stop := context.WithCancel(context.Background())
	base, done := startServer(t, ctx, vars)
	slug := "profiles-" + awsRandom(8)
	tn := mustAPI(t, "POST", base+"/v1/tenants", admin, fmt.Sprintf(`{"name":%q,"slug":%q,"tier":"pooled","home_region":%q}`, slug, slug, region), http.StatusAccepted)
	id := jstr(tn, "id")
	awaitTenants(t, base, admin, []string{id}, "active", 3*time.Minute)
	tok := jstr(mustAPI(t, "POST", base+"/v1/tenants/"+id+"/tokens", admin,
		`{"scopes":["events:write","profiles:read","profiles:write","usage:read"],"ttl_seconds":3600}`, http.StatusCreated), "token")
	send := func(events ...string) {
		t.Helper()
		mustAPI(t, "POST", base+"/v1/tenants/"+id+"/events", tok, `{"batch":[`+strings.Join(events, ",")+`]}`, http.StatusOK)
	}
	msg := 0
	event := func(fields string) string {
		msg++
		return fmt.Sprintf(`{"messageId":"m-%d",%s}`, msg, fields)
	}

	const users = 6
	var batch []string
	for i := range users {
		batch = append(batch, event(fmt.Sprintf(`"type":"identify","userId":"u%d","traits":{"plan":"free"}`, i)))
	}
	send(batch...)
	send(batch[0], event(`"type":"track","event":"Viewed","userId":"u0"`)) // a duplicate and a known user: nothing new
	awaitProfiles(t, base, tok, id, users)
	send(event(`"type":"page","anonymousId":"visitor"`))
	awaitProfiles(t, base, tok, id, users+1)
	send(event(`"type":"identify","userId":"u0","anonymousId":"visitor"`)) // a merge
	awaitProfiles(t, base, tok, id, users)

	p := mustAPI(t, "GET", base+"/v1/tenants/"+id+"/profiles?identifier="+url.QueryEscape("user_id:u1"), tok, "", http.StatusOK)
	er := mustAPI(t, "DELETE", base+"/v1/tenants/"+id+"/profiles/"+jstr(p, "id"), tok, "", http.StatusAccepted)
	for deadline := time.Now().Add(2 * time.Minute); ; {
		e := mustAPI(t, "GET", base+"/v1/tenants/"+id+"/erasures/"+jstr(er, "id"), tok, "", http.StatusOK)
		if jstr(e, "status") == "completed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("erasure still %s after 2 minutes", jstr(e, "status"))
		}
		time.Sleep(100 * time.Millisecond) // polling the API, not waiting blind
	}
	awaitProfiles(t, base, tok, id, users-1)

	// Twice across a restart: each start samples every tenant again.
	for range 2 {
		stop()
		awaitShutdown(t, done)
		ctx, stop = context.WithCancel(context.Background())
		base, done = startServer(t, ctx, vars)
		awaitProfiles(t, base, tok, id, users-1)
	}
	defer stop()
	now := time.Now().UTC()
	q := url.Values{"from": {now.Add(-time.Hour).Format(time.RFC3339)}, "to": {now.Format(time.RFC3339)}, "granularity": {"day"}}
	day := mustAPI(t, "GET", base+"/v1/tenants/"+id+"/usage?"+q.Encode(), tok, "", http.StatusOK)
	buckets := day["buckets"].([]any)
	last := buckets[len(buckets)-1].(map[string]any)["values"].(map[string]any)
	if last["profiles"] != float64(users-1) {
		t.Errorf("today's profiles %v, want the last hourly value %d, not a sum", last["profiles"], users-1)
	}
	fleet := mustAPI(t, "GET", base+"/v1/usage?"+url.Values{"from": q["from"], "to": q["to"]}.Encode(), admin, "", http.StatusOK)
	found := false
	for _, it := range fleet["items"].([]any) {
		if it := it.(map[string]any); it["tenant_id"] == id {
			found = true
			if v := it["values"].(map[string]any)["profiles"]; v != float64(users-1) {
				t.Errorf("the fleet's profiles of the tenant %v, want %d", v, users-1)
			}
		}
	}
	if !found {
		t.Errorf("the fleet's usage misses the tenant: %v", fleet)
	}
}

// awaitProfiles waits until the tenant's profiles in the current hour are
// want: the replica that changed them samples within seconds.
func awaitProfiles(t *testing.T, base, token, tenant string, want int) {
	t.Helper()
	var got any
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		now := time.Now().UTC()
		q := url.Values{"from": {now.Format(time.RFC3339)}, "to": {now.Add(time.Second).Format(time.RFC3339)}, "granularity": {"hour"}}
		u := mustAPI(t, "GET", base+"/v1/tenants/"+tenant+"/usage?"+q.Encode(), token, "", http.StatusOK)
		b := u["buckets"].([]any)
		got = b[len(b)-1].(map[string]any)["values"].(map[string]any)["profiles"]
		if got == float64(want) {
			return
		}
	}
	t.Fatalf("profiles of the current hour %v after a minute, want %d", got, want)
}
