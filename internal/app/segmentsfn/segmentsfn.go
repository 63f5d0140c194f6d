// Package segmentsfn is the composition root of functions/segments: it wires only what the
// segments stage uses. The local runner calls the same constructor.
package segmentsfn

import (
	"log/slog"

	"github.com/serverless-cdp/cdp/internal/app"
	"github.com/serverless-cdp/cdp/internal/awsenv"
	"github.com/serverless-cdp/cdp/internal/deadletter"
	"github.com/serverless-cdp/cdp/internal/segment"
	"github.com/serverless-cdp/cdp/internal/stream"
	"github.com/serverless-cdp/cdp/internal/timeline"
)

// New wires the changes-stream handler (computed traits, audiences) and its schedule.
func New(c awsenv.Clients, cfg app.Config, logger *slog.Logger) *segment.Handler {
	return segment.NewHandler(
		segment.NewStore(c.DynamoDB, cfg.Table),
		stream.NewPublisher(c.Kinesis, cfg.ActivationsStream),
		segment.Options{
			Logger:      logger,
			DeadLetters: deadletter.NewStore(c.DynamoDB, cfg.Table),
			// Backfills of new or edited definitions read the timeline the identity stage keeps.
			History:           timeline.NewReader(c.DynamoDB, cfg.Table),
			TimelineRetention: cfg.TimelineRetention,
			// Changes about profiles a privacy request erased are dropped (and counted).
			Erased: cfg.Checker(c.DynamoDB),
			// Predictive computed traits are retrained on this schedule (0: weekly).
			RetrainEvery: cfg.RetrainEvery,
			RescoreEvery: cfg.RescoreEvery, // and re-scored with the published model (0: daily)
		},
	)
}
