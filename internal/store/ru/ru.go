// Package ru models the DynamoDB request units of a call by AWS's pricing rules, from the item
// sizes in its request and response (store.ItemSize). It exists because DynamoDB Local
// under-reports: a flat figure for transactions, nothing for keys that are not found.
//
// Rules: a read costs ceil(size/4 KB) units per item, × 0.5 when eventually consistent, at least
// that for a key not found; a query or scan the same on the summed size of what it returns;
// TransactGetItems twice a strongly consistent read. A write costs ceil(size/1 KB) units per item
// (at least 1; a delete or condition check 1), doubled inside a transaction; an update is sized
// by its request (key + values), not by the stored item. A put of an item carrying both gsi1 keys
// also writes the index (projection ALL) by the item's size at the standard rate, even inside a
// transaction. A failed call (nil result) costs no reads and its writes as if they ran (a
// conditional write that fails is charged) but no index writes.
package ru

import (
	"reflect"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/serverless-cdp/cdp/internal/store"
)

// Item is a DynamoDB item or key.
type Item = map[string]types.AttributeValue

// Units is what a call costs. Write includes Index.
type Units struct {
	Read, Write, Index float64
}

// Charge is one item's part of a call, as passed to Model.Each.
type Charge struct {
	Item    Item // the item; the key for a key not found, a delete or an update
	Read    bool
	Units   float64
	Tx      bool // written or read in a transaction (Units doubled)
	Missing bool // a read of a key that was not found
	Index   bool // the index copy of a write (Units at the standard rate)
}

// Model computes Units. The zero value applies the rules above.
type Model struct {
	// Each, when set, receives every item's charge. Queries and scans are charged on their
	// summed size and are not itemized.
	Each func(Charge)
	// IndexedKey, when set, tells whether a deleted key names an item in the index: its
	// entry goes too, at 1 unit. Nil: deletes write no index.
	IndexedKey func(key Item) bool
	// Floor takes the reported ConsumedCapacity of a single-item write, a query or a scan when
	// it is larger than the model (an update of a large stored item is billed by the stored
	// item's size, which the request does not show).
	Floor bool
}

// Call returns the modelled units of a call: params is its input (*dynamodb.XxxInput), result
// its output, nil (or a nil pointer) when the call failed.
func (m Model) Call(params, result any) Units {
	var u Units
	if !isNil(result) {
		m.read(&u, params, result)
	}
	m.write(&u, params, result)
	return u
}

// units is ceil(size/per), at least 1.
func units(size, per int) float64 { return float64(max(1, (size+per-1)/per)) }

func readRate(consistent *bool) float64 {
	if aws.ToBool(consistent) {
		return 1
	}
	return 0.5
}

func (m Model) charge(u *Units, c Charge) {
	switch {
	case c.Read:
		u.Read += c.Units
	case c.Index:
		u.Write += c.Units
		u.Index += c.Units
	default:
		u.Write += c.Units
	}
	if m.Each != nil {
		m.Each(c)
	}
}

func (m Model) read(u *Units, params, result any) {
	switch in := params.(type) {
	case *dynamodb.GetItemInput:
		if out, _ := result.(*dynamodb.GetItemOutput); out != nil {
			if out.Item == nil {
				m.charge(u, Charge{Item: in.Key, Read: true, Missing: true, Units: readRate(in.ConsistentRead)})
			} else {
				m.charge(u, Charge{Item: out.Item, Read: true, Units: readRate(in.ConsistentRead) * units(store.ItemSize(out.Item), 4096)})
			}
		}
	case *dynamodb.QueryInput:
		if out, _ := result.(*dynamodb.QueryOutput); out != nil {
			u.Read += m.floor(true, out, readRate(in.ConsistentRead)*units(itemsSize(out.Items), 4096))
		}
	case *dynamodb.ScanInput:
		if out, _ := result.(*dynamodb.ScanOutput); out != nil {
			u.Read += m.floor(true, out, readRate(in.ConsistentRead)*units(itemsSize(out.Items), 4096))
		}
	case *dynamodb.BatchGetItemInput:
		if out, _ := result.(*dynamodb.BatchGetItemOutput); out != nil {
			m.batchGet(u, in, out)
		}
	case *dynamodb.TransactGetItemsInput:
		if out, _ := result.(*dynamodb.TransactGetItemsOutput); out != nil {
			for _, r := range out.Responses {
				m.charge(u, Charge{Item: r.Item, Read: true, Tx: true, Units: 2 * units(store.ItemSize(r.Item), 4096)})
			}
		}
	}
}

// floor is the model, or the reported figure of the call when Floor is set and it is larger.
func (m Model) floor(read bool, result any, model float64) float64 {
	if !m.Floor {
		return model
	}
	r, w := Reported(result)
	if read {
		return max(r, model)
	}
	return max(w, model)
}

func itemsSize(items []Item) int {
	n := 0
	for _, it := range items {
		n += store.ItemSize(it)
	}
	return n
}

// keys is a set of item keys. An item read with a projection that leaves out the sort key
// matches every key of its partition key.
type keys map[string]bool

func (k keys) add(it Item) {
	pk := store.GetS(it, store.PK)
	if _, ok := it[store.SK]; !ok {
		k[pk] = true
		return
	}
	k[pk+"\x00"+store.GetS(it, store.SK)] = true
}

func (k keys) has(key Item) bool {
	pk := store.GetS(key, store.PK)
	return k[pk] || k[pk+"\x00"+store.GetS(key, store.SK)]
}

// batchGet charges each found item by size and each key not found the minimum; unprocessed keys
// cost nothing.
func (m Model) batchGet(u *Units, in *dynamodb.BatchGetItemInput, out *dynamodb.BatchGetItemOutput) {
	for table, ka := range in.RequestItems {
		rate := readRate(ka.ConsistentRead)
		seen := keys{}
		for _, it := range out.Responses[table] {
			seen.add(it)
			m.charge(u, Charge{Item: it, Read: true, Units: rate * units(store.ItemSize(it), 4096)})
		}
		for _, k := range out.UnprocessedKeys[table].Keys {
			seen.add(k)
		}
		for _, k := range ka.Keys {
			if !seen.has(k) {
				m.charge(u, Charge{Item: k, Read: true, Missing: true, Units: rate})
			}
		}
	}
}

// updateSize is what an update is sized by: its key and values.
func updateSize(key, values Item) int { return store.ItemSize(key) + store.ItemSize(values) }

func (m Model) write(u *Units, params, result any) {
	ok := !isNil(result)
	switch in := params.(type) {
	case *dynamodb.PutItemInput:
		m.charge(u, Charge{Item: in.Item, Units: m.single(ok, result, units(store.ItemSize(in.Item), 1024))})
		m.index(u, ok, in.Item, false)
	case *dynamodb.UpdateItemInput:
		m.charge(u, Charge{Item: in.Key, Units: m.single(ok, result, units(updateSize(in.Key, in.ExpressionAttributeValues), 1024))})
	case *dynamodb.DeleteItemInput:
		m.charge(u, Charge{Item: in.Key, Units: m.single(ok, result, 1)})
		m.deindex(u, in.Key, false)
	case *dynamodb.BatchWriteItemInput:
		for _, reqs := range in.RequestItems {
			for _, r := range reqs {
				if r.PutRequest != nil {
					m.charge(u, Charge{Item: r.PutRequest.Item, Units: units(store.ItemSize(r.PutRequest.Item), 1024)})
					m.index(u, ok, r.PutRequest.Item, false)
				} else if r.DeleteRequest != nil {
					m.charge(u, Charge{Item: r.DeleteRequest.Key, Units: 1})
					m.deindex(u, r.DeleteRequest.Key, false)
				}
			}
		}
	case *dynamodb.TransactWriteItemsInput:
		for _, it := range in.TransactItems {
			m.transactItem(u, ok, it)
		}
	}
}

// single is a single-item write's units: the model, floored by the reported figure if asked.
func (m Model) single(ok bool, result any, model float64) float64 {
	if !ok {
		return model
	}
	return m.floor(false, result, model)
}

func (m Model) transactItem(u *Units, ok bool, it types.TransactWriteItem) {
	switch {
	case it.Put != nil:
		m.charge(u, Charge{Item: it.Put.Item, Tx: true, Units: 2 * units(store.ItemSize(it.Put.Item), 1024)})
		m.index(u, ok, it.Put.Item, true)
	case it.Update != nil:
		m.charge(u, Charge{Item: it.Update.Key, Tx: true, Units: 2 * units(updateSize(it.Update.Key, it.Update.ExpressionAttributeValues), 1024)})
	case it.Delete != nil:
		m.charge(u, Charge{Item: it.Delete.Key, Tx: true, Units: 2})
		m.deindex(u, it.Delete.Key, true)
	case it.ConditionCheck != nil:
		m.charge(u, Charge{Item: it.ConditionCheck.Key, Tx: true, Units: 2})
	}
}

// index charges the index copy of a put item that carries both gsi1 keys, when the put ran.
func (m Model) index(u *Units, ok bool, item Item, tx bool) {
	_, pk := item[store.GSI1PK]
	_, sk := item[store.GSI1SK]
	if ok && pk && sk {
		m.charge(u, Charge{Item: item, Tx: tx, Index: true, Units: units(store.ItemSize(item), 1024)})
	}
}

// deindex charges the removal of a deleted item's index entry, when IndexedKey says it has one.
func (m Model) deindex(u *Units, key Item, tx bool) {
	if m.IndexedKey != nil && m.IndexedKey(key) {
		m.charge(u, Charge{Item: key, Tx: tx, Index: true, Units: 1})
	}
}

// isNil reports a failed call's result: nil or a nil pointer.
func isNil(result any) bool {
	if result == nil {
		return true
	}
	v := reflect.ValueOf(result)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// Reported splits the ConsumedCapacity a call's result carries (when the request asked for it)
// into read and write units; a bare CapacityUnits is attributed to the kind of the operation.
func Reported(result any) (r, w float64) {
	if isNil(result) {
		return 0, 0
	}
	cc, read := consumed(result)
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

// consumed is the ConsumedCapacity of a (non-nil) result and whether the call is a read.
func consumed(result any) (cc []types.ConsumedCapacity, read bool) {
	switch out := result.(type) {
	case *dynamodb.GetItemOutput:
		return one(out.ConsumedCapacity), true
	case *dynamodb.QueryOutput:
		return one(out.ConsumedCapacity), true
	case *dynamodb.ScanOutput:
		return one(out.ConsumedCapacity), true
	case *dynamodb.BatchGetItemOutput:
		return out.ConsumedCapacity, true
	case *dynamodb.TransactGetItemsOutput:
		return out.ConsumedCapacity, true
	case *dynamodb.PutItemOutput:
		return one(out.ConsumedCapacity), false
	case *dynamodb.UpdateItemOutput:
		return one(out.ConsumedCapacity), false
	case *dynamodb.DeleteItemOutput:
		return one(out.ConsumedCapacity), false
	case *dynamodb.BatchWriteItemOutput:
		return out.ConsumedCapacity, false
	case *dynamodb.TransactWriteItemsOutput:
		return out.ConsumedCapacity, false
	}
	return nil, false
}

func one(c *types.ConsumedCapacity) []types.ConsumedCapacity {
	if c == nil {
		return nil
	}
	return []types.ConsumedCapacity{*c}
}
