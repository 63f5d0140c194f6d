package replay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/activations"
	"github.com/serverless-cdp/cdp/internal/destination"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// twoDays archives two sources over two days: day 1 holds m1–m5 and m7–m8 (m5 archived under
// day 2's first hour, since it arrived a second before midnight), day 2 holds m6 and m9, and
// one bad line.
func twoDays(t *testing.T) *archiveFixture {
	a := newArchive(t)
	h := func(d time.Time, hh int) time.Time { return d.Add(time.Duration(hh) * time.Hour) }
	a.put("src_web", h(day1, 9), "a", msg("m1", "u1", "Order Completed", h(day1, 9)), msg("m2", "u2", "Viewed", h(day1, 9)),
		msg("m3", "u1", "Viewed", h(day1, 9).Add(time.Minute)))
	a.put("src_web", h(day1, 23), "b", msg("m4", "u3", "Order Completed", h(day1, 23)), `{"not":"a record"`)
	a.put("src_web", day2, "c", msg("m5", "u1", "Order Completed", day2.Add(-time.Second)), msg("m6", "u2", "Viewed", day2.Add(time.Minute)))
	a.put("src_pos", h(day1, 12), "d", msg("m7", "u4", "Order Completed", h(day1, 12)), msg("m8", "u5", "Order Completed", h(day1, 12)))
	a.put("src_pos", h(day2, 12), "e", msg("m9", "u4", "Order Completed", h(day2, 12)))
	return a
}

type env struct {
	t     testing.TB
	jobs  *MemStore
	clock *clock
	pipe  *publisher
	acts  *publisher
	bl    *fakeBlocklist
	profs *profiles
	a     *archiveFixture
	opts  Options
}

func newEnv(t testing.TB, a *archiveFixture) *env {
	c := &clock{t: time.Now().UTC()}
	e := &env{t: t, jobs: NewMemStore(), clock: c, pipe: &publisher{now: c.peek}, acts: &publisher{now: c.peek},
		bl: &fakeBlocklist{suppressed: map[string]bool{}, erased: map[string]bool{}}, profs: &profiles{of: map[string]string{}}, a: a}
	e.opts = Options{Jobs: e.jobs, Archive: a.store, Pipeline: e.pipe, Activations: e.acts, Blocklist: e.bl, Profiles: e.profs,
		Identifiers: identifiers, Now: c.now}
	return e
}

func (e *env) runner() *Runner { return NewRunner(e.opts) }

func (e *env) submit(in Input) Job {
	e.t.Helper()
	j, err := NewJob(in, e.clock.now())
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.jobs.Create(context.Background(), j); err != nil {
		e.t.Fatal(err)
	}
	return j
}

func day1Pipeline() Input {
	return Input{From: day1, To: day2, Target: Target{Type: TargetPipeline}}
}

func TestPipelineReplaysTheDaysExactBytesOnce(t *testing.T) {
	a := twoDays(t)
	e := newEnv(t, a)
	j := e.submit(day1Pipeline())
	got, err := e.runner().RunOne(context.Background(), j.ID)
	if err != nil || got.Status != StatusCompleted {
		t.Fatalf("run: %+v %v", got, err)
	}
	sent := e.pipe.sent()
	if ids := messageIDs(t, sent); !slices.Equal(ids, []string{"m7", "m8", "m1", "m2", "m3", "m4", "m5"}) {
		t.Fatalf("sent %v, want day 1's messages in key order (src_pos first)", ids)
	}
	for _, r := range sent {
		// The archived bytes, marked as this job's replay (so the archive files them apart).
		i := slices.IndexFunc(a.lines, func(l line) bool { return bytes.Equal(markReplay(l.data, j.ID), r.Data) })
		if i < 0 {
			t.Fatalf("sent %s: not an archived line marked with the job", r.Data)
		}
		var rec tracking.Record
		if err := json.Unmarshal(r.Data, &rec); err != nil || rec.Replay != j.ID || rec.Message.MessageID != a.lines[i].rec.Message.MessageID {
			t.Fatalf("sent %s: %+v %v", r.Data, rec, err)
		}
		if r.PartitionKey != a.lines[i].rec.Message.PartitionKey() {
			t.Errorf("partition key %q for %s", r.PartitionKey, a.lines[i].rec.Message.MessageID)
		}
	}
	c := got.Counts
	if c.Read != 9 || c.Matched != 7 || c.Sent != 7 || c.Skipped[SkipFiltered] != 1 || c.Skipped[SkipBadLine] != 1 ||
		len(got.BadLines) != 1 || got.BadLines[0] != "source=src_web/dt=2026-03-01/hour=23/b.json.gz#2" {
		t.Fatalf("counts %s, bad lines %v", countsString(c), got.BadLines)
	}
	if p := got.Progress; p.ObjectsDone != 4 || p.SourceHours != 2*25 || p.SourceHoursDone != p.SourceHours {
		t.Fatalf("progress %+v", p)
	}
	// The same job again sends nothing new.
	for range 2 {
		if again, err := e.runner().RunOne(context.Background(), j.ID); err != nil || again.Counts.Sent != 7 {
			t.Fatalf("again: %+v %v", again, err)
		}
		if err := e.runner().Run(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(e.pipe.sent()); n != 7 {
		t.Fatalf("a finished job sent again: %d records", n)
	}
}

func TestFiltersAndEverySkipReasonCounted(t *testing.T) {
	a := newArchive(t)
	at := day1.Add(10 * time.Hour)
	page := msg("m8", "u1", "", at)
	page.Type, page.Name = tracking.TypePage, "Order Completed"
	a.put("s", at, "x",
		msg("m1", "u1", "Order Completed", at),                    // sent
		msg("m2", "u2", "Order Completed", at),                    // suppressed
		msg("m3", "u3", "Order Completed", at),                    // erased profile
		msg("m4", "u4", "Order Completed", at),                    // unresolved
		msg("m5", "u1", "Viewed", at),                             // filtered: event name
		"not json",                                                // bad line
		msg("m7", "u1", "Order Completed", at.Add(-11*time.Hour)), // filtered: received before From
		page, // filtered: the destination subscribes to tracks only
	)
	e := newEnv(t, a)
	e.bl.suppressed["user_id:u2"] = true
	e.bl.erased["prof_3"] = true
	e.profs.of = map[string]string{"user_id:u1": "prof_1", "user_id:u2": "prof_2", "user_id:u3": "prof_3"}
	e.opts.Destinations = dests{"dst_1": {ID: "dst_1", Enabled: true, Subscriptions: destination.Subscriptions{
		Events: []destination.EventFilter{{Type: "track"}}}}}
	j := e.submit(Input{From: day1, To: day2, Events: []string{"Order Completed"}, Target: Target{Type: TargetDestination, DestinationID: "dst_1"}})
	got, err := e.runner().RunOne(context.Background(), j.ID)
	if err != nil || got.Status != StatusCompleted {
		t.Fatalf("run: %+v %v", got, err)
	}
	want := map[string]int64{SkipSuppressed: 1, SkipErasedProfile: 1, SkipUnresolved: 1, SkipFiltered: 3, SkipBadLine: 1}
	if c := got.Counts; c.Read != 8 || c.Matched != 4 || c.Sent != 1 || len(c.Skipped) != len(want) {
		t.Fatalf("counts %s", countsString(c))
	}
	for r, n := range want {
		if got.Counts.Skipped[r] != n {
			t.Errorf("skipped %s: %d, want %d", r, got.Counts.Skipped[r], n)
		}
	}
	sent := e.acts.sent()
	var rec activations.Record
	if len(sent) != 1 || json.Unmarshal(sent[0].Data, &rec) != nil {
		t.Fatalf("sent %v", sent)
	}
	if rec.ID != RecordID("prof_1", "s", "m1") || rec.Kind != activations.KindEvent || rec.ProfileID != "prof_1" || rec.DestinationID != "dst_1" ||
		rec.Event == nil || rec.Event.MessageID != "m1" || sent[0].PartitionKey != "prof_1" || rec.UserID != "u1" {
		t.Fatalf("activation record %+v key %s", rec, sent[0].PartitionKey)
	}
	if !hasAnyPrefix(rec.ID, activations.ProfilePrefixes("prof_1")) {
		t.Fatalf("record id %s: privacy would not find it by profile", rec.ID)
	}
	if len(e.pipe.sent()) != 0 {
		t.Fatal("a destination job wrote to the events stream")
	}
}

func TestIdentifiersFilterAndSuppressionOnThePipeline(t *testing.T) {
	e := newEnv(t, twoDays(t))
	e.bl.suppressed["user_id:u4"] = true
	in := day1Pipeline()
	in.Identifiers = []string{"user_id:u1", "user_id:u4"}
	got, err := e.runner().RunOne(context.Background(), e.submit(in).ID)
	if ids := messageIDs(t, e.pipe.sent()); err != nil || !slices.Equal(ids, []string{"m1", "m3", "m5"}) {
		t.Fatalf("sent %v (%v)", ids, err)
	}
	if c := got.Counts; c.Matched != 4 || c.Skipped[SkipSuppressed] != 1 || c.Skipped[SkipFiltered] != 4 || c.Sent != 3 {
		t.Fatalf("counts %s", countsString(c))
	}
	if stored, _ := e.jobs.Get(context.Background(), got.ID); len(stored.Identifiers) != 2 || slices.Contains(stored.Identifiers, "user_id:u1") {
		t.Fatalf("a finished job keeps identifiers %v", stored.Identifiers)
	}
}

func hasAnyPrefix(s string, prefixes []string) bool {
	return slices.ContainsFunc(prefixes, func(p string) bool { return len(s) > len(p) && s[:len(p)] == p })
}

// dests is a fake Destinations.
type dests map[string]destination.Destination

func (d dests) Get(_ context.Context, id string) (destination.Destination, error) {
	if x, ok := d[id]; ok {
		return x, nil
	}
	return destination.Destination{}, destination.ErrNotFound
}

// TestResumesAfterACrashAtEveryPersistedStep: a runner dies after each of the job's saves in
// turn; another finishes the job once the dead one's lease ends. The counts are those of a
// run without a crash, every record is sent, and what a saved step sent is never sent again.
func TestResumesAfterACrashAtEveryPersistedStep(t *testing.T) {
	clean := newEnv(t, twoDays(t))
	cs := &crashingStore{JobStore: clean.jobs, after: 1 << 30}
	clean.opts.Jobs = cs
	want, err := clean.runner().RunOne(context.Background(), clean.submit(day1Pipeline()).ID)
	if err != nil || want.Status != StatusCompleted {
		t.Fatal(want, err)
	}
	if cs.updates != 7 { // lease, one save per object and one to complete, release
		t.Fatalf("a clean run saved %d times, want 7", cs.updates)
	}
	order := []string{"d", "a", "b", "c"} // objects in key order, as sent
	for k := 0; k < cs.updates; k++ {
		e := newEnv(t, twoDays(t))
		j := e.submit(day1Pipeline())
		e.opts.Jobs = &crashingStore{JobStore: e.jobs, after: k}
		_, _ = e.runner().RunOne(context.Background(), j.ID)
		atCrash, _ := e.jobs.Get(context.Background(), j.ID)
		before := len(e.pipe.sent())
		e.opts.Jobs = e.jobs
		e.clock.advance(MaxLease)
		got, err := e.runner().RunOne(context.Background(), j.ID)
		if err != nil || got.Status != StatusCompleted || countsString(got.Counts) != countsString(want.Counts) {
			t.Fatalf("crash after %d saves: %s %v, want %s", k, countsString(got.Counts), err, countsString(want.Counts))
		}
		ids := messageIDs(t, e.pipe.sent())
		for _, id := range messageIDs(t, clean.pipe.sent()) {
			if !slices.Contains(ids, id) {
				t.Fatalf("crash after %d saves: %s never sent", k, id)
			}
		}
		saved := order[:atCrash.Progress.ObjectsDone]
		for _, id := range ids[before:] {
			l := e.a.lines[slices.IndexFunc(e.a.lines, func(l line) bool { return l.rec.Message.MessageID == id })]
			if slices.ContainsFunc(saved, func(name string) bool { return bytes.HasSuffix([]byte(l.key), []byte("/"+name+".json.gz")) }) {
				t.Fatalf("crash after %d saves: %s sent again though its object was saved done", k, id)
			}
		}
	}
}

// TestBudgetRespectedAndResumedExactly: work that takes time stops before the deadline less
// the reserve (nothing is sent after it), saves where it is inside an object, and later runs
// go on from there: in the end every record is sent exactly once.
func TestBudgetRespectedAndResumedExactly(t *testing.T) {
	a := newArchive(t)
	var all []string
	for h := range 12 {
		at := day1.Add(time.Duration(h) * time.Hour)
		var ms []any
		for i := range 5 {
			id := "m" + at.Format("15") + "-" + string(rune('a'+i))
			all = append(all, id)
			ms = append(ms, msg(id, "u1", "Viewed", at))
		}
		a.put("s", at, "o", ms...)
	}
	e := newEnv(t, a)
	e.clock.step = 100 * time.Millisecond // every reading of the clock: work takes time
	e.opts.Batch, e.opts.Reserve = 2, time.Second
	j := e.submit(day1Pipeline())
	runs := 0
	for ; runs < 100; runs++ {
		stop := e.clock.now().Add(4 * time.Second)
		ctx, cancel := context.WithDeadline(context.Background(), stop) // the fake clock runs ahead of the real one
		got, err := e.runner().RunOne(ctx, j.ID)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		for _, at := range e.pipe.at {
			if at.After(stop.Add(-e.opts.Reserve)) {
				t.Fatalf("run %d sent at %v, after the stop %v", runs, at, stop.Add(-e.opts.Reserve))
			}
		}
		e.pipe.at = nil
		if got.Status == StatusCompleted {
			break
		}
	}
	if ids := messageIDs(t, e.pipe.sent()); runs < 3 || !slices.Equal(ids, all) {
		t.Fatalf("after %d runs sent %d of %d: %v", runs+1, len(ids), len(all), ids)
	}
}

// TestLeasedJobIsLeftAlone: while another runner holds the job's lease, a run does nothing;
// once it expires the run goes on.
func TestLeasedJobIsLeftAlone(t *testing.T) {
	e := newEnv(t, twoDays(t))
	j := e.submit(day1Pipeline())
	_ = e.jobs.Update(context.Background(), j.ID, func(c *Job) error {
		c.LeaseOwner, c.LeaseUntil = "other", e.clock.peek().Add(time.Minute)
		return nil
	})
	if got, err := e.runner().RunOne(context.Background(), j.ID); err != nil || got.Status != StatusPending || len(e.pipe.sent()) != 0 {
		t.Fatalf("leased job ran: %+v %v", got, err)
	}
	if err := e.runner().Run(context.Background()); err != nil || len(e.pipe.sent()) != 0 {
		t.Fatalf("leased job ran on schedule: %v", err)
	}
	e.clock.advance(time.Minute)
	_, err := e.runner().RunOne(context.Background(), j.ID)
	if got, _ := e.jobs.Get(context.Background(), j.ID); err != nil || got.Status != StatusCompleted || got.LeaseOwner != "" {
		t.Fatalf("after the lease (released): %+v %v", got, err)
	}
}

// TestFailedSendsAreRetriedThenFailTheJob: a send that fails is an attempt recorded with its
// error (counting nothing of the failed batch); the next run retries; MaxAttempts failures
// fail the job.
func TestFailedSendsAreRetriedThenFailTheJob(t *testing.T) {
	e := newEnv(t, twoDays(t))
	fails := 2
	e.pipe.fail = func(int) error {
		if fails > 0 {
			fails--
			return errors.New("throttled")
		}
		return nil
	}
	j := e.submit(day1Pipeline())
	got, err := e.runner().RunOne(context.Background(), j.ID)
	if err == nil || got.Attempts != 1 || got.Status != StatusRunning || got.Counts.Sent != 0 || !strings.Contains(got.Error, "throttled") {
		t.Fatalf("first run: %+v %v", got, err)
	}
	_, _ = e.runner().RunOne(context.Background(), j.ID)
	got, err = e.runner().RunOne(context.Background(), j.ID)
	if err != nil || got.Status != StatusCompleted || got.Counts.Sent != 7 || got.Error != "" || len(e.pipe.sent()) != 7 {
		t.Fatalf("after recovery: %+v %v", got, err)
	}

	e.pipe.fail = func(int) error { return errors.New("stream gone") }
	j = e.submit(day1Pipeline())
	for range DefaultMaxAttempts {
		got, _ = e.runner().RunOne(context.Background(), j.ID)
	}
	if got.Status != StatusFailed || got.CompletedAt.IsZero() || !strings.Contains(got.Error, "stream gone") {
		t.Fatalf("after %d failures: %+v", DefaultMaxAttempts, got)
	}
}

func TestMarkReplayKeepsTheRecord(t *testing.T) {
	for _, in := range []string{`{"sourceId":"s","message":{"messageId":"m"}}`, `{}`, ` {"a":1} `} {
		out := markReplay([]byte(in), "rp_1")
		var m map[string]any
		if err := json.Unmarshal(out, &m); err != nil || m["replay"] != "rp_1" {
			t.Fatalf("%s → %s: %v %v", in, out, m, err)
		}
		var orig map[string]any
		json.Unmarshal([]byte(in), &orig)
		for k, v := range orig {
			if fmt.Sprint(m[k]) != fmt.Sprint(v) {
				t.Fatalf("%s → %s changed %s", in, out, k)
			}
		}
	}
}
