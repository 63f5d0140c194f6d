// Command api is the Lambda behind the HTTP API's /admin/... and /v1/spaces/... routes: the admin
// API (sources, destinations, computed traits, audiences, …) and the Profile API.
package main

import (
	"log/slog"

	"github.com/serverless-cdp/cdp/internal/app"
	"github.com/serverless-cdp/cdp/internal/app/apifn"
	"github.com/serverless-cdp/cdp/internal/awsenv"
)

func main() {
	app.Start("api", func(c awsenv.Clients, cfg app.Config, logger *slog.Logger) any {
		return apifn.New(c, cfg, logger).Handle
	})
}
