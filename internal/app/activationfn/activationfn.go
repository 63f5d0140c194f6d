// Package activationfn is the composition root of functions/activation: it wires only what the
// activation stage uses. The local runner and the api function (test deliveries, delivery
// replays) call the same constructors.
package activationfn

import (
	"log/slog"

	"github.com/serverless-cdp/cdp/internal/activation"
	"github.com/serverless-cdp/cdp/internal/app"
	"github.com/serverless-cdp/cdp/internal/awsenv"
	"github.com/serverless-cdp/cdp/internal/destination"
	"github.com/serverless-cdp/cdp/internal/webhook"
)

func webhookPolicy(cfg app.Config) webhook.Policy {
	return webhook.Policy{AllowPrivate: cfg.AllowPrivateWebhooks, AllowLoopback: cfg.AllowLoopbackWebhooks}
}

// NewDestinations is the destination service with the configured webhook address policy.
func NewDestinations(c awsenv.Clients, cfg app.Config) *destination.Service {
	return destination.NewService(c.DynamoDB, cfg.Table, destination.WithPolicy(webhookPolicy(cfg)))
}

// New wires the activations-stream handler and the retry schedule.
func New(c awsenv.Clients, cfg app.Config, logger *slog.Logger) *activation.Deliverer {
	client := webhook.NewClient(webhook.Options{Policy: webhookPolicy(cfg), Timeout: cfg.WebhookTimeout})
	return activation.New(c.DynamoDB, NewDestinations(c, cfg), client, activation.Config{
		Table: cfg.Table, Timeout: cfg.WebhookTimeout, SpaceID: cfg.SpaceID, Logger: logger,
		// Records about profiles a privacy request erased are dropped (and counted).
		Erased: cfg.Checker(c.DynamoDB),
	})
}
