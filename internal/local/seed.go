package local

import (
	"context"
	"fmt"

	"github.com/serverless-cdp/cdp/internal/admintoken"
	"github.com/serverless-cdp/cdp/internal/app"
	"github.com/serverless-cdp/cdp/internal/awsenv"
	"github.com/serverless-cdp/cdp/internal/source"
)

// seedDev makes sure the local demo source and admin token exist (idempotent).
func seedDev(ctx context.Context, c awsenv.Clients, cfg app.Config, writeKey, adminToken string) error {
	if writeKey != "" {
		if _, err := source.NewRepository(c.DynamoDB, cfg.Table).EnsureSource(ctx, "dev", writeKey); err != nil {
			return fmt.Errorf("seed dev source: %w", err)
		}
	}
	if adminToken != "" {
		if _, err := admintoken.NewStore(c.DynamoDB, cfg.Table).Ensure(ctx, adminToken); err != nil {
			return fmt.Errorf("seed admin token: %w", err)
		}
	}
	return nil
}
