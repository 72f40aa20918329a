package lakeformation_test

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/glue"
	lf "github.com/aws/aws-sdk-go-v2/service/lakeformation"

	"github.com/cairn-cdp/cairn/internal/awsclient"
	"github.com/cairn-cdp/cairn/internal/awsclient/awstest"
	"github.com/cairn-cdp/cairn/internal/grants/lakeformation"
)

// Regions the tests use.
const (
	regionA = "us-east-1"
	regionB = "eu-west-1"
)

func testAWSConfig() aws.Config {
	// Deliberately not a Region the tests use: every method must take the
	// Region it is given, never this one.
	return awstest.Config("ap-southeast-2")
}

func testConfig(endpoint string, calls *awsclient.CallCounter) lakeformation.Config {
	cfg := testAWSConfig()
	return lakeformation.Config{AWS: awsclient.Settings{
		AWS:         &cfg,
		EndpointURL: endpoint,
		MaxAttempts: 3,
		MaxBackoff:  5 * time.Millisecond,
		Calls:       calls,
	}}
}

// newCatalog returns a Catalog on endpoint with a CallCounter and short
// backoffs.
func newCatalog(t *testing.T, endpoint string) (*lakeformation.Catalog, *awsclient.CallCounter) {
	t.Helper()
	calls := &awsclient.CallCounter{}
	c, err := lakeformation.NewCatalog(t.Context(), testConfig(endpoint, calls))
	if err != nil {
		t.Fatal(err)
	}
	return c, calls
}

func newSTS(t *testing.T, endpoint string) (*lakeformation.STS, *awsclient.CallCounter) {
	t.Helper()
	calls := &awsclient.CallCounter{}
	s, err := lakeformation.NewSTS(t.Context(), testConfig(endpoint, calls))
	if err != nil {
		t.Fatal(err)
	}
	return s, calls
}

// Raw SDK clients, to set up and check through the AWS API.

func glueClient(endpoint, region string) *glue.Client {
	return glue.NewFromConfig(testAWSConfig(), func(o *glue.Options) {
		o.Region, o.BaseEndpoint = region, aws.String(endpoint)
	})
}

func lfClient(endpoint, region string) *lf.Client {
	return lf.NewFromConfig(testAWSConfig(), func(o *lf.Options) {
		o.Region, o.BaseEndpoint = region, aws.String(endpoint)
	})
}

func randomLower(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// uniqueName returns a Glue database name no other test uses: moto is shared
// by every package that runs in parallel.
func uniqueName(kind string) string {
	return "cairn_lftest_" + kind + "_" + randomLower(5)
}

// rolePrincipal returns an IAM role ARN in moto's default account.
func rolePrincipal(name string) string {
	return "arn:aws:iam::123456789012:role/lftest-" + name + "-" + randomLower(4)
}
