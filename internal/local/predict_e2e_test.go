//go:build integration

package local_test

// Predictions end to end, through the public interfaces only: customers drawn by the seeded
// simulator (package predict) are sent with analytics-go with their past timestamps; a
// churn_likelihood computed trait and an audience on its percentile ("top 20 % likely to
// churn") are defined with the admin API, a webhook destination subscribes to the audience;
// POST …/train trains it, GET …/quality follows the run until the model is published, and the
// receiver gets Audience Entered for the profiles the Profile API shows in the top 20 %.

import (
	"fmt"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	analytics "github.com/segmentio/analytics-go/v3"

	"github.com/serverless-cdp/cdp/internal/predict"
	"github.com/serverless-cdp/cdp/internal/segment"
)

const (
	predHorizon   = 7   // days
	predHistory   = 35  // days of simulated history (≥ 3 × the horizon)
	predCustomers = 600 // enough for ≥ 100 churned and ≥ 100 active in the last horizon
	predSeed      = 16
	predBatch     = 250 // messages per batch request
	predWait      = 90 * time.Second
)

// predSend sends the simulated customers' events (explicit past timestamps, each customer's in
// time order) and, last for each, an identify with trait sim_done, so that an audience on it
// tells when the segments stage has seen every customer's events. It returns the user ids.
func predSend(t *testing.T, stackURL, writeKey string, now time.Time) []string {
	t.Helper()
	msgs, users := predMessages(t, now)
	var done []analytics.Message
	for _, u := range users {
		done = append(done, analytics.Identify{MessageId: "sim-done-" + u, UserId: u, Timestamp: now.Add(-time.Minute),
			Traits: analytics.NewTraits().Set("sim_done", true)})
	}
	// One batch request at a time (analytics-go would send them all at once, and time out
	// waiting on a busy emulator); the markers after every event.
	for _, part := range [][]analytics.Message{msgs, done} {
		for len(part) > 0 {
			n := min(len(part), predBatch)
			scnSend(t, stackURL, writeKey, predBatch, part[:n]...)
			part = part[n:]
		}
	}
	t.Logf("sent %d events and %d identifies for %d simulated customers", len(msgs), len(done), len(users))
	return users
}

// predMessages is the simulated customers' events as analytics-go messages, each customer's
// in time order.
func predMessages(t *testing.T, now time.Time) ([]analytics.Message, []string) {
	t.Helper()
	// CDNOW's BG/NBD parameters with α in days rather than weeks (7× the purchase rate), so five
	// weeks of history hold enough activity; customers are acquired over the first two.
	sim := predict.Simulate(predict.SimConfig{Seed: predSeed, Customers: predCustomers, Alpha: 4.414,
		Start: now.Add(-predHistory * 24 * time.Hour), HistoryDays: predHistory, AcquisitionDays: 14})
	var msgs []analytics.Message
	var users []string
	for _, c := range sim {
		user := "sim-" + c.ID
		users = append(users, user)
		for i, e := range c.Events {
			props := analytics.NewProperties()
			for k, v := range e.Properties {
				props.Set(k, v)
			}
			msgs = append(msgs, analytics.Track{MessageId: fmt.Sprintf("%s-%d", user, i), UserId: user, Event: e.Name,
				Timestamp: e.Time, Properties: props})
		}
	}
	return msgs, users
}

// predWaitIngested waits until the segments stage has seen every customer's last message.
func predWaitIngested(t *testing.T, adm *segAdmin, n int) {
	t.Helper()
	draft := map[string]any{"name": "done", "condition": map[string]any{"trait": map[string]any{"key": "sim_done", "op": "eq", "value": true}}}
	eventually(t, fmt.Sprintf("%d customers in the segments stage", n), predWait, func() bool {
		p, st := adm.preview(fmt.Sprintf("?limit=%d", 2*n), draft)
		return st == 200 && p.Matched == n
	})
}

// predTrain asks for a training run and follows it until it ends; it returns the quality view.
// (A run already under way, e.g. the schedule's first one, is the one asked for.)
func predTrain(t *testing.T, adm *segAdmin, traitID string) segment.QualityView {
	t.Helper()
	var run segment.Training
	if st := adm.do("POST", "/computed-traits/"+traitID+"/train", nil, &run); st != 202 || run.TraitID != traitID || run.RunID == "" ||
		(run.Status != segment.TrainQueued && run.Status != segment.TrainCollecting && run.Status != segment.TrainFitting) {
		t.Fatalf("train: %d %+v", st, run)
	}
	var q segment.QualityView
	eventually(t, "the training run to end", predWait, func() bool {
		q = segment.QualityView{}
		if st := adm.do("GET", "/computed-traits/"+traitID+"/quality", nil, &q); st != 200 {
			t.Fatalf("quality: %d", st)
		}
		if q.Training == nil {
			return false
		}
		if q.Training.RunID != run.RunID {
			t.Fatalf("run %s replaced by %+v", run.RunID, q.Training)
		}
		switch q.Training.Status {
		case segment.TrainPublished, segment.TrainRefused, segment.TrainFailed:
			return !q.Training.FinishedAt.IsZero()
		}
		return false
	})
	return q
}

// predScore is one customer's churn_risk value and audience membership, by the Profile API.
type predScore struct {
	user       string
	score      float64
	percentile float64
	member     bool
}

func predScores(t *testing.T, api *scnAPI, users []string, key, audience string) []predScore {
	t.Helper()
	var out []predScore
	for _, u := range users {
		v, _ := segClassTraits(t, api, u, "computed_trait")[key].(map[string]any)
		s, ok1 := v["score"].(float64)
		p, ok2 := v["percentile"].(float64)
		if !ok1 || !ok2 {
			t.Fatalf("%s has no %s {score, percentile}: %v", u, key, v)
		}
		_, member := segClassTraits(t, api, u, "audience")[audience]
		out = append(out, predScore{user: u, score: s, percentile: p, member: member})
	}
	return out
}

// TestChurnAudienceEndToEnd: an audience "churn_risk.percentile ≥ 80" on a churn_likelihood
// trait trained on 600 simulated customers sends Audience Entered for exactly the profiles the
// Profile API shows at percentile 80 or more, which are the top scores, about a fifth of them.
func TestChurnAudienceEndToEnd(t *testing.T) {
	start := time.Now()
	stack, _, writeKey := startStack(t)
	adm := newSegAdmin(t, stack.URL)
	api := newScnAPI(t, stack.URL)
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	var created struct {
		Secret string `json:"secret"`
	}
	if st := call(t, "POST", stack.URL+"/admin/v1/destinations", "Bearer "+adminToken, map[string]any{
		"name": "crm", "url": srv.URL + "/hook", "subscriptions": map[string]any{"audiences": []string{"churn_top20"}},
	}, &created); st != 201 {
		t.Fatalf("create destination: %d", st)
	}
	rc.mu.Lock()
	rc.secret = created.Secret
	rc.mu.Unlock()
	trait := adm.createTrait(map[string]any{"key": "churn_risk", "name": "Churn risk", "kind": "churn_likelihood",
		"prediction": map[string]any{"horizonDays": predHorizon}})
	aud := adm.createAudience("churn_top20", map[string]any{"computedTrait": map[string]any{"key": "churn_risk.percentile", "op": "gte", "value": 80}})
	adm.waitLive(aud)

	// Without data the run is refused, and says why; nobody gets a value.
	if q := predTrain(t, adm, trait); q.Training.Status != segment.TrainRefused || !strings.Contains(q.Training.Reason, "not enough data") || q.Quality != nil {
		t.Fatalf("training on nothing: %+v %+v", q.Training, q.Quality)
	}

	users := predSend(t, stack.URL, writeKey, time.Now().UTC())
	predWaitIngested(t, adm, len(users))
	t.Logf("%v: %d customers in the segments stage", time.Since(start).Round(time.Second), len(users))

	q := predTrain(t, adm, trait)
	if q.Training.Status != segment.TrainPublished || q.Quality == nil {
		t.Fatalf("training: %+v", q.Training)
	}
	t.Logf("%v: published: %+v; run: %d profiles, %.1f RRU, %.1f WRU, %v", time.Since(start).Round(time.Second), *q.Quality,
		q.Training.Profiles, q.Training.ReadUnits, q.Training.WriteUnits, q.Training.Elapsed)
	if q.Quality.Positives < predict.MinPositives || q.Quality.Negatives < predict.MinNegatives || q.Quality.AUC < 0.6 || q.Quality.Label == "" {
		t.Fatalf("quality: %+v", *q.Quality)
	}

	// The backfill scores every profile; the audience's members get Audience Entered.
	var size int
	eventually(t, "Audience Entered for every member", predWait, func() bool {
		a := adm.audience(aud)
		size = a.Size
		got, _ := rc.snapshot()
		return adm.traitStatus(trait) == "live" && a.Status == "live" && size > 0 && len(got) == size
	})
	time.Sleep(time.Second) // a duplicate, if any, would arrive now
	got, bad := rc.snapshot()
	if bad != 0 || len(got) != size {
		t.Fatalf("receiver got %d messages (%d with bad signatures) for %d members", len(got), bad, size)
	}
	entered := map[string]bool{}
	for _, m := range got {
		props, _ := m["properties"].(map[string]any)
		if m["event"] != "Audience Entered" || props["audience_key"] != "churn_top20" || props["churn_top20"] != true {
			t.Fatalf("webhook payload: %v", m)
		}
		entered[m["userId"].(string)] = true
	}

	// Members are exactly the profiles at percentile ≥ 80, i.e. the top scores, about 20 %.
	scores := predScores(t, api, users, "churn_risk", "churn_top20")
	sort.Slice(scores, func(i, j int) bool { return scores[i].score > scores[j].score })
	members := 0
	for i, s := range scores {
		if s.member != (s.percentile >= 80) || s.member != entered[s.user] {
			t.Fatalf("%s: score %.4f, percentile %v, member %v, Audience Entered %v", s.user, s.score, s.percentile, s.member, entered[s.user])
		}
		if s.member {
			members++
			if i > 0 && !scores[i-1].member {
				t.Fatalf("%s is a member with score %.4f below a non-member's %.4f", s.user, s.score, scores[i-1].score)
			}
		}
	}
	if share := float64(members) / float64(len(scores)); members != size || share < 0.12 || share > 0.28 {
		t.Fatalf("%d members (%.1f %%) of %d scored; the audience says %d", members, 100*share, len(scores), size)
	}
	t.Logf("%v: %d of %d customers in the top 20 %% (%.1f %%), each sent Audience Entered", time.Since(start).Round(time.Second),
		members, len(scores), 100*float64(members)/float64(len(scores)))
}
