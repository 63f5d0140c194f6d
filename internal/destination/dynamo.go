package destination

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/serverless-cdp/cdp/internal/store"
)

const (
	destsPK   = "DESTS"
	destSKPfx = "DEST#"
)

// dynamoStore keeps destinations in the shared table (see the package documentation).
type dynamoStore struct {
	db    store.Client
	table string
}

// NewDynamoStore returns the DynamoDB adapter of Store over the named table.
func NewDynamoStore(db store.Client, table string) Store { return &dynamoStore{db: db, table: table} }

// item is a destination as stored: the definition as JSON in doc, and its version.
type item struct {
	PK      string `dynamodbav:"pk"`
	SK      string `dynamodbav:"sk"`
	Doc     string `dynamodbav:"doc"`
	Version int64  `dynamodbav:"version"`
}

// doc is a destination with its secret values, for storage only.
type doc struct {
	Destination
	StoredSecrets []storedSecret `json:"storedSecrets"`
}

func encodeDoc(d Destination) (string, error) {
	dd := doc{Destination: d}
	for _, sec := range d.Secrets {
		dd.StoredSecrets = append(dd.StoredSecrets, storedSecret{Value: sec.Value, CreatedAt: sec.CreatedAt, ExpiresAt: sec.ExpiresAt})
	}
	dd.Destination.Secrets = nil
	b, err := json.Marshal(dd)
	if err != nil {
		return "", fmt.Errorf("encode destination: %w", err)
	}
	return string(b), nil
}

func decodeDoc(s string) (Destination, error) {
	var d doc
	if err := json.Unmarshal([]byte(s), &d); err != nil {
		return Destination{}, fmt.Errorf("decode destination: %w", err)
	}
	out := d.Destination
	out.Secrets = make([]Secret, len(d.StoredSecrets))
	for i, s := range d.StoredSecrets {
		out.Secrets[i] = Secret{Value: s.Value, Hint: hint(s.Value), CreatedAt: s.CreatedAt, ExpiresAt: s.ExpiresAt}
	}
	return out, nil
}

func (s *dynamoStore) Get(ctx context.Context, id string) (Destination, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: store.Key(destsPK, destSKPfx+id), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return Destination{}, fmt.Errorf("get destination %s: %w", id, err)
	}
	if out.Item == nil {
		return Destination{}, ErrNotFound
	}
	return decodeItem(out.Item)
}

func decodeItem(av map[string]types.AttributeValue) (Destination, error) {
	var it item
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return Destination{}, fmt.Errorf("decode destination item: %w", err)
	}
	if it.Doc == "" {
		return Destination{}, errors.New("destination item has no doc")
	}
	return decodeDoc(it.Doc)
}

func (s *dynamoStore) List(ctx context.Context) ([]Destination, error) {
	kc := expression.Key(store.PK).Equal(expression.Value(destsPK)).
		And(expression.KeyBeginsWith(expression.Key(store.SK), destSKPfx))
	expr, err := expression.NewBuilder().WithKeyCondition(kc).Build()
	if err != nil {
		return nil, fmt.Errorf("list destinations: %w", err)
	}
	pages := dynamodb.NewQueryPaginator(s.db, &dynamodb.QueryInput{
		TableName: &s.table, KeyConditionExpression: expr.KeyCondition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(), ConsistentRead: aws.Bool(true),
	})
	var out []Destination
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list destinations: %w", err)
		}
		for _, it := range page.Items {
			d, err := decodeItem(it)
			if err != nil {
				return nil, err
			}
			out = append(out, d)
		}
	}
	return out, nil
}

func (s *dynamoStore) Put(ctx context.Context, d Destination, prev int64) error {
	body, err := encodeDoc(d)
	if err != nil {
		return err
	}
	av, err := attributevalue.MarshalMap(item{PK: destsPK, SK: destSKPfx + d.ID, Doc: body, Version: d.Version})
	if err != nil {
		return fmt.Errorf("encode destination item: %w", err)
	}
	cond := expression.AttributeNotExists(expression.Name(store.PK))
	if prev != 0 {
		cond = expression.Name("version").Equal(expression.Value(prev))
	}
	expr, err := expression.NewBuilder().WithCondition(cond).Build()
	if err != nil {
		return fmt.Errorf("put destination %s: %w", d.ID, err)
	}
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: av, ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values()})
	if store.IsConditionFailed(err) {
		return ErrConflict
	}
	if err != nil {
		return fmt.Errorf("put destination %s: %w", d.ID, err)
	}
	return nil
}

func (s *dynamoStore) Delete(ctx context.Context, id string) error {
	expr, err := expression.NewBuilder().WithCondition(expression.AttributeExists(expression.Name(store.PK))).Build()
	if err != nil {
		return fmt.Errorf("delete destination %s: %w", id, err)
	}
	_, err = s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &s.table, Key: store.Key(destsPK, destSKPfx+id),
		ConditionExpression: expr.Condition(), ExpressionAttributeNames: expr.Names()})
	if store.IsConditionFailed(err) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("delete destination %s: %w", id, err)
	}
	return nil
}
