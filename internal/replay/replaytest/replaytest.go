// Package replaytest builds a replay service over in-memory fakes and a folder archive, for the
// tests of the admin adapter and the cdp CLI.
package replaytest

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/archive"
	"github.com/serverless-cdp/cdp/internal/destination"
	"github.com/serverless-cdp/cdp/internal/replay"
	"github.com/serverless-cdp/cdp/internal/stream"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// Day is the archived day: one "Signed Up" event of user u1 at 10:00 from src_web.
var Day = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// Events records what is put on the events stream.
type Events struct {
	mu   sync.Mutex
	recs []stream.Record
}

// Put implements replay.Publisher.
func (e *Events) Put(_ context.Context, recs []stream.Record) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.recs = append(e.recs, recs...)
	return nil
}

// Sent is what was put.
func (e *Events) Sent() []stream.Record {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]stream.Record(nil), e.recs...)
}

type allowAll struct{}

func (allowAll) Suppressed(context.Context, []string) (bool, error) { return false, nil }
func (allowAll) Erased(context.Context, string) (bool, error)       { return false, nil }

// oneDest knows destination dst_1, subscribed to every track event.
type oneDest struct{}

func (oneDest) Get(_ context.Context, id string) (destination.Destination, error) {
	if id == "dst_1" {
		return destination.Destination{ID: id, Enabled: true,
			Subscriptions: destination.Subscriptions{Events: []destination.EventFilter{{Type: "track"}}}}, nil
	}
	return destination.Destination{}, destination.ErrNotFound
}

// Service is a replay service over a folder archive holding Day's one event; its pipeline
// target is the returned Events; it has no profile lookup (destination jobs fail their step).
func Service(t *testing.T, inline time.Duration) (*replay.Service, *Events) {
	t.Helper()
	folder := archive.Folder{Root: t.TempDir()}
	at := Day.Add(10 * time.Hour)
	line, err := json.Marshal(tracking.Record{SourceID: "src_web", Message: tracking.Message{Type: "track", MessageID: "m1", UserID: "u1",
		Event: "Signed Up", Timestamp: at, ReceivedAt: at}})
	if err != nil {
		t.Fatal(err)
	}
	body, err := archive.Encode([][]byte{line})
	if err == nil {
		err = folder.Put(context.Background(), archive.Key("src_web", at, "a"), body)
	}
	if err != nil {
		t.Fatal(err)
	}
	ev := &Events{}
	rn := replay.NewRunner(replay.Options{Jobs: replay.NewMemStore(), Archive: folder, Pipeline: ev, Blocklist: allowAll{},
		Destinations: oneDest{}, Identifiers: func(m *tracking.Message) []string { return []string{"user_id:" + m.UserID} }})
	return replay.NewService(rn, replay.ServiceOptions{InlineBudget: inline}), ev
}
