package ru

import (
	"context"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/serverless-cdp/cdp/internal/store"
)

// Meter is a store.Client that adds up the modelled request units of every call it passes on
// (tests and benchmarks wrap the table client with it; production code never does).
type Meter struct {
	store.Client
	Model Model
	mu    sync.Mutex
	u     Units
}

var _ store.Client = (*Meter)(nil)

// NewMeter wraps c.
func NewMeter(c store.Client) *Meter { return &Meter{Client: c} }

// Take returns the units added since the last Take and starts again from zero.
func (m *Meter) Take() Units {
	m.mu.Lock()
	defer m.mu.Unlock()
	u := m.u
	m.u = Units{}
	return u
}

func (m *Meter) add(in, out any) {
	u := m.Model.Call(in, out)
	m.mu.Lock()
	m.u.Read += u.Read
	m.u.Write += u.Write
	m.u.Index += u.Index
	m.mu.Unlock()
}

func metered[In, Out any](m *Meter, call func(context.Context, In, ...func(*dynamodb.Options)) (Out, error), ctx context.Context, in In, o []func(*dynamodb.Options)) (Out, error) {
	out, err := call(ctx, in, o...)
	if err != nil {
		m.add(in, nil)
	} else {
		m.add(in, out)
	}
	return out, err
}

// GetItem passes the call on and meters it.
func (m *Meter) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return metered(m, m.Client.GetItem, ctx, in, o)
}

// PutItem passes the call on and meters it.
func (m *Meter) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	return metered(m, m.Client.PutItem, ctx, in, o)
}

// UpdateItem passes the call on and meters it.
func (m *Meter) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	return metered(m, m.Client.UpdateItem, ctx, in, o)
}

// DeleteItem passes the call on and meters it.
func (m *Meter) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	return metered(m, m.Client.DeleteItem, ctx, in, o)
}

// Query passes the call on and meters it.
func (m *Meter) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	return metered(m, m.Client.Query, ctx, in, o)
}

// Scan passes the call on and meters it.
func (m *Meter) Scan(ctx context.Context, in *dynamodb.ScanInput, o ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	return metered(m, m.Client.Scan, ctx, in, o)
}

// BatchGetItem passes the call on and meters it.
func (m *Meter) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	return metered(m, m.Client.BatchGetItem, ctx, in, o)
}

// BatchWriteItem passes the call on and meters it.
func (m *Meter) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	return metered(m, m.Client.BatchWriteItem, ctx, in, o)
}

// TransactWriteItems passes the call on and meters it.
func (m *Meter) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	return metered(m, m.Client.TransactWriteItems, ctx, in, o)
}
