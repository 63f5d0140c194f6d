package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/serverless-cdp/cdp/internal/awsenv"
)

// Start is the body of every functions/<name>/main.go: read the configuration once, build the
// AWS clients, wire the handler with build, and hand it to the Lambda runtime.
func Start(name string, build func(c awsenv.Clients, cfg Config, logger *slog.Logger) any) {
	cfg, err := FromEnv()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: configuration: %v\n", name, err)
		os.Exit(1)
	}
	logger := cfg.Logger().With("function", name)
	clients, err := awsenv.Load(context.Background(), logger)
	if err != nil {
		logger.Error("aws configuration", "err", err)
		os.Exit(1)
	}
	lambda.Start(build(clients, cfg, logger))
}
