//go:build integration

package segment

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/serverless-cdp/cdp/internal/store"
	"github.com/serverless-cdp/cdp/internal/store/ru"
)

// ruUsage is what went through an ruMeter: request units by AWS's pricing rules, computed from
// the item sizes in requests and responses (DynamoDB Local's ConsumedCapacity is unreliable: a
// flat figure for transactions, nothing for keys not found), and the number of calls.
type ruUsage struct {
	RRU, WRU float64
	GSIWRU   float64 // writes to gsi1 (the schedule index), included in WRU
	Calls    int
	TxCalls  int // TransactWriteItems calls
	PutBytes int // item bytes written by PutItem
	Puts     int // PutItem calls
}

// ruMeter wraps the DynamoDB client of the store under test and models its calls'
// request units (internal/store/ru); a schedule item is in gsi1, so its delete removes its
// index entry too.
type ruMeter struct {
	store.Client
	mu sync.Mutex
	u  ruUsage
	d  atomic.Int64 // time spent in calls
}

func (m *ruMeter) usage() ruUsage {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.u
}

// scheduled tells a schedule item's key (the schedule items are in gsi1).
func scheduled(key ru.Item) bool { return strings.HasPrefix(store.GetS(key, store.PK), pkSchedPfx) }

// record meters one call: params its input, result its output (a nil pointer if it failed).
func (m *ruMeter) record(start time.Time, params, result any) {
	m.d.Add(int64(time.Since(start)))
	u := ru.Model{IndexedKey: scheduled}.Call(params, result)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.u.Calls++
	m.u.RRU += u.Read
	m.u.WRU += u.Write
	m.u.GSIWRU += u.Index
	switch in := params.(type) {
	case *dynamodb.TransactWriteItemsInput:
		m.u.TxCalls++
	case *dynamodb.PutItemInput:
		m.u.Puts++
		m.u.PutBytes += store.ItemSize(in.Item)
	}
}

func (m *ruMeter) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	start := time.Now()
	out, err := m.Client.GetItem(ctx, in, o...)
	if err == nil {
		m.record(start, in, out)
	}
	return out, err
}

func (m *ruMeter) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	start := time.Now()
	out, err := m.Client.Query(ctx, in, o...)
	if err == nil {
		m.record(start, in, out)
	}
	return out, err
}

// PutItem: a put whose condition fails is charged too (no index write).
func (m *ruMeter) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	start := time.Now()
	out, err := m.Client.PutItem(ctx, in, o...)
	m.record(start, in, out)
	return out, err
}

func (m *ruMeter) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	start := time.Now()
	out, err := m.Client.UpdateItem(ctx, in, o...)
	m.record(start, in, out)
	return out, err
}

func (m *ruMeter) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	start := time.Now()
	out, err := m.Client.DeleteItem(ctx, in, o...)
	m.record(start, in, out)
	return out, err
}

func (m *ruMeter) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	start := time.Now()
	out, err := m.Client.BatchWriteItem(ctx, in, o...)
	m.record(start, in, out)
	return out, err
}

func (m *ruMeter) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	start := time.Now()
	out, err := m.Client.TransactWriteItems(ctx, in, o...)
	m.record(start, in, out)
	return out, err
}
