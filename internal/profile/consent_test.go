package profile_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/serverless-cdp/cdp/internal/identity"
	"github.com/serverless-cdp/cdp/internal/profile"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// The consent resource shows, per category, the newest preference the person's events sent
// and when; by any identifier, merged profiles included.
func TestConsentResource(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		st := b.open(t)
		rules, _ := identity.Compile(identity.Rules{})
		proc := identity.NewProcessor(st, identity.StaticRules{C: rules}, identity.Options{})
		at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
		send := func(id, uid, aid string, min int, ctx string) {
			r := tracking.Record{SourceID: "web", Message: tracking.Message{Type: "track", Event: "E", MessageID: id, UserID: uid, AnonymousID: aid,
				Timestamp: at.Add(time.Duration(min) * time.Minute), Context: json.RawMessage(ctx)}}
			if res, _, err := proc.Process(context.Background(), []tracking.Record{r}); err != nil || res[0].Outcome != identity.Processed {
				t.Fatalf("process %s: %v %+v", id, err, res)
			}
		}
		send("c1", "", "anon-1", 0, `{"consent":{"categoryPreferences":{"advertising":true,"analytics":true}}}`)
		send("c2", "ann", "", 2, `{"consent":{"categoryPreferences":{"advertising":false}}}`)
		send("c3", "ann", "anon-1", 3, `{}`)
		send("c4", "bob", "", 0, `{}`)
		h := profile.NewHandler(st, func(context.Context, string) (bool, error) { return true, nil }, nil)
		get := func(ref string) (int, string) {
			req := events.APIGatewayV2HTTPRequest{RawPath: "/v1/spaces/default/collections/users/profiles/" + ref + "/consent",
				Headers: map[string]string{"authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("tok:"))}}
			req.RequestContext.HTTP.Method = "GET"
			resp, err := h.Handle(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			return resp.StatusCode, resp.Body
		}
		want := `{"consent":{"advertising":{"granted":false,"at":"2025-03-01T12:02:00Z"},"analytics":{"granted":true,"at":"2025-03-01T12:00:00Z"}}}`
		for _, ref := range []string{"user_id:ann", "anonymous_id:anon-1"} {
			if code, body := get(ref); code != 200 || body != want {
				t.Fatalf("%s: %d %s\nwant %s", ref, code, body, want)
			}
		}
		if code, body := get("user_id:bob"); code != 200 || body != `{"consent":{}}` {
			t.Fatalf("no preferences: %d %s", code, body)
		}
		if code, _ := get("user_id:nobody"); code != 404 {
			t.Fatalf("unknown profile: %d", code)
		}
	})
}
