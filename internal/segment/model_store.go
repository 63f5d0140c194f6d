package segment

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/serverless-cdp/cdp/internal/predict"
	"github.com/serverless-cdp/cdp/internal/store"
	"github.com/serverless-cdp/cdp/internal/store/ru"
)

// TrainingStore keeps the predictive traits' training runs (item TRAIN#<trait id> in the
// definitions' partition, loaded with them), the features a run collected (chunks in a
// partition of their own, expiring) and the published models (MODEL#<trait id>, gzip JSON,
// loaded with the definitions). Every call reports the request units it consumed.
type TrainingStore interface {
	// PutTraining stores a run if the stored one's Version is t.Version-1 (none stored for 1);
	// ErrConflict otherwise.
	PutTraining(ctx context.Context, t *Training) (Units, error)
	// PutModel stores a trait's model; one encoded over MaxModelBytes is refused (ErrTooLarge).
	PutModel(ctx context.Context, traitID string, m *predict.Model) (Units, error)
	// LoadStates reads the states of profiles (eventually consistent), in the order of ids:
	// nil for a profile with none.
	LoadStates(ctx context.Context, ids []string) ([]*State, Units, error)
	// PutChunk stores chunk n of a run's features (idempotent), expiring at expires; one
	// encoded over MaxChunkBytes is refused (ErrTooLarge).
	PutChunk(ctx context.Context, traitID, runID string, n int, profiles []predict.Profile, expires time.Time) (Units, error)
	// Chunks calls fn with the run's chunks 0..n-1, in order.
	Chunks(ctx context.Context, traitID, runID string, n int, fn func([]predict.Profile) error) (Units, error)
}

// Units are DynamoDB request units (ConsumedCapacity; the in-memory store models them).
type Units struct{ Read, Write float64 }

func (u *Units) add(o Units) { u.Read += o.Read; u.Write += o.Write }

// Limits of the training items.
const (
	MaxModelBytes = 350 << 10 // a model item (gzip JSON), within DynamoDB's 400 KB
	MaxChunkBytes = 300 << 10 // a chunk of features (gzip JSON)
)

// Keys of the training items.
const (
	skModelPfx    = "MODEL#"
	skTrainPfx    = "TRAIN#"
	pkChunkPfx    = "PSEGTRAIN#"
	skChunkPfx    = "C#"
	loadStatesMax = 100 // keys per BatchGetItem
)

func chunkKey(traitID, runID string, n int) (string, string) {
	return pkChunkPfx + traitID + "#" + runID, skChunkPfx + fmt.Sprintf("%06d", n)
}

// gzipJSON encodes v as gzip JSON.
func gzipJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzipWriter(&buf)
	defer releaseGzip(zw)
	if err := json.NewEncoder(zw).Encode(v); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// gunzipJSON decodes gzip JSON into v.
func gunzipJSON(b []byte, v any) error {
	zr, err := gzipReader(bytes.NewReader(b))
	if err != nil {
		return err
	}
	defer releaseGunzip(zr)
	raw, err := io.ReadAll(zr)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}

func encodeModel(traitID string, m *predict.Model) ([]byte, error) {
	b, err := gzipJSON(m)
	if err != nil {
		return nil, fmt.Errorf("encode model of %s: %w", traitID, err)
	}
	if len(b) > MaxModelBytes {
		return nil, fmt.Errorf("model of %s: %d bytes: %w (limit %d)", traitID, len(b), ErrTooLarge, MaxModelBytes)
	}
	return b, nil
}

func encodeChunk(profiles []predict.Profile) ([]byte, error) {
	b, err := gzipJSON(profiles)
	if err != nil {
		return nil, fmt.Errorf("encode features: %w", err)
	}
	if len(b) > MaxChunkBytes {
		return nil, fmt.Errorf("chunk of %d features: %d bytes: %w (limit %d)", len(profiles), len(b), ErrTooLarge, MaxChunkBytes)
	}
	return b, nil
}

var capacity = types.ReturnConsumedCapacityTotal

func reported(out any) Units {
	r, w := ru.Reported(out)
	return Units{Read: r, Write: w}
}

// PutTraining stores a run (see TrainingStore).
func (st *Store) PutTraining(ctx context.Context, t *Training) (Units, error) {
	data, err := json.Marshal(t)
	if err != nil {
		return Units{}, fmt.Errorf("encode training: %w", err)
	}
	c := versionCond("ver", t.Version-1)
	out, err := st.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(st.table),
		Item:                marshal(defItem{PK: pkDefs, SK: skTrainPfx + t.TraitID, Data: string(data), Ver: t.Version}),
		ConditionExpression: c.Condition(), ExpressionAttributeNames: c.Names(), ExpressionAttributeValues: c.Values(),
		ReturnConsumedCapacity: capacity})
	if store.IsConditionFailed(err) {
		return Units{Write: 1}, ErrConflict
	}
	if err != nil {
		return Units{}, fmt.Errorf("put training of %s: %w", t.TraitID, err)
	}
	return reported(out), nil
}

// PutModel stores a model (see TrainingStore).
func (st *Store) PutModel(ctx context.Context, traitID string, m *predict.Model) (Units, error) {
	b, err := encodeModel(traitID, m)
	if err != nil {
		return Units{}, err
	}
	out, err := st.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(st.table),
		Item: marshal(defItem{PK: pkDefs, SK: skModelPfx + traitID, Blob: b}), ReturnConsumedCapacity: capacity})
	if err != nil {
		return Units{}, fmt.Errorf("put model of %s: %w", traitID, err)
	}
	return reported(out), nil
}

// LoadStates reads states in batches of 100 keys (see TrainingStore).
func (st *Store) LoadStates(ctx context.Context, ids []string) ([]*State, Units, error) {
	var u Units
	out := make([]*State, len(ids))
	pos := make(map[string]int, len(ids))
	for i, id := range ids {
		pos[id] = i
	}
	for lo := 0; lo < len(ids); lo += loadStatesMax {
		keys := make([]map[string]types.AttributeValue, 0, loadStatesMax)
		for _, id := range ids[lo:min(len(ids), lo+loadStatesMax)] {
			keys = append(keys, store.Key(pkStatePfx+id, skState))
		}
		if err := st.batchGet(ctx, keys, &u, func(b blobItem) error {
			pid := strings.TrimPrefix(b.PK, pkStatePfx)
			s, err := decodeState(b.Data, b.Ver)
			if err != nil {
				return fmt.Errorf("profile %s: %w", pid, err)
			}
			out[pos[pid]] = s
			return nil
		}); err != nil {
			return nil, u, err
		}
	}
	return out, u, nil
}

// batchGet reads keys (at most 100), retrying unprocessed ones, and calls fn per item found.
func (st *Store) batchGet(ctx context.Context, keys []map[string]types.AttributeValue, u *Units, fn func(blobItem) error) error {
	for attempt := 0; len(keys) > 0; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(min(attempt, 6)) * 50 * time.Millisecond):
			}
		}
		res, err := st.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{ReturnConsumedCapacity: capacity,
			RequestItems: map[string]types.KeysAndAttributes{st.table: {Keys: keys, ProjectionExpression: aws.String("pk, #d, ver"),
				ExpressionAttributeNames: map[string]string{"#d": "data"}}}})
		if err != nil {
			return fmt.Errorf("load states: %w", err)
		}
		u.add(reported(res))
		for _, it := range res.Responses[st.table] {
			var b blobItem
			if err := attributevalue.UnmarshalMap(it, &b); err != nil {
				return fmt.Errorf("load states: %w", err)
			}
			if err := fn(b); err != nil {
				return err
			}
		}
		keys = res.UnprocessedKeys[st.table].Keys
	}
	return nil
}

type chunkItem struct {
	PK   string `dynamodbav:"pk"`
	SK   string `dynamodbav:"sk"`
	Blob []byte `dynamodbav:"blob"`
	TTL  int64  `dynamodbav:"ttl"`
}

// PutChunk stores a chunk of features (see TrainingStore).
func (st *Store) PutChunk(ctx context.Context, traitID, runID string, n int, profiles []predict.Profile, expires time.Time) (Units, error) {
	b, err := encodeChunk(profiles)
	if err != nil {
		return Units{}, err
	}
	pk, sk := chunkKey(traitID, runID, n)
	out, err := st.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(st.table),
		Item: marshal(chunkItem{PK: pk, SK: sk, Blob: b, TTL: expires.Unix()}), ReturnConsumedCapacity: capacity})
	if err != nil {
		return Units{}, fmt.Errorf("put features chunk %d: %w", n, err)
	}
	return reported(out), nil
}

// Chunks reads a run's chunks in order (see TrainingStore).
func (st *Store) Chunks(ctx context.Context, traitID, runID string, n int, fn func([]predict.Profile) error) (Units, error) {
	var u Units
	pk, _ := chunkKey(traitID, runID, 0)
	in := st.partition(pk)
	in.ReturnConsumedCapacity = capacity
	seen := 0
	p := dynamodb.NewQueryPaginator(st.db, in)
	for p.HasMorePages() && seen < n {
		out, err := p.NextPage(ctx)
		if err != nil {
			return u, fmt.Errorf("read features chunks: %w", err)
		}
		u.add(reported(out))
		for _, it := range out.Items {
			var c chunkItem
			if err := attributevalue.UnmarshalMap(it, &c); err != nil {
				return u, fmt.Errorf("read features chunk: %w", err)
			}
			k, _ := strconv.Atoi(strings.TrimPrefix(c.SK, skChunkPfx))
			if k >= n {
				continue // written by an attempt the cursor did not record
			}
			var ps []predict.Profile
			if err := gunzipJSON(c.Blob, &ps); err != nil {
				return u, fmt.Errorf("read features chunk %d: %w", k, err)
			}
			if err := fn(ps); err != nil {
				return u, err
			}
			seen++
		}
	}
	if seen < n {
		return u, fmt.Errorf("read features: %d of %d chunks found (expired?)", seen, n)
	}
	return u, nil
}
