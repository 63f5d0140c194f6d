package timeline

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/serverless-cdp/cdp/internal/change"
	"github.com/serverless-cdp/cdp/internal/store"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// Reader reads profiles' timelines from the shared table.
type Reader struct {
	db    store.Client
	table string
	now   func() time.Time
}

// NewReader returns a reader of the timelines in the named table.
func NewReader(db store.Client, table string) *Reader {
	return &Reader{db: db, table: table, now: time.Now}
}

// Events calls fn with the retained timeline events of a profile and of every profile merged
// into it (any order), each with its stamp. An event stored before stamps existed has Seq 0.
// An unknown profile has no events. It stops at the first error fn returns and returns it.
func (r *Reader) Events(ctx context.Context, profileID string, fn func(m *tracking.Message, s change.Stamp) error) error {
	ids, err := r.partitions(ctx, profileID)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := r.profileEvents(ctx, id, fn); err != nil {
			return err
		}
	}
	return nil
}

// partitions is the profile and the profiles merged into it.
func (r *Reader) partitions(ctx context.Context, profileID string) ([]string, error) {
	out, err := r.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(r.table), Key: store.Key(PrefixProfile+profileID, SKProfile)})
	if err != nil {
		return nil, fmt.Errorf("timeline: read profile: %w", err)
	}
	ids := []string{profileID}
	if out.Item == nil {
		return ids, nil
	}
	doc, err := ProfileDocument(out.Item)
	if err != nil {
		return nil, fmt.Errorf("timeline: %w", err)
	}
	var p struct {
		MergedFrom []string `json:"mergedFrom"`
	}
	if err := json.Unmarshal(doc, &p); err != nil {
		return nil, fmt.Errorf("timeline: decode profile: %w", err)
	}
	return append(ids, p.MergedFrom...), nil
}

// profileEvents calls fn with the unexpired events committed to one profile.
func (r *Reader) profileEvents(ctx context.Context, profileID string, fn func(m *tracking.Message, s change.Stamp) error) error {
	now := r.now().Unix()
	return r.queryProfile(ctx, profileID, func(it map[string]types.AttributeValue) error {
		if ttl := store.GetN(it, store.TTL); ttl != 0 && ttl < now {
			return nil
		}
		ev, err := Decode(it)
		if err != nil {
			return fmt.Errorf("timeline: %w", err)
		}
		return fn(&ev.Message, change.Stamp{Profile: ev.Profile, Seq: ev.Seq})
	})
}

// queryProfile calls fn with every item of the gsi1 partition of one profile's events (an
// eventually consistent index), stopping at the first error fn returns.
func (r *Reader) queryProfile(ctx context.Context, profileID string, fn func(map[string]types.AttributeValue) error) error {
	kc := expression.Key(store.GSI1PK).Equal(expression.Value(PrefixProfile + profileID)).
		And(expression.Key(store.GSI1SK).BeginsWith(PrefixEvt))
	e, err := expression.NewBuilder().WithKeyCondition(kc).Build()
	if err != nil {
		return fmt.Errorf("timeline: query condition: %w", err)
	}
	pages := dynamodb.NewQueryPaginator(r.db, &dynamodb.QueryInput{
		TableName: aws.String(r.table), IndexName: aws.String(store.GSI1),
		KeyConditionExpression: e.KeyCondition(), ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values(),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("timeline: query profile %s: %w", profileID, err)
		}
		for _, it := range page.Items {
			if err := fn(it); err != nil {
				return err
			}
		}
	}
	return nil
}
