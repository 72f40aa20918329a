package dynamostore_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cairn-cdp/cairn/internal/awsclient/awstest"
	"github.com/cairn-cdp/cairn/internal/profiles"
	"github.com/cairn-cdp/cairn/internal/profiles/dynamostore"
	"github.com/cairn-cdp/cairn/internal/tenants"
)

// lostAnswers sends every TransactWriteItems call twice, as the SDK does
// when the answer to the first is lost (a reset connection), and returns
// the answer to the second.
type lostAnswers struct{ resent atomic.Int64 }

func (l *lostAnswers) Do(r *http.Request) (*http.Response, error) {
	if !strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".TransactWriteItems") {
		return http.DefaultClient.Do(r)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	first := r.Clone(r.Context())
	first.Body = io.NopCloser(bytes.NewReader(body))
	resp, err := http.DefaultClient.Do(first)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	l.resent.Add(1)
	again := r.Clone(r.Context())
	again.Body = io.NopCloser(bytes.NewReader(body))
	return http.DefaultClient.Do(again)
}

// TestRetriedTransactionAppliesOnce checks what every conditional write
// relies on: a transaction sent again with its ClientRequestToken (the
// SDK's retry after a lost answer) succeeds without being applied twice,
// as DynamoDB keeps the token's outcome for ten minutes. The test
// environment's emulator does so too (scripts/moto_server.py).
func TestRetriedTransactionAppliesOnce(t *testing.T) {
	endpoint := awstest.Endpoint(t)
	t.Parallel()
	lost := &lostAnswers{}
	s, _ := newStore(t, endpoint, oneTable(regionA, createTable(t, endpoint, regionA)), func(c *dynamostore.Config) {
		c.AWS.HTTPClient = lost
	})
	ctx := t.Context()
	k := profiles.Key{PK: pk(tenants.NewID(), "M#m"), SK: "M"}
	if err := s.Transact(ctx, []profiles.Op{{Put: &profiles.Item{PK: k.PK, SK: k.SK, Data: []byte("1")}, IfAbsent: true}}); err != nil {
		t.Fatalf("create, sent twice: %v", err)
	}
	it, ok, err := s.Get(ctx, k)
	if err != nil || !ok || it.Version != 1 {
		t.Fatalf("after the create: %+v %v %v; want version 1", it, ok, err)
	}
	next := it
	next.Data = []byte("2")
	if err := s.Transact(ctx, []profiles.Op{{Put: &next, IfVersion: 1}}); err != nil {
		t.Fatalf("update at version 1, sent twice: %v", err)
	}
	if it, _, err := s.Get(ctx, k); err != nil || it.Version != 2 || string(it.Data) != "2" {
		t.Fatalf("after the update: %+v %v; want version 2", it, err)
	}
	if lost.resent.Load() != 2 {
		t.Fatalf("%d transactions sent twice, want 2", lost.resent.Load())
	}
}
