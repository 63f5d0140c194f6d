// Package apifn is the composition root of functions/api: the admin API (every resource
// mounted here, the one place the full set is assembled) and the Profile API. The local runner
// calls the same constructors.
package apifn

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"

	"github.com/serverless-cdp/cdp/internal/activation"
	"github.com/serverless-cdp/cdp/internal/admin"
	"github.com/serverless-cdp/cdp/internal/admin/deadletters"
	"github.com/serverless-cdp/cdp/internal/admin/destinations"
	"github.com/serverless-cdp/cdp/internal/admin/identityrules"
	adminprivacy "github.com/serverless-cdp/cdp/internal/admin/privacy"
	adminreplays "github.com/serverless-cdp/cdp/internal/admin/replays"
	"github.com/serverless-cdp/cdp/internal/admin/segments"
	"github.com/serverless-cdp/cdp/internal/admin/sources"
	"github.com/serverless-cdp/cdp/internal/admintoken"
	"github.com/serverless-cdp/cdp/internal/app"
	"github.com/serverless-cdp/cdp/internal/app/activationfn"
	"github.com/serverless-cdp/cdp/internal/app/identityfn"
	"github.com/serverless-cdp/cdp/internal/app/privacyfn"
	"github.com/serverless-cdp/cdp/internal/awsenv"
	"github.com/serverless-cdp/cdp/internal/console"
	"github.com/serverless-cdp/cdp/internal/deadletter"
	"github.com/serverless-cdp/cdp/internal/httpapi"
	"github.com/serverless-cdp/cdp/internal/identity"
	"github.com/serverless-cdp/cdp/internal/monitor"
	"github.com/serverless-cdp/cdp/internal/profile"
	"github.com/serverless-cdp/cdp/internal/segment"
	"github.com/serverless-cdp/cdp/internal/source"
	"github.com/serverless-cdp/cdp/internal/timeline"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// NewAdminRouter assembles the whole admin API: the one place every resource is mounted.
// The OpenAPI route test checks the result against api/openapi.yaml route for route.
func NewAdminRouter(c awsenv.Clients, cfg app.Config, logger *slog.Logger) *admin.Router {
	tokens := admintoken.NewStore(c.DynamoDB, cfg.Table)
	srcs := source.NewRepository(c.DynamoDB, cfg.Table)
	rules := identity.NewRulesService(c.DynamoDB, cfg.Table, identity.MaxRulesCache)
	deliverer := activationfn.New(c, cfg, logger)
	// Dead letters of the pipeline stages, replayed through the stage's own handler.
	deadLetters := deadletter.NewService(deadletter.NewStore(c.DynamoDB, cfg.Table), map[string]deadletter.Replayer{
		identity.Stage:   identityfn.New(c, cfg, logger),
		activation.Stage: deliverer,
	})
	segs := segment.NewService(segment.NewStore(c.DynamoDB, cfg.Table), nil)
	segs.RetrainEvery = cfg.RetrainEvery                     // the quality view's next scheduled run
	segs.History = timeline.NewReader(c.DynamoDB, cfg.Table) // audience previews of new event conditions
	return admin.New(tokens, logger,
		func(r *admin.Router) { sources.Register(r, srcs) },
		func(r *admin.Router) { identityrules.Register(r, rules) },
		func(r *admin.Router) {
			// History from the raw event archive (none configured: the route answers 404).
			identityrules.RegisterDryRun(r, rules, identityrules.DryRunConfig{
				Archive: privacyfn.NewArchive(c, cfg), Suppressions: cfg.Checker(c.DynamoDB),
			})
		},
		func(r *admin.Router) { deadletters.Register(r, deadLetters) },
		func(r *admin.Router) {
			destinations.Register(r, activationfn.NewDestinations(c, cfg), deliverer)
		},
		func(r *admin.Router) { segments.Register(r, segs) },
		func(r *admin.Router) { adminprivacy.Register(r, privacyfn.NewService(c, cfg, logger)) },
		func(r *admin.Router) { adminreplays.Register(r, privacyfn.NewReplayService(c, cfg, logger)) },
	)
}

// New wires the admin API, the Profile API and the console (one Lambda behind /admin,
// /v1/spaces and /console).
func New(c awsenv.Clients, cfg app.Config, logger *slog.Logger) *httpapi.API {
	router := NewAdminRouter(c, cfg, logger)
	tokens := admintoken.NewStore(c.DynamoDB, cfg.Table)
	segments := segment.NewService(segment.NewStore(c.DynamoDB, cfg.Table), nil)
	prof := profile.NewHandler(identity.NewStore(c.DynamoDB, cfg.Table), tokenAuth(tokens), logger, cfg.SpaceID).
		WithComputed(computed(segments))
	api := &httpapi.API{Admin: router.Serve, Profile: prof.Handle, Logger: logger}
	ui, err := console.New(console.Options{Admin: api.Admin, Profile: api.Profile, Verify: tokenAuth(tokens),
		SpaceID: cfg.SpaceID, Logger: logger, RequestContext: admintoken.WithMemo, Monitor: NewMonitor(c, cfg)})
	if err != nil {
		logger.Error("console disabled", "err", err) // templates are embedded: a build mistake
		return api
	}
	api.Console = httpapi.Lambda(ui)
	return api
}

// NewMonitor is what the console's Overview and Live events pages read: the events stream's
// tail, read on demand (records carrying a suppressed identifier are not shown), and the
// per-minute counts ingest and the stages write.
func NewMonitor(c awsenv.Clients, cfg app.Config) *monitor.Reader {
	checker := cfg.Checker(c.DynamoDB) // reads the blocklist's version at most once a second
	keep := func(ctx context.Context, data []byte) (bool, error) {
		var rec tracking.Record
		if err := json.Unmarshal(data, &rec); err != nil {
			return false, nil // not a record the pipeline reads either
		}
		suppressed, err := checker.Suppressed(ctx, identity.MessageIdentifiers(&rec.Message))
		return !suppressed, err
	}
	return &monitor.Reader{
		Tail:  &monitor.Tail{Client: c.Kinesis, Stream: cfg.EventsStream, Keep: keep},
		Store: monitor.NewStore(c.DynamoDB, cfg.Table),
	}
}

// tokenAuth: the Profile API takes the same tokens as the admin API (Basic auth, token as user
// name).
func tokenAuth(tokens *admintoken.Store) func(ctx context.Context, token string) (bool, error) {
	return func(ctx context.Context, token string) (bool, error) {
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
}

// computed reads a profile's computed traits and audiences for the Profile API.
func computed(segments *segment.Service) func(ctx context.Context, profileID string) (profile.Computed, error) {
	return func(ctx context.Context, profileID string) (profile.Computed, error) {
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
	}
}
