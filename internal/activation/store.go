package activation

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

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

// Delivery statuses.
const (
	StatusInflight  = "inflight"  // an attempt is under way (leased)
	StatusRetrying  = "retrying"  // waiting in the retry queue
	StatusDelivered = "delivered" // a 2xx arrived
	StatusDead      = "dead"      // in the destination's dead letters
)

// DynamoDB is the part of the DynamoDB client activation uses.
type DynamoDB interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

// Delivery is one record's delivery to one destination, as the log shows it.
type Delivery struct {
	DestinationID string     `json:"destinationId"`
	RecordID      string     `json:"recordId"`
	WebhookID     string     `json:"webhookId"`
	Kind          string     `json:"kind"`
	Status        string     `json:"status"`
	Attempts      int        `json:"attempts"` // HTTP attempts made, over all redrives
	Retries       int        `json:"retries"`  // failed attempts in the current retry cycle
	LastStatus    int        `json:"lastStatus,omitempty"`
	LastError     string     `json:"lastError,omitempty"`
	LatencyMs     int64      `json:"latencyMs"`
	NextAttemptAt *time.Time `json:"nextAttemptAt,omitempty"`
	CreatedAt     time.Time  `json:"createdAt"`
	UpdatedAt     time.Time  `json:"updatedAt"`

	version    int64
	leaseUntil time.Time
	body       json.RawMessage
	qpk, qsk   string
}

// DeadLetter is a message that could not be delivered.
type DeadLetter struct {
	DestinationID string          `json:"destinationId"`
	RecordID      string          `json:"recordId"`
	WebhookID     string          `json:"webhookId"`
	Kind          string          `json:"kind"`
	Attempts      int             `json:"attempts"`
	LastStatus    int             `json:"lastStatus,omitempty"`
	LastError     string          `json:"lastError"`
	DeadAt        time.Time       `json:"deadAt"`
	Payload       json.RawMessage `json:"payload"`
}

// Stats are a destination's counters.
type Stats struct {
	Delivered    int64 `json:"delivered"`
	Retried      int64 `json:"retried"`      // failed attempts that were scheduled for a retry
	DeadLettered int64 `json:"deadLettered"` // messages moved to dead letters
	Redriven     int64 `json:"redriven"`
}

type queueEntry struct {
	pk, sk   string
	destID   string
	recordID string
	due      time.Time
}

// repo is the DynamoDB access of this package.
type repo struct {
	db     DynamoDB
	table  string
	marked sync.Map // buckets this process put in the index
}

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func getT(it map[string]types.AttributeValue, k string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, store.GetS(it, k))
	return t
}

func isConditionFailed(err error) bool {
	var cfe *types.ConditionalCheckFailedException
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) {
		for _, r := range tce.CancellationReasons {
			if aws.ToString(r.Code) == "ConditionalCheckFailed" {
				return true
			}
		}
	}
	return errors.As(err, &cfe)
}

func delivKey(destID, recordID string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{store.PK: store.S(delivPKPfx + destID), store.SK: store.S(delivSKPfx + recordID)}
}

func bucketOf(t time.Time) string { return t.UTC().Format(bucketLayout) }

func queueSK(due time.Time, destID, recordID string) string {
	return fmt.Sprintf("%013d#%s#%s", due.UnixMilli(), destID, recordID)
}

func decodeDelivery(it map[string]types.AttributeValue) Delivery {
	d := Delivery{
		DestinationID: store.GetS(it, "destId"), RecordID: store.GetS(it, "recordId"), WebhookID: store.GetS(it, "webhookId"),
		Kind: store.GetS(it, "kind"), Status: store.GetS(it, "status"), Attempts: int(store.GetN(it, "attempts")),
		Retries: int(store.GetN(it, "retries")), LastStatus: int(store.GetN(it, "lastStatus")), LastError: store.GetS(it, "lastError"),
		LatencyMs: store.GetN(it, "latencyMs"), CreatedAt: getT(it, "createdAt"), UpdatedAt: getT(it, "updatedAt"),
		version: store.GetN(it, "version"), leaseUntil: time.UnixMilli(store.GetN(it, "leaseUntil")),
		body: json.RawMessage(store.GetS(it, "body")), qpk: store.GetS(it, "qpk"), qsk: store.GetS(it, "qsk"),
	}
	if ms := store.GetN(it, "nextAttemptAt"); ms > 0 && d.Status == StatusRetrying {
		t := time.UnixMilli(ms).UTC()
		d.NextAttemptAt = &t
	}
	return d
}

func (r *repo) getDelivery(ctx context.Context, destID, recordID string) (Delivery, bool, error) {
	out, err := r.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &r.table, Key: delivKey(destID, recordID), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return Delivery{}, false, fmt.Errorf("get delivery %s/%s: %w", destID, recordID, err)
	}
	if out.Item == nil {
		return Delivery{}, false, nil
	}
	return decodeDelivery(out.Item), true, nil
}

// claimNew creates the delivery item in state inflight (the dedupe: a conditional put). When it
// exists already, it takes over an inflight delivery whose lease expired (its claimant died);
// otherwise it reports the existing delivery (done, or busy under a live lease).
func (r *repo) claimNew(ctx context.Context, j *job, now time.Time, lease time.Duration) (claimed bool, existing Delivery, err error) {
	item := delivKey(j.destID, j.recordID)
	for k, v := range map[string]types.AttributeValue{
		"destId": store.S(j.destID), "recordId": store.S(j.recordID), "webhookId": store.S(j.webhookID), "kind": store.S(j.kind),
		"status": store.S(StatusInflight), "attempts": store.N(0), "retries": store.N(0), "version": store.N(1),
		"leaseUntil": store.N(now.Add(lease).UnixMilli()), "createdAt": store.S(ts(now)), "updatedAt": store.S(ts(now)),
	} {
		item[k] = v
	}
	_, err = r.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &r.table, Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)")})
	if err == nil {
		j.version, j.attempts, j.retries = 1, 0, 0
		return true, Delivery{}, nil
	}
	if !isConditionFailed(err) {
		return false, Delivery{}, fmt.Errorf("claim delivery %s/%s: %w", j.destID, j.recordID, err)
	}
	d, ok, err := r.getDelivery(ctx, j.destID, j.recordID)
	if err != nil || !ok {
		return false, d, err
	}
	if d.Status != StatusInflight || now.Before(d.leaseUntil) || d.qsk != "" {
		// Delivered, dead, queued (Tick owns it), or someone holds a live lease.
		return false, d, nil
	}
	ok, err = r.takeOver(ctx, j, d, now, lease)
	return ok, d, err
}

// takeOver leases an existing delivery (conditional on its version).
func (r *repo) takeOver(ctx context.Context, j *job, d Delivery, now time.Time, lease time.Duration) (bool, error) {
	_, err := r.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &r.table, Key: delivKey(j.destID, j.recordID),
		UpdateExpression:         aws.String("SET #st = :inflight, leaseUntil = :lease, version = :nv, updatedAt = :now"),
		ConditionExpression:      aws.String("version = :v"),
		ExpressionAttributeNames: map[string]string{"#st": "status"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":inflight": store.S(StatusInflight), ":lease": store.N(now.Add(lease).UnixMilli()), ":nv": store.N(d.version + 1),
			":now": store.S(ts(now)), ":v": store.N(d.version),
		},
	})
	if isConditionFailed(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("lease delivery %s/%s: %w", j.destID, j.recordID, err)
	}
	j.version, j.attempts, j.retries = d.version+1, d.Attempts, d.Retries
	j.qpk, j.qsk = d.qpk, d.qsk
	if len(j.body) == 0 {
		j.body = d.body
	}
	if j.webhookID == "" {
		j.webhookID, j.kind = d.WebhookID, d.Kind
	}
	return true, nil
}

// outcome is the result of one attempt (or of a decision not to attempt).
type outcome struct {
	status     string // StatusDelivered, StatusRetrying or StatusDead
	attempted  bool
	statusCode int
	errMsg     string
	latency    time.Duration
	nextAt     time.Time // StatusRetrying
	handoff    bool      // StatusRetrying after an in-batch timeout: uses no step of the schedule
}

// finish records an outcome: the delivery's new state, the queue entry it leaves (if any) and the
// one it gets (retrying) or its dead letter (dead), in one transaction, conditional on the lease
// version; then bumps the counters.
func (r *repo) finish(ctx context.Context, j *job, o outcome, now time.Time, deliveredTTL time.Duration) error {
	attempts := j.attempts
	retries := j.retries
	if o.attempted {
		attempts++
	}
	names := map[string]string{"#st": "status"}
	vals := map[string]types.AttributeValue{
		":st": store.S(o.status), ":att": store.N(int64(attempts)), ":nv": store.N(j.version + 1), ":v": store.N(j.version),
		":now": store.S(ts(now)), ":lat": store.N(o.latency.Milliseconds()), ":code": store.N(int64(o.statusCode)),
		":err": store.S(o.errMsg), ":logpk": store.S(logPKPfx + j.destID), ":logsk": store.S(ts(now) + "#" + j.recordID),
	}
	set := "SET #st = :st, attempts = :att, version = :nv, updatedAt = :now, latencyMs = :lat, lastStatus = :code, " +
		"lastError = :err, gsi1pk = :logpk, gsi1sk = :logsk"
	var remove []string
	var tx []types.TransactWriteItem
	if j.qpk != "" {
		tx = append(tx, types.TransactWriteItem{Delete: &types.Delete{TableName: &r.table,
			Key: map[string]types.AttributeValue{store.PK: store.S(j.qpk), store.SK: store.S(j.qsk)}}})
	}
	switch o.status {
	case StatusDelivered:
		vals[":ttl"], names["#ttl"] = store.N(now.Add(deliveredTTL).Unix()), store.TTL
		set += ", #ttl = :ttl"
		remove = append(remove, "body", "qpk", "qsk", "nextAttemptAt", "leaseUntil")
	case StatusRetrying:
		if o.attempted && !o.handoff {
			retries++
		}
		qpk, qsk := retryPKPfx+bucketOf(o.nextAt), queueSK(o.nextAt, j.destID, j.recordID)
		vals[":body"], vals[":qpk"], vals[":qsk"] = store.S(string(j.body)), store.S(qpk), store.S(qsk)
		vals[":next"], vals[":ret"] = store.N(o.nextAt.UnixMilli()), store.N(int64(retries))
		set += ", body = :body, qpk = :qpk, qsk = :qsk, nextAttemptAt = :next, retries = :ret"
		remove = append(remove, "leaseUntil")
		tx = append(tx, types.TransactWriteItem{Put: &types.Put{TableName: &r.table, Item: map[string]types.AttributeValue{
			store.PK: store.S(qpk), store.SK: store.S(qsk), "destId": store.S(j.destID), "recordId": store.S(j.recordID),
			"dueAt": store.N(o.nextAt.UnixMilli()), store.TTL: store.N(o.nextAt.Add(30 * 24 * time.Hour).Unix()),
		}}})
		if err := r.markBucket(ctx, bucketOf(o.nextAt)); err != nil {
			return err
		}
	case StatusDead:
		vals[":body"] = store.S(string(j.body))
		set += ", body = :body"
		remove = append(remove, "qpk", "qsk", "nextAttemptAt", "leaseUntil")
		tx = append(tx, types.TransactWriteItem{Put: &types.Put{TableName: &r.table, Item: map[string]types.AttributeValue{
			store.PK: store.S(deadPKPfx + j.destID), store.SK: store.S(j.recordID), "destId": store.S(j.destID), "recordId": store.S(j.recordID),
			"webhookId": store.S(j.webhookID), "kind": store.S(j.kind), "attempts": store.N(int64(attempts)),
			"lastStatus": store.N(int64(o.statusCode)), "lastError": store.S(o.errMsg), "deadAt": store.S(ts(now)), "body": store.S(string(j.body)),
		}}})
	}
	if len(remove) > 0 {
		set += " REMOVE " + join(remove)
	}
	upd := &types.Update{TableName: &r.table, Key: delivKey(j.destID, j.recordID), UpdateExpression: aws.String(set),
		ConditionExpression: aws.String("version = :v"), ExpressionAttributeNames: names, ExpressionAttributeValues: vals}
	var err error
	if len(tx) == 0 {
		_, err = r.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: upd.TableName, Key: upd.Key,
			UpdateExpression: upd.UpdateExpression, ConditionExpression: upd.ConditionExpression,
			ExpressionAttributeNames: names, ExpressionAttributeValues: vals})
	} else {
		tx = append(tx, types.TransactWriteItem{Update: upd})
		_, err = r.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: tx})
	}
	if isConditionFailed(err) {
		return fmt.Errorf("delivery %s/%s: lease lost: %w", j.destID, j.recordID, err)
	}
	if err != nil {
		return fmt.Errorf("record delivery %s/%s: %w", j.destID, j.recordID, err)
	}
	counter := map[string]string{StatusDelivered: "delivered", StatusRetrying: "retried", StatusDead: "deadLettered"}[o.status]
	if o.status == StatusRetrying && !o.attempted {
		return nil
	}
	return r.count(ctx, j.destID, counter)
}

func join(xs []string) string {
	out := ""
	for i, x := range xs {
		if i > 0 {
			out += ", "
		}
		out += x
	}
	return out
}

func (r *repo) count(ctx context.Context, destID, counter string) error {
	_, err := r.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &r.table, Key: map[string]types.AttributeValue{store.PK: store.S(statsPKPfx + destID), store.SK: store.S("STATS")},
		UpdateExpression:          aws.String("ADD #c :one"),
		ExpressionAttributeNames:  map[string]string{"#c": counter},
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": store.N(1)},
	})
	if err != nil {
		return fmt.Errorf("count %s for %s: %w", counter, destID, err)
	}
	return nil
}

// markBucket records that a bucket may hold queue entries (the bucket index). Idempotent; a
// process remembers the buckets it marked, so a burst of retries costs one write per minute.
func (r *repo) markBucket(ctx context.Context, bucket string) error {
	if _, ok := r.marked.Load(bucket); ok {
		return nil
	}
	_, err := r.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &r.table, Item: map[string]types.AttributeValue{
		store.PK: store.S(bucketsPK), store.SK: store.S(bucket),
	}})
	if err != nil {
		return fmt.Errorf("retry queue bucket index: %w", err)
	}
	r.marked.Store(bucket, true)
	return nil
}

// due returns queue entries due at now, oldest bucket first, at most limit. It reads the bucket
// index (one query) and then only buckets that may hold something due. Buckets at least two
// minutes old that are found empty leave the index (the minute of slack covers clock skew
// between writers, which only ever enqueue at or after their own now).
func (r *repo) due(ctx context.Context, now time.Time, limit int) ([]queueEntry, error) {
	nowBucket := bucketOf(now)
	var buckets []string
	var start map[string]types.AttributeValue
	for {
		res, err := r.db.Query(ctx, &dynamodb.QueryInput{
			TableName:              &r.table,
			KeyConditionExpression: aws.String("pk = :pk AND sk <= :now"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":pk": store.S(bucketsPK), ":now": store.S(nowBucket),
			},
			ConsistentRead: aws.Bool(true), ExclusiveStartKey: start,
		})
		if err != nil {
			return nil, fmt.Errorf("read retry bucket index: %w", err)
		}
		for _, it := range res.Items {
			buckets = append(buckets, store.GetS(it, store.SK))
		}
		if start = res.LastEvaluatedKey; start == nil || len(buckets) >= 10000 {
			break
		}
	}
	settled := bucketOf(now.Add(-2 * time.Minute))
	var out []queueEntry
	for _, b := range buckets {
		if len(out) >= limit {
			break
		}
		items, err := r.queryBucket(ctx, b, now, limit-len(out))
		if err != nil {
			return nil, err
		}
		out = append(out, items...)
		if len(items) == 0 && b <= settled {
			if _, err := r.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &r.table,
				Key: map[string]types.AttributeValue{store.PK: store.S(bucketsPK), store.SK: store.S(b)}}); err != nil {
				return nil, fmt.Errorf("retire retry bucket %s: %w", b, err)
			}
			r.marked.Delete(b)
		}
	}
	return out, nil
}

func (r *repo) queryBucket(ctx context.Context, bucket string, now time.Time, limit int) ([]queueEntry, error) {
	var out []queueEntry
	var start map[string]types.AttributeValue
	for len(out) < limit {
		res, err := r.db.Query(ctx, &dynamodb.QueryInput{
			TableName:              &r.table,
			KeyConditionExpression: aws.String("pk = :pk AND sk <= :due"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":pk": store.S(retryPKPfx + bucket), ":due": store.S(fmt.Sprintf("%013d~", now.UnixMilli())),
			},
			ConsistentRead: aws.Bool(true), ExclusiveStartKey: start, Limit: aws.Int32(int32(min(limit-len(out), 500))),
		})
		if err != nil {
			return nil, fmt.Errorf("read retry bucket %s: %w", bucket, err)
		}
		for _, it := range res.Items {
			out = append(out, queueEntry{pk: store.GetS(it, store.PK), sk: store.GetS(it, store.SK), destID: store.GetS(it, "destId"),
				recordID: store.GetS(it, "recordId"), due: time.UnixMilli(store.GetN(it, "dueAt"))})
		}
		if start = res.LastEvaluatedKey; start == nil {
			break
		}
	}
	return out, nil
}

func (r *repo) deleteQueueEntry(ctx context.Context, q queueEntry) error {
	_, err := r.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &r.table,
		Key: map[string]types.AttributeValue{store.PK: store.S(q.pk), store.SK: store.S(q.sk)}})
	if err != nil {
		return fmt.Errorf("delete queue entry %s: %w", q.sk, err)
	}
	return nil
}

// redrive moves one dead letter back to the queue, due at now, with a fresh retry cycle.
func (r *repo) redrive(ctx context.Context, destID, recordID string, now time.Time) error {
	d, ok, err := r.getDelivery(ctx, destID, recordID)
	if err != nil {
		return err
	}
	if !ok || d.Status != StatusDead {
		return fmt.Errorf("%w: %s/%s", ErrNotDead, destID, recordID)
	}
	qpk, qsk := retryPKPfx+bucketOf(now), queueSK(now, destID, recordID)
	if err := r.markBucket(ctx, bucketOf(now)); err != nil {
		return err
	}
	_, err = r.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Delete: &types.Delete{TableName: &r.table, Key: map[string]types.AttributeValue{store.PK: store.S(deadPKPfx + destID), store.SK: store.S(recordID)},
			ConditionExpression: aws.String("attribute_exists(pk)")}},
		{Update: &types.Update{TableName: &r.table, Key: delivKey(destID, recordID),
			UpdateExpression:         aws.String("SET #st = :st, retries = :zero, version = :nv, updatedAt = :now, qpk = :qpk, qsk = :qsk, nextAttemptAt = :next"),
			ConditionExpression:      aws.String("version = :v AND #st = :dead"),
			ExpressionAttributeNames: map[string]string{"#st": "status"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":st": store.S(StatusRetrying), ":zero": store.N(0),
				":nv": store.N(d.version + 1), ":now": store.S(ts(now)), ":qpk": store.S(qpk), ":qsk": store.S(qsk), ":next": store.N(now.UnixMilli()),
				":v": store.N(d.version), ":dead": store.S(StatusDead)}}},
		{Put: &types.Put{TableName: &r.table, Item: map[string]types.AttributeValue{store.PK: store.S(qpk), store.SK: store.S(qsk),
			"destId": store.S(destID), "recordId": store.S(recordID), "dueAt": store.N(now.UnixMilli())}}},
	}})
	if isConditionFailed(err) {
		return fmt.Errorf("%w: %s/%s changed concurrently", ErrNotDead, destID, recordID)
	}
	if err != nil {
		return fmt.Errorf("redrive %s/%s: %w", destID, recordID, err)
	}
	return r.count(ctx, destID, "redriven")
}

// ErrNotDead is returned when redriving something that is not (or no longer) a dead letter.
var ErrNotDead = errors.New("not a dead letter")

// ErrNotFound is returned for an unknown delivery or dead letter.
var ErrNotFound = errors.New("not found")

// page is an opaque paging token over a query's LastEvaluatedKey (string attributes only).
func encodePage(k map[string]types.AttributeValue) string {
	if k == nil {
		return ""
	}
	m := map[string]string{}
	for name, v := range k {
		m[name] = store.GetS(k, name)
		_ = v
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

// ErrBadPage is returned for a paging token that was not issued by this package.
var ErrBadPage = errors.New("invalid paging token")

func (r *repo) deliveries(ctx context.Context, destID string, limit int, next string) ([]Delivery, string, error) {
	start, err := decodePage(next)
	if err != nil {
		return nil, "", err
	}
	res, err := r.db.Query(ctx, &dynamodb.QueryInput{
		TableName: &r.table, IndexName: aws.String(store.GSI1),
		KeyConditionExpression:    aws.String("gsi1pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": store.S(logPKPfx + destID)},
		ScanIndexForward:          aws.Bool(false), Limit: aws.Int32(int32(limit)), ExclusiveStartKey: start,
	})
	if err != nil {
		return nil, "", fmt.Errorf("list deliveries of %s: %w", destID, err)
	}
	out := make([]Delivery, 0, len(res.Items))
	for _, it := range res.Items {
		out = append(out, decodeDelivery(it))
	}
	return out, encodePage(res.LastEvaluatedKey), nil
}

func decodeDead(it map[string]types.AttributeValue) DeadLetter {
	return DeadLetter{DestinationID: store.GetS(it, "destId"), RecordID: store.GetS(it, "recordId"), WebhookID: store.GetS(it, "webhookId"),
		Kind: store.GetS(it, "kind"), Attempts: int(store.GetN(it, "attempts")), LastStatus: int(store.GetN(it, "lastStatus")),
		LastError: store.GetS(it, "lastError"), DeadAt: getT(it, "deadAt"), Payload: json.RawMessage(store.GetS(it, "body"))}
}

func (r *repo) deadLetters(ctx context.Context, destID string, limit int, next string) ([]DeadLetter, string, error) {
	start, err := decodePage(next)
	if err != nil {
		return nil, "", err
	}
	res, err := r.db.Query(ctx, &dynamodb.QueryInput{
		TableName: &r.table, KeyConditionExpression: aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": store.S(deadPKPfx + destID)},
		ConsistentRead:            aws.Bool(true), Limit: aws.Int32(int32(limit)), ExclusiveStartKey: start,
	})
	if err != nil {
		return nil, "", fmt.Errorf("list dead letters of %s: %w", destID, err)
	}
	out := make([]DeadLetter, 0, len(res.Items))
	for _, it := range res.Items {
		out = append(out, decodeDead(it))
	}
	return out, encodePage(res.LastEvaluatedKey), nil
}

func (r *repo) deadLetter(ctx context.Context, destID, recordID string) (DeadLetter, error) {
	out, err := r.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &r.table, ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{store.PK: store.S(deadPKPfx + destID), store.SK: store.S(recordID)}})
	if err != nil {
		return DeadLetter{}, fmt.Errorf("get dead letter %s/%s: %w", destID, recordID, err)
	}
	if out.Item == nil {
		return DeadLetter{}, ErrNotFound
	}
	return decodeDead(out.Item), nil
}

func (r *repo) stats(ctx context.Context, destID string) (Stats, error) {
	out, err := r.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &r.table,
		Key: map[string]types.AttributeValue{store.PK: store.S(statsPKPfx + destID), store.SK: store.S("STATS")}})
	if err != nil {
		return Stats{}, fmt.Errorf("get stats of %s: %w", destID, err)
	}
	return Stats{Delivered: store.GetN(out.Item, "delivered"), Retried: store.GetN(out.Item, "retried"),
		DeadLettered: store.GetN(out.Item, "deadLettered"), Redriven: store.GetN(out.Item, "redriven")}, nil
}

// putUndecodable keeps a stream record that can never be delivered, so it is not lost. key is
// the sort key (the sequence number, or a hash for a single message). Data over
// maxKeptBytes is stored gzip-compressed ("encoding": "gzip"); if even that is too large for an
// item, its first maxKeptBytes compressed bytes are kept with "truncated", the full size and
// its SHA-256, and the reason says so.
func (r *repo) putUndecodable(ctx context.Context, key string, data []byte, reason string, now time.Time) error {
	item := map[string]types.AttributeValue{
		store.PK: store.S(deadPKPfx + UndecodableDestination), store.SK: store.S(key), "recordId": store.S(key),
		"destId": store.S(UndecodableDestination), "deadAt": store.S(ts(now)), "size": store.N(int64(len(data))),
	}
	if len(data) > maxKeptBytes {
		sum := sha256.Sum256(data)
		item["sha256"] = store.S(hex.EncodeToString(sum[:]))
		item["encoding"] = store.S("gzip")
		data = gzipBytes(data)
		if len(data) > maxKeptBytes {
			data = data[:maxKeptBytes]
			item["truncated"] = &types.AttributeValueMemberBOOL{Value: true}
			reason += fmt.Sprintf(" (payload of %d bytes kept truncated)", store.GetN(item, "size"))
		}
	}
	if len(reason) > 2000 {
		reason = strings.ToValidUTF8(reason[:2000], "")
	}
	item["lastError"] = store.S(reason)
	item["body"] = store.S(`"` + base64.StdEncoding.EncodeToString(data) + `"`)
	if _, err := r.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &r.table, Item: item}); err != nil {
		return fmt.Errorf("keep undeliverable record %s: %w", key, err)
	}
	return nil
}

// maxKeptBytes is the most raw bytes one dead letter keeps (base64 grows it by a third; the
// item stays under DynamoDB's 400 KB).
const maxKeptBytes = 256 << 10

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b) // writes to a bytes.Buffer do not fail
	_ = zw.Close()
	return buf.Bytes()
}

// UndecodableDestination is the pseudo destination whose dead letters hold stream records that
// could not be decoded (payload: a JSON string, base64 of the raw record data).
const UndecodableDestination = "_undecodable"
