package infra

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskinesisfirehose"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/jsii-runtime-go"
)

// The raw event archive (internal/archive): Kinesis Data Firehose reads the events stream and
// writes every record, as stored there, into S3 as gzip NDJSON under
//
//	source=<sourceId>/dt=YYYY-MM-DD/hour=HH/<firehose object name>.json.gz
//
// where the hour is the record's arrival time (UTC). internal/archive.ParseKey reads exactly
// this layout; ArchivePrefix and the processors below must not change without it.
const (
	// ArchivePrefix is the dynamic-partitioning prefix: the source from the record's JSON
	// (MetadataExtraction, key "source"), the day and hour from its arrival timestamp.
	ArchivePrefix = "source=!{partitionKeyFromQuery:source}/dt=!{timestamp:yyyy-MM-dd}/hour=!{timestamp:HH}/"
	// ArchiveErrorPrefix holds records Firehose could not partition or deliver (a record
	// without a sourceId, an S3 failure past the retry window), outside the source= tree so a
	// replay never reads them; the lifecycle rule expires them with the rest.
	ArchiveErrorPrefix = "errors/!{firehose:error-output-type}/dt=!{timestamp:yyyy-MM-dd}/hour=!{timestamp:HH}/"
	// ArchiveSourceQuery is the JQ query of the partition key.
	ArchiveSourceQuery = `{source: (if .replay then "_replay" else .sourceId end)}`
	// ArchiveFileExtension ends every object (internal/archive.Suffix).
	ArchiveFileExtension = ".json.gz"
	// ArchiveBufferSeconds and ArchiveBufferMB: Firehose writes an object per partition (a
	// source and hour) when either is reached. Dynamic partitioning needs at least 64 MB;
	// 900 s (the maximum) keeps the object count, and so the cost per object and the number
	// of GETs a replay makes, low: at most four objects per source and hour at low volume.
	// The price is that the archive lags the stream by up to 15 minutes.
	ArchiveBufferSeconds = 900
	ArchiveBufferMB      = 128
	// ArchiveLogStream is the CloudWatch log stream of delivery errors.
	ArchiveLogStream = "S3Delivery"
	// ArchiveFreshnessAlarmSeconds: the oldest record not yet in S3 is older than twice the
	// buffer interval. Firehose retries S3 for up to 24 h and then writes to the error prefix,
	// so this leaves the operator most of a day.
	ArchiveFreshnessAlarmSeconds = 2 * ArchiveBufferSeconds
)

// Archive is the archive bucket, its access-log bucket and the delivery stream that fills it.
type Archive struct {
	Bucket    awss3.Bucket
	LogBucket awss3.Bucket // S3 server access logs of Bucket
	Delivery  awskinesisfirehose.CfnDeliveryStream
	Role      awsiam.Role   // assumed by Firehose: read the events stream, write the bucket
	Policy    awsiam.Policy // the Role's only policy
	Logs      awslogs.LogGroup
}

// Object actions the functions that read and rewrite the archive (replay, the identity-rule
// dry run, privacy erase and export) get on its objects, and the one bucket action (listing).
var (
	archiveObjectActions = []string{"s3:DeleteObject", "s3:GetObject", "s3:PutObject"}
	archiveBucketActions = []string{"s3:ListBucket"}
)

// Firehose's documented S3 destination permissions (Firehose developer guide, "Grant
// Firehose access to an Amazon S3 destination"), and the reads of a Kinesis source.
var (
	firehoseObjectActions = []string{"s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"}
	firehoseBucketActions = []string{"s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"}
	firehoseStreamActions = []string{"kinesis:DescribeStream", "kinesis:GetRecords", "kinesis:GetShardIterator", "kinesis:ListShards"}
)

// newArchiveBuckets creates the archive bucket and the bucket of its access logs.
func (s *Stack) newArchiveBuckets() (archive, logs awss3.Bucket) {
	// The archive holds every event's personal data: S3 server access logs record who read,
	// rewrote or deleted which object (replays, privacy erasure), at the cost of a few cents.
	// The log bucket itself cannot log to itself (suppressed in nag.go). Logs name objects by
	// source and hour only, no personal data, and expire with the log retention.
	logs = awss3.NewBucket(s.Stack, jsii.String("ArchiveAccessLogs"), &awss3.BucketProps{
		Encryption:        awss3.BucketEncryption_S3_MANAGED, // server access logging requires SSE-S3
		BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
		EnforceSSL:        jsii.Bool(true),
		ObjectOwnership:   awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
		RemovalPolicy:     awscdk.RemovalPolicy_RETAIN,
		LifecycleRules: &[]*awss3.LifecycleRule{{
			Id:         jsii.String("expire-access-logs"),
			Expiration: awscdk.Duration_Days(jsii.Number(float64(s.Config.LogRetentionDays))),
		}},
	})
	archive = awss3.NewBucket(s.Stack, jsii.String("Archive"), &awss3.BucketProps{
		Encryption:        awss3.BucketEncryption_S3_MANAGED,
		BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
		EnforceSSL:        jsii.Bool(true),
		ObjectOwnership:   awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
		// Not versioned: a privacy erase rewrites or deletes objects, and a kept old version
		// would still hold the erased person's events.
		Versioned: jsii.Bool(false),
		// The raw history outlives a `cdk destroy`, like the table.
		RemovalPolicy:          awscdk.RemovalPolicy_RETAIN,
		ServerAccessLogsBucket: logs,
		ServerAccessLogsPrefix: jsii.String("archive/"),
		LifecycleRules: &[]*awss3.LifecycleRule{{
			Id:                                  jsii.String("expire-archive"),
			Expiration:                          awscdk.Duration_Days(jsii.Number(float64(s.Config.ArchiveRetentionDays))),
			AbortIncompleteMultipartUploadAfter: awscdk.Duration_Days(jsii.Number(1)),
		}},
	})
	return archive, logs
}

// newArchive builds the archive: buckets, the delivery stream's role, log group and the
// delivery stream itself (L1: the L2 would create its own roles and grants).
func (s *Stack) newArchive() *Archive {
	a := &Archive{}
	a.Bucket, a.LogBucket = s.newArchiveBuckets()
	a.Logs = awslogs.NewLogGroup(s.Stack, jsii.String("ArchiveDeliveryLogs"), &awslogs.LogGroupProps{
		Retention:     retention(s.Config.LogRetentionDays),
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	awslogs.NewLogStream(s.Stack, jsii.String("ArchiveDeliveryLogStream"), &awslogs.LogStreamProps{
		LogGroup:      a.Logs,
		LogStreamName: jsii.String(ArchiveLogStream),
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	a.Role = awsiam.NewRole(s.Stack, jsii.String("ArchiveDeliveryRole"), &awsiam.RoleProps{
		// The account condition stops another account's delivery stream from using the role.
		AssumedBy: awsiam.NewServicePrincipal(jsii.String("firehose.amazonaws.com"), &awsiam.ServicePrincipalOpts{
			Conditions: &map[string]interface{}{"StringEquals": map[string]interface{}{"sts:ExternalId": s.Stack.Account()}},
		}),
		Description: jsii.String("cdp archive: Firehose reads the events stream and writes the archive bucket"),
	})
	events := s.Streams[StreamEvents]
	a.Policy = awsiam.NewPolicy(s.Stack, jsii.String("ArchiveDeliveryPolicy"), &awsiam.PolicyProps{
		Roles: &[]awsiam.IRole{a.Role},
		Statements: &[]awsiam.PolicyStatement{
			statement(firehoseStreamActions, *events.StreamArn()),
			statement(firehoseBucketActions, *a.Bucket.BucketArn()),
			statement(firehoseObjectActions, *a.Bucket.ArnForObjects(jsii.String("*"))),
			statement([]string{"logs:PutLogEvents"}, *a.Logs.LogGroupArn()),
		},
	})
	a.Delivery = awskinesisfirehose.NewCfnDeliveryStream(s.Stack, jsii.String("ArchiveDelivery"), &awskinesisfirehose.CfnDeliveryStreamProps{
		DeliveryStreamType: jsii.String("KinesisStreamAsSource"),
		KinesisStreamSourceConfiguration: &awskinesisfirehose.CfnDeliveryStream_KinesisStreamSourceConfigurationProperty{
			KinesisStreamArn: events.StreamArn(),
			RoleArn:          a.Role.RoleArn(),
		},
		ExtendedS3DestinationConfiguration: s.archiveDestination(a),
	})
	// Firehose checks its permissions when the stream is created.
	a.Delivery.Node().AddDependency(a.Policy)
	return a
}

// archiveDestination is the S3 side: layout, compression, NDJSON and error logging.
func (s *Stack) archiveDestination(a *Archive) *awskinesisfirehose.CfnDeliveryStream_ExtendedS3DestinationConfigurationProperty {
	param := func(name, value string) *awskinesisfirehose.CfnDeliveryStream_ProcessorParameterProperty {
		return &awskinesisfirehose.CfnDeliveryStream_ProcessorParameterProperty{
			ParameterName: jsii.String(name), ParameterValue: jsii.String(value),
		}
	}
	return &awskinesisfirehose.CfnDeliveryStream_ExtendedS3DestinationConfigurationProperty{
		BucketArn:         a.Bucket.BucketArn(),
		RoleArn:           a.Role.RoleArn(),
		Prefix:            jsii.String(ArchivePrefix),
		ErrorOutputPrefix: jsii.String(ArchiveErrorPrefix),
		CompressionFormat: jsii.String("GZIP"),
		FileExtension:     jsii.String(ArchiveFileExtension),
		BufferingHints: &awskinesisfirehose.CfnDeliveryStream_BufferingHintsProperty{
			IntervalInSeconds: jsii.Number(ArchiveBufferSeconds),
			SizeInMBs:         jsii.Number(ArchiveBufferMB),
		},
		DynamicPartitioningConfiguration: &awskinesisfirehose.CfnDeliveryStream_DynamicPartitioningConfigurationProperty{
			Enabled: jsii.Bool(true),
		},
		ProcessingConfiguration: &awskinesisfirehose.CfnDeliveryStream_ProcessingConfigurationProperty{
			Enabled: jsii.Bool(true),
			Processors: &[]*awskinesisfirehose.CfnDeliveryStream_ProcessorProperty{
				{Type: jsii.String("MetadataExtraction"), Parameters: &[]*awskinesisfirehose.CfnDeliveryStream_ProcessorParameterProperty{
					param("MetadataExtractionQuery", ArchiveSourceQuery),
					param("JsonParsingEngine", "JQ-1.6"),
				}},
				// Records on the stream are single JSON documents without a newline; this
				// makes each object NDJSON (one record per line).
				{Type: jsii.String("AppendDelimiterToRecord"), Parameters: &[]*awskinesisfirehose.CfnDeliveryStream_ProcessorParameterProperty{
					param("Delimiter", "\\n"),
				}},
			},
		},
		CloudWatchLoggingOptions: &awskinesisfirehose.CfnDeliveryStream_CloudWatchLoggingOptionsProperty{
			Enabled:       jsii.Bool(true),
			LogGroupName:  a.Logs.LogGroupName(),
			LogStreamName: jsii.String(ArchiveLogStream),
		},
	}
}

// grantArchive lets a function read, rewrite and delete archive objects, and list them.
func (s *Stack) grantArchive(role awsiam.Role) {
	role.AddToPrincipalPolicy(statement(archiveBucketActions, *s.Archive.Bucket.BucketArn()))
	role.AddToPrincipalPolicy(statement(archiveObjectActions, *s.Archive.Bucket.ArnForObjects(jsii.String("*"))))
}

func statement(actions []string, resources ...string) awsiam.PolicyStatement {
	return awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings(actions...),
		Resources: jsii.Strings(resources...),
	})
}
