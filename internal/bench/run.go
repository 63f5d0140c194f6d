// Package bench is the end-to-end benchmark behind `make bench`: a seeded workload sent with the
// Segment Go library through the local deployment (every stage, two webhook receivers), checked
// against the generator's ground truth, with request units, Kinesis bytes, latency, cold starts,
// binary sizes and the resulting cost per million events.
package bench

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	analytics "github.com/segmentio/analytics-go/v3"

	"github.com/serverless-cdp/cdp/internal/app"
)

// Options configure a run.
type Options struct {
	Seed          uint64
	Persons       int     // generated persons (default 200)
	Rate          float64 // offered load, events per second (default 50)
	ColdStartRuns int     // runs per function (default 5; 0 skips cold starts)
	History       bool    // run the heavy-history workload after the main one
	Root          string  // repository root (for building the functions)
	Logger        *slog.Logger
	Progress      io.Writer
}

const (
	writeKey   = "bench-write-key-0123456789abcdef"
	adminToken = "bench-admin-token-0123456789abcdef"
)

// Run executes the benchmark against the DynamoDB and Kinesis endpoints of the environment.
func Run(ctx context.Context, o Options) (*Report, error) {
	o = o.withDefaults()
	say := func(format string, a ...any) { fmt.Fprintf(o.Progress, "bench: "+format+"\n", a...) }
	began := time.Now()

	awsCfg, err := awsConfig(ctx)
	if err != nil {
		return nil, err
	}
	cfg := benchConfig()
	m := NewMeter()
	st, err := startStack(ctx, awsCfg, cfg, m, writeKey, adminToken, o.Logger)
	if err != nil {
		return nil, fmt.Errorf("start stack: %w", err)
	}
	defer deleteResources(awsCfg, cfg)
	defer st.Close()

	rep := &Report{Seed: o.Seed, Persons: o.Persons, GoVersion: runtime.Version(), GOARCH: runtime.GOARCH, CPUs: runtime.NumCPU(),
		StartedAt: began.UTC().Format(time.RFC3339), Prices: pricesUsed()}

	// Configuration through the admin API: two destinations, three computed traits, three audiences.
	crm, ads := &receiver{name: "crm"}, &receiver{name: "ads"}
	crmSrv, adsSrv := httptest.NewServer(crm), httptest.NewServer(ads)
	defer crmSrv.Close()
	defer adsSrv.Close()
	api := &client{base: st.URL}
	if err := configure(ctx, api, st, map[*receiver]string{crm: crmSrv.URL, ads: adsSrv.URL}); err != nil {
		return nil, err
	}
	subscriptions := map[*receiver]func(audience string) bool{
		crm: func(string) bool { return true },
		ads: func(a string) bool { return a == AudienceBigSpenders },
	}

	w := Generate(o.Seed, o.Persons)
	rep.Workload = WorkloadInfo{Fingerprint: w.Fingerprint(), Messages: len(w.Sends), Distinct: w.Distinct(),
		Duplicates: len(w.Sends) - w.Distinct(), Profiles: len(w.Persons)}
	say("workload %s: %d persons/profiles, %d messages (%d duplicates), offered at %.0f events/s", rep.Workload.Fingerprint,
		len(w.Persons), len(w.Sends), rep.Workload.Duplicates, o.Rate)

	if rep.ClientCapacityEventsPerS, err = clientCapacity(w); err != nil {
		return nil, err
	}
	say("client capacity: %.0f events/s against a server that only answers 200", rep.ClientCapacityEventsPerS)

	if err := sendAndDrain(st, w, o, subscriptions, rep, say); err != nil {
		return nil, err
	}

	// Ground truth through the Profile API.
	say("checking profiles against the generator's persons through the Profile API")
	if err := verify(ctx, api, w, rep); err != nil {
		return nil, err
	}

	// Ingest alone at full speed: pipeline stopped, pre-encoded batches of 100, 4 connections.
	st.StopPipeline()
	pipeline := m.Snapshot()
	say("ingest burst")
	if err := ingestBurst(st.URL, w, rep); err != nil {
		// A burst the local emulators cannot absorb leaves the pipeline's figures standing.
		rep.IngestNote = "the ingest burst failed: " + err.Error()
		say("%s", rep.IngestNote)
	}

	if o.History {
		history(ctx, awsCfg, o, rep, say)
	}
	predictions(o.Seed, rep, say)
	if err := recordColdStarts(ctx, o, cfg, rep, say); err != nil {
		return nil, err
	}

	rep.fill(pipeline, len(w.Sends))
	rep.DurationSeconds = time.Since(began).Seconds()
	return rep, nil
}

func (o Options) withDefaults() Options {
	if o.Persons == 0 {
		o.Persons = 200
	}
	if o.Rate == 0 {
		o.Rate = 50
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return o
}

// benchConfig is the default configuration with a table and streams private to this run.
func benchConfig() app.Config {
	cfg := app.Defaults()
	suffix := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	cfg.Table = suffix
	cfg.EventsStream, cfg.ChangesStream, cfg.ActivationsStream = suffix+"-events", suffix+"-changes", suffix+"-activations"
	cfg.AllowLoopbackWebhooks = true
	return cfg
}

// sendAndDrain sends the workload paced at the offered load, waits until every expected webhook
// arrived and the streams are quiet, and records webhook counts and end-to-end latency.
func sendAndDrain(st *stack, w *Workload, o Options, subscriptions map[*receiver]func(string) bool, rep *Report, say func(string, ...any)) error {
	cpu0 := cpuTime()
	sendStart := time.Now()
	sent, failures, err := send(st.URL, w, o.Rate)
	if err != nil {
		return err
	}
	sendDur := time.Since(sendStart)
	rep.EventsSent = len(w.Sends)
	rep.ClientFailures = failures
	say("sent %d messages in %.1fs; waiting for the pipeline to drain", len(w.Sends), sendDur.Seconds())

	triggers := w.Triggers()
	expected := expectedWebhooks(triggers, subscriptions)
	rep.WebhooksExpected = expected
	deadline := time.Now().Add(2*time.Minute + time.Duration(float64(len(w.Sends))/o.Rate*float64(time.Second)))
	awaitWebhooks(st, subscriptions, expected, deadline)
	drained := time.Since(sendStart)
	rep.PipelineCPUSeconds = cpuTime() - cpu0
	rep.PipelineWallSeconds = drained.Seconds()
	say("pipeline drained %.1fs after the first send", drained.Seconds())

	// Webhooks and latency.
	rep.Webhooks = map[string]ReceiverStats{}
	var lat []float64
	for rc, wants := range subscriptions {
		rs, l := receiverStats(rc, wants, w, triggers, sent)
		lat = append(lat, l...)
		rep.Webhooks[rc.name] = rs
		rep.WebhooksDelivered += rs.Delivered
	}
	rep.E2ELatencyMs = Latency{P50: pct(lat, 50), P95: pct(lat, 95), P99: pct(lat, 99), Max: pct(lat, 100), Samples: len(lat),
		OfferedEventsPerS: o.Rate, AchievedEventsPerS: enqueueRate(sent),
		Definition: "enqueue in analytics-go (Interval 100ms) of the message that completes an audience condition → verified arrival of its Audience Entered webhook"}
	return nil
}

// enqueueRate is the rate at which the messages were handed to analytics-go (the offered load
// as achieved; the send time also includes the client's final flush).
func enqueueRate(at []time.Time) float64 {
	if len(at) < 2 {
		return 0
	}
	return float64(len(at)-1) / at[len(at)-1].Sub(at[0]).Seconds()
}

func expectedWebhooks(triggers []Trigger, subscriptions map[*receiver]func(string) bool) int {
	expected := 0
	for _, t := range triggers {
		for _, wants := range subscriptions {
			if wants(t.Audience) {
				expected++
			}
		}
	}
	return expected
}

// awaitWebhooks polls the receivers until the expected entries arrived and the stack has been
// idle for three seconds, or the deadline passes.
func awaitWebhooks(st *stack, subscriptions map[*receiver]func(string) bool, expected int, deadline time.Time) {
	for time.Now().Before(deadline) {
		got := 0
		for rc := range subscriptions {
			a, _ := rc.snapshot()
			got += distinctEntries(a)
		}
		if got >= expected && st.idleFor(3*time.Second) {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// receiverStats compares one receiver's arrivals with the triggers it subscribes to, and returns
// the latency of each expected entry that arrived.
func receiverStats(rc *receiver, wants func(string) bool, w *Workload, triggers []Trigger, sent []time.Time) (ReceiverStats, []float64) {
	got, bad := rc.snapshot()
	first := map[string]time.Time{}
	ids := map[string]int{}
	rs := ReceiverStats{BadSignatures: bad}
	for _, a := range got {
		ids[a.WebhookID]++
		if a.Event != "Audience Entered" {
			rs.Other++
			continue
		}
		k := a.UserID + "\x00" + a.Audience
		if _, ok := first[k]; !ok {
			first[k] = a.At
		}
	}
	for _, n := range ids {
		if n > 1 {
			rs.Redelivered += n - 1
		}
	}
	var lat []float64
	want := map[string]bool{}
	for _, t := range triggers {
		if !wants(t.Audience) {
			continue
		}
		rs.Expected++
		k := w.Persons[t.Person].UserID + "\x00" + t.Audience
		want[k] = true
		if at, ok := first[k]; ok {
			rs.Delivered++
			lat = append(lat, ms(at.Sub(sent[t.Send])))
		}
	}
	for k := range first {
		if !want[k] {
			rs.Unexpected++
		}
	}
	return rs, lat
}

// benchPrivacyKey is the privacy key the cold-start runs start the functions with.
const benchPrivacyKey = "bench-privacy-key-0123456789abcdef"

// recordColdStarts builds the functions and records their cold starts and binary sizes (linux only).
func recordColdStarts(ctx context.Context, o Options, cfg app.Config, rep *Report, say func(string, ...any)) error {
	if o.ColdStartRuns <= 0 || runtime.GOOS != "linux" {
		rep.ColdStartNote = "skipped"
		return nil
	}
	say("building the functions and measuring cold starts (%d runs each)", o.ColdStartRuns)
	env := append(os.Environ(), "CDP_TABLE="+cfg.Table, "CDP_EVENTS_STREAM="+cfg.EventsStream,
		"CDP_CHANGES_STREAM="+cfg.ChangesStream, "CDP_ACTIVATIONS_STREAM="+cfg.ActivationsStream, "LOG_LEVEL=warn",
		"CDP_PRIVACY_KEY="+benchPrivacyKey) // every function but ingest refuses to start without one
	env = withDefaults(env, map[string]string{"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"})
	cs, sizes, err := ColdStarts(ctx, o.Root, env, o.ColdStartRuns)
	if err != nil {
		return err
	}
	rep.ColdStartMs = map[string]float64{}
	for n, c := range cs {
		if n == HelloWorld {
			rep.HelloWorldColdStartMs = c.MedianMs
			continue
		}
		rep.ColdStartMs[n] = c.MedianMs
	}
	rep.ColdStartSamples = cs
	rep.BinaryBytes = sizes
	rep.ColdStartNote = fmt.Sprintf("median of %d runs per binary, linux/%s build with -tags lambda.norpc -ldflags '-s -w', exec → first GET /2018-06-01/runtime/invocation/next on a local Runtime API; binary_bytes are the linux/arm64 build deployed to Lambda", o.ColdStartRuns, runtime.GOARCH)
	return nil
}

func withDefaults(env []string, defs map[string]string) []string {
	have := map[string]bool{}
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		have[k] = true
	}
	for k, v := range defs {
		if !have[k] {
			env = append(env, k+"="+v)
		}
	}
	return env
}

func distinctEntries(got []arrival) int {
	seen := map[string]bool{}
	for _, a := range got {
		if a.Event == "Audience Entered" {
			seen[a.UserID+"\x00"+a.Audience] = true
		}
	}
	return len(seen)
}

func cpuTime() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

func pct(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[max(0, min(len(s)-1, i))]
}

// client calls the local admin and Profile APIs.
type client struct{ base string }

func (c *client) do(ctx context.Context, method, path, auth string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	for attempt := 0; ; attempt++ {
		if rd != nil {
			if s, ok := rd.(io.Seeker); ok {
				_, _ = s.Seek(0, io.SeekStart)
			}
		}
		req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 500 && attempt < 3 {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		if out != nil && resp.StatusCode < 300 {
			if err := json.Unmarshal(raw, out); err != nil {
				return resp.StatusCode, fmt.Errorf("%s %s: %w", method, path, err)
			}
		}
		if resp.StatusCode >= 300 && resp.StatusCode != 404 {
			return resp.StatusCode, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, raw)
		}
		return resp.StatusCode, nil
	}
}

func (c *client) admin(ctx context.Context, method, path string, body, out any) error {
	_, err := c.do(ctx, method, path, "Bearer "+adminToken, body, out)
	return err
}

func (c *client) profile(ctx context.Context, path string, out any) (int, error) {
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(adminToken+":"))
	return c.do(ctx, http.MethodGet, "/v1/spaces/default/collections/users/profiles/"+path, auth, nil, out)
}

func configure(ctx context.Context, c *client, st *stack, dests map[*receiver]string) error {
	for rc, u := range dests {
		subs := []string{"*"}
		if rc.name == "ads" {
			subs = []string{AudienceBigSpenders}
		}
		var created struct {
			Secret string `json:"secret"`
		}
		if err := c.admin(ctx, "POST", "/admin/v1/destinations", map[string]any{
			"name": rc.name, "url": u + "/hook", "subscriptions": map[string]any{"audiences": subs},
		}, &created); err != nil {
			return err
		}
		if err := rc.setSecret(created.Secret); err != nil {
			return err
		}
	}
	within := map[string]any{"days": 30}
	for _, t := range []map[string]any{
		{"key": "order_count", "name": "Order count", "kind": "event_count", "event": map[string]any{"name": PurchaseEvent}, "window": within},
		{"key": "total_revenue", "name": "Total revenue", "kind": "sum", "event": map[string]any{"name": PurchaseEvent}, "property": "revenue", "window": within},
		{"key": "last_product_viewed", "name": "Last product viewed", "kind": "last", "event": map[string]any{"name": "Product Viewed"}, "property": "product"},
	} {
		if err := c.admin(ctx, "POST", "/admin/v1/computed-traits", t, nil); err != nil {
			return err
		}
	}
	for _, a := range []map[string]any{
		{"key": AudienceBuyers, "name": "Buyers", "condition": map[string]any{"event": map[string]any{"name": PurchaseEvent, "count": map[string]any{"op": "at_least", "n": 1}, "within": within}}},
		{"key": AudienceRepeatBuyers, "name": "Repeat buyers", "condition": map[string]any{"event": map[string]any{"name": PurchaseEvent, "count": map[string]any{"op": "at_least", "n": RepeatBuyerOrders}, "within": within}}},
		{"key": AudienceBigSpenders, "name": "Big spenders", "condition": map[string]any{"computedTrait": map[string]any{"key": "total_revenue", "op": "gte", "value": BigSpenderRevenue}}},
	} {
		if err := c.admin(ctx, "POST", "/admin/v1/audiences", a, nil); err != nil {
			return err
		}
	}
	// Backfills over the empty table finish on the first schedule tick.
	deadline := time.Now().Add(time.Minute)
	for {
		var traits, auds json.RawMessage
		if err := c.admin(ctx, "GET", "/admin/v1/computed-traits", nil, &traits); err != nil {
			return err
		}
		if err := c.admin(ctx, "GET", "/admin/v1/audiences", nil, &auds); err != nil {
			return err
		}
		if !bytes.Contains(traits, []byte(`"computing"`)) && !bytes.Contains(auds, []byte(`"computing"`)) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("definitions still computing after a minute: %s %s", traits, auds)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// clientCapacity sends the workload unpaced to a local server that only answers 200 and returns
// the events per second the generator and analytics-go achieved.
func clientCapacity(w *Workload) (float64, error) {
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = rw.Write([]byte(`{"success":true}`))
	}))
	defer srv.Close()
	t0 := time.Now()
	if _, failed, err := send(srv.URL, w, 0); err != nil || failed > 0 {
		return 0, fmt.Errorf("client capacity: %d failed: %v", failed, err)
	}
	return float64(len(w.Sends)) / time.Since(t0).Seconds(), nil
}

// send enqueues the workload into analytics-go at the offered rate (0: as fast as it can) and
// returns each message's enqueue time.
func send(base string, w *Workload, rate float64) ([]time.Time, int, error) {
	cb := &callback{}
	cl, err := analytics.NewWithConfig(writeKey, analytics.Config{Endpoint: base, BatchSize: 100, Interval: 100 * time.Millisecond,
		Callback: cb, Logger: nopLogger{}})
	if err != nil {
		return nil, 0, err
	}
	baseTime := time.Now().UTC()
	at := make([]time.Time, len(w.Sends))
	start := time.Now()
	for i, m := range w.Sends {
		if rate > 0 {
			due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
			if d := time.Until(due); d > time.Millisecond {
				time.Sleep(d)
			}
		}
		at[i] = time.Now()
		if err := cl.Enqueue(message(m, baseTime)); err != nil {
			return nil, 0, fmt.Errorf("enqueue %s: %w", m.MessageID, err)
		}
	}
	if err := cl.Close(); err != nil {
		return nil, 0, err
	}
	return at, cb.failed(), nil
}

func message(m Msg, base time.Time) analytics.Message {
	ts := base.Add(m.Offset)
	switch m.Kind {
	case KindIdentify:
		t := analytics.NewTraits()
		for k, v := range m.Traits {
			t.Set(k, v)
		}
		return analytics.Identify{MessageId: m.MessageID, UserId: m.UserID, AnonymousId: m.AnonymousID, Timestamp: ts, Traits: t}
	case KindPage:
		return analytics.Page{MessageId: m.MessageID, UserId: m.UserID, AnonymousId: m.AnonymousID, Name: m.Event, Timestamp: ts,
			Properties: analytics.NewProperties().SetPath("/" + strings.ToLower(m.Event))}
	default:
		p := analytics.NewProperties()
		if m.Product != "" {
			p.Set("product", m.Product)
		}
		if m.Revenue != 0 {
			p.SetRevenue(float64(m.Revenue)).SetCurrency("USD").SetOrderId("order-" + m.MessageID)
		}
		return analytics.Track{MessageId: m.MessageID, UserId: m.UserID, AnonymousId: m.AnonymousID, Event: m.Event, Timestamp: ts, Properties: p}
	}
}

type callback struct {
	mu sync.Mutex
	n  int
}

func (c *callback) Success(analytics.Message) {}
func (c *callback) Failure(analytics.Message, error) {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
}
func (c *callback) failed() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

type nopLogger struct{}

func (nopLogger) Logf(string, ...any)   {}
func (nopLogger) Errorf(string, ...any) {}

// verify reads every person's identifiers and every profile's events back through the
// Profile API and compares them with the generator's ground truth.
func verify(ctx context.Context, c *client, w *Workload, rep *Report) error {
	owners, err := resolvePersons(ctx, c, w, rep)
	if err != nil {
		return err
	}
	rep.Profiles = len(owners)

	// Every event on every profile.
	ids := make([]string, 0, len(owners))
	for id := range owners {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	counts, err := countEvents(ctx, c, ids)
	if err != nil {
		return err
	}
	sentIDs := map[string]bool{}
	for _, m := range w.Sends {
		sentIDs[m.MessageID] = true
	}
	for id, n := range counts {
		if !sentIDs[id] {
			rep.EventsUnknown++
			continue
		}
		rep.EventsStored++
		if n > 1 {
			rep.EventsDoubleCounted++
		}
	}
	rep.EventsMissing = len(sentIDs) - rep.EventsStored
	return nil
}

// personProfiles is what the Profile API resolves one generated person's identifiers to.
type personProfiles struct {
	person   int
	profiles map[string]bool
	missing  int
}

// resolvePersons looks up every person's identifiers, records missed merges, unresolved
// identifiers and false merges in rep, and returns the persons found on each profile id.
func resolvePersons(ctx context.Context, c *client, w *Workload, rep *Report) (map[string][]int, error) {
	results := make([]personProfiles, len(w.Persons))
	var firstErr error
	var mu sync.Mutex
	parallel(len(w.Persons), 4, func(i int) {
		r, err := resolvePerson(ctx, c, w.Persons[i], i)
		if err != nil {
			mu.Lock()
			firstErr = err
			mu.Unlock()
			return
		}
		results[i] = r
	})
	if firstErr != nil {
		return nil, firstErr
	}
	owners := map[string][]int{}
	for _, r := range results {
		if len(r.profiles) > 1 {
			rep.MissedMerges += len(r.profiles) - 1
		}
		rep.UnresolvedIdentifiers += r.missing
		for id := range r.profiles {
			owners[id] = append(owners[id], r.person)
		}
	}
	for _, ps := range owners {
		if len(ps) > 1 {
			rep.FalseMerges += len(ps) - 1
		}
	}
	return owners, nil
}

func resolvePerson(ctx context.Context, c *client, p Person, i int) (personProfiles, error) {
	r := personProfiles{person: i, profiles: map[string]bool{}}
	for _, ref := range p.Identifiers() {
		var md struct {
			Metadata struct {
				ID string `json:"id"`
			} `json:"metadata"`
		}
		code, err := c.profile(ctx, url.PathEscape(ref)+"/metadata", &md)
		if err != nil {
			return r, err
		}
		if code == 404 {
			r.missing++
			continue
		}
		r.profiles[md.Metadata.ID] = true
	}
	return r, nil
}

// countEvents pages through every profile's events and counts each message id.
func countEvents(ctx context.Context, c *client, ids []string) (map[string]int, error) {
	counts := map[string]int{}
	var firstErr error
	var mu sync.Mutex
	parallel(len(ids), 4, func(i int) {
		next := ""
		for {
			page, err := eventsPage(ctx, c, ids[i], next)
			if err != nil {
				mu.Lock()
				firstErr = err
				mu.Unlock()
				return
			}
			mu.Lock()
			for _, d := range page.Data {
				counts[d.MessageID]++
			}
			mu.Unlock()
			if !page.Cursor.HasMore || page.Cursor.Next == "" {
				return
			}
			next = page.Cursor.Next
		}
	})
	return counts, firstErr
}

type eventsPageBody struct {
	Data []struct {
		MessageID string `json:"message_id"`
	} `json:"data"`
	Cursor struct {
		HasMore bool   `json:"has_more"`
		Next    string `json:"next"`
	} `json:"cursor"`
}

func eventsPage(ctx context.Context, c *client, id, next string) (eventsPageBody, error) {
	q := "profile_id:" + id + "/events?limit=100"
	if next != "" {
		q += "&next=" + url.QueryEscape(next)
	}
	var page eventsPageBody
	_, err := c.profile(ctx, q, &page)
	return page, err
}

func parallel(n, workers int, f func(i int)) {
	var wg sync.WaitGroup
	ch := make(chan int)
	for k := 0; k < workers; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ch {
				f(i)
			}
		}()
	}
	for i := 0; i < n; i++ {
		ch <- i
	}
	close(ch)
	wg.Wait()
}

// ingestBurst posts the workload again as pre-encoded /v1/batch bodies of 100 events over four
// connections, with the rest of the pipeline stopped, and measures throughput and process CPU.
func ingestBurst(base string, w *Workload, rep *Report) error {
	now := time.Now().UTC()
	var bodies [][]byte
	for s := 0; s < len(w.Sends); s += 100 {
		var batch []map[string]any
		for _, m := range w.Sends[s:min(s+100, len(w.Sends))] {
			b, err := json.Marshal(message(m, now))
			if err != nil {
				return err
			}
			var item map[string]any
			_ = json.Unmarshal(b, &item)
			item["type"] = map[string]string{KindIdentify: "identify", KindPage: "page", KindTrack: "track"}[m.Kind]
			item["messageId"] = "burst-" + m.MessageID
			batch = append(batch, item)
		}
		b, err := json.Marshal(map[string]any{"batch": batch, "sentAt": now})
		if err != nil {
			return err
		}
		bodies = append(bodies, b)
	}
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(writeKey+":"))
	var failed int
	var mu sync.Mutex
	cpu0, t0 := cpuTime(), time.Now()
	parallel(len(bodies), 4, func(i int) {
		req, _ := http.NewRequest("POST", base+"/v1/batch", bytes.NewReader(bodies[i]))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		ok := err == nil && resp.StatusCode == 200
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if !ok {
			mu.Lock()
			failed++
			mu.Unlock()
		}
	})
	wall, cpu := time.Since(t0).Seconds(), cpuTime()-cpu0
	if failed > 0 {
		return fmt.Errorf("ingest burst: %d of %d requests failed", failed, len(bodies))
	}
	rep.IngestEventsPerS = float64(len(w.Sends)) / wall
	rep.IngestCPUUsPerEvent = cpu * 1e6 / float64(len(w.Sends))
	rep.IngestNote = fmt.Sprintf("%d events as %d pre-encoded /v1/batch requests over 4 connections, rest of the pipeline stopped; CPU = this process (handler + local HTTP adapter + HTTP client + SDK), not the emulators", len(w.Sends), len(bodies))
	return nil
}
