//go:build integration

package segment

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/serverless-cdp/cdp/internal/store"
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

// ruMeter wraps the DynamoDB client of the store under test. Rules: writes 1 WRU per KB of
// item (at least 1; a delete 1), doubled inside a transaction, plus 1 per KB for an item put in
// or deleted from gsi1; reads 0.5 RRU per 4 KB (eventually consistent) or 1 (strongly
// consistent), at least that for a missing item or an empty query.
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

func (m *ruMeter) add(f func(u *ruUsage)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.u.Calls++
	f(&m.u)
}

func ruUnits(size, per int) float64 { return float64(max(1, (size+per-1)/per)) }

func readRate(consistent *bool) float64 {
	if aws.ToBool(consistent) {
		return 1
	}
	return 0.5
}

// gsiWrite is the index write an item's put or delete costs (the schedule items are indexed).
func gsiWrite(item map[string]types.AttributeValue) float64 {
	if _, ok := item[store.GSI1PK]; ok {
		return ruUnits(store.ItemSize(item), 1024)
	}
	if pk := store.GetS(item, store.PK); strings.HasPrefix(pk, pkSchedPfx) {
		return 1 // a delete of a schedule item: its index entry goes too
	}
	return 0
}

func (m *ruMeter) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	start := time.Now()
	out, err := m.Client.GetItem(ctx, in, o...)
	m.d.Add(int64(time.Since(start)))
	if err == nil {
		m.add(func(u *ruUsage) { u.RRU += readRate(in.ConsistentRead) * ruUnits(store.ItemSize(out.Item), 4096) })
	}
	return out, err
}

func (m *ruMeter) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	start := time.Now()
	out, err := m.Client.Query(ctx, in, o...)
	m.d.Add(int64(time.Since(start)))
	if err == nil {
		size := 0
		for _, it := range out.Items {
			size += store.ItemSize(it)
		}
		m.add(func(u *ruUsage) { u.RRU += readRate(in.ConsistentRead) * ruUnits(size, 4096) })
	}
	return out, err
}

func (m *ruMeter) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	start := time.Now()
	out, err := m.Client.PutItem(ctx, in, o...)
	m.d.Add(int64(time.Since(start)))
	m.add(func(u *ruUsage) { // a failed condition is charged too
		g := gsiWrite(in.Item)
		u.Puts++
		u.PutBytes += store.ItemSize(in.Item)
		u.WRU += ruUnits(store.ItemSize(in.Item), 1024) + g
		u.GSIWRU += g
	})
	return out, err
}

func (m *ruMeter) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	start := time.Now()
	out, err := m.Client.UpdateItem(ctx, in, o...)
	m.d.Add(int64(time.Since(start)))
	m.add(func(u *ruUsage) {
		u.WRU += ruUnits(store.ItemSize(in.Key)+store.ItemSize(in.ExpressionAttributeValues), 1024)
	})
	return out, err
}

func (m *ruMeter) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	start := time.Now()
	out, err := m.Client.DeleteItem(ctx, in, o...)
	m.d.Add(int64(time.Since(start)))
	m.add(func(u *ruUsage) {
		g := gsiWrite(in.Key)
		u.WRU += 1 + g
		u.GSIWRU += g
	})
	return out, err
}

func (m *ruMeter) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	start := time.Now()
	out, err := m.Client.BatchWriteItem(ctx, in, o...)
	m.d.Add(int64(time.Since(start)))
	m.add(func(u *ruUsage) {
		for _, reqs := range in.RequestItems {
			for _, r := range reqs {
				var g float64
				if r.PutRequest != nil {
					g = gsiWrite(r.PutRequest.Item)
					u.WRU += ruUnits(store.ItemSize(r.PutRequest.Item), 1024)
				} else {
					g = gsiWrite(r.DeleteRequest.Key)
					u.WRU++
				}
				u.WRU += g
				u.GSIWRU += g
			}
		}
	})
	return out, err
}

func (m *ruMeter) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	start := time.Now()
	out, err := m.Client.TransactWriteItems(ctx, in, o...)
	m.d.Add(int64(time.Since(start)))
	m.add(func(u *ruUsage) {
		u.TxCalls++
		for _, it := range in.TransactItems {
			var g float64
			switch {
			case it.Put != nil:
				g = gsiWrite(it.Put.Item)
				u.WRU += 2 * ruUnits(store.ItemSize(it.Put.Item), 1024)
			case it.Update != nil:
				u.WRU += 2 * ruUnits(store.ItemSize(it.Update.Key)+store.ItemSize(it.Update.ExpressionAttributeValues), 1024)
			case it.Delete != nil:
				g = gsiWrite(it.Delete.Key)
				u.WRU += 2
			default:
				u.WRU += 2
			}
			u.WRU += g
			u.GSIWRU += g
		}
	})
	return out, err
}
