//go:build integration

package local_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go/middleware"

	"github.com/serverless-cdp/cdp/internal/app"
	"github.com/serverless-cdp/cdp/internal/awsenv"
	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
	"github.com/serverless-cdp/cdp/internal/local"
)

// calls counts API calls by operation (the type of their input).
type calls struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *calls) count(s *middleware.Stack) error {
	return s.Initialize.Add(middleware.InitializeMiddlewareFunc("countCalls", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		c.mu.Lock()
		switch in.Parameters.(type) {
		case *dynamodb.DescribeTableInput:
			c.n["DescribeTable"]++
		case *kinesis.DescribeStreamSummaryInput:
			c.n["DescribeStreamSummary"]++
		}
		c.mu.Unlock()
		return next.HandleInitialize(ctx, in)
	}), middleware.Before)
}

func (c *calls) get(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[op]
}

// TestRunnerWatchProbesOneStreamPerCheck: the check for a restarted emulator describes the
// table and one stream per RecoverInterval, in turn (before: all three streams every time; on
// kinesis-mock each describe costs as much CPU as a write, for nothing while all is well).
func TestRunnerWatchProbesOneStreamPerCheck(t *testing.T) {
	c := &calls{n: map[string]int{}}
	base := testenv.Clients(t)
	clients := awsenv.Clients{
		DynamoDB: dynamodb.New(base.DynamoDB.Options(), func(o *dynamodb.Options) { o.APIOptions = append(o.APIOptions, c.count) }),
		Kinesis:  kinesis.New(base.Kinesis.Options(), func(o *kinesis.Options) { o.APIOptions = append(o.APIOptions, c.count) }),
	}
	cfg := app.Defaults()
	cfg.Table = testenv.Name("watch")
	cfg.EventsStream, cfg.ChangesStream, cfg.ActivationsStream = testenv.Name("watch-events"), testenv.Name("watch-changes"), testenv.Name("watch-activations")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stack, err := local.Start(ctx, clients, local.Options{
		Config: cfg, Addr: "127.0.0.1:0", Shards: 1, DevWriteKey: "watch-write-key-0123456789abcdef", DevAdminToken: adminToken,
		TickInterval: time.Hour, RecoverInterval: 20 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		StageClients: func(string) awsenv.Clients { return base },
	})
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	defer stack.Close()
	eventually(t, "30 checks of the table", time.Minute, func() bool { return c.get("DescribeTable") >= 30 })
	tables, streams := c.get("DescribeTable"), c.get("DescribeStreamSummary")
	if streams > tables+1 {
		t.Fatalf("%d stream describes for %d checks of the table: want at most one stream per check", streams, tables)
	}
}
