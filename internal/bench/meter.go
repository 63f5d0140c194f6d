package bench

import (
	"context"
	"sort"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go/middleware"

	"github.com/serverless-cdp/cdp/internal/store"
)

// StageUsage is what one stage consumed. Reported* are the ConsumedCapacity figures the DynamoDB
// endpoint returned (ReturnConsumedCapacity=TOTAL is forced on every call); Model* apply AWS's
// pricing rules to the item sizes seen in requests and responses, because DynamoDB Local reports
// a flat figure for transactions and nothing for keys that are not found.
type StageUsage struct {
	Calls       int     `json:"dynamodb_calls"`
	ReportedRRU float64 `json:"reported_rru"`
	ReportedWRU float64 `json:"reported_wru"`
	ModelRRU    float64 `json:"model_rru"`
	ModelWRU    float64 `json:"model_wru"`
	// ModelIndexWRU is the part of ModelWRU spent on the table's global secondary index
	// (projection ALL): a put of an item carrying the index keys writes it there too, at the
	// standard rate even inside a transaction.
	ModelIndexWRU    float64 `json:"model_index_wru"`
	KinesisRecords   int     `json:"kinesis_records"`
	KinesisBytes     int64   `json:"kinesis_bytes"`
	KinesisBilledKiB int64   `json:"kinesis_billed_kib"`
	KinesisPutUnits  int64   `json:"kinesis_put_payload_units"`
	Invocations      int     `json:"invocations"`
	Records          int     `json:"records_in"`
	BusyMs           float64 `json:"busy_ms"`
	// MaxItemBytes is the largest item the stage wrote (put, or an update's key and values)
	// since the meter started or ResetMaxItem.
	MaxItemBytes int `json:"max_item_bytes"`
}

// Meter sums usage per stage. It is safe for concurrent use.
type Meter struct {
	mu     sync.Mutex
	stages map[string]*StageUsage
}

// NewMeter returns an empty meter.
func NewMeter() *Meter { return &Meter{stages: map[string]*StageUsage{}} }

func (m *Meter) with(stage string, f func(u *StageUsage)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u := m.stages[stage]
	if u == nil {
		u = &StageUsage{}
		m.stages[stage] = u
	}
	f(u)
}

// Snapshot copies the per-stage usage.
func (m *Meter) Snapshot() map[string]StageUsage {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]StageUsage, len(m.stages))
	for k, v := range m.stages {
		out[k] = *v
	}
	return out
}

// ResetMaxItem restarts the stage's MaxItemBytes.
func (m *Meter) ResetMaxItem(stage string) {
	m.with(stage, func(u *StageUsage) { u.MaxItemBytes = 0 })
}

// Stages lists the stage names seen, sorted.
func (m *Meter) Stages() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var s []string
	for k := range m.stages {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

// DynamoDB returns a client option that meters every call of the client under stage.
func (m *Meter) DynamoDB(stage string) func(*dynamodb.Options) {
	mw := middleware.InitializeMiddlewareFunc("BenchMeter", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		askCapacity(in.Parameters)
		out, md, err := next.HandleInitialize(ctx, in)
		if err == nil {
			r, w, mr, mw := capacity(in.Parameters, out.Result)
			gw := indexWrites(in.Parameters)
			largest := largestWrite(in.Parameters)
			m.with(stage, func(u *StageUsage) {
				u.MaxItemBytes = max(u.MaxItemBytes, largest)
				u.Calls++
				u.ReportedRRU += r
				u.ReportedWRU += w
				u.ModelRRU += mr
				u.ModelWRU += mw + gw
				u.ModelIndexWRU += gw
			})
		}
		return out, md, err
	})
	return func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
			return s.Initialize.Add(mw, middleware.Before)
		})
	}
}

// Kinesis returns a client option that counts the records and bytes put by stage.
func (m *Meter) Kinesis(stage string) func(*kinesis.Options) {
	mw := middleware.InitializeMiddlewareFunc("BenchMeter", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		out, md, err := next.HandleInitialize(ctx, in)
		var sizes []int
		switch p := in.Parameters.(type) {
		case *kinesis.PutRecordsInput:
			failed := map[int]bool{}
			if res, ok := out.Result.(*kinesis.PutRecordsOutput); ok && err == nil {
				for i, r := range res.Records {
					if r.ErrorCode != nil {
						failed[i] = true
					}
				}
			}
			if err == nil {
				for i, e := range p.Records {
					if !failed[i] {
						sizes = append(sizes, len(e.Data)+len(aws.ToString(e.PartitionKey)))
					}
				}
			}
		case *kinesis.PutRecordInput:
			if err == nil {
				sizes = append(sizes, len(p.Data)+len(aws.ToString(p.PartitionKey)))
			}
		}
		if len(sizes) > 0 {
			m.with(stage, func(u *StageUsage) {
				for _, n := range sizes {
					u.KinesisRecords++
					u.KinesisBytes += int64(n)
					u.KinesisBilledKiB += int64((n + 1023) / 1024 * KinesisIngestRoundingKiB)
					u.KinesisPutUnits += int64((n + KinesisPutUnitBytes - 1) / KinesisPutUnitBytes)
				}
			})
		}
		return out, md, err
	})
	return func(o *kinesis.Options) {
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
			return s.Initialize.Add(mw, middleware.Before)
		})
	}
}

func askCapacity(p any) {
	t := types.ReturnConsumedCapacityTotal
	switch in := p.(type) {
	case *dynamodb.GetItemInput:
		in.ReturnConsumedCapacity = t
	case *dynamodb.PutItemInput:
		in.ReturnConsumedCapacity = t
	case *dynamodb.UpdateItemInput:
		in.ReturnConsumedCapacity = t
	case *dynamodb.DeleteItemInput:
		in.ReturnConsumedCapacity = t
	case *dynamodb.QueryInput:
		in.ReturnConsumedCapacity = t
	case *dynamodb.ScanInput:
		in.ReturnConsumedCapacity = t
	case *dynamodb.BatchGetItemInput:
		in.ReturnConsumedCapacity = t
	case *dynamodb.BatchWriteItemInput:
		in.ReturnConsumedCapacity = t
	case *dynamodb.TransactWriteItemsInput:
		in.ReturnConsumedCapacity = t
	case *dynamodb.TransactGetItemsInput:
		in.ReturnConsumedCapacity = t
	}
}

// reported splits ConsumedCapacity into read and write units; CapacityUnits alone is attributed
// to the kind of the operation.
func reported(read bool, cc ...types.ConsumedCapacity) (r, w float64) {
	for _, c := range cc {
		cr, cw := aws.ToFloat64(c.ReadCapacityUnits), aws.ToFloat64(c.WriteCapacityUnits)
		if cr == 0 && cw == 0 {
			if read {
				cr = aws.ToFloat64(c.CapacityUnits)
			} else {
				cw = aws.ToFloat64(c.CapacityUnits)
			}
		}
		r += cr
		w += cw
	}
	return r, w
}

func one(c *types.ConsumedCapacity) []types.ConsumedCapacity {
	if c == nil {
		return nil
	}
	return []types.ConsumedCapacity{*c}
}

// capacity returns reported and modelled read and write units of one call. The model:
// reads cost ceil(size/4 KB) × 0.5 (eventually consistent) or × 1 (strongly consistent) per
// item, a missing key the minimum; queries and scans the same on the summed size of what they
// return (at least the minimum); writes ceil(size/1 KB) per item (at least 1), doubled inside
// transactions. Update sizes are those of the request (key + values), not of the stored item,
// so large updated items are underestimated; the reported figure is used when it is larger.
func capacity(params, result any) (rr, rw, mr, mw float64) {
	switch out := result.(type) {
	case *dynamodb.GetItemOutput:
		in := params.(*dynamodb.GetItemInput)
		rr, rw = reported(true, one(out.ConsumedCapacity)...)
		mr = readFactor(in.ConsistentRead) * max(1, kb(store.ItemSize(out.Item), 4096))
	case *dynamodb.PutItemOutput:
		in := params.(*dynamodb.PutItemInput)
		rr, rw = reported(false, one(out.ConsumedCapacity)...)
		mw = max(rw, kb(store.ItemSize(in.Item), 1024), 1)
	case *dynamodb.UpdateItemOutput:
		in := params.(*dynamodb.UpdateItemInput)
		rr, rw = reported(false, one(out.ConsumedCapacity)...)
		mw = max(rw, kb(store.ItemSize(in.Key)+store.ItemSize(in.ExpressionAttributeValues), 1024), 1)
	case *dynamodb.DeleteItemOutput:
		rr, rw = reported(false, one(out.ConsumedCapacity)...)
		mw = max(rw, 1)
	case *dynamodb.QueryOutput:
		in := params.(*dynamodb.QueryInput)
		rr, rw = reported(true, one(out.ConsumedCapacity)...)
		mr = max(rr, readFactor(in.ConsistentRead)*max(1, kb(itemsSize(out.Items), 4096)))
	case *dynamodb.ScanOutput:
		in := params.(*dynamodb.ScanInput)
		rr, rw = reported(true, one(out.ConsumedCapacity)...)
		mr = max(rr, readFactor(in.ConsistentRead)*max(1, kb(itemsSize(out.Items), 4096)))
	case *dynamodb.BatchGetItemOutput:
		rr, rw = reported(true, out.ConsumedCapacity...)
		mr = batchGetReads(params.(*dynamodb.BatchGetItemInput), out)
	case *dynamodb.BatchWriteItemOutput:
		rr, rw = reported(false, out.ConsumedCapacity...)
		mw = batchWriteUnits(params.(*dynamodb.BatchWriteItemInput))
	case *dynamodb.TransactWriteItemsOutput:
		rr, rw = reported(false, out.ConsumedCapacity...)
		mw = transactWriteUnits(params.(*dynamodb.TransactWriteItemsInput))
	case *dynamodb.TransactGetItemsOutput:
		rr, rw = reported(true, out.ConsumedCapacity...)
		for _, r := range out.Responses {
			mr += 2 * max(1, kb(store.ItemSize(r.Item), 4096))
		}
	}
	return rr, rw, mr, mw
}

// readFactor is the read units per 4 KB: a strongly consistent read costs twice an eventual one.
func readFactor(consistent *bool) float64 {
	if aws.ToBool(consistent) {
		return 1
	}
	return 0.5
}

func itemsSize(items []map[string]types.AttributeValue) int {
	n := 0
	for _, it := range items {
		n += store.ItemSize(it)
	}
	return n
}

// batchGetReads models a BatchGetItem: each found item by size, each missing key one unit
// (at the read factor), unprocessed keys not at all.
func batchGetReads(in *dynamodb.BatchGetItemInput, out *dynamodb.BatchGetItemOutput) float64 {
	var mr float64
	for table, ka := range in.RequestItems {
		f := readFactor(ka.ConsistentRead)
		found := out.Responses[table]
		for _, it := range found {
			mr += f * max(1, kb(store.ItemSize(it), 4096))
		}
		missing := len(ka.Keys) - len(found)
		if u, ok := out.UnprocessedKeys[table]; ok {
			missing -= len(u.Keys)
		}
		mr += f * float64(max(0, missing))
	}
	return mr
}

// batchWriteUnits models a BatchWriteItem: puts by size, deletes one unit each.
func batchWriteUnits(in *dynamodb.BatchWriteItemInput) float64 {
	var mw float64
	for _, reqs := range in.RequestItems {
		for _, r := range reqs {
			if r.PutRequest != nil {
				mw += max(1, kb(store.ItemSize(r.PutRequest.Item), 1024))
			} else {
				mw++
			}
		}
	}
	return mw
}

// transactWriteUnits models a TransactWriteItems: twice the plain write units per item.
func transactWriteUnits(in *dynamodb.TransactWriteItemsInput) float64 {
	var mw float64
	for _, it := range in.TransactItems {
		switch {
		case it.Put != nil:
			mw += 2 * max(1, kb(store.ItemSize(it.Put.Item), 1024))
		case it.Update != nil:
			mw += 2 * max(1, kb(store.ItemSize(it.Update.Key)+store.ItemSize(it.Update.ExpressionAttributeValues), 1024))
		default: // Delete, ConditionCheck
			mw += 2
		}
	}
	return mw
}

// largestWrite is the size of the largest item a write call stores (for an update: its key and
// values), 0 for reads.
func largestWrite(p any) int {
	n := 0
	switch in := p.(type) {
	case *dynamodb.PutItemInput:
		n = store.ItemSize(in.Item)
	case *dynamodb.UpdateItemInput:
		n = store.ItemSize(in.Key) + store.ItemSize(in.ExpressionAttributeValues)
	case *dynamodb.BatchWriteItemInput:
		for _, reqs := range in.RequestItems {
			for _, r := range reqs {
				if r.PutRequest != nil {
					n = max(n, store.ItemSize(r.PutRequest.Item))
				}
			}
		}
	case *dynamodb.TransactWriteItemsInput:
		for _, it := range in.TransactItems {
			if it.Put != nil {
				n = max(n, store.ItemSize(it.Put.Item))
			} else if it.Update != nil {
				n = max(n, store.ItemSize(it.Update.Key)+store.ItemSize(it.Update.ExpressionAttributeValues))
			}
		}
	}
	return n
}

func kb(size, per int) float64 { return float64((size + per - 1) / per) }

// indexWrites models the index writes of a call's puts: an item with both gsi1 keys is copied to
// the index whole (projection ALL), ceil(size/1 KB) units at the standard rate. Updates and
// deletes of indexed items are not modelled (the stages update no indexed item; deletes of
// indexed items are rare: memberships left, schedule moves).
func indexWrites(p any) float64 {
	var items []map[string]types.AttributeValue
	switch in := p.(type) {
	case *dynamodb.PutItemInput:
		items = append(items, in.Item)
	case *dynamodb.BatchWriteItemInput:
		for _, reqs := range in.RequestItems {
			for _, r := range reqs {
				if r.PutRequest != nil {
					items = append(items, r.PutRequest.Item)
				}
			}
		}
	case *dynamodb.TransactWriteItemsInput:
		for _, it := range in.TransactItems {
			if it.Put != nil {
				items = append(items, it.Put.Item)
			}
		}
	}
	var w float64
	for _, it := range items {
		_, pk := it["gsi1pk"]
		_, sk := it["gsi1sk"]
		if pk && sk {
			w += max(1, kb(store.ItemSize(it), 1024))
		}
	}
	return w
}
