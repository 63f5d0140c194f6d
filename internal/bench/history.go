package bench

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// HistorySizes are the heavy-history workload's past-event counts, one profile each.
var HistorySizes = []int{10, 100, 1000, 10000}

const (
	// HistoryChanges is how many new events each history profile then receives, one at a time,
	// each its own change record.
	HistoryChanges = 20
	// historySpan is how far back the past events reach.
	historySpan = 2 * 365 * 24 * time.Hour
	// historyBatch is the number of events per /v1/batch request.
	historyBatch = 100
)

// HistoryBucket is what the segments stage spent on the new events of a profile with
// PastEvents past events.
type HistoryBucket struct {
	PastEvents           int     `json:"past_events"`
	Changes              int     `json:"changes"`
	SegmentsWRUPerChange float64 `json:"segments_wru_per_change"`
	SegmentsRRUPerChange float64 `json:"segments_rru_per_change"`
	SegmentsMsPerChange  float64 `json:"segments_ms_per_change"`
	IdentityWRUPerChange float64 `json:"identity_wru_per_change"`
	IdentityRRUPerChange float64 `json:"identity_rru_per_change"`
	// StateItemBytes is the largest item the segments stage wrote while handling the new
	// events: its per-profile state.
	StateItemBytes int `json:"segments_state_item_bytes"`
}

// historyUser is the user id of the history profile with n past events.
func historyUser(seed uint64, n int) string { return fmt.Sprintf("history-%d-%05d", seed, n) }

// historyEvent is one past or new event of a history profile: a purchase (30%) or a product view.
func historyEvent(r *rand.Rand, id, user string, at time.Time) map[string]any {
	m := map[string]any{"type": "track", "messageId": id, "userId": user, "timestamp": at.Format(time.RFC3339Nano)}
	if r.Float64() < 0.3 {
		m["event"] = PurchaseEvent
		m["properties"] = map[string]any{"revenue": 10 + r.IntN(191), "currency": "USD", "product": products[r.IntN(len(products))], "order_id": "order-" + id}
	} else {
		m["event"] = "Product Viewed"
		m["properties"] = map[string]any{"product": products[r.IntN(len(products))]}
	}
	return m
}

// historyBodies are the /v1/batch bodies of every history profile's past events, spread evenly
// over the two years before now, oldest first.
func historyBodies(seed uint64, now time.Time) ([][]byte, int, error) {
	r := rand.New(rand.NewPCG(seed, 0x4849535452))
	var bodies [][]byte
	total := 0
	for _, n := range HistorySizes {
		user := historyUser(seed, n)
		step := historySpan / time.Duration(n)
		for s := 0; s < n; s += historyBatch {
			var batch []map[string]any
			for i := s; i < min(s+historyBatch, n); i++ {
				at := now.Add(-historySpan + time.Duration(i)*step + time.Duration(r.Int64N(int64(step))))
				batch = append(batch, historyEvent(r, fmt.Sprintf("%s-past-%05d", user, i), user, at))
			}
			b, err := json.Marshal(map[string]any{"batch": batch, "sentAt": now.Format(time.RFC3339Nano)})
			if err != nil {
				return nil, 0, err
			}
			bodies = append(bodies, b)
			total += len(batch)
		}
	}
	return bodies, total, nil
}

// post sends one tracking API request until it is answered 200, retrying 429 and 5xx answers
// and connection errors with backoff for up to two minutes, the way the Segment libraries
// retry (a retried batch is deduplicated by its message ids).
func post(ctx context.Context, base, path string, body []byte) error {
	deadline := time.Now().Add(2 * time.Minute)
	for attempt := 0; ; attempt++ {
		code, err := postOnce(ctx, base, path, body)
		if err == nil {
			return nil
		}
		if (code != 0 && code != http.StatusTooManyRequests && code < 500) || time.Now().After(deadline) {
			return fmt.Errorf("%w (attempt %d)", err, attempt+1)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(5*time.Second, time.Duration(attempt+1)*500*time.Millisecond)):
		}
	}
}

func postOnce(ctx context.Context, base, path string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(writeKey+":")))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("POST %s: %w", path, err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, fmt.Errorf("POST %s: %d %s", path, resp.StatusCode, raw)
	}
	return resp.StatusCode, nil
}

// history runs the heavy-history workload; when it fails, the main workload's figures stand and
// the report says what is missing.
func history(ctx context.Context, awsCfg aws.Config, o Options, rep *Report, say func(string, ...any)) {
	if err := historyOnOwnStack(ctx, awsCfg, o, rep, say); err != nil {
		rep.HistoryNote = "the heavy-history workload failed: " + err.Error()
		say("%s", rep.HistoryNote)
	}
}

// historyOnOwnStack runs the heavy-history workload on a local stack of its own (table, streams,
// meter, definitions and webhook receivers as in the main run), so that it cannot change the
// main workload's figures and the main workload's records do not slow its streams down.
func historyOnOwnStack(ctx context.Context, awsCfg aws.Config, o Options, rep *Report, say func(string, ...any)) error {
	cfg, m := benchConfig(), NewMeter()
	st, err := startStack(ctx, awsCfg, cfg, m, writeKey, adminToken, o.Logger)
	if err != nil {
		return fmt.Errorf("start stack: %w", err)
	}
	defer deleteResources(awsCfg, cfg)
	defer st.Close()
	crm, ads := &receiver{name: "crm"}, &receiver{name: "ads"}
	crmSrv, adsSrv := httptest.NewServer(crm), httptest.NewServer(ads)
	defer crmSrv.Close()
	defer adsSrv.Close()
	if err := configure(ctx, &client{base: st.URL}, st, map[*receiver]string{crm: crmSrv.URL, ads: adsSrv.URL}); err != nil {
		return err
	}
	idle, err := idleTicks(m, 4, time.Now().Add(time.Minute))
	if err != nil {
		return err
	}
	rep.IdleTick = &idle
	say("history: idle schedule ticks measured (%d)", idle.Invocations)
	return runHistory(ctx, st, m, o.Seed, rep, say)
}

// idleTicks waits for n schedule invocations on the configured stack before any traffic and
// returns their usage: what the schedules cost a stack without traffic.
func idleTicks(m *Meter, n int, deadline time.Time) (StageUsage, error) {
	before := m.Snapshot()[StageSchedules]
	for {
		now := m.Snapshot()[StageSchedules]
		if now.Invocations-before.Invocations >= n {
			return diff(now, before), nil
		}
		if time.Now().After(deadline) {
			return StageUsage{}, fmt.Errorf("idle ticks: %d schedule runs by the deadline, want %d", now.Invocations-before.Invocations, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// runHistory is the heavy-history workload: it sends every history profile's past events
// through the tracking API, waits for the pipeline to drain, then sends each profile
// HistoryChanges new events one at a time (each waits for the segments stage to handle the
// previous one) and reports the segments stage's usage per change.
func runHistory(ctx context.Context, st *stack, m *Meter, seed uint64, rep *Report, say func(string, ...any)) error {
	now := time.Now().UTC()
	bodies, total, err := historyBodies(seed, now)
	if err != nil {
		return err
	}
	say("history: %d past events for profiles with %v events, in %d batches", total, HistorySizes, len(bodies))
	began, before := time.Now(), m.Snapshot()
	if err := postAll(ctx, st.URL, bodies); err != nil {
		return fmt.Errorf("history: %w", err)
	}
	say("history: posted in %.1fs; waiting for the pipeline to drain", time.Since(began).Seconds())
	if err := awaitRecords(st, m, StageIdentity, before[StageIdentity].Records+total, time.Now().Add(15*time.Minute), 3*time.Second); err != nil {
		return fmt.Errorf("history: drain: %w", err)
	}
	drained := time.Since(began)
	say("history: drained in %.1fs; now %d new events per profile, one at a time", drained.Seconds(), HistoryChanges)
	rep.SegmentsWRUPerChangeByHistory, rep.SegmentsStateBytesByHistory = map[string]float64{}, map[string]int{}
	rep.History = map[string]HistoryBucket{}
	r := rand.New(rand.NewPCG(seed, 0x4e4557))
	for _, n := range HistorySizes {
		b, err := historyChangesOf(ctx, st, m, r, historyUser(seed, n), n)
		if err != nil {
			return err
		}
		key := strconv.Itoa(n)
		rep.History[key] = b
		rep.SegmentsWRUPerChangeByHistory[key] = b.SegmentsWRUPerChange
		rep.SegmentsStateBytesByHistory[key] = b.StateItemBytes
	}
	if w := rep.SegmentsWRUPerChangeByHistory["10"]; w > 0 {
		rep.SegmentsHistoryGrowth = rep.SegmentsWRUPerChangeByHistory["10000"] / w
	}
	rep.HistoryNote = fmt.Sprintf("one profile per size; past events (30%% %s with revenue, 70%% Product Viewed) spread over the two years before the run, sent as /v1/batch requests of %d, one a second (%d events drained in %.0f s); then %d new events per profile through /v1/track, each sent after the segments stage handled the previous one, so each is its own change. Per change: the segments stage's request units (AWS rules) and handler time; state bytes: the largest item it wrote. Run on a stack of its own (table, streams, meter) after the main workload.",
		PurchaseEvent, historyBatch, total, drained.Seconds(), HistoryChanges)
	return nil
}

// historyChangesOf sends HistoryChanges new events to one profile, one change at a time, and
// returns the per-change usage of the identity and segments stages.
func historyChangesOf(ctx context.Context, st *stack, m *Meter, r *rand.Rand, user string, n int) (HistoryBucket, error) {
	m.ResetMaxItem(StageSegments)
	before := m.Snapshot()
	for k := 0; k < HistoryChanges; k++ {
		seen := m.Snapshot()[StageSegments].Records
		ev := historyEvent(r, fmt.Sprintf("%s-new-%02d", user, k), user, time.Now().UTC())
		body, err := json.Marshal(ev)
		if err != nil {
			return HistoryBucket{}, err
		}
		if err := post(ctx, st.URL, "/v1/track", body); err != nil {
			return HistoryBucket{}, fmt.Errorf("history %d: %w", n, err)
		}
		if err := awaitRecords(st, m, StageSegments, seen+1, time.Now().Add(time.Minute), 0); err != nil {
			return HistoryBucket{}, fmt.Errorf("history %d, change %d: %w", n, k, err)
		}
	}
	// A change that produced more than one record finishes before the figures are taken.
	if err := awaitRecords(st, m, StageSegments, 0, time.Now().Add(time.Minute), 500*time.Millisecond); err != nil {
		return HistoryBucket{}, err
	}
	after := m.Snapshot()
	seg, id := diff(after[StageSegments], before[StageSegments]), diff(after[StageIdentity], before[StageIdentity])
	c := float64(HistoryChanges)
	return HistoryBucket{PastEvents: n, Changes: HistoryChanges,
		SegmentsWRUPerChange: seg.ModelWRU / c, SegmentsRRUPerChange: seg.ModelRRU / c, SegmentsMsPerChange: seg.BusyMs / c,
		IdentityWRUPerChange: id.ModelWRU / c, IdentityRRUPerChange: id.ModelRRU / c,
		StateItemBytes: after[StageSegments].MaxItemBytes}, nil
}

func diff(a, b StageUsage) StageUsage {
	return StageUsage{Calls: a.Calls - b.Calls, ModelWRU: a.ModelWRU - b.ModelWRU, ModelIndexWRU: a.ModelIndexWRU - b.ModelIndexWRU, ModelRRU: a.ModelRRU - b.ModelRRU,
		ReportedWRU: a.ReportedWRU - b.ReportedWRU, ReportedRRU: a.ReportedRRU - b.ReportedRRU,
		Invocations: a.Invocations - b.Invocations, Records: a.Records - b.Records, BusyMs: a.BusyMs - b.BusyMs}
}

// awaitRecords polls until the stage has taken in at least want records (in total) and no
// stream stage has handled a record for quiet, or the deadline passes.
func awaitRecords(st *stack, m *Meter, stage string, want int, deadline time.Time, quiet time.Duration) error {
	for {
		got := m.Snapshot()[stage].Records
		if got >= want && (quiet == 0 || st.idleFor(quiet)) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s took in %d records, want %d, by the deadline", stage, got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// postAll posts the /v1/batch bodies one at a time, at most one a second (historyBatch events
// per second, about what the local pipeline drains): a flood only makes the local Kinesis
// emulator time out, and the retries make it worse.
func postAll(ctx context.Context, base string, bodies [][]byte) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for i, b := range bodies {
		if i > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-tick.C:
			}
		}
		if err := post(ctx, base, "/v1/batch", b); err != nil {
			return err
		}
	}
	return nil
}
