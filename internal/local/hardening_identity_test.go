//go:build integration

package local_test

// Hardening of the identity stage (issue 10), through the public endpoints: a batch with an
// over-long id stores every good event; one user with huge traits does not hold back anyone
// else's forwarded events; messageId is unique per source.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kinesistypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	analytics "github.com/segmentio/analytics-go/v3"

	"github.com/serverless-cdp/cdp/internal/admin"
	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
	"github.com/serverless-cdp/cdp/internal/source"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

const identityWait = 30 * time.Second

// identityEventIDs returns the message ids on the timeline of the profile ref resolves to.
func identityEventIDs(t *testing.T, api *scnAPI, ref string) []string {
	t.Helper()
	var out struct {
		Data []struct {
			MessageID string `json:"message_id"`
		} `json:"data"`
	}
	if st := api.get(ref, "events?limit=100", &out); st != 200 && st != 404 {
		t.Fatalf("events of %s: %d", ref, st)
	}
	ids := make([]string, 0, len(out.Data))
	for _, d := range out.Data {
		ids = append(ids, d.MessageID)
	}
	return ids
}

// identityDeadLetters lists the identity stage's dead letters through the admin API.
func identityDeadLetters(t *testing.T, stackURL string) []map[string]any {
	t.Helper()
	var page struct {
		DeadLetters []map[string]any `json:"deadLetters"`
	}
	if st := call(t, "GET", stackURL+admin.Prefix+"/dead-letters/identity?limit=100", "Bearer "+adminToken, nil, &page); st != 200 {
		t.Fatalf("list dead letters: %d", st)
	}
	return page.DeadLetters
}

// identityCreateSource creates a source through the admin API and returns its write key.
func identityCreateSource(t *testing.T, stackURL, name string) string {
	t.Helper()
	var created struct {
		Source   source.Source `json:"source"`
		WriteKey string        `json:"writeKey"`
	}
	if st := call(t, "POST", stackURL+admin.Prefix+"/sources", "Bearer "+adminToken, map[string]any{"name": name}, &created); st != 201 || created.WriteKey == "" {
		t.Fatalf("create source %s: %d", name, st)
	}
	return created.WriteKey
}

// A batch of 60 records written straight into the events stream (as a replay or an import
// would, bypassing ingest's checks), one with a 3,000-character messageId: the 59 others are
// on their profiles' timelines, and the bad one alone is in the dead letters.
func TestIdentityOverlongIDInjectedIntoEventsStream(t *testing.T) {
	stack, cfg, _ := startStack(t)
	api := newScnAPI(t, stack.URL)
	var entries []kinesistypes.PutRecordsRequestEntry
	now := time.Now().UTC().Truncate(time.Millisecond)
	for i := 0; i < 60; i++ {
		mid := fmt.Sprintf("inj-%d", i)
		if i == 31 {
			mid = strings.Repeat("m", 3000)
		}
		r := tracking.Record{SourceID: "injected", Message: tracking.Message{Type: "track", MessageID: mid, UserID: fmt.Sprintf("inj-user-%d", i%6),
			Event: "Imported", Timestamp: now, ReceivedAt: now}}
		b, _ := json.Marshal(r)
		entries = append(entries, kinesistypes.PutRecordsRequestEntry{Data: b, PartitionKey: aws.String(r.Message.UserID)})
	}
	k := testenv.Clients(t).Kinesis
	out, err := k.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String(cfg.EventsStream), Records: entries})
	if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
		t.Fatalf("put records: %v", err)
	}
	eventually(t, "59 events on 6 timelines", identityWait, func() bool {
		n := 0
		for u := 0; u < 6; u++ {
			n += len(identityEventIDs(t, api, fmt.Sprintf("user_id:inj-user-%d", u)))
		}
		return n == 59
	})
	eventually(t, "the bad record in the dead letters", identityWait, func() bool { return len(identityDeadLetters(t, stack.URL)) > 0 })
	dls := identityDeadLetters(t, stack.URL)
	if len(dls) != 1 || dls[0]["reason"] != "invalid_record" || !strings.Contains(fmt.Sprint(dls[0]["error"]), "messageId") {
		t.Fatalf("dead letters: want only the bad record, got %d: %v", len(dls), dls)
	}
}

// One user sends 40 identifies with a 31 KB trait each, interleaved with tracked (forwarded)
// events of 20 other users: a healthy webhook destination receives all 20 users' events, and
// the big user's profile stays within the trait budget with the refusals in its merge log.
func TestIdentityBigProfileDoesNotBlockOtherUsers(t *testing.T) {
	stack, _, writeKey := startStack(t)
	api := newScnAPI(t, stack.URL)
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	var created struct {
		Secret string `json:"secret"`
	}
	if st := call(t, "POST", stack.URL+admin.Prefix+"/destinations", "Bearer "+adminToken, map[string]any{
		"name": "warehouse", "url": srv.URL + "/hook",
		"subscriptions": map[string]any{"events": []map[string]any{{"type": "track", "name": "Order Completed"}}},
	}, &created); st != 201 {
		t.Fatalf("create destination: %d", st)
	}
	rc.mu.Lock()
	rc.secret = created.Secret
	rc.mu.Unlock()

	now := time.Now().UTC()
	var msgs []analytics.Message
	for i := 0; i < 40; i++ {
		msgs = append(msgs, analytics.Identify{MessageId: fmt.Sprintf("big-%02d", i), UserId: "big-user", Timestamp: now.Add(time.Duration(i) * time.Millisecond),
			Traits: analytics.NewTraits().Set(fmt.Sprintf("blob_%02d", i), strings.Repeat("b", 31_000))})
		if i%2 == 0 {
			u := i / 2
			msgs = append(msgs, analytics.Track{MessageId: fmt.Sprintf("order-%02d", u), UserId: fmt.Sprintf("other-%02d", u), Event: "Order Completed",
				Timestamp: now, Properties: analytics.NewProperties().SetRevenue(float64(u))})
		}
	}
	start := time.Now()
	scnSend(t, stack.URL, writeKey, 10, msgs...)

	eventually(t, "all 20 other users' events at the webhook", 60*time.Second, func() bool {
		got, _ := rc.snapshot()
		users := map[any]bool{}
		for _, m := range got {
			users[m["userId"]] = true
		}
		return len(users) == 20
	})
	t.Logf("all 20 other users' events delivered %s after the first request", time.Since(start).Round(10*time.Millisecond))
	if _, bad := rc.snapshot(); bad != 0 {
		t.Fatalf("%d deliveries with bad signatures", bad)
	}
	eventually(t, "40 events on the big profile", identityWait, func() bool {
		m, ok := api.meta("user_id:big-user")
		return ok && m.EventCount == 40
	})
	traits := api.traits("user_id:big-user")
	b, _ := json.Marshal(traits)
	if len(b) > 64<<10 || len(traits) == 0 || len(traits) >= 40 {
		t.Fatalf("big profile: %d traits, %d bytes of JSON", len(traits), len(b))
	}
	refused := map[string]bool{}
	var raw struct {
		Data []struct {
			Actions []struct {
				Kind   string   `json:"kind"`
				Traits []string `json:"traits"`
				Rule   string   `json:"rule"`
			} `json:"actions"`
		} `json:"data"`
	}
	api.get("user_id:big-user", "merges?limit=100", &raw)
	for _, l := range raw.Data {
		for _, a := range l.Actions {
			if a.Kind == "refused" && strings.Contains(a.Rule, "trait budget") {
				for _, k := range a.Traits {
					refused[k] = true
				}
			}
		}
	}
	if len(refused)+len(traits) != 40 {
		t.Fatalf("%d traits kept, %d refused in the merge log: %v", len(traits), len(refused), refused)
	}
}

// The same messageId from two sources (created through the admin API) is two events; from
// the same source again, still one.
func TestIdentitySameMessageIDFromTwoSources(t *testing.T) {
	stack, _, _ := startStack(t)
	api := newScnAPI(t, stack.URL)
	web, crm := identityCreateSource(t, stack.URL, "web"), identityCreateSource(t, stack.URL, "crm")
	now := time.Now().UTC()
	same := analytics.Track{MessageId: "shared-id", UserId: "two-sources", Event: "Signed Up", Timestamp: now}
	scnSend(t, stack.URL, web, 1, same)
	scnSend(t, stack.URL, crm, 1, same)
	eventually(t, "both events on the timeline", identityWait, func() bool {
		return len(identityEventIDs(t, api, "user_id:two-sources")) == 2
	})
	// The web source sends it again, then a new event; once the new one is on the timeline
	// the repeat (same partition key, so processed before it) has been deduplicated.
	scnSend(t, stack.URL, web, 1, same, analytics.Track{MessageId: "after", UserId: "two-sources", Event: "Viewed", Timestamp: now.Add(time.Second)})
	eventually(t, "the later event on the timeline", identityWait, func() bool {
		ids := identityEventIDs(t, api, "user_id:two-sources")
		return len(ids) >= 3
	})
	ids := identityEventIDs(t, api, "user_id:two-sources")
	if len(ids) != 3 || api.mustMeta("user_id:two-sources").EventCount != 3 {
		t.Fatalf("timeline %v", ids)
	}
}
