package dynamostore

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/cairn-cdp/cairn/internal/profiles"
)

// Transact implements profiles.Store.
//
// Ops become TransactWriteItems entries:
//   - Put with IfAbsent: Put of the item with v = 1, if condAbsent;
//   - Put with IfVersion: Put of the item with v = IfVersion + 1, if
//     condVersion;
//   - Put without condition: Update that sets every attribute (removing
//     those the item lacks) and v = if_not_exists(v, 0) + 1: only an update
//     bumps the stored version atomically;
//   - Delete: Delete, with the op's condition if any;
//   - Check: ConditionCheck of the op's condition (condAbsent, condVersion
//     or condExists).
//
// A single unconditional op is an UpdateItem or DeleteItem instead. A
// transaction cancelled for a conflict with another one, or for
// throttling, is retried up to Config.MaxConflictRetries times with
// backoff, each time as a new call (new token, new expiry time).
func (s *Store) Transact(ctx context.Context, ops []profiles.Op) error {
	if err := profiles.ValidateOps(ops); err != nil {
		return err
	}
	if len(ops) == 0 {
		return nil
	}
	tenant, _ := profiles.TenantOf(profiles.OpKey(&ops[0]).PK) // validated
	t, err := s.table(ctx, tenant)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if err := s.sleep(ctx, attempt); err != nil {
				return err
			}
		}
		err := s.transactOnce(ctx, t, ops)
		if !errors.Is(err, errRetryable) {
			return err
		}
		if attempt >= s.maxConflictRetries {
			return fmt.Errorf("dynamostore: transact: gave up after %d attempts: %w", attempt+1, err)
		}
	}
}

// errRetryable marks a transaction cancelled for a reason that may pass on
// a new attempt.
var errRetryable = errors.New("transaction conflict or throttling")

func (s *Store) transactOnce(ctx context.Context, t table, ops []profiles.Op) error {
	now := s.now().Unix()
	if len(ops) == 1 && !ops[0].Conditional() {
		return s.writeOne(ctx, t, &ops[0])
	}
	items := make([]types.TransactWriteItem, len(ops))
	for i := range ops {
		items[i] = transactItem(t.name, &ops[i], now)
	}
	_, err := t.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	if err == nil {
		return nil
	}
	if tce, ok := errors.AsType[*types.TransactionCanceledException](err); ok {
		retryable := false
		for _, r := range tce.CancellationReasons {
			switch aws.ToString(r.Code) {
			case "ConditionalCheckFailed":
				return profiles.ErrConditionFailed
			case "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded":
				retryable = true
			}
		}
		if retryable {
			return fmt.Errorf("dynamostore: transact: %w: %w", errRetryable, err)
		}
	}
	if _, ok := errors.AsType[*types.TransactionInProgressException](err); ok {
		return fmt.Errorf("dynamostore: transact: %w: %w", errRetryable, err)
	}
	return fmt.Errorf("dynamostore: transact: %w", err)
}

// condition returns an op's condition expression and its values, or "".
func condition(op *profiles.Op, now int64) (string, map[string]types.AttributeValue) {
	switch {
	case op.IfAbsent:
		return condAbsent, map[string]types.AttributeValue{":now": attrN(now)}
	case op.IfVersion != 0:
		return condVersion, map[string]types.AttributeValue{":now": attrN(now), ":ver": attrN(op.IfVersion)}
	case op.IfExists:
		return condExists, map[string]types.AttributeValue{":now": attrN(now)}
	}
	return "", nil
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}

func transactItem(tableName string, op *profiles.Op, now int64) types.TransactWriteItem {
	cond, values := condition(op, now)
	k := profiles.OpKey(op)
	switch {
	case op.Check:
		return types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
			TableName: aws.String(tableName), Key: keyAttrs(k),
			ConditionExpression: aws.String(cond), ExpressionAttributeValues: values,
		}}
	case op.Delete != nil:
		return types.TransactWriteItem{Delete: &types.Delete{
			TableName: aws.String(tableName), Key: keyAttrs(k),
			ConditionExpression: optional(cond), ExpressionAttributeValues: values,
		}}
	case op.IfAbsent:
		return types.TransactWriteItem{Put: &types.Put{
			TableName: aws.String(tableName), Item: itemAttrs(op.Put, 1),
			ConditionExpression: aws.String(cond), ExpressionAttributeValues: values,
		}}
	case op.IfVersion != 0:
		return types.TransactWriteItem{Put: &types.Put{
			TableName: aws.String(tableName), Item: itemAttrs(op.Put, op.IfVersion+1),
			ConditionExpression: aws.String(cond), ExpressionAttributeValues: values,
		}}
	default:
		expr, values := updateExpression(op.Put)
		return types.TransactWriteItem{Update: &types.Update{
			TableName: aws.String(tableName), Key: keyAttrs(k),
			UpdateExpression: aws.String(expr), ExpressionAttributeValues: values,
		}}
	}
}

// updateExpression returns the update that replaces the stored item with
// it and bumps its version: an unconditional put.
func updateExpression(it *profiles.Item) (string, map[string]types.AttributeValue) {
	set := "SET v = if_not_exists(v, :zero) + :one"
	remove := ""
	values := map[string]types.AttributeValue{":zero": attrN(0), ":one": attrN(1)}
	if len(it.Data) > 0 {
		set += ", d = :d"
		values[":d"] = &types.AttributeValueMemberB{Value: it.Data}
	} else {
		remove += ", d"
	}
	if it.GSI1PK != "" {
		set += ", gsi1pk = :g1pk, gsi1sk = :g1sk"
		values[":g1pk"], values[":g1sk"] = attrS(it.GSI1PK), attrS(it.GSI1SK)
	} else {
		remove += ", gsi1pk, gsi1sk"
	}
	if it.ExpiresAt != 0 {
		set += ", expires_at = :exp"
		values[":exp"] = attrN(it.ExpiresAt)
	} else {
		remove += ", expires_at"
	}
	if remove != "" {
		set += " REMOVE " + remove[2:]
	}
	return set, values
}

// writeOne applies a single unconditional op with one non-transactional
// call. Such a write is idempotent but for the version bump, which a
// caller without a condition does not rely on.
func (s *Store) writeOne(ctx context.Context, t table, op *profiles.Op) error {
	var err error
	if op.Put != nil {
		expr, values := updateExpression(op.Put)
		_, err = t.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String(t.name), Key: keyAttrs(profiles.OpKey(op)),
			UpdateExpression: aws.String(expr), ExpressionAttributeValues: values,
		})
	} else {
		_, err = t.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(t.name), Key: keyAttrs(*op.Delete)})
	}
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*types.TransactionConflictException](err); ok {
		// The item is part of a transaction in progress.
		return fmt.Errorf("dynamostore: write: %w: %w", errRetryable, err)
	}
	return fmt.Errorf("dynamostore: write: %w", err)
}
