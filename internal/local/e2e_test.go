//go:build integration

package local_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	analytics "github.com/segmentio/analytics-go/v3"

	"github.com/serverless-cdp/cdp/internal/app"
	"github.com/serverless-cdp/cdp/internal/awsenv"
	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
	"github.com/serverless-cdp/cdp/internal/local"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// startStack runs the whole local deployment on a private table and private streams.
func startStack(t *testing.T) (*local.Stack, app.Config, string) {
	t.Helper()
	return startStackLogging(t, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// startStackLogging is startStack with the stack's logger; mods may change the options (with
// the test's clients at hand).
func startStackLogging(t *testing.T, logger *slog.Logger, mods ...func(*local.Options, awsenv.Clients)) (*local.Stack, app.Config, string) {
	t.Helper()
	clients := testenv.Clients(t)
	cfg := app.Defaults()
	cfg.AllowLoopbackWebhooks = true // the test's webhook receiver listens on 127.0.0.1
	cfg.KeyCacheTTL = 0              // so a disabled source is refused at once
	cfg.Table = testenv.Name("cdp")
	cfg.EventsStream, cfg.ChangesStream, cfg.ActivationsStream = testenv.Name("events"), testenv.Name("changes"), testenv.Name("activations")
	cfg.Archive = t.TempDir() // the runner writes the events stream here, as Firehose writes S3
	const writeKey = "e2e-write-key-0123456789abcdef"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts := local.Options{
		Config: cfg, Addr: "127.0.0.1:0", Shards: 2, DevWriteKey: writeKey, DevAdminToken: adminToken,
		PollInterval: 50 * time.Millisecond, TickInterval: 200 * time.Millisecond, Logger: logger,
	}
	for _, m := range mods {
		m(&opts, clients)
	}
	stack, err := local.Start(ctx, clients, opts)
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	t.Cleanup(func() {
		stack.Close()
		bg := context.Background()
		clients.DynamoDB.DeleteTable(bg, &dynamodb.DeleteTableInput{TableName: aws.String(cfg.Table)})
		for _, s := range []string{cfg.EventsStream, cfg.ChangesStream, cfg.ActivationsStream} {
			clients.Kinesis.DeleteStream(bg, &kinesis.DeleteStreamInput{StreamName: aws.String(s)})
		}
	})
	return stack, cfg, writeKey
}

const adminToken = "e2e-admin-token-0123456789abcdef"

// TestAnalyticsGoEndToEnd sends every call type with the real Segment Go library and reads the
// records back from the Kinesis stream, checking each field the spec defines.
func TestAnalyticsGoEndToEnd(t *testing.T) {
	stack, cfg, writeKey := startStack(t)
	client, err := analytics.NewWithConfig(writeKey, analytics.Config{
		Endpoint: stack.URL, BatchSize: 100, Interval: 50 * time.Millisecond,
		DefaultContext: &analytics.Context{App: analytics.AppInfo{Name: "e2e", Version: "1.0"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
	msgs := []analytics.Message{
		analytics.Identify{MessageId: "m-identify", UserId: "user-1", Timestamp: ts, Traits: analytics.NewTraits().SetEmail("Ada@Example.com").SetName("Ada")},
		analytics.Track{MessageId: "m-track", UserId: "user-1", Event: "Order Completed", Timestamp: ts, Properties: analytics.NewProperties().SetRevenue(42.5),
			Context: &analytics.Context{IP: []byte{10, 0, 0, 1}}},
		analytics.Page{MessageId: "m-page", AnonymousId: "anon-1", Name: "Home", Timestamp: ts},
		analytics.Screen{MessageId: "m-screen", AnonymousId: "anon-1", Name: "Settings", Timestamp: ts},
		analytics.Group{MessageId: "m-group", UserId: "user-1", GroupId: "acme", Timestamp: ts, Traits: analytics.NewTraits().SetName("Acme")},
		analytics.Alias{MessageId: "m-alias", UserId: "user-1", PreviousId: "anon-1", Timestamp: ts},
		analytics.Track{UserId: "user-2", Event: "No Message Id"}, // analytics-go fills messageId itself
	}
	for _, m := range msgs {
		if err := client.Enqueue(m); err != nil {
			t.Fatalf("enqueue %T: %v", m, err)
		}
	}
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}

	clients := testenv.Clients(t)
	raw := testenv.ReadStream(t, clients.Kinesis, cfg.EventsStream, len(msgs), 20*time.Second)
	if len(raw) != len(msgs) {
		t.Fatalf("stream holds %d records, want %d", len(raw), len(msgs))
	}
	byID := map[string]tracking.Message{}
	for _, r := range raw {
		var rec tracking.Record
		if err := json.Unmarshal(r.Data, &rec); err != nil {
			t.Fatalf("record: %v", err)
		}
		if rec.SourceID == "" {
			t.Fatal("record without source")
		}
		if got, want := *r.PartitionKey, rec.Message.PartitionKey(); got != want {
			t.Fatalf("partition key %q, want %q", got, want)
		}
		byID[rec.Message.MessageID] = rec.Message
	}
	want := map[string]string{"m-identify": "identify", "m-track": "track", "m-page": "page", "m-screen": "screen", "m-group": "group", "m-alias": "alias"}
	for id, typ := range want {
		m, ok := byID[id]
		if !ok || m.Type != typ {
			t.Fatalf("%s: got %+v", id, m)
		}
		// Clock-skew correction: timestamp = receivedAt − (sentAt − originalTimestamp).
		if m.SentAt == nil || m.OriginalTimestamp == nil || !m.OriginalTimestamp.Equal(ts) {
			t.Fatalf("%s: sentAt %v originalTimestamp %v, want original %v", id, m.SentAt, m.OriginalTimestamp, ts)
		}
		if wantTS := m.ReceivedAt.Add(-m.SentAt.Sub(*m.OriginalTimestamp)); !m.Timestamp.Equal(wantTS) {
			t.Fatalf("%s: timestamp %v, want %v", id, m.Timestamp, wantTS)
		}
		// The batch envelope's context (library, app) is merged into every message.
		var c struct {
			Library struct{ Name string } `json:"library"`
			App     struct{ Name string } `json:"app"`
			IP      string                `json:"ip"`
		}
		if err := json.Unmarshal(m.Context, &c); err != nil || c.Library.Name != "analytics-go" || c.App.Name != "e2e" {
			t.Fatalf("%s: context %s", id, m.Context)
		}
	}
	var tr struct{ Revenue float64 }
	json.Unmarshal(byID["m-track"].Properties, &tr)
	if byID["m-track"].Event != "Order Completed" || tr.Revenue != 42.5 || byID["m-track"].UserID != "user-1" {
		t.Fatalf("track: %+v", byID["m-track"])
	}
	var trCtx struct{ IP string }
	json.Unmarshal(byID["m-track"].Context, &trCtx)
	if trCtx.IP != "10.0.0.1" {
		t.Fatalf("message context lost in merge: %s", byID["m-track"].Context)
	}
	var traits struct{ Email, Name string }
	json.Unmarshal(byID["m-identify"].Traits, &traits)
	if traits.Email != "Ada@Example.com" || traits.Name != "Ada" {
		t.Fatalf("identify traits: %s", byID["m-identify"].Traits)
	}
	if a := byID["m-alias"]; a.PreviousID != "anon-1" || a.UserID != "user-1" {
		t.Fatalf("alias: %+v", a)
	}
	if g := byID["m-group"]; g.GroupID != "acme" {
		t.Fatalf("group: %+v", g)
	}
	if p := byID["m-page"]; p.Name != "Home" || p.AnonymousID != "anon-1" {
		t.Fatalf("page: %+v", p)
	}
	if s := byID["m-screen"]; s.Name != "Settings" {
		t.Fatalf("screen: %+v", s)
	}
}
