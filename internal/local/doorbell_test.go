//go:build integration

package local_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	analytics "github.com/segmentio/analytics-go/v3"

	"github.com/serverless-cdp/cdp/internal/app"
	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
	"github.com/serverless-cdp/cdp/internal/local"
)

// TestRunnerDoorbellsCarryAnEventThroughEveryHop: with a poll interval of an hour, an event
// still reaches the webhook within seconds: each stage that publishes rings the next stream's
// doorbell (before, each hop waited for the consumer's next poll, up to PollInterval). The
// invocations report how long their records waited in the stream.
func TestRunnerDoorbellsCarryAnEventThroughEveryHop(t *testing.T) {
	cfg := app.Defaults()
	cfg.AllowLoopbackWebhooks = true
	cfg.Table = testenv.Name("bell")
	cfg.EventsStream, cfg.ChangesStream, cfg.ActivationsStream = testenv.Name("bell-events"), testenv.Name("bell-changes"), testenv.Name("bell-activations")
	var mu sync.Mutex
	waits := map[string][]time.Duration{}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const writeKey = "bell-write-key-0123456789abcdef"
	stack, err := local.Start(ctx, testenv.Clients(t), local.Options{
		Config: cfg, Addr: "127.0.0.1:0", Shards: 2, DevWriteKey: writeKey, DevAdminToken: adminToken,
		PollInterval: time.Hour, TickInterval: time.Hour, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Observe: func(inv local.Invocation) {
			mu.Lock()
			defer mu.Unlock()
			waits[inv.Stage] = append(waits[inv.Stage], inv.Waited...)
		},
	})
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	defer stack.Close()

	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	bearer := "Bearer " + adminToken
	var created struct{ Secret string }
	if st := call(t, "POST", stack.URL+"/admin/v1/destinations", bearer, map[string]any{
		"name": "crm", "url": srv.URL + "/hook", "subscriptions": map[string]any{"audiences": []string{"*"}},
	}, &created); st != 201 {
		t.Fatalf("create destination: %d", st)
	}
	rc.mu.Lock()
	rc.secret = created.Secret
	rc.mu.Unlock()
	if st := call(t, "POST", stack.URL+"/admin/v1/audiences", bearer, map[string]any{
		"key": "buyers", "name": "Buyers",
		"condition": map[string]any{"event": map[string]any{"name": "Order Completed", "count": map[string]any{"op": "at_least", "n": 1}, "within": map[string]any{"days": 30}}},
	}, nil); st != 201 && st != 200 {
		t.Fatalf("create audience: %d", st)
	}

	client, err := analytics.NewWithConfig(writeKey, analytics.Config{Endpoint: stack.URL, BatchSize: 1, Interval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Enqueue(analytics.Track{MessageId: "bell-1", UserId: "bell-user", Event: "Order Completed", Timestamp: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "Audience Entered at the webhook (poll interval 1 h)", 60*time.Second, func() bool {
		got, _ := rc.snapshot()
		return len(got) >= 1
	})
	mu.Lock()
	defer mu.Unlock()
	for _, stage := range []string{local.StageIdentity, local.StageSegments, local.StageActivation} {
		if len(waits[stage]) == 0 {
			t.Fatalf("no wait reported for stage %s: %v", stage, waits)
		}
		for _, w := range waits[stage] {
			if w > time.Minute {
				t.Fatalf("stage %s: a record waited %v in its stream", stage, w)
			}
		}
	}
}
