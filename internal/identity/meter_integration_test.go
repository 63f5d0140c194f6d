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

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/serverless-cdp/cdp/internal/store"
	"github.com/serverless-cdp/cdp/internal/store/ru"
)

// usage is the request units consumed through a ruMeter: as DynamoDB reported them
// (ConsumedCapacity, requested TOTAL on every call), and as AWS's pricing rules compute them
// from item sizes (Model*, by internal/store/ru: DynamoDB Local under-reports).
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
	case strings.HasPrefix(pk, "BLOCKLIST"):
		return "blocklist"
	}
	return "other"
}

// addKind attributes one item's charge to its kind. The caller holds m.mu.
func (m *ruMeter) addKind(c ru.Charge) {
	if m.u.ReadByKind == nil {
		m.u.ReadByKind, m.u.WriteByKind = map[string]float64{}, map[string]float64{}
	}
	kind := kindOf(c.Item)
	switch {
	case c.Read && c.Missing:
		m.u.ReadByKind["missing "+kind] += c.Units
	case c.Read:
		m.u.ReadByKind[kind] += c.Units
	case c.Index:
		m.u.WriteByKind["gsi"] += c.Units
	case c.Tx:
		m.u.WriteByKind["tx "+kind] += c.Units
	default:
		m.u.WriteByKind[kind] += c.Units
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

// record meters one call: params its input, result its output (a nil pointer if it failed).
func (m *ruMeter) record(params, result any) {
	var charges []ru.Charge
	u := ru.Model{Each: func(c ru.Charge) { charges = append(charges, c) }}.Call(params, result)
	r, w := ru.Reported(result)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.u.Requests++
	m.u.ModelReadUnits += u.Read
	m.u.ModelWriteUnits += u.Write
	m.u.ReadUnits += r
	m.u.WriteUnits += w
	for _, c := range charges {
		m.addKind(c)
	}
}

const total = types.ReturnConsumedCapacityTotal

func (m *ruMeter) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	c := *in
	c.ReturnConsumedCapacity = total
	out, err := m.Client.BatchGetItem(ctx, &c, o...)
	m.record(in, out)
	return out, err
}

func (m *ruMeter) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	c := *in
	c.ReturnConsumedCapacity = total
	out, err := m.Client.Query(ctx, &c, o...)
	m.record(in, out)
	return out, err
}

func (m *ruMeter) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	c := *in
	c.ReturnConsumedCapacity = total
	out, err := m.Client.TransactWriteItems(ctx, &c, o...)
	m.record(in, out)
	return out, err
}

// PutItem: a put whose condition fails is still charged for the item (no index write).
func (m *ruMeter) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	c := *in
	c.ReturnConsumedCapacity = total
	out, err := m.Client.PutItem(ctx, &c, o...)
	m.record(in, out)
	return out, err
}

func (m *ruMeter) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	c := *in
	c.ReturnConsumedCapacity = total
	out, err := m.Client.GetItem(ctx, &c, o...)
	m.record(in, out)
	return out, err
}

func (m *ruMeter) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	c := *in
	c.ReturnConsumedCapacity = total
	out, err := m.Client.UpdateItem(ctx, &c, o...)
	m.record(in, out)
	return out, err
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
