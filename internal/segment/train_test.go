package segment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/activations"
	"github.com/serverless-cdp/cdp/internal/predict"
	"github.com/serverless-cdp/cdp/internal/segmentdef"
)

// trainEnv is an env with a predictive trait and an audience of its top 20 %.
func trainEnv(t *testing.T, kind string, customers int) (*env, *TraitView, *AudienceView) {
	t.Helper()
	e := newEnv(t)
	e.h.opt.ChunkProfiles = 40
	ctx := context.Background()
	tv, err := e.sv.SaveTrait(ctx, ComputedTrait{Name: "Will churn", Key: "churn", Kind: kind})
	if err != nil {
		t.Fatal(err)
	}
	av, err := e.sv.SaveAudience(ctx, *aud(t, "", "Top churn", `{"computedTrait":{"key":"churn.percentile","op":"gte","value":80}}`))
	if err != nil {
		t.Fatal(err)
	}
	must(t, e.h.RunBackfills(ctx))
	cfg := predict.SimConfig{Seed: 42, Customers: customers, HistoryDays: 150}
	e.clock.Add(cfg.Now().Add(6 * time.Hour).Sub(e.clock.Now()))
	e.sendAll(t, simRecords(t, predict.Simulate(cfg)), 50)
	return e, tv, av
}

// tickUntil runs Ticks until the trait's run has finished and no backfill is computing.
func tickUntil(t *testing.T, e *env, traitID string, most int) *Training {
	t.Helper()
	ctx := context.Background()
	for range most {
		_, err := e.h.Tick(ctx)
		must(t, err)
		defs, err := e.st.LoadDefinitions(ctx)
		must(t, err)
		run, j := defs.Trainings[traitID], defs.Jobs[traitID]
		if run != nil && !run.active() && (j == nil || j.Status != StatusComputing) {
			return run
		}
	}
	t.Fatalf("training of %s did not finish in %d ticks", traitID, most)
	return nil
}

// TestTrainPublishesAndRescores: a run asked for through the service collects every profile's
// features in chunks, fits, publishes, and the backfill it starts gives every profile a score
// and percentile; the top-20 % audience gets about a fifth of them and sends Audience Entered.
func TestTrainPublishesAndRescores(t *testing.T) {
	e, tv, av := trainEnv(t, KindChurnLikelihood, 600)
	ctx := context.Background()
	p, _ := e.sv.Profile(ctx, "c0001")
	if _, has := p.ComputedTraits["churn"]; has {
		t.Fatalf("a value before any model: %s", p.ComputedTraits["churn"])
	}
	run, err := e.sv.Train(ctx, tv.ID)
	if err != nil || run.Status != TrainQueued || run.Trigger != "api" {
		t.Fatalf("train: %+v %v", run, err)
	}
	again, err := e.sv.Train(ctx, tv.ID)
	if err != nil || again.RunID != run.RunID {
		t.Fatalf("asking twice started another run: %+v %v", again, err)
	}
	done := tickUntil(t, e, tv.ID, 20)
	if done.Status != TrainPublished || done.RunID != run.RunID || done.Profiles != 600 || done.Chunks < 2 ||
		done.ReadUnits <= 0 || done.WriteUnits <= 0 || done.FinishedAt.IsZero() {
		t.Fatalf("run: %+v", done)
	}
	q, err := e.sv.Quality(ctx, tv.ID)
	if err != nil || q.Quality == nil || q.Quality.Profiles == 0 || q.Training.RunID != run.RunID || len(q.Params) == 0 ||
		!q.NextRunAt.Equal(done.FinishedAt.Add(DefaultRetrainEvery)) {
		t.Fatalf("quality: %+v %v", q, err)
	}
	scored := 0
	for i := range 600 {
		p, err := e.sv.Profile(ctx, fmt.Sprintf("c%04d", i))
		must(t, err)
		var v ScoreValue
		if raw := p.ComputedTraits["churn"]; raw == nil || json.Unmarshal(raw, &v) != nil || v.Score < 0 || v.Score > 1 || v.Percentile < 0 || v.Percentile > 100 {
			t.Fatalf("profile %d: %s", i, raw)
		}
		scored++
	}
	size, err := e.st.Size(ctx, av.ID)
	must(t, err)
	rescoredOnEvent(t, e, av.ID)
	if share := float64(size) / float64(scored); math.Abs(share-0.2) > 0.05 {
		t.Fatalf("top-20 %% audience has %d of %d profiles", size, scored)
	}
	entered := 0
	for _, r := range e.read(size, 10*time.Second) {
		if r.Kind == activations.KindAudienceEntered && r.Audience.ID == av.ID {
			entered++
		}
	}
	if entered != size {
		t.Fatalf("%d Audience Entered records for %d members", entered, size)
	}
}

// TestTrainRefusedKeepsNoModel: with too few profiles the run is refused with the reason,
// no model is published and profiles get no value.
func TestTrainRefusedKeepsNoModel(t *testing.T) {
	e, tv, _ := trainEnv(t, KindPurchaseLikelihood, 60)
	ctx := context.Background()
	_, err := e.sv.Train(ctx, tv.ID)
	must(t, err)
	done := tickUntil(t, e, tv.ID, 10)
	if done.Status != TrainRefused || !strings.Contains(done.Reason, "not enough data") {
		t.Fatalf("run: %+v", done)
	}
	q, err := e.sv.Quality(ctx, tv.ID)
	if err != nil || q.Quality != nil || q.Training.Status != TrainRefused {
		t.Fatalf("quality: %+v %v", q, err)
	}
	p, _ := e.sv.Profile(ctx, "c0001")
	if v, has := p.ComputedTraits["churn"]; has {
		t.Fatalf("a value without a model: %s", v)
	}
}

// failingStates fails LoadStates from its after-th call on while fail is set.
type failingStates struct {
	Stores
	calls, after atomic.Int64
	fail         atomic.Bool
}

func (f *failingStates) LoadStates(ctx context.Context, ids []string) ([]*State, Units, error) {
	if f.fail.Load() && f.calls.Add(1) > f.after.Load() {
		return nil, Units{}, errors.New("injected failure")
	}
	return f.Stores.LoadStates(ctx, ids)
}

// TestTrainResumesAfterStop: a collect stopped by an error keeps the chunks it stored and its
// cursor; the next Tick resumes there and the run ends with every profile counted once.
func TestTrainResumesAfterStop(t *testing.T) {
	e, tv, _ := trainEnv(t, KindChurnLikelihood, 600)
	ctx := context.Background()
	fs := &failingStates{Stores: e.st}
	fs.after.Store(6)
	fs.fail.Store(true)
	e.h.train = fs
	_, err := e.sv.Train(ctx, tv.ID)
	must(t, err)
	if _, err := e.h.Tick(ctx); err == nil || !strings.Contains(err.Error(), "injected failure") {
		t.Fatalf("tick: %v", err)
	}
	defs, err := e.st.LoadDefinitions(ctx)
	must(t, err)
	mid := defs.Trainings[tv.ID]
	if mid.Status != TrainCollecting || mid.Chunks == 0 || mid.Profiles == 0 || mid.Profiles >= 600 {
		t.Fatalf("after the stop: %+v", mid)
	}
	fs.fail.Store(false)
	done := tickUntil(t, e, tv.ID, 10)
	if done.Status != TrainPublished || done.Profiles != 600 || done.RunID != mid.RunID {
		t.Fatalf("resumed run: %+v", done)
	}
}

// TestScheduleRetrainsWeeklyAndSupersedes: the schedule trains a never-trained trait, not again
// within the week, again after it; an edit supersedes a queued run; a delete removes the model
// and the run.
func TestScheduleRetrainsWeeklyAndSupersedes(t *testing.T) {
	e, tv, av := trainEnv(t, KindChurnLikelihood, 600)
	ctx := context.Background()
	first := tickUntil(t, e, tv.ID, 20)
	if first.Status != TrainPublished || first.Trigger != "schedule" {
		t.Fatalf("first scheduled run: %+v", first)
	}
	e.clock.Add(6 * 24 * time.Hour)
	_, err := e.h.Tick(ctx)
	must(t, err)
	defs, _ := e.st.LoadDefinitions(ctx)
	if defs.Trainings[tv.ID].RunID != first.RunID {
		t.Fatalf("retrained within the week: %+v", defs.Trainings[tv.ID])
	}
	e.clock.Add(2 * 24 * time.Hour)
	second := tickUntil(t, e, tv.ID, 20)
	if second.RunID == first.RunID || second.Status != TrainPublished || second.Trigger != "schedule" {
		t.Fatalf("weekly run: %+v", second)
	}
	queued, err := e.sv.Train(ctx, tv.ID)
	must(t, err)
	edited := *tv.ComputedTrait
	edited.Prediction = &segmentdef.Prediction{HorizonDays: 20}
	if _, err := e.sv.SaveTrait(ctx, edited); err != nil {
		t.Fatal(err)
	}
	third := tickUntil(t, e, tv.ID, 20)
	if third.RunID == queued.RunID || third.TraitVersion != 2 || third.Trigger != "api" {
		t.Fatalf("the edit did not supersede the queued run: %+v (queued %+v)", third, queued)
	}
	must(t, e.sv.DeleteAudience(ctx, av.ID))
	must(t, e.sv.DeleteTrait(ctx, tv.ID))
	defs, _ = e.st.LoadDefinitions(ctx)
	if defs.Models[tv.ID] != nil || defs.Trainings[tv.ID] != nil {
		t.Fatalf("model or run left after delete: %v %v", defs.Models[tv.ID], defs.Trainings[tv.ID])
	}
	if _, err := e.sv.Quality(ctx, tv.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("quality of a deleted trait: %v", err)
	}
}

// TestTrainServiceErrors: unknown traits are not found; other kinds are refused.
func TestTrainServiceErrors(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.sv.Train(ctx, "ct_missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
	tv, err := e.sv.SaveTrait(ctx, ComputedTrait{Name: "Orders", Kind: KindCount, Event: EventFilter{Name: "Order Completed"}})
	must(t, err)
	var ve *ValidationError
	if _, err := e.sv.Train(ctx, tv.ID); !errors.As(err, &ve) {
		t.Fatalf("count trait: %v", err)
	}
	if _, err := e.sv.Quality(ctx, tv.ID); !errors.As(err, &ve) {
		t.Fatalf("count trait quality: %v", err)
	}
}

// rescoredOnEvent: a member of the top-churn audience who becomes active again (a product
// view now) gets a lower churn score at once.
func rescoredOnEvent(t *testing.T, e *env, audID string) {
	t.Helper()
	ctx := context.Background()
	ms, _, err := e.st.Members(ctx, audID, 1, "")
	must(t, err)
	if len(ms) == 0 {
		t.Fatal("no member")
	}
	pid := ms[0].ProfileID
	score := func() ScoreValue {
		p, err := e.sv.Profile(ctx, pid)
		must(t, err)
		var v ScoreValue
		must(t, json.Unmarshal(p.ComputedTraits["churn"], &v))
		return v
	}
	before := score()
	e.send(t, chg(pid, 2, "", track(pid+"-back", "Product Viewed", e.clock.Now(), `{"product_id":"c00p000"}`)))
	if after := score(); after.Score >= before.Score {
		t.Fatalf("churn score of %s after new activity: %+v, before %+v", pid, after, before)
	}
}

// TestRescoresDailyWithoutEvents: between retrains the schedule re-scores every profile once a
// day (RescoreEvery), so a profile with no new event drifts toward churn; not before the day
// is over.
func TestRescoresDailyWithoutEvents(t *testing.T) {
	e, tv, _ := trainEnv(t, KindChurnLikelihood, 600)
	ctx := context.Background()
	if run := tickUntil(t, e, tv.ID, 20); run.Status != TrainPublished {
		t.Fatalf("run: %+v", run)
	}
	score := func() (float64, time.Time) {
		p, err := e.sv.Profile(ctx, "c0001")
		must(t, err)
		var v ScoreValue
		if err := json.Unmarshal(p.ComputedTraits["churn"], &v); err != nil {
			t.Fatalf("churn value %s: %v", p.ComputedTraits["churn"], err)
		}
		defs, err := e.st.LoadDefinitions(ctx)
		must(t, err)
		return v.Score, defs.Jobs[tv.ID].StartedAt
	}
	before, started := score()
	e.clock.Add(23 * time.Hour)
	tickUntil(t, e, tv.ID, 5)
	if s, st := score(); s != before || !st.Equal(started) {
		t.Fatalf("re-scored within the day: %v → %v, job started %v → %v", before, s, started, st)
	}
	e.clock.Add(48 * time.Hour) // two more days, no event
	e.h.opt.RetrainEvery = 365 * 24 * time.Hour
	tickUntil(t, e, tv.ID, 20)
	after, st := score()
	if !st.After(started) || after <= before {
		t.Fatalf("no daily re-score: churn %v → %v, job started %v → %v", before, after, started, st)
	}
}

// TestFailedRunRetriedWithBackoff: a run that fails (not for lack of data) is retried by the
// schedule after an hour, then after two, and a retry that succeeds publishes.
func TestFailedRunRetriedWithBackoff(t *testing.T) {
	e, tv, _ := trainEnv(t, KindChurnLikelihood, 600)
	var fail atomic.Bool
	fail.Store(true)
	e.h.opt.Train = func(cfg predict.Config, ps []predict.Profile, now time.Time) (*predict.Model, error) {
		if fail.Load() {
			return nil, errors.New("injected fit failure")
		}
		return predict.Train(cfg, ps, now)
	}
	first := tickUntil(t, e, tv.ID, 20)
	if first.Status != TrainFailed || first.Failures != 1 || !strings.Contains(first.Reason, "injected") {
		t.Fatalf("first run: %+v", first)
	}
	runAt := func(d time.Duration) *Training {
		e.clock.Add(d)
		return tickUntil(t, e, tv.ID, 20)
	}
	if r := runAt(59 * time.Minute); r.RunID != first.RunID {
		t.Fatalf("retried within the hour: %+v", r)
	}
	second := runAt(2 * time.Minute)
	if second.RunID == first.RunID || second.Trigger != "retry" || second.Status != TrainFailed || second.Failures != 2 {
		t.Fatalf("first retry: %+v", second)
	}
	if r := runAt(90 * time.Minute); r.RunID != second.RunID {
		t.Fatalf("second retry before two hours: %+v", r)
	}
	fail.Store(false)
	third := runAt(31 * time.Minute)
	if third.RunID == second.RunID || third.Trigger != "retry" || third.Status != TrainPublished {
		t.Fatalf("second retry: %+v", third)
	}
	if d := retryDelay(20, DefaultRetrainEvery); d != DefaultRetrainEvery {
		t.Fatalf("the delay is not capped by the retrain period: %v", d)
	}
}
