package dynamotest

import (
	"net/http"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// SerialTransactions is an HTTP client for a dynamostore.Config (or any
// DynamoDB client) in tests against moto: it sends a TransactWriteItems
// call only while no other call of the client is in flight, and lets all
// other calls run concurrently.
//
// moto's TransactWriteItems is not atomic under concurrent requests: it
// deep-copies each table a transaction touches and, when a condition
// fails, puts the copy back, wiping whatever other requests wrote
// meanwhile, with no lock (moto 5.2.5; boto3 clients racing conditional
// read-modify-write transactions lose updates too). Its other calls,
// conditional PutItem and UpdateItem included, are atomic. DynamoDB's
// transactions are, so tests that race transactions need this to test the
// code rather than the emulator. One SerialTransactions per table (or per
// Store) suffices.
//
// The zero value is ready to use and sends through http.DefaultClient.
type SerialTransactions struct {
	// Next sends the calls; nil means http.DefaultClient.
	Next aws.HTTPClient

	mu sync.RWMutex
}

// Do implements aws.HTTPClient. moto builds its whole answer before it
// sends it, so once the response arrives the call's effects are complete.
func (s *SerialTransactions) Do(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".TransactWriteItems") {
		s.mu.Lock()
		defer s.mu.Unlock()
	} else {
		s.mu.RLock()
		defer s.mu.RUnlock()
	}
	if s.Next != nil {
		return s.Next.Do(r)
	}
	return http.DefaultClient.Do(r)
}
