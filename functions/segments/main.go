// Command segments is the Lambda for computed traits and audiences. It consumes the `changes`
// stream (Kinesis trigger) and, on an EventBridge schedule every minute, re-evaluates
// time-windowed memberships and runs backfills; both arrive at the same entry point.
package main

import (
	"log/slog"

	"github.com/serverless-cdp/cdp/internal/app"
	"github.com/serverless-cdp/cdp/internal/app/segmentsfn"
	"github.com/serverless-cdp/cdp/internal/awsenv"
	"github.com/serverless-cdp/cdp/internal/monitor"
)

func main() {
	app.Start("segments", func(c awsenv.Clients, cfg app.Config, logger *slog.Logger) any {
		// Stream lag for the console: records and oldest wait per minute, written at most
		// every 10 s per container.
		return monitor.Invoke(monitor.ForStage(c.DynamoDB, cfg.Table, logger), "segments", segmentsfn.New(c, cfg, logger).Invoke)
	})
}
