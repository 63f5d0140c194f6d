// Package local runs every function in one process against DynamoDB and Kinesis endpoints (the
// emulators, or LocalStack): an HTTP server that turns requests into API Gateway events for the
// real handlers, Kinesis pollers that call the real stream handlers with events.KinesisEvent
// (honouring partial batch failures), and the schedules EventBridge runs on AWS. `make run`, the
// end-to-end tests and the benchmark all use it.
package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/serverless-cdp/cdp/internal/app"
	"github.com/serverless-cdp/cdp/internal/awsenv"
	"github.com/serverless-cdp/cdp/internal/localhttp"
	"github.com/serverless-cdp/cdp/internal/store"
	"github.com/serverless-cdp/cdp/internal/stream"
)

// Stages: the functions as deployed, plus the schedules (segments and activation ticks).
const (
	StageIngest     = "ingest"
	StageAPI        = "api"
	StageIdentity   = "identity"
	StageSegments   = "segments"
	StageActivation = "activation"
	StageSchedules  = "schedules"
)

// Invocation describes one handler call, for Options.Observe.
type Invocation struct {
	Stage   string
	Records int // Kinesis records in the batch (0 for HTTP and schedules)
	Start   time.Time
	Took    time.Duration
}

// Options configure a local stack.
type Options struct {
	Config        app.Config
	Addr          string // HTTP listen address, e.g. 127.0.0.1:8080 (":0" picks a port)
	Shards        int32  // shards per stream
	DevWriteKey   string // the demo source's write key (created if missing)
	DevAdminToken string // an admin token (created if missing)
	PollInterval  time.Duration
	TickInterval  time.Duration // how often schedules run (EventBridge runs them every minute on AWS)
	Logger        *slog.Logger
	// StageClients, if set, gives each stage its own clients (the benchmark meters them per
	// stage); otherwise every stage shares the clients passed to Start.
	StageClients func(stage string) awsenv.Clients
	// Observe, if set, is called after every handler invocation.
	Observe func(Invocation)
}

// Stack is a running local deployment.
type Stack struct {
	URL    string
	server *http.Server
	cancel context.CancelFunc // stops pollers and schedules
	wg     sync.WaitGroup
}

// Start creates the table and streams if needed, seeds the dev credentials and starts serving.
func Start(ctx context.Context, clients awsenv.Clients, opts Options) (*Stack, error) {
	cfg := opts.Config
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	if opts.Shards == 0 {
		opts.Shards = 2
	}
	if opts.TickInterval == 0 {
		opts.TickInterval = 10 * time.Second
	}
	stage := opts.StageClients
	if stage == nil {
		stage = func(string) awsenv.Clients { return clients }
	}
	observe := opts.Observe
	if observe == nil {
		observe = func(Invocation) {}
	}
	if err := store.CreateTable(ctx, clients.DynamoDB, cfg.Table); err != nil {
		return nil, err
	}
	for _, name := range []string{cfg.EventsStream, cfg.ChangesStream, cfg.ActivationsStream} {
		if err := stream.CreateStream(ctx, clients.Kinesis, name, opts.Shards); err != nil {
			return nil, err
		}
	}
	if err := app.SeedDev(ctx, clients, cfg, opts.DevWriteKey, opts.DevAdminToken); err != nil {
		return nil, err
	}

	// The functions, as API Gateway routes, event source mappings and EventBridge schedules
	// wire them on AWS: adding a function is one line in each list it belongs to.
	ingest := app.NewIngest(stage(StageIngest), cfg, logger)
	api := app.NewAPI(stage(StageAPI), cfg, logger)
	segments := app.NewSegments(stage(StageSegments), cfg, logger)
	activation := app.NewActivation(stage(StageActivation), cfg, logger)
	segmentsTick := app.NewSegments(stage(StageSchedules), cfg, logger)
	activationTick := app.NewActivation(stage(StageSchedules), cfg, logger)
	routes := []localhttp.Route{
		{Prefix: "/v1/", Handler: timedHTTP(StageIngest, ingest.Handle, observe)},
		{Prefix: "/v1/spaces/", Handler: timedHTTP(StageAPI, api.Handle, observe)},
		{Prefix: "/admin", Handler: timedHTTP(StageAPI, api.Handle, observe)},
	}
	pollers := []stream.Poller{
		{Stream: cfg.EventsStream, Handler: timedKinesis(StageIdentity, app.NewIdentity(stage(StageIdentity), cfg, logger).Handle, observe)},
		{Stream: cfg.ChangesStream, Handler: timedKinesis(StageSegments, segments.Handle, observe)},
		{Stream: cfg.ActivationsStream, Handler: timedKinesis(StageActivation, activation.HandleKinesis, observe)},
	}
	schedules := []schedule{
		{name: "segments windows and backfills", run: func(ctx context.Context) error { _, err := segmentsTick.Tick(ctx); return err }},
		{name: "activation retries", run: func(ctx context.Context) error { _, err := activationTick.Tick(ctx); return err }},
	}

	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", opts.Addr, err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &Stack{
		URL:    "http://" + ln.Addr().String(),
		server: &http.Server{Handler: localhttp.Router(routes), ReadHeaderTimeout: 10 * time.Second},
		cancel: cancel,
	}
	go func() {
		if err := s.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("http server", "err", err)
		}
	}()
	for _, sc := range schedules {
		s.wg.Add(1)
		go func(sc schedule) {
			defer s.wg.Done()
			sc.loop(runCtx, opts.TickInterval, logger, observe)
		}(sc)
	}
	for _, p := range pollers {
		p.Client, p.Logger, p.Interval = clients.Kinesis, logger, opts.PollInterval
		s.wg.Add(1)
		go func(p stream.Poller) {
			defer s.wg.Done()
			if err := p.Run(runCtx); err != nil {
				logger.Error("poller", "stream", p.Stream, "err", err)
			}
		}(p)
	}
	return s, nil
}

// StopPipeline stops the pollers and schedules; the HTTP routes keep serving.
func (s *Stack) StopPipeline() {
	s.cancel()
	s.wg.Wait()
}

// Close stops serving and polling.
func (s *Stack) Close() error {
	s.StopPipeline()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.server.Shutdown(ctx)
}

func timedHTTP(stage string, h localhttp.Func, observe func(Invocation)) localhttp.Func {
	return func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		start := time.Now()
		resp, err := h(ctx, req)
		observe(Invocation{Stage: stage, Start: start, Took: time.Since(start)})
		return resp, err
	}
}

func timedKinesis(stage string, h stream.Handler, observe func(Invocation)) stream.Handler {
	return func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		start := time.Now()
		resp, err := h(ctx, ev)
		observe(Invocation{Stage: stage, Records: len(ev.Records), Start: start, Took: time.Since(start)})
		return resp, err
	}
}

// schedule is a function EventBridge would invoke periodically on AWS.
type schedule struct {
	name string
	run  func(ctx context.Context) error
}

func (sc schedule) loop(ctx context.Context, every time.Duration, logger *slog.Logger, observe func(Invocation)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			start := time.Now()
			if err := sc.run(ctx); err != nil && ctx.Err() == nil {
				logger.Error("schedule", "name", sc.name, "err", err)
			}
			observe(Invocation{Stage: StageSchedules, Start: start, Took: time.Since(start)})
		}
	}
}
