package awsclient_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/middleware"
	"go.opentelemetry.io/contrib/instrumentation/github.com/aws/aws-sdk-go-v2/otelaws"

	"github.com/cairn-cdp/cairn/internal/awsclient"
)

// testAWSConfig is a static configuration, so that Load never reads the
// machine's.
func testAWSConfig() aws.Config {
	return aws.Config{
		Region:      "us-east-1",
		Credentials: aws.AnonymousCredentials{},
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	awsCfg := testAWSConfig()
	calls := &awsclient.CallCounter{}
	tests := []struct {
		name         string
		settings     awsclient.Settings
		wantErr      string
		wantAttempts int
		wantBackoff  time.Duration
	}{
		{name: "defaults", settings: awsclient.Settings{AWS: &awsCfg},
			wantAttempts: awsclient.DefaultMaxAttempts, wantBackoff: awsclient.DefaultMaxBackoff},
		{name: "explicit", settings: awsclient.Settings{AWS: &awsCfg, MaxAttempts: 3, MaxBackoff: time.Second},
			wantAttempts: 3, wantBackoff: time.Second},
		{name: "negative attempts", settings: awsclient.Settings{AWS: &awsCfg, MaxAttempts: -1},
			wantErr: "MaxAttempts must not be negative, got -1"},
		{name: "negative backoff", settings: awsclient.Settings{AWS: &awsCfg, MaxBackoff: -time.Second},
			wantErr: "MaxBackoff must not be negative, got -1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.settings.Calls = calls
			b, err := tt.settings.Load(t.Context())
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Load: %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if b.MaxAttempts != tt.wantAttempts || b.MaxBackoff != tt.wantBackoff {
				t.Errorf("MaxAttempts, MaxBackoff = %d, %s; want %d, %s", b.MaxAttempts, b.MaxBackoff, tt.wantAttempts, tt.wantBackoff)
			}
			if got := b.Retryer().MaxAttempts(); got != tt.wantAttempts {
				t.Errorf("Retryer().MaxAttempts() = %d, want %d", got, tt.wantAttempts)
			}
			// The tracing middleware, then the call counter's.
			if want := len((&awsclient.Base{}).APIOptions()) + 1; b.Calls != calls || len(b.APIOptions()) != want {
				t.Errorf("Calls %p, %d API options; want %p and %d", b.Calls, len(b.APIOptions()), calls, want)
			}
		})
	}
}

func TestLoadCopiesAWS(t *testing.T) {
	t.Parallel()
	awsCfg := testAWSConfig()
	b, err := awsclient.Settings{AWS: &awsCfg}.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	awsCfg.Region = "eu-west-1"
	if b.AWS.Region != "us-east-1" {
		t.Errorf("Base.AWS follows a change to Settings.AWS: Region %q", b.AWS.Region)
	}
	// Without Calls, the tracing middleware only (OpenTelemetry's, on the
	// global provider).
	var tracing []func(*middleware.Stack) error
	otelaws.AppendMiddlewares(&tracing)
	if n := len(b.APIOptions()); n != len(tracing) || n == 0 {
		t.Errorf("APIOptions without Calls: %d, want the %d of the tracing middleware", n, len(tracing))
	}
}

func TestBaseEndpoint(t *testing.T) {
	t.Parallel()
	resolved := aws.String("http://resolved")
	for _, tt := range []struct {
		endpointURL string
		resolved    *string
		want        string
	}{
		{"", nil, ""},
		{"", resolved, "http://resolved"},
		{"http://explicit", resolved, "http://explicit"},
		{"http://explicit", nil, "http://explicit"},
	} {
		b := &awsclient.Base{EndpointURL: tt.endpointURL}
		if got := aws.ToString(b.BaseEndpoint(tt.resolved)); got != tt.want {
			t.Errorf("EndpointURL %q, resolved %v: got %q, want %q", tt.endpointURL, aws.ToString(tt.resolved), got, tt.want)
		}
	}
}

func TestRegionalOneClientPerRegion(t *testing.T) {
	t.Parallel()
	type client struct{ region string }
	var made sync.Map // region -> *atomic.Int64
	r := awsclient.NewRegional(func(region string) *client {
		n, _ := made.LoadOrStore(region, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		return &client{region: region}
	})
	regions := []string{"us-east-1", "eu-west-1", "ap-southeast-2"}
	const perRegion = 16
	got := make([]*client, len(regions)*perRegion)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() {
			c, err := r.Client(regions[i%len(regions)])
			if err != nil {
				t.Error(err)
			}
			got[i] = c
		})
	}
	wg.Wait()
	for i, c := range got {
		region := regions[i%len(regions)]
		if c == nil || c.region != region || c != got[i%len(regions)] {
			t.Errorf("call %d: client %+v, want the one client of %s", i, c, region)
		}
	}
	for _, region := range regions {
		if n, _ := made.Load(region); n == nil || n.(*atomic.Int64).Load() != 1 {
			t.Errorf("%s: %v clients made, want 1", region, n)
		}
	}
	if _, err := r.Client(""); err != awsclient.ErrNoRegion {
		t.Errorf("Client(\"\"): %v, want ErrNoRegion", err)
	}
}

// TestCallCounter makes one STS call against a server that answers 500
// twice, then succeeds: one call, three attempts.
func TestCallCounter(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) <= 2 {
			http.Error(w, "try again", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		_, _ = w.Write([]byte(`<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
<GetCallerIdentityResult><Account>123456789012</Account><Arn>arn:aws:iam::123456789012:user/t</Arn><UserId>t</UserId></GetCallerIdentityResult>
<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></GetCallerIdentityResponse>`))
	}))
	t.Cleanup(srv.Close)

	awsCfg := testAWSConfig()
	awsCfg.Credentials = aws.CredentialsProviderFunc(func(ctx context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "testing", SecretAccessKey: "testing"}, nil
	})
	calls := &awsclient.CallCounter{}
	b, err := awsclient.Settings{
		AWS: &awsCfg, EndpointURL: srv.URL, MaxAttempts: 3, MaxBackoff: time.Millisecond, Calls: calls,
	}.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	client := sts.NewFromConfig(b.AWS, func(o *sts.Options) {
		o.BaseEndpoint = b.BaseEndpoint(o.BaseEndpoint)
	})
	if _, err := client.GetCallerIdentity(t.Context(), &sts.GetCallerIdentityInput{}); err != nil {
		t.Fatal(err)
	}
	const op = "STS.GetCallerIdentity"
	if got := calls.Total(op); got != 1 {
		t.Errorf("Total(%s) = %d, want 1", op, got)
	}
	if got := calls.Attempts(op); got != 3 {
		t.Errorf("Attempts(%s) = %d, want 3", op, got)
	}
	if got := calls.Snapshot(); len(got) != 1 || got[op] != 1 {
		t.Errorf("Snapshot() = %v", got)
	}
	if got := calls.AttemptsSnapshot(); len(got) != 1 || got[op] != 3 {
		t.Errorf("AttemptsSnapshot() = %v", got)
	}
	calls.Reset()
	if calls.Total(op) != 0 || calls.Attempts(op) != 0 {
		t.Error("counts survive Reset")
	}
}

// TestCallCounterMiddlewareIDs checks the IDs the counter's middleware
// keeps in a stack.
func TestCallCounterMiddlewareIDs(t *testing.T) {
	t.Parallel()
	calls := &awsclient.CallCounter{}
	stack := middleware.NewStack("test", func() any { return nil })
	if err := calls.AddToStack(stack); err != nil {
		t.Fatal(err)
	}
	if _, ok := stack.Initialize.Get("cairn.CallCounter"); !ok {
		t.Error("no cairn.CallCounter in the Initialize step")
	}
	if _, ok := stack.Finalize.Get("cairn.AttemptCounter"); !ok {
		t.Error("no cairn.AttemptCounter in the Finalize step")
	}
}
