package bench

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// TestIndexWrites: a put of an item carrying both gsi1 keys also writes the index (projection
// ALL: by the whole item's size, at the standard rate inside a transaction too); other puts and
// updates write no index.
func TestIndexWrites(t *testing.T) {
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	indexed := map[string]types.AttributeValue{"pk": s("a"), "sk": s("b"), "gsi1pk": s("p"), "gsi1sk": s("t"),
		"data": s(strings.Repeat("x", 1500))}
	plain := map[string]types.AttributeValue{"pk": s("a"), "sk": s("b")}
	cases := []struct {
		name string
		in   any
		want float64
	}{
		{"indexed put of 1.5 KB", &dynamodb.PutItemInput{Item: indexed}, 2},
		{"plain put", &dynamodb.PutItemInput{Item: plain}, 0},
		{"transaction", &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
			{Put: &types.Put{Item: indexed}}, {Put: &types.Put{Item: plain}}}}, 2},
		{"batch", &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{"t": {
			{PutRequest: &types.PutRequest{Item: indexed}}, {PutRequest: &types.PutRequest{Item: indexed}}}}}, 4},
		{"update", &dynamodb.UpdateItemInput{Key: plain}, 0},
	}
	for _, c := range cases {
		if got := model(c.in, succeeded(c.in)).Index; got != c.want {
			t.Errorf("%s: %v index WRU, want %v", c.name, got, c.want)
		}
	}
}

// succeeded is the empty result of a call that ran.
func succeeded(in any) any {
	switch in.(type) {
	case *dynamodb.PutItemInput:
		return &dynamodb.PutItemOutput{}
	case *dynamodb.TransactWriteItemsInput:
		return &dynamodb.TransactWriteItemsOutput{}
	case *dynamodb.BatchWriteItemInput:
		return &dynamodb.BatchWriteItemOutput{}
	case *dynamodb.UpdateItemInput:
		return &dynamodb.UpdateItemOutput{}
	}
	return nil
}
