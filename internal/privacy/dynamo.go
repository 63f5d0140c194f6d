package privacy

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/serverless-cdp/cdp/internal/store"
	"github.com/serverless-cdp/cdp/internal/store/docs"
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

// DynamoStore is the RequestStore on the shared table: the requests are versioned documents
// (internal/store/docs), the export results items of their own.
type DynamoStore struct {
	*docs.Dynamo[Request]
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

// requestKind lays the requests out: PRIVREQ / REQ#<id>, gzip above inlineDoc, gsi1 PRIVPEND
// while unsettled (unfinished, or completed with a follow-up erase pending).
var requestKind = docs.Kind[Request]{
	Name: "privacy request", PK: requestsPK, SKPrefix: requestSK, PendingGSI: pendingGSI,
	ID: func(r *Request) string { return r.ID }, Terminal: func(r *Request) bool { return r.Settled() },
	Version: func(r *Request) *int { return &r.Version }, Clone: Request.clone, GzipAbove: inlineDoc, MaxDoc: MaxExport,
	NotFound: ErrNotFound, Conflict: ErrConflict,
}

// NewDynamoStore returns the store on the named table.
func NewDynamoStore(db store.Client, table string, opts ...DynamoOption) *DynamoStore {
	s := &DynamoStore{Dynamo: docs.NewDynamo(db, table, requestKind), db: db, table: table, ttl: DefaultExportTTL, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// ListAbout implements RequestStore: it reads the whole requests partition (about 0.5 RCU per
// 4 KB of requests, eventually consistent) and keeps those whose hashes intersect. Privacy
// requests are rare; 10,000 requests of 1 KB cost about 1,250 RCU per call.
func (s *DynamoStore) ListAbout(ctx context.Context, hashes []string) ([]Request, error) {
	all, err := s.All(ctx)
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
	z, err := docs.Gzip(doc)
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
	return docs.Gunzip(z.Bytes(), MaxExport)
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

var _ RequestStore = (*DynamoStore)(nil)
