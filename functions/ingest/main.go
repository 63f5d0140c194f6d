// Command ingest is the tracking API Lambda (API Gateway HTTP API, payload format 2.0).
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/serverless-cdp/cdp/internal/app"
	"github.com/serverless-cdp/cdp/internal/awsenv"
)

func main() {
	cfg, err := app.FromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ingest: config:", err)
		os.Exit(1)
	}
	logger := cfg.Logger()
	clients, err := awsenv.Load(context.Background())
	if err != nil {
		logger.Error("aws config", "err", err)
		os.Exit(1)
	}
	lambda.Start(app.NewIngest(clients, cfg, logger).Handle)
}
