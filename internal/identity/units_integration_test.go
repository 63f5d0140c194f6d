//go:build integration

package identity

import (
	"math/rand/v2"
	"sort"
	"testing"
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
	}
}
