// Package local runs every function in one process against DynamoDB and Kinesis endpoints (the
// emulators, or LocalStack): an HTTP server that turns requests into API Gateway events for the
// real handlers, and Kinesis pollers that call the real stream handlers with events.KinesisEvent,
// honouring partial batch failures. `make run` and the end-to-end tests both use it.
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

	"github.com/serverless-cdp/cdp/internal/app"
	"github.com/serverless-cdp/cdp/internal/awsenv"
	"github.com/serverless-cdp/cdp/internal/localhttp"
	"github.com/serverless-cdp/cdp/internal/store"
	"github.com/serverless-cdp/cdp/internal/stream"
)

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
}

// Stack is a running local deployment.
type Stack struct {
	URL      string
	server   *http.Server
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	handlers *app.Handlers
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
	if err := store.CreateTable(ctx, clients.DynamoDB, cfg.Table); err != nil {
		return nil, err
	}
	for _, name := range []string{cfg.EventsStream, cfg.ChangesStream, cfg.ActivationsStream} {
		if err := stream.CreateStream(ctx, clients.Kinesis, name, opts.Shards); err != nil {
			return nil, err
		}
	}
	h, err := app.Build(ctx, clients, cfg, logger)
	if err != nil {
		return nil, err
	}
	if err := h.SeedDev(ctx, opts.DevWriteKey, opts.DevAdminToken); err != nil {
		return nil, err
	}

	// The functions, as API Gateway routes and event source mappings wire them on AWS: adding a
	// function is one line here.
	routes := []localhttp.Route{
		{Prefix: "/v1/", Handler: h.Ingest.Handle},
		{Prefix: "/v1/spaces/", Handler: h.API.Handle},
		{Prefix: "/admin", Handler: h.API.Handle},
	}
	pollers := []stream.Poller{
		{Stream: cfg.EventsStream, Handler: h.Identity.Handle},
		{Stream: cfg.ChangesStream, Handler: h.Segments.Handle},
		{Stream: cfg.ActivationsStream, Handler: h.Activation.HandleKinesis},
	}
	schedules := []schedule{
		{name: "segments windows and backfills", run: func(ctx context.Context) error { _, err := h.Segments.Tick(ctx); return err }},
		{name: "activation retries", run: func(ctx context.Context) error { _, err := h.Activation.Tick(ctx); return err }},
	}

	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", opts.Addr, err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &Stack{
		URL:      "http://" + ln.Addr().String(),
		server:   &http.Server{Handler: localhttp.Router(routes), ReadHeaderTimeout: 10 * time.Second},
		cancel:   cancel,
		handlers: h,
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("http server", "err", err)
		}
	}()
	for _, sc := range schedules {
		s.wg.Add(1)
		go func(sc schedule) {
			defer s.wg.Done()
			sc.loop(runCtx, opts.TickInterval, logger)
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

// Handlers exposes the wired handlers (tests drive schedules and clocks through them).
func (s *Stack) Handlers() *app.Handlers { return s.handlers }

// Close stops serving and polling.
func (s *Stack) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.server.Shutdown(ctx)
	s.cancel()
	s.wg.Wait()
	return err
}

// schedule is a function EventBridge would invoke periodically on AWS.
type schedule struct {
	name string
	run  func(ctx context.Context) error
}

func (sc schedule) loop(ctx context.Context, every time.Duration, logger *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := sc.run(ctx); err != nil && ctx.Err() == nil {
				logger.Error("schedule", "name", sc.name, "err", err)
			}
		}
	}
}
