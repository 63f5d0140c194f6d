// Command activation is the Lambda that delivers activation records to webhook destinations. It
// has two triggers: the `activations` Kinesis stream (with ReportBatchItemFailures) and an
// EventBridge schedule every minute that drains the retry queue.
//
// Environment, read once: CDP_TABLE (required), CDP_ALLOW_PRIVATE_WEBHOOKS (true allows
// private, loopback and link-local targets; default false, never on AWS),
// CDP_WEBHOOK_TIMEOUT_SECONDS (per request, default 10), CDP_SPACE_ID (context.personas.space_id,
// default "default"), LOG_LEVEL (debug, info, warn, error). AWS endpoints come from the standard
// AWS_ENDPOINT_URL_* variables.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/serverless-cdp/cdp/internal/activation"
	"github.com/serverless-cdp/cdp/internal/awsenv"
	"github.com/serverless-cdp/cdp/internal/destination"
	"github.com/serverless-cdp/cdp/internal/webhook"
)

type config struct {
	table        string
	allowPrivate bool
	timeout      time.Duration
	spaceID      string
	level        slog.Level
}

func loadConfig(getenv func(string) string) (config, error) {
	c := config{table: getenv("CDP_TABLE"), timeout: 10 * time.Second, spaceID: getenv("CDP_SPACE_ID")}
	if c.table == "" {
		return c, errors.New("CDP_TABLE is required")
	}
	if v := getenv("CDP_ALLOW_PRIVATE_WEBHOOKS"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return c, fmt.Errorf("CDP_ALLOW_PRIVATE_WEBHOOKS=%q: want true or false", v)
		}
		c.allowPrivate = b
	}
	if v := getenv("CDP_WEBHOOK_TIMEOUT_SECONDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 30 {
			return c, fmt.Errorf("CDP_WEBHOOK_TIMEOUT_SECONDS=%q: want 1 to 30", v)
		}
		c.timeout = time.Duration(n) * time.Second
	}
	if v := getenv("LOG_LEVEL"); v != "" {
		if err := c.level.UnmarshalText([]byte(v)); err != nil {
			return c, fmt.Errorf("LOG_LEVEL=%q: %w", v, err)
		}
	}
	return c, nil
}

func main() {
	cfg, err := loadConfig(os.Getenv)
	if err != nil {
		slog.Error("activation: configuration", "err", err)
		os.Exit(1)
	}
	logger := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: cfg.level}))
	clients, err := awsenv.Load(context.Background())
	if err != nil {
		logger.Error("activation: AWS clients", "err", err)
		os.Exit(1)
	}
	policy := webhook.Policy{AllowPrivate: cfg.allowPrivate}
	dests := destination.NewService(clients.DynamoDB, cfg.table, destination.WithPolicy(policy))
	client := webhook.NewClient(webhook.Options{Policy: policy, Timeout: cfg.timeout})
	d := activation.New(clients.DynamoDB, dests, client, activation.Config{
		Table: cfg.table, Timeout: cfg.timeout, SpaceID: cfg.spaceID, Logger: logger,
	})
	lambda.Start(d.Invoke)
}
