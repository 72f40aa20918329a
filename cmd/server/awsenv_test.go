package main

// Helpers of the AWS integration tests (aws_test.go, aws_recovery_test.go):
// the real server in AWS mode against moto, optionally through an awsfault
// proxy, and raw SDK clients on moto itself to check what the server did
// through the AWS API rather than through Cairn's own records.
//
// moto is shared by every test package running in parallel: the tests use
// fresh tenants (random IDs and slugs) and only ever look at the stacks,
// buckets and databases named after their own tenants. The pool stack
// ("cairn-pool") is the exception: every test that onboards a pooled tenant
// in a Region uses the same one, which is the point.
//
// The emulator's DescribeStacks pages by stack ARN: a stack deleted between
// two pages makes the next page fail. So each test here provisions in
// Regions of its own, where no other test deletes stacks while it polls:
// onboarding us-east-2/eu-west-2, faults eu-west-3, crash recovery
// ap-northeast-1/ap-southeast-1, replicas us-west-2/eu-central-1, grants
// eu-north-1, profiles ap-northeast-2, replica takeover
// sa-east-1/ap-south-1, tracing eu-south-1, rollouts eu-south-2, queries
// me-south-1, tier migration ca-west-1, tier migration across replicas
// eu-central-2 (the cfn package uses us-east-1, eu-west-1 and
// ca-central-1, the rollouts package ap-southeast-2, the athena package
// ap-northeast-3). awstest.Endpoint gives them the emulator.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/glue"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/cairn-cdp/cairn/internal/awsclient/awstest"
	"github.com/cairn-cdp/cairn/internal/awsfault"
	"github.com/cairn-cdp/cairn/internal/provisioner"
	"github.com/cairn-cdp/cairn/internal/sealed"
)

// Intervals the servers under test run with: short, so that a stack
// settles in a few hundred milliseconds.
const (
	awsStackPoll = "100ms"
	awsJobPoll   = "20ms"
)

// awsRandom returns n random characters of a-z2-7, for names no other test
// uses.
func awsRandom(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))[:n]
}

// --- raw SDK clients on moto ---

func motoCFN(endpoint, region string) *cloudformation.Client {
	return cloudformation.NewFromConfig(awstest.Config(""), func(o *cloudformation.Options) {
		o.Region, o.BaseEndpoint = region, aws.String(endpoint)
	})
}

func motoS3(endpoint, region string) *s3.Client {
	return s3.NewFromConfig(awstest.Config(""), func(o *s3.Options) {
		o.Region, o.BaseEndpoint, o.UsePathStyle = region, aws.String(endpoint), true
	})
}

func motoGlue(endpoint, region string) *glue.Client {
	return glue.NewFromConfig(awstest.Config(""), func(o *glue.Options) {
		o.Region, o.BaseEndpoint = region, aws.String(endpoint)
	})
}

func motoDynamo(endpoint, region string) *dynamodb.Client {
	return dynamodb.NewFromConfig(awstest.Config(""), func(o *dynamodb.Options) {
		o.Region, o.BaseEndpoint = region, aws.String(endpoint)
	})
}

func awsErrorCode(err error) string {
	if apiErr, ok := errors.AsType[smithy.APIError](err); ok {
		return apiErr.ErrorCode()
	}
	return ""
}

// liveStacks returns the stacks of region that are not deleted, by name, as
// moto lists them (DescribeStacks without a name, every page). A name with
// more than one entry is a duplicate stack.
func liveStacks(t *testing.T, endpoint, region string) map[string][]cfntypes.Stack {
	t.Helper()
	out := map[string][]cfntypes.Stack{}
	pages := cloudformation.NewDescribeStacksPaginator(motoCFN(endpoint, region), &cloudformation.DescribeStacksInput{})
	for pages.HasMorePages() {
		page, err := pages.NextPage(context.Background())
		if err != nil {
			t.Fatalf("moto DescribeStacks in %s: %v", region, err)
		}
		for _, s := range page.Stacks {
			if s.StackStatus != cfntypes.StackStatusDeleteComplete {
				out[aws.ToString(s.StackName)] = append(out[aws.ToString(s.StackName)], s)
			}
		}
	}
	return out
}

// stackHistory returns every stack ever created in region, deleted ones
// included (ListStacks), by name: a name with two entries was created
// twice.
func stackHistory(t *testing.T, endpoint, region string) map[string][]cfntypes.StackSummary {
	t.Helper()
	out := map[string][]cfntypes.StackSummary{}
	pages := cloudformation.NewListStacksPaginator(motoCFN(endpoint, region), &cloudformation.ListStacksInput{})
	for pages.HasMorePages() {
		page, err := pages.NextPage(context.Background())
		if err != nil {
			t.Fatalf("moto ListStacks in %s: %v", region, err)
		}
		for _, s := range page.StackSummaries {
			out[aws.ToString(s.StackName)] = append(out[aws.ToString(s.StackName)], s)
		}
	}
	return out
}

// stackOutput returns a stack's output value by its CloudFormation key.
func stackOutput(s cfntypes.Stack, key string) string {
	for _, o := range s.Outputs {
		if aws.ToString(o.OutputKey) == key {
			return aws.ToString(o.OutputValue)
		}
	}
	return ""
}

// --- the server ---

// tailBuffer keeps the last 256 KiB written to it: the server's log, shown
// when a test fails.
type tailBuffer struct {
	mu sync.Mutex
	b  []byte
}

const tailBufferSize = 256 << 10

func (w *tailBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b = append(w.b, p...)
	if len(w.b) > 2*tailBufferSize {
		w.b = append([]byte(nil), w.b[len(w.b)-tailBufferSize:]...)
	}
	return len(p), nil
}

func (w *tailBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.b[max(0, len(w.b)-tailBufferSize):])
}

// adminToken creates the signing key at keyFile (if absent) and returns an
// ISV admin token that every server using that key accepts.
func adminToken(t *testing.T, keyFile string) string {
	t.Helper()
	tok, err := runToken(t, "--admin", "--data-dir", filepath.Dir(keyFile), "--signing-key-file", keyFile)
	if err != nil {
		t.Fatalf("admin token: %v", err)
	}
	return tok
}

// testKEK is the key-encryption key the replicas of a test share.
var testKEK = sealed.GenerateKey()

// awsVars is the environment of a server in AWS mode on the Postgres
// database dbURL, sending every AWS call to endpoint.
func awsVars(t *testing.T, endpoint, dbURL, keyFile string) map[string]string {
	return map[string]string{
		"CAIRN_ADDR":             "127.0.0.1:0",
		"CAIRN_DATA_DIR":         t.TempDir(),
		"CAIRN_DATABASE_URL":     dbURL,
		"CAIRN_SIGNING_KEY_FILE": keyFile,
		// Replicas open the database's signing key with one shared key.
		"CAIRN_KEY_ENCRYPTION_KEY":  testKEK,
		"CAIRN_CLOUD":               "aws",
		"CAIRN_AWS_ENDPOINT_URL":    endpoint,
		"CAIRN_STACK_POLL_INTERVAL": awsStackPoll,
		"CAIRN_JOB_POLL_INTERVAL":   awsJobPoll,
		"CAIRN_LOG_LEVEL":           "warn",
		// The emulator has no rate limits; polls every 100 ms in several
		// Regions would wait on AWS's.
		"CAIRN_CFN_CALL_RATE": "200",
	}
}

// startAWSServer runs serve in AWS mode until the test ends and returns its
// URL. Its log (warnings and errors) is printed if the test fails.
func startAWSServer(t *testing.T, name string, vars map[string]string) string {
	t.Helper()
	cfg, err := parseConfig("server", cmdServe, nil, env(vars), io.Discard, io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	logs := &tailBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, io.Discard, logs, hooks{ready: ready}) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server %s: shutdown: %v", name, err)
			}
		case <-time.After(45 * time.Second):
			t.Errorf("server %s did not shut down in 45s", name)
		}
		if t.Failed() {
			t.Logf("server %s log (tail):\n%s", name, logs.String())
		}
	})
	select {
	case addr := <-ready:
		return "http://" + addr
	case err := <-done:
		t.Fatalf("server %s stopped before serving: %v\n%s", name, err, logs.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("server %s not serving after 60s", name)
	}
	return ""
}

// --- the API ---

var apiClient = &http.Client{Timeout: 30 * time.Second}

// apiDo calls the API and decodes a JSON object answer. It is safe to call
// from any goroutine (it reports errors instead of failing the test).
func apiDo(method, url, token, body string) (int, map[string]any, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := apiClient.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return res.StatusCode, nil, fmt.Errorf("%s %s: read answer: %w", method, url, err)
	}
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			return res.StatusCode, nil, fmt.Errorf("%s %s: %d answer is not a JSON object: %q", method, url, res.StatusCode, raw)
		}
	}
	return res.StatusCode, out, nil
}

// mustAPI calls the API and fails the test unless the answer has status
// want.
func mustAPI(t *testing.T, method, url, token, body string, want int) map[string]any {
	t.Helper()
	status, out, err := apiDo(method, url, token, body)
	if err != nil {
		t.Fatal(err)
	}
	if status != want {
		t.Fatalf("%s %s: %d %v, want %d", method, url, status, out, want)
	}
	return out
}

// awsOnboardBody is a POST /v1/tenants body with a fresh slug.
func awsOnboardBody(tier string, regions ...string) string {
	slug := "aws-" + tier[:3] + "-" + awsRandom(12)
	b, _ := json.Marshal(map[string]any{
		"name": "AWS test " + slug, "slug": slug, "tier": tier, "home_region": regions[0], "regions": regions,
	})
	return string(b)
}

// awsOnboard creates a tenant and returns its ID.
func awsOnboard(t *testing.T, url, admin, tier string, regions ...string) string {
	t.Helper()
	tn := mustAPI(t, "POST", url+"/v1/tenants", admin, awsOnboardBody(tier, regions...), http.StatusAccepted)
	id, _ := tn["id"].(string)
	if id == "" {
		t.Fatalf("onboarding answer without an ID: %v", tn)
	}
	return id
}

// jstr reads a string field of a decoded JSON object ("" if absent).
func jstr(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}

// jnum reads a number field of a decoded JSON object.
func jnum(m map[string]any, key string) int {
	f, _ := m[key].(float64)
	return int(f)
}

func outputsOf(stack map[string]any) map[string]string {
	out := map[string]string{}
	m, _ := stack["outputs"].(map[string]any)
	for k, v := range m {
		out[k], _ = v.(string)
	}
	return out
}

// listItems returns the items of a list answer.
func listItems(list map[string]any) []map[string]any {
	raw, _ := list["items"].([]any)
	out := make([]map[string]any, 0, len(raw))
	for _, it := range raw {
		if m, ok := it.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// tenantStacks returns GET /v1/tenants/{id}/stacks by Region.
func tenantStacks(t *testing.T, url, admin, id string) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, s := range listItems(mustAPI(t, "GET", url+"/v1/tenants/"+id+"/stacks", admin, "", http.StatusOK)) {
		out[jstr(s, "region")] = s
	}
	return out
}

// poolsByRegion returns GET /v1/pools by Region.
func poolsByRegion(t *testing.T, url, admin string) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, p := range listItems(mustAPI(t, "GET", url+"/v1/pools", admin, "", http.StatusOK)) {
		out[jstr(p, "region")] = p
	}
	return out
}

// describeTenant renders a tenant and its stacks for a failure message.
func describeTenant(url, admin, id string) string {
	var b strings.Builder
	_, tn, err := apiDo("GET", url+"/v1/tenants/"+id, admin, "")
	if err != nil {
		return fmt.Sprintf("  %s: %v\n", id, err)
	}
	fmt.Fprintf(&b, "  %s (%s): %s %q\n", id, jstr(tn, "tier"), jstr(tn, "status"), jstr(tn, "status_reason"))
	_, list, err := apiDo("GET", url+"/v1/tenants/"+id+"/stacks", admin, "")
	if err != nil {
		fmt.Fprintf(&b, "    stacks: %v\n", err)
		return b.String()
	}
	for _, s := range listItems(list) {
		fmt.Fprintf(&b, "    %s %s: %s (stack %s, attempt %d) %s\n", jstr(s, "region"), jstr(s, "stack_name"),
			jstr(s, "status"), jstr(s, "stack_status"), jnum(s, "attempt"), jstr(s, "last_error"))
	}
	return b.String()
}

// awaitTenants polls the tenants until every one is in status want and
// returns them by ID. A tenant that fails while want is not "failed" fails
// the test at once, with its reason and stacks; so does the deadline, with
// where each tenant still is.
func awaitTenants(t *testing.T, url, admin string, ids []string, want string, timeout time.Duration) map[string]map[string]any {
	t.Helper()
	got := map[string]map[string]any{}
	pending := slices.Clone(ids)
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		var still []string
		for _, id := range pending {
			status, tn, err := apiDo("GET", url+"/v1/tenants/"+id, admin, "")
			if err != nil || status != http.StatusOK {
				t.Fatalf("GET tenant %s: %d %v %v", id, status, tn, err)
			}
			switch s := jstr(tn, "status"); {
			case s == want:
				got[id] = tn
			case s == "failed" && want != "failed":
				t.Fatalf("tenant %s failed while waiting for %s: %q\n%s", id, want, jstr(tn, "status_reason"), describeTenant(url, admin, id))
			default:
				still = append(still, id)
			}
		}
		pending = still
		if len(pending) == 0 {
			return got
		}
		select {
		case <-deadline.C:
			var b strings.Builder
			for _, id := range pending[:min(len(pending), 10)] {
				b.WriteString(describeTenant(url, admin, id))
			}
			t.Fatalf("after %s, %d of %d tenants are not %s; the first of them:\n%s", timeout, len(pending), len(ids), want, b.String())
		case <-tick.C:
		}
	}
}

// --- the fault proxy and what it sees ---

// faultEndpoint is an awsfault proxy in front of moto, with a createLedger
// in front of the proxy. Point the server at URL.
type faultEndpoint struct {
	*awsfault.Proxy
	Ledger *createLedger
	URL    string
}

// newFaultEndpoint starts a proxy on moto for the test's lifetime.
func newFaultEndpoint(t *testing.T, moto string) *faultEndpoint {
	t.Helper()
	proxy, err := awsfault.New(moto)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	ledger := &createLedger{next: proxy, requests: map[string]int{}, created: map[string][]string{}, executes: map[string]int{}, gate: &createGate{open: true, changed: make(chan struct{})}}
	proxy.Rewrite("cloudformation:CreateStack", ledger.recordCreated)
	proxy.Rewrite("cloudformation:CreateStack", ledger.gate.holdAnswer)
	srv := httptest.NewServer(ledger)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { ledger.gate.Open() }) // first: nothing may wait on it when the servers stop
	return &faultEndpoint{Proxy: proxy, Ledger: ledger, URL: srv.URL}
}

// createLedger counts, per Region and stack name, the CreateStack requests
// that reach the proxy and the stacks that moto created (the CreateStack
// answers that carry a stack ID), which the proxy's per-operation counts
// cannot tell apart. Keys are "region/name". Its gate can hold CreateStack
// requests and answers back.
type createLedger struct {
	next http.Handler
	gate *createGate

	mu       sync.Mutex
	requests map[string]int
	created  map[string][]string // stack IDs
	executes map[string]int      // ExecuteChangeSet requests
}

// stackIDInAnswer finds the stack ID of a CreateStack answer:
// arn:aws:cloudformation:REGION:ACCOUNT:stack/NAME/UUID.
var stackIDInAnswer = regexp.MustCompile(`<StackId>\s*(arn:aws:cloudformation:([a-z0-9-]+):[0-9]+:stack/([^/<]+)/[^<]*?)\s*</StackId>`)

func (l *createLedger) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		body, err := io.ReadAll(r.Body)
		_ = r.Body.Close()
		if err != nil {
			http.Error(w, "ledger: read body: "+err.Error(), http.StatusBadGateway)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if form, err := url.ParseQuery(string(body)); err == nil && form.Get("Action") == "CreateStack" {
			l.mu.Lock()
			l.requests[signingRegion(r)+"/"+form.Get("StackName")]++
			l.mu.Unlock()
			l.gate.holdRequest()
		} else if err == nil && form.Get("Action") == "ExecuteChangeSet" {
			l.mu.Lock()
			l.executes[signingRegion(r)+"/"+form.Get("StackName")]++
			l.mu.Unlock()
		}
	}
	l.next.ServeHTTP(w, r)
}

func (l *createLedger) recordCreated(body []byte) []byte {
	if m := stackIDInAnswer.FindSubmatch(body); m != nil {
		key := string(m[2]) + "/" + string(m[3])
		l.mu.Lock()
		l.created[key] = append(l.created[key], string(m[1]))
		l.mu.Unlock()
	}
	return body
}

// Requests returns how many CreateStack requests for the stack reached
// the proxy.
func (l *createLedger) Requests(region, name string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.requests[region+"/"+name]
}

// Executes returns how many ExecuteChangeSet requests for the stack
// reached the proxy.
func (l *createLedger) Executes(region, name string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.executes[region+"/"+name]
}

// Created returns the IDs of the stacks that moto created under the name,
// as its CreateStack answers said.
func (l *createLedger) Created(region, name string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.created[region+"/"+name])
}

// signingRegion is the Region of a request's SigV4 credential scope.
func signingRegion(r *http.Request) string {
	_, rest, _ := strings.Cut(r.Header.Get("Authorization"), "Credential=")
	scope, _, _ := strings.Cut(rest, ",")
	if parts := strings.Split(scope, "/"); len(parts) == 5 {
		return parts[2]
	}
	return ""
}

// createGate holds CreateStack calls back. A test learns a dedicated
// stack's name only from the onboarding answer, and the server creates and
// polls the stack right after; with the gate closed before onboarding, no
// CreateStack reaches moto until the test has put its rules on the stack.
// Open can also keep the answers for some stacks back once moto has acted
// on them, so that the server's call is stuck in flight.
type createGate struct {
	mu      sync.Mutex
	open    bool
	keep    map[string]bool // stack names whose answers are held while open
	changed chan struct{}   // closed on every change
}

// closeCreates closes the gate of f: CreateStack requests wait at it until
// Open.
func closeCreates(f *faultEndpoint) *createGate {
	g := f.Ledger.gate
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = false
	return g
}

// await blocks until pass reports true, re-checking on every change.
func (g *createGate) await(pass func() bool) {
	for {
		g.mu.Lock()
		if pass() {
			g.mu.Unlock()
			return
		}
		ch := g.changed
		g.mu.Unlock()
		<-ch
	}
}

func (g *createGate) holdRequest() { g.await(func() bool { return g.open }) }

func (g *createGate) holdAnswer(body []byte) []byte {
	name := ""
	if m := stackIDInAnswer.FindSubmatch(body); m != nil {
		name = string(m[3])
	}
	g.await(func() bool { return g.open && !g.keep[name] })
	return body
}

// Open lets CreateStack requests through, and their answers, except the
// answers for stacks named in keep, which stay held until Open is called
// again without them.
func (g *createGate) Open(keep ...string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = true
	g.keep = map[string]bool{}
	for _, k := range keep {
		g.keep[k] = true
	}
	close(g.changed)
	g.changed = make(chan struct{})
}

// describeStacksAnswer is the part of a DescribeStacks answer the tests read.
type describeStacksAnswer struct {
	Stacks []struct {
		StackName   string `xml:"StackName"`
		StackStatus string `xml:"StackStatus"`
	} `xml:"DescribeStacksResult>Stacks>member"`
}

// statusLog records the statuses a stack had in the DescribeStacks answers
// the server got, in order.
type statusLog struct {
	mu       sync.Mutex
	statuses []string
}

// watchStack records what the server is told of the stack from now on,
// after the rewrites added before it.
func watchStack(f *faultEndpoint, name string) *statusLog {
	l := &statusLog{}
	f.Rewrite("cloudformation:DescribeStacks", func(body []byte) []byte {
		var a describeStacksAnswer
		if xml.Unmarshal(body, &a) == nil {
			for _, s := range a.Stacks {
				if s.StackName == name {
					l.mu.Lock()
					l.statuses = append(l.statuses, s.StackStatus)
					l.mu.Unlock()
				}
			}
		}
		return body
	})
	return l
}

func (l *statusLog) Statuses() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.statuses)
}

// dedicatedStack is the name of a dedicated tenant's stack.
func dedicatedStack(id string) string { return provisioner.DedicatedStackName(id) }

// concurrently runs fn(i) for i in [0, n) on at most par goroutines and
// returns the errors, joined in index order.
func concurrently(n, par int, fn func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, par)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = fn(i)
		}()
	}
	wg.Wait()
	return slices.DeleteFunc(errs, func(err error) bool { return err == nil })
}
