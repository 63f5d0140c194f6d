//go:build integration

package profile_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/serverless-cdp/cdp/internal/identity"
	"github.com/serverless-cdp/cdp/internal/profile"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// Bad identifiers and forged cursors are 400 {code,message} (404 for a valid identifier no
// profile holds), never a 500 from a key DynamoDB refuses.
func TestBadIdentifiersAndForgedCursorsAre4xx(t *testing.T) {
	eachBackend(t, testBadIdentifiersAndForgedCursorsAre4xx)
}

func testBadIdentifiersAndForgedCursorsAre4xx(t *testing.T, b backend) {
	st := b.open(t)
	rules, _ := identity.Compile(identity.Rules{})
	proc := identity.NewProcessor(st, identity.StaticRules{C: rules}, identity.Options{})
	var recs []tracking.Record
	for i, uid := range []string{"ann", "ann", "ann", "bob", "bob", "bob"} {
		recs = append(recs, msg("track", "m"+string(rune('1'+i)), i, uid, "", func(m *tracking.Message) { m.Event = "E" }))
	}
	if _, _, err := proc.Process(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	api := client{t, profile.NewHandler(st, func(_ context.Context, tok string) (bool, error) { return tok == "secret", nil }, nil)}
	base := "/v1/spaces/default/collections/users/profiles/"
	want := func(path string, status int, code string) {
		t.Helper()
		got, body := api.get(path, "secret")
		if got != status || body["code"] != code || body["message"] == "" {
			t.Fatalf("%.120s: got %d %v, want %d %s", path, got, body, status, code)
		}
	}
	long := strings.Repeat("x", 3000)
	for _, res := range []string{"traits", "external_ids", "events", "metadata", "links", "merges"} {
		want(base+"user_id:"+long+"/"+res, 400, "invalid_identifier")
		want(base+long+":v/"+res, 400, "invalid_identifier")
		want(base+"use_"+long+"/"+res, 400, "invalid_identifier")
		want(base+"user_id:u%FF/"+res, 400, "invalid_identifier")
	}
	want(base+"user_id:"+strings.Repeat("y", tracking.MaxIDBytes)+"/traits", 404, "not_found")

	// Page 1 of ann's and bob's events, to forge cursors from.
	nextOf := func(ref, res string) string {
		_, body := api.get(base+ref+"/"+res+"?limit=1", "secret")
		n, _ := body["cursor"].(map[string]any)["next"].(string)
		if n == "" {
			t.Fatalf("%s %s: no next page: %v", ref, res, body)
		}
		return n
	}
	annNext, bobNext := nextOf("user_id:ann", "events"), nextOf("user_id:bob", "events")
	if code, body := api.get(base+"user_id:ann/events?limit=1&next="+url.QueryEscape(annNext), "secret"); code != 200 || len(body["data"].([]any)) != 1 {
		t.Fatalf("a genuine cursor: %d %v", code, body)
	}
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	wrap := func(p, r, k string) string {
		j, _ := json.Marshal(map[string]string{"p": p, "r": r, "k": k})
		return b64(string(j))
	}
	var annCur map[string]string
	raw, _ := base64.RawURLEncoding.DecodeString(annNext)
	_ = json.Unmarshal(raw, &annCur)
	for name, forged := range map[string]string{
		"random base64":          b64("\x8f\x01\xfe garbage"),
		"base64 of garbage JSON": b64(`{"p":["x"],`),
		"unknown fields":         b64(`{"p":"` + annCur["p"] + `","r":"events","k":"` + annCur["k"] + `","x":1}`),
		"another profile":        bobNext,
		"another resource":       wrap(annCur["p"], "merges", annCur["k"]),
		"position too long":      wrap(annCur["p"], "events", b64("EVT#"+strings.Repeat("9", 1500))),
		"position not UTF-8":     wrap(annCur["p"], "events", b64("EVT#\xff")),
		"position of the store":  b64("EVT#2025"),
		"too long":               strings.Repeat("A", 3000),
		"not base64":             "garbage!",
	} {
		t.Run(name, func(t *testing.T) {
			want(base+"user_id:ann/events?next="+url.QueryEscape(forged), 400, "invalid_cursor")
			want(base+"user_id:ann/merges?next="+url.QueryEscape(forged), 400, "invalid_cursor")
		})
	}
	want(base+"user_id:ann/traits?next="+long, 400, "invalid_cursor")
	want(base+"user_id:ann/external_ids?next="+long, 400, "invalid_cursor")
}
