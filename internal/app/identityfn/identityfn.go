// Package identityfn is the composition root of functions/identity: it wires only what the
// identity stage uses. The local runner calls the same constructor.
package identityfn

import (
	"log/slog"

	"github.com/serverless-cdp/cdp/internal/app"
	"github.com/serverless-cdp/cdp/internal/awsenv"
	"github.com/serverless-cdp/cdp/internal/deadletter"
	"github.com/serverless-cdp/cdp/internal/identity"
	"github.com/serverless-cdp/cdp/internal/stream"
)

// New wires the events-stream handler: dedupe → resolution → profiles → changes.
func New(c awsenv.Clients, cfg app.Config, logger *slog.Logger) *identity.Handler {
	st := identity.NewStore(c.DynamoDB, cfg.Table)
	rules := identity.NewRulesService(c.DynamoDB, cfg.Table, identity.MaxRulesCache)
	// Suppressed identifiers are dropped before anything is stored; an erased profile's id is
	// never given to a new profile.
	list := cfg.Checker(c.DynamoDB)
	return identity.NewHandler(identity.HandlerConfig{
		Processor: identity.NewProcessor(st, rules, identity.Options{Retention: cfg.TimelineRetention, SkipLegacyDedupe: !cfg.LegacyDedupe,
			Erased: list, Logger: logger}),
		Suppressions: list,
		Store:        st,
		Changes:      stream.NewPublisher(c.Kinesis, cfg.ChangesStream),
		DeadLetters:  deadletter.NewStore(c.DynamoDB, cfg.Table),
		Logger:       logger,
	})
}
