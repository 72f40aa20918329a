package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// metric sums the samples of a Prometheus metric whose labels contain
// every one of match.
func metric(b testing.TB, url, name string, match ...string) float64 {
	b.Helper()
	res, err := http.Get(url + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	var sum float64
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, m := range match {
			ok = ok && strings.Contains(line, m)
		}
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			b.Fatal(err)
		}
		sum += f
	}
	return sum
}

// BenchmarkOnboard500 onboards 500 tenants across 3 Regions through the API
// (a third dedicated, the rest pooled) and waits until all are active. It
// reports onboarding throughput and, on the AWS engine, the CloudFormation
// calls made per polling round.
//
//	go test -run '^$' -bench Onboard500 -benchtime 1x ./cmd/server            (embedded default)
//	CAIRN_BENCH_CLOUD=aws CAIRN_TEST_AWS_ENDPOINT=http://127.0.0.1:5000 \
//	  go test -run '^$' -bench Onboard500 -benchtime 1x ./cmd/server          (CloudFormation on the emulator)
func BenchmarkOnboard500(b *testing.B) {
	const tenants = 500
	regions := []string{"us-east-1", "eu-west-1", "ap-southeast-2"}
	for range b.N {
		b.StopTimer()
		dir := b.TempDir()
		vars := map[string]string{"CAIRN_DATA_DIR": dir, "CAIRN_STACK_POLL_INTERVAL": "250ms", "CAIRN_MAX_WORKERS": "20", "CAIRN_LOG_LEVEL": "error"}
		if os.Getenv("CAIRN_BENCH_CLOUD") == "aws" {
			vars["CAIRN_CLOUD"] = "aws"
			vars["CAIRN_AWS_ENDPOINT_URL"] = os.Getenv("CAIRN_TEST_AWS_ENDPOINT")
		}
		if url := os.Getenv("CAIRN_BENCH_DATABASE_URL"); url != "" {
			vars["CAIRN_DATABASE_URL"] = url           // an empty database of its own
			vars["CAIRN_KEY_ENCRYPTION_KEY"] = testKEK // as runToken's
		}
		admin, err := runToken(b, "--admin", "--data-dir", dir, "--database-url", vars["CAIRN_DATABASE_URL"])
		if err != nil {
			b.Fatal(err)
		}
		ctx, stop := context.WithCancel(context.Background())
		url, done := startServer(b, ctx, vars)
		b.StartTimer()

		start := time.Now()
		ids := make([]string, tenants)
		var wg sync.WaitGroup
		sem := make(chan struct{}, 16)
		for i := range tenants {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				tier := "pooled"
				if i%3 == 0 {
					tier = "dedicated"
				}
				body := fmt.Sprintf(`{"name":"Bench %d","slug":"bench-%d","tier":%q,"home_region":%q}`, i, i, tier, regions[i%len(regions)])
				status, t := call(b, "POST", url+"/v1/tenants", admin, body)
				if status != http.StatusAccepted {
					b.Errorf("onboard %d: %d %v", i, status, t)
					return
				}
				ids[i] = t["id"].(string)
			}()
		}
		wg.Wait()
		accepted := time.Since(start)
		for _, id := range ids {
			for {
				_, t := call(b, "GET", url+"/v1/tenants/"+id, admin, "")
				if t["status"] == "active" {
					break
				}
				if t["status"] == "failed" {
					b.Fatalf("tenant %s failed: %v", id, t["status_reason"])
				}
				time.Sleep(50 * time.Millisecond) // benchmark pacing, not a test wait
			}
		}
		elapsed := time.Since(start)
		b.StopTimer()

		b.ReportMetric(tenants/elapsed.Seconds(), "tenants/s")
		b.ReportMetric(tenants/accepted.Seconds(), "accepted/s")
		rounds := metric(b, url, "cairn_job_attempts_total", `kind="stack_poll"`)
		if vars["CAIRN_CLOUD"] == "aws" && rounds > 0 {
			describe := metric(b, url, "cairn_aws_calls_total", `CloudFormation.DescribeStacks`)
			b.ReportMetric(describe/rounds, "DescribeStacks/round")
			b.ReportMetric(metric(b, url, "cairn_aws_calls_total", `CloudFormation.`)/rounds, "cfn-calls/round")
			b.ReportMetric(metric(b, url, "cairn_aws_calls_total", `CloudFormation.CreateStack`), "CreateStack")
		}
		b.ReportMetric(rounds, "poll-rounds")
		stop()
		<-done
	}
}
