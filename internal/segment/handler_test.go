package segment

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/serverless-cdp/cdp/internal/activations"
	"github.com/serverless-cdp/cdp/internal/change"
	"github.com/serverless-cdp/cdp/internal/deadletter"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	h     *Handler
	sv    *Service
	st    Stores
	clock *clock
	read  func(want int, wait time.Duration) []activations.Record
	dl    deadLetterList // a dead-letter store over the same backend
	seq   int
	// hist is the identity timeline the records come from: send stamps the events of records
	// without stamps as identity would (the same stamp for a message id sent again) and keeps
	// them in hist; nil: records go unstamped.
	hist   *MemHistory
	stamps map[string]change.Stamp
	seqs   map[string]int64
}

// stampAll gives a record's events stamps (unless it has some) and keeps them on the timeline.
func (e *env) stampAll(r *change.Record) {
	if e.hist == nil {
		return
	}
	for _, from := range r.MergedFrom {
		e.hist.Merge(r.ProfileID, from)
	}
	given := len(r.Stamps) == len(r.Events)
	for i, m := range r.Events {
		s, known := e.stamps[m.MessageID]
		if given {
			s = r.Stamps[i]
		} else if !known {
			e.seqs[r.ProfileID]++
			s = change.Stamp{Profile: r.ProfileID, Seq: e.seqs[r.ProfileID]}
		}
		if !known {
			e.stamps[m.MessageID] = s
			e.hist.Add(r.ProfileID, m, s)
		}
		if !given {
			r.Stamps = append(r.Stamps, s)
		}
	}
}

// deadLetterList is a dead-letter store that can be read back (deadletter.Store, MemDeadLetters).
type deadLetterList interface {
	DeadLetters
	List(ctx context.Context, stage string, limit int, next string) ([]deadletter.Entry, string, error)
}

// backend is what a test environment runs on: in memory (env_mem_test.go) or, under the
// integration tag, DynamoDB Local and kinesis-mock (integration_test.go).
type backend struct {
	st   Stores
	pub  Publisher
	read func(t *testing.T, want int, wait time.Duration) [][]byte // the activations published so far
	dl   deadLetterList
}

func newEnv(t *testing.T) *env {
	t.Helper()
	b := newBackend(t)
	clk := &clock{t: t0}
	hist := NewMemHistory()
	h := NewHandler(b.st, b.pub, Options{Clock: clk.Now, DefCacheTTL: time.Nanosecond, History: hist})
	sv := NewService(b.st, clk.Now)
	sv.OnChange = h.Invalidate
	sv.History = hist
	e := &env{h: h, sv: sv, st: b.st, clock: clk, dl: b.dl, hist: hist, stamps: map[string]change.Stamp{}, seqs: map[string]int64{}}
	e.read = func(want int, wait time.Duration) []activations.Record {
		raw := b.read(t, want, wait)
		out := make([]activations.Record, 0, len(raw))
		for _, r := range raw {
			var a activations.Record
			if err := json.Unmarshal(r, &a); err != nil {
				t.Fatal(err)
			}
			out = append(out, a)
		}
		return out
	}
	return e
}

func track(id, name string, at time.Time, props string) tracking.Message {
	return tracking.Message{Type: tracking.TypeTrack, MessageID: id, Event: name, Timestamp: at, ReceivedAt: at,
		Properties: json.RawMessage(props), UserID: "u-" + id}
}

func chg(pid string, ver int64, traits string, evs ...tracking.Message) change.Record {
	r := change.Record{ProfileID: pid, Version: ver, Events: evs, Part: 1, Parts: 1,
		Identifiers: []change.Identifier{{Type: "user_id", Value: "user-" + pid}}}
	if traits != "" {
		_ = json.Unmarshal([]byte(traits), &r.Traits)
	}
	return r
}

func (e *env) send(t *testing.T, recs ...change.Record) events.KinesisEventResponse {
	t.Helper()
	var ev events.KinesisEvent
	for _, r := range recs {
		e.stampAll(&r)
		b, _ := json.Marshal(r)
		e.seq++
		var kr events.KinesisEventRecord
		kr.Kinesis.Data = b
		kr.Kinesis.SequenceNumber = fmt.Sprint(e.seq)
		ev.Records = append(ev.Records, kr)
	}
	resp, err := e.h.Handle(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// summary renders transition records as "kind profile audienceKey" lines, sorted.
func summary(recs []activations.Record, kinds ...string) []string {
	var out []string
	for _, r := range recs {
		for _, k := range kinds {
			if r.Kind == k {
				s := r.Kind + " " + r.ProfileID
				if r.Audience != nil {
					s += " " + r.Audience.Key
				}
				if r.Kind == activations.KindTraitsChanged {
					b, _ := json.Marshal(r.Traits)
					s += " " + string(b)
				}
				if r.Kind == activations.KindEvent {
					s += " " + r.ID
				}
				out = append(out, s)
			}
		}
	}
	sort.Strings(out)
	return out
}

func eq(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%s:\n got  %q\n want %q", what, got, want)
	}
}

func TestHandlerTransitionsRedeliveryAndWindowExit(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ct, err := e.sv.SaveTrait(ctx, ComputedTrait{Name: "Orders 30d", Kind: KindCount, Event: EventFilter{Name: "Order Completed"}, Window: Window{Days: 30}})
	if err != nil {
		t.Fatal(err)
	}
	buyers, err := e.sv.SaveAudience(ctx, *aud(t, "", "Recent buyers", `{"event":{"name":"Order Completed","within":{"days":30}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.sv.SaveAudience(ctx, *aud(t, "", "Pro users", `{"trait":{"key":"plan","op":"eq","value":"pro"}}`)); err != nil {
		t.Fatal(err)
	}
	if err := e.h.RunBackfills(ctx); err != nil { // nothing to backfill yet: jobs go live
		t.Fatal(err)
	}

	batch := []change.Record{
		chg("p1", 1, `{"plan":"free"}`, track("m1", "Order Completed", t0.Add(-time.Hour), `{"revenue":10}`)),
		chg("p2", 1, `{"plan":"pro"}`, track("m2", "Page Viewed", t0.Add(-time.Hour), `{}`)),
		chg("p1", 2, `{"plan":"free"}`, track("m3", "Order Completed", t0.Add(-time.Minute), `{"revenue":5}`)),
	}
	for range 2 { // the same batch twice: no second transition, no event forwarded twice
		if resp := e.send(t, batch...); len(resp.BatchItemFailures) != 0 {
			t.Fatalf("failures %v", resp.BatchItemFailures)
		}
	}
	recs := e.read(7, 3*time.Second)
	eq(t, "transitions", summary(recs, activations.KindAudienceEntered, activations.KindAudienceExited), []string{
		"audience_entered p1 recent_buyers", "audience_entered p2 pro_users"})
	// A new profile gets every computed trait, a count of 0 included (as a backfill gives it).
	eq(t, "computed", summary(recs, activations.KindTraitsChanged), []string{`traits_changed p1 {"orders_30d":2}`, `traits_changed p2 {"orders_30d":0}`})
	eq(t, "events", summary(recs, activations.KindEvent), []string{"event p1 evt-p1-1", "event p1 evt-p1-2", "event p2 evt-p2-1"})
	for _, r := range recs {
		if r.Kind == activations.KindAudienceEntered && r.ProfileID == "p1" && (r.UserID != "user-p1" || !r.OccurredAt.Equal(t0.Add(-time.Minute))) {
			t.Errorf("entered record %+v", r)
		}
	}

	ms, _, err := e.sv.Members(ctx, buyers.ID, 10, "")
	if err != nil || len(ms) != 1 || ms[0].ProfileID != "p1" {
		t.Fatalf("members %v %v", ms, err)
	}
	pv, err := e.sv.Profile(ctx, "p1")
	if err != nil || len(pv.Audiences) != 1 || string(pv.ComputedTraits[ct.Key]) != "2" {
		t.Fatalf("profile %+v %v", pv, err)
	}

	// Both purchases fall in t0's day bucket: they count until that day's end plus 30 days
	// (the window's precision is one bucket). A tick before the edge changes nothing.
	edge := t0.Truncate(day).Add(31 * day)
	e.clock.Add(edge.Sub(t0) - time.Nanosecond)
	if res, err := e.h.Tick(ctx); err != nil || res.Due != 0 {
		t.Fatalf("early tick %+v %v", res, err)
	}
	e.clock.Add(time.Nanosecond)
	if res, err := e.h.Tick(ctx); err != nil || res.Due != 1 {
		t.Fatalf("tick at the edge %+v %v", res, err)
	}
	for range 3 {
		if _, err := e.h.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	recs = e.read(10, 3*time.Second)
	eq(t, "after the window", summary(recs, activations.KindAudienceExited, activations.KindTraitsChanged), []string{
		"audience_exited p1 recent_buyers",
		`traits_changed p1 {"orders_30d":0}`, `traits_changed p1 {"orders_30d":2}`,
		`traits_changed p2 {"orders_30d":0}`})
	if size, _ := e.st.Size(ctx, buyers.ID); size != 0 {
		t.Fatalf("size after exit %d", size)
	}
	if res, _ := e.h.Tick(ctx); res.Due != 0 {
		t.Fatalf("schedule not cleared: %+v", res)
	}
}
