package privacy

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/serverless-cdp/cdp/internal/store"
)

// Keys in the shared table.
const (
	requestsPK    = "PRIVREQ"  // every request: sk REQ#<id>
	requestSK     = "REQ#"     //
	pendingGSI    = "PRIVPEND" // gsi1pk of a request not yet completed or failed (sparse)
	exportPK      = "PRIVEXP#" // + request id: the export result
	exportHeadSK  = "HEAD"     // chunk count, ttl
	exportChunkSK = "PART#"    // + 4 digits: gzip-compressed document, in order
	// ExportChunkSize is the size of each stored part of a compressed export document.
	ExportChunkSize = 350 << 10
	// MaxExport bounds an export document (uncompressed).
	MaxExport = 64 << 20
	// inlineDoc is the largest request document kept as plain JSON; a larger one is gzipped.
	inlineDoc = 64 << 10
)

// DynamoStore is the RequestStore on the shared table.
type DynamoStore struct {
	db    store.Client
	table string
	ttl   time.Duration
	now   func() time.Time
}

// DynamoOption configures a DynamoStore.
type DynamoOption func(*DynamoStore)

// WithExportTTL sets how long export results are kept (default DefaultExportTTL).
func WithExportTTL(d time.Duration) DynamoOption { return func(s *DynamoStore) { s.ttl = d } }

// WithClock sets the store's clock (tests).
func WithClock(now func() time.Time) DynamoOption { return func(s *DynamoStore) { s.now = now } }

// NewDynamoStore returns the store on the named table.
func NewDynamoStore(db store.Client, table string, opts ...DynamoOption) *DynamoStore {
	s := &DynamoStore{db: db, table: table, ttl: DefaultExportTTL, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

func requestKey(id string) map[string]types.AttributeValue {
	return store.Key(requestsPK, requestSK+id)
}

func encodeRequest(r Request) (map[string]types.AttributeValue, error) {
	doc, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("privacy request encode: %w", err)
	}
	item := requestKey(r.ID)
	item["v"] = store.N(int64(r.Version))
	item["status"] = store.S(r.Status)
	if len(doc) <= inlineDoc {
		item["doc"] = store.S(string(doc))
	} else {
		z, err := gzipBytes(doc)
		if err != nil {
			return nil, err
		}
		item["docz"] = &types.AttributeValueMemberB{Value: z}
	}
	if !r.Terminal() {
		item[store.GSI1PK] = store.S(pendingGSI)
		item[store.GSI1SK] = store.S(r.ID)
	}
	return item, nil
}

func decodeRequest(item map[string]types.AttributeValue) (Request, error) {
	doc := []byte(store.GetS(item, "doc"))
	if z, ok := item["docz"].(*types.AttributeValueMemberB); ok {
		var err error
		if doc, err = gunzip(z.Value, MaxExport); err != nil {
			return Request{}, err
		}
	}
	var r Request
	if err := json.Unmarshal(doc, &r); err != nil {
		return Request{}, fmt.Errorf("privacy request decode: %w", err)
	}
	r.Version = int(store.GetN(item, "v"))
	return r, nil
}

func gzipBytes(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, werr := zw.Write(b)
	if err := errors.Join(werr, zw.Close()); err != nil {
		return nil, fmt.Errorf("privacy compress: %w", err)
	}
	return buf.Bytes(), nil
}

func gunzip(b []byte, limit int64) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("privacy decompress: %w", err)
	}
	out, err := io.ReadAll(io.LimitReader(zr, limit+1))
	if err != nil {
		return nil, fmt.Errorf("privacy decompress: %w", err)
	}
	return out, nil
}

// Create implements RequestStore.
func (s *DynamoStore) Create(ctx context.Context, r Request) error {
	r.Version = 1
	item, err := encodeRequest(r)
	if err != nil {
		return err
	}
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.table), Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)"),
	})
	if store.IsConditionFailed(err) {
		return ErrConflict
	}
	if err != nil {
		return fmt.Errorf("privacy request create: %w", err)
	}
	return nil
}

// Get implements RequestStore.
func (s *DynamoStore) Get(ctx context.Context, id string) (Request, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: requestKey(id), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return Request{}, fmt.Errorf("privacy request get: %w", err)
	}
	if out.Item == nil {
		return Request{}, ErrNotFound
	}
	return decodeRequest(out.Item)
}

// List implements RequestStore: one query of the requests partition, newest first.
func (s *DynamoStore) List(ctx context.Context, limit int, next string) ([]Request, string, error) {
	if limit <= 0 || limit > 100 {
		limit = 100
	}
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		KeyConditionExpression:    aws.String("pk = :pk AND begins_with(sk, :sk)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": store.S(requestsPK), ":sk": store.S(requestSK)},
		ScanIndexForward:          aws.Bool(false),
		Limit:                     aws.Int32(int32(limit)),
	}
	if next != "" {
		in.ExclusiveStartKey = requestKey(next)
	}
	out, err := s.db.Query(ctx, in)
	if err != nil {
		return nil, "", fmt.Errorf("privacy request list: %w", err)
	}
	reqs := make([]Request, 0, len(out.Items))
	for _, it := range out.Items {
		r, err := decodeRequest(it)
		if err != nil {
			return nil, "", err
		}
		reqs = append(reqs, r)
	}
	cursor := ""
	if out.LastEvaluatedKey != nil && len(reqs) > 0 {
		cursor = reqs[len(reqs)-1].ID
	}
	return reqs, cursor, nil
}

// Update implements RequestStore: a read, then a put conditional on the version read.
func (s *DynamoStore) Update(ctx context.Context, id string, fn func(*Request) error) error {
	for range maxUpdateRetries {
		cur, err := s.Get(ctx, id)
		if err != nil {
			return err
		}
		old := cur.Version
		if err := fn(&cur); err != nil {
			return err
		}
		cur.ID, cur.Version = id, old+1
		item, err := encodeRequest(cur)
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
			return fmt.Errorf("privacy request update: %w", err)
		}
		return nil
	}
	return fmt.Errorf("privacy request update %s: %w", id, ErrConflict)
}

// query runs a query to its end and decodes every request it returns.
func (s *DynamoStore) query(ctx context.Context, in *dynamodb.QueryInput) ([]Request, error) {
	var out []Request
	pages := dynamodb.NewQueryPaginator(s.db, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("privacy request query: %w", err)
		}
		for _, it := range page.Items {
			r, err := decodeRequest(it)
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// ListAbout implements RequestStore: it reads the whole requests partition (about 0.5 RCU per
// 4 KB of requests, eventually consistent) and keeps those whose hashes intersect. Privacy
// requests are rare; 10,000 requests of 1 KB cost about 1,250 RCU per call.
func (s *DynamoStore) ListAbout(ctx context.Context, hashes []string) ([]Request, error) {
	all, err := s.query(ctx, &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		KeyConditionExpression:    aws.String("pk = :pk AND begins_with(sk, :sk)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": store.S(requestsPK), ":sk": store.S(requestSK)},
	})
	if err != nil {
		return nil, err
	}
	set := toSet(hashes)
	var out []Request
	for _, r := range all {
		if intersects(r.Hashes, set) {
			out = append(out, r)
		}
	}
	return out, nil
}

// Pending implements RequestStore: a query of the sparse index entry only unfinished requests
// carry, so its cost does not grow with the audit log.
func (s *DynamoStore) Pending(ctx context.Context) ([]Request, error) {
	return s.query(ctx, &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		IndexName:                 aws.String(store.GSI1),
		KeyConditionExpression:    aws.String("gsi1pk = :p"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":p": store.S(pendingGSI)},
	})
}

func chunkSK(n int) string { return exportChunkSK + fmt.Sprintf("%04d", n) }

// PutExport implements RequestStore: the document gzip-compressed, split into parts of
// ExportChunkSize, the parts written before the head item that counts them; every item
// carries the TTL.
func (s *DynamoStore) PutExport(ctx context.Context, id string, doc []byte) error {
	if len(doc) > MaxExport {
		return fmt.Errorf("privacy export of %d bytes exceeds %d", len(doc), MaxExport)
	}
	if _, err := s.DeleteExport(ctx, id); err != nil {
		return err
	}
	z, err := gzipBytes(doc)
	if err != nil {
		return err
	}
	expires := store.N(s.now().Add(s.ttl).Unix())
	n := 0
	for ; len(z) > 0 || n == 0; n++ {
		part := z[:min(len(z), ExportChunkSize)]
		z = z[len(part):]
		item := store.Key(exportPK+id, chunkSK(n))
		item["data"], item[store.TTL] = &types.AttributeValueMemberB{Value: part}, expires
		if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: item}); err != nil {
			return fmt.Errorf("privacy export put part %d: %w", n, err)
		}
	}
	head := store.Key(exportPK+id, exportHeadSK)
	head["parts"], head[store.TTL] = store.N(int64(n)), expires
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: head}); err != nil {
		return fmt.Errorf("privacy export put: %w", err)
	}
	return nil
}

// GetExport implements RequestStore. An expired result not yet removed by DynamoDB's TTL is
// not found.
func (s *DynamoStore) GetExport(ctx context.Context, id string) ([]byte, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: store.Key(exportPK+id, exportHeadSK), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("privacy export get: %w", err)
	}
	if out.Item == nil || store.GetN(out.Item, store.TTL) <= s.now().Unix() {
		return nil, ErrNotFound
	}
	n := int(store.GetN(out.Item, "parts"))
	items, err := s.exportItems(ctx, id, false)
	if err != nil {
		return nil, err
	}
	var z bytes.Buffer
	got := 0
	for _, it := range items {
		if v, ok := it["data"].(*types.AttributeValueMemberB); ok && got < n {
			z.Write(v.Value)
			got++
		}
	}
	if got != n {
		return nil, fmt.Errorf("privacy export %s: %d of %d parts found", id, got, n)
	}
	return gunzip(z.Bytes(), MaxExport)
}

func (s *DynamoStore) exportItems(ctx context.Context, id string, keysOnly bool) ([]map[string]types.AttributeValue, error) {
	var items []map[string]types.AttributeValue
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		KeyConditionExpression:    aws.String("pk = :pk AND begins_with(sk, :sk)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": store.S(exportPK + id), ":sk": store.S(exportChunkSK)},
		ConsistentRead:            aws.Bool(true),
	}
	if keysOnly {
		in.ProjectionExpression = aws.String("pk, sk")
	}
	pages := dynamodb.NewQueryPaginator(s.db, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("privacy export read: %w", err)
		}
		items = append(items, page.Items...)
	}
	return items, nil
}

// DeleteExport implements RequestStore: the head first (the result is gone at once), then the
// parts.
func (s *DynamoStore) DeleteExport(ctx context.Context, id string) (bool, error) {
	out, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: aws.String(s.table), Key: store.Key(exportPK+id, exportHeadSK), ReturnValues: types.ReturnValueAllOld,
	})
	if err != nil {
		return false, fmt.Errorf("privacy export delete: %w", err)
	}
	existed := out.Attributes != nil && store.GetN(out.Attributes, store.TTL) > s.now().Unix()
	parts, err := s.exportItems(ctx, id, true)
	if err != nil {
		return existed, err
	}
	for _, it := range parts {
		key := store.Key(exportPK+id, store.GetS(it, store.SK))
		if _, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(s.table), Key: key}); err != nil {
			return existed, fmt.Errorf("privacy export delete part: %w", err)
		}
	}
	return existed, nil
}
