package blocklist

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/serverless-cdp/cdp/internal/store"
)

// Partition keys of the list.
const (
	pkList    = "BLOCKLIST"
	pkDropped = "BLOCKLIST#DROPPED"
)

// DynamoStore is the list in the shared DynamoDB table (keys: see the package doc).
type DynamoStore struct {
	db    store.Client
	table string
	h     Hasher
	opt   Options
}

var _ Store = (*DynamoStore)(nil)

// NewStore returns the list kept in table, hashing with h.
func NewStore(db store.Client, table string, h Hasher, opt Options) *DynamoStore {
	return &DynamoStore{db: db, table: table, h: h, opt: opt.withDefaults()}
}

func (s *DynamoStore) item(e entry) map[string]types.AttributeValue {
	it := store.Key(pkList, e.key())
	it["kind"], it["hash"], it["group"] = store.S(e.kind), store.S(e.hash), store.S(e.group)
	it["createdAt"] = store.S(e.created.UTC().Format(time.RFC3339Nano))
	if e.label != "" {
		it["label"] = store.S(e.label)
	}
	if !e.expires.IsZero() {
		it["expiresAt"] = store.S(e.expires.UTC().Format(time.RFC3339Nano))
		it[store.TTL] = store.N(e.expires.Unix() + 1)
	}
	return it
}

func decodeEntry(it map[string]types.AttributeValue) entry {
	e := entry{kind: store.GetS(it, "kind"), hash: store.GetS(it, "hash"), group: store.GetS(it, "group"), label: store.GetS(it, "label")}
	e.created, _ = time.Parse(time.RFC3339Nano, store.GetS(it, "createdAt"))
	e.expires, _ = time.Parse(time.RFC3339Nano, store.GetS(it, "expiresAt"))
	return e
}

// put writes entries that do not exist yet (an entry written by an earlier attempt keeps its
// createdAt), then bumps the version (so a checker that sees the new version loads them all).
func (s *DynamoStore) put(ctx context.Context, es []entry) error {
	for _, e := range es {
		_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: s.item(e),
			ConditionExpression: aws.String("attribute_not_exists(pk)")})
		if err != nil && !store.IsConditionFailed(err) {
			return fmt.Errorf("put %s entry: %w", e.kind, err)
		}
	}
	return s.bump(ctx)
}

func (s *DynamoStore) bump(ctx context.Context) error {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       store.Key(pkList, skVersion),
		UpdateExpression:          aws.String("ADD v :one"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": store.N(1)},
	})
	if err != nil {
		return fmt.Errorf("bump blocklist version: %w", err)
	}
	return nil
}

// Suppress implements Store.
func (s *DynamoStore) Suppress(ctx context.Context, group string, identifiers, labels []string) error {
	es, err := identifierEntries(s.h, group, identifiers, labels, s.opt.Now())
	if err != nil {
		return fmt.Errorf("suppress: %w", err)
	}
	if err := s.put(ctx, es); err != nil {
		return fmt.Errorf("suppress: %w", err)
	}
	return nil
}

// BlockProfiles implements Store.
func (s *DynamoStore) BlockProfiles(ctx context.Context, group string, profiles []string, ttl time.Duration) error {
	es, err := profileEntries(s.h, group, profiles, ttl, s.opt.Now())
	if err != nil {
		return fmt.Errorf("block profiles: %w", err)
	}
	if err := s.put(ctx, es); err != nil {
		return fmt.Errorf("block profiles: %w", err)
	}
	return nil
}

// Unsuppress implements Store. It deletes the entries first and bumps the version last, so a
// retry after a partial run finishes the job.
func (s *DynamoStore) Unsuppress(ctx context.Context, identifiers []string) (int, error) {
	all, err := s.query(ctx, pkList, skIdentifier)
	if err != nil {
		return 0, fmt.Errorf("unsuppress: %w", err)
	}
	rm := toRemove(all, hashSet(s.h, identifiers))
	for _, e := range rm {
		if _, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(s.table), Key: store.Key(pkList, e.key())}); err != nil {
			return 0, fmt.Errorf("unsuppress: delete entry: %w", err)
		}
	}
	if err := s.bump(ctx); err != nil {
		return 0, fmt.Errorf("unsuppress: %w", err)
	}
	return len(rm), nil
}

// query reads the entries of partition pk whose sort key starts with prefix ("" for all but
// the version), strongly consistent.
func (s *DynamoStore) query(ctx context.Context, pk, prefix string) ([]entry, error) {
	var out []entry
	err := s.pages(ctx, pk, prefix, func(it map[string]types.AttributeValue) {
		if store.GetS(it, store.SK) != skVersion {
			out = append(out, decodeEntry(it))
		}
	})
	return out, err
}

func (s *DynamoStore) pages(ctx context.Context, pk, prefix string, fn func(map[string]types.AttributeValue)) error {
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": store.S(pk)},
		ConsistentRead:            aws.Bool(true),
	}
	if prefix != "" {
		in.KeyConditionExpression = aws.String("pk = :pk AND begins_with(sk, :p)")
		in.ExpressionAttributeValues[":p"] = store.S(prefix)
	}
	p := dynamodb.NewQueryPaginator(s.db, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("query %s: %w", pk, err)
		}
		for _, it := range page.Items {
			fn(it)
		}
	}
	return nil
}

// PropagationDelay implements Store.
func (s *DynamoStore) PropagationDelay() time.Duration { return propagationDelay(s.opt.CheckInterval) }

// Suppressions implements Store.
func (s *DynamoStore) Suppressions(ctx context.Context) ([]Group, error) {
	all, err := s.query(ctx, pkList, skIdentifier)
	if err != nil {
		return nil, fmt.Errorf("suppressions: %w", err)
	}
	return groupsOf(all), nil
}

// CountDropped implements Store.
func (s *DynamoStore) CountDropped(ctx context.Context, source string, n int64) error {
	if n <= 0 {
		return nil
	}
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       store.Key(pkDropped, "SOURCE#"+source),
		UpdateExpression:          aws.String("ADD n :n"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":n": store.N(n)},
	})
	if err != nil {
		return fmt.Errorf("count dropped records: %w", err)
	}
	return nil
}

// DroppedBySource implements Store.
func (s *DynamoStore) DroppedBySource(ctx context.Context) (map[string]int64, error) {
	out := map[string]int64{}
	err := s.pages(ctx, pkDropped, "SOURCE#", func(it map[string]types.AttributeValue) {
		out[strings.TrimPrefix(store.GetS(it, store.SK), "SOURCE#")] = store.GetN(it, "n")
	})
	if err != nil {
		return nil, fmt.Errorf("dropped counts: %w", err)
	}
	return out, nil
}

// Version implements Store: one strongly consistent read of a small item (1 read unit).
func (s *DynamoStore) Version(ctx context.Context) (int64, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.table), Key: store.Key(pkList, skVersion), ConsistentRead: aws.Bool(true),
		ProjectionExpression: aws.String("v"),
	})
	if err != nil {
		return 0, fmt.Errorf("read blocklist version: %w", err)
	}
	return store.GetN(out.Item, "v"), nil
}

// Load implements Store.
func (s *DynamoStore) Load(ctx context.Context) (Snapshot, error) {
	all, err := s.query(ctx, pkList, "")
	if err != nil {
		return Snapshot{}, fmt.Errorf("load blocklist: %w", err)
	}
	return snapshotOf(all, s.opt.Now()), nil
}
