// Command segments is the segments Lambda: computed traits and audiences. It consumes the
// `changes` stream (Kinesis trigger) and re-evaluates time-windowed memberships and runs backfill
// jobs on an EventBridge schedule (every minute); both arrive at the same handler.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/serverless-cdp/cdp/internal/app"
	"github.com/serverless-cdp/cdp/internal/awsenv"
	"github.com/serverless-cdp/cdp/internal/segment"
	"github.com/serverless-cdp/cdp/internal/stream"
)

func main() {
	cfg, err := app.FromEnv() // CDP_TABLE, CDP_ACTIVATIONS_STREAM, LOG_LEVEL
	if err != nil {
		fmt.Fprintln(os.Stderr, "segments: config:", err)
		os.Exit(1)
	}
	logger := cfg.Logger()
	clients, err := awsenv.Load(context.Background())
	if err != nil {
		logger.Error("aws config", "err", err)
		os.Exit(1)
	}
	h := segment.NewHandler(
		segment.NewStore(clients.DynamoDB, cfg.Table),
		stream.NewPublisher(clients.Kinesis, cfg.ActivationsStream),
		segment.Options{Logger: logger},
	)
	lambda.Start(h.Invoke)
}
