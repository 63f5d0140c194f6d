package segment

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/serverless-cdp/cdp/internal/admin"
	"github.com/serverless-cdp/cdp/internal/admintoken"
	"github.com/serverless-cdp/cdp/internal/httpapi"
)

type oneToken struct{}

func (oneToken) Verify(_ context.Context, tok string) (admintoken.Token, error) {
	if tok != "t" {
		return admintoken.Token{}, admintoken.ErrNotFound
	}
	return admintoken.Token{ID: "tok"}, nil
}

func TestAdminRoutes(t *testing.T) {
	e := newEnv(t)
	r := admin.NewRouter(oneToken{}, nil)
	RegisterAdmin(r, e.sv)
	call := func(method, path, body string) (int, map[string]any) {
		t.Helper()
		req := httpapi.Request{RawPath: path, Body: body,
			Headers: map[string]string{"content-type": "application/json", "authorization": "Bearer t"},
			RequestContext: events.APIGatewayV2HTTPRequestContext{
				HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path}}}
		if i := strings.IndexByte(path, '?'); i >= 0 {
			req.RawPath, req.RequestContext.HTTP.Path = path[:i], path[:i]
			req.RawQueryString = path[i+1:]
			req.QueryStringParameters = map[string]string{}
			for _, kv := range strings.Split(path[i+1:], "&") {
				k, v, _ := strings.Cut(kv, "=")
				req.QueryStringParameters[k] = v
			}
		}
		resp, err := r.Serve(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		_ = json.Unmarshal([]byte(resp.Body), &m)
		return resp.StatusCode, m
	}
	st, body := call("POST", "/admin/v1/audiences", `{"name":"Buyers","condition":{"event":{"name":"Order Completed","count":{"op":"twice","n":1}}}}`)
	if st != 400 || body["code"] != "invalid_request" || !strings.Contains(body["message"].(string), "condition.event.count.op") {
		t.Fatalf("bad definition: %d %v", st, body)
	}
	st, body = call("POST", "/admin/v1/computed-traits", `{"name":"Orders","kind":"event_count","event":{"name":"Order Completed"}}`)
	if st != 201 || body["key"] != "orders" || body["status"] != "computing" {
		t.Fatalf("create trait: %d %v", st, body)
	}
	st, body = call("POST", "/admin/v1/audiences", `{"name":"Buyers","condition":{"computedTrait":{"key":"orders","op":"gte","value":1}}}`)
	if st != 201 {
		t.Fatalf("create audience: %d %v", st, body)
	}
	id := body["id"].(string)
	e.send(t, chg("p1", 1, `{}`, track("m1", "Order Completed", t0, `{}`)))
	st, body = call("GET", "/admin/v1/audiences/"+id, "")
	if st != 200 || body["size"] != 1.0 {
		t.Fatalf("get audience: %d %v", st, body)
	}
	st, body = call("GET", "/admin/v1/audiences/"+id+"/members?limit=1", "")
	if st != 200 || len(body["members"].([]any)) != 1 {
		t.Fatalf("members: %d %v", st, body)
	}
	st, body = call("POST", "/admin/v1/audiences/preview", `{"condition":{"and":[{"audience":{"key":"buyers"}},{"computedTrait":{"key":"orders","op":"gte","value":2}}]}}`)
	if st != 200 || body["matched"] != 0.0 || body["scanned"] != 1.0 {
		t.Fatalf("preview: %d %v", st, body)
	}
	st, body = call("GET", "/admin/v1/profiles/p1/segments", "")
	if st != 200 || len(body["audiences"].([]any)) != 1 {
		t.Fatalf("profile: %d %v", st, body)
	}
	if st, body = call("POST", "/admin/v1/audiences/preview", `{"condition":{"audience":{"key":"nope"}}}`); st != 400 || !strings.Contains(body["message"].(string), `no audience has key "nope"`) {
		t.Fatalf("preview with unknown key: %d %v", st, body)
	}
	if st, _ = call("GET", "/admin/v1/audiences/nope", ""); st != 404 {
		t.Fatalf("unknown audience: %d", st)
	}
	if st, body = call("DELETE", "/admin/v1/computed-traits/"+id, ""); st != 404 {
		t.Fatalf("delete unknown trait: %d %v", st, body)
	}
	if st, _ = call("DELETE", "/admin/v1/audiences/"+id, ""); st != 204 {
		t.Fatalf("delete audience: %d", st)
	}
	if _, body = call("GET", "/admin/v1/audiences", ""); len(body["audiences"].([]any)) != 0 {
		t.Fatalf("list after delete: %v", body)
	}
}
