package identity_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/identity"
	"github.com/serverless-cdp/cdp/internal/idrules"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// dryHistory is a generated history of three kinds of people, in arrival order:
//   - "a" people (split by email limit 1): identify user a<i> with email x<i>; an anonymous
//     visitor an<i> with email y<i>; then an identify tying a<i> to an<i>, which merges the two
//     profiles under the default rules (two emails, limit 5);
//   - "b" people (one email shared by two user ids): identify b<i>-1 and b<i>-2 with the same
//     email e<i>; user_id limit 1 keeps them apart by default, limit 2 would merge them;
//   - "c" people: identify c<i> with email z<i>, then a track (no conflict under any rule here).
type dryHistory struct{ a, b, c int }

func dryMsg(n int, typ, user, anon, traitsEmail, ctxEmail string) tracking.Record {
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Second)
	m := tracking.Message{Type: typ, MessageID: fmt.Sprintf("m%06d", n), UserID: user, AnonymousID: anon, Timestamp: at, ReceivedAt: at}
	if typ == tracking.TypeTrack {
		m.Event = "Viewed"
	}
	if traitsEmail != "" {
		m.Traits = json.RawMessage(fmt.Sprintf(`{"email":%q}`, traitsEmail))
	}
	if ctxEmail != "" {
		m.Context = json.RawMessage(fmt.Sprintf(`{"traits":{"email":%q}}`, ctxEmail))
	}
	return tracking.Record{SourceID: "src", Message: m}
}

func (h dryHistory) records() []tracking.Record {
	var out []tracking.Record
	add := func(typ, user, anon, traitsEmail, ctxEmail string) {
		out = append(out, dryMsg(len(out), typ, user, anon, traitsEmail, ctxEmail))
	}
	for i := 0; i < max(h.a, h.b, h.c); i++ {
		if i < h.a {
			add(tracking.TypeIdentify, fmt.Sprintf("a%d", i), "", fmt.Sprintf("x%d@a.test", i), "")
			add(tracking.TypeTrack, "", fmt.Sprintf("an%d", i), "", fmt.Sprintf("y%d@a.test", i))
		}
		if i < h.b {
			add(tracking.TypeIdentify, fmt.Sprintf("b%d-1", i), "", fmt.Sprintf("e%d@b.test", i), "")
			add(tracking.TypeIdentify, fmt.Sprintf("b%d-2", i), "", fmt.Sprintf("e%d@b.test", i), "")
		}
		if i < h.c {
			add(tracking.TypeIdentify, fmt.Sprintf("c%d", i), "", fmt.Sprintf("z%d@c.test", i), "")
			add(tracking.TypeTrack, fmt.Sprintf("c%d", i), "", "", "")
		}
	}
	for i := 0; i < h.a; i++ { // the ties come later, so that both profiles exist by then
		add(tracking.TypeIdentify, fmt.Sprintf("a%d", i), fmt.Sprintf("an%d", i), "", "")
	}
	return out
}

func (h dryHistory) yield(recs []tracking.Record) identity.History {
	return func(yield func(tracking.Record) error) error {
		for _, r := range recs {
			if err := yield(r); err != nil {
				return err
			}
		}
		return nil
	}
}

func emailLimit(n int) idrules.Rules {
	r := idrules.DefaultRules()
	r.Types[1].Limit = n
	return r
}

func userIDLimit(n int) idrules.Rules {
	r := idrules.DefaultRules()
	r.Types[0].Limit = n
	return r
}

func runDry(t *testing.T, h dryHistory, cand idrules.Rules, opts identity.DryRunOptions) *identity.DryRunReport {
	t.Helper()
	rep, err := identity.DryRun(context.Background(), h.yield(h.records()), idrules.DefaultRules(), cand, opts)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestDryRunStricterRuleReportsExactSplits: email limit 1 splits exactly the "a" people, each
// into the user's profile and the visitor's, and names the rule and the identifier it dropped.
func TestDryRunStricterRuleReportsExactSplits(t *testing.T) {
	h := dryHistory{a: 7, b: 5, c: 20}
	rep := runDry(t, h, emailLimit(1), identity.DryRunOptions{MaxExamples: 100})
	if rep.Splits != h.a || rep.Merges != 0 || rep.Truncated || rep.Events != len(h.records()) {
		t.Fatalf("splits %d merges %d truncated %v events %d", rep.Splits, rep.Merges, rep.Truncated, rep.Events)
	}
	want := map[string]bool{}
	for i := 0; i < h.a; i++ {
		want[fmt.Sprintf("[[anonymous_id:an%d email:x%d@a.test email:y%d@a.test user_id:a%d]]", i, i, i, i)] = true
	}
	for _, ex := range rep.SplitExamples {
		cur := fmt.Sprint(ex.Current)
		if !want[cur] {
			t.Fatalf("unexpected split %s", cur)
		}
		delete(want, cur)
		i := strings.TrimPrefix(strings.Fields(cur)[0], "[[anonymous_id:an")
		wantCand := fmt.Sprintf("[[anonymous_id:an%[1]s email:y%[1]s@a.test] [email:x%[1]s@a.test user_id:a%[1]s]]", i)
		if got := fmt.Sprint(ex.Candidate); got != wantCand {
			t.Errorf("candidate grouping %s, want %s", got, wantCand)
		}
		if len(ex.Decisions) != 1 || ex.Decisions[0].Text != "candidate: limit email=1 dropped anonymous_id:an"+i || ex.Decisions[0].Rules != "candidate" {
			t.Errorf("decisions %+v", ex.Decisions)
		}
	}
	if len(want) != 0 {
		t.Fatalf("splits not reported: %v", want)
	}
	if rep.Current.Profiles != h.a+2*h.b+h.c || rep.Candidate.Profiles != 2*h.a+2*h.b+h.c {
		t.Fatalf("profiles %+v %+v", rep.Current, rep.Candidate)
	}
}

// TestDryRunLooserRuleReportsMerges: user_id limit 2 merges each pair of user ids sharing an
// email, and the decision it undoes is the current rules' drop of that email.
func TestDryRunLooserRuleReportsMerges(t *testing.T) {
	h := dryHistory{a: 3, b: 4, c: 10}
	rep := runDry(t, h, userIDLimit(2), identity.DryRunOptions{MaxExamples: 2})
	if rep.Merges != h.b || rep.Splits != 0 || len(rep.MergeExamples) != 2 {
		t.Fatalf("merges %d splits %d examples %d", rep.Merges, rep.Splits, len(rep.MergeExamples))
	}
	ex := rep.MergeExamples[0]
	if got := fmt.Sprint(ex.Current, ex.Candidate); got != "[[email:e0@b.test user_id:b0-1] [user_id:b0-2]] [[email:e0@b.test user_id:b0-1 user_id:b0-2]]" {
		t.Fatalf("example %s", got)
	}
	if len(ex.Decisions) != 1 || ex.Decisions[0].Text != "current: limit user_id=1 dropped email:e0@b.test" {
		t.Fatalf("decisions %+v", ex.Decisions)
	}
}

// TestDryRunSameRulesNoDifference: the same rules (spelled differently) find nothing, although
// profile ids differ between the two runs.
func TestDryRunSameRulesNoDifference(t *testing.T) {
	h := dryHistory{a: 5, b: 5, c: 5}
	rep := runDry(t, h, emailLimit(5), identity.DryRunOptions{})
	if rep.Splits != 0 || rep.Merges != 0 || rep.Detached != 0 || rep.Attached != 0 || rep.Current != rep.Candidate {
		t.Fatalf("%+v", rep)
	}
	if rep.SplitExamples == nil || rep.MergeExamples == nil {
		t.Fatal("examples must be empty lists, not null")
	}
}

// TestDryRunRedeliveredHistory: a history that holds each record twice gives the same answer
// (dedupe), and counts the duplicates.
func TestDryRunRedeliveredHistory(t *testing.T) {
	h := dryHistory{a: 3, b: 2, c: 2}
	recs := h.records()
	twice := append(slices.Clone(recs), recs...)
	rep, err := identity.DryRun(context.Background(), h.yield(twice), idrules.DefaultRules(), emailLimit(1), identity.DryRunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Splits != h.a || rep.Duplicates != len(recs) || rep.Events != 2*len(recs) {
		t.Fatalf("%+v", rep)
	}
}

// TestDryRunEventBudget: the run stops reading at MaxEvents, compares what it read and says so.
func TestDryRunEventBudget(t *testing.T) {
	h := dryHistory{a: 10}
	read := 0
	hist := func(yield func(tracking.Record) error) error {
		for _, r := range h.records() {
			read++
			if err := yield(r); err != nil {
				return fmt.Errorf("wrapped by the reader: %w", err)
			}
		}
		return nil
	}
	rep, err := identity.DryRun(context.Background(), hist, idrules.DefaultRules(), emailLimit(1), identity.DryRunOptions{MaxEvents: 20})
	if err != nil {
		t.Fatal(err)
	}
	// 20 records: the first 10 people's identify and visit; no tie yet, so no split.
	if !rep.Truncated || rep.TruncatedBy != "events" || rep.Events != 20 || read != 21 || rep.Splits != 0 || rep.Current.Profiles != 20 {
		t.Fatalf("read %d: %+v", read, rep)
	}
	// Exactly the budget: not truncated.
	rep = runDry(t, h, emailLimit(1), identity.DryRunOptions{MaxEvents: len(h.records())})
	if rep.Truncated || rep.Splits != h.a {
		t.Fatalf("%+v", rep)
	}
}

// stepClock advances by step at every reading.
type stepClock struct {
	mu   sync.Mutex
	now  time.Time
	step time.Duration
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(c.step)
	return c.now
}

// TestDryRunTimeBudget: reading stops once less than the reserve remains before the deadline
// (by the injected clock), and what was read is still compared.
func TestDryRunTimeBudget(t *testing.T) {
	h := dryHistory{a: 50}
	start := time.Now()
	ctx, cancel := context.WithDeadline(context.Background(), start.Add(time.Hour))
	defer cancel()
	clock := &stepClock{now: start, step: 20 * time.Millisecond} // 50 readings before the reserve
	rep, err := identity.DryRun(ctx, h.yield(h.records()), idrules.DefaultRules(), emailLimit(1),
		identity.DryRunOptions{Reserve: time.Hour - time.Second, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Truncated || rep.TruncatedBy != "time" || rep.Events == 0 || rep.Events >= len(h.records()) {
		t.Fatalf("%+v", rep)
	}
	if rep.Current.Profiles == 0 {
		t.Fatal("what was read was not compared")
	}
	// A deadline already inside the reserve: nothing is read.
	ctx2, cancel2 := context.WithTimeout(context.Background(), time.Second)
	defer cancel2()
	rep, err = identity.DryRun(ctx2, h.yield(h.records()), idrules.DefaultRules(), emailLimit(1), identity.DryRunOptions{Reserve: time.Minute})
	if err != nil || rep.Events != 0 || !rep.Truncated {
		t.Fatalf("%v %+v", err, rep)
	}
}

type suppressEmail string

func (s suppressEmail) Suppressed(_ context.Context, ids []string) (bool, error) {
	return slices.Contains(ids, "email:"+string(s)), nil
}

type brokenList struct{}

func (brokenList) Suppressed(context.Context, []string) (bool, error) {
	return false, errors.New("list unavailable")
}

// TestDryRunLeavesOutSuppressedPeople: the records of a suppressed identifier are not replayed
// (so it appears nowhere in the report); an unreadable list fails the run.
func TestDryRunLeavesOutSuppressedPeople(t *testing.T) {
	h := dryHistory{a: 3}
	rep := runDry(t, h, emailLimit(1), identity.DryRunOptions{Suppressions: suppressEmail("x0@a.test")})
	out, _ := json.Marshal(rep)
	if rep.Suppressed != 1 || strings.Contains(string(out), "x0@a.test") || rep.Splits != h.a-1 {
		t.Fatalf("%s", out)
	}
	_, err := identity.DryRun(context.Background(), h.yield(h.records()), idrules.DefaultRules(), emailLimit(1), identity.DryRunOptions{Suppressions: brokenList{}})
	if err == nil || !strings.Contains(err.Error(), "suppression list") {
		t.Fatalf("got %v", err)
	}
}

// TestDryRunInvalidRules: an invalid candidate is a validation error naming the field.
func TestDryRunInvalidRules(t *testing.T) {
	bad := idrules.Rules{Types: []idrules.TypeRule{{Type: "email", Limit: 1000}}}
	_, err := identity.DryRun(context.Background(), dryHistory{}.yield(nil), idrules.DefaultRules(), bad, identity.DryRunOptions{})
	var ve *idrules.ValidationError
	if !errors.As(err, &ve) || ve.Field != "types[0].limit" {
		t.Fatalf("got %v", err)
	}
}

// TestDryRunDeterministic: two runs of the same history give the same report (examples are
// ordered by identifiers, not by random profile ids).
func TestDryRunDeterministic(t *testing.T) {
	h := dryHistory{a: 6, b: 6, c: 3}
	a := runDry(t, h, emailLimit(1), identity.DryRunOptions{MaxExamples: 3})
	b := runDry(t, h, emailLimit(1), identity.DryRunOptions{MaxExamples: 3})
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("%+v\n%+v", a, b)
	}
	firsts := make([]string, len(a.SplitExamples))
	for i, ex := range a.SplitExamples {
		firsts[i] = ex.Current[0][0]
	}
	if !sort.StringsAreSorted(firsts) {
		t.Fatalf("examples not ordered: %v", firsts)
	}
}
