//go:build integration

package local_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	analytics "github.com/segmentio/analytics-go/v3"

	"github.com/serverless-cdp/cdp/internal/archive"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// archivedIDs counts each messageId in the stack's archive folder.
func archivedIDs(t *testing.T, dir string) map[string]int {
	t.Helper()
	ids := map[string]int{}
	err := archive.Scan(context.Background(), archive.Folder{Root: dir}, archive.Range{From: time.Now().Add(-2 * time.Hour), To: time.Now().Add(time.Hour)},
		func(_ string, r tracking.Record) error { ids[r.Message.MessageID]++; return nil }, nil)
	if err != nil {
		t.Fatalf("scan archive: %v", err)
	}
	return ids
}

type replayJob struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Error  string `json:"error"`
	Counts struct {
		Read    int64            `json:"read"`
		Matched int64            `json:"matched"`
		Sent    int64            `json:"sent"`
		Skipped map[string]int64 `json:"skipped"`
	} `json:"counts"`
}

func runReplay(t *testing.T, base string, body map[string]any) replayJob {
	t.Helper()
	var j replayJob
	if st := call(t, "POST", base+"/admin/v1/replays", "Bearer "+adminToken, body, &j); st != 202 {
		t.Fatalf("replay: %d %+v", st, j)
	}
	eventually(t, "replay "+j.ID+" completed", 60*time.Second, func() bool {
		call(t, "GET", base+"/admin/v1/replays/"+j.ID, "Bearer "+adminToken, nil, &j)
		return j.Status == "completed" || j.Status == "failed"
	})
	if j.Status != "completed" {
		t.Fatalf("replay %s: %s %s", j.ID, j.Status, j.Error)
	}
	return j
}

// TestHistoryArchiveReplayAndDryRunEndToEnd: events sent with analytics-go land in the archive
// exactly once each; replaying them into the pipeline changes no profile and stores no
// duplicate; replaying them into a destination created afterwards delivers each matching event
// once, signed; a dry run of a stricter identity rule on that history reports the person who
// would split, and changes nothing.
func TestHistoryArchiveReplayAndDryRunEndToEnd(t *testing.T) {
	stack, cfg, writeKey := startStack(t)
	api := newScnAPI(t, stack.URL)
	now := time.Now().UTC()
	var sent []string
	send := func(msgs map[string]analytics.Message) {
		client, err := analytics.NewWithConfig(writeKey, analytics.Config{Endpoint: stack.URL, BatchSize: 20, Interval: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		for id, m := range msgs {
			sent = append(sent, id)
			if err := client.Enqueue(m); err != nil {
				t.Fatal(err)
			}
		}
		if err := client.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// First two anonymous visits of Dana's (two devices) and five of Eli's; then Dana identifies
	// on both devices (merging them) and orders 10 times.
	first := map[string]analytics.Message{
		"h-v1": analytics.Page{MessageId: "h-v1", AnonymousId: "dana-dev1", Name: "Home", Timestamp: now},
		"h-v2": analytics.Page{MessageId: "h-v2", AnonymousId: "dana-dev2", Name: "Home", Timestamp: now},
	}
	for i := range 5 {
		id := fmt.Sprintf("h-page-%d", i)
		first[id] = analytics.Page{MessageId: id, AnonymousId: "eli-dev", Name: "Home", Timestamp: now}
	}
	send(first)
	eventually(t, "the visits stored", 30*time.Second, func() bool {
		d, _ := api.meta("anonymous_id:dana-dev2")
		e, _ := api.meta("anonymous_id:eli-dev")
		return d.EventCount == 1 && e.EventCount == 5
	})
	then := map[string]analytics.Message{
		"h-d1": analytics.Identify{MessageId: "h-d1", AnonymousId: "dana-dev1", UserId: "dana", Timestamp: now},
		"h-d2": analytics.Identify{MessageId: "h-d2", AnonymousId: "dana-dev2", UserId: "dana", Timestamp: now},
	}
	for i := range 10 {
		id := fmt.Sprintf("h-order-%d", i)
		then[id] = analytics.Track{MessageId: id, UserId: "dana", Event: "Order Completed", Timestamp: now}
	}
	send(then)
	eventually(t, "every event stored", 30*time.Second, func() bool {
		d, _ := api.meta("user_id:dana")
		e, _ := api.meta("anonymous_id:eli-dev")
		return d.EventCount == 14 && e.EventCount == 5
	})
	var ids map[string]int
	eventually(t, "every event archived", 30*time.Second, func() bool { ids = archivedIDs(t, cfg.Archive); return len(ids) == len(sent) })
	for _, id := range sent {
		if ids[id] != 1 {
			t.Errorf("archive holds %s %d times", id, ids[id])
		}
	}

	// Replay into the pipeline: nothing changes, nothing is stored twice.
	from, to := now.Add(-time.Hour).Format(time.RFC3339), time.Now().UTC().Add(time.Minute).Format(time.RFC3339)
	j := runReplay(t, stack.URL, map[string]any{"from": from, "to": to, "target": map[string]any{"type": "pipeline"}})
	if j.Counts.Sent != int64(len(sent)) {
		t.Fatalf("pipeline replay sent %d, want %d: %+v", j.Counts.Sent, len(sent), j.Counts)
	}
	time.Sleep(3 * time.Second) // let the replayed records pass through identity (they must change nothing)
	d, _ := api.meta("user_id:dana")
	e, _ := api.meta("anonymous_id:eli-dev")
	if d.EventCount != 14 || e.EventCount != 5 {
		t.Fatalf("after a pipeline replay: dana %d events, eli %d (want 14 and 5)", d.EventCount, e.EventCount)
	}

	// Replay into a destination created now: every order once, signed.
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	var created struct {
		Destination struct{ ID string } `json:"destination"`
		Secret      string              `json:"secret"`
	}
	if st := call(t, "POST", stack.URL+"/admin/v1/destinations", "Bearer "+adminToken, map[string]any{
		"name": "warehouse", "url": srv.URL, "subscriptions": map[string]any{"events": []map[string]any{{"type": "track", "name": "Order Completed"}}},
	}, &created); st != 201 {
		t.Fatalf("create destination: %d", st)
	}
	rc.mu.Lock()
	rc.secret = created.Secret
	rc.mu.Unlock()
	j = runReplay(t, stack.URL, map[string]any{"from": from, "to": to, "events": []string{"Order Completed"},
		"target": map[string]any{"type": "destination", "destinationId": created.Destination.ID}})
	eventually(t, "10 orders at the new destination", 30*time.Second, func() bool { got, _ := rc.snapshot(); return len(got) >= 10 })
	time.Sleep(time.Second) // a duplicate, if any, would arrive now
	got, bad := rc.snapshot()
	var orders []string
	for _, m := range got {
		orders = append(orders, fmt.Sprint(m["messageId"]))
	}
	slices.Sort(orders)
	if bad != 0 || len(orders) != 10 || slices.Compact(slices.Clone(orders)) == nil || len(slices.Compact(orders)) != 10 || !strings.HasPrefix(orders[0], "h-order-") {
		t.Fatalf("destination got %d messages (%d bad signatures): %v", len(got), bad, orders)
	}

	// Dry run: one device per profile (anonymous_id limit 1) would keep Dana's second device's
	// profile apart: Dana splits, and only her. The pipeline replay archived every record again
	// (it went back through the events stream): the dry run counts those as duplicates.
	var rep struct {
		Message       string `json:"message"`
		Events        int    `json:"events"`
		Duplicates    int    `json:"duplicates"`
		Splits        int    `json:"splits"`
		SplitExamples []struct {
			Current   [][]string `json:"current"`
			Candidate [][]string `json:"candidate"`
		} `json:"splitExamples"`
	}
	rules := map[string]any{"types": []map[string]any{{"type": "user_id", "priority": 1, "limit": 1}, {"type": "anonymous_id", "priority": 3, "limit": 1}}}
	if st := call(t, "POST", stack.URL+"/admin/v1/identity-rules/dry-run", "Bearer "+adminToken,
		map[string]any{"rules": rules, "from": from, "to": to}, &rep); st != 200 {
		t.Fatalf("dry run: %d %s", st, rep.Message)
	}
	if rep.Events-rep.Duplicates != len(sent) || rep.Splits != 1 || len(rep.SplitExamples) != 1 || !strings.Contains(fmt.Sprint(rep.SplitExamples[0].Current), "dana-dev2") {
		t.Fatalf("dry run report: %+v", rep)
	}
	if d2, _ := api.meta("anonymous_id:dana-dev2"); d2.ID != d.ID {
		t.Fatalf("the dry run changed the profiles: %+v vs %+v", d2, d)
	}
}
