//go:build integration

package segment

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
	"github.com/serverless-cdp/cdp/internal/predict"
	"github.com/serverless-cdp/cdp/internal/store/ru"
)

// phaseMark is the wall time and modelled request units at a point of a training run.
type phaseMark struct {
	at time.Time
	u  ru.Units
}

// markingStore notes when a run starts reading its chunks (the end of collecting).
type markingStore struct {
	Stores
	mark func() phaseMark
	mu   sync.Mutex
	read *phaseMark
}

func (m *markingStore) Chunks(ctx context.Context, traitID, runID string, n int, fn func([]predict.Profile) error) (Units, error) {
	m.mu.Lock()
	if m.read == nil {
		pm := m.mark()
		m.read = &pm
	}
	m.mu.Unlock()
	return m.Stores.Chunks(ctx, traitID, runID, n, fn)
}

// BenchmarkTrainingCost measures a churn_likelihood training run on DynamoDB Local over
// simulated customers (10,000, or CDP_BENCH_PROFILES): wall time and request units per phase
// (collect: registry pages, batched state reads, chunk writes; fit: chunk reads and
// predict.Train; rescore: the backfill that gives every profile its score), the units the run
// itself reports from ConsumedCapacity, and its chunks. States are written straight through
// the store (as the stage would have built them).
//
//	go test -tags integration -run '^$' -bench TrainingCost -benchtime 1x ./internal/segment
func BenchmarkTrainingCost(b *testing.B) {
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("CDP_BENCH_PROFILES")); err == nil && v > 0 {
		n = v
	}
	for range b.N {
		benchTraining(b, n)
	}
}

func benchTraining(b *testing.B, n int) {
	c := testenv.Clients(b)
	meter := ru.NewMeter(c.DynamoDB)
	st := NewStore(meter, testenv.Table(b, c.DynamoDB))
	cfg := predict.SimConfig{Seed: 11, Customers: n, HistoryDays: 180}
	now := cfg.Now().Add(6 * time.Hour)
	clk := &clock{t: now}
	mark := func() phaseMark { return phaseMark{time.Now(), meter.Take()} }
	ms := &markingStore{Stores: st, mark: mark}
	var fitStart, fitEnd phaseMark
	train := func(cfg predict.Config, ps []predict.Profile, now time.Time) (*predict.Model, error) {
		fitStart = mark()
		defer func() { fitEnd = mark() }()
		return predict.Train(cfg, ps, now)
	}
	h := NewHandler(ms, &MemPublisher{}, Options{Clock: clk.Now, Train: train, TickBudget: 10 * time.Minute, BackfillBudget: 10 * time.Minute})
	sv := NewService(st, clk.Now)
	ctx := context.Background()
	tv, err := sv.SaveTrait(ctx, ComputedTrait{Name: "Churn", Key: "churn", Kind: KindChurnLikelihood})
	mustB(b, err)
	mustB(b, h.RunBackfills(ctx))
	benchStates(b, h, st, predict.Simulate(cfg), now)

	meter.Take()
	b.ResetTimer()
	start := mark()
	_, err = sv.Train(ctx, tv.ID)
	mustB(b, err)
	ticks := 0
	var run *Training
	for run == nil || run.active() {
		if _, err := h.Tick(ctx); err != nil {
			b.Fatal(err)
		}
		ticks++
		defs, err := st.LoadDefinitions(ctx)
		mustB(b, err)
		run = defs.Trainings[tv.ID]
	}
	published := mark()
	mustB(b, h.RunBackfills(ctx))
	rescored := mark()
	b.StopTimer()
	if run.Status != TrainPublished || ms.read == nil {
		b.Fatalf("run: %+v", run)
	}
	b.ReportMetric(ms.read.at.Sub(start.at).Seconds(), "collect-s")
	b.ReportMetric(ms.read.u.Read, "collect-RRU")
	b.ReportMetric(ms.read.u.Write, "collect-WRU")
	b.ReportMetric(fitEnd.at.Sub(ms.read.at).Seconds(), "fit-s")
	b.ReportMetric(fitStart.u.Read, "fit-RRU")
	b.ReportMetric(fitEnd.at.Sub(fitStart.at).Seconds(), "train-s")
	b.ReportMetric(published.at.Sub(fitEnd.at).Seconds(), "publish-s")
	b.ReportMetric(rescored.at.Sub(published.at).Seconds(), "rescore-s")
	b.ReportMetric(rescored.u.Read, "rescore-RRU")
	b.ReportMetric(rescored.u.Write, "rescore-WRU")
	b.ReportMetric(run.ReadUnits, "run-reported-RRU")
	b.ReportMetric(run.WriteUnits, "run-reported-WRU")
	b.ReportMetric(float64(run.Chunks), "chunks")
	b.ReportMetric(float64(ticks), "ticks")
	b.Logf("%d profiles: run %+v; quality %+v", n, run, mustQuality(b, sv, tv.ID))
}

func mustQuality(b *testing.B, sv *Service, id string) any {
	q, err := sv.Quality(context.Background(), id)
	mustB(b, err)
	return q.Quality
}

// benchStates builds each simulated customer's state with the handler's catalog and stores it
// (8 writers).
func benchStates(b *testing.B, h *Handler, st *Store, cs []predict.Customer, now time.Time) {
	ctx := context.Background()
	cat, err := h.catalog(ctx)
	mustB(b, err)
	var g errgroup.Group
	g.SetLimit(8)
	for i := range cs {
		g.Go(func() error {
			pid := fmt.Sprintf("c%06d", i)
			s := NewState(pid)
			evs := make([]Event, 0, len(cs[i].Events))
			for k, e := range cs[i].Events {
				m := track(fmt.Sprintf("%s-%d", pid, k), e.Name, e.Time, "{}")
				m.Properties = mustJSON(e.Properties)
				evs = append(evs, eventOf(&m, nil))
			}
			cat.addEvents(s, evs, now)
			l := NewSnapshot(nil, nil)
			return st.Commit(ctx, []Write{{State: s, Was: l}}, MaxStateBytes)
		})
	}
	mustB(b, g.Wait())
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
