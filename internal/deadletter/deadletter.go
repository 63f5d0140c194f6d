// Package deadletter keeps records a pipeline stage could not process, so that they never block
// a shard and are never dropped: an operator lists them, fixes the cause (a rule, a bug) and
// replays them through the stage that failed.
//
// Keys in the shared table: `DLQ#<stage>` / `ENTRY#<id>`. The id is derived from the stage, the
// kind and the payload, so dead-lettering the same record twice keeps one entry (with the
// latest error and a count).
package deadletter

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/serverless-cdp/cdp/internal/store"
)

const (
	prefix   = "DLQ#"
	skPrefix = "ENTRY#"
	// MaxPayload is the largest payload an entry holds (DynamoDB items are at most 400 KB).
	MaxPayload = 350 << 10
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

// API is the part of the DynamoDB client the store uses.
type API interface {
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

// Store keeps dead letters in the shared table.
type Store struct {
	db    API
	table string
	now   func() time.Time
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
	now := s.now().UTC()
	e.ID = EntryID(e.Stage, e.Kind, e.Payload)
	meta, _ := json.Marshal(e.Meta)
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(s.table),
		Key:                      key(e.Stage, e.ID),
		UpdateExpression:         aws.String("SET kind = :k, reason = :r, err = :e, payload = :p, meta = :m, updatedAt = :now, createdAt = if_not_exists(createdAt, :now) ADD #count :one"),
		ExpressionAttributeNames: map[string]string{"#count": "count"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":k": sv(e.Kind), ":r": sv(e.Reason), ":e": sv(e.Error), ":p": &types.AttributeValueMemberB{Value: e.Payload},
			":m": sv(string(meta)), ":now": sv(now.Format(time.RFC3339Nano)), ":one": &types.AttributeValueMemberN{Value: "1"},
		},
		ReturnValues: types.ReturnValueAllNew,
	})
	if err != nil {
		return e, fmt.Errorf("dead letter put: %w", err)
	}
	return decode(out.Attributes), nil
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
	return decode(out.Item), nil
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
		entries = append(entries, decode(it))
	}
	cursor := ""
	if out.LastEvaluatedKey != nil && len(entries) > 0 {
		cursor = entries[len(entries)-1].ID
	}
	return entries, cursor, nil
}

// Delete removes an entry (no error if it is already gone).
func (s *Store) Delete(ctx context.Context, stage, id string) error {
	_, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(s.table), Key: key(stage, id)})
	if err != nil {
		return fmt.Errorf("dead letter delete: %w", err)
	}
	return nil
}

func (s *Store) markReplayFailed(ctx context.Context, stage, id string, replayErr error) error {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       key(stage, id),
		UpdateExpression:          aws.String("SET replayErr = :e, updatedAt = :now"),
		ConditionExpression:       aws.String("attribute_exists(pk)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":e": sv(replayErr.Error()), ":now": sv(s.now().UTC().Format(time.RFC3339Nano))},
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

// ReplayAll replays every entry of a stage once and returns how many succeeded and failed.
func (s *Service) ReplayAll(ctx context.Context, stage string) (ok, failed int, err error) {
	next := ""
	var ids []string
	for {
		es, cur, err := s.store.List(ctx, stage, 100, next)
		if err != nil {
			return ok, failed, err
		}
		for _, e := range es {
			ids = append(ids, e.ID)
		}
		if cur == "" {
			break
		}
		next = cur
	}
	for _, id := range ids {
		if err := s.Replay(ctx, stage, id); err != nil {
			if errors.Is(err, ErrNoReplayer) {
				return ok, failed, err
			}
			failed++
			continue
		}
		ok++
	}
	return ok, failed, nil
}
