package infra

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskinesis"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// GSI1 is the table's only secondary index. Grants name it exactly instead of index/*.
const GSI1 = "gsi1"

// newTable is the single table of the single-table design (DESIGN.md, "State").
func newTable(scope constructs.Construct, cfg Config) awsdynamodb.Table {
	str := func(name string) *awsdynamodb.Attribute {
		return &awsdynamodb.Attribute{Name: jsii.String(name), Type: awsdynamodb.AttributeType_STRING}
	}
	t := awsdynamodb.NewTable(scope, jsii.String("Table"), &awsdynamodb.TableProps{
		PartitionKey:        str("pk"),
		SortKey:             str("sk"),
		BillingMode:         awsdynamodb.BillingMode_PAY_PER_REQUEST,
		TimeToLiveAttribute: jsii.String("ttl"), // dedupe markers, timeline retention, anonymous profiles
		PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{
			PointInTimeRecoveryEnabled: jsii.Bool(true),
		},
		// The AWS-managed key (aws/dynamodb) rather than the invisible AWS-owned default, so
		// every use of the key that protects the profiles' PII shows up in CloudTrail.
		Encryption:         awsdynamodb.TableEncryption_AWS_MANAGED,
		DeletionProtection: jsii.Bool(cfg.DeletionProtection),
		// The table is the system of record: `cdk destroy` must never take the profiles along.
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})
	t.AddGlobalSecondaryIndex(&awsdynamodb.GlobalSecondaryIndexProps{
		IndexName:      jsii.String(GSI1),
		PartitionKey:   str("gsi1pk"),
		SortKey:        str("gsi1sk"),
		ProjectionType: awsdynamodb.ProjectionType_ALL,
	})
	return t
}

// newStream creates one of the pipeline's Kinesis streams.
func newStream(scope constructs.Construct, name string, cfg Config) awskinesis.Stream {
	props := &awskinesis.StreamProps{
		// aws/kinesis: encrypted at rest without a customer key whose per-request cost grows
		// with every producer and consumer (cdk-nag KDS3 prefers it for the same reason).
		Encryption:      awskinesis.StreamEncryption_MANAGED,
		RetentionPeriod: awscdk.Duration_Hours(jsii.Number(float64(cfg.StreamRetention))),
		StreamMode:      awskinesis.StreamMode_PROVISIONED,
		ShardCount:      jsii.Number(float64(cfg.ShardCount)),
		// Records not yet processed (and parked batches waiting for a replay) survive a
		// `cdk destroy`; the README says to delete drained streams by hand.
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	}
	if cfg.StreamMode == StreamModeOnDemand {
		props.StreamMode = awskinesis.StreamMode_ON_DEMAND
		props.ShardCount = nil
	}
	return awskinesis.NewStream(scope, jsii.String(exportName(name)+"Stream"), props)
}
