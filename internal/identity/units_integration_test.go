//go:build integration

package identity

import (
	"context"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/serverless-cdp/cdp/internal/tracking"
)

// TestRequestUnits measures DynamoDB request units per delivered event on one fixed world
// (seeded) delivered three ways: one event per invocation (no coalescing), shuffled batches of
// 100, and batches of 100 in stream order (a shard's batch holds bursts of the same users,
// since the partition key is the user).
func TestRequestUnits(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	type mode struct {
		name      string
		batch     int
		clustered bool
	}
	for _, m := range []mode{{"1 event per batch", 1, false}, {"shuffled, batches of 100", 100, false}, {"stream order, batches of 100", 100, true}} {
		r := rand.New(rand.NewPCG(42, 42))
		w := genWorld(r, 40)
		w.connected(t)
		d := w.delivery(r, 0.1)
		if m.clustered {
			sort.SliceStable(d, func(i, j int) bool { return w.owner[d[i].Message.MessageID] < w.owner[d[j].Message.MessageID] })
		}
		e, meter := newMeteredEnv(t)
		for s := 0; s < len(d); s += m.batch {
			e.process(t, d[s:min(s+m.batch, len(d))]...)
		}
		g := snapshot(t, e)
		rules, _ := Compile(Rules{})
		checkInvariants(t, g, rules)
		checkGroundTruth(t, g, w)
		u := meter.usage()
		n := float64(len(d))
		t.Logf("%-30s %d events (%d distinct), per event: AWS model %.2f RCU + %.2f WCU; DynamoDB Local reported %.2f RCU + %.2f WCU; %.2f requests",
			m.name, len(d), len(w.events), u.ModelReadUnits/n, u.ModelWriteUnits/n, u.ReadUnits/n, u.WriteUnits/n, float64(u.Requests)/n)
		t.Logf("%-30s by kind, per event: %s", m.name, u.breakdown(n))
	}
}

// TestRequestUnitsBenchShape measures request units per delivered event on the benchmark's
// shape of traffic, through the Handler (attempt-count reads included): one world (seeded)
// delivered in arrival order with 5% redeliveries, in Kinesis batches of 1–5 records, one
// handler for the whole run (as one warm Lambda per shard). It logs the units per event by
// item kind.
func TestRequestUnitsBenchShape(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	r := rand.New(rand.NewPCG(7, 7))
	w := genWorld(r, 40)
	w.connected(t)
	d := w.delivery(r, 0.05)
	sort.SliceStable(d, func(i, j int) bool { return d[i].Message.Timestamp.Before(d[j].Message.Timestamp) })
	e, meter := newMeteredEnv(t)
	h := NewHandler(HandlerConfig{Processor: e.proc, Store: e.store, Changes: &memPublisher{}, DeadLetters: &recordingDeadLetters{}})
	for s := 0; s < len(d); {
		n := min(1+r.IntN(5), len(d)-s)
		resp, err := h.Handle(context.Background(), kinesisEvent(t, anys(d[s:s+n])...))
		if err != nil || len(resp.BatchItemFailures) > 0 {
			t.Fatalf("batch at %d: %v %+v", s, err, resp.BatchItemFailures)
		}
		s += n
	}
	g := snapshot(t, e)
	rules, _ := Compile(Rules{})
	checkInvariants(t, g, rules)
	checkGroundTruth(t, g, w)
	u := meter.usage()
	n := float64(len(d))
	t.Logf("bench shape: %d events (%d distinct), per event: AWS model %.2f RRU + %.2f WRU (%.2f WRU without the GSI); %.2f requests",
		len(d), len(w.events), u.ModelReadUnits/n, u.ModelWriteUnits/n, (u.ModelWriteUnits-u.WriteByKind["gsi"])/n, float64(u.Requests)/n)
	t.Logf("by kind, per event: %s", u.breakdown(n))
}

func anys(recs []tracking.Record) []any {
	out := make([]any, len(recs))
	for i, r := range recs {
		out[i] = r
	}
	return out
}
