//go:build integration

package apifn_test

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/serverless-cdp/cdp/internal/admintoken"
	"github.com/serverless-cdp/cdp/internal/app"
	"github.com/serverless-cdp/cdp/internal/app/apifn"
	"github.com/serverless-cdp/cdp/internal/deadletter"
	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
	"github.com/serverless-cdp/cdp/internal/httpapi"
	"github.com/serverless-cdp/cdp/internal/identity"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestAdminReplaysIdentityDeadLetters: the deployed admin API replays a dead-lettered event
// through the identity stage (a profile is resolved and its change published), and keeps an
// event that still cannot be processed, with the error. Integration:
// needs the emulators.
func TestAdminReplaysIdentityDeadLetters(t *testing.T) {
	for k, v := range map[string]string{"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"} {
		if os.Getenv(k) == "" {
			t.Setenv(k, v)
		}
	}
	ctx := context.Background()
	c := testenv.Clients(t)
	cfg := app.Defaults()
	cfg.Table = testenv.Table(t, c.DynamoDB)
	cfg.ChangesStream = testenv.Stream(t, c.Kinesis, "changes", 1)
	_, token, err := admintoken.NewStore(c.DynamoDB, cfg.Table).Create(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	api := &httpapi.API{Admin: apifn.NewAdminRouter(c, cfg, nil).Serve}
	call := func(method, path string) httpapi.Response {
		t.Helper()
		req := httpapi.Request{RawPath: path, Headers: map[string]string{"authorization": "Bearer " + token},
			RequestContext: events.APIGatewayV2HTTPRequestContext{HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path}}}
		resp, err := api.Handle(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	dlq := deadletter.NewStore(c.DynamoDB, cfg.Table)
	now := time.Now().UTC()
	put := func(m tracking.Message) deadletter.Entry {
		m.Timestamp, m.ReceivedAt = now, now
		payload, _ := json.Marshal(tracking.Record{SourceID: "src_test", Message: m})
		e, err := dlq.Put(ctx, deadletter.Entry{Stage: identity.Stage, Kind: identity.KindEvent, Reason: "retries_exhausted", Payload: payload})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	good := put(tracking.Message{Type: "identify", MessageID: "m-good", UserID: "u-42", Traits: json.RawMessage(`{"email":"ada@shop.test"}`)})
	stuck := put(tracking.Message{Type: "track", MessageID: "m-stuck", Event: "Clicked"}) // no identifier at all

	if resp := call("GET", "/admin/v1/dead-letters/identity"); resp.StatusCode != 200 || strings.Count(resp.Body, `"stage":"identity"`) != 2 {
		t.Fatalf("list: %d %s", resp.StatusCode, resp.Body)
	}
	if resp := call("POST", "/admin/v1/dead-letters/identity/"+good.ID+"/replay"); resp.StatusCode != 200 {
		t.Fatalf("replay: %d %s", resp.StatusCode, resp.Body)
	}
	if recs := testenv.ReadStream(t, c.Kinesis, cfg.ChangesStream, 1, 20*time.Second); len(recs) != 1 || !strings.Contains(string(recs[0].Data), "u-42") {
		t.Fatalf("changes published: %d", len(recs))
	}
	if resp := call("GET", "/admin/v1/dead-letters/identity/"+good.ID); resp.StatusCode != 404 {
		t.Fatalf("replayed entry still listed: %d", resp.StatusCode)
	}
	resp := call("POST", "/admin/v1/dead-letters/identity/"+stuck.ID+"/replay")
	if resp.StatusCode != 409 || !strings.Contains(resp.Body, "replay failed") {
		t.Fatalf("stuck replay: %d %s", resp.StatusCode, resp.Body)
	}
	if e, err := dlq.Get(ctx, identity.Stage, stuck.ID); err != nil || e.LastReplayError == "" {
		t.Fatalf("stuck entry: %+v %v", e, err)
	}
}
