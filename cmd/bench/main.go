// Command bench runs the end-to-end benchmark (`make bench`): it starts (or reuses) the
// emulators like cmd/local, sends a seeded workload through every stage of the local deployment
// with analytics-go, checks the result against the generator's ground truth, measures request
// units, Kinesis bytes, latency, cold starts and binary sizes, and writes
// bench-results/report.json and bench-results/report.md (also printed).
//
// Environment: BENCH_SEED (default 42), BENCH_SCALE (multiplies the 200 persons, default 1),
// BENCH_RATE (offered load in events/s, default 50 × BENCH_SCALE capped at 300),
// BENCH_COLDSTART_RUNS (default 5; 0 skips), BENCH_HISTORY (default 1; 0 skips the
// heavy-history workload), BENCH_OUT (default bench-results), CDP_DYNAMODB_PORT /
// CDP_KINESIS_PORT (default: free ports, so the benchmark starts emulators of its own and shares
// them with nothing; set them to reuse running emulators), and AWS_ENDPOINT_URL_DYNAMODB /
// AWS_ENDPOINT_URL_KINESIS (when both are set, no emulator is started).
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/serverless-cdp/cdp/internal/bench"
	"github.com/serverless-cdp/cdp/internal/emulator"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	seed, err := envFloat("BENCH_SEED", 42)
	if err != nil {
		return err
	}
	scale, err := envFloat("BENCH_SCALE", 1)
	if err != nil {
		return err
	}
	if scale <= 0 {
		return fmt.Errorf("BENCH_SCALE must be positive")
	}
	rate, err := envFloat("BENCH_RATE", min(300, 50*scale))
	if err != nil {
		return err
	}
	runs, err := envFloat("BENCH_COLDSTART_RUNS", 5)
	if err != nil {
		return err
	}
	history, err := envFloat("BENCH_HISTORY", 1)
	if err != nil {
		return err
	}
	root, err := emulator.RepoRoot(".")
	if err != nil {
		return err
	}
	out := os.Getenv("BENCH_OUT")
	if out == "" {
		out = filepath.Join(root, "bench-results")
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	if err := privatePorts(); err != nil {
		return err
	}
	emu, err := emulator.Ensure(ctx, logger)
	if err != nil {
		return err
	}
	if emu != nil {
		defer emu.Stop()
	}

	rep, err := bench.Run(ctx, bench.Options{
		Seed: uint64(seed), Persons: max(1, int(200*scale)), Rate: rate, ColdStartRuns: int(runs), History: history != 0,
		Root: root, Logger: logger, Progress: os.Stderr,
	})
	if err != nil {
		return err
	}
	if err := rep.Write(out); err != nil {
		return err
	}
	fmt.Println(rep.Markdown())
	fmt.Printf("wrote %s and %s\n", filepath.Join(out, "report.json"), filepath.Join(out, "report.md"))
	return nil
}

// privatePorts picks free ports for emulators of the benchmark's own unless the environment
// names ports or endpoints: a benchmark sharing emulators with other work measures both.
func privatePorts() error {
	if os.Getenv("AWS_ENDPOINT_URL_DYNAMODB") != "" && os.Getenv("AWS_ENDPOINT_URL_KINESIS") != "" {
		return nil
	}
	if os.Getenv("CDP_DYNAMODB_PORT") == "" {
		p, err := emulator.FreePort()
		if err != nil {
			return err
		}
		os.Setenv("CDP_DYNAMODB_PORT", strconv.Itoa(p))
	}
	if os.Getenv("CDP_KINESIS_PORT") == "" {
		p, err := emulator.FreeKinesisPort()
		if err != nil {
			return err
		}
		os.Setenv("CDP_KINESIS_PORT", strconv.Itoa(p))
	}
	return nil
}

func envFloat(key string, def float64) (float64, error) {
	v := os.Getenv(key)
	if v == "" {
		return def, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("%s=%q: want a non-negative number", key, v)
	}
	return f, nil
}
