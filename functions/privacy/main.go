// Command privacy is the Lambda the one-minute schedule invokes: it continues the privacy
// requests (delete, suppress, export…) and the replays the API could not finish inline, and
// retries Privacy Request notices.
package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/serverless-cdp/cdp/internal/app"
	"github.com/serverless-cdp/cdp/internal/app/privacyfn"
	"github.com/serverless-cdp/cdp/internal/awsenv"
)

func main() {
	app.Start("privacy", func(c awsenv.Clients, cfg app.Config, logger *slog.Logger) any {
		requests, replays := privacyfn.New(c, cfg, logger), privacyfn.NewReplay(c, cfg, logger)
		return func(ctx context.Context) error {
			return errors.Join(requests.Run(ctx), replays.Run(ctx))
		}
	})
}
