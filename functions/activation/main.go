// Command activation is the Lambda that delivers activation records to webhook destinations. It
// has two triggers: the `activations` Kinesis stream (ReportBatchItemFailures) and an EventBridge
// schedule every minute that drains the retry queue; both arrive at the same entry point.
package main

import (
	"log/slog"

	"github.com/serverless-cdp/cdp/internal/app"
	"github.com/serverless-cdp/cdp/internal/app/activationfn"
	"github.com/serverless-cdp/cdp/internal/awsenv"
	"github.com/serverless-cdp/cdp/internal/monitor"
)

func main() {
	app.Start("activation", func(c awsenv.Clients, cfg app.Config, logger *slog.Logger) any {
		// Stream lag for the console: records and oldest wait per minute, written at most
		// every 10 s per container.
		return monitor.Invoke(monitor.ForStage(c.DynamoDB, cfg.Table, logger), "activation", activationfn.New(c, cfg, logger).Invoke)
	})
}
