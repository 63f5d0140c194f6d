package activation

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/activations"
	"github.com/serverless-cdp/cdp/internal/consent"
	"github.com/serverless-cdp/cdp/internal/destination"
	"github.com/serverless-cdp/cdp/internal/privacy"
	"github.com/serverless-cdp/cdp/internal/tracking"
	"github.com/serverless-cdp/cdp/internal/webhook"
)

// eventRecord is a forwarded "Order Completed" about profile pid carrying context ctx.
func eventRecord(id, pid, ctx string) activations.Record {
	m := &tracking.Message{Type: "track", Event: "Order Completed", MessageID: id, UserID: "u1"}
	if ctx != "" {
		m.Context = json.RawMessage(ctx)
	}
	return activations.Record{ID: "evt-" + pid + "-" + id, Kind: activations.KindEvent, ProfileID: pid, UserID: "u1", Event: m}
}

func prefsCtx(advertising bool) string {
	if advertising {
		return `{"consent":{"categoryPreferences":{"advertising":true,"analytics":true}}}`
	}
	return `{"consent":{"categoryPreferences":{"advertising":false,"analytics":true}}}`
}

func statuses(t *testing.T, e *env, destID string) map[string]string {
	t.Helper()
	log, _, err := e.d.Deliveries(context.Background(), destID, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range log {
		out[d.RecordID] = d.Status
	}
	return out
}

// TestConsentGatesDestinations: a forwarded event reaches a destination declaring
// consentCategories [advertising] only when its own preferences grant advertising (unenforced
// without preferences); a requireConsent destination receives nothing without preferences;
// audience records use the profile's stored consent. Every filtered message is a
// filtered_consent delivery, counted once even when the batch comes again.
func TestConsentGatesDestinations(t *testing.T) {
	e := newEnv(t, webhook.Policy{AllowLoopback: true})
	events := destination.Subscriptions{Audiences: []string{"*"}, Events: []destination.EventFilter{{Type: "track"}}}
	rAds, rReq := newReceiver(t), newReceiver(t)
	ads := e.dest(rAds, destination.Spec{Name: "ads", Subscriptions: events, ConsentCategories: []string{"advertising"}})
	req := e.dest(rReq, destination.Spec{Name: "req", Subscriptions: events, RequireConsent: true})
	denied, granted := audienceRecord("aud-prof_1-denied", activations.KindAudienceEntered), audienceRecord("aud-prof_1-granted", activations.KindAudienceEntered)
	denied.Consent, granted.Consent = consent.Preferences{"advertising": false}, consent.Preferences{"advertising": true}
	ev := kinesisEvent(t,
		eventRecord("no", "prof_1", prefsCtx(false)),
		eventRecord("yes", "prof_1", prefsCtx(true)),
		eventRecord("none", "prof_1", `{"ip":"1.2.3.4"}`),
		denied, granted,
		audienceRecord("aud-prof_1-unknown", activations.KindAudienceEntered),
	)
	e.handle(ev)
	e.handle(ev) // at-least-once: the same batch again
	wantAds := map[string]string{"evt-prof_1-no": StatusFilteredConsent, "evt-prof_1-yes": StatusDelivered,
		"evt-prof_1-none": StatusDelivered, "aud-prof_1-denied": StatusFilteredConsent, "aud-prof_1-granted": StatusDelivered,
		"aud-prof_1-unknown": StatusDelivered}
	wantReq := map[string]string{"evt-prof_1-no": StatusDelivered, "evt-prof_1-yes": StatusDelivered,
		"evt-prof_1-none": StatusFilteredConsent, "aud-prof_1-denied": StatusDelivered, "aud-prof_1-granted": StatusDelivered,
		"aud-prof_1-unknown": StatusFilteredConsent}
	for _, c := range []struct {
		dest destination.Destination
		r    *receiver
		want map[string]string
	}{{ads, rAds, wantAds}, {req, rReq, wantReq}} {
		if got := statuses(t, e, c.dest.ID); !equalMaps(got, c.want) {
			t.Errorf("%s: deliveries %v, want %v", c.dest.Name, got, c.want)
		}
		sent := map[string]bool{}
		for _, g := range c.r.requests() {
			var p struct {
				MessageID string `json:"messageId"`
			}
			_ = json.Unmarshal(g.body, &p)
			sent[p.MessageID] = true
		}
		for rec, st := range c.want {
			msgID := strings.TrimPrefix(rec, "evt-prof_1-")
			if sent[msgID] != (st == StatusDelivered) {
				t.Errorf("%s: %s sent=%v, want status %s", c.dest.Name, rec, sent[msgID], st)
			}
		}
		if n := len(c.r.requests()); n != 4 {
			t.Errorf("%s: %d requests, want 4 (each allowed message once)", c.dest.Name, n)
		}
		st, _ := e.d.Stats(context.Background(), c.dest.ID)
		if st.FilteredConsent != 2 || st.Delivered != 4 {
			t.Errorf("%s: stats %+v, want 2 filtered and 4 delivered", c.dest.Name, st)
		}
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// erasedSet is an ErasedProfiles over a set.
type erasedSet map[string]bool

func (s erasedSet) Erased(_ context.Context, pid string) (bool, error) { return s[pid], nil }

// TestErasedProfileRecordsDropped: records about an erased profile (by the record's profile, or
// for a forwarded event by the profile its id names) are dropped before any delivery is
// written, counted per destination; others are delivered.
func TestErasedProfileRecordsDropped(t *testing.T) {
	e := newEnvWith(t, func(c *Config) { c.Erased = erasedSet{"prof_gone": true} })
	r := newReceiver(t)
	dest := e.dest(r, destination.Spec{Subscriptions: destination.Subscriptions{Audiences: []string{"*"},
		Events: []destination.EventFilter{{Type: "track"}}}})
	gone := audienceRecord("aud-prof_gone-1", activations.KindAudienceEntered)
	gone.ProfileID = "prof_gone"
	committed := eventRecord("m1", "prof_gone", "")
	committed.ProfileID = "prof_survivor" // merged since: the id still names the erased profile
	e.handle(kinesisEvent(t, gone, committed, audienceRecord("aud-prof_1-1", activations.KindAudienceEntered)))
	if got := statuses(t, e, dest.ID); !equalMaps(got, map[string]string{"aud-prof_1-1": StatusDelivered}) {
		t.Fatalf("deliveries %v", got)
	}
	for _, rec := range []string{gone.ID, committed.ID} {
		if _, err := e.d.Delivery(context.Background(), dest.ID, rec); err != ErrNotFound {
			t.Errorf("%s: a delivery was written: %v", rec, err)
		}
	}
	if n := len(r.requests()); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
	if st, _ := e.d.Stats(context.Background(), dest.ID); st.DroppedErased != 2 {
		t.Fatalf("stats %+v, want 2 dropped", st)
	}
}

// blockingReceiver answers status to every request, once released; arrived is signalled when
// the first request is in.
type blockingReceiver struct {
	*receiver
	arrived chan struct{}
	once    sync.Once
}

func newBlockingReceiver(t *testing.T, g *gate, status int) *blockingReceiver {
	b := &blockingReceiver{receiver: newReceiver(t), arrived: make(chan struct{})}
	b.ignTS = true
	b.status = func(int) int { return status }
	inner := b.srv.Config.Handler
	b.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b.once.Do(func() { close(b.arrived) })
		select {
		case <-g.open:
		case <-req.Context().Done():
			return
		}
		inner.ServeHTTP(w, req)
	})
	t.Cleanup(g.release)
	return b
}

func waitFor(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting")
	}
}

// assertNothingAbout checks that the store holds no delivery, queue entry or dead letter about
// prof_1 for dest.
func assertNothingAbout(t *testing.T, e *env, destID string) {
	t.Helper()
	var n int
	err := e.d.Holder().Export(context.Background(), privacy.Person{Profiles: []string{"prof_1"}}, func(string, any) error { n++; return nil })
	if err != nil || n != 0 {
		t.Fatalf("export after erase: %d items, %v", n, err)
	}
	if due, _ := e.d.queue.Due(context.Background(), e.clock.Now().Add(48*time.Hour), 10); len(due) != 0 {
		t.Fatalf("queue entries left: %+v", due)
	}
	if dls, _, _ := e.d.DeadLetters(context.Background(), destID, 10, ""); len(dls) != 0 {
		t.Fatalf("dead letters left: %+v", dls)
	}
}

// TestEraseDuringAttemptNotUndone: an erase that lands while a webhook is in flight (from the
// stream, and from the retrier) is never undone by the outcome write: no delivery, queue entry
// or dead letter comes back, and the record is not handed back to Kinesis.
func TestEraseDuringAttemptNotUndone(t *testing.T) {
	for _, status := range []int{500, 400, 200} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			e := newEnvWith(t, func(c *Config) { c.InBatchTimeout, c.InBatchWindow = 5*time.Second, 5*time.Second })
			g := newGate()
			r := newBlockingReceiver(t, g, status)
			dest := e.dest(r.receiver, destination.Spec{})
			done := make(chan error, 1)
			go func() {
				resp, err := e.d.HandleKinesis(context.Background(), kinesisEvent(t, audienceRecord("aud-prof_1-1", activations.KindAudienceEntered)))
				if err == nil && len(resp.BatchItemFailures) > 0 {
					err = context.Canceled
				}
				done <- err
			}()
			waitFor(t, r.arrived)
			counts, err := e.d.Holder().Erase(context.Background(), privacy.Person{Profiles: []string{"prof_1"}})
			if err != nil || counts[KindDeliveries] != 1 {
				t.Fatalf("erase: %v %v", counts, err)
			}
			g.release()
			if err := <-done; err != nil {
				t.Fatalf("handler: %v (an erased delivery must not be handed back)", err)
			}
			assertNothingAbout(t, e, dest.ID)
		})
	}
}

// TestEraseDuringRetryNotUndone: the same for an attempt made by the retrier (Tick).
func TestEraseDuringRetryNotUndone(t *testing.T) {
	e := newEnv(t, webhook.Policy{AllowLoopback: true})
	g := newGate()
	r := newBlockingReceiver(t, g, 500)
	dest := e.dest(r.receiver, destination.Spec{})
	g.release() // the first attempt fails at once: queued for a retry
	e.handle(kinesisEvent(t, audienceRecord("aud-prof_1-1", activations.KindAudienceEntered)))
	del, err := e.d.Delivery(context.Background(), dest.ID, "aud-prof_1-1")
	if err != nil || del.Status != StatusRetrying {
		t.Fatalf("not queued: %+v %v", del, err)
	}
	g2 := newGate()
	r2 := newBlockingReceiver(t, g2, 500)
	if _, err := e.dests.Update(context.Background(), dest.ID, destination.Spec{Name: "test", URL: r2.srv.URL,
		Subscriptions: destination.Subscriptions{Audiences: []string{"*"}}}); err != nil {
		t.Fatal(err)
	}
	r2.secret = r.secret
	e.clock.Set(del.NextAttemptAt.Add(time.Second))
	done := make(chan error, 1)
	go func() { _, err := e.d.Tick(context.Background()); done <- err }()
	waitFor(t, r2.arrived)
	if _, err := e.d.Holder().Erase(context.Background(), privacy.Person{Profiles: []string{"prof_1"}}); err != nil {
		t.Fatal(err)
	}
	g2.release()
	if err := <-done; err != nil {
		t.Fatalf("tick: %v", err)
	}
	assertNothingAbout(t, e, dest.ID)
}

// collect exports a person and returns the count per kind and the items.
func collect(t *testing.T, h privacy.Holder, p privacy.Person) (map[string]int, []string) {
	t.Helper()
	counts := map[string]int{}
	var items []string
	err := h.Export(context.Background(), p, func(kind string, item any) error {
		counts[kind]++
		b, err := json.Marshal(item)
		items = append(items, kind+" "+string(b))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return counts, items
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestDeliveriesHolderExportEqualsErase: the deliveries holder exports every delivery about the
// person's profiles (status, attempts, timestamps, payload), their retry-queue entries and their
// dead letters, and erases exactly that — the same kinds and counts — leaving other people's
// deliveries alone; erasing again erases nothing.
func TestDeliveriesHolderExportEqualsErase(t *testing.T) {
	e := newEnv(t, webhook.Policy{AllowLoopback: true})
	ok, failing, refusing := newReceiver(t), newReceiver(t), newReceiver(t)
	failing.status = func(int) int { return 503 }
	refusing.status = func(int) int { return 400 }
	subs := destination.Subscriptions{Audiences: []string{"*"}, Traits: []string{"*"}, Events: []destination.EventFilter{{Type: "track"}}}
	d1 := e.dest(ok, destination.Spec{Name: "ok", Subscriptions: subs})
	d2 := e.dest(failing, destination.Spec{Name: "failing", Subscriptions: subs})
	d3 := e.dest(refusing, destination.Spec{Name: "refusing", Subscriptions: subs, ConsentCategories: []string{"advertising"}})
	merged := audienceRecord("aud-prof_old-1", activations.KindAudienceEntered)
	merged.ProfileID = "prof_old"
	other := audienceRecord("aud-prof_2-1", activations.KindAudienceEntered)
	other.ProfileID, other.Email = "prof_2", "bob@example.com"
	traits := activations.Record{ID: "ct-prof_1-1", Kind: activations.KindTraitsChanged, ProfileID: "prof_1", Email: "ada@example.com",
		Traits: map[string]json.RawMessage{"ltv": json.RawMessage(`42`)}}
	e.handle(kinesisEvent(t, audienceRecord("aud-prof_1-1", activations.KindAudienceEntered), traits,
		eventRecord("m1", "prof_1", prefsCtx(false)), merged, other))

	ann := privacy.Person{Profiles: []string{"prof_1", "prof_old"}}
	exported, items := collect(t, e.d.Holder(), ann)
	// 4 records about Ann × 3 destinations; d2 queued 4 for a retry (the event to d3 was
	// filtered by consent), d3 dead-lettered 3.
	want := map[string]int{KindDeliveries: 12, KindRetryQueue: 4, KindDestinationDeadLetters: 3}
	if !equalCounts(exported, want) {
		t.Fatalf("export counts %v, want %v", exported, want)
	}
	all := strings.Join(items, "\n")
	for _, s := range []string{`"status":"retrying"`, `"status":"dead"`, `"status":"delivered"`, `"status":"filtered_consent"`,
		`ada@example.com`, `"attempts":1`, `"createdAt"`, `"payload":{`} {
		if !strings.Contains(all, s) {
			t.Errorf("export lacks %s:\n%s", s, all)
		}
	}
	if strings.Contains(all, "bob@example.com") || strings.Contains(all, "prof_2") {
		t.Errorf("export holds another person's data:\n%s", all)
	}
	erased, err := e.d.Holder().Erase(context.Background(), ann)
	if err != nil || !equalCounts(erased, exported) {
		t.Fatalf("erase %v %v, want the export's counts %v", erased, err, exported)
	}
	if again, err := e.d.Holder().Erase(context.Background(), ann); err != nil || len(again) != 0 {
		t.Fatalf("erase again: %v %v", again, err)
	}
	if left, _ := collect(t, e.d.Holder(), ann); len(left) != 0 {
		t.Fatalf("left after erase: %v", left)
	}
	if bob, _ := collect(t, e.d.Holder(), privacy.Person{Profiles: []string{"prof_2"}}); !equalCounts(bob,
		map[string]int{KindDeliveries: 3, KindRetryQueue: 1, KindDestinationDeadLetters: 1}) {
		t.Fatalf("another person's deliveries were touched: %v", bob)
	}
	due, _ := e.d.queue.Due(context.Background(), e.clock.Now().Add(48*time.Hour), 100)
	if len(due) != 1 || due[0].RecordID != other.ID {
		t.Fatalf("queue after erase: %+v", due)
	}
	_, _ = d1, d2
	if dls, _, _ := e.d.DeadLetters(context.Background(), d3.ID, 10, ""); len(dls) != 1 || dls[0].RecordID != other.ID {
		t.Fatalf("dead letters after erase: %+v", dls)
	}
}

// TestPrivacyNotice: Notify sends one signed Privacy Request webhook to each enabled destination
// subscribed to privacy notices — Standard Webhooks (verified with the reference library) or
// the legacy X-Signature — with a stable webhook-id and the documented body; a 5xx is failed
// (retryable), a 4xx dead; nothing is stored.
func TestPrivacyNotice(t *testing.T) {
	e := newEnv(t, webhook.Policy{AllowLoopback: true})
	std, legacy, unsubscribed, down, refusing := newReceiver(t), newReceiver(t), newReceiver(t), newReceiver(t), newReceiver(t)
	down.status = func(int) int { return 503 }
	refusing.status = func(int) int { return 403 }
	priv := destination.Subscriptions{Privacy: true}
	dStd := e.dest(std, destination.Spec{Name: "std", Subscriptions: priv})
	dLegacy := e.dest(legacy, destination.Spec{Name: "legacy", Subscriptions: priv, Signing: webhook.ModeSegment, Secret: "legacy-secret-0123456789"})
	legacy.secret = "" // verified below by X-Signature
	e.dest(unsubscribed, destination.Spec{Name: "unsubscribed"})
	dDown := e.dest(down, destination.Spec{Name: "down", Subscriptions: priv})
	dRefusing := e.dest(refusing, destination.Spec{Name: "refusing", Subscriptions: priv})
	disabled := e.dest(newReceiver(t), destination.Spec{Name: "disabled", Subscriptions: priv})
	if err := e.dests.Disable(context.Background(), disabled.ID, "test"); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	n := privacy.Notice{RequestID: "prq_1", Type: privacy.TypeDelete, Identifiers: []string{"email:ann@example.com", "user_id:u1"}, At: at}
	for range 2 {
		outs, err := e.d.Notify(context.Background(), n)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, o := range outs {
			got[o.DestinationID] = o.Status
			if strings.Contains(o.Error, "ann") {
				t.Errorf("outcome error quotes an identifier: %q", o.Error)
			}
		}
		want := map[string]string{dStd.ID: NoticeDelivered, dLegacy.ID: NoticeDelivered, dDown.ID: NoticeFailed, dRefusing.ID: NoticeDead}
		if !equalMaps(got, want) {
			t.Fatalf("outcomes %v, want %v", got, want)
		}
	}
	if len(unsubscribed.requests()) != 0 {
		t.Fatal("a destination not subscribed to privacy notices got one")
	}
	reqs := std.requests()
	if len(reqs) != 2 || reqs[0].header.Get("webhook-id") != "privacy-prq_1" || reqs[1].header.Get("webhook-id") != "privacy-prq_1" {
		t.Fatalf("webhook-id not stable: %d requests", len(reqs))
	}
	wantBody := `{"type":"privacy_request","requestId":"prq_1","requestType":"delete","identifiers":[{"type":"email","value":"ann@example.com"},{"type":"user_id","value":"u1"}],"timestamp":"2026-11-30T12:00:00Z"}`
	if string(reqs[0].body) != wantBody {
		t.Fatalf("body %s\nwant %s", reqs[0].body, wantBody)
	}
	lg := legacy.requests()
	if len(lg) != 2 || lg[0].header.Get(webhook.HeaderXSignature) != webhook.SegmentSignature("legacy-secret-0123456789", lg[0].body) {
		t.Fatalf("legacy signature: %v", lg)
	}
	for _, d := range []destination.Destination{dStd, dLegacy, dDown, dRefusing} {
		if log, _, _ := e.d.Deliveries(context.Background(), d.ID, 10, ""); len(log) != 0 {
			t.Errorf("%s: a notice was stored: %+v", d.Name, log)
		}
		if dls, _, _ := e.d.DeadLetters(context.Background(), d.ID, 10, ""); len(dls) != 0 {
			t.Errorf("%s: a notice was dead-lettered", d.Name)
		}
	}
}

// TestRetrierSkipsErasedProfiles: a queued retry about a profile that was erased meanwhile is
// not attempted by the retrier (the erase removes it).
func TestRetrierSkipsErasedProfiles(t *testing.T) {
	erased := erasedSet{}
	e := newEnvWith(t, func(c *Config) { c.Erased = erased })
	r := newReceiver(t)
	r.status = func(int) int { return 503 }
	dest := e.dest(r, destination.Spec{})
	e.handle(kinesisEvent(t, audienceRecord("aud-prof_1-1", activations.KindAudienceEntered)))
	del, err := e.d.Delivery(context.Background(), dest.ID, "aud-prof_1-1")
	if err != nil || del.Status != StatusRetrying || len(r.requests()) != 1 {
		t.Fatalf("not queued: %+v %v", del, err)
	}
	erased["prof_1"] = true
	e.clock.Set(del.NextAttemptAt.Add(time.Second))
	res, err := e.d.Tick(context.Background())
	if err != nil || res.Dropped != 1 || len(r.requests()) != 1 {
		t.Fatalf("tick attempted an erased profile's message: %+v %v, %d requests", res, err, len(r.requests()))
	}
}
