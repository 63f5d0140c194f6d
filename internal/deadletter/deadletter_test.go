package deadletter_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/serverless-cdp/cdp/internal/deadletter"
	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestPutListReplay(t *testing.T) {
	c := testenv.Clients(t)
	table := testenv.Table(t, c.DynamoDB)
	s := deadletter.NewStore(c.DynamoDB, table)
	ctx := context.Background()
	a, err := s.Put(ctx, deadletter.Entry{Stage: "identity", Kind: "event", Reason: "decode", Error: "bad", Payload: []byte(`{"a":1}`)})
	if err != nil || a.Count != 1 {
		t.Fatalf("put: %+v %v", a, err)
	}
	a2, err := s.Put(ctx, deadletter.Entry{Stage: "identity", Kind: "event", Reason: "decode", Error: "worse", Payload: []byte(`{"a":1}`)})
	if err != nil || a2.ID != a.ID || a2.Count != 2 || a2.Error != "worse" {
		t.Fatalf("second put: %+v %v", a2, err)
	}
	b, _ := s.Put(ctx, deadletter.Entry{Stage: "identity", Kind: "event", Reason: "x", Payload: []byte("\xff not json")})
	if _, err := s.Put(ctx, deadletter.Entry{Stage: "segments", Kind: "change", Reason: "x", Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	var all []deadletter.Entry
	next := ""
	for {
		page, cur, err := s.List(ctx, "identity", 1, next)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
		if cur == "" {
			break
		}
		next = cur
	}
	if len(all) != 2 {
		t.Fatalf("listed %d identity entries", len(all))
	}
	js, _ := json.Marshal(b)
	if !strings.Contains(string(js), `"payloadBase64"`) {
		t.Fatalf("binary payload json: %s", js)
	}

	fail := true
	var replayed []string
	svc := deadletter.NewService(s, map[string]deadletter.Replayer{"identity": deadletter.ReplayFunc(func(_ context.Context, e deadletter.Entry) error {
		if fail {
			return errors.New("still broken")
		}
		replayed = append(replayed, string(e.Payload))
		return nil
	})})
	if err := svc.Replay(ctx, "identity", a.ID); err == nil {
		t.Fatal("failed replay reported success")
	}
	got, err := svc.Get(ctx, "identity", a.ID)
	if err != nil || got.LastReplayError != "still broken" {
		t.Fatalf("after failed replay: %+v %v", got, err)
	}
	fail = false
	if err := svc.Replay(ctx, "identity", a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Get(ctx, "identity", a.ID); !errors.Is(err, deadletter.ErrNotFound) {
		t.Fatalf("replayed entry still there: %v", err)
	}
	if err := svc.Replay(ctx, "segments", "nope"); !errors.Is(err, deadletter.ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
	ok, failed, err := svc.ReplayAll(ctx, "identity")
	if err != nil || ok != 1 || failed != 0 || len(replayed) != 2 {
		t.Fatalf("replay all: %d %d %v %v", ok, failed, err, replayed)
	}
}
