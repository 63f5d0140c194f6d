// Package awsenv builds AWS SDK clients. Endpoints come from the SDK's standard
// AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL_KINESIS variables, so the same
// code runs on AWS, against the local emulators, or against LocalStack.
package awsenv

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go/logging"
)

// Clients are the AWS clients every function may need.
type Clients struct {
	DynamoDB *dynamodb.Client
	Kinesis  *kinesis.Client
	// AWS is the loaded configuration, for the clients only some functions build (S3 for the
	// archive).
	AWS aws.Config
}

// Load reads the standard AWS configuration. When an endpoint override points at an emulator and
// no credentials are configured, it uses static dummy credentials so local runs need no AWS setup.
//
// The SDK's own log lines (retries, a response body it could not discard) go to logger when one
// is given, as JSON lines like every other line; otherwise to the SDK's default.
func Load(ctx context.Context, logger ...*slog.Logger) (Clients, error) {
	var opts []func(*config.LoadOptions) error
	if len(logger) > 0 && logger[0] != nil {
		opts = append(opts, config.WithLogger(sdkLogger(logger[0])))
	}
	if os.Getenv("AWS_REGION") == "" && os.Getenv("AWS_DEFAULT_REGION") == "" {
		opts = append(opts, config.WithRegion("us-east-1"))
	}
	if local() && os.Getenv("AWS_ACCESS_KEY_ID") == "" && os.Getenv("AWS_PROFILE") == "" {
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("local", "local", "")))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return Clients{}, fmt.Errorf("load AWS config: %w", err)
	}
	return Clients{DynamoDB: dynamodb.NewFromConfig(cfg, DynamoDBOptions()...), Kinesis: kinesis.NewFromConfig(cfg), AWS: cfg}, nil
}

// sdkLogger routes the SDK's log lines to slog: warnings as warnings, the rest as debug.
func sdkLogger(l *slog.Logger) logging.Logger {
	return logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
		level := slog.LevelDebug
		if c == logging.Warn {
			level = slog.LevelWarn
		}
		l.Log(context.Background(), level, fmt.Sprintf(format, v...), "source", "aws-sdk")
	})
}

// Local reports whether an endpoint override points the SDK at emulators (S3 clients then use
// path-style addresses).
func Local() bool { return local() }

// DynamoDBOptions are the client options for the configured endpoint: against an emulator,
// response CRC32 checks are off, because DynamoDB Local's error responses carry CRC32 headers
// that do not match their bodies and the SDK would log a warning for each. Real DynamoDB keeps
// the check.
func DynamoDBOptions() []func(*dynamodb.Options) {
	if !local() {
		return nil
	}
	return []func(*dynamodb.Options){func(o *dynamodb.Options) { o.DisableValidateResponseChecksum = true }}
}

// New builds the clients from a loaded configuration.
func New(cfg aws.Config) Clients {
	return Clients{
		DynamoDB: dynamodb.NewFromConfig(cfg),
		Kinesis:  kinesis.NewFromConfig(cfg),
		AWS:      cfg,
	}
}

func local() bool {
	for _, k := range []string{"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_KINESIS", "AWS_ENDPOINT_URL_S3"} {
		if os.Getenv(k) != "" {
			return true
		}
	}
	return false
}
