// Command api is the Lambda behind the HTTP API's /admin/... and /v1/spaces/... routes: the admin
// API (sources and write keys, more resources to come) and, once wired, the Profile API.
//
// Environment, read once: CDP_TABLE (the DynamoDB table, required), LOG_LEVEL (debug, info,
// warn, error; default info). AWS endpoints come from the standard AWS_ENDPOINT_URL_* variables.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/serverless-cdp/cdp/internal/admin"
	"github.com/serverless-cdp/cdp/internal/admintoken"
	"github.com/serverless-cdp/cdp/internal/awsenv"
	"github.com/serverless-cdp/cdp/internal/httpapi"
	"github.com/serverless-cdp/cdp/internal/source"
)

type config struct {
	table string
	level slog.Level
}

func loadConfig(getenv func(string) string) (config, error) {
	c := config{table: getenv("CDP_TABLE")}
	if c.table == "" {
		return c, errors.New("CDP_TABLE is required")
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
		slog.Error("api: configuration", "err", err)
		os.Exit(1)
	}
	logger := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: cfg.level}))
	clients, err := awsenv.Load(context.Background())
	if err != nil {
		logger.Error("api: AWS clients", "err", err)
		os.Exit(1)
	}

	handler := &httpapi.API{
		Admin: newAdminRouter(clients, cfg.table, logger).Serve,
		// Profile: the Profile API handler's Handle method, once wired here.
		Logger: logger,
	}
	lambda.Start(handler.Handle)
}

// newAdminRouter wires store → domain → admin routes. It is the one place the full admin API is
// assembled: resources from packages that register themselves (e.g. activation.RegisterAdmin)
// are added here as admin.Registrars, and main_test.go checks the result against
// api/openapi.yaml.
func newAdminRouter(clients awsenv.Clients, table string, logger *slog.Logger) *admin.Router {
	tokens := admintoken.NewStore(clients.DynamoDB, table)
	sources := source.NewRepository(clients.DynamoDB, table)
	return admin.New(tokens, admin.Services{Sources: sources}, logger)
}
