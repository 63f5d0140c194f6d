// Command identity is the Lambda on the `events` Kinesis stream: dedupe, identity resolution,
// merges, traits and timeline; it emits one `changes` record per profile touched.
package main

import (
	"log/slog"

	"github.com/serverless-cdp/cdp/internal/app"
	"github.com/serverless-cdp/cdp/internal/app/identityfn"
	"github.com/serverless-cdp/cdp/internal/awsenv"
)

func main() {
	app.Start("identity", func(c awsenv.Clients, cfg app.Config, logger *slog.Logger) any {
		return identityfn.New(c, cfg, logger).Handle
	})
}
