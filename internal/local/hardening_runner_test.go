//go:build integration

package local_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/app"
	"github.com/serverless-cdp/cdp/internal/deadletter"
	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
	"github.com/serverless-cdp/cdp/internal/identity"
	"github.com/serverless-cdp/cdp/internal/local"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// runnerIdentityCount counts the records the identity stage was invoked with.
type runnerIdentityCount struct {
	mu sync.Mutex
	n  int
}

func (c *runnerIdentityCount) observe(inv local.Invocation) {
	if inv.Stage == local.StageIdentity {
		c.mu.Lock()
		c.n += inv.Records
		c.mu.Unlock()
	}
}

func (c *runnerIdentityCount) get() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// runnerStart runs a local stack on the given (shared between runs) configuration.
func runnerStart(t *testing.T, cfg app.Config, observe func(local.Invocation)) *local.Stack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stack, err := local.Start(ctx, testenv.Clients(t), local.Options{
		Config: cfg, Addr: "127.0.0.1:0", Shards: 2, DevWriteKey: "runner-write-key-0123456789abcdef", DevAdminToken: adminToken,
		PollInterval: 50 * time.Millisecond, TickInterval: time.Second, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), Observe: observe,
	})
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	return stack
}

// runnerWaitEvents polls the Profile API until the user's timeline holds want events.
func runnerWaitEvents(t *testing.T, stackURL, user string, want int) {
	t.Helper()
	u := stackURL + "/v1/spaces/default/collections/users/profiles/" + url.PathEscape("user_id:"+user) + "/events?limit=100"
	deadline := time.Now().Add(60 * time.Second)
	for {
		var page struct{ Data []map[string]any }
		if code := call(t, http.MethodGet, u, "Basic "+basicToken(adminToken), nil, &page); code == http.StatusOK && len(page.Data) >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: fewer than %d events after 60s", user, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRunnerRestartResumesFromCheckpoints: a runner started again on the same table and streams
// (a restart of `make run`) resumes every poller after its checkpoint: one new event costs the
// identity stage one record, not a re-read of the whole stream. (Before, every restart re-read
// each stream from TRIM_HORIZON: a new event took 47 s to appear with 11,000 records.)
func TestRunnerRestartResumesFromCheckpoints(t *testing.T) {
	cfg := app.Defaults()
	cfg.AllowLoopbackWebhooks = true
	cfg.Table = testenv.Name("cdp")
	cfg.EventsStream, cfg.ChangesStream, cfg.ActivationsStream = testenv.Name("events"), testenv.Name("changes"), testenv.Name("activations")
	auth := "Basic " + basicToken("runner-write-key-0123456789abcdef")

	var first runnerIdentityCount
	stack := runnerStart(t, cfg, first.observe)
	const users, perUser = 4, 50
	for u := 0; u < users; u++ {
		var batch []map[string]any
		for i := 0; i < perUser; i++ {
			batch = append(batch, map[string]any{"type": "track", "userId": fmt.Sprintf("runner-u%d", u), "event": "Viewed", "messageId": fmt.Sprintf("runner-%d-%d", u, i)})
		}
		if code := call(t, http.MethodPost, stack.URL+"/v1/batch", auth, map[string]any{"batch": batch}, nil); code != http.StatusOK {
			t.Fatalf("batch: %d", code)
		}
	}
	for u := 0; u < users; u++ {
		runnerWaitEvents(t, stack.URL, fmt.Sprintf("runner-u%d", u), perUser)
	}
	// Stop only once every identity invocation has returned: one stopped mid-batch is rightly
	// delivered again.
	for deadline := time.Now().Add(30 * time.Second); first.get() < users*perUser; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("first run: identity returned for %d records only", first.get())
		}
	}
	stack.Close()

	var second runnerIdentityCount
	stack = runnerStart(t, cfg, second.observe)
	defer stack.Close()
	if code := call(t, http.MethodPost, stack.URL+"/v1/track", auth, map[string]any{"userId": "runner-new", "event": "Viewed", "messageId": "runner-new-1"}, nil); code != http.StatusOK {
		t.Fatalf("track: %d", code)
	}
	runnerWaitEvents(t, stack.URL, "runner-new", 1)
	// The handler is observed when it returns, just after the timeline write: wait for it, then
	// stop the pipeline so nothing else is in flight. A re-read would have delivered the new
	// event's shard's old records before it.
	for deadline := time.Now().Add(30 * time.Second); second.get() == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("identity invocation not observed")
		}
	}
	stack.StopPipeline()
	if n := second.get(); n != 1 {
		t.Fatalf("after the restart identity read %d records for 1 new event (re-read the stream?)", n)
	}
}

// TestRunnerDeadLettersAnyPayloadAndReplayAllProgress: through the admin API of a running stack,
// a dead letter of 1 MiB (a Kinesis record's limit) is read back whole, and replay-all answers
// 200 with its progress (`replayed`, `failed`, `remaining`, `next`); a forged `next` is a 400.
// (Before, a payload over 350 KB could not be dead-lettered at all, and replay-all ran unbounded
// inside the 29 s API function.)
func TestRunnerDeadLettersAnyPayloadAndReplayAllProgress(t *testing.T) {
	stack, cfg, _ := startStack(t)
	ctx := context.Background()
	dlq := deadletter.NewStore(testenv.Clients(t).DynamoDB, cfg.Table)
	now := time.Now().UTC()
	put := func(user string, props json.RawMessage) deadletter.Entry {
		payload, _ := json.Marshal(tracking.Record{SourceID: "src_runner", Message: tracking.Message{
			Type: "track", Event: "Viewed", MessageID: "runner-dl-" + user, UserID: user, Properties: props, Timestamp: now, ReceivedAt: now,
		}})
		e, err := dlq.Put(ctx, deadletter.Entry{Stage: identity.Stage, Kind: identity.KindEvent, Reason: "retries_exhausted", Payload: payload})
		if err != nil {
			t.Fatalf("dead-letter %d bytes: %v", len(payload), err)
		}
		return e
	}
	blob := make([]byte, 760<<10)
	rand.Read(blob)
	big := put("runner-dl-big", json.RawMessage(fmt.Sprintf(`{"blob":%q}`, base64.StdEncoding.EncodeToString(blob))))
	put("runner-dl-a", nil)
	put("runner-dl-b", nil)

	bearer := "Bearer " + adminToken
	var got map[string]any
	if code := call(t, http.MethodGet, stack.URL+"/admin/v1/dead-letters/identity/"+big.ID, bearer, nil, &got); code != http.StatusOK {
		t.Fatalf("get big dead letter: %d", code)
	}
	raw, _ := json.Marshal(got["payload"])
	if len(raw) < 1_000_000 || !bytes.Contains(raw, []byte(base64.StdEncoding.EncodeToString(blob[:1023]))) {
		t.Fatalf("big dead letter read back with %d bytes of payload", len(raw))
	}
	var res struct {
		Replayed, Failed, Remaining int
		Next                        string
	}
	if code := call(t, http.MethodPost, stack.URL+"/admin/v1/dead-letters/identity/replay", bearer, map[string]string{"next": "../x"}, nil); code != http.StatusBadRequest {
		t.Fatalf("forged next: %d, want 400", code)
	}
	if code := call(t, http.MethodPost, stack.URL+"/admin/v1/dead-letters/identity/replay", bearer, nil, &res); code != http.StatusOK {
		t.Fatalf("replay all: %d", code)
	}
	if res.Replayed+res.Failed != 3 || res.Remaining != 0 || res.Next != "" || res.Replayed < 2 {
		t.Fatalf("replay all: %+v", res)
	}
	runnerWaitEvents(t, stack.URL, "runner-dl-a", 1)
}
