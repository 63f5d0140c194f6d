package app

import (
	"context"
	"errors"
	"log/slog"

	"github.com/serverless-cdp/cdp/internal/activation"
	"github.com/serverless-cdp/cdp/internal/admintoken"
	"github.com/serverless-cdp/cdp/internal/awsenv"
	"github.com/serverless-cdp/cdp/internal/deadletter"
	"github.com/serverless-cdp/cdp/internal/destination"
	"github.com/serverless-cdp/cdp/internal/httpapi"
	"github.com/serverless-cdp/cdp/internal/identity"
	"github.com/serverless-cdp/cdp/internal/profile"
	"github.com/serverless-cdp/cdp/internal/segment"
	"github.com/serverless-cdp/cdp/internal/stream"
	"github.com/serverless-cdp/cdp/internal/webhook"
)

// NewIdentity wires the events-stream handler: dedupe → resolution → profiles → changes.
func NewIdentity(c awsenv.Clients, cfg Config, logger *slog.Logger) *identity.Handler {
	st := identity.NewStore(c.DynamoDB, cfg.Table)
	rules := identity.NewRulesService(c.DynamoDB, cfg.Table, identity.MaxRulesCache)
	return identity.NewHandler(identity.HandlerConfig{
		Processor:   identity.NewProcessor(st, rules, identity.Options{Retention: cfg.TimelineRetention, SkipLegacyDedupe: !cfg.LegacyDedupe, Logger: logger}),
		Store:       st,
		Changes:     stream.NewPublisher(c.Kinesis, cfg.ChangesStream),
		DeadLetters: deadletter.NewStore(c.DynamoDB, cfg.Table),
		Logger:      logger,
	})
}

func (cfg Config) webhookPolicy() webhook.Policy {
	return webhook.Policy{AllowPrivate: cfg.AllowPrivateWebhooks, AllowLoopback: cfg.AllowLoopbackWebhooks}
}

func newDestinations(c awsenv.Clients, cfg Config) *destination.Service {
	return destination.NewService(c.DynamoDB, cfg.Table, destination.WithPolicy(cfg.webhookPolicy()))
}

// NewActivation wires the activations-stream handler and the retry schedule.
func NewActivation(c awsenv.Clients, cfg Config, logger *slog.Logger) *activation.Deliverer {
	client := webhook.NewClient(webhook.Options{Policy: cfg.webhookPolicy(), Timeout: cfg.WebhookTimeout})
	return activation.New(c.DynamoDB, newDestinations(c, cfg), client, activation.Config{
		Table: cfg.Table, Timeout: cfg.WebhookTimeout, SpaceID: cfg.SpaceID, Logger: logger,
	})
}

// NewAPI wires the admin API and the Profile API (one Lambda behind /admin and /v1/spaces).
func NewAPI(c awsenv.Clients, cfg Config, logger *slog.Logger) *httpapi.API {
	router := NewAdminRouter(c, cfg, logger)
	tokens := admintoken.NewStore(c.DynamoDB, cfg.Table)
	// The Profile API takes the same tokens as the admin API (Basic auth, token as user name).
	auth := func(ctx context.Context, token string) (bool, error) {
		_, err := tokens.Verify(ctx, token)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, admintoken.ErrNotFound):
			return false, nil
		default:
			return false, err
		}
	}
	segments := segment.NewService(segment.NewStore(c.DynamoDB, cfg.Table), nil)
	prof := profile.NewHandler(identity.NewStore(c.DynamoDB, cfg.Table), auth, logger, cfg.SpaceID).
		WithComputed(func(ctx context.Context, profileID string) (profile.Computed, error) {
			v, err := segments.Profile(ctx, profileID)
			if errors.Is(err, segment.ErrNotFound) {
				return profile.Computed{}, nil // the segments stage has not seen this profile yet
			}
			if err != nil {
				return profile.Computed{}, err
			}
			out := profile.Computed{Traits: v.ComputedTraits}
			for _, a := range v.Audiences {
				out.Audiences = append(out.Audiences, a.Key)
			}
			return out, nil
		})
	return &httpapi.API{Admin: router.Serve, Profile: prof.Handle, Logger: logger}
}

// NewSegments wires the changes-stream handler (computed traits, audiences) and its schedule.
func NewSegments(c awsenv.Clients, cfg Config, logger *slog.Logger) *segment.Handler {
	return segment.NewHandler(
		segment.NewStore(c.DynamoDB, cfg.Table),
		stream.NewPublisher(c.Kinesis, cfg.ActivationsStream),
		segment.Options{Logger: logger, DeadLetters: deadletter.NewStore(c.DynamoDB, cfg.Table)},
	)
}
