// Command identity is the Lambda on the `events` Kinesis stream: dedupe, identity resolution,
// merges, traits and timeline; it emits one `changes` record per profile touched.
package main

import (
	"log/slog"

	"github.com/serverless-cdp/cdp/internal/app"
	"github.com/serverless-cdp/cdp/internal/app/identityfn"
	"github.com/serverless-cdp/cdp/internal/awsenv"
	"github.com/serverless-cdp/cdp/internal/monitor"
)

func main() {
	app.Start("identity", func(c awsenv.Clients, cfg app.Config, logger *slog.Logger) any {
		// Stream lag for the console: records and oldest wait per minute, written at most
		// every 10 s per container.
		return monitor.Kinesis(monitor.ForStage(c.DynamoDB, cfg.Table, logger), "identity", identityfn.New(c, cfg, logger).Handle)
	})
}
