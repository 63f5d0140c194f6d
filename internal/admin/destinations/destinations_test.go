//go:build integration

package destinations_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/serverless-cdp/cdp/internal/activation"
	"github.com/serverless-cdp/cdp/internal/activations"
	"github.com/serverless-cdp/cdp/internal/admin"
	"github.com/serverless-cdp/cdp/internal/admin/destinations"
	"github.com/serverless-cdp/cdp/internal/admintoken"
	"github.com/serverless-cdp/cdp/internal/destination"
	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
	"github.com/serverless-cdp/cdp/internal/httpapi"
	"github.com/serverless-cdp/cdp/internal/webhook"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type okAuth struct{}

func (okAuth) Verify(context.Context, string) (admintoken.Token, error) {
	return admintoken.Token{ID: "t"}, nil
}

// handle delivers one activations record through the stage, as its Kinesis trigger would.
func handle(t *testing.T, d *activation.Deliverer, r activations.Record) {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	ev := events.KinesisEvent{Records: []events.KinesisEventRecord{{EventSource: "aws:kinesis",
		Kinesis: events.KinesisRecord{Data: b, PartitionKey: r.ProfileID, SequenceNumber: "1"}}}}
	resp, err := d.HandleKinesis(context.Background(), ev)
	if err != nil || len(resp.BatchItemFailures) > 0 {
		t.Fatalf("handle: %v %+v", err, resp.BatchItemFailures)
	}
}

func TestAdminRoutes(t *testing.T) {
	c := testenv.Clients(t)
	table := testenv.Table(t, c.DynamoDB)
	loopback := webhook.Policy{AllowLoopback: true}
	dests := destination.NewService(c.DynamoDB, table, destination.WithPolicy(loopback))
	d := activation.New(c.DynamoDB, dests, webhook.NewClient(webhook.Options{Policy: loopback}), activation.Config{
		Table: table, Timeout: 2 * time.Second, SpaceID: "spc_1",
	})
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(400) }))
	t.Cleanup(rcv.Close)
	rt := admin.NewRouter(okAuth{}, nil)
	destinations.Register(rt, dests, d)
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
	if out := call("POST", p, `{"name":"a","url":"`+rcv.URL+`","consentCategories":["ads","ads"]}`, 400); !strings.Contains(fmt.Sprint(out), "consentCategories") {
		t.Fatalf("the refusal names the field: %v", out)
	}
	out := call("POST", p, `{"name":"crm","url":"`+rcv.URL+`","subscriptions":{"audiences":["*"]}}`, 201)
	id := out["destination"].(map[string]any)["id"].(string)
	if s, _ := out["secret"].(string); len(s) < 10 {
		t.Fatalf("no secret: %v", out)
	}
	call("GET", p, "", 200)
	call("GET", p+"/"+id, "", 200)
	call("GET", p+"/nope", "", 404)
	call("POST", p+"/"+id+"/rotate-secret", `{"graceSeconds":60}`, 200)
	handle(t, d, activations.Record{ID: "rec_1", Kind: activations.KindAudienceEntered, ProfileID: "prof_1", UserID: "u1",
		Audience: &activations.Audience{ID: "aud_1", Key: "vip_customers", Name: "VIP"}, OccurredAt: time.Now().UTC()})
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
	call("PUT", p+"/"+id, `{"name":"crm2","url":"`+rcv.URL+`","consentCategories":["advertising"],"requireConsent":true,"subscriptions":{"privacy":true}}`, 200)
	got := call("GET", p+"/"+id, "", 200)["destination"].(map[string]any)
	if fmt.Sprint(got["consentCategories"]) != "[advertising]" || got["requireConsent"] != true ||
		got["subscriptions"].(map[string]any)["privacy"] != true {
		t.Fatalf("consent settings not stored or shown: %v", got)
	}
	call("DELETE", p+"/"+id, "", 204)
}
