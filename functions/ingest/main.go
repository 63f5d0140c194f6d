// Command ingest is the tracking API Lambda (API Gateway HTTP API, payload format 2.0): it
// authenticates write keys, validates Segment messages and writes them to the `events` stream.
package main

import (
	"log/slog"

	"github.com/serverless-cdp/cdp/internal/app"
	"github.com/serverless-cdp/cdp/internal/app/ingestfn"
	"github.com/serverless-cdp/cdp/internal/awsenv"
)

func main() {
	app.Start("ingest", func(c awsenv.Clients, cfg app.Config, logger *slog.Logger) any {
		return ingestfn.New(c, cfg, logger).Handle
	})
}
