//go:build integration

package identity

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/serverless-cdp/cdp/internal/store"
)

func (d dynamoData) putLegacyEvent(t testing.TB, e StoredEvent) {
	t.Helper()
	it, err := encodeEvent(e)
	if err != nil {
		t.Fatal(err)
	}
	it[store.PK] = store.S(prefixMsgV1 + e.Message.MessageID)
	if _, err := d.db.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(d.table), Item: it}); err != nil {
		t.Fatal(err)
	}
}
