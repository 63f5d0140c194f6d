// Command identity is the Lambda handler of the `events` Kinesis stream: dedupe, identity
// resolution, merges, traits and timeline; it emits one `changes` record per profile touched.
//
// Environment: CDP_TABLE (DynamoDB table), CDP_CHANGES_STREAM (Kinesis stream name),
// CDP_TIMELINE_RETENTION_DAYS (default 90, at least 1), LOG_LEVEL (debug|info|warn|error).
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/serverless-cdp/cdp/internal/awsenv"
	"github.com/serverless-cdp/cdp/internal/deadletter"
	"github.com/serverless-cdp/cdp/internal/identity"
	"github.com/serverless-cdp/cdp/internal/stream"
)

type config struct {
	table, changes string
	retention      time.Duration
	level          slog.Level
}

func loadConfig() (config, error) {
	c := config{table: os.Getenv("CDP_TABLE"), changes: os.Getenv("CDP_CHANGES_STREAM"), retention: identity.DefaultRetention}
	if c.table == "" || c.changes == "" {
		return c, fmt.Errorf("CDP_TABLE and CDP_CHANGES_STREAM are required")
	}
	if v := os.Getenv("CDP_TIMELINE_RETENTION_DAYS"); v != "" {
		days, err := strconv.Atoi(v)
		if err != nil || days < 1 {
			return c, fmt.Errorf("CDP_TIMELINE_RETENTION_DAYS=%q: want a whole number of days ≥ 1", v)
		}
		c.retention = time.Duration(days) * 24 * time.Hour
	}
	if err := c.level.UnmarshalText([]byte(strings.ToUpper(os.Getenv("LOG_LEVEL")))); err != nil && os.Getenv("LOG_LEVEL") != "" {
		return c, fmt.Errorf("LOG_LEVEL: %w", err)
	}
	return c, nil
}

func main() {
	cfg, err := loadConfig()
	if err != nil {
		slog.Error("identity: configuration", "err", err)
		os.Exit(1)
	}
	log := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: cfg.level}))
	clients, err := awsenv.Load(context.Background())
	if err != nil {
		log.Error("identity: AWS clients", "err", err)
		os.Exit(1)
	}
	st := identity.NewStore(clients.DynamoDB, cfg.table)
	rules := identity.NewRulesService(clients.DynamoDB, cfg.table, identity.MaxRulesCache)
	h := identity.NewHandler(identity.HandlerConfig{
		Processor:   identity.NewProcessor(st, rules, identity.Options{Retention: cfg.retention, Logger: log}),
		Store:       st,
		Changes:     stream.NewPublisher(clients.Kinesis, cfg.changes),
		DeadLetters: deadletter.NewStore(clients.DynamoDB, cfg.table),
		Logger:      log,
	})
	lambda.Start(h.Handle)
}
