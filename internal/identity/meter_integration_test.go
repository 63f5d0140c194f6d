//go:build integration

package identity

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/serverless-cdp/cdp/internal/store"
)

// usage is the request units consumed through a ruMeter: as DynamoDB reported them
// (ConsumedCapacity, requested TOTAL on every call), and as AWS's pricing rules compute them
// from item sizes (Model*). The model exists because DynamoDB Local under-reports: it charges
// nothing for BatchGetItem keys that are not found and reports a flat figure for
// TransactWriteItems whatever the item count. Model rules: reads 0.5 unit per 4 KB per item
// (eventually consistent; 1 if strongly consistent), a missing key costs the minimum; queries
// 0.5 per 4 KB read; transactional writes 2 units per KB per item, single puts 1 unit per KB;
// a GSI write 1 unit per KB.
type usage struct {
	ReadUnits, WriteUnits           float64
	ModelReadUnits, ModelWriteUnits float64
	Requests                        int
	// ByKind splits the modelled units by item kind (profile, index, event, gsi, log,
	// attempt, rules; "missing <kind>" for a read of a key not found; "tx <kind>" for an item
	// written in a transaction).
	ReadByKind, WriteByKind map[string]float64
}

// kindOf names the kind of item a key or item belongs to.
func kindOf(it map[string]types.AttributeValue) string {
	pk, sk := store.GetS(it, store.PK), store.GetS(it, store.SK)
	switch {
	case strings.HasPrefix(pk, prefixID):
		return "index"
	case strings.HasPrefix(pk, prefixProfile) && sk == skProfile:
		return "profile"
	case strings.HasPrefix(pk, prefixProfile):
		return "log"
	case strings.HasPrefix(pk, prefixMsg) || strings.HasPrefix(pk, prefixMsgV1):
		return "event"
	case strings.HasPrefix(pk, prefixAttempt):
		return "attempt"
	}
	return "other"
}

func (m *ruMeter) addKind(read bool, kind string, units float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.u.ReadByKind == nil {
		m.u.ReadByKind, m.u.WriteByKind = map[string]float64{}, map[string]float64{}
	}
	if read {
		m.u.ReadByKind[kind] += units
	} else {
		m.u.WriteByKind[kind] += units
	}
}

// breakdown renders units per event by kind.
func (u usage) breakdown(n float64) string {
	var parts []string
	for _, side := range []struct {
		name string
		m    map[string]float64
	}{{"R", u.ReadByKind}, {"W", u.WriteByKind}} {
		keys := make([]string, 0, len(side.m))
		for k := range side.m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s %s %.2f", side.name, k, side.m[k]/n))
		}
	}
	return strings.Join(parts, ", ")
}

// ruMeter wraps the DynamoDB client of the store under test and meters the calls the
// processor makes (the benchmark's metering lives in internal/bench, as SDK middleware).
type ruMeter struct {
	store.Client
	mu sync.Mutex
	u  usage
}

func (m *ruMeter) usage() usage {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.u
	c.ReadByKind, c.WriteByKind = maps.Clone(m.u.ReadByKind), maps.Clone(m.u.WriteByKind)
	return c
}

func units(size, per int) float64 { return float64((size + per - 1) / per) }

func (m *ruMeter) add(read bool, model float64, cc ...types.ConsumedCapacity) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.u.Requests++
	if read {
		m.u.ModelReadUnits += model
	} else {
		m.u.ModelWriteUnits += model
	}
	for _, c := range cc {
		r, w := aws.ToFloat64(c.ReadCapacityUnits), aws.ToFloat64(c.WriteCapacityUnits)
		if r == 0 && w == 0 {
			if read {
				r = aws.ToFloat64(c.CapacityUnits)
			} else {
				w = aws.ToFloat64(c.CapacityUnits)
			}
		}
		m.u.ReadUnits += r
		m.u.WriteUnits += w
	}
}

func (m *ruMeter) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	c := *in
	c.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	out, err := m.Client.BatchGetItem(ctx, &c, o...)
	if err != nil {
		m.add(true, 0)
		return out, err
	}
	var model float64
	for table, ka := range in.RequestItems {
		rate := 0.5
		if aws.ToBool(ka.ConsistentRead) {
			rate = 1
		}
		found := map[string]bool{}
		for _, it := range out.Responses[table] {
			u := rate * max(1, units(store.ItemSize(it), 4096))
			model += u
			found[store.GetS(it, store.PK)] = true
			m.addKind(true, kindOf(it), u)
		}
		unprocessed := map[string]bool{}
		for _, k := range out.UnprocessedKeys[table].Keys {
			unprocessed[store.GetS(k, store.PK)] = true
		}
		for _, k := range ka.Keys {
			if pk := store.GetS(k, store.PK); !found[pk] && !unprocessed[pk] {
				model += rate
				m.addKind(true, "missing "+kindOf(k), rate)
			}
		}
	}
	m.add(true, model, out.ConsumedCapacity...)
	return out, nil
}

func (m *ruMeter) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	c := *in
	c.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	out, err := m.Client.Query(ctx, &c, o...)
	if err != nil {
		m.add(true, 0)
		return out, err
	}
	read := 0
	for _, it := range out.Items {
		read += store.ItemSize(it)
	}
	var cc []types.ConsumedCapacity
	if out.ConsumedCapacity != nil {
		cc = append(cc, *out.ConsumedCapacity)
	}
	m.add(true, 0.5*max(1, units(read, 4096)), cc...)
	return out, nil
}

func (m *ruMeter) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	var model float64
	for _, it := range in.TransactItems {
		if it.Put == nil {
			continue
		}
		size := store.ItemSize(it.Put.Item)
		model += 2 * max(1, units(size, 1024))
		m.addKind(false, "tx "+kindOf(it.Put.Item), 2*max(1, units(size, 1024)))
		if _, indexed := it.Put.Item[store.GSI1PK]; indexed {
			model += max(1, units(size, 1024))
			m.addKind(false, "gsi", max(1, units(size, 1024)))
		}
	}
	c := *in
	c.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	out, err := m.Client.TransactWriteItems(ctx, &c, o...)
	if err != nil {
		m.add(false, model)
		return out, err
	}
	m.add(false, model, out.ConsumedCapacity...)
	return out, nil
}

// PutItem is charged 1 unit per KB of the item written (the new item's size; an item is
// never smaller than the one it replaces here: profiles only grow between merges), plus 1 per
// KB for its GSI copy when it has one and the write happens; a put whose condition fails is
// still charged for the item (no GSI write).
func (m *ruMeter) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	c := *in
	c.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	out, err := m.Client.PutItem(ctx, &c, o...)
	u := max(1, units(store.ItemSize(in.Item), 1024))
	m.addKind(false, kindOf(in.Item), u)
	if _, indexed := in.Item[store.GSI1PK]; indexed && err == nil {
		m.addKind(false, "gsi", u)
		u *= 2
	}
	if err != nil {
		m.add(false, u)
		return out, err
	}
	m.add(false, u, one(out.ConsumedCapacity)...)
	return out, nil
}

func (m *ruMeter) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	c := *in
	c.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	out, err := m.Client.GetItem(ctx, &c, o...)
	if err != nil {
		m.add(true, 0)
		return out, err
	}
	rate := 0.5
	if aws.ToBool(in.ConsistentRead) {
		rate = 1
	}
	u := rate * max(1, units(store.ItemSize(out.Item), 4096))
	m.addKind(true, kindOf(in.Key), u)
	m.add(true, u, one(out.ConsumedCapacity)...)
	return out, nil
}

// UpdateItem is charged by the size of the item written (here: of the request; the attempt
// counters it serves are tiny).
func (m *ruMeter) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	c := *in
	c.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	out, err := m.Client.UpdateItem(ctx, &c, o...)
	u := max(1, units(store.ItemSize(in.Key)+store.ItemSize(in.ExpressionAttributeValues), 1024))
	m.addKind(false, kindOf(in.Key), u)
	if err != nil {
		m.add(false, u)
		return out, err
	}
	m.add(false, u, one(out.ConsumedCapacity)...)
	return out, nil
}

func one(c *types.ConsumedCapacity) []types.ConsumedCapacity {
	if c == nil {
		return nil
	}
	return []types.ConsumedCapacity{*c}
}

// newMeteredEnv is an env on DynamoDB Local whose store's calls are metered, with the
// processor's default options as deployed.
func newMeteredEnv(t testing.TB) (*env, *ruMeter) {
	t.Helper()
	d := openDynamo(t)
	m := &ruMeter{Client: d.db}
	s := NewStore(m, d.table)
	rules, err := Compile(Rules{})
	if err != nil {
		t.Fatal(err)
	}
	// As deployed by default: no legacy dedupe markers to read (CDP_LEGACY_DEDUPE unset).
	return &env{store: s, data: d, proc: NewProcessor(s, StaticRules{rules}, Options{SkipLegacyDedupe: true})}, m
}
