package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/serverless-cdp/cdp/internal/activation"
	"github.com/serverless-cdp/cdp/internal/admintoken"
	"github.com/serverless-cdp/cdp/internal/awsenv"
	"github.com/serverless-cdp/cdp/internal/httpapi"
	"github.com/serverless-cdp/cdp/internal/identity"
	"github.com/serverless-cdp/cdp/internal/ingest"
	"github.com/serverless-cdp/cdp/internal/segment"
	"github.com/serverless-cdp/cdp/internal/source"
)

// Handlers are every function's handler, built once; the local runner serves them all.
type Handlers struct {
	Ingest     *ingest.Handler
	API        *httpapi.API
	Identity   *identity.Handler
	Segments   *segment.Handler
	Activation *activation.Deliverer

	sources *source.Repository
	tokens  *admintoken.Store
}

// Build wires every function.
func Build(_ context.Context, c awsenv.Clients, cfg Config, logger *slog.Logger) (*Handlers, error) {
	return &Handlers{
		Ingest:     NewIngest(c, cfg, logger),
		API:        NewAPI(c, cfg, logger),
		Identity:   NewIdentity(c, cfg, logger),
		Segments:   NewSegments(c, cfg, logger),
		Activation: NewActivation(c, cfg, logger),
		sources:    source.NewRepository(c.DynamoDB, cfg.Table),
		tokens:     admintoken.NewStore(c.DynamoDB, cfg.Table),
	}, nil
}

// SeedDev makes sure the local demo source and admin token exist (idempotent).
func (h *Handlers) SeedDev(ctx context.Context, writeKey, adminToken string) error {
	if writeKey != "" {
		if _, err := h.sources.EnsureSource(ctx, "dev", writeKey); err != nil {
			return fmt.Errorf("seed dev source: %w", err)
		}
	}
	if adminToken != "" {
		if _, err := h.tokens.Ensure(ctx, adminToken); err != nil {
			return fmt.Errorf("seed admin token: %w", err)
		}
	}
	return nil
}
