// Package ingestfn is the composition root of functions/ingest (the tracking API): it wires
// only what ingest uses. The local runner calls the same constructor.
package ingestfn

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/serverless-cdp/cdp/internal/app"
	"github.com/serverless-cdp/cdp/internal/awsenv"
	"github.com/serverless-cdp/cdp/internal/ingest"
	"github.com/serverless-cdp/cdp/internal/monitor"
	"github.com/serverless-cdp/cdp/internal/source"
	"github.com/serverless-cdp/cdp/internal/stream"
)

// New wires the tracking API: cached write-key lookups → validation → the events stream. The
// console's per-minute counts and rejection samples are kept in memory and written at most
// every monitor.FlushEvery per container (never per event).
func New(c awsenv.Clients, cfg app.Config, logger *slog.Logger) *ingest.Handler {
	repo := source.NewRepository(c.DynamoDB, cfg.Table)
	return ingest.New(
		// Cached: the lookup runs on every request; a disabled source takes effect within the TTL.
		writeKeys{resolve: source.NewCache(repo, cfg.KeyCacheTTL, time.Now).ResolveWriteKey},
		stream.NewPublisher(c.Kinesis, cfg.EventsStream),
		ingest.Config{AllowedOrigins: cfg.AllowedOrigins, Logger: logger,
			Monitor: monitor.NewRecorder(monitor.NewStore(c.DynamoDB, cfg.Table), monitor.RecorderOptions{Logger: logger})},
	)
}

type resolveFunc func(ctx context.Context, key string) (source.Source, error)

// writeKeys adapts the source repository to what ingest needs to know.
type writeKeys struct{ resolve resolveFunc }

func (w writeKeys) ResolveWriteKey(ctx context.Context, key string) (ingest.Source, error) {
	s, err := w.resolve(ctx, key)
	if errors.Is(err, source.ErrNotFound) {
		return ingest.Source{}, ingest.ErrUnknownKey
	}
	if err != nil {
		return ingest.Source{}, err
	}
	return ingest.Source{ID: s.ID, Enabled: s.Enabled}, nil
}
