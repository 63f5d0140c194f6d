// Package deadletter keeps records a pipeline stage could not process, so that they never block
// a shard and are never dropped: an operator lists them, fixes the cause (a rule, a bug) and
// replays them through the stage that failed.
//
// Keys in the shared table: `DLQ#<stage>` / `ENTRY#<id>`, and `DLQSTAGES` / `<stage>` for every
// stage that put an entry (holder.go). The id is derived from the stage, the
// kind and the payload, so dead-lettering the same record twice keeps one entry (with the
// latest error and a count), and keys are always valid whatever the payload holds.
//
// Any payload up to MaxPayload is storable: one up to InlinePayload bytes is kept in the entry's
// item; a larger one is gzip-compressed, and if it is still too large for one item it is split
// into chunks of ChunkSize kept in items `DLQ#<stage>` / `CHUNK#<id>#<n>`, written before the
// entry that refers to them. Get, List and Replay read payloads back whole.
package deadletter

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
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/serverless-cdp/cdp/internal/budget"
	"github.com/serverless-cdp/cdp/internal/store"
)

const (
	prefix      = "DLQ#"
	skPrefix    = "ENTRY#"
	chunkPrefix = "CHUNK#"
	// InlinePayload is the largest payload (as stored, after compression) kept in the entry's
	// own item; DynamoDB items are at most 400 KB.
	InlinePayload = 350 << 10
	// ChunkSize is the size of each chunk item of a payload too large for one item.
	ChunkSize = 350 << 10
	// MaxPayload is the largest payload an entry holds: four times Kinesis's 1 MiB record limit.
	MaxPayload = 4 << 20
	// maxErrorText bounds the error texts kept with an entry.
	maxErrorText = 8 << 10
	encGzip      = "gzip"
)

// Entry is one dead letter.
type Entry struct {
	ID    string `json:"id"`
	Stage string `json:"stage"` // e.g. "identity"
	Kind  string `json:"kind"`  // what Payload is, e.g. "event" (a tracking.Record) or "change"
	// Reason is a short machine-readable cause, e.g. "decode", "no_identifiers", "retries_exhausted".
	Reason string `json:"reason"`
	Error  string `json:"error,omitempty"`
	// Payload is the record as the stage received it (JSON for every current kind).
	Payload []byte `json:"-"`
	// Meta holds where it came from (e.g. Kinesis event id, partition key).
	Meta      map[string]string `json:"meta,omitempty"`
	Count     int               `json:"count"` // how often it was dead-lettered
	CreatedAt time.Time         `json:"createdAt"`
	UpdatedAt time.Time         `json:"updatedAt"`
	// LastReplayError is the error of the last failed replay, if any.
	LastReplayError string `json:"lastReplayError,omitempty"`
}

// MarshalJSON shows a JSON payload as JSON and anything else as base64.
func (e Entry) MarshalJSON() ([]byte, error) {
	type plain Entry
	out := struct {
		plain
		Payload       json.RawMessage `json:"payload,omitempty"`
		PayloadBase64 string          `json:"payloadBase64,omitempty"`
	}{plain: plain(e)}
	if json.Valid(e.Payload) {
		out.Payload = e.Payload
	} else {
		out.PayloadBase64 = base64.StdEncoding.EncodeToString(e.Payload)
	}
	return json.Marshal(out)
}

// API is the DynamoDB client the store uses (the one interface, store.Client).
type API = store.Client

// Store keeps dead letters in the shared table.
type Store struct {
	db     API
	table  string
	now    func() time.Time
	stages sync.Map // stages this process registered (holder.go)
}

// NewStore returns a store on the named table.
func NewStore(db API, table string) *Store { return &Store{db: db, table: table, now: time.Now} }

// ErrNotFound is returned for an unknown entry.
var ErrNotFound = errors.New("dead letter not found")

// EntryID is the id an entry of this stage, kind and payload gets.
func EntryID(stage, kind string, payload []byte) string {
	h := sha256.New()
	h.Write([]byte(stage + "\x00" + kind + "\x00"))
	h.Write(payload)
	return hex.EncodeToString(h.Sum(nil))[:24]
}

func sv(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func key(stage, id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{store.PK: sv(prefix + stage), store.SK: sv(skPrefix + id)}
}

// Put stores an entry (Stage, Kind, Reason, Payload required) and returns it with its id. The
// same payload dead-lettered again updates the error and increments Count.
func (s *Store) Put(ctx context.Context, e Entry) (Entry, error) {
	if e.Stage == "" || e.Kind == "" || e.Reason == "" {
		return e, errors.New("dead letter: stage, kind and reason are required")
	}
	if len(e.Payload) > MaxPayload {
		return e, fmt.Errorf("dead letter: payload of %d bytes exceeds %d", len(e.Payload), MaxPayload)
	}
	if err := s.registerStage(ctx, e.Stage); err != nil {
		return e, err
	}
	now := s.now().UTC()
	e.ID = EntryID(e.Stage, e.Kind, e.Payload)
	stored, enc, err := encodePayload(e.Payload)
	if err != nil {
		return e, err
	}
	var chunks [][]byte
	if len(stored) > InlinePayload {
		chunks = split(stored, ChunkSize)
		if err := s.putChunks(ctx, e.Stage, e.ID, chunks); err != nil {
			return e, err
		}
	}
	meta, _ := json.Marshal(e.Meta)
	values := map[string]types.AttributeValue{
		":k": sv(e.Kind), ":r": sv(e.Reason), ":e": sv(truncate(e.Error)),
		":enc": sv(enc), ":n": &types.AttributeValueMemberN{Value: strconv.Itoa(len(chunks))},
		":m": sv(string(meta)), ":now": sv(now.Format(time.RFC3339Nano)), ":one": &types.AttributeValueMemberN{Value: "1"},
	}
	update := "SET kind = :k, reason = :r, err = :e, enc = :enc, chunks = :n, meta = :m, updatedAt = :now, createdAt = if_not_exists(createdAt, :now)"
	if chunks == nil {
		update += ", payload = :p ADD #count :one"
		values[":p"] = &types.AttributeValueMemberB{Value: stored}
	} else {
		update += " REMOVE payload ADD #count :one"
	}
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       key(e.Stage, e.ID),
		UpdateExpression:          aws.String(update),
		ExpressionAttributeNames:  map[string]string{"#count": "count"},
		ExpressionAttributeValues: values,
		ReturnValues:              types.ReturnValueAllNew,
	})
	if err != nil {
		return e, fmt.Errorf("dead letter put: %w", err)
	}
	got := decode(out.Attributes)
	got.Payload = e.Payload
	return got, nil
}

// encodePayload returns the payload as stored: as it is when it fits in one item, else
// gzip-compressed when that is smaller.
func encodePayload(p []byte) ([]byte, string, error) {
	if len(p) <= InlinePayload {
		return p, "", nil
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, "", fmt.Errorf("dead letter compress: %w", err)
	}
	_, werr := zw.Write(p)
	if err := errors.Join(werr, zw.Close()); err != nil {
		return nil, "", fmt.Errorf("dead letter compress: %w", err)
	}
	if buf.Len() >= len(p) {
		return p, "", nil // incompressible: chunk it as it is
	}
	return buf.Bytes(), encGzip, nil
}

func decodePayload(stored []byte, enc string) ([]byte, error) {
	if enc != encGzip {
		return stored, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(stored))
	if err != nil {
		return nil, fmt.Errorf("dead letter decompress: %w", err)
	}
	out, err := io.ReadAll(io.LimitReader(zr, MaxPayload+1))
	if err != nil {
		return nil, fmt.Errorf("dead letter decompress: %w", err)
	}
	return out, nil
}

func split(b []byte, size int) [][]byte {
	var out [][]byte
	for len(b) > size {
		out = append(out, b[:size])
		b = b[size:]
	}
	return append(out, b)
}

func truncate(s string) string {
	if len(s) <= maxErrorText {
		return s
	}
	return strings.ToValidUTF8(s[:maxErrorText], "") + "…"
}

func chunkKey(stage, id string, n int) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{store.PK: sv(prefix + stage), store.SK: sv(fmt.Sprintf("%s%s#%04d", chunkPrefix, id, n))}
}

func (s *Store) putChunks(ctx context.Context, stage, id string, chunks [][]byte) error {
	for n, c := range chunks {
		item := chunkKey(stage, id, n)
		item["data"] = &types.AttributeValueMemberB{Value: c}
		if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: item}); err != nil {
			return fmt.Errorf("dead letter put chunk %d of %d: %w", n+1, len(chunks), err)
		}
	}
	return nil
}

// payload reads an entry's payload back whole from its item or its chunks.
func (s *Store) payload(ctx context.Context, it map[string]types.AttributeValue, e *Entry) error {
	n := 0
	if v, ok := it["chunks"].(*types.AttributeValueMemberN); ok {
		n, _ = strconv.Atoi(v.Value)
	}
	enc := ""
	if v, ok := it["enc"].(*types.AttributeValueMemberS); ok {
		enc = v.Value
	}
	stored := e.Payload
	if n > 0 {
		var err error
		if stored, err = s.readChunks(ctx, e.Stage, e.ID, n); err != nil {
			return err
		}
	}
	p, err := decodePayload(stored, enc)
	if err != nil {
		return err
	}
	e.Payload = p
	return nil
}

func (s *Store) readChunks(ctx context.Context, stage, id string, n int) ([]byte, error) {
	var buf bytes.Buffer
	in := &dynamodb.QueryInput{
		TableName:              aws.String(s.table),
		KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :c)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": sv(prefix + stage), ":c": sv(chunkPrefix + id + "#"),
		},
		ConsistentRead: aws.Bool(true),
	}
	got := 0
	pages := dynamodb.NewQueryPaginator(s.db, in)
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("dead letter read chunks: %w", err)
		}
		for _, it := range out.Items {
			if v, ok := it["data"].(*types.AttributeValueMemberB); ok && got < n {
				buf.Write(v.Value)
				got++
			}
		}
	}
	if got != n {
		return nil, fmt.Errorf("dead letter %s: %d of %d payload chunks found", id, got, n)
	}
	return buf.Bytes(), nil
}

func decode(it map[string]types.AttributeValue) Entry {
	s := func(n string) string {
		if v, ok := it[n].(*types.AttributeValueMemberS); ok {
			return v.Value
		}
		return ""
	}
	e := Entry{
		ID: strings.TrimPrefix(s(store.SK), skPrefix), Stage: strings.TrimPrefix(s(store.PK), prefix),
		Kind: s("kind"), Reason: s("reason"), Error: s("err"), LastReplayError: s("replayErr"),
	}
	if v, ok := it["payload"].(*types.AttributeValueMemberB); ok {
		e.Payload = v.Value
	}
	if v, ok := it["count"].(*types.AttributeValueMemberN); ok {
		e.Count, _ = strconv.Atoi(v.Value)
	}
	_ = json.Unmarshal([]byte(s("meta")), &e.Meta)
	e.CreatedAt, _ = time.Parse(time.RFC3339Nano, s("createdAt"))
	e.UpdatedAt, _ = time.Parse(time.RFC3339Nano, s("updatedAt"))
	return e
}

// Get returns one entry or ErrNotFound.
func (s *Store) Get(ctx context.Context, stage, id string) (Entry, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: key(stage, id), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return Entry{}, fmt.Errorf("dead letter get: %w", err)
	}
	if out.Item == nil {
		return Entry{}, ErrNotFound
	}
	e := decode(out.Item)
	if err := s.payload(ctx, out.Item, &e); err != nil {
		return Entry{}, err
	}
	return e, nil
}

// List returns up to limit entries of a stage (ordered by id) and a cursor for the next page
// ("" when there is none).
func (s *Store) List(ctx context.Context, stage string, limit int, next string) ([]Entry, string, error) {
	if limit <= 0 || limit > 100 {
		limit = 100
	}
	in := &dynamodb.QueryInput{
		TableName:              aws.String(s.table),
		KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :e)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": sv(prefix + stage), ":e": sv(skPrefix),
		},
		Limit: aws.Int32(int32(limit)),
	}
	if next != "" {
		in.ExclusiveStartKey = key(stage, next)
	}
	out, err := s.db.Query(ctx, in)
	if err != nil {
		return nil, "", fmt.Errorf("dead letter list: %w", err)
	}
	entries := make([]Entry, 0, len(out.Items))
	for _, it := range out.Items {
		e := decode(it)
		if err := s.payload(ctx, it, &e); err != nil {
			return nil, "", err
		}
		entries = append(entries, e)
	}
	cursor := ""
	if out.LastEvaluatedKey != nil && len(entries) > 0 {
		cursor = entries[len(entries)-1].ID
	}
	return entries, cursor, nil
}

// Delete removes an entry and its payload chunks (no error if it is already gone).
func (s *Store) Delete(ctx context.Context, stage, id string) error {
	out, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(s.table), Key: key(stage, id), ReturnValues: types.ReturnValueAllOld})
	if err != nil {
		return fmt.Errorf("dead letter delete: %w", err)
	}
	n := 0
	if v, ok := out.Attributes["chunks"].(*types.AttributeValueMemberN); ok {
		n, _ = strconv.Atoi(v.Value)
	}
	for i := 0; i < n; i++ {
		if _, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(s.table), Key: chunkKey(stage, id, i)}); err != nil {
			return fmt.Errorf("dead letter delete chunk %d: %w", i, err)
		}
	}
	return nil
}

func (s *Store) markReplayFailed(ctx context.Context, stage, id string, replayErr error) error {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       key(stage, id),
		UpdateExpression:          aws.String("SET replayErr = :e, updatedAt = :now"),
		ConditionExpression:       aws.String("attribute_exists(pk)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":e": sv(truncate(replayErr.Error())), ":now": sv(s.now().UTC().Format(time.RFC3339Nano))},
	})
	if err != nil {
		return fmt.Errorf("dead letter mark: %w", err)
	}
	return nil
}

// Replayer processes a dead letter again through its stage; nil means it is done.
type Replayer interface {
	Replay(ctx context.Context, e Entry) error
}

// ReplayFunc adapts a function to Replayer.
type ReplayFunc func(ctx context.Context, e Entry) error

// Replay calls f.
func (f ReplayFunc) Replay(ctx context.Context, e Entry) error { return f(ctx, e) }

// Service is what the admin API mounts: list, inspect, replay and discard dead letters.
type Service struct {
	store     *Store
	replayers map[string]Replayer
}

// NewService returns a service; replayers maps a stage name to the stage's replayer.
func NewService(s *Store, replayers map[string]Replayer) *Service {
	return &Service{store: s, replayers: replayers}
}

// ErrNoReplayer is returned when no replayer is registered for an entry's stage.
var ErrNoReplayer = errors.New("no replayer for this stage")

// List returns a page of a stage's dead letters.
func (s *Service) List(ctx context.Context, stage string, limit int, next string) ([]Entry, string, error) {
	return s.store.List(ctx, stage, limit, next)
}

// Get returns one dead letter or ErrNotFound.
func (s *Service) Get(ctx context.Context, stage, id string) (Entry, error) {
	return s.store.Get(ctx, stage, id)
}

// Delete discards a dead letter.
func (s *Service) Delete(ctx context.Context, stage, id string) error {
	return s.store.Delete(ctx, stage, id)
}

// Replay runs a dead letter through its stage again. On success the entry is deleted; on
// failure it stays, with the error recorded, and the error is returned.
func (s *Service) Replay(ctx context.Context, stage, id string) error {
	e, err := s.store.Get(ctx, stage, id)
	if err != nil {
		return err
	}
	r, ok := s.replayers[stage]
	if !ok {
		return fmt.Errorf("%w: %q", ErrNoReplayer, stage)
	}
	if rerr := r.Replay(ctx, e); rerr != nil {
		if merr := s.store.markReplayFailed(ctx, stage, id, rerr); merr != nil {
			return errors.Join(fmt.Errorf("replay %s/%s: %w", stage, id, rerr), merr)
		}
		return fmt.Errorf("replay %s/%s: %w", stage, id, rerr)
	}
	return s.store.Delete(ctx, stage, id)
}

// ReplayReserve is the time ReplayAll leaves before its context's deadline: it starts no replay
// with less than this left, so the function answers before it is timed out.
const ReplayReserve = 5 * time.Second

// DefaultReplayBudget bounds ReplayAll when its context has no deadline.
const DefaultReplayBudget = 25 * time.Second

// ReplayAllResult is what one ReplayAll call did. Remaining counts the entries after Next that
// this sweep has not tried yet; pass Next to the next call to continue ("" when done).
type ReplayAllResult struct {
	Replayed  int    `json:"replayed"`
	Failed    int    `json:"failed"`
	Remaining int    `json:"remaining"`
	Next      string `json:"next"`
}

// ReplayAll replays the entries of a stage once each, in id order, starting after the entry id
// next ("" for the beginning), until they are done or the context's deadline (less
// ReplayReserve) is near. Entries that succeed are removed; those that fail stay with the error.
func (s *Service) ReplayAll(ctx context.Context, stage, next string) (ReplayAllResult, error) {
	var res ReplayAllResult
	if _, ok := s.replayers[stage]; !ok {
		return res, fmt.Errorf("%w: %q", ErrNoReplayer, stage)
	}
	plan := budget.New(ctx, ReplayReserve, DefaultReplayBudget)
	cursor := next
	for {
		es, more, err := s.store.List(ctx, stage, 100, cursor)
		if err != nil {
			return res, err
		}
		for _, e := range es {
			if plan.Over() {
				return s.stopAt(ctx, stage, cursor, res)
			}
			if err := s.Replay(ctx, stage, e.ID); err != nil {
				res.Failed++
			} else {
				res.Replayed++
			}
			cursor = e.ID
		}
		if more == "" {
			return res, nil
		}
		cursor = more
	}
}

// stopAt ends a sweep that ran out of time before the entry after cursor: it counts what is left
// (bookkeeping, on a context that the near deadline does not cancel) and says where to go on.
func (s *Service) stopAt(ctx context.Context, stage, cursor string, res ReplayAllResult) (ReplayAllResult, error) {
	res.Next = cursor
	if cursor == "" {
		res.Next = "0" // before every id: ids are lower-case hex
	}
	cctx, cancel := budget.Bookkeeping(ctx, 2*time.Second)
	defer cancel()
	n, err := s.store.countAfter(cctx, stage, cursor)
	if err != nil {
		res.Remaining = -1 // unknown; Next still says where to continue
		return res, nil
	}
	res.Remaining = n
	return res, nil
}

// countAfter counts a stage's entries with an id after the given one.
func (s *Store) countAfter(ctx context.Context, stage, after string) (int, error) {
	in := &dynamodb.QueryInput{
		TableName:              aws.String(s.table),
		KeyConditionExpression: aws.String("pk = :pk AND sk BETWEEN :from AND :to"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": sv(prefix + stage), ":from": sv(skPrefix + after + "\x00"), ":to": sv(skPrefix + "\U0010FFFF"),
		},
		Select: types.SelectCount,
	}
	n := 0
	pages := dynamodb.NewQueryPaginator(s.db, in)
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if err != nil {
			return 0, fmt.Errorf("dead letter count: %w", err)
		}
		n += int(out.Count)
	}
	return n, nil
}
