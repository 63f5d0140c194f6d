package ru

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/serverless-cdp/cdp/internal/store"
)

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

// item is an item of about size bytes (store.ItemSize), with the gsi1 keys if indexed.
func item(pk string, size int, indexed bool) Item {
	it := Item{store.PK: s(pk), store.SK: s("s")}
	if indexed {
		it[store.GSI1PK], it[store.GSI1SK] = s("g"), s("h")
	}
	it["data"] = s(strings.Repeat("x", max(0, size-store.ItemSize(it)-len("data"))))
	return it
}

func TestPut(t *testing.T) {
	in := &dynamodb.PutItemInput{Item: item("a", 1500, false)}
	if got := (Model{}).Call(in, &dynamodb.PutItemOutput{}); got != (Units{Write: 2}) {
		t.Errorf("put of 1.5 KB: %+v, want 2 write units", got)
	}
	small := &dynamodb.PutItemInput{Item: item("a", 10, false)}
	if got := (Model{}).Call(small, &dynamodb.PutItemOutput{}); got != (Units{Write: 1}) {
		t.Errorf("put of 10 bytes: %+v, want the minimum, 1 write unit", got)
	}
	var failed *dynamodb.PutItemOutput // a condition that failed: charged all the same
	if got := (Model{}).Call(in, failed); got != (Units{Write: 2}) {
		t.Errorf("failed put: %+v, want 2 write units", got)
	}
}

func TestTransactionalPutIsDoubled(t *testing.T) {
	in := &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{Item: item("a", 1500, false)}},
		{ConditionCheck: &types.ConditionCheck{Key: store.Key("b", "s")}},
	}}
	var charges []Charge
	got := Model{Each: func(c Charge) { charges = append(charges, c) }}.Call(in, &dynamodb.TransactWriteItemsOutput{})
	if got != (Units{Write: 6}) {
		t.Errorf("transaction: %+v, want 2×2 + 2 write units", got)
	}
	if len(charges) != 2 || !charges[0].Tx || charges[0].Units != 4 || charges[0].Read {
		t.Errorf("charges %+v, want the put's 4 transactional write units first", charges)
	}
}

func TestIndexedPut(t *testing.T) {
	it := item("a", 1500, true)
	put := Model{}.Call(&dynamodb.PutItemInput{Item: it}, &dynamodb.PutItemOutput{})
	if put != (Units{Write: 4, Index: 2}) {
		t.Errorf("indexed put: %+v, want 2 + 2 index write units", put)
	}
	tx := Model{}.Call(&dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{{Put: &types.Put{Item: it}}}},
		&dynamodb.TransactWriteItemsOutput{})
	if tx != (Units{Write: 6, Index: 2}) {
		t.Errorf("indexed put in a transaction: %+v, want 4 + 2 index write units (not doubled)", tx)
	}
	var failed *dynamodb.PutItemOutput
	if got := (Model{}).Call(&dynamodb.PutItemInput{Item: it}, failed); got != (Units{Write: 2}) {
		t.Errorf("failed indexed put: %+v, want 2 write units and no index write", got)
	}
	del := Model{IndexedKey: func(Item) bool { return true }}.Call(&dynamodb.DeleteItemInput{Key: store.Key("a", "s")}, &dynamodb.DeleteItemOutput{})
	if del != (Units{Write: 2, Index: 1}) {
		t.Errorf("delete of an indexed item: %+v, want 1 + 1 index write unit", del)
	}
}

func TestGet(t *testing.T) {
	found := &dynamodb.GetItemOutput{Item: item("a", 5000, false)}
	eventual := Model{}.Call(&dynamodb.GetItemInput{Key: store.Key("a", "s")}, found)
	strong := Model{}.Call(&dynamodb.GetItemInput{Key: store.Key("a", "s"), ConsistentRead: aws.Bool(true)}, found)
	if eventual != (Units{Read: 1}) || strong != (Units{Read: 2}) {
		t.Errorf("get of 5 KB: eventually %+v, strongly %+v; want 1 and 2 read units", eventual, strong)
	}
	var missing []Charge
	m := Model{Each: func(c Charge) { missing = append(missing, c) }}
	if got := m.Call(&dynamodb.GetItemInput{Key: store.Key("b", "s")}, &dynamodb.GetItemOutput{}); got != (Units{Read: 0.5}) {
		t.Errorf("get of a missing key: %+v, want 0.5 read units", got)
	}
	if len(missing) != 1 || !missing[0].Missing || !missing[0].Read {
		t.Errorf("charges %+v, want one missing read", missing)
	}
	var failed *dynamodb.GetItemOutput
	if got := (Model{}).Call(&dynamodb.GetItemInput{Key: store.Key("a", "s")}, failed); got != (Units{}) {
		t.Errorf("failed get: %+v, want nothing", got)
	}
}

func TestBatchGetWithMissingKeys(t *testing.T) {
	keys := []Item{store.Key("a", "s"), store.Key("b", "s"), store.Key("c", "s"), store.Key("d", "s")}
	in := &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{
		"t": {Keys: keys, ConsistentRead: aws.Bool(true)}}}
	// a is found (5 KB), c is found through a projection without the sort key, d is left
	// unprocessed, b is missing.
	out := &dynamodb.BatchGetItemOutput{
		Responses:       map[string][]Item{"t": {item("a", 5000, false), {store.PK: s("c")}}},
		UnprocessedKeys: map[string]types.KeysAndAttributes{"t": {Keys: keys[3:]}},
	}
	var missing []string
	m := Model{Each: func(c Charge) {
		if c.Missing {
			missing = append(missing, store.GetS(c.Item, store.PK))
		}
	}}
	if got := m.Call(in, out); got != (Units{Read: 2 + 1 + 1}) {
		t.Errorf("batch get: %+v, want 2 (a) + 1 (c) + 1 (b missing) read units", got)
	}
	if len(missing) != 1 || missing[0] != "b" {
		t.Errorf("missing keys %v, want [b]", missing)
	}
}

func TestReportedFloor(t *testing.T) {
	in := &dynamodb.UpdateItemInput{Key: store.Key("a", "s")}
	out := &dynamodb.UpdateItemOutput{ConsumedCapacity: &types.ConsumedCapacity{CapacityUnits: aws.Float64(3)}}
	if got := (Model{}).Call(in, out); got != (Units{Write: 1}) {
		t.Errorf("update: %+v, want 1 write unit", got)
	}
	if got := (Model{Floor: true}).Call(in, out); got != (Units{Write: 3}) {
		t.Errorf("update floored by the reported figure: %+v, want 3 write units", got)
	}
	if r, w := Reported(out); r != 0 || w != 3 {
		t.Errorf("reported %v read, %v write units; want 0 and 3", r, w)
	}
}
