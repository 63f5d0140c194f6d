package identity

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/change"
	"github.com/serverless-cdp/cdp/internal/consent"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

func consentCtx(prefs string) string { return `{"consent":{"categoryPreferences":` + prefs + `}}` }

func granted(t *testing.T, p *Profile) map[string]bool {
	t.Helper()
	if p.Consent == nil {
		return nil
	}
	return p.Consent.Preferences()
}

// changesOf processes records and returns the change record of the profile holding id.
func (e *env) changesOf(t *testing.T, recs ...tracking.Record) []change.Record {
	t.Helper()
	res, chs, err := e.proc.Process(context.Background(), recs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Outcome != Processed {
			t.Fatalf("record %d: %v %v", i, r.Outcome, r.Err)
		}
	}
	return chs
}

func TestConsentNewestByTimestampWins(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		e := b.newEnv(t, nil)
		e.process(t, rec("identify", "c1", 5, f{"uid": "u1", "ctx": consentCtx(`{"advertising":true,"analytics":false}`)}))
		e.process(t, rec("track", "c2", 3, f{"uid": "u1", "event": "E", "ctx": consentCtx(`{"advertising":false,"email":true}`)}))
		p := e.byID(t, "user_id:u1")
		if g := granted(t, p); len(g) != 3 || !g["advertising"] || g["analytics"] || !g["email"] {
			t.Fatalf("an older event must not overwrite a newer preference: %v", g)
		}
		if at := p.Consent.Categories["advertising"].At; !at.Equal(t0.Add(5 * time.Minute)) {
			t.Fatalf("advertising set at %v", at)
		}
		e.process(t, rec("track", "c3", 10, f{"uid": "u1", "event": "E", "ctx": consentCtx(`{"advertising":false}`)}),
			rec("track", "c4", 11, f{"uid": "u1", "event": "E", "ctx": `{"library":{"name":"x"}}`}))
		if g := granted(t, e.byID(t, "user_id:u1")); g["advertising"] || len(g) != 3 {
			t.Fatalf("a newer event wins; one without preferences changes nothing: %v", g)
		}
	})
}

func TestConsentMergesNewestPerCategory(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		e := b.newEnv(t, nil)
		e.process(t, rec("page", "a1", 1, f{"aid": "a1", "ctx": consentCtx(`{"advertising":true,"analytics":true}`)}),
			rec("track", "b1", 2, f{"uid": "u1", "event": "E", "ctx": consentCtx(`{"advertising":false}`)}),
			rec("track", "b0", 0, f{"uid": "u1", "event": "E", "ctx": consentCtx(`{"analytics":false,"email":true}`)}))
		chs := e.changesOf(t, rec("identify", "m", 3, f{"uid": "u1", "aid": "a1"}))
		p := e.byID(t, "anonymous_id:a1")
		want := consent.Preferences{"advertising": false, "analytics": true, "email": true}
		if g := granted(t, p); len(g) != 3 || g["advertising"] != want["advertising"] || g["analytics"] != want["analytics"] || g["email"] != want["email"] {
			t.Fatalf("merged consent %v, want %v", g, want)
		}
		if len(chs) != 1 || chs[0].Consent == nil || len(chs[0].Consent.Preferences()) != 3 || chs[0].Consent.Preferences()["advertising"] {
			t.Fatalf("merge change record consent: %+v", chs)
		}
	})
}

func TestConsentInChangeRecords(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		e := b.newEnv(t, nil)
		chs := e.changesOf(t, rec("identify", "n1", 0, f{"uid": "u1", "traits": `{"plan":"pro"}`, "ctx": consentCtx(`{"advertising":true}`)}))
		if len(chs) != 1 || chs[0].Consent == nil || !chs[0].Consent.Preferences()["advertising"] {
			t.Fatalf("new profile: %+v", chs)
		}
		// Neither traits nor consent changed: no consent (a consumer keeps its copy).
		chs = e.changesOf(t, rec("track", "n2", 1, f{"uid": "u1", "event": "E"}))
		if len(chs) != 1 || chs[0].Traits != nil || chs[0].Consent != nil {
			t.Fatalf("unchanged: traits %v consent %+v", chs[0].Traits, chs[0].Consent)
		}
		// The same preference again at a later time changes no decision: still none.
		chs = e.changesOf(t, rec("track", "n3", 2, f{"uid": "u1", "event": "E", "ctx": consentCtx(`{"advertising":true}`)}))
		if chs[0].Traits != nil || chs[0].Consent != nil {
			t.Fatalf("same decision again: traits %v consent %+v", chs[0].Traits, chs[0].Consent)
		}
		if at := e.byID(t, "user_id:u1").Consent.Categories["advertising"].At; !at.Equal(t0.Add(2 * time.Minute)) {
			t.Fatalf("the profile keeps the newest time: %v", at)
		}
		// Consent changed, traits did not: consent without traits.
		chs = e.changesOf(t, rec("track", "n4", 3, f{"uid": "u1", "event": "E", "ctx": consentCtx(`{"advertising":false}`)}))
		if chs[0].Traits != nil || chs[0].Consent == nil || chs[0].Consent.Preferences()["advertising"] {
			t.Fatalf("consent change: traits %v consent %+v", chs[0].Traits, chs[0].Consent)
		}
		// Traits changed, consent did not: the current consent goes along.
		chs = e.changesOf(t, rec("identify", "n5", 4, f{"uid": "u1", "traits": `{"plan":"team"}`}))
		if chs[0].Traits == nil || chs[0].Consent == nil || chs[0].Consent.Preferences()["advertising"] {
			t.Fatalf("trait change: traits %v consent %+v", chs[0].Traits, chs[0].Consent)
		}
	})
}

// A retried batch is processed record by record and its change records folded again: a
// consent change in one record still reaches the profile's one change record.
func TestConsentSurvivesRecordByRecordFolding(t *testing.T) {
	eachHandlerBackend(t, func(t *testing.T, open func(t *testing.T, f fault, cfg HandlerConfig, opt Options) handlerEnv) {
		e := open(t, fault{}, HandlerConfig{}, Options{})
		ctx := context.Background()
		if _, err := e.handler().Handle(ctx, kinesisEvent(t, rec("identify", "r0", 0, f{"uid": "u"}))); err != nil {
			t.Fatal(err)
		}
		first := rec("track", "r1", 1, f{"uid": "u", "event": "E", "ctx": consentCtx(`{"advertising":true}`)})
		if _, err := e.handler().cfg.Store.CountAttempt(ctx, first.SourceID, first.Message.MessageID); err != nil {
			t.Fatal(err)
		}
		resp, err := e.handler().Handle(ctx, kinesisEvent(t, first, rec("track", "r2", 2, f{"uid": "u", "event": "E"})))
		if err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("handle: %v %+v", err, resp)
		}
		recs := e.published(t, 2)
		var last change.Record
		if err := json.Unmarshal(recs[len(recs)-1], &last); err != nil {
			t.Fatal(err)
		}
		if len(last.Events) != 2 || last.Consent == nil || !last.Consent.Preferences()["advertising"] {
			t.Fatalf("folded record: %d events, consent %+v", len(last.Events), last.Consent)
		}
	})
}
