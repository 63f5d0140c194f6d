package app

import (
	"log/slog"

	"github.com/serverless-cdp/cdp/internal/activation"
	"github.com/serverless-cdp/cdp/internal/admin"
	"github.com/serverless-cdp/cdp/internal/admintoken"
	"github.com/serverless-cdp/cdp/internal/awsenv"
	"github.com/serverless-cdp/cdp/internal/deadletter"
	"github.com/serverless-cdp/cdp/internal/identity"
	"github.com/serverless-cdp/cdp/internal/segment"
	"github.com/serverless-cdp/cdp/internal/source"
)

// NewAdminRouter assembles the whole admin API: the one place every resource is mounted.
// admin_test.go checks the result against api/openapi.yaml route for route.
func NewAdminRouter(c awsenv.Clients, cfg Config, logger *slog.Logger) *admin.Router {
	tokens := admintoken.NewStore(c.DynamoDB, cfg.Table)
	sources := source.NewRepository(c.DynamoDB, cfg.Table)
	rules := identity.NewRulesService(c.DynamoDB, cfg.Table, identity.MaxRulesCache)
	// Dead letters of the pipeline stages, replayed through the stage's own handler.
	deadLetters := deadletter.NewService(deadletter.NewStore(c.DynamoDB, cfg.Table), map[string]deadletter.Replayer{
		identity.Stage: NewIdentity(c, cfg, logger),
	})
	segments := segment.NewService(segment.NewStore(c.DynamoDB, cfg.Table), nil)
	return admin.New(tokens, admin.Services{Sources: sources, IdentityRules: rules, DeadLetters: deadLetters}, logger,
		func(r *admin.Router) {
			activation.RegisterAdmin(r, newDestinations(c, cfg), NewActivation(c, cfg, logger))
		},
		func(r *admin.Router) { segment.RegisterAdmin(r, segments) },
	)
}
