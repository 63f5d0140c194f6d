package activation

import (
	"context"
	"encoding/json"
	"github.com/serverless-cdp/cdp/internal/activations"
	"testing"

	"github.com/serverless-cdp/cdp/internal/admin"
	"github.com/serverless-cdp/cdp/internal/admintoken"
	"github.com/serverless-cdp/cdp/internal/httpapi"
	"github.com/serverless-cdp/cdp/internal/webhook"
)

type okAuth struct{}

func (okAuth) Verify(context.Context, string) (admintoken.Token, error) {
	return admintoken.Token{ID: "t"}, nil
}

func TestAdminRoutes(t *testing.T) {
	e := newEnv(t, webhook.Policy{AllowLoopback: true})
	rcv := newReceiver(t)
	rcv.status = func(int) int { return 400 }
	rt := admin.NewRouter(okAuth{}, nil)
	RegisterAdmin(rt, e.dests, e.d)
	call := func(method, path, body string, want int) map[string]any {
		t.Helper()
		req := httpapi.Request{RawPath: path, Body: body, Headers: map[string]string{"authorization": "Bearer x"}}
		req.RequestContext.HTTP.Method = method
		req.RequestContext.HTTP.Path = path
		resp, err := rt.Serve(context.Background(), req)
		if err != nil || resp.StatusCode != want {
			t.Fatalf("%s %s: %d %v %s", method, path, resp.StatusCode, err, resp.Body)
		}
		var out map[string]any
		_ = json.Unmarshal([]byte(resp.Body), &out)
		return out
	}
	p := admin.Prefix + "/destinations"
	call("POST", p, `{"name":"","url":"ftp://x"}`, 400)
	out := call("POST", p, `{"name":"crm","url":"`+rcv.srv.URL+`","subscriptions":{"audiences":["*"]}}`, 201)
	id := out["destination"].(map[string]any)["id"].(string)
	if s, _ := out["secret"].(string); len(s) < 10 {
		t.Fatalf("no secret: %v", out)
	}
	call("GET", p, "", 200)
	call("GET", p+"/"+id, "", 200)
	call("GET", p+"/nope", "", 404)
	call("POST", p+"/"+id+"/rotate-secret", `{"graceSeconds":60}`, 200)
	e.handle(kinesisEvent(t, audienceRecord("rec_1", activations.KindAudienceEntered)))
	if out = call("GET", p+"/"+id+"/deliveries", "", 200); len(out["deliveries"].([]any)) != 1 {
		t.Fatalf("deliveries %v", out)
	}
	call("GET", p+"/"+id+"/deliveries/rec_1", "", 200)
	if out = call("GET", p+"/"+id+"/dead-letters", "", 200); len(out["deadLetters"].([]any)) != 1 {
		t.Fatalf("dead letters %v", out)
	}
	call("GET", p+"/"+id+"/dead-letters/rec_1", "", 200)
	call("POST", p+"/"+id+"/dead-letters/rec_1/redrive", "", 202)
	call("POST", p+"/"+id+"/dead-letters/rec_1/redrive", "", 409)
	call("POST", p+"/"+id+"/disable", "", 200)
	call("PUT", p+"/"+id, `{"name":"crm2","url":"`+rcv.srv.URL+`"}`, 200)
	call("DELETE", p+"/"+id, "", 204)
}
