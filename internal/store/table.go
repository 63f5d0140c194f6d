// Package store holds the single-table DynamoDB layout every capability shares: the key schema,
// table creation for local runs and tests, and request-unit accounting.
//
// Keys: every item has a string partition key `pk` and sort key `sk`; one generic index `gsi1`
// (`gsi1pk`, `gsi1sk`) serves secondary look-ups; `ttl` (epoch seconds) expires what should expire
// (dedupe markers, timeline retention). Each package documents the key prefixes it owns.
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Attribute names of the shared table.
const (
	PK     = "pk"
	SK     = "sk"
	GSI1   = "gsi1"
	GSI1PK = "gsi1pk"
	GSI1SK = "gsi1sk"
	TTL    = "ttl"
)

// CreateTable creates the table (on-demand, with TTL on `ttl`) if it does not exist yet and waits
// until it is active. The CDK stack in infra/ declares the same schema for AWS.
func CreateTable(ctx context.Context, db *dynamodb.Client, name string) error {
	_, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(PK), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(SK), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(GSI1PK), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(GSI1SK), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(PK), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(SK), KeyType: types.KeyTypeRange},
		},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
			IndexName: aws.String(GSI1),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(GSI1PK), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(GSI1SK), KeyType: types.KeyTypeRange},
			},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
		}},
	})
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("create table %s: %w", name, err)
	}
	waiter := dynamodb.NewTableExistsWaiter(db, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay = 100 * time.Millisecond
		o.MaxDelay = time.Second
	})
	if err := waiter.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, time.Minute); err != nil {
		return fmt.Errorf("wait for table %s: %w", name, err)
	}
	_, err = db.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(name),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(TTL), Enabled: aws.Bool(true),
		},
	})
	// Enabling TTL twice is an error on DynamoDB; it is already what we want.
	if err != nil && !isTTLAlreadyEnabled(err) {
		return fmt.Errorf("enable TTL on %s: %w", name, err)
	}
	return nil
}

func isTTLAlreadyEnabled(err error) bool {
	var ve interface{ ErrorMessage() string }
	if errors.As(err, &ve) {
		return strings.Contains(strings.ToLower(ve.ErrorMessage()), "already enabled")
	}
	return false
}
