package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/serverless-cdp/cdp/internal/awsenv"
	"github.com/serverless-cdp/cdp/internal/ingest"
	"github.com/serverless-cdp/cdp/internal/source"
)

// Handlers are every function's handler, built once; the local runner serves them all.
type Handlers struct {
	Ingest *ingest.Handler

	sources *source.Repository
}

// Build wires every function.
func Build(_ context.Context, c awsenv.Clients, cfg Config, logger *slog.Logger) (*Handlers, error) {
	return &Handlers{
		Ingest:  NewIngest(c, cfg, logger),
		sources: source.NewRepository(c.DynamoDB, cfg.Table),
	}, nil
}

// SeedDev makes sure the local demo source and admin token exist (idempotent).
func (h *Handlers) SeedDev(ctx context.Context, writeKey, adminToken string) error {
	if writeKey != "" {
		if _, err := h.sources.EnsureSource(ctx, "dev", writeKey); err != nil {
			return fmt.Errorf("seed dev source: %w", err)
		}
	}
	return nil
}
