package ingest_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/serverless-cdp/cdp/internal/ingest"
	"github.com/serverless-cdp/cdp/internal/stream"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// keys is an in-memory KeyResolver: pure lookup, no storage semantics to prove here.
type keys map[string]ingest.Source

func (k keys) ResolveWriteKey(_ context.Context, key string) (ingest.Source, error) {
	if s, ok := k[key]; ok {
		return s, nil
	}
	return ingest.Source{}, ingest.ErrUnknownKey
}

// memPub records what would be published; fail makes Put fail like an unreachable stream.
type memPub struct {
	mu   sync.Mutex
	recs []stream.Record
	fail error
}

func (p *memPub) Put(_ context.Context, recs []stream.Record) error {
	if p.fail != nil {
		return p.fail
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.recs = append(p.recs, recs...)
	return nil
}

func (p *memPub) messages(t *testing.T) []tracking.Record {
	t.Helper()
	var out []tracking.Record
	for _, r := range p.recs {
		var rec tracking.Record
		if err := json.Unmarshal(r.Data, &rec); err != nil {
			t.Fatalf("record is not JSON: %v", err)
		}
		if r.PartitionKey != rec.Message.PartitionKey() {
			t.Fatalf("partition key %q, want %q", r.PartitionKey, rec.Message.PartitionKey())
		}
		out = append(out, rec)
	}
	return out
}

var now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func newHandler(pub ingest.Publisher) *ingest.Handler {
	return ingest.New(keys{
		"good-key":     {ID: "src_web", Enabled: true},
		"disabled-key": {ID: "src_old", Enabled: false},
	}, pub, ingest.Config{Now: func() time.Time { return now }, AllowedOrigins: []string{"*"}})
}

func basic(key string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(key)) }

func post(path, body string, headers ...string) events.APIGatewayV2HTTPRequest {
	req := events.APIGatewayV2HTTPRequest{RawPath: path, Body: body, Headers: map[string]string{}}
	req.RequestContext.HTTP.Method = "POST"
	for i := 0; i+1 < len(headers); i += 2 {
		req.Headers[headers[i]] = headers[i+1]
	}
	return req
}

func gz(s string) string {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.String()
}

func TestRejections(t *testing.T) {
	big := strings.Repeat("x", 33<<10)
	manyItems := "[" + strings.TrimSuffix(strings.Repeat(`{"type":"track","event":"e","userId":"u"},`, 2501), ",") + "]"
	hugeBatch := `{"batch":[` + strings.TrimSuffix(strings.Repeat(`{"type":"track","event":"e","userId":"u","properties":{"p":"`+strings.Repeat("y", 20000)+`"}},`, 30), ",") + `]}`
	auth := basic("good-key:")
	cases := []struct {
		name   string
		req    events.APIGatewayV2HTTPRequest
		status int
		code   string
	}{
		{"no key", post("/v1/track", `{"event":"e","userId":"u"}`), 401, "unauthorized"},
		{"bad key", post("/v1/track", `{"event":"e","userId":"u"}`, "authorization", basic("nope:")), 401, "unauthorized"},
		{"bad key in body", post("/v1/track", `{"event":"e","userId":"u","writeKey":"nope"}`), 401, "unauthorized"},
		{"basic not base64", post("/v1/track", `{"event":"e","userId":"u"}`, "authorization", "Basic %%%"), 401, "unauthorized"},
		{"disabled source", post("/v1/track", `{"event":"e","userId":"u"}`, "authorization", basic("disabled-key:")), 401, "unauthorized"},
		{"malformed json", post("/v1/track", `{"event":`, "authorization", auth), 400, "invalid_json"},
		{"not an object", post("/v1/track", `[1,2]`, "authorization", auth), 400, "invalid_json"},
		{"empty body", post("/v1/track", ``, "authorization", auth), 400, "invalid_json"},
		{"bad gzip", post("/v1/batch", "\x1f\x8bnot gzip at all", "authorization", auth, "content-encoding", "gzip"), 400, "invalid_encoding"},
		{"bad base64", func() events.APIGatewayV2HTTPRequest {
			r := post("/v1/track", "!!!", "authorization", auth)
			r.IsBase64Encoded = true
			return r
		}(), 400, "invalid_encoding"},
		{"unknown encoding", post("/v1/track", `{}`, "authorization", auth, "content-encoding", "br"), 400, "invalid_encoding"},
		{"oversize event", post("/v1/track", `{"event":"e","userId":"u","properties":{"p":"`+big+`"}}`, "authorization", auth), 400, "event_too_large"},
		{"oversize event in batch", post("/v1/batch", `{"batch":[{"type":"track","event":"e","userId":"u","properties":{"p":"`+big+`"}}]}`, "authorization", auth), 400, "event_too_large"},
		{"oversize batch", post("/v1/batch", hugeBatch, "authorization", auth), 400, "batch_too_large"},
		{"oversize gzip batch", post("/v1/batch", gz(hugeBatch), "authorization", auth, "content-encoding", "gzip"), 400, "batch_too_large"},
		{"too many events", post("/v1/batch", `{"batch":`+manyItems+`}`, "authorization", auth), 400, "too_many_events"},
		{"empty batch", post("/v1/batch", `{"batch":[]}`, "authorization", auth), 400, "empty_batch"},
		{"missing ids", post("/v1/track", `{"event":"e"}`, "authorization", auth), 400, "missing_identity"},
		{"blank ids", post("/v1/identify", `{"userId":"  ","anonymousId":""}`, "authorization", auth), 400, "missing_identity"},
		{"missing event", post("/v1/track", `{"userId":"u"}`, "authorization", auth), 400, "missing_event"},
		{"alias without previousId", post("/v1/alias", `{"userId":"u"}`, "authorization", auth), 400, "missing_previous_id"},
		{"alias without userId", post("/v1/alias", `{"previousId":"a","anonymousId":"x"}`, "authorization", auth), 400, "missing_user_id"},
		{"group without groupId", post("/v1/group", `{"userId":"u"}`, "authorization", auth), 400, "missing_group_id"},
		{"batch item bad type", post("/v1/batch", `{"batch":[{"type":"explode","userId":"u"}]}`, "authorization", auth), 400, "invalid_type"},
		{"batch item invalid", post("/v1/batch", `{"batch":[{"type":"track","event":"ok","userId":"u"},{"type":"track","userId":"u"}]}`, "authorization", auth), 400, "missing_event"},
		{"bad timestamp", post("/v1/track", `{"event":"e","userId":"u","timestamp":"yesterday"}`, "authorization", auth), 400, "invalid_timestamp"},
		{"properties not object", post("/v1/track", `{"event":"e","userId":"u","properties":[1]}`, "authorization", auth), 400, "invalid_field"},
		{"userId object", post("/v1/track", `{"event":"e","userId":{"a":1}}`, "authorization", auth), 400, "invalid_field"},
		{"unknown endpoint", post("/v1/explode", `{}`, "authorization", auth), 404, "not_found"},
		{"wrong method", func() events.APIGatewayV2HTTPRequest {
			r := post("/v1/track", `{}`, "authorization", auth)
			r.RequestContext.HTTP.Method = "GET"
			return r
		}(), 405, "method_not_allowed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pub := &memPub{}
			resp, err := newHandler(pub).Handle(context.Background(), tc.req)
			if err != nil {
				t.Fatalf("handler error: %v", err)
			}
			var body struct{ Code, Message string }
			if err := json.Unmarshal([]byte(resp.Body), &body); err != nil {
				t.Fatalf("body %q is not JSON: %v", resp.Body, err)
			}
			if resp.StatusCode != tc.status || body.Code != tc.code {
				t.Fatalf("got %d %q (%s), want %d %q", resp.StatusCode, body.Code, body.Message, tc.status, tc.code)
			}
			if body.Message == "" {
				t.Fatal("error without a message")
			}
			if len(pub.recs) != 0 {
				t.Fatalf("a rejected request published %d records", len(pub.recs))
			}
		})
	}
}

func TestBatchNormalization(t *testing.T) {
	pub := &memPub{}
	body := `{
	  "writeKey": "good-key",
	  "sentAt": "2026-11-23T12:00:10Z",
	  "context": {"library": {"name": "analytics-go", "version": "3.3.0"}, "ip": "1.2.3.4"},
	  "integrations": {"All": true},
	  "batch": [
	    {"type": "identify", "userId": 42, "traits": {"email": "a@b.c"}, "timestamp": "2026-11-23T12:00:00Z", "messageId": "m1",
	     "context": {"ip": "5.6.7.8"}},
	    {"type": "track", "anonymousId": "anon-1", "event": "Viewed", "properties": {"price": 3}},
	    {"type": "PAGE", "userId": "u2", "name": "Home", "originalTimestamp": "2026-11-23T11:59:55.5Z", "sentAt": "2026-11-23T12:00:05Z"}
	  ]}`
	resp, _ := newHandler(pub).Handle(context.Background(), post("/v1/b", body, "content-type", "text/plain"))
	if resp.StatusCode != 200 || resp.Body != `{"success":true}` {
		t.Fatalf("got %d %s", resp.StatusCode, resp.Body)
	}
	recs := pub.messages(t)
	if len(recs) != 3 {
		t.Fatalf("%d records", len(recs))
	}
	id, tr, pg := recs[0].Message, recs[1].Message, recs[2].Message
	for _, r := range recs {
		if r.SourceID != "src_web" || !r.Message.ReceivedAt.Equal(now) {
			t.Fatalf("source %q receivedAt %v", r.SourceID, r.Message.ReceivedAt)
		}
	}
	// Numeric userId becomes a string; the item's own context key wins over the envelope's.
	if id.Type != "identify" || id.UserID != "42" || id.MessageID != "m1" {
		t.Fatalf("identify = %+v", id)
	}
	var ctx map[string]any
	json.Unmarshal(id.Context, &ctx)
	if ctx["ip"] != "5.6.7.8" || ctx["library"] == nil {
		t.Fatalf("merged context = %v", ctx)
	}
	// Clock skew: sent 10s after the client's timestamp → stored 10s before receipt.
	if want := now.Add(-10 * time.Second); !id.Timestamp.Equal(want) || !id.OriginalTimestamp.Equal(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)) {
		t.Fatalf("timestamp %v original %v, want %v", id.Timestamp, id.OriginalTimestamp, want)
	}
	// No timestamp → receivedAt; messageId filled.
	if !tr.Timestamp.Equal(now) || tr.MessageID == "" || tr.PartitionKey() != "anon-1" || string(tr.Integrations) != `{"All":true}` {
		t.Fatalf("track = %+v", tr)
	}
	// The item's own sentAt wins over the envelope's.
	if want := now.Add(-9500 * time.Millisecond); pg.Type != "page" || !pg.Timestamp.Equal(want) {
		t.Fatalf("page timestamp %v, want %v", pg.Timestamp, want)
	}
}

func TestFilledMessageIDIsStableAcrossRetries(t *testing.T) {
	pub := &memPub{}
	h := newHandler(pub)
	body := `{"batch":[{"type":"track","userId":"u","event":"e"},{"type":"track","userId":"u","event":"f"}],"sentAt":"2026-11-23T11:00:00Z"}`
	for i := 0; i < 2; i++ {
		if resp, _ := h.Handle(context.Background(), post("/v1/batch", body, "authorization", basic("good-key"))); resp.StatusCode != 200 {
			t.Fatalf("status %d %s", resp.StatusCode, resp.Body)
		}
	}
	recs := pub.messages(t)
	if recs[0].Message.MessageID != recs[2].Message.MessageID || recs[0].Message.MessageID == recs[1].Message.MessageID {
		t.Fatalf("ids %s %s %s: a retry must repeat ids, distinct events must not share one",
			recs[0].Message.MessageID, recs[1].Message.MessageID, recs[2].Message.MessageID)
	}
}

func TestGzipBase64AndShortPaths(t *testing.T) {
	for _, path := range []string{"/v1/identify", "/v1/i", "/v1/t", "/v1/p", "/v1/s", "/v1/g", "/v1/a", "/prod/v1/track/"} {
		pub := &memPub{}
		body := `{"userId":"u","anonymousId":"a","event":"e","groupId":"g","previousId":"p"}`
		req := post(path, base64.StdEncoding.EncodeToString([]byte(gz(body))), "Authorization", basic("good-key:"), "Content-Encoding", "gzip")
		req.IsBase64Encoded = true
		resp, _ := newHandler(pub).Handle(context.Background(), req)
		if resp.StatusCode != 200 || len(pub.recs) != 1 {
			t.Fatalf("%s: %d %s, %d records", path, resp.StatusCode, resp.Body, len(pub.recs))
		}
	}
}

func TestStreamFailureIs503(t *testing.T) {
	pub := &memPub{fail: &stream.PutError{Failed: 1, Total: 2, ErrorCode: "InternalFailure"}}
	resp, _ := newHandler(pub).Handle(context.Background(), post("/v1/track", `{"userId":"u","event":"e"}`, "authorization", basic("good-key:")))
	if resp.StatusCode != 503 || resp.Headers["Retry-After"] == "" {
		t.Fatalf("got %d %v", resp.StatusCode, resp.Headers)
	}
}

type brokenKeys struct{}

func (brokenKeys) ResolveWriteKey(context.Context, string) (ingest.Source, error) {
	return ingest.Source{}, errors.New("dynamodb down")
}

func TestKeyStoreFailureIs503(t *testing.T) {
	h := ingest.New(brokenKeys{}, &memPub{}, ingest.Config{})
	resp, _ := h.Handle(context.Background(), post("/v1/track", `{"userId":"u","event":"e"}`, "authorization", basic("k:")))
	if resp.StatusCode != 503 {
		t.Fatalf("got %d", resp.StatusCode)
	}
}

func TestCORSAndSettings(t *testing.T) {
	h := ingest.New(keys{"good-key": {ID: "s", Enabled: true}}, &memPub{}, ingest.Config{AllowedOrigins: []string{"https://shop.example"}})
	pre := post("/v1/t", "", "origin", "https://shop.example")
	pre.RequestContext.HTTP.Method = "OPTIONS"
	resp, _ := h.Handle(context.Background(), pre)
	if resp.StatusCode != 204 || resp.Headers["Access-Control-Allow-Origin"] != "https://shop.example" || !strings.Contains(resp.Headers["Access-Control-Allow-Headers"], "Authorization") {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Headers)
	}
	pre.Headers["origin"] = "https://evil.example"
	resp, _ = h.Handle(context.Background(), pre)
	if _, ok := resp.Headers["Access-Control-Allow-Origin"]; ok {
		t.Fatalf("foreign origin allowed: %v", resp.Headers)
	}

	get := post("/v1/projects/good-key/settings", "", "host", "cdp.example")
	get.RequestContext.HTTP.Method = "GET"
	resp, _ = h.Handle(context.Background(), get)
	var s struct {
		Integrations map[string]struct{ APIKey, APIHost string } `json:"integrations"`
	}
	json.Unmarshal([]byte(resp.Body), &s)
	if resp.StatusCode != 200 || s.Integrations["Segment.io"].APIHost != "cdp.example/v1" || s.Integrations["Segment.io"].APIKey != "good-key" {
		t.Fatalf("settings: %d %s", resp.StatusCode, resp.Body)
	}
	get.RawPath = "/v1/projects/bad/settings"
	if resp, _ = h.Handle(context.Background(), get); resp.StatusCode != 401 {
		t.Fatalf("settings with bad key: %d", resp.StatusCode)
	}
}

func ExampleHandler_Handle() {
	pub := &memPub{}
	h := ingest.New(keys{"k": {ID: "src", Enabled: true}}, pub, ingest.Config{})
	resp, _ := h.Handle(context.Background(), post("/v1/track", `{"userId":"u1","event":"Signed Up"}`, "authorization", basic("k:")))
	fmt.Println(resp.StatusCode, resp.Body, len(pub.recs))
	// Output: 200 {"success":true} 1
}
