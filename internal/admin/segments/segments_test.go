//go:build integration

package segments_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/serverless-cdp/cdp/internal/admin"
	"github.com/serverless-cdp/cdp/internal/admin/segments"
	"github.com/serverless-cdp/cdp/internal/admintoken"
	"github.com/serverless-cdp/cdp/internal/change"
	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
	"github.com/serverless-cdp/cdp/internal/httpapi"
	"github.com/serverless-cdp/cdp/internal/segment"
	"github.com/serverless-cdp/cdp/internal/stream"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type oneToken struct{}

func (oneToken) Verify(_ context.Context, tok string) (admintoken.Token, error) {
	if tok != "t" {
		return admintoken.Token{}, admintoken.ErrNotFound
	}
	return admintoken.Token{ID: "tok"}, nil
}

// env is the segments stage on the emulators: its handler (to feed changes) and the service
// the admin routes call.
type env struct {
	h   *segment.Handler
	sv  *segment.Service
	seq int
}

func newEnv(t *testing.T) *env {
	t.Helper()
	c := testenv.Clients(t)
	table := testenv.Table(t, c.DynamoDB)
	name := testenv.Stream(t, c.Kinesis, "activations", 1)
	st := segment.NewStore(c.DynamoDB, table)
	h := segment.NewHandler(st, stream.NewPublisher(c.Kinesis, name), segment.Options{DefCacheTTL: time.Nanosecond})
	sv := segment.NewService(st, nil)
	sv.OnChange = h.Invalidate
	return &env{h: h, sv: sv}
}

func track(id, name string, at time.Time) tracking.Message {
	return tracking.Message{Type: tracking.TypeTrack, MessageID: id, Event: name, Timestamp: at, ReceivedAt: at,
		Properties: json.RawMessage(`{}`), UserID: "u-" + id}
}

func chg(pid string, ver int64, evs ...tracking.Message) change.Record {
	return change.Record{ProfileID: pid, Version: ver, Events: evs, Part: 1, Parts: 1, Traits: map[string]json.RawMessage{},
		Identifiers: []change.Identifier{{Type: "user_id", Value: "user-" + pid}}}
}

func (e *env) send(t *testing.T, recs ...change.Record) {
	t.Helper()
	var ev events.KinesisEvent
	for _, r := range recs {
		b, _ := json.Marshal(r)
		e.seq++
		var kr events.KinesisEventRecord
		kr.Kinesis.Data = b
		kr.Kinesis.SequenceNumber = fmt.Sprint(e.seq)
		ev.Records = append(ev.Records, kr)
	}
	resp, err := e.h.Handle(context.Background(), ev)
	if err != nil || len(resp.BatchItemFailures) > 0 {
		t.Fatalf("handle: %v %+v", err, resp.BatchItemFailures)
	}
}

func TestAdminRoutes(t *testing.T) {
	e := newEnv(t)
	r := admin.NewRouter(oneToken{}, nil)
	segments.Register(r, e.sv)
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
	e.send(t, chg("p1", 1, track("m1", "Order Completed", time.Now().UTC())))
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
