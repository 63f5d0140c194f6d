package local

import (
	"context"
	"encoding/hex"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/serverless-cdp/cdp/internal/secret"
	"github.com/serverless-cdp/cdp/internal/store"
)

// localPrivacyKey is the privacy key of a local run without CDP_PRIVACY_KEY: generated once and
// kept in the local table (item LOCAL / PRIVACYKEY), so the blocklist's hashes stay valid
// across restarts of a persisted DynamoDB Local. On AWS the key is a Secrets Manager secret and
// never in the table.
func localPrivacyKey(ctx context.Context, db store.Client, table string) ([]byte, error) {
	key := store.Key("LOCAL", "PRIVACYKEY")
	fresh := hex.EncodeToString([]byte(secret.String(secret.Alphanumeric, 32)))
	item := map[string]types.AttributeValue{store.PK: key[store.PK], store.SK: key[store.SK], "key": store.S(fresh)}
	_, err := db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(table), Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)"),
	})
	if err != nil && !store.IsConditionFailed(err) {
		return nil, fmt.Errorf("store the local privacy key: %w", err)
	}
	out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key, ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("read the local privacy key: %w", err)
	}
	v := store.GetS(out.Item, "key")
	if len(v) < 32 {
		return nil, fmt.Errorf("local privacy key item is malformed")
	}
	return []byte(v), nil
}
