package activation

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/serverless-cdp/cdp/internal/store"
)

// Key prefixes (see the package documentation in doc.go).
const (
	delivPKPfx   = "DELIV#"       // pk DELIV#<dest>, sk REC#<record>: one delivery (dedupe, state, log)
	delivSKPfx   = "REC#"         //
	logPKPfx     = "DELIVLOG#"    // gsi1pk DELIVLOG#<dest>, gsi1sk <updatedAt>#<record>: the log
	retryPKPfx   = "RETRY#"       // pk RETRY#<yyyymmddhhmm>, sk <dueMs>#<dest>#<record>: due queue
	bucketsPK    = "RETRYBUCKETS" // sk <yyyymmddhhmm>: buckets that may hold entries
	deadPKPfx    = "DEADLTR#"     // pk DEADLTR#<dest>, sk <record>: dead letters
	statsPKPfx   = "DELIVSTATS#"  // pk DELIVSTATS#<dest>, sk STATS: counters
	bucketLayout = "200601021504"
)

// dynamoStore is the DynamoDB adapter of Store over the shared table.
type dynamoStore struct {
	db     store.Client
	table  string
	marked sync.Map // buckets this process put in the index
}

// NewDynamoStore returns the DynamoDB adapter of Store over the named table.
func NewDynamoStore(db store.Client, table string) Store { return &dynamoStore{db: db, table: table} }

var _ Store = (*dynamoStore)(nil)

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func parseTS(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

func delivKey(destID, recordID string) map[string]types.AttributeValue {
	return store.Key(delivPKPfx+destID, delivSKPfx+recordID)
}

func bucketOf(t time.Time) string { return t.UTC().Format(bucketLayout) }

func queueSK(due time.Time, destID, recordID string) string {
	return fmt.Sprintf("%013d#%s#%s", due.UnixMilli(), destID, recordID)
}

// queueRef names a queue entry by its key: "<pk> <sk>" (pk has no space).
func queueRef(pk, sk string) string {
	if pk == "" {
		return ""
	}
	return pk + " " + sk
}

func refKey(ref string) map[string]types.AttributeValue {
	pk, sk, _ := strings.Cut(ref, " ")
	return store.Key(pk, sk)
}

// deliveryItem is a delivery as stored.
type deliveryItem struct {
	DestID        string `dynamodbav:"destId"`
	RecordID      string `dynamodbav:"recordId"`
	WebhookID     string `dynamodbav:"webhookId"`
	Kind          string `dynamodbav:"kind"`
	Status        string `dynamodbav:"status"`
	Attempts      int    `dynamodbav:"attempts"`
	Retries       int    `dynamodbav:"retries"`
	LastStatus    int    `dynamodbav:"lastStatus,omitempty"`
	LastError     string `dynamodbav:"lastError,omitempty"`
	LatencyMs     int64  `dynamodbav:"latencyMs,omitempty"`
	Version       int64  `dynamodbav:"version"`
	LeaseUntil    int64  `dynamodbav:"leaseUntil,omitempty"`
	CreatedAt     string `dynamodbav:"createdAt"`
	UpdatedAt     string `dynamodbav:"updatedAt"`
	Body          string `dynamodbav:"body,omitempty"`
	QPK           string `dynamodbav:"qpk,omitempty"`
	QSK           string `dynamodbav:"qsk,omitempty"`
	NextAttemptAt int64  `dynamodbav:"nextAttemptAt,omitempty"`
}

func (it deliveryItem) delivery() Delivery {
	d := Delivery{
		DestinationID: it.DestID, RecordID: it.RecordID, WebhookID: it.WebhookID, Kind: it.Kind, Status: it.Status,
		Attempts: it.Attempts, Retries: it.Retries, LastStatus: it.LastStatus, LastError: it.LastError,
		LatencyMs: it.LatencyMs, CreatedAt: parseTS(it.CreatedAt), UpdatedAt: parseTS(it.UpdatedAt),
		Version: it.Version, LeaseUntil: time.UnixMilli(it.LeaseUntil), Body: json.RawMessage(it.Body),
		QueueRef: queueRef(it.QPK, it.QSK),
	}
	if it.NextAttemptAt > 0 && d.Status == StatusRetrying {
		t := time.UnixMilli(it.NextAttemptAt).UTC()
		d.NextAttemptAt = &t
	}
	return d
}

func decodeDelivery(av map[string]types.AttributeValue) (Delivery, error) {
	var it deliveryItem
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return Delivery{}, fmt.Errorf("decode delivery: %w", err)
	}
	return it.delivery(), nil
}

// refused turns the table's refusals of a write it will never accept (an item or key over
// DynamoDB's limits, an invalid value) into ErrRefused.
func refused(err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "ValidationException" {
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	return err
}

func mustBuild(b expression.Builder) expression.Expression {
	expr, err := b.Build()
	if err != nil {
		panic(fmt.Sprintf("activation: invalid expression: %v", err)) // a programming error
	}
	return expr
}

func (s *dynamoStore) Delivery(ctx context.Context, destID, recordID string) (Delivery, bool, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: delivKey(destID, recordID), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return Delivery{}, false, fmt.Errorf("get delivery %s/%s: %w", destID, recordID, err)
	}
	if out.Item == nil {
		return Delivery{}, false, nil
	}
	d, err := decodeDelivery(out.Item)
	return d, err == nil, err
}

func (s *dynamoStore) Create(ctx context.Context, d Delivery) (bool, error) {
	av, err := attributevalue.MarshalMap(deliveryItem{
		DestID: d.DestinationID, RecordID: d.RecordID, WebhookID: d.WebhookID, Kind: d.Kind, Status: d.Status,
		Version: d.Version, LeaseUntil: d.LeaseUntil.UnixMilli(), CreatedAt: ts(d.CreatedAt), UpdatedAt: ts(d.UpdatedAt),
	})
	if err != nil {
		return false, fmt.Errorf("encode delivery: %w", err)
	}
	for k, v := range delivKey(d.DestinationID, d.RecordID) {
		av[k] = v
	}
	if d.Status == StatusFilteredConsent { // final: in the log at once, expiring like a delivered one
		av[store.GSI1PK], av[store.GSI1SK] = store.S(logPKPfx+d.DestinationID), store.S(ts(d.UpdatedAt)+"#"+d.RecordID)
		av[store.TTL] = &types.AttributeValueMemberN{Value: strconv.FormatInt(d.ExpiresAt.Unix(), 10)}
	}
	expr := mustBuild(expression.NewBuilder().WithCondition(expression.AttributeNotExists(expression.Name(store.PK))))
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: av, ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names()})
	if store.IsConditionFailed(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("claim delivery %s/%s: %w", d.DestinationID, d.RecordID, refused(err))
	}
	return true, nil
}

func (s *dynamoStore) Lease(ctx context.Context, destID, recordID string, version int64, until, now time.Time) (bool, error) {
	upd := expression.Set(expression.Name("status"), expression.Value(StatusInflight)).
		Set(expression.Name("leaseUntil"), expression.Value(until.UnixMilli())).
		Set(expression.Name("version"), expression.Value(version+1)).
		Set(expression.Name("updatedAt"), expression.Value(ts(now)))
	cond := expression.Name("version").Equal(expression.Value(version))
	expr := mustBuild(expression.NewBuilder().WithUpdate(upd).WithCondition(cond))
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &s.table, Key: delivKey(destID, recordID), UpdateExpression: expr.Update(),
		ConditionExpression: expr.Condition(), ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	})
	if store.IsConditionFailed(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("lease delivery %s/%s: %w", destID, recordID, err)
	}
	return true, nil
}

// queueItem is a retry queue entry as stored.
type queueItem struct {
	PK       string `dynamodbav:"pk"`
	SK       string `dynamodbav:"sk"`
	DestID   string `dynamodbav:"destId"`
	RecordID string `dynamodbav:"recordId"`
	DueAt    int64  `dynamodbav:"dueAt"`
	TTL      int64  `dynamodbav:"ttl,omitempty"`
}

// deadItem is a dead letter as stored.
type deadItem struct {
	PK         string `dynamodbav:"pk"`
	SK         string `dynamodbav:"sk"`
	DestID     string `dynamodbav:"destId"`
	RecordID   string `dynamodbav:"recordId"`
	WebhookID  string `dynamodbav:"webhookId,omitempty"`
	Kind       string `dynamodbav:"kind,omitempty"`
	Attempts   int    `dynamodbav:"attempts"`
	LastStatus int    `dynamodbav:"lastStatus"`
	LastError  string `dynamodbav:"lastError"`
	DeadAt     string `dynamodbav:"deadAt"`
	Body       string `dynamodbav:"body"`
}

func (it deadItem) deadLetter() DeadLetter {
	return DeadLetter{DestinationID: it.DestID, RecordID: it.RecordID, WebhookID: it.WebhookID, Kind: it.Kind,
		Attempts: it.Attempts, LastStatus: it.LastStatus, LastError: it.LastError, DeadAt: parseTS(it.DeadAt),
		Payload: json.RawMessage(it.Body)}
}

func marshal(v any) map[string]types.AttributeValue {
	av, err := attributevalue.MarshalMap(v)
	if err != nil {
		panic(fmt.Sprintf("activation: encode item: %v", err)) // plain structs of strings and numbers
	}
	return av
}

// Finish records an outcome; see DeliveryLog.Finish.
func (s *dynamoStore) Finish(ctx context.Context, t Transition) error {
	upd := expression.Set(expression.Name("status"), expression.Value(t.Status)).
		Set(expression.Name("attempts"), expression.Value(t.Attempts)).
		Set(expression.Name("version"), expression.Value(t.Version+1)).
		Set(expression.Name("updatedAt"), expression.Value(ts(t.At))).
		Set(expression.Name("latencyMs"), expression.Value(t.Latency.Milliseconds())).
		Set(expression.Name("lastStatus"), expression.Value(t.LastStatus)).
		Set(expression.Name("lastError"), expression.Value(t.LastError)).
		Set(expression.Name(store.GSI1PK), expression.Value(logPKPfx+t.DestID)).
		Set(expression.Name(store.GSI1SK), expression.Value(ts(t.At)+"#"+t.RecordID))
	var tx []types.TransactWriteItem
	upd, put, err := s.finishByStatus(ctx, t, upd)
	if err != nil {
		return err
	}
	// A retry due at the very instant of the entry it leaves has the same key: the put replaces
	// it (a transaction may not touch one item twice).
	if t.FromQueue != "" && (put == nil || t.FromQueue != queueRef(store.GetS(put, store.PK), store.GetS(put, store.SK))) {
		tx = append(tx, types.TransactWriteItem{Delete: &types.Delete{TableName: &s.table, Key: refKey(t.FromQueue)}})
	}
	if put != nil {
		tx = append(tx, types.TransactWriteItem{Put: &types.Put{TableName: &s.table, Item: put}})
	}
	// Conditional on the item existing (an erase that landed meanwhile is never undone) and on
	// the lease's version.
	cond := expression.AttributeExists(expression.Name(store.PK)).And(expression.Name("version").Equal(expression.Value(t.Version)))
	expr := mustBuild(expression.NewBuilder().WithUpdate(upd).WithCondition(cond))
	u := &types.Update{TableName: &s.table, Key: delivKey(t.DestID, t.RecordID), UpdateExpression: expr.Update(),
		ConditionExpression: expr.Condition(), ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values()}
	if len(tx) == 0 {
		_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: u.TableName, Key: u.Key, UpdateExpression: u.UpdateExpression,
			ConditionExpression: u.ConditionExpression, ExpressionAttributeNames: u.ExpressionAttributeNames,
			ExpressionAttributeValues: u.ExpressionAttributeValues})
	} else {
		_, err = s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: append(tx, types.TransactWriteItem{Update: u})})
	}
	if store.IsConditionFailed(err) {
		return s.lostWhy(ctx, t, err)
	}
	if err != nil {
		return fmt.Errorf("record delivery %s/%s: %w", t.DestID, t.RecordID, refused(err))
	}
	return nil
}

// lostWhy tells a delivery that was erased (ErrGone) from one whose version moved on
// (ErrLeaseLost) after Finish's condition failed: one consistent read, on this rare path only.
func (s *dynamoStore) lostWhy(ctx context.Context, t Transition, cause error) error {
	_, found, err := s.Delivery(ctx, t.DestID, t.RecordID)
	switch {
	case err != nil:
		return fmt.Errorf("delivery %s/%s: %w: %w", t.DestID, t.RecordID, ErrLeaseLost, cause)
	case !found:
		return fmt.Errorf("delivery %s/%s: %w", t.DestID, t.RecordID, ErrGone)
	}
	return fmt.Errorf("delivery %s/%s: %w: %w", t.DestID, t.RecordID, ErrLeaseLost, cause)
}

// finishByStatus adds what a status changes to the update, and returns the item it puts (a
// queue entry or a dead letter), if any.
func (s *dynamoStore) finishByStatus(ctx context.Context, t Transition, upd expression.UpdateBuilder) (expression.UpdateBuilder, map[string]types.AttributeValue, error) {
	switch t.Status {
	case StatusDelivered:
		upd = upd.Set(expression.Name(store.TTL), expression.Value(t.ExpiresAt.Unix())).
			Remove(expression.Name("body")).Remove(expression.Name("qpk")).Remove(expression.Name("qsk")).
			Remove(expression.Name("nextAttemptAt")).Remove(expression.Name("leaseUntil"))
		return upd, nil, nil
	case StatusRetrying:
		qpk, qsk := retryPKPfx+bucketOf(t.NextAt), queueSK(t.NextAt, t.DestID, t.RecordID)
		upd = upd.Set(expression.Name("body"), expression.Value(string(t.Body))).
			Set(expression.Name("qpk"), expression.Value(qpk)).Set(expression.Name("qsk"), expression.Value(qsk)).
			Set(expression.Name("nextAttemptAt"), expression.Value(t.NextAt.UnixMilli())).
			Set(expression.Name("retries"), expression.Value(t.Retries)).Remove(expression.Name("leaseUntil"))
		if err := s.markBucket(ctx, bucketOf(t.NextAt)); err != nil {
			return upd, nil, err
		}
		return upd, marshal(queueItem{PK: qpk, SK: qsk, DestID: t.DestID, RecordID: t.RecordID, DueAt: t.NextAt.UnixMilli(),
			TTL: t.NextAt.Add(30 * 24 * time.Hour).Unix()}), nil
	case StatusDead:
		upd = upd.Set(expression.Name("body"), expression.Value(string(t.Body))).
			Remove(expression.Name("qpk")).Remove(expression.Name("qsk")).
			Remove(expression.Name("nextAttemptAt")).Remove(expression.Name("leaseUntil"))
		return upd, marshal(deadItem{PK: deadPKPfx + t.DestID, SK: t.RecordID, DestID: t.DestID, RecordID: t.RecordID,
			WebhookID: t.WebhookID, Kind: t.Kind, Attempts: t.Attempts, LastStatus: t.LastStatus, LastError: t.LastError,
			DeadAt: ts(t.At), Body: string(t.Body)}), nil
	}
	return upd, nil, fmt.Errorf("finish delivery %s/%s: unknown status %q", t.DestID, t.RecordID, t.Status)
}

func (s *dynamoStore) Count(ctx context.Context, destID, counter string) error {
	expr := mustBuild(expression.NewBuilder().WithUpdate(expression.Add(expression.Name(counter), expression.Value(1))))
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &s.table, Key: store.Key(statsPKPfx+destID, "STATS"), UpdateExpression: expr.Update(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	})
	if err != nil {
		return fmt.Errorf("count %s for %s: %w", counter, destID, err)
	}
	return nil
}

func (s *dynamoStore) Stats(ctx context.Context, destID string) (Stats, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: store.Key(statsPKPfx+destID, "STATS")})
	if err != nil {
		return Stats{}, fmt.Errorf("get stats of %s: %w", destID, err)
	}
	var st Stats
	if err := attributevalue.UnmarshalMap(out.Item, &st); err != nil {
		return Stats{}, fmt.Errorf("decode stats of %s: %w", destID, err)
	}
	return st, nil
}

// markBucket records that a bucket may hold queue entries (the bucket index). Idempotent; a
// process remembers the buckets it marked, so a burst of retries costs one write per minute.
func (s *dynamoStore) markBucket(ctx context.Context, bucket string) error {
	if _, ok := s.marked.Load(bucket); ok {
		return nil
	}
	_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: store.Key(bucketsPK, bucket)})
	if err != nil {
		return fmt.Errorf("retry queue bucket index: %w", err)
	}
	s.marked.Store(bucket, true)
	return nil
}

// Due returns queue entries due at now, oldest bucket first, at most limit. It reads the bucket
// index (one query) and then only buckets that may hold something due. Buckets at least two
// minutes old that are found empty leave the index (the minute of slack covers clock skew
// between writers, which only ever enqueue at or after their own now).
func (s *dynamoStore) Due(ctx context.Context, now time.Time, limit int) ([]QueueEntry, error) {
	buckets, err := s.buckets(ctx, bucketOf(now))
	if err != nil {
		return nil, err
	}
	settled := bucketOf(now.Add(-2 * time.Minute))
	var out []QueueEntry
	for _, b := range buckets {
		if len(out) >= limit {
			break
		}
		items, err := s.queryBucket(ctx, b, now, limit-len(out))
		if err != nil {
			return nil, err
		}
		out = append(out, items...)
		if len(items) == 0 && b <= settled {
			if _, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &s.table, Key: store.Key(bucketsPK, b)}); err != nil {
				return nil, fmt.Errorf("retire retry bucket %s: %w", b, err)
			}
			s.marked.Delete(b)
		}
	}
	return out, nil
}

// buckets reads the bucket index up to the bucket of now (at most 10,000 buckets).
func (s *dynamoStore) buckets(ctx context.Context, upTo string) ([]string, error) {
	kc := expression.Key(store.PK).Equal(expression.Value(bucketsPK)).And(expression.Key(store.SK).LessThanEqual(expression.Value(upTo)))
	expr := mustBuild(expression.NewBuilder().WithKeyCondition(kc))
	pages := dynamodb.NewQueryPaginator(s.db, &dynamodb.QueryInput{TableName: &s.table, KeyConditionExpression: expr.KeyCondition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(), ConsistentRead: aws.Bool(true)})
	var buckets []string
	for pages.HasMorePages() && len(buckets) < 10000 {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("read retry bucket index: %w", err)
		}
		for _, it := range page.Items {
			buckets = append(buckets, store.GetS(it, store.SK))
		}
	}
	return buckets, nil
}

func (s *dynamoStore) queryBucket(ctx context.Context, bucket string, now time.Time, limit int) ([]QueueEntry, error) {
	kc := expression.Key(store.PK).Equal(expression.Value(retryPKPfx + bucket)).
		And(expression.Key(store.SK).LessThanEqual(expression.Value(fmt.Sprintf("%013d~", now.UnixMilli()))))
	expr := mustBuild(expression.NewBuilder().WithKeyCondition(kc))
	pages := dynamodb.NewQueryPaginator(s.db, &dynamodb.QueryInput{TableName: &s.table, KeyConditionExpression: expr.KeyCondition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(), ConsistentRead: aws.Bool(true),
		Limit: aws.Int32(int32(min(limit, 500)))})
	var out []QueueEntry
	for pages.HasMorePages() && len(out) < limit {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("read retry bucket %s: %w", bucket, err)
		}
		var items []queueItem
		if err := attributevalue.UnmarshalListOfMaps(page.Items, &items); err != nil {
			return nil, fmt.Errorf("decode retry bucket %s: %w", bucket, err)
		}
		for _, it := range items {
			out = append(out, QueueEntry{DestID: it.DestID, RecordID: it.RecordID, Due: time.UnixMilli(it.DueAt), Ref: queueRef(it.PK, it.SK)})
		}
	}
	return out[:min(len(out), limit)], nil
}

func (s *dynamoStore) Dequeue(ctx context.Context, e QueueEntry) error {
	if _, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &s.table, Key: refKey(e.Ref)}); err != nil {
		return fmt.Errorf("delete queue entry %s: %w", e.Ref, err)
	}
	return nil
}

// Redrive moves one dead letter back to the queue, due at now, with a fresh retry cycle.
func (s *dynamoStore) Redrive(ctx context.Context, d Delivery, now time.Time) error {
	destID, recordID := d.DestinationID, d.RecordID
	qpk, qsk := retryPKPfx+bucketOf(now), queueSK(now, destID, recordID)
	if err := s.markBucket(ctx, bucketOf(now)); err != nil {
		return err
	}
	dlCond := mustBuild(expression.NewBuilder().WithCondition(expression.AttributeExists(expression.Name(store.PK))))
	upd := expression.Set(expression.Name("status"), expression.Value(StatusRetrying)).
		Set(expression.Name("retries"), expression.Value(0)).Set(expression.Name("version"), expression.Value(d.Version+1)).
		Set(expression.Name("updatedAt"), expression.Value(ts(now))).Set(expression.Name("qpk"), expression.Value(qpk)).
		Set(expression.Name("qsk"), expression.Value(qsk)).Set(expression.Name("nextAttemptAt"), expression.Value(now.UnixMilli()))
	cond := expression.Name("version").Equal(expression.Value(d.Version)).And(expression.Name("status").Equal(expression.Value(StatusDead)))
	expr := mustBuild(expression.NewBuilder().WithUpdate(upd).WithCondition(cond))
	_, err := s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Delete: &types.Delete{TableName: &s.table, Key: store.Key(deadPKPfx+destID, recordID),
			ConditionExpression: dlCond.Condition(), ExpressionAttributeNames: dlCond.Names()}},
		{Update: &types.Update{TableName: &s.table, Key: delivKey(destID, recordID), UpdateExpression: expr.Update(),
			ConditionExpression: expr.Condition(), ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values()}},
		{Put: &types.Put{TableName: &s.table, Item: marshal(queueItem{PK: qpk, SK: qsk, DestID: destID, RecordID: recordID, DueAt: now.UnixMilli()})}},
	}})
	if store.IsConditionFailed(err) {
		return fmt.Errorf("%w: %s/%s changed concurrently", ErrNotDead, destID, recordID)
	}
	if err != nil {
		return fmt.Errorf("redrive %s/%s: %w", destID, recordID, err)
	}
	return nil
}

// encodePage is an opaque paging token over a query's LastEvaluatedKey (string attributes only).
func encodePage(k map[string]types.AttributeValue) string {
	if k == nil {
		return ""
	}
	m := map[string]string{}
	for name := range k {
		m[name] = store.GetS(k, name)
	}
	b, _ := json.Marshal(m)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodePage(tok string) (map[string]types.AttributeValue, error) {
	if tok == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	var m map[string]string
	if err != nil || json.Unmarshal(b, &m) != nil {
		return nil, ErrBadPage
	}
	out := map[string]types.AttributeValue{}
	for k, v := range m {
		out[k] = store.S(v)
	}
	return out, nil
}

// page runs one query page from a paging token.
func (s *dynamoStore) page(ctx context.Context, in *dynamodb.QueryInput, next string) (*dynamodb.QueryOutput, error) {
	start, err := decodePage(next)
	if err != nil {
		return nil, err
	}
	in.TableName, in.ExclusiveStartKey = &s.table, start
	return s.db.Query(ctx, in)
}

func (s *dynamoStore) Deliveries(ctx context.Context, destID string, limit int, next string) ([]Delivery, string, error) {
	expr := mustBuild(expression.NewBuilder().WithKeyCondition(expression.Key(store.GSI1PK).Equal(expression.Value(logPKPfx + destID))))
	res, err := s.page(ctx, &dynamodb.QueryInput{IndexName: aws.String(store.GSI1), KeyConditionExpression: expr.KeyCondition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		ScanIndexForward: aws.Bool(false), Limit: aws.Int32(int32(limit))}, next)
	if err != nil {
		return nil, "", errOr(err, "list deliveries of "+destID)
	}
	out := make([]Delivery, 0, len(res.Items))
	for _, it := range res.Items {
		d, err := decodeDelivery(it)
		if err != nil {
			return nil, "", err
		}
		out = append(out, d)
	}
	return out, encodePage(res.LastEvaluatedKey), nil
}

func errOr(err error, what string) error {
	if errors.Is(err, ErrBadPage) {
		return err
	}
	return fmt.Errorf("%s: %w", what, err)
}

func (s *dynamoStore) DeadLetters(ctx context.Context, destID string, limit int, next string) ([]DeadLetter, string, error) {
	expr := mustBuild(expression.NewBuilder().WithKeyCondition(expression.Key(store.PK).Equal(expression.Value(deadPKPfx + destID))))
	res, err := s.page(ctx, &dynamodb.QueryInput{KeyConditionExpression: expr.KeyCondition(), ExpressionAttributeNames: expr.Names(),
		ExpressionAttributeValues: expr.Values(), ConsistentRead: aws.Bool(true), Limit: aws.Int32(int32(limit))}, next)
	if err != nil {
		return nil, "", errOr(err, "list dead letters of "+destID)
	}
	var items []deadItem
	if err := attributevalue.UnmarshalListOfMaps(res.Items, &items); err != nil {
		return nil, "", fmt.Errorf("decode dead letters of %s: %w", destID, err)
	}
	out := make([]DeadLetter, 0, len(items))
	for _, it := range items {
		out = append(out, it.deadLetter())
	}
	return out, encodePage(res.LastEvaluatedKey), nil
}

func (s *dynamoStore) DeadLetter(ctx context.Context, destID, recordID string) (DeadLetter, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, ConsistentRead: aws.Bool(true),
		Key: store.Key(deadPKPfx+destID, recordID)})
	if err != nil {
		return DeadLetter{}, fmt.Errorf("get dead letter %s/%s: %w", destID, recordID, err)
	}
	if out.Item == nil {
		return DeadLetter{}, ErrNotFound
	}
	var it deadItem
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return DeadLetter{}, fmt.Errorf("decode dead letter %s/%s: %w", destID, recordID, err)
	}
	return it.deadLetter(), nil
}

// ProfileDeliveries queries one destination's deliveries by record id prefix (a key condition:
// begins_with on the sort key), strongly consistent.
func (s *dynamoStore) ProfileDeliveries(ctx context.Context, destID, prefix string) ([]Delivery, error) {
	kc := expression.Key(store.PK).Equal(expression.Value(delivPKPfx + destID)).
		And(expression.KeyBeginsWith(expression.Key(store.SK), delivSKPfx+prefix))
	expr := mustBuild(expression.NewBuilder().WithKeyCondition(kc))
	pages := dynamodb.NewQueryPaginator(s.db, &dynamodb.QueryInput{TableName: &s.table, KeyConditionExpression: expr.KeyCondition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(), ConsistentRead: aws.Bool(true)})
	var out []Delivery
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("find deliveries of %s by profile: %w", destID, err)
		}
		for _, it := range page.Items {
			d, err := decodeDelivery(it)
			if err != nil {
				return nil, err
			}
			out = append(out, d)
		}
	}
	return out, nil
}

// EraseDelivery deletes the queue entry, the dead letter and then the delivery (so that a run
// cut short finds the delivery, and through it the rest, again).
func (s *dynamoStore) EraseDelivery(ctx context.Context, d Delivery) (Erased, error) {
	var e Erased
	var err error
	if d.QueueRef != "" {
		if e.QueueEntry, err = s.deleteItem(ctx, refKey(d.QueueRef)); err != nil {
			return e, fmt.Errorf("erase queue entry of %s: %w", d.DestinationID, err)
		}
	}
	if e.DeadLetter, err = s.deleteItem(ctx, store.Key(deadPKPfx+d.DestinationID, d.RecordID)); err != nil {
		return e, fmt.Errorf("erase dead letter of %s: %w", d.DestinationID, err)
	}
	if e.Delivery, err = s.deleteItem(ctx, delivKey(d.DestinationID, d.RecordID)); err != nil {
		return e, fmt.Errorf("erase delivery of %s: %w", d.DestinationID, err)
	}
	return e, nil
}

// deleteItem deletes one item and reports whether it existed.
func (s *dynamoStore) deleteItem(ctx context.Context, key map[string]types.AttributeValue) (bool, error) {
	out, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &s.table, Key: key, ReturnValues: types.ReturnValueAllOld})
	if err != nil {
		return false, err
	}
	return len(out.Attributes) > 0, nil
}
