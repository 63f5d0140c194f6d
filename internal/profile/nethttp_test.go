package profile_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/serverless-cdp/cdp/internal/identity"
	"github.com/serverless-cdp/cdp/internal/profile"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// TestNetHTTPHandler: the Profile API is a net/http handler; API Gateway events reach it through
// the one adapter (httpapi.Lambda) with the same answers, headers named as before, and the raw
// query string as the client sent it (a repeated key keeps its first value, as before, even
// though API Gateway's decoded parameters join the values with commas).
func TestNetHTTPHandler(t *testing.T) {
	st := identity.NewMemStore(nil)
	rules, _ := identity.Compile(identity.Rules{})
	proc := identity.NewProcessor(st, identity.StaticRules{C: rules}, identity.Options{})
	for i, id := range []string{"m1", "m2", "m3"} {
		r := tracking.Record{SourceID: "web", Message: tracking.Message{Type: "track", MessageID: id, UserID: "ann",
			Event: "E" + id, Timestamp: time.Date(2025, 3, 1, 12, i, 0, 0, time.UTC)}}
		if _, _, err := proc.Process(context.Background(), []tracking.Record{r}); err != nil {
			t.Fatal(err)
		}
	}
	h := profile.NewHandler(st, func(_ context.Context, tok string) (bool, error) { return tok == "secret", nil }, nil)
	const path = "/v1/spaces/default/collections/users/profiles/user_id:ann/events"
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("secret:"))

	req := httptest.NewRequest("GET", path+"?limit=1&limit=500", nil)
	req.Header.Set("Authorization", auth)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	var direct struct{ Data []any }
	if err := json.Unmarshal(w.Body.Bytes(), &direct); w.Code != 200 || err != nil || len(direct.Data) != 1 {
		t.Fatalf("net/http: %d %s", w.Code, w.Body)
	}

	ev := events.APIGatewayV2HTTPRequest{RawPath: path, RawQueryString: "limit=1&limit=500",
		QueryStringParameters: map[string]string{"limit": "1,500"}, Headers: map[string]string{"authorization": auth}}
	ev.RequestContext.HTTP.Method = "GET"
	resp, err := h.Handle(context.Background(), ev)
	if err != nil || resp.StatusCode != 200 || resp.Body != w.Body.String() || resp.IsBase64Encoded {
		t.Fatalf("event: %d %s %v, want the net/http answer %s", resp.StatusCode, resp.Body, err, w.Body)
	}
	if len(resp.Headers) != 1 || resp.Headers["Content-Type"] != "application/json" {
		t.Fatalf("headers: %v", resp.Headers)
	}

	ev.Headers = map[string]string{}
	resp, _ = h.Handle(context.Background(), ev)
	if resp.StatusCode != http.StatusUnauthorized || resp.Headers["WWW-Authenticate"] != `Basic realm="profiles"` || resp.Headers["Content-Type"] != "application/json" {
		t.Fatalf("401: %d %v", resp.StatusCode, resp.Headers)
	}
}
