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
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/serverless-cdp/cdp/internal/app"
	"github.com/serverless-cdp/cdp/internal/app/activationfn"
	"github.com/serverless-cdp/cdp/internal/app/apifn"
	"github.com/serverless-cdp/cdp/internal/app/identityfn"
	"github.com/serverless-cdp/cdp/internal/app/ingestfn"
	"github.com/serverless-cdp/cdp/internal/app/privacyfn"
	"github.com/serverless-cdp/cdp/internal/app/segmentsfn"
	"github.com/serverless-cdp/cdp/internal/archive"
	"github.com/serverless-cdp/cdp/internal/awsenv"
	"github.com/serverless-cdp/cdp/internal/deadletter"
	"github.com/serverless-cdp/cdp/internal/identity"
	"github.com/serverless-cdp/cdp/internal/localhttp"
	"github.com/serverless-cdp/cdp/internal/monitor"
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
	// StageArchive stands in for Kinesis Data Firehose: it writes the events stream to the
	// archive folder in the layout Firehose writes to S3 (not a Lambda on AWS).
	StageArchive = "archive"
)

// Timeout is a stage's configured function timeout (infra/functions.go): the local runner gives
// each invocation the same deadline, so deadline budgets are exercised locally.
func Timeout(stage string) time.Duration {
	switch stage {
	case StageIngest:
		return 10 * time.Second
	case StageAPI:
		return 29 * time.Second
	default: // identity, segments, activation and the schedules
		return 60 * time.Second
	}
}

// Invocation describes one handler call, for Options.Observe.
type Invocation struct {
	Stage   string
	Records int // Kinesis records in the batch (0 for HTTP and schedules)
	Start   time.Time
	Took    time.Duration
	// Waited is, for a Kinesis batch, how long each record waited in its stream: from its
	// approximate arrival to the start of this invocation: one read when the stage that wrote
	// it rang the shard's doorbell, up to the poll interval otherwise, plus any backlog.
	Waited []time.Duration
}

// Options configure a local stack.
type Options struct {
	Config        app.Config
	Addr          string // HTTP listen address, e.g. 127.0.0.1:8080 (":0" picks a port)
	Shards        int32  // shards per stream
	DevWriteKey   string // the demo source's write key (created if missing)
	DevAdminToken string // an admin token (created if missing)
	// PollInterval is an idle shard's first wait before reading again (default 200 ms; it then
	// doubles up to 1 s). Stages ring their stream's doorbell when they publish, so it only
	// bounds the wait for records written by others.
	PollInterval time.Duration
	TickInterval time.Duration // how often schedules run (EventBridge runs them every minute on AWS)
	Logger       *slog.Logger
	// StageClients, if set, gives each stage its own clients (the benchmark meters them per
	// stage); otherwise every stage shares the clients passed to Start.
	StageClients func(stage string) awsenv.Clients
	// Observe, if set, is called after every handler invocation.
	Observe func(Invocation)
	// RecoverInterval is how often the runner checks that the table and streams exist
	// (recreating them after an emulator restart) and how soon pollers retry (default 1 s).
	RecoverInterval time.Duration
}

// Stack is a running local deployment.
type Stack struct {
	URL    string
	server *http.Server
	cancel context.CancelFunc // stops pollers and schedules
	// cleanup removes what Start made for this stack only (a temporary archive folder).
	cleanup func()
	wg      sync.WaitGroup
}

// Start creates the table and streams if needed, seeds the dev credentials and starts serving.
func Start(ctx context.Context, clients awsenv.Clients, opts Options) (*Stack, error) {
	opts = opts.withDefaults(clients)
	cfg, logger, observe := opts.Config, opts.Logger, opts.Observe
	bells := newDoorbells(cfg.EventsStream, cfg.ChangesStream, cfg.ActivationsStream)
	stage := func(name string) awsenv.Clients { return bells.clients(opts.StageClients(name)) }
	res := resources{clients: clients, opts: opts, logger: logger}
	if err := res.ensure(ctx, true); err != nil {
		return nil, err
	}
	cleanup, err := localArchive(&cfg)
	if err != nil {
		return nil, err
	}
	opts.Config = cfg
	if len(cfg.PrivacyKey) == 0 {
		key, err := localPrivacyKey(ctx, clients.DynamoDB, cfg.Table)
		if err != nil {
			return nil, err
		}
		cfg.PrivacyKey = key
		opts.Config = cfg
	}

	// The functions, as API Gateway routes, event source mappings and EventBridge schedules
	// wire them on AWS: adding a function is one line in each list it belongs to.
	ingest := ingestfn.New(stage(StageIngest), cfg, logger)
	api := apifn.New(stage(StageAPI), cfg, logger)
	segments := segmentsfn.New(stage(StageSegments), cfg, logger)
	activation := activationfn.New(stage(StageActivation), cfg, logger)
	segmentsTick := segmentsfn.New(stage(StageSchedules), cfg, logger)
	activationTick := activationfn.New(stage(StageSchedules), cfg, logger)
	privacyTick := privacyfn.New(stage(StageSchedules), cfg, logger)
	replayTick := privacyfn.NewReplay(stage(StageSchedules), cfg, logger)
	archiveWriter := &archive.Writer{Store: archive.Folder{Root: cfg.Archive}, Logger: logger}
	routes := []localhttp.Route{
		{Prefix: "/v1/", Handler: timedHTTP(StageIngest, ingest.Handle, observe, logger)},
		{Prefix: "/v1/spaces/", Handler: timedHTTP(StageAPI, api.Handle, observe, logger)},
		{Prefix: "/admin", Handler: timedHTTP(StageAPI, api.Handle, observe, logger)},
		{Prefix: "/console", Handler: timedHTTP(StageAPI, api.Handle, observe, logger)},
	}
	pollers := []*stream.Poller{
		{Stream: cfg.EventsStream, Consumer: StageIdentity, Handler: timedKinesis(StageIdentity, lagged(stage(StageIdentity), cfg, logger, StageIdentity, identityfn.New(stage(StageIdentity), cfg, logger).Handle), observe, logger)},
		{Stream: cfg.ChangesStream, Consumer: StageSegments, Handler: timedKinesis(StageSegments, lagged(stage(StageSegments), cfg, logger, StageSegments, segments.Handle), observe, logger)},
		{Stream: cfg.ActivationsStream, Consumer: StageActivation, Handler: timedKinesis(StageActivation, lagged(stage(StageActivation), cfg, logger, StageActivation, activation.HandleKinesis), observe, logger)},
		{Stream: cfg.EventsStream, Consumer: StageArchive, Handler: timedKinesis(StageArchive, archiveWriter.Handle, observe, logger)},
	}
	schedules := []schedule{
		{name: "segments windows and backfills", run: func(ctx context.Context) error { _, err := segmentsTick.Tick(ctx); return err }},
		{name: "activation retries", run: func(ctx context.Context) error { _, err := activationTick.Tick(ctx); return err }},
		{name: "privacy requests", run: privacyTick.Run},
		{name: "replays", run: replayTick.Run},
	}

	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", opts.Addr, err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &Stack{
		URL:    "http://" + ln.Addr().String(),
		server: &http.Server{Handler: localhttp.Router(routes), ReadHeaderTimeout: 10 * time.Second},
		cancel: cancel, cleanup: cleanup,
	}
	go func() {
		if err := s.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("http server", "err", err)
		}
	}()
	for _, p := range pollers {
		p.Wake = bells[p.Stream]
	}
	s.runLoops(runCtx, clients, opts, schedules, pollers, res)
	return s, nil
}

func (o Options) withDefaults(clients awsenv.Clients) Options {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Shards == 0 {
		o.Shards = 2
	}
	if o.TickInterval == 0 {
		o.TickInterval = 10 * time.Second
	}
	if o.RecoverInterval == 0 {
		o.RecoverInterval = time.Second
	}
	if o.StageClients == nil {
		o.StageClients = func(string) awsenv.Clients { return clients }
	}
	if o.Observe == nil {
		o.Observe = func(Invocation) {}
	}
	return o
}

// runLoops starts the schedules, the pollers (with checkpoints in the table and the functions'
// timeouts) and the watch that recreates lost resources.
func (s *Stack) runLoops(runCtx context.Context, clients awsenv.Clients, opts Options, schedules []schedule, pollers []*stream.Poller, res resources) {
	logger := opts.Logger
	for _, sc := range schedules {
		s.wg.Add(1)
		go func(sc schedule) {
			defer s.wg.Done()
			sc.loop(runCtx, opts.TickInterval, logger, opts.Observe)
		}(sc)
	}
	checkpoints := stream.NewTableCheckpoints(clients.DynamoDB, opts.Config.Table)
	dlq := deadletter.NewStore(clients.DynamoDB, opts.Config.Table)
	for _, p := range pollers {
		p.Client, p.Logger, p.Interval = clients.Kinesis, logger, opts.PollInterval
		p.Checkpoints, p.Timeout, p.RetryInterval = checkpoints, Timeout(p.Consumer), opts.RecoverInterval
		p.OnFailure = onFailure(dlq, p.Consumer)
		s.wg.Add(1)
		go func(p *stream.Poller) {
			defer s.wg.Done()
			if err := p.Run(runCtx); err != nil {
				logger.Error("poller", "stream", p.Stream, "err", err)
			}
		}(p)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		res.watch(runCtx)
	}()
}

// onFailure is the local on-failure destination of a stage's event source mapping: a record
// that kept failing is dead-lettered alone under its stage, with the kind the stage itself uses
// (so the identity stage's are replayable through the admin API).
func onFailure(dlq *deadletter.Store, stage string) func(context.Context, []events.KinesisEventRecord, string) error {
	kind := map[string]string{StageIdentity: identity.KindEvent, StageSegments: "change"}[stage]
	if kind == "" {
		kind = "record"
	}
	return func(ctx context.Context, recs []events.KinesisEventRecord, cause string) error {
		for _, r := range recs {
			_, err := dlq.Put(ctx, deadletter.Entry{
				Stage: stage, Kind: kind, Reason: "batch_retries_exhausted", Error: cause, Payload: r.Kinesis.Data,
				Meta: map[string]string{"eventId": r.EventID},
			})
			if err != nil {
				return fmt.Errorf("dead-letter record %s: %w", r.EventID, err)
			}
		}
		return nil
	}
}

// resources are the table and streams a local deployment needs. The emulators keep them in
// memory, so a restarted emulator comes back empty: watch recreates what is missing.
type resources struct {
	clients awsenv.Clients
	opts    Options
	logger  *slog.Logger
}

// ensure creates the table (and seeds the dev credentials) and the streams, if missing; with
// all, everything is created and seeded without checking first.
func (r resources) ensure(ctx context.Context, all bool) error {
	cfg := r.opts.Config
	if all || r.missingTable(ctx) {
		if err := store.CreateTable(ctx, r.clients.DynamoDB, cfg.Table); err != nil {
			return err
		}
		if err := seedDev(ctx, r.clients, cfg, r.opts.DevWriteKey, r.opts.DevAdminToken); err != nil {
			return err
		}
		if !all {
			r.logger.Warn("recreated the table after an emulator restart (its data is gone)", "table", cfg.Table)
		}
	}
	for _, name := range []string{cfg.EventsStream, cfg.ChangesStream, cfg.ActivationsStream} {
		if !all && !r.missingStream(ctx, name) {
			continue
		}
		if err := stream.CreateStream(ctx, r.clients.Kinesis, name, r.opts.Shards); err != nil {
			return err
		}
		if !all {
			r.logger.Warn("recreated a stream after an emulator restart", "stream", name)
		}
	}
	return nil
}

func (r resources) missingTable(ctx context.Context) bool {
	_, err := r.clients.DynamoDB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(r.opts.Config.Table)})
	var nf *dtypes.ResourceNotFoundException
	return errors.As(err, &nf)
}

func (r resources) missingStream(ctx context.Context, name string) bool {
	_, err := r.clients.Kinesis.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
	var nf *ktypes.ResourceNotFoundException
	return errors.As(err, &nf)
}

// watch checks every RecoverInterval that the table and one of the streams, in turn, exist
// (a restarted kinesis-mock has lost them all, so one tells; each check costs the emulator as
// much CPU as a write), and when one is missing recreates whatever is missing; an emulator
// that does not answer is simply checked again.
func (r resources) watch(ctx context.Context) {
	t := time.NewTicker(r.opts.RecoverInterval)
	defer t.Stop()
	cfg := r.opts.Config
	streams := []string{cfg.EventsStream, cfg.ChangesStream, cfg.ActivationsStream}
	for tick := 0; ; tick++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			cctx, cancel := context.WithTimeout(ctx, time.Minute)
			if r.missingTable(cctx) || r.missingStream(cctx, streams[tick%len(streams)]) {
				if err := r.ensure(cctx, false); err != nil && ctx.Err() == nil {
					r.logger.Warn("recreate table or streams", "err", err)
				}
			}
			cancel()
		}
	}
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
	err := s.server.Shutdown(ctx)
	s.cleanup()
	return err
}

// localArchive gives the stack an archive folder: cfg.Archive (CDP_ARCHIVE_DIR; make run uses
// .archive), or a temporary folder removed on Close. An S3 location is refused: locally the
// runner itself writes the archive, to a folder.
func localArchive(cfg *app.Config) (func(), error) {
	if strings.HasPrefix(cfg.Archive, "s3://") {
		return nil, fmt.Errorf("the local runner writes the archive to a folder (CDP_ARCHIVE_DIR), not %s", cfg.Archive)
	}
	if cfg.Archive != "" {
		return func() {}, os.MkdirAll(cfg.Archive, 0o755)
	}
	dir, err := os.MkdirTemp("", "cdp-archive-")
	if err != nil {
		return nil, fmt.Errorf("archive folder: %w", err)
	}
	cfg.Archive = dir
	return func() { os.RemoveAll(dir) }, nil
}

// timedHTTP gives each request the stage's timeout, reports it to observe and, at debug level,
// logs how long the handler took.
func timedHTTP(stage string, h localhttp.Func, observe func(Invocation), logger *slog.Logger) localhttp.Func {
	return func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		ctx, cancel := context.WithTimeout(ctx, Timeout(stage))
		defer cancel()
		start := time.Now()
		resp, err := h(ctx, req)
		took := time.Since(start)
		observe(Invocation{Stage: stage, Start: start, Took: took})
		logger.DebugContext(ctx, HopMessage, "stage", stage, "took_ms", ms(took))
		return resp, err
	}
}

// timedKinesis reports each invocation of a stream stage to observe and, at debug level, logs
// its hop timing: how long its records waited in the stream and how long the handler took.
func timedKinesis(stage string, h stream.Handler, observe func(Invocation), logger *slog.Logger) stream.Handler {
	return func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		start := time.Now()
		resp, err := h(ctx, ev)
		inv := Invocation{Stage: stage, Records: len(ev.Records), Start: start, Took: time.Since(start), Waited: waited(ev, start)}
		observe(inv)
		if logger.Enabled(ctx, slog.LevelDebug) && len(inv.Waited) > 0 {
			logger.DebugContext(ctx, HopMessage, "stage", stage, "records", inv.Records,
				"wait_min_ms", ms(slices.Min(inv.Waited)), "wait_max_ms", ms(slices.Max(inv.Waited)), "took_ms", ms(inv.Took))
		}
		return resp, err
	}
}

// lagged records a stage's stream lag for the console, as functions/<stage>/main.go does.
func lagged(c awsenv.Clients, cfg app.Config, logger *slog.Logger, stage string, h stream.Handler) stream.Handler {
	return stream.Handler(monitor.Kinesis(monitor.ForStage(c.DynamoDB, cfg.Table, logger), stage, monitor.KinesisHandler(h)))
}

// HopMessage is the debug log message of each invocation (hop timing).
const HopMessage = "stream stage invoked"

// waited is how long each record of ev waited in its stream before start (never negative: the
// emulator's arrival timestamps are in milliseconds).
func waited(ev events.KinesisEvent, start time.Time) []time.Duration {
	out := make([]time.Duration, len(ev.Records))
	for i, r := range ev.Records {
		out[i] = max(0, start.Sub(r.Kinesis.ApproximateArrivalTimestamp.Time))
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

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
			rctx, cancel := context.WithTimeout(ctx, Timeout(StageSchedules))
			if err := sc.run(rctx); err != nil && ctx.Err() == nil {
				logger.Error("schedule", "name", sc.name, "err", err)
			}
			cancel()
			observe(Invocation{Stage: StageSchedules, Start: start, Took: time.Since(start)})
		}
	}
}
