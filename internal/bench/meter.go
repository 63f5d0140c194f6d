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
	"github.com/serverless-cdp/cdp/internal/store/ru"
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
			r, w := ru.Reported(out.Result)
			mu := model(in.Parameters, out.Result)
			largest := largestWrite(in.Parameters)
			m.with(stage, func(u *StageUsage) {
				u.MaxItemBytes = max(u.MaxItemBytes, largest)
				u.Calls++
				u.ReportedRRU += r
				u.ReportedWRU += w
				u.ModelRRU += mu.Read
				u.ModelWRU += mu.Write
				u.ModelIndexWRU += mu.Index
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

// model is the units of one call by AWS's rules (internal/store/ru), floored by the reported
// figure for single-item writes, queries and scans.
func model(params, result any) ru.Units { return ru.Model{Floor: true}.Call(params, result) }

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
