//go:build integration

package profile_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/serverless-cdp/cdp/internal/identity"
	"github.com/serverless-cdp/cdp/internal/profile"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func msg(typ, id string, min int, uid, aid string, extra func(*tracking.Message)) tracking.Record {
	m := tracking.Message{Type: typ, MessageID: id, UserID: uid, AnonymousID: aid, Timestamp: t0.Add(time.Duration(min) * time.Minute)}
	if extra != nil {
		extra(&m)
	}
	return tracking.Record{SourceID: "web", Message: m}
}

type client struct {
	t *testing.T
	h *profile.Handler
}

func (c client) get(path, token string) (int, map[string]any) {
	c.t.Helper()
	u, _ := url.Parse(path)
	req := events.APIGatewayV2HTTPRequest{RawPath: u.EscapedPath(), RawQueryString: u.RawQuery, Headers: map[string]string{}}
	req.RequestContext.HTTP.Method = "GET"
	if token != "" {
		req.Headers["authorization"] = "Basic " + base64.StdEncoding.EncodeToString([]byte(token+":"))
	}
	resp, err := c.h.Handle(context.Background(), req)
	if err != nil {
		c.t.Fatalf("handle: %v", err)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(resp.Body), &body); err != nil {
		c.t.Fatalf("body %q: %v", resp.Body, err)
	}
	return resp.StatusCode, body
}

func js(v any) string { b, _ := json.Marshal(v); return string(b) }

func norm(s string) string {
	var v any
	_ = json.Unmarshal([]byte(s), &v)
	return js(v)
}

func TestProfileAPI(t *testing.T) { eachBackend(t, testProfileAPI) }

func testProfileAPI(t *testing.T, b backend) {
	st := b.open(t)
	rules, _ := identity.Compile(identity.Rules{})
	proc := identity.NewProcessor(st, identity.StaticRules{C: rules}, identity.Options{})
	recs := []tracking.Record{
		msg("page", "m1", 0, "", "anon-1", func(m *tracking.Message) { m.Name = "Home" }),
		msg("identify", "m2", 1, "", "anon-2", func(m *tracking.Message) { m.Traits = json.RawMessage(`{"email":"Ann@X.io","plan":"free"}`) }),
		msg("identify", "m3", 2, "ann", "anon-1", func(m *tracking.Message) {
			m.Traits = json.RawMessage(`{"email":"ann@x.io","name":"Ann","plan":"pro"}`)
		}),
		msg("track", "m4", 3, "ann", "", func(m *tracking.Message) { m.Event = "Bought"; m.Properties = json.RawMessage(`{"total":3}`) }),
		msg("group", "m5", 4, "ann", "", func(m *tracking.Message) { m.GroupID = "acme"; m.Traits = json.RawMessage(`{"name":"Acme"}`) }),
		msg("track", "m6", 5, "ann", "", func(m *tracking.Message) {
			m.Event = "Viewed"
			m.Context = json.RawMessage(`{"externalIds":[{"id":"C-1","type":"crm_id","collection":"users","encoding":"none"}]}`)
		}),
	}
	for _, r := range recs { // one batch per event, so merges happen across batches
		if res, _, err := proc.Process(context.Background(), []tracking.Record{r}); err != nil || res[0].Outcome != identity.Processed {
			t.Fatalf("process %s: %+v %v", r.Message.MessageID, res, err)
		}
	}
	h := profile.NewHandler(st, func(_ context.Context, tok string) (bool, error) { return tok == "secret", nil }, nil)
	api := client{t, h}
	base := "/v1/spaces/default/collections/users/profiles/"

	if code, _ := api.get(base+"user_id:ann/traits", ""); code != 401 {
		t.Fatalf("no auth: %d", code)
	}
	if code, _ := api.get(base+"user_id:ann/traits", "wrong"); code != 401 {
		t.Fatalf("bad token: %d", code)
	}
	if code, _ := api.get(base+"user_id:nobody/traits", "secret"); code != 404 {
		t.Fatalf("unknown profile: %d", code)
	}
	if code, _ := api.get("/v1/spaces/other/collections/users/profiles/user_id:ann/traits", "secret"); code != 404 {
		t.Fatalf("unknown space: %d", code)
	}
	if code, _ := api.get(base+"user_id:ann/traits?limit=0", "secret"); code != 400 {
		t.Fatalf("bad limit: %d", code)
	}

	code, body := api.get(base+"email:ANN%40x.io/traits", "secret")
	if code != 200 || js(body["traits"]) != `{"email":"ann@x.io","name":"Ann","plan":"pro"}` {
		t.Fatalf("traits by email: %d %s", code, js(body))
	}
	_, body = api.get(base+"anonymous_id:anon-2/traits?include=plan,name", "secret")
	if js(body["traits"]) != `{"name":"Ann","plan":"pro"}` {
		t.Fatalf("include: %s", js(body))
	}
	_, body = api.get(base+"user_id:ann/traits?limit=2", "secret")
	cur := body["cursor"].(map[string]any)
	if js(body["traits"]) != `{"email":"ann@x.io","name":"Ann"}` || cur["has_more"] != true || cur["next"] != "name" {
		t.Fatalf("paged traits: %s", js(body))
	}
	_, body = api.get(base+"user_id:ann/traits?limit=2&next=name", "secret")
	if js(body["traits"]) != `{"plan":"pro"}` || body["cursor"].(map[string]any)["has_more"] != false {
		t.Fatalf("traits page 2: %s", js(body))
	}

	_, body = api.get(base+"user_id:ann/external_ids", "secret")
	var types []string
	for _, d := range body["data"].([]any) {
		types = append(types, d.(map[string]any)["type"].(string)+":"+d.(map[string]any)["id"].(string))
	}
	if strings.Join(types, " ") != "anonymous_id:anon-1 anonymous_id:anon-2 crm_id:C-1 email:ann@x.io user_id:ann" {
		t.Fatalf("external ids: %v", types)
	}
	_, body = api.get(base+"user_id:ann/external_ids?include=email", "secret")
	if len(body["data"].([]any)) != 1 {
		t.Fatalf("external ids include: %s", js(body))
	}

	// Events newest first, two per page, through the merged profiles' timelines.
	var ids []string
	next := ""
	for pages := 0; pages < 5; pages++ {
		q := base + "crm_id:C-1/events?limit=2"
		if next != "" {
			q += "&next=" + url.QueryEscape(next)
		}
		code, body = api.get(q, "secret")
		if code != 200 {
			t.Fatalf("events: %d %s", code, js(body))
		}
		for _, d := range body["data"].([]any) {
			ids = append(ids, d.(map[string]any)["message_id"].(string))
		}
		cur := body["cursor"].(map[string]any)
		if cur["has_more"] != true {
			break
		}
		next = cur["next"].(string)
	}
	if strings.Join(ids, " ") != "m6 m5 m4 m3 m2 m1" {
		t.Fatalf("events: %v", ids)
	}
	_, body = api.get(base+"user_id:ann/events?include=Bought", "secret")
	if len(body["data"].([]any)) != 1 || body["data"].([]any)[0].(map[string]any)["event"] != "Bought" {
		t.Fatalf("events include: %s", js(body))
	}
	if code, _ := api.get(base+"user_id:ann/events?next=garbage!", "secret"); code != 400 {
		t.Fatalf("bad cursor: %d", code)
	}

	_, body = api.get(base+"user_id:ann/metadata", "secret")
	md := body["metadata"].(map[string]any)
	if md["event_count"] != 6.0 || md["first_message_at"] != "2025-03-01T12:00:00Z" || md["last_message_at"] != "2025-03-01T12:05:00Z" || md["last_source_id"] != "web" {
		t.Fatalf("metadata: %s", js(body))
	}
	survivor := md["id"].(string)
	merged := md["merged_from"].([]any)
	if len(merged) != 1 {
		t.Fatalf("merged_from: %s", js(md))
	}
	// The merged-away profile id, bare or as segment_id, reads the survivor.
	for _, ref := range []string{merged[0].(string), "segment_id:" + merged[0].(string), survivor} {
		_, body = api.get(base+ref+"/metadata", "secret")
		if body["metadata"].(map[string]any)["id"] != survivor {
			t.Fatalf("%s reads %s", ref, js(body))
		}
	}

	_, body = api.get(base+"user_id:ann/links", "secret")
	if js(body["data"]) != norm(`[{"external_ids":[{"id":"acme","type":"group_id","source_id":"","collection":"accounts","created_at":"2025-03-01T12:04:00Z","encoding":"none"}],"to_collection":"accounts","traits":{"name":"Acme"}}]`) {
		t.Fatalf("links: %s", js(body))
	}

	_, body = api.get(base+"user_id:ann/merges", "secret")
	var kinds []string
	for _, d := range body["data"].([]any) {
		for _, a := range d.(map[string]any)["actions"].([]any) {
			kinds = append(kinds, d.(map[string]any)["messageId"].(string)+":"+a.(map[string]any)["kind"].(string))
		}
	}
	if strings.Join(kinds, " ") != "m6:attach m3:merge m3:attach m2:create m1:create" {
		t.Fatalf("merges: %v", kinds)
	}
}
