//go:build integration

package timeline_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/serverless-cdp/cdp/internal/change"
	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
	"github.com/serverless-cdp/cdp/internal/identity"
	"github.com/serverless-cdp/cdp/internal/store"
	"github.com/serverless-cdp/cdp/internal/timeline"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var t0 = time.Now().UTC().Truncate(time.Second)

func track(mid, uid, aid string, minute int, props string) tracking.Record {
	m := tracking.Message{Type: "track", Event: "Order Completed", MessageID: mid, UserID: uid, AnonymousID: aid,
		Timestamp: t0.Add(time.Duration(minute) * time.Minute), ReceivedAt: t0}
	if props != "" {
		m.Properties = json.RawMessage(props)
	}
	return tracking.Record{SourceID: "web", Message: m}
}

// read returns what the Reader yields for a profile: message id → stamp (and fails on an
// event yielded twice).
func read(t *testing.T, r *timeline.Reader, profileID string) map[string]change.Stamp {
	t.Helper()
	out := map[string]change.Stamp{}
	err := r.Events(context.Background(), profileID, func(m *tracking.Message, s change.Stamp) error {
		if _, dup := out[m.MessageID]; dup {
			return fmt.Errorf("event %s yielded twice", m.MessageID)
		}
		out[m.MessageID] = s
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func stamps(chs []change.Record) map[string]change.Stamp {
	out := map[string]change.Stamp{}
	for _, c := range chs {
		for i, ev := range c.Events {
			out[ev.MessageID] = c.Stamps[i]
		}
	}
	return out
}

// Events committed through identity.Store come back through the Reader with the stamps the
// change records carried, a merged-away profile's events included after the merge; expired
// events are left out, and an event item of the layout written before stamps and compression
// is still read (with Seq 0).
func TestReaderSeesWhatIdentityCommitted(t *testing.T) {
	c := testenv.Clients(t)
	table := testenv.Table(t, c.DynamoDB)
	st := identity.NewStore(c.DynamoDB, table)
	rules, err := identity.Compile(identity.Rules{})
	if err != nil {
		t.Fatal(err)
	}
	proc := identity.NewProcessor(st, identity.StaticRules{C: rules}, identity.Options{})
	ctx := context.Background()
	big := `{"revenue":42,"items":"` + fmt.Sprint(make([]int, 200)) + `"}` // stored compressed
	want := map[string]change.Stamp{}
	for _, batch := range [][]tracking.Record{
		{track("a1", "", "anon", 0, big), track("a2", "", "anon", 1, `{"revenue":1}`)},
		{track("u1", "user", "", 2, `{"revenue":2}`)},
		{track("m1", "user", "anon", 3, "")}, // merges the anonymous profile and the user's
		{track("u2", "user", "", 4, `{"revenue":3}`)},
	} {
		_, chs, err := proc.Process(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range stamps(chs) {
			want[k] = v
		}
	}
	// An event already past its retention (processed by a clock three days back).
	old := identity.NewProcessor(st, identity.StaticRules{C: rules}, identity.Options{Retention: 24 * time.Hour, Now: func() time.Time { return t0.Add(-72 * time.Hour) }})
	if _, _, err := old.Process(ctx, []tracking.Record{track("x1", "user", "", 5, "")}); err != nil {
		t.Fatal(err)
	}
	surv, err := st.Lookup(ctx, identity.NewIdentifier(identity.TypeUserID, "user"))
	if err != nil || surv == nil || len(surv.MergedFrom) != 1 {
		t.Fatalf("survivor %+v %v", surv, err)
	}
	// An event item as written before stamps and compression, on the merged-away profile.
	legacy := store.Key(timeline.PrefixMsg+timeline.MessageHash("web", "l1"), timeline.SKMsg)
	legacy["profile"], legacy["source"], legacy["msg"] = store.S(surv.MergedFrom[0]), store.S("web"), store.S(`{"type":"track","messageId":"l1","event":"Old"}`)
	legacy[store.GSI1PK], legacy[store.GSI1SK] = store.S(timeline.PrefixProfile+surv.MergedFrom[0]), store.S(timeline.PrefixEvt+"2020#l1")
	if _, err := c.DynamoDB.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: legacy}); err != nil {
		t.Fatal(err)
	}
	want["l1"] = change.Stamp{Profile: surv.MergedFrom[0]}

	got := read(t, timeline.NewReader(c.DynamoDB, table), surv.ID)
	if fmt.Sprint(sorted(got)) != fmt.Sprint(sorted(want)) {
		t.Fatalf("reader:\n got  %v\n want %v", sorted(got), sorted(want))
	}
	if got["a1"].Profile != surv.MergedFrom[0] && got["u1"].Profile != surv.MergedFrom[0] {
		t.Fatalf("no event of the merged-away profile %s: %v", surv.MergedFrom[0], got)
	}
	if n := len(read(t, timeline.NewReader(c.DynamoDB, table), "use_unknown")); n != 0 {
		t.Fatalf("unknown profile: %d events", n)
	}
}

func sorted(m map[string]change.Stamp) []string {
	var out []string
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s=%s/%d", k, v.Profile, v.Seq))
	}
	sort.Strings(out)
	return out
}
