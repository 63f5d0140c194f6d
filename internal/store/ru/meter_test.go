package ru

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/serverless-cdp/cdp/internal/store"
)

// fakeClient answers puts (failing the second) and strongly consistent gets of one 5 KB item.
type fakeClient struct {
	store.Client
	puts int
}

func (f *fakeClient) PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	f.puts++
	if f.puts == 2 {
		return nil, errors.New("condition failed")
	}
	return &dynamodb.PutItemOutput{}, nil
}

func (f *fakeClient) GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return &dynamodb.GetItemOutput{Item: item("a", 5000, false)}, nil
}

func TestMeterAddsEveryCallAndTakeResets(t *testing.T) {
	m := NewMeter(&fakeClient{})
	ctx := context.Background()
	put := &dynamodb.PutItemInput{Item: item("a", 1500, false)}
	m.PutItem(ctx, put)
	m.PutItem(ctx, put) // fails: its write is still charged
	consistent := true
	m.GetItem(ctx, &dynamodb.GetItemInput{ConsistentRead: &consistent})
	if got := m.Take(); got != (Units{Read: 2, Write: 4}) {
		t.Fatalf("units %+v, want 2 read (5 KB, consistent) and 4 write (two 1.5 KB puts)", got)
	}
	if got := m.Take(); got != (Units{}) {
		t.Fatalf("after Take: %+v", got)
	}
}
