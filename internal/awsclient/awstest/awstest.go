// Package awstest gives tests the AWS API emulator that make test starts
// (moto, whose URL scripts/testenv.sh exports as CAIRN_TEST_AWS_ENDPOINT)
// and the SDK configuration to reach it with. Without the emulator a test
// skips, unless CAIRN_TEST_REQUIRE_AWS=1 (which make test sets) makes it
// fail.
package awstest

import (
	"errors"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/smithy-go"
)

// Endpoint returns the emulator's URL, or skips (or fails) the test.
func Endpoint(t testing.TB) string {
	t.Helper()
	endpoint := os.Getenv("CAIRN_TEST_AWS_ENDPOINT")
	if endpoint == "" {
		if os.Getenv("CAIRN_TEST_REQUIRE_AWS") == "1" {
			t.Fatal("CAIRN_TEST_AWS_ENDPOINT is not set and CAIRN_TEST_REQUIRE_AWS=1")
		}
		t.Skip("CAIRN_TEST_AWS_ENDPOINT is not set: no AWS emulator")
	}
	return endpoint
}

// Config is a static SDK configuration with the emulator's test
// credentials, in region ("" for none), so that nothing reads the
// machine's own.
func Config(region string) aws.Config {
	return aws.Config{Region: region, Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", "")}
}

// Made fails the test on the error of a create it sent for its set-up,
// unless the error says that what it creates exists already
// (AlreadyExistsException, or S3's BucketAlreadyOwnedByYou). A test names
// what it creates uniquely, so one that exists can only be the test's own
// create reaching the emulator twice, which a loaded machine has shown now
// and then (Glue's CreateDatabase and CreatePartition).
func Made(t testing.TB, err error) {
	t.Helper()
	var ae smithy.APIError
	if err == nil || errors.As(err, &ae) && (ae.ErrorCode() == "AlreadyExistsException" || ae.ErrorCode() == "BucketAlreadyOwnedByYou") {
		return
	}
	t.Fatal(err)
}
