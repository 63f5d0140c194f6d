//go:build integration

package admin_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/serverless-cdp/cdp/internal/admin"
	"github.com/serverless-cdp/cdp/internal/admintoken"
	"github.com/serverless-cdp/cdp/internal/deadletter"
	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
	"github.com/serverless-cdp/cdp/internal/httpapi"
	"github.com/serverless-cdp/cdp/internal/identity"
	"github.com/serverless-cdp/cdp/internal/source"
)

// pipelineEnv is env with identity rules and pipeline dead letters mounted. The identity stage
// replays with a fake that fails payloads containing "poison"; the "segments" stage has no
// replayer.
type pipelineEnv struct {
	env
	rules    *identity.RulesService
	dlq      *deadletter.Store
	replayed []string
}

func newPipelineEnv(t *testing.T) *pipelineEnv {
	t.Helper()
	c := testenv.Clients(t)
	table := testenv.Table(t, c.DynamoDB)
	tokens := admintoken.NewStore(c.DynamoDB, table)
	_, tok, err := tokens.Create(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	p := &pipelineEnv{
		rules: identity.NewRulesService(c.DynamoDB, table, identity.MaxRulesCache),
		dlq:   deadletter.NewStore(c.DynamoDB, table),
	}
	svc := deadletter.NewService(p.dlq, map[string]deadletter.Replayer{
		identity.Stage: deadletter.ReplayFunc(func(_ context.Context, e deadletter.Entry) error {
			if strings.Contains(string(e.Payload), "poison") {
				return errors.New("still cannot resolve: no identifiers")
			}
			p.replayed = append(p.replayed, e.ID)
			return nil
		}),
	})
	sources := source.NewRepository(c.DynamoDB, table)
	router := admin.New(tokens, nil, mount(sources, p.rules, svc)...)
	p.env = env{api: &httpapi.API{Admin: router.Serve}, sources: sources, db: c.DynamoDB, table: table, token: tok}
	return p
}

type rejection struct {
	name, method, path, auth, body string
	status                         int
	code                           string
	mention                        string // the message must contain it
}

func (e env) expectRejections(t *testing.T, cases []rejection) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			auth := c.auth
			if auth == "" {
				auth = "Bearer " + e.token
			} else if auth == "-" {
				auth = ""
			}
			resp, err := e.api.Handle(context.Background(), request(c.method, c.path, auth, c.body))
			if err != nil {
				t.Fatal(err)
			}
			body := decode[httpapi.ErrorBody](t, resp)
			if resp.StatusCode != c.status || body.Code != c.code || !strings.Contains(body.Message, c.mention) {
				t.Fatalf("got %d %s, want %d %s mentioning %q", resp.StatusCode, resp.Body, c.status, c.code, c.mention)
			}
		})
	}
}

func TestIdentityRules(t *testing.T) {
	e := newPipelineEnv(t)
	ctx := context.Background()

	// Never set: Segment's defaults.
	resp := e.call(t, "GET", "/admin/v1/identity-rules", "")
	got := decode[identity.Rules](t, resp)
	if resp.StatusCode != 200 || len(got.Types) != 2 || got.Types[0].Type != "user_id" || got.Types[0].Limit != 1 {
		t.Fatalf("defaults: %d %s", resp.StatusCode, resp.Body)
	}

	good := `{"types":[{"type":"user_id","priority":1,"limit":1},{"type":"email","priority":2,"limit":3,"blocked":[{"match":"regex","value":"@example\\.com$"}]},{"type":"device_id","limit":10}]}`
	resp = e.call(t, "PUT", "/admin/v1/identity-rules", good)
	if resp.StatusCode != 200 {
		t.Fatalf("put: %d %s", resp.StatusCode, resp.Body)
	}
	stored, err := e.rules.Get(ctx)
	if err != nil || len(stored.Types) != 3 || stored.Types[1].Limit != 3 || stored.Types[1].Blocked[0].Value != `@example\.com$` {
		t.Fatalf("stored %+v, %v", stored, err)
	}
	if resp := e.call(t, "GET", "/admin/v1/identity-rules", ""); resp.Body != e.call(t, "PUT", "/admin/v1/identity-rules", good).Body {
		t.Fatalf("GET %s differs from what PUT answers", resp.Body)
	}

	before := e.itemCount(t)
	beforeBody := e.call(t, "GET", "/admin/v1/identity-rules", "").Body
	const p = "/admin/v1/identity-rules"
	e.expectRejections(t, []rejection{
		{"get without token", "GET", p, "-", "", 401, "unauthorized", "missing"},
		{"put without token", "PUT", p, "-", good, 401, "unauthorized", "missing"},
		{"put with a wrong token", "PUT", p, "Bearer cdpat_wrong", good, 401, "unauthorized", "invalid"},
		{"bad regex", "PUT", p, "", `{"types":[{"type":"email","blocked":[{"match":"regex","value":"(unclosed"}]}]}`, 400, "invalid_request", "types[0].blocked[0].value: invalid regex"},
		{"limit too high", "PUT", p, "", `{"types":[{"type":"email","limit":101}]}`, 400, "invalid_request", "types[0].limit"},
		{"negative limit", "PUT", p, "", `{"types":[{"type":"user_id","limit":-1}]}`, 400, "invalid_request", "types[0].limit"},
		{"limit not a number", "PUT", p, "", `{"types":[{"type":"user_id","limit":"one"}]}`, 400, "invalid_request", "limit"},
		{"negative priority", "PUT", p, "", `{"types":[{"type":"email","priority":-2}]}`, 400, "invalid_request", "types[0].priority"},
		{"shared priority", "PUT", p, "", `{"types":[{"type":"phone","priority":1}]}`, 400, "invalid_request", "share priority 1"},
		{"duplicate type", "PUT", p, "", `{"types":[{"type":"email"},{"type":"email"}]}`, 400, "invalid_request", "types[1].type"},
		{"bad type name", "PUT", p, "", `{"types":[{"type":"E Mail"}]}`, 400, "invalid_request", "types[0].type"},
		{"bad match", "PUT", p, "", `{"types":[{"type":"email","blocked":[{"match":"glob","value":"*"}]}]}`, 400, "invalid_request", "types[0].blocked[0].match"},
		{"unknown field", "PUT", p, "", `{"types":[],"strict":true}`, 400, "invalid_request", "strict"},
		{"unknown nested field", "PUT", p, "", `{"types":[{"type":"email","max":3}]}`, 400, "invalid_request", "max"},
		{"empty body", "PUT", p, "", "", 400, "invalid_request", ""},
		{"not JSON", "PUT", p, "", "types: []", 400, "invalid_request", ""},
		{"post not allowed", "POST", p, "", good, 405, "method_not_allowed", "POST"},
	})
	// A refused PUT changes nothing.
	if n := e.itemCount(t); n != before {
		t.Fatalf("%d items after rejections, had %d", n, before)
	}
	if after := e.call(t, "GET", p, "").Body; after != beforeBody {
		t.Fatalf("rules changed by refused PUTs:\n%s\n%s", beforeBody, after)
	}
	c, err := e.rules.Compiled(ctx)
	if err != nil || c.Limit("email") != 3 {
		t.Fatalf("rules in force: %v", err)
	}
}

func putDeadLetter(t *testing.T, s *deadletter.Store, stage, payload string) deadletter.Entry {
	t.Helper()
	e, err := s.Put(context.Background(), deadletter.Entry{Stage: stage, Kind: "event", Reason: "no_identifiers", Error: "no identifiers", Payload: []byte(payload)})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestPipelineDeadLetters(t *testing.T) {
	e := newPipelineEnv(t)
	ctx := context.Background()
	a := putDeadLetter(t, e.dlq, identity.Stage, `{"messageId":"a"}`)
	b := putDeadLetter(t, e.dlq, identity.Stage, `{"messageId":"b"}`)
	poison := putDeadLetter(t, e.dlq, identity.Stage, `{"messageId":"poison"}`)
	other := putDeadLetter(t, e.dlq, "segments", `{"profileId":"p1"}`)
	const base = "/admin/v1/dead-letters/"

	// Paged list: every entry exactly once.
	seen := map[string]bool{}
	next := ""
	for pages := 0; ; pages++ {
		req := request("GET", base+"identity", "Bearer "+e.token, "")
		req.QueryStringParameters = map[string]string{"limit": "2"}
		if next != "" {
			req.QueryStringParameters["next"] = next
		}
		resp, err := e.api.Handle(ctx, req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("list: %v %d %s", err, resp.StatusCode, resp.Body)
		}
		page := decode[struct {
			DeadLetters []map[string]any `json:"deadLetters"`
			Next        string           `json:"next"`
		}](t, resp)
		if len(page.DeadLetters) > 2 || pages > 3 {
			t.Fatalf("page %d: %s", pages, resp.Body)
		}
		for _, d := range page.DeadLetters {
			id := d["id"].(string)
			if seen[id] || d["payload"] == nil || d["stage"] != "identity" {
				t.Fatalf("entry %v (seen %t)", d, seen[id])
			}
			seen[id] = true
		}
		if next = page.Next; next == "" {
			break
		}
	}
	if len(seen) != 3 || !seen[a.ID] || !seen[b.ID] || !seen[poison.ID] {
		t.Fatalf("listed %v", seen)
	}

	// One entry, with its payload as JSON.
	resp := e.call(t, "GET", base+"identity/"+a.ID, "")
	if resp.StatusCode != 200 || !strings.Contains(resp.Body, `"payload":{"messageId":"a"}`) || !strings.Contains(resp.Body, `"reason":"no_identifiers"`) {
		t.Fatalf("get: %d %s", resp.StatusCode, resp.Body)
	}

	before := e.itemCount(t)
	missing := "0123456789abcdef01234567"
	e.expectRejections(t, []rejection{
		{"list without token", "GET", base + "identity", "-", "", 401, "unauthorized", "missing"},
		{"replay without token", "POST", base + "identity/" + a.ID + "/replay", "-", "", 401, "unauthorized", "missing"},
		{"replay all without token", "POST", base + "identity/replay", "-", "", 401, "unauthorized", "missing"},
		{"delete with a wrong token", "DELETE", base + "identity/" + a.ID, "Bearer cdpat_wrong", "", 401, "unauthorized", "invalid"},
		{"bad stage", "GET", base + "Identity!", "", "", 400, "invalid_request", "stage"},
		{"bad stage on get", "GET", base + "IDENTITY/" + a.ID, "", "", 400, "invalid_request", "stage"},
		{"unknown entry", "GET", base + "identity/" + missing, "", "", 404, "not_found", missing},
		{"malformed entry id", "GET", base + "identity/not-an-id", "", "", 404, "not_found", ""},
		{"entry of another stage", "GET", base + "identity/" + other.ID, "", "", 404, "not_found", ""},
		{"replay unknown entry", "POST", base + "identity/" + missing + "/replay", "", "", 404, "not_found", missing},
		{"delete unknown entry", "DELETE", base + "identity/" + missing, "", "", 404, "not_found", missing},
		{"replay with a body", "POST", base + "identity/" + a.ID + "/replay", "", `{"force":true}`, 400, "invalid_request", "force"},
		{"no replayer", "POST", base + "segments/" + other.ID + "/replay", "", "", 409, "conflict", "cannot replay"},
		{"no replayer for all", "POST", base + "segments/replay", "", "", 409, "conflict", "cannot replay"},
		{"put not allowed", "PUT", base + "identity/" + a.ID, "", "", 405, "method_not_allowed", "PUT"},
	})
	for _, q := range []string{"0", "101", "x", "-1"} {
		req := request("GET", base+"identity", "Bearer "+e.token, "")
		req.QueryStringParameters = map[string]string{"limit": q}
		resp, _ := e.api.Handle(ctx, req)
		if resp.StatusCode != 400 || !strings.Contains(resp.Body, "limit must be between 1 and 100") {
			t.Errorf("limit=%s: %d %s", q, resp.StatusCode, resp.Body)
		}
	}
	req := request("GET", base+"identity", "Bearer "+e.token, "")
	req.QueryStringParameters = map[string]string{"next": "ENTRY#x"}
	if resp, _ := e.api.Handle(ctx, req); resp.StatusCode != 400 {
		t.Errorf("bad next: %d %s", resp.StatusCode, resp.Body)
	}
	if n := e.itemCount(t); n != before {
		t.Fatalf("%d items after rejections, had %d", n, before)
	}

	// Replay one: done and removed.
	if resp := e.call(t, "POST", base+"identity/"+a.ID+"/replay", ""); resp.StatusCode != 200 || resp.Body != `{"replayed":1}` {
		t.Fatalf("replay: %d %s", resp.StatusCode, resp.Body)
	}
	if resp := e.call(t, "GET", base+"identity/"+a.ID, ""); resp.StatusCode != 404 {
		t.Fatalf("replayed entry still there: %d", resp.StatusCode)
	}
	// A failing replay: 409, the entry kept with the error.
	resp = e.call(t, "POST", base+"identity/"+poison.ID+"/replay", "")
	if resp.StatusCode != 409 || !strings.Contains(resp.Body, "still cannot resolve") {
		t.Fatalf("failing replay: %d %s", resp.StatusCode, resp.Body)
	}
	if got, err := e.dlq.Get(ctx, identity.Stage, poison.ID); err != nil || !strings.Contains(got.LastReplayError, "still cannot resolve") {
		t.Fatalf("poison entry %+v, %v", got, err)
	}
	// Replay all: b succeeds, poison fails again and stays.
	resp = e.call(t, "POST", base+"identity/replay", "")
	if resp.StatusCode != http.StatusOK || resp.Body != `{"replayed":1,"failed":1,"remaining":0,"next":""}` {
		t.Fatalf("replay all: %d %s", resp.StatusCode, resp.Body)
	}
	if len(e.replayed) != 2 || e.replayed[0] != a.ID || e.replayed[1] != b.ID {
		t.Fatalf("replayed %v", e.replayed)
	}
	// Discard: 204, then gone.
	if resp := e.call(t, "DELETE", base+"identity/"+poison.ID, ""); resp.StatusCode != 204 {
		t.Fatalf("delete: %d %s", resp.StatusCode, resp.Body)
	}
	if resp := e.call(t, "GET", base+"identity", ""); resp.Body != `{"deadLetters":[],"next":""}` {
		t.Fatalf("after all: %s", resp.Body)
	}
	// The other stage's entry was never touched.
	if _, err := e.dlq.Get(ctx, "segments", other.ID); err != nil {
		t.Fatal(err)
	}
}
