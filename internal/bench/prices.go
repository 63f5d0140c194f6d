package bench

// Published AWS on-demand list prices used to turn measured units into dollars. All in USD,
// region us-east-1 (N. Virginia), first pricing tier, no free tier, as listed on the AWS pricing
// pages (aws.amazon.com/dynamodb/pricing/on-demand, /kinesis/data-streams/pricing,
// /lambda/pricing, /api-gateway/pricing) on PricesDate. They were not re-fetched by this
// program: check them before quoting a number, and edit only this file when they change.
const (
	PricesRegion = "us-east-1"
	PricesDate   = "2025-06-01"

	// DynamoDB on-demand (prices after the November 2024 reduction).
	DynamoDBPerMillionWRU = 0.625
	DynamoDBPerMillionRRU = 0.125

	// Kinesis Data Streams, on-demand capacity mode. Ingest is billed per GB with each record
	// rounded up to the next 1 KB; retrieval (shared-throughput consumers) per GB read.
	KinesisPerStreamHour     = 0.04
	KinesisPerGBIngested     = 0.08
	KinesisPerGBRetrieved    = 0.04
	KinesisIngestRoundingKiB = 1

	// Lambda on arm64 (Graviton): duration per GB-second and requests.
	LambdaArm64PerGBSecond   = 0.0000133334
	LambdaPerMillionRequests = 0.20
	LambdaMemoryMB           = 256 // infra/lambda.go's default function memory
	APIGatewayHTTPPerMillion = 1.00
	HoursPerMonth            = 730
	StreamCount              = 3 // events, changes, activations
	gibibyte                 = 1 << 30
	perMillion               = 1e6
)
