package bench

// Published AWS list prices used to turn measured units into dollars. All in USD, region
// us-east-1 (N. Virginia), first pricing tier, no free tier, as listed on the AWS pricing pages
// (aws.amazon.com/dynamodb/pricing/on-demand, /kinesis/data-streams/pricing, /lambda/pricing,
// /api-gateway/pricing, /cloudwatch/pricing, /firehose/pricing, /s3/pricing) on PricesDate. They were not re-fetched by this
// program: check them before quoting a number, and edit only this file when they change.
const (
	PricesRegion = "us-east-1"
	PricesDate   = "2025-06-01"

	// DynamoDB on-demand (prices after the November 2024 reduction).
	DynamoDBPerMillionWRU = 0.625
	DynamoDBPerMillionRRU = 0.125

	// Kinesis Data Streams, provisioned capacity mode (the stack's default, infra/config.go):
	// shard-hours (24 h retention included) and PUT payload units (each record rounded up to
	// the next 25 KB); reads by shared-throughput consumers are not billed. A shard takes
	// 1 MB/s or 1,000 records/s of writes and serves 2 MB/s per consumer.
	KinesisPerShardHour           = 0.015
	KinesisPerMillionPutUnits     = 0.014
	KinesisPutUnitBytes           = 25 * 1024
	KinesisShardWriteRecordsPerS  = 1000
	KinesisShardWriteBytesPerS    = 1 << 20
	KinesisShardReadBytesPerS     = 2 << 20
	KinesisExtendedRetentionShard = 0.02 // per shard-hour beyond 24 h (not used by default)
	ShardsPerStream               = 1    // infra's default cdp:shardCount

	// Kinesis Data Streams, on-demand capacity mode (-c cdp:streamMode=on-demand). Ingest is
	// billed per GB with each record rounded up to the next 1 KB; retrieval per GB read.
	KinesisPerStreamHour     = 0.04
	KinesisPerGBIngested     = 0.08
	KinesisPerGBRetrieved    = 0.04
	KinesisIngestRoundingKiB = 1

	// CloudWatch: standard-resolution alarms, and the number the default stack creates
	// (infra/stack_test.go StandardAlarms pins the same count). The dashboard is opt-in.
	CloudWatchPerAlarmMonth = 0.10
	CloudWatchAlarms        = 20
	// Schedules: EventBridge invokes the segments, activation and privacy ticks once a minute
	// each (scheduled rules are free; the Lambda invocations are not).
	ScheduleInvocationsPerMonth = 3 * 60 * HoursPerMonth
	// Secrets Manager: the privacy key (one secret; its reads, once per cold start, are
	// negligible at $0.05 per 10,000).
	SecretsManagerPerSecretMonth = 0.40

	// Kinesis Data Firehose (the raw event archive, infra/archive.go): ingestion from a Kinesis
	// stream per GB with each record rounded up to the next 5 KB; dynamic partitioning per GB
	// processed and per 1,000 S3 objects delivered. Each object is also an S3 PUT. Firehose
	// writes an object per partition (source and hour) when ArchiveBufferMB of records have
	// arrived or ArchiveBufferSeconds have passed (infra/archive.go's values). Dynamic
	// partitioning's JQ processing hours ($0.07 per hour) are not modelled: they are not
	// measurable locally and are small for a one-field query.
	FirehosePerGBIngested        = 0.029
	FirehoseIngestRoundingBytes  = 5 * 1024
	FirehosePartitioningPerGB    = 0.020
	FirehosePerThousandObjects   = 0.005
	S3PerThousandPuts            = 0.005
	ArchiveBufferSeconds         = 900
	ArchiveBufferMB              = 128
	ArchiveSources               = 1 // sources sending all month, each with its own objects
	ArchiveObjectsPerSourceMonth = HoursPerMonth * 3600 / ArchiveBufferSeconds
	// EventsStreamReaders: the identity function and the archive's delivery stream both read
	// the events stream (shard read throughput and on-demand retrieval count both).
	EventsStreamReaders = 2

	// Lambda on arm64 (Graviton): duration per GB-second and requests.
	LambdaArm64PerGBSecond   = 0.0000133334
	LambdaPerMillionRequests = 0.20
	LambdaMemoryMB           = 256 // infra/lambda.go's default function memory
	APIGatewayHTTPPerMillion = 1.00
	HoursPerMonth            = 730
	StreamCount              = 3 // events, changes, activations

	// PeakFactor is the peak-to-average traffic ratio assumed when sizing shards for a
	// monthly volume (cost_by_volume).
	PeakFactor = 10
	gibibyte   = 1 << 30
	perMillion = 1e6
)
