package identity

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"github.com/serverless-cdp/cdp/internal/backoff"
	"github.com/serverless-cdp/cdp/internal/store"
	"github.com/serverless-cdp/cdp/internal/timeline"
)

var _ PersonStore = (*Store)(nil)

// ProfileEvents returns every timeline item committed to the profile (gsi1 PROFILE#<id>;
// eventually consistent), expired ones not deleted yet included.
func (s *Store) ProfileEvents(ctx context.Context, profile string) ([]KeyedEvent, error) {
	var out []KeyedEvent
	err := timeline.NewReader(s.db, s.table).ProfileItems(ctx, profile, func(it timeline.Item) error {
		e := it.Event
		out = append(out, KeyedEvent{Key: ItemKey{PK: it.PK, SK: it.SK},
			Event: StoredEvent{ProfileID: e.Profile, SourceID: e.Source, Message: e.Message, Expires: e.Expires, Seq: e.Seq}})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("profile events: %w", err)
	}
	return out, nil
}

// ProfileLog returns every merge-log line of the profile, oldest first (strongly consistent).
func (s *Store) ProfileLog(ctx context.Context, profile string) ([]KeyedLog, error) {
	kc := expression.Key(store.PK).Equal(expression.Value(prefixProfile + profile)).And(expression.Key(store.SK).BeginsWith(prefixLog))
	e, err := expression.NewBuilder().WithKeyCondition(kc).Build()
	if err != nil {
		return nil, fmt.Errorf("profile log: query condition: %w", err)
	}
	pages := dynamodb.NewQueryPaginator(s.db, &dynamodb.QueryInput{
		TableName: aws.String(s.table), ConsistentRead: aws.Bool(true),
		KeyConditionExpression: e.KeyCondition(), ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values(),
	})
	var out []KeyedLog
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("profile log: query: %w", err)
		}
		for _, it := range page.Items {
			l, err := decodeLog(it)
			if err != nil {
				l = LogEntry{ProfileID: profile} // undecodable: still listed, so it is erased
			}
			out = append(out, KeyedLog{Key: ItemKey{PK: store.GetS(it, store.PK), SK: store.GetS(it, store.SK)}, Entry: l})
		}
	}
	return out, nil
}

// batchWritePolicy paces the retries of deletes DynamoDB left unprocessed (throttling).
var batchWritePolicy = backoff.Policy{Attempts: 22, Base: 20 * time.Millisecond, Max: 500 * time.Millisecond}

var errUnprocessedWrites = errors.New("batch write: requests left unprocessed")

// deleteParallel bounds the concurrent BatchWriteItem calls of one DeleteItems.
const deleteParallel = 4

// DeleteItems deletes items by key, 25 per BatchWriteItem, retrying unprocessed ones.
func (s *Store) DeleteItems(ctx context.Context, keys []ItemKey) error {
	var g errgroup.Group
	g.SetLimit(deleteParallel)
	for start := 0; start < len(keys); start += 25 {
		chunk := keys[start:min(start+25, len(keys))]
		g.Go(func() error { return s.deleteBatch(ctx, chunk) })
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("delete %d items: %w", len(keys), err)
	}
	return nil
}

func (s *Store) deleteBatch(ctx context.Context, keys []ItemKey) error {
	reqs := make([]types.WriteRequest, len(keys))
	for i, k := range keys {
		reqs[i] = types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: store.Key(k.PK, k.SK)}}
	}
	req := map[string][]types.WriteRequest{s.table: reqs}
	return backoff.Retry(ctx, batchWritePolicy, func(ctx context.Context) error {
		res, err := s.db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: req})
		if err != nil {
			if isThrottled(err) {
				return fmt.Errorf("batch write: %w", err)
			}
			return backoff.Permanent(fmt.Errorf("batch write: %w", err))
		}
		if len(res.UnprocessedItems[s.table]) > 0 {
			req = res.UnprocessedItems
			return errUnprocessedWrites
		}
		return nil
	})
}

// DeleteProfile deletes a profile item on the condition that it is at version; nil if it is
// not stored (the failed condition returns no item then).
func (s *Store) DeleteProfile(ctx context.Context, id string, version int64) error {
	e, err := expression.NewBuilder().WithCondition(expression.Name("version").Equal(expression.Value(version))).Build()
	if err != nil {
		return fmt.Errorf("delete profile: condition: %w", err)
	}
	_, err = s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: aws.String(s.table), Key: profileKey(id),
		ConditionExpression: e.Condition(), ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values(),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var cf *types.ConditionalCheckFailedException
	switch {
	case err == nil:
		return nil
	case errors.As(err, &cf) && len(cf.Item) == 0:
		return nil
	case errors.As(err, &cf):
		return fmt.Errorf("%w: profile %s is not at version %d", ErrConflict, id, version)
	}
	return fmt.Errorf("delete profile: %w", err)
}
