// Package dynamotest gives tests a DynamoDB profile table on the AWS
// emulator that make test starts (see awstest).
package dynamotest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/cairn-cdp/cairn/internal/awsclient"
	"github.com/cairn-cdp/cairn/internal/awsclient/awstest"
	"github.com/cairn-cdp/cairn/internal/profiles/dynamostore"
)

// Table creates a profile table shaped like the templates' (pk/sk, gsi1,
// TTL on expires_at) and deletes it when the test ends.
func Table(t testing.TB, endpoint, region string) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "cairn-test-profiles-" + hex.EncodeToString(b[:])
	cfg := awstest.Config(region)
	c := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(endpoint) })
	s := func(n string) types.AttributeDefinition {
		return types.AttributeDefinition{AttributeName: aws.String(n), AttributeType: types.ScalarAttributeTypeS}
	}
	key := func(h, r string) []types.KeySchemaElement {
		return []types.KeySchemaElement{{AttributeName: aws.String(h), KeyType: types.KeyTypeHash}, {AttributeName: aws.String(r), KeyType: types.KeyTypeRange}}
	}
	ctx := context.Background()
	if _, err := c.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{s("pk"), s("sk"), s("gsi1pk"), s("gsi1sk")},
		KeySchema:            key("pk", "sk"),
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
			IndexName: aws.String("gsi1"), KeySchema: key("gsi1pk", "gsi1sk"),
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
		}},
	}); err != nil {
		t.Fatal(err)
	}
	if err := dynamodb.NewTableExistsWaiter(c).Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = c.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	})
	return name
}

// Store returns a DynamoDB profile store whose every tenant lives in one
// fresh table.
func Store(t testing.TB) *dynamostore.Store {
	t.Helper()
	return CountedStore(t, nil)
}

// CountedStore is Store with every SDK call counted by calls (if not nil).
func CountedStore(t testing.TB, calls *awsclient.CallCounter) *dynamostore.Store {
	t.Helper()
	endpoint := awstest.Endpoint(t)
	const region = "us-east-1"
	table := Table(t, endpoint, region)
	cfg := awstest.Config(region)
	st, err := dynamostore.New(context.Background(), dynamostore.Config{
		AWS:    awsclient.Settings{AWS: &cfg, EndpointURL: endpoint, HTTPClient: &SerialTransactions{}, Calls: calls},
		Tables: func(context.Context, string) (string, string, error) { return region, table, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}
