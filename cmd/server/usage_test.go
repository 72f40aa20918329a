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

	"github.com/cairn-cdp/cairn/internal/awsclient"
	"github.com/cairn-cdp/cairn/internal/awsclient/awstest"
)

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
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("server did not shut down")
	}
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
	endpoint := awstest.Endpoint(t)
	bucket := "cairn-usage-" + awsRandom(8)
	raw := motoS3(endpoint, "us-east-1")
	if _, err := raw.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	if _, err := newS3Sink(t.Context(), "http://"+bucket, awsclient.Settings{EndpointURL: endpoint}); err == nil {
		t.Error("an http:// bucket URL was accepted")
	}
	sink, err := newS3Sink(t.Context(), "s3://"+bucket+"/billing/", awsclient.Settings{EndpointURL: endpoint})
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
