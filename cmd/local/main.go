// Command local runs the whole CDP on this machine with no AWS account.
//
//	local                    start (or reuse) the emulators, create the table and streams, seed
//	                         the dev source and admin token, and serve every route and stream
//	local emulators -- CMD…  start (or reuse) the emulators, run CMD with AWS_ENDPOINT_URL_* set,
//	                         then stop what was started (used by `make test`)
//
// Environment: CDP_HTTP_ADDR (default 127.0.0.1:8080), CDP_DEV_WRITE_KEY, CDP_DEV_ADMIN_TOKEN
// (random ones are generated and printed when unset), CDP_DYNAMODB_PORT (8000),
// CDP_KINESIS_PORT (4567), LOG_LEVEL (logs are JSON lines on stderr, like the functions'), and
// every CDP_* variable the functions read. When
// AWS_ENDPOINT_URL_DYNAMODB and AWS_ENDPOINT_URL_KINESIS are already set (LocalStack, say), no
// emulator is started.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/serverless-cdp/cdp/internal/app"
	"github.com/serverless-cdp/cdp/internal/awsenv"
	"github.com/serverless-cdp/cdp/internal/emulator"
	"github.com/serverless-cdp/cdp/internal/local"
	"github.com/serverless-cdp/cdp/internal/secret"
	"github.com/serverless-cdp/cdp/internal/source"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// JSON lines at LOG_LEVEL, like the functions on Lambda (app.Config.Logger).
	cfg, err := app.FromEnv()
	logger := cfg.Logger()
	switch {
	case err != nil:
		logger = app.Defaults().Logger()
	case len(os.Args) > 1 && os.Args[1] == "emulators":
		err = runWithEmulators(ctx, logger, os.Args[2:])
	default:
		err = serve(ctx, cfg, logger)
	}
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			os.Exit(exit.ExitCode())
		}
		logger.Error("local", "err", err)
		os.Exit(1)
	}
}

func runWithEmulators(ctx context.Context, logger *slog.Logger, args []string) error {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		return errors.New("usage: local emulators -- COMMAND [ARGS…]")
	}
	stack, err := emulator.Ensure(ctx, logger)
	if err != nil {
		return err
	}
	if stack != nil {
		defer stack.Stop()
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	return cmd.Run()
}

func serve(ctx context.Context, cfg app.Config, logger *slog.Logger) error {
	// Local receivers (a webhook.site stand-in on localhost) are the point of local development.
	cfg.AllowLoopbackWebhooks = true
	if cfg.Archive == "" {
		cfg.Archive = ".archive" // the raw event archive, in the layout Firehose writes to S3
	}
	addr := os.Getenv("CDP_HTTP_ADDR")
	if addr == "" {
		addr = "127.0.0.1:8080"
	}
	writeKey, adminToken := os.Getenv("CDP_DEV_WRITE_KEY"), os.Getenv("CDP_DEV_ADMIN_TOKEN")
	if writeKey == "" {
		writeKey = source.NewWriteKey()
	}
	if adminToken == "" {
		adminToken = "cdpat_" + secret.String(secret.Alphanumeric, 40)
	}
	emu, err := emulator.Ensure(ctx, logger)
	if err != nil {
		return err
	}
	if emu != nil {
		defer emu.Stop()
	}
	clients, err := awsenv.Load(ctx, logger)
	if err != nil {
		return err
	}
	setup, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	stack, err := local.Start(setup, clients, local.Options{
		Config: cfg, Addr: addr, DevWriteKey: writeKey, DevAdminToken: adminToken, Logger: logger,
	})
	if err != nil {
		return err
	}
	fmt.Printf(`
CDP is running at %s
  write key (source "dev"): %s
  admin token:              %s
  event archive:            %s
  try: curl -u '%s:' -d '{"userId":"u1","event":"Signed Up"}' %s/v1/track
Ctrl-C stops everything this started.
`, stack.URL, writeKey, adminToken, cfg.Archive, writeKey, stack.URL)
	<-ctx.Done()
	logger.Info("shutting down")
	return stack.Close()
}
