package activation

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// runStoreConformance checks the semantics the Deliverer relies on, for any Store: a delivery
// created once per (record, destination) even when seen twice; leases and outcomes conditional
// on the version (a stale writer changes nothing); outcomes moving the delivery between the
// queue and the dead letters atomically; due-time queries earliest first with a limit;
// redrive; newest-first log and paging; counters; refusal of oversized keys.
func runStoreConformance(t *testing.T, newStore func(t *testing.T) Store) {
	for name, f := range map[string]func(*testing.T, Store){
		"create once":             confCreateOnce,
		"refuses oversized keys":  confRefused,
		"lease is conditional":    confLease,
		"stale outcome loses":     confStaleFinish,
		"queue due times":         confQueue,
		"dead letter and redrive": confDeadAndRedrive,
		"log and paging":          confPaging,
		"counters":                confCounters,
		"filtered is final":       confFiltered,
		"personal data by prefix": confPersonalData,
		"outcome after erase":     confOutcomeAfterErase,
	} {
		t.Run(name, func(t *testing.T) { f(t, newStore(t)) })
	}
}

var confT0 = time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)

// confExpires is when the deliveries the suite finishes expire: in the future of the wall clock,
// because DynamoDB Local, like DynamoDB, deletes items whose TTL has passed in the background
// (an expiry of confT0+1h made a delivered item vanish mid-test in CI).
var confExpires = time.Now().Add(30 * 24 * time.Hour)

func confNew(dest, rec string) Delivery {
	return Delivery{DestinationID: dest, RecordID: rec, WebhookID: WebhookID(rec, dest), Kind: "audience_entered",
		Status: StatusInflight, Version: 1, LeaseUntil: confT0.Add(time.Minute), CreatedAt: confT0, UpdatedAt: confT0}
}

// confLeased creates a delivery and returns it as its claimant holds it (version 1).
func confLeased(t *testing.T, st Store, dest, rec string) Delivery {
	t.Helper()
	if ok, err := st.Create(context.Background(), confNew(dest, rec)); !ok || err != nil {
		t.Fatalf("create %s/%s: %v %v", dest, rec, ok, err)
	}
	return confNew(dest, rec)
}

func confFinish(t *testing.T, st Store, d Delivery, status string, at time.Time, mut func(*Transition)) {
	t.Helper()
	tr := Transition{DestID: d.DestinationID, RecordID: d.RecordID, WebhookID: d.WebhookID, Kind: d.Kind, Version: d.Version,
		FromQueue: d.QueueRef, Status: status, Attempts: d.Attempts + 1, Retries: d.Retries, LastStatus: 500, LastError: "HTTP 500",
		At: at, Body: json.RawMessage(`{"messageId":"` + d.RecordID + `"}`), NextAt: at.Add(time.Minute), ExpiresAt: confExpires}
	if mut != nil {
		mut(&tr)
	}
	if err := st.Finish(context.Background(), tr); err != nil {
		t.Fatalf("finish %s/%s %s: %v", d.DestinationID, d.RecordID, status, err)
	}
}

func confGet(t *testing.T, st Store, dest, rec string) Delivery {
	t.Helper()
	d, ok, err := st.Delivery(context.Background(), dest, rec)
	if err != nil || !ok {
		t.Fatalf("get %s/%s: %v %v", dest, rec, ok, err)
	}
	return d
}

func confCreateOnce(t *testing.T, st Store) {
	ctx := context.Background()
	if _, ok, err := st.Delivery(ctx, "d1", "r1"); ok || err != nil {
		t.Fatalf("unknown delivery: %v %v", ok, err)
	}
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 4 { // the same record seen by concurrent invocations: one creates it
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := st.Create(ctx, confNew("d1", "r1"))
			if err != nil {
				t.Error(err)
			}
			if ok {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d creates of one delivery succeeded", wins.Load())
	}
	d := confGet(t, st, "d1", "r1")
	if d.Status != StatusInflight || d.Version != 1 || d.WebhookID != WebhookID("r1", "d1") || !d.LeaseUntil.Equal(confT0.Add(time.Minute)) ||
		d.Attempts != 0 || d.QueueRef != "" || d.NextAttemptAt != nil || !d.CreatedAt.Equal(confT0) {
		t.Fatalf("created: %+v", d)
	}
	if ok, err := st.Create(ctx, confNew("d2", "r1")); !ok || err != nil {
		t.Fatalf("same record, other destination: %v %v", ok, err)
	}
}

func confRefused(t *testing.T, st Store) {
	_, err := st.Create(context.Background(), confNew("d1", strings.Repeat("x", 2000)))
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("a 2000-byte record id: %v, want ErrRefused", err)
	}
}

func confLease(t *testing.T, st Store) {
	ctx := context.Background()
	confLeased(t, st, "d1", "r1")
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 4 { // takeovers racing on one version: one wins
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := st.Lease(ctx, "d1", "r1", 1, confT0.Add(time.Hour), confT0)
			if err != nil {
				t.Error(err)
			}
			if ok {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d leases on one version succeeded", wins.Load())
	}
	if d := confGet(t, st, "d1", "r1"); d.Version != 2 || d.Status != StatusInflight || !d.LeaseUntil.Equal(confT0.Add(time.Hour)) {
		t.Fatalf("after lease: %+v", d)
	}
	if ok, err := st.Lease(ctx, "d1", "nope", 1, confT0, confT0); ok || err != nil {
		t.Fatalf("lease of an unknown delivery: %v %v", ok, err)
	}
}

func confStaleFinish(t *testing.T, st Store) {
	ctx := context.Background()
	d := confLeased(t, st, "d1", "r1")
	if ok, _ := st.Lease(ctx, "d1", "r1", 1, confT0.Add(time.Hour), confT0); !ok {
		t.Fatal("lease")
	}
	err := st.Finish(ctx, Transition{DestID: "d1", RecordID: "r1", Version: d.Version, Status: StatusDead, Attempts: 1,
		LastError: "x", At: confT0, Body: json.RawMessage(`{}`)})
	if !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("outcome under a lost lease: %v", err)
	}
	if _, err := st.DeadLetter(ctx, "d1", "r1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a stale outcome left a dead letter: %v", err)
	}
	if got := confGet(t, st, "d1", "r1"); got.Status != StatusInflight || got.Version != 2 {
		t.Fatalf("a stale outcome changed the delivery: %+v", got)
	}
	// Two claimants recording outcomes of the same lease: one wins, the other changes nothing.
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i, status := range []string{StatusDelivered, StatusDead} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := st.Finish(ctx, Transition{DestID: "d1", RecordID: "r1", Version: 2, Status: status, Attempts: i + 1,
				At: confT0, Body: json.RawMessage(`{}`), ExpiresAt: confExpires})
			switch {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, ErrLeaseLost):
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got := confGet(t, st, "d1", "r1")
	_, dlErr := st.DeadLetter(ctx, "d1", "r1")
	if wins.Load() != 1 || got.Version != 3 || (got.Status == StatusDead) != (dlErr == nil) {
		t.Fatalf("racing outcomes: %d won, %+v, dead letter %v", wins.Load(), got, dlErr)
	}
}

func confQueue(t *testing.T, st Store) {
	ctx := context.Background()
	for i, rec := range []string{"r3", "r1", "r2"} { // due at t0+1m, +2m, +3m in record order
		d := confLeased(t, st, "d1", rec)
		due := map[string]time.Duration{"r1": time.Minute, "r2": 2 * time.Minute, "r3": 3 * time.Minute}[rec]
		confFinish(t, st, d, StatusRetrying, confT0.Add(time.Duration(i)*time.Second), func(tr *Transition) {
			tr.NextAt, tr.Retries = confT0.Add(due), 1
		})
	}
	if es, err := st.Due(ctx, confT0.Add(59*time.Second), 10); err != nil || len(es) != 0 {
		t.Fatalf("due before the first retry: %+v %v", es, err)
	}
	es, err := st.Due(ctx, confT0.Add(2*time.Minute), 10)
	if err != nil || len(es) != 2 || es[0].RecordID != "r1" || es[1].RecordID != "r2" || !es[0].Due.Equal(confT0.Add(time.Minute)) {
		t.Fatalf("due at +2m: %+v %v", es, err)
	}
	if es, _ := st.Due(ctx, confT0.Add(time.Hour), 1); len(es) != 1 || es[0].RecordID != "r1" {
		t.Fatalf("limit 1: %+v", es)
	}
	d := confGet(t, st, "d1", "r1")
	if d.Status != StatusRetrying || d.QueueRef != es[0].Ref || d.Retries != 1 || d.NextAttemptAt == nil ||
		!d.NextAttemptAt.Equal(confT0.Add(time.Minute)) || string(d.Body) != `{"messageId":"r1"}` {
		t.Fatalf("queued delivery: %+v", d)
	}
	// Tick takes it over and delivers: the entry leaves the queue with the outcome.
	if ok, err := st.Lease(ctx, "d1", "r1", d.Version, confT0.Add(time.Hour), confT0); !ok || err != nil {
		t.Fatalf("lease: %v %v", ok, err)
	}
	d.Version++
	confFinish(t, st, d, StatusDelivered, confT0.Add(2*time.Minute), nil)
	if es, _ = st.Due(ctx, confT0.Add(time.Hour), 10); len(es) != 2 || es[0].RecordID != "r2" {
		t.Fatalf("after delivery: %+v", es)
	}
	if got := confGet(t, st, "d1", "r1"); got.Status != StatusDelivered || got.QueueRef != "" || len(got.Body) != 0 ||
		got.NextAttemptAt != nil || got.Attempts != 2 || got.Version != d.Version+1 {
		t.Fatalf("delivered: %+v", got)
	}
	if err := st.Dequeue(ctx, es[0]); err != nil {
		t.Fatal(err)
	}
	if err := st.Dequeue(ctx, es[0]); err != nil {
		t.Fatalf("dequeue twice: %v", err)
	}
	if es, _ := st.Due(ctx, confT0.Add(time.Hour), 10); len(es) != 1 || es[0].RecordID != "r3" {
		t.Fatalf("after dequeue: %+v", es)
	}
	// A retry due at the very instant of the entry it leaves (a fake clock that did not move, a
	// requeue "due at once") has the same queue key: it replaces the entry, never fails.
	r3 := confGet(t, st, "d1", "r3")
	if ok, err := st.Lease(ctx, "d1", "r3", r3.Version, confT0.Add(time.Hour), confT0); !ok || err != nil {
		t.Fatalf("lease r3: %v %v", ok, err)
	}
	r3.Version++
	confFinish(t, st, r3, StatusRetrying, confT0, func(tr *Transition) {
		tr.FromQueue, tr.NextAt, tr.Retries = r3.QueueRef, *r3.NextAttemptAt, 2
	})
	if es, _ := st.Due(ctx, confT0.Add(time.Hour), 10); len(es) != 1 || es[0].RecordID != "r3" || es[0].Ref != r3.QueueRef {
		t.Fatalf("requeued at the same instant: %+v", es)
	}
}

func confDeadAndRedrive(t *testing.T, st Store) {
	ctx := context.Background()
	d := confLeased(t, st, "d1", "r1")
	confFinish(t, st, d, StatusDead, confT0, func(tr *Transition) { tr.Attempts, tr.LastStatus = 3, 400 })
	dl, err := st.DeadLetter(ctx, "d1", "r1")
	if err != nil || dl.Attempts != 3 || dl.LastStatus != 400 || dl.LastError != "HTTP 500" || string(dl.Payload) != `{"messageId":"r1"}` ||
		dl.WebhookID != WebhookID("r1", "d1") || dl.Kind != "audience_entered" || !dl.DeadAt.Equal(confT0) {
		t.Fatalf("dead letter: %+v %v", dl, err)
	}
	if _, err := st.DeadLetter(ctx, "d1", "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown dead letter: %v", err)
	}
	dead := confGet(t, st, "d1", "r1")
	stale := dead
	stale.Version--
	if err := st.Redrive(ctx, stale, confT0); !errors.Is(err, ErrNotDead) {
		t.Fatalf("redrive of a stale version: %v", err)
	}
	at := confT0.Add(time.Hour)
	if err := st.Redrive(ctx, dead, at); err != nil {
		t.Fatal(err)
	}
	if err := st.Redrive(ctx, dead, at); !errors.Is(err, ErrNotDead) {
		t.Fatalf("redrive twice: %v", err)
	}
	if dls, _, _ := st.DeadLetters(ctx, "d1", 10, ""); len(dls) != 0 {
		t.Fatalf("dead letters after redrive: %+v", dls)
	}
	got := confGet(t, st, "d1", "r1")
	es, _ := st.Due(ctx, at, 10)
	if got.Status != StatusRetrying || got.Retries != 0 || got.Attempts != 3 || got.NextAttemptAt == nil || len(es) != 1 || es[0].Ref != got.QueueRef {
		t.Fatalf("redriven: %+v, due %+v", got, es)
	}
}

func confPaging(t *testing.T, st Store) {
	ctx := context.Background()
	for i := range 5 {
		rec := fmt.Sprintf("r%d", i)
		confFinish(t, st, confLeased(t, st, "d1", rec), StatusDead, confT0.Add(time.Duration(i)*time.Second), nil)
	}
	confLeased(t, st, "d1", "r9") // claimed, no outcome yet: not in the log
	var log []string
	var dead []string
	next, nextDead := "", ""
	for page := 0; page < 5; page++ {
		ds, n, err := st.Deliveries(ctx, "d1", 2, next)
		if err != nil || len(ds) > 2 {
			t.Fatalf("log page %d: %d %v", page, len(ds), err)
		}
		for _, d := range ds {
			log = append(log, d.RecordID)
		}
		dls, nd, err := st.DeadLetters(ctx, "d1", 2, nextDead)
		if err != nil || len(dls) > 2 {
			t.Fatalf("dead letter page %d: %d %v", page, len(dls), err)
		}
		for _, dl := range dls {
			dead = append(dead, dl.RecordID)
		}
		if next, nextDead = n, nd; next == "" && nextDead == "" {
			break
		}
	}
	if strings.Join(log, ",") != "r4,r3,r2,r1,r0" {
		t.Fatalf("log over pages of 2, newest first: %v", log)
	}
	if strings.Join(dead, ",") != "r0,r1,r2,r3,r4" {
		t.Fatalf("dead letters over pages of 2: %v", dead)
	}
	if _, _, err := st.Deliveries(ctx, "d1", 2, "not-a-token!"); !errors.Is(err, ErrBadPage) {
		t.Fatalf("bad token: %v", err)
	}
	if _, _, err := st.DeadLetters(ctx, "d1", 2, "not-a-token!"); !errors.Is(err, ErrBadPage) {
		t.Fatalf("bad token: %v", err)
	}
}

func confCounters(t *testing.T, st Store) {
	ctx := context.Background()
	if s, err := st.Stats(ctx, "d1"); err != nil || s != (Stats{}) {
		t.Fatalf("no counters yet: %+v %v", s, err)
	}
	for _, c := range []string{"delivered", "delivered", "retried", "deadLettered", "redriven", "filteredConsent", "droppedErased"} {
		if err := st.Count(ctx, "d1", c); err != nil {
			t.Fatal(err)
		}
	}
	if s, _ := st.Stats(ctx, "d1"); s != (Stats{Delivered: 2, Retried: 1, DeadLettered: 1, Redriven: 1, FilteredConsent: 1, DroppedErased: 1}) {
		t.Fatalf("stats %+v", s)
	}
}

// confFiltered: a delivery created filtered_consent is final and in the log at once; created
// again, it is the same one.
func confFiltered(t *testing.T, st Store) {
	ctx := context.Background()
	d := confNew("d1", "r1")
	d.Status, d.ExpiresAt = StatusFilteredConsent, confExpires
	for i, want := range []bool{true, false} {
		if created, err := st.Create(ctx, d); created != want || err != nil {
			t.Fatalf("create %d: %v %v", i, created, err)
		}
	}
	log, _, err := st.Deliveries(ctx, "d1", 10, "")
	if err != nil || len(log) != 1 || log[0].Status != StatusFilteredConsent || log[0].Attempts != 0 {
		t.Fatalf("log %+v %v", log, err)
	}
}

// confPersonalData: deliveries are found by record id prefix (only that destination's, only
// that prefix's — "aud-p1-" does not find "aud-p10-…"), payloads included; erasing one deletes
// it with its queue entry and dead letter and says which existed; erasing again finds nothing.
func confPersonalData(t *testing.T, st Store) {
	ctx := context.Background()
	confLeased(t, st, "d1", "aud-p1-a") // inflight
	confFinish(t, st, confLeased(t, st, "d1", "aud-p1-b"), StatusRetrying, confT0, nil)
	confFinish(t, st, confLeased(t, st, "d1", "aud-p1-c"), StatusDead, confT0, nil)
	confFinish(t, st, confLeased(t, st, "d1", "aud-p10-a"), StatusDead, confT0, nil)
	confFinish(t, st, confLeased(t, st, "d2", "aud-p1-z"), StatusDelivered, confT0, nil)
	confLeased(t, st, "d1", "ct-p1-a")
	ds, err := st.ProfileDeliveries(ctx, "d1", "aud-p1-")
	if err != nil || len(ds) != 3 {
		t.Fatalf("by prefix: %+v %v", ds, err)
	}
	want := map[string]Erased{"aud-p1-a": {Delivery: true}, "aud-p1-b": {Delivery: true, QueueEntry: true},
		"aud-p1-c": {Delivery: true, DeadLetter: true}}
	for _, d := range ds {
		if d.Status != StatusInflight && string(d.Body) != `{"messageId":"`+d.RecordID+`"}` {
			t.Errorf("%s: payload %s", d.RecordID, d.Body)
		}
		e, err := st.EraseDelivery(ctx, d)
		if err != nil || e != want[d.RecordID] {
			t.Errorf("erase %s: %+v %v, want %+v", d.RecordID, e, err, want[d.RecordID])
		}
		if e, err := st.EraseDelivery(ctx, d); err != nil || e != (Erased{}) {
			t.Errorf("erase %s again: %+v %v", d.RecordID, e, err)
		}
	}
	if ds, _ := st.ProfileDeliveries(ctx, "d1", "aud-p1-"); len(ds) != 0 {
		t.Fatalf("left: %+v", ds)
	}
	if due, _ := st.Due(ctx, confT0.Add(time.Hour), 10); len(due) != 0 {
		t.Fatalf("queue entries left: %+v", due)
	}
	if dls, _, _ := st.DeadLetters(ctx, "d1", 10, ""); len(dls) != 1 || dls[0].RecordID != "aud-p10-a" {
		t.Fatalf("dead letters: %+v", dls)
	}
	for _, k := range [][2]string{{"d1", "aud-p10-a"}, {"d2", "aud-p1-z"}, {"d1", "ct-p1-a"}} {
		confGet(t, st, k[0], k[1])
	}
}

// confOutcomeAfterErase: an outcome written for a delivery erased meanwhile is ErrGone and
// writes nothing (no delivery, queue entry or dead letter comes back).
func confOutcomeAfterErase(t *testing.T, st Store) {
	ctx := context.Background()
	for _, status := range []string{StatusRetrying, StatusDead, StatusDelivered} {
		rec := "aud-p1-" + status
		d := confLeased(t, st, "d1", rec)
		if _, err := st.EraseDelivery(ctx, d); err != nil {
			t.Fatal(err)
		}
		err := st.Finish(ctx, Transition{DestID: "d1", RecordID: rec, Version: d.Version, Status: status, Attempts: 1,
			At: confT0, Body: json.RawMessage(`{}`), NextAt: confT0, ExpiresAt: confExpires})
		if !errors.Is(err, ErrGone) {
			t.Fatalf("%s after erase: %v", status, err)
		}
		if _, found, _ := st.Delivery(ctx, "d1", rec); found {
			t.Fatalf("%s: the delivery came back", status)
		}
	}
	if due, _ := st.Due(ctx, confT0.Add(time.Hour), 10); len(due) != 0 {
		t.Fatalf("queue entries: %+v", due)
	}
	if dls, _, _ := st.DeadLetters(ctx, "d1", 10, ""); len(dls) != 0 {
		t.Fatalf("dead letters: %+v", dls)
	}
	// A stale version on a delivery that exists stays ErrLeaseLost.
	d := confLeased(t, st, "d1", "r-stale")
	confFinish(t, st, d, StatusRetrying, confT0, nil)
	if err := st.Finish(ctx, Transition{DestID: "d1", RecordID: "r-stale", Version: d.Version, Status: StatusDelivered, At: confT0}); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("stale: %v", err)
	}
}

// runBadRecordsConformance checks BadRecords: data of any size kept whole and shown as a JSON
// string of its base64; the same kind and data kept twice is one entry with the latest reason;
// listing pages; unknown ids are ErrNotFound.
func runBadRecordsConformance(t *testing.T, newBad func(t *testing.T) BadRecords) {
	st := newBad(t)
	ctx := context.Background()
	big := []byte(strings.Repeat("{not json ", 100<<10)) // 1 MB: over a DynamoDB item
	for _, k := range []struct{ kind, key, data, reason string }{
		{KindRecord, "seq:1", "{not json", "decode: bad"},
		{KindRecord, "seq:1", "{not json", "decode: again"},
		{KindRecord, "seq:2", string(big), "too big"},
		{KindMessage, "job:x", `{"a":1}`, "refused"},
	} {
		if err := st.Keep(ctx, k.kind, k.key, []byte(k.data), k.reason, confT0); err != nil {
			t.Fatalf("keep %s: %v", k.key, err)
		}
	}
	var all []DeadLetter
	next := ""
	for range 4 {
		page, n, err := st.List(ctx, 2, next)
		if err != nil || len(page) > 2 {
			t.Fatalf("list: %d %v", len(page), err)
		}
		all, next = append(all, page...), n
		if next == "" {
			break
		}
	}
	if len(all) != 3 {
		t.Fatalf("kept %d entries, want 3 (the same data twice is one)", len(all))
	}
	found := map[string]bool{}
	for _, dl := range all {
		got, err := st.Get(ctx, dl.RecordID)
		var b64 string
		if err != nil || json.Unmarshal(got.Payload, &b64) != nil || got.DestinationID != UndecodableDestination {
			t.Fatalf("get %s: %+v %v", dl.RecordID, got, err)
		}
		raw, _ := base64.StdEncoding.DecodeString(b64)
		found[string(raw[:min(len(raw), 9)])+"/"+got.LastError] = true
		if got.LastError == "too big" && string(raw) != string(big) {
			t.Fatalf("a %d-byte record kept as %d bytes", len(big), len(raw))
		}
	}
	for _, want := range []string{"{not json/decode: again", "{not json/too big", `{"a":1}/refused`} {
		if !found[want] {
			t.Fatalf("missing %q among %v", want, found)
		}
	}
	if _, err := st.Get(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown kept record: %v", err)
	}
}

func TestMemStoreConformance(t *testing.T) {
	runStoreConformance(t, func(*testing.T) Store { return NewMemStore() })
}

func TestMemBadRecordsConformance(t *testing.T) {
	runBadRecordsConformance(t, func(*testing.T) BadRecords { return NewMemBadRecords() })
}
