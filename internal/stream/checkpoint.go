package stream

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/serverless-cdp/cdp/internal/store"
)

// Checkpoint is how far a consumer got in one shard: every record up to and including Sequence
// was handled. Epoch identifies the stream the sequence number belongs to (a stream deleted and
// created again under the same name starts a new epoch, and old checkpoints do not apply).
type Checkpoint struct {
	Sequence string
	Epoch    string
}

// Checkpoints keeps checkpoints per stream, shard and consumer.
type Checkpoints interface {
	Load(ctx context.Context, stream, shard, consumer string) (Checkpoint, bool, error)
	Save(ctx context.Context, stream, shard, consumer string, cp Checkpoint) error
}

// CheckpointAPI is the DynamoDB client the checkpoint store uses (the one interface, store.Client).
type CheckpointAPI = store.Client

// TableCheckpoints keeps checkpoints in the shared table under `CHECKPOINT#<stream>` /
// `SHARD#<shard>#<consumer>`. On AWS the event source mappings keep their own; the local runner
// uses this so a restart resumes where it stopped.
type TableCheckpoints struct {
	db    CheckpointAPI
	table string
}

// NewTableCheckpoints returns a checkpoint store on the named table.
func NewTableCheckpoints(db CheckpointAPI, table string) *TableCheckpoints {
	return &TableCheckpoints{db: db, table: table}
}

func checkpointKey(stream, shard, consumer string) map[string]dtypes.AttributeValue {
	return map[string]dtypes.AttributeValue{
		store.PK: &dtypes.AttributeValueMemberS{Value: "CHECKPOINT#" + stream},
		store.SK: &dtypes.AttributeValueMemberS{Value: "SHARD#" + shard + "#" + consumer},
	}
}

// Load returns the checkpoint, and false when there is none.
func (c *TableCheckpoints) Load(ctx context.Context, stream, shard, consumer string) (Checkpoint, bool, error) {
	out, err := c.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(c.table), Key: checkpointKey(stream, shard, consumer), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("load checkpoint %s/%s/%s: %w", stream, shard, consumer, err)
	}
	if out.Item == nil {
		return Checkpoint{}, false, nil
	}
	str := func(n string) string {
		if v, ok := out.Item[n].(*dtypes.AttributeValueMemberS); ok {
			return v.Value
		}
		return ""
	}
	return Checkpoint{Sequence: str("seq"), Epoch: str("epoch")}, true, nil
}

// Save records the checkpoint.
func (c *TableCheckpoints) Save(ctx context.Context, stream, shard, consumer string, cp Checkpoint) error {
	item := checkpointKey(stream, shard, consumer)
	item["seq"] = &dtypes.AttributeValueMemberS{Value: cp.Sequence}
	item["epoch"] = &dtypes.AttributeValueMemberS{Value: cp.Epoch}
	item["updatedAt"] = &dtypes.AttributeValueMemberS{Value: time.Now().UTC().Format(time.RFC3339Nano)}
	if _, err := c.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(c.table), Item: item}); err != nil {
		return fmt.Errorf("save checkpoint %s/%s/%s: %w", stream, shard, consumer, err)
	}
	return nil
}
