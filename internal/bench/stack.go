package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/serverless-cdp/cdp/internal/app"
	"github.com/serverless-cdp/cdp/internal/awsenv"
	"github.com/serverless-cdp/cdp/internal/localhttp"
	"github.com/serverless-cdp/cdp/internal/store"
	"github.com/serverless-cdp/cdp/internal/stream"
)

// Stages the meter attributes usage to. "schedules" are the segments and activation ticks
// (EventBridge on AWS); "api" is the admin and Profile API the benchmark itself calls.
const (
	StageIngest     = "ingest"
	StageIdentity   = "identity"
	StageSegments   = "segments"
	StageActivation = "activation"
	StageSchedules  = "schedules"
	StageAPI        = "api"
	stageSetup      = "setup"
)

// PipelineStages are the stages whose usage is charged per event.
var PipelineStages = []string{StageIngest, StageIdentity, StageSegments, StageActivation, StageSchedules}

// stack is the local deployment wired like internal/local, except that every function gets its
// own metered AWS clients (as separate Lambdas would), so usage is attributed per stage.
type stack struct {
	URL    string
	server *http.Server
	cancel context.CancelFunc // stops pollers and schedules
	wg     sync.WaitGroup

	mu       sync.Mutex
	lastWork map[string]time.Time
}

func awsConfig(ctx context.Context) (aws.Config, error) {
	var opts []func(*config.LoadOptions) error
	if os.Getenv("AWS_REGION") == "" && os.Getenv("AWS_DEFAULT_REGION") == "" {
		opts = append(opts, config.WithRegion("us-east-1"))
	}
	if os.Getenv("AWS_ACCESS_KEY_ID") == "" && os.Getenv("AWS_PROFILE") == "" {
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("local", "local", "")))
	}
	return config.LoadDefaultConfig(ctx, opts...)
}

func meteredClients(cfg aws.Config, m *Meter, stage string) awsenv.Clients {
	return awsenv.Clients{
		DynamoDB: dynamodb.NewFromConfig(cfg, m.DynamoDB(stage)),
		Kinesis:  kinesis.NewFromConfig(cfg, m.Kinesis(stage)),
	}
}

func startStack(ctx context.Context, awsCfg aws.Config, cfg app.Config, m *Meter, writeKey, adminToken string, logger *slog.Logger) (*stack, error) {
	c := func(stage string) awsenv.Clients { return meteredClients(awsCfg, m, stage) }
	setup := c(stageSetup)
	if err := store.CreateTable(ctx, setup.DynamoDB, cfg.Table); err != nil {
		return nil, err
	}
	for _, name := range []string{cfg.EventsStream, cfg.ChangesStream, cfg.ActivationsStream} {
		if err := stream.CreateStream(ctx, setup.Kinesis, name, 2); err != nil {
			return nil, err
		}
	}
	seed, err := app.Build(ctx, setup, cfg, logger)
	if err != nil {
		return nil, err
	}
	if err := seed.SeedDev(ctx, writeKey, adminToken); err != nil {
		return nil, err
	}
	ingest := app.NewIngest(c(StageIngest), cfg, logger)
	api := app.NewAPI(c(StageAPI), cfg, logger)
	identity := app.NewIdentity(c(StageIdentity), cfg, logger)
	segments := app.NewSegments(c(StageSegments), cfg, logger)
	activation := app.NewActivation(c(StageActivation), cfg, logger)
	segTick := app.NewSegments(c(StageSchedules), cfg, logger)
	actTick := app.NewActivation(c(StageSchedules), cfg, logger)

	s := &stack{lastWork: map[string]time.Time{}}
	routes := []localhttp.Route{
		{Prefix: "/v1/", Handler: s.timeHTTP(m, StageIngest, ingest.Handle)},
		{Prefix: "/v1/spaces/", Handler: s.timeHTTP(m, StageAPI, api.Handle)},
		{Prefix: "/admin", Handler: s.timeHTTP(m, StageAPI, api.Handle)},
	}
	// Pollers read with an unmetered client: GetRecords is not billed per call on-demand; the
	// retrieval charge is computed from the bytes put.
	plain := kinesis.NewFromConfig(awsCfg)
	pollers := []stream.Poller{
		{Stream: cfg.EventsStream, Handler: s.timeKinesis(m, StageIdentity, identity.Handle)},
		{Stream: cfg.ChangesStream, Handler: s.timeKinesis(m, StageSegments, segments.Handle)},
		{Stream: cfg.ActivationsStream, Handler: s.timeKinesis(m, StageActivation, activation.HandleKinesis)},
	}
	ticks := []func(context.Context) error{
		func(ctx context.Context) error { _, err := segTick.Tick(ctx); return err },
		func(ctx context.Context) error { _, err := actTick.Tick(ctx); return err },
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.URL, s.cancel = "http://"+ln.Addr().String(), cancel
	s.server = &http.Server{Handler: localhttp.Router(routes), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := s.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("http server", "err", err)
		}
	}()
	for _, p := range pollers {
		p.Client, p.Logger, p.Interval = plain, logger, 100*time.Millisecond
		s.wg.Add(1)
		go func(p stream.Poller) {
			defer s.wg.Done()
			if err := p.Run(runCtx); err != nil {
				logger.Error("poller", "stream", p.Stream, "err", err)
			}
		}(p)
	}
	for _, tick := range ticks {
		s.wg.Add(1)
		go func(tick func(context.Context) error) {
			defer s.wg.Done()
			t := time.NewTicker(10 * time.Second)
			defer t.Stop()
			for {
				select {
				case <-runCtx.Done():
					return
				case <-t.C:
					start := time.Now()
					if err := tick(runCtx); err != nil && runCtx.Err() == nil {
						logger.Error("schedule", "err", err)
					}
					m.with(StageSchedules, func(u *StageUsage) {
						u.Invocations++
						u.BusyMs += ms(time.Since(start))
					})
				}
			}
		}(tick)
	}
	return s, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (s *stack) timeHTTP(m *Meter, stage string, h localhttp.Func) localhttp.Func {
	return func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		start := time.Now()
		resp, err := h(ctx, req)
		m.with(stage, func(u *StageUsage) {
			u.Invocations++
			u.BusyMs += ms(time.Since(start))
		})
		return resp, err
	}
}

func (s *stack) timeKinesis(m *Meter, stage string, h stream.Handler) stream.Handler {
	return func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		start := time.Now()
		resp, err := h(ctx, ev)
		end := time.Now()
		m.with(stage, func(u *StageUsage) {
			u.Invocations++
			u.Records += len(ev.Records)
			u.BusyMs += ms(end.Sub(start))
		})
		if len(ev.Records) > 0 {
			s.mu.Lock()
			s.lastWork[stage] = end
			s.mu.Unlock()
		}
		return resp, err
	}
}

// idleFor reports whether no stream stage has handled a record for d.
func (s *stack) idleFor(d time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.lastWork {
		if time.Since(t) < d {
			return false
		}
	}
	return true
}

// stopPipeline stops pollers and schedules; the HTTP routes keep serving.
func (s *stack) stopPipeline() {
	s.cancel()
	s.wg.Wait()
}

func (s *stack) Close() error {
	s.stopPipeline()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.server.Shutdown(ctx)
}

func deleteResources(awsCfg aws.Config, cfg app.Config) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	db, k := dynamodb.NewFromConfig(awsCfg), kinesis.NewFromConfig(awsCfg)
	if _, err := db.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(cfg.Table)}); err != nil {
		fmt.Fprintln(os.Stderr, "bench: delete table:", err)
	}
	for _, s := range []string{cfg.EventsStream, cfg.ChangesStream, cfg.ActivationsStream} {
		_, _ = k.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(s), EnforceConsumerDeletion: aws.Bool(true)})
	}
}
