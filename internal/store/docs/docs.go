// Package docs is the versioned document store that resumable jobs share (privacy requests,
// replay jobs): one item per document in the shared table, its JSON under `doc` (gzip-compressed
// under `docz` above a size), the version under `v` for conditional writes, and a sparse index
// entry (gsi1) while the document is not finished, so the scheduled runner reads only the
// unfinished ones. Each package describes its documents with a Kind and wraps the store in the
// port it owns.
package docs

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/serverless-cdp/cdp/internal/store"
)

// MaxUpdateRetries bounds the re-reads of Update under contention.
const MaxUpdateRetries = 20

// Kind describes one type of document.
type Kind[T any] struct {
	Name       string // in error texts, e.g. "privacy request"
	PK         string // the partition of every document
	SKPrefix   string // + id: the sort key
	PendingGSI string // gsi1pk of an unfinished document
	ID         func(*T) string
	Terminal   func(*T) bool
	Version    func(*T) *int
	Clone      func(T) T // a deep copy (the in-memory store hands out copies only)
	// GzipAbove is the document size (JSON bytes) above which it is stored compressed (0:
	// never); MaxDoc bounds a decompressed document.
	GzipAbove int
	MaxDoc    int64
	// NotFound and Conflict are the errors Get/Update and Create/Update return.
	NotFound, Conflict error
}

// Dynamo is a Kind's documents on the shared table.
type Dynamo[T any] struct {
	db    store.Client
	table string
	k     Kind[T]
}

// NewDynamo returns the store of kind k on the named table.
func NewDynamo[T any](db store.Client, table string, k Kind[T]) *Dynamo[T] {
	return &Dynamo[T]{db: db, table: table, k: k}
}

// Key is the key of document id.
func (s *Dynamo[T]) Key(id string) map[string]types.AttributeValue {
	return store.Key(s.k.PK, s.k.SKPrefix+id)
}

func (s *Dynamo[T]) encode(d *T) (map[string]types.AttributeValue, error) {
	doc, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("%s encode: %w", s.k.Name, err)
	}
	id := s.k.ID(d)
	item := s.Key(id)
	item["v"] = store.N(int64(*s.k.Version(d)))
	if s.k.GzipAbove > 0 && len(doc) > s.k.GzipAbove {
		z, err := Gzip(doc)
		if err != nil {
			return nil, err
		}
		item["docz"] = &types.AttributeValueMemberB{Value: z}
	} else {
		item["doc"] = store.S(string(doc))
	}
	if !s.k.Terminal(d) {
		item[store.GSI1PK] = store.S(s.k.PendingGSI)
		item[store.GSI1SK] = store.S(id)
	}
	return item, nil
}

// Decode reads a document from its item.
func (s *Dynamo[T]) Decode(item map[string]types.AttributeValue) (T, error) {
	var d T
	doc := []byte(store.GetS(item, "doc"))
	if z, ok := item["docz"].(*types.AttributeValueMemberB); ok {
		var err error
		if doc, err = Gunzip(z.Value, s.k.MaxDoc); err != nil {
			return d, err
		}
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		return d, fmt.Errorf("%s decode: %w", s.k.Name, err)
	}
	*s.k.Version(&d) = int(store.GetN(item, "v"))
	return d, nil
}

// Create stores a new document at version 1 (Conflict if its id exists).
func (s *Dynamo[T]) Create(ctx context.Context, d T) error {
	*s.k.Version(&d) = 1
	item, err := s.encode(&d)
	if err != nil {
		return err
	}
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.table), Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)"),
	})
	if store.IsConditionFailed(err) {
		return s.k.Conflict
	}
	if err != nil {
		return fmt.Errorf("%s create: %w", s.k.Name, err)
	}
	return nil
}

// Get reads a document, strongly consistent (NotFound if absent).
func (s *Dynamo[T]) Get(ctx context.Context, id string) (T, error) {
	var zero T
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: s.Key(id), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return zero, fmt.Errorf("%s get: %w", s.k.Name, err)
	}
	if out.Item == nil {
		return zero, s.k.NotFound
	}
	return s.Decode(out.Item)
}

// List is one query of the partition, newest id first (1 to 100 documents); next is the last
// id of the previous page.
func (s *Dynamo[T]) List(ctx context.Context, limit int, next string) ([]T, string, error) {
	if limit <= 0 || limit > 100 {
		limit = 100
	}
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		KeyConditionExpression:    aws.String("pk = :pk AND begins_with(sk, :sk)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": store.S(s.k.PK), ":sk": store.S(s.k.SKPrefix)},
		ScanIndexForward:          aws.Bool(false),
		Limit:                     aws.Int32(int32(limit)),
	}
	if next != "" {
		in.ExclusiveStartKey = s.Key(next)
	}
	out, err := s.db.Query(ctx, in)
	if err != nil {
		return nil, "", fmt.Errorf("%s list: %w", s.k.Name, err)
	}
	docs, err := s.decodeAll(out.Items)
	if err != nil {
		return nil, "", err
	}
	cursor := ""
	if out.LastEvaluatedKey != nil && len(docs) > 0 {
		cursor = s.k.ID(&docs[len(docs)-1])
	}
	return docs, cursor, nil
}

// Update reads the document, applies fn and writes it back conditional on the version read,
// re-reading on a conflict (at most MaxUpdateRetries times). An error from fn is returned as is
// and nothing is written.
func (s *Dynamo[T]) Update(ctx context.Context, id string, fn func(*T) error) error {
	for range MaxUpdateRetries {
		cur, err := s.Get(ctx, id)
		if err != nil {
			return err
		}
		old := *s.k.Version(&cur)
		if err := fn(&cur); err != nil {
			return err
		}
		*s.k.Version(&cur) = old + 1
		item, err := s.encode(&cur)
		if err != nil {
			return err
		}
		_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: aws.String(s.table), Item: item,
			ConditionExpression:       aws.String("v = :old"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":old": store.N(int64(old))},
		})
		if store.IsConditionFailed(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("%s update: %w", s.k.Name, err)
		}
		return nil
	}
	return fmt.Errorf("%s update %s: %w", s.k.Name, id, s.k.Conflict)
}

// Pending reads the unfinished documents: a query of their sparse index entry, so its cost
// does not grow with the finished ones.
func (s *Dynamo[T]) Pending(ctx context.Context) ([]T, error) {
	return s.query(ctx, &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		IndexName:                 aws.String(store.GSI1),
		KeyConditionExpression:    aws.String("gsi1pk = :p"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":p": store.S(s.k.PendingGSI)},
	})
}

// All reads every document of the partition (eventually consistent; about 0.5 read unit per
// 4 KB of documents).
func (s *Dynamo[T]) All(ctx context.Context) ([]T, error) {
	return s.query(ctx, &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		KeyConditionExpression:    aws.String("pk = :pk AND begins_with(sk, :sk)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": store.S(s.k.PK), ":sk": store.S(s.k.SKPrefix)},
	})
}

func (s *Dynamo[T]) query(ctx context.Context, in *dynamodb.QueryInput) ([]T, error) {
	var out []T
	pages := dynamodb.NewQueryPaginator(s.db, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s query: %w", s.k.Name, err)
		}
		docs, err := s.decodeAll(page.Items)
		if err != nil {
			return nil, err
		}
		out = append(out, docs...)
	}
	return out, nil
}

func (s *Dynamo[T]) decodeAll(items []map[string]types.AttributeValue) ([]T, error) {
	out := make([]T, 0, len(items))
	for _, it := range items {
		d, err := s.Decode(it)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// Gzip compresses b.
func Gzip(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, werr := zw.Write(b)
	if err := errors.Join(werr, zw.Close()); err != nil {
		return nil, fmt.Errorf("compress: %w", err)
	}
	return buf.Bytes(), nil
}

// Gunzip decompresses b, reading at most limit+1 bytes (a caller that finds more knows it is
// over its limit).
func Gunzip(b []byte, limit int64) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("decompress: %w", err)
	}
	out, err := io.ReadAll(io.LimitReader(zr, limit+1))
	if err != nil {
		return nil, fmt.Errorf("decompress: %w", err)
	}
	return out, nil
}
