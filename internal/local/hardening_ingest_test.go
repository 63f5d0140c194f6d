//go:build integration

package local_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// ingestPost sends a raw body to the tracking API with the write key and returns the status and
// the decoded {code,message}.
func ingestPost(t *testing.T, stackURL, path, writeKey string, body []byte, headers ...string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", stackURL+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(writeKey, "")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var e struct{ Code, Message string }
	_ = json.Unmarshal(raw, &e)
	return resp.StatusCode, e.Code, e.Message
}

// ingestBatch is a /v1/batch body of tracks, item i of which is items[i].
func ingestBatch(items []string) []byte {
	return []byte(`{"batch":[` + strings.Join(items, ",") + `]}`)
}

func ingestTrack(userID, messageID string) string {
	return fmt.Sprintf(`{"type":"track","event":"Viewed","userId":%q,"messageId":%q}`, userID, messageID)
}

// ingestProfileGet reads a Profile API resource (raw path after …/profiles/) and decodes it.
func ingestProfileGet(t *testing.T, stackURL, rest string, out any) int {
	t.Helper()
	return call(t, "GET", stackURL+"/v1/spaces/default/collections/users/profiles/"+rest, "Basic "+basicToken(adminToken), nil, out)
}

// ingestEventIDs lists the message ids of a profile's timeline (up to 100), or nil on 404.
func ingestEventIDs(t *testing.T, stackURL, ref string) []string {
	t.Helper()
	var body struct {
		Data []struct {
			MessageID string `json:"message_id"`
		} `json:"data"`
	}
	if st := ingestProfileGet(t, stackURL, url.PathEscape(ref)+"/events?limit=100", &body); st != 200 {
		return nil
	}
	ids := make([]string, 0, len(body.Data))
	for _, d := range body.Data {
		ids = append(ids, d.MessageID)
	}
	sort.Strings(ids)
	return ids
}

// A batch of 60 with one over-long messageId (or userId) is refused whole with 400 naming the
// item and field, and stores nothing; the 59 good events sent again are all stored.
func TestIngestOverlongIDBatchIsRefusedAndGoodEventsAreStored(t *testing.T) {
	stack, _, writeKey := startStack(t)
	long := strings.Repeat("x", 3000)
	good := make([]string, 0, 60)
	var wantIDs []string
	for i := 0; i < 60; i++ {
		if i == 17 {
			continue
		}
		id := fmt.Sprintf("ingest-good-%02d", i)
		good = append(good, ingestTrack("ingest-user-a", id))
		wantIDs = append(wantIDs, id)
	}
	sort.Strings(wantIDs)
	withBad := func(bad string) []string {
		items := append([]string{}, good[:17]...)
		items = append(items, bad)
		return append(items, good[17:]...)
	}
	st, code, msg := ingestPost(t, stack.URL, "/v1/batch", writeKey, ingestBatch(withBad(ingestTrack("ingest-user-a", long))))
	if st != 400 || code != "invalid_field" || !strings.Contains(msg, "batch[17]: messageId is 3000 bytes") {
		t.Fatalf("over-long messageId: %d %s %q", st, code, msg)
	}
	// The refused request's other events belong to user b only: b must end up with just the
	// marker sent afterwards (same partition key, so it is processed after anything earlier).
	refused := []string{ingestTrack("ingest-user-b", "ingest-refused-1"), `{"type":"identify","userId":"` + long + `"}`, ingestTrack("ingest-user-b", "ingest-refused-2")}
	st, code, msg = ingestPost(t, stack.URL, "/v1/batch", writeKey, ingestBatch(refused))
	if st != 400 || code != "invalid_field" || !strings.Contains(msg, "batch[1]: userId is 3000 bytes") {
		t.Fatalf("over-long userId: %d %s %q", st, code, msg)
	}
	if st, _, _ := ingestPost(t, stack.URL, "/v1/batch", writeKey, ingestBatch(good)); st != 200 {
		t.Fatalf("the 59 good events: %d", st)
	}
	if st, _, _ := ingestPost(t, stack.URL, "/v1/track", writeKey, []byte(ingestTrack("ingest-user-b", "ingest-marker"))); st != 200 {
		t.Fatalf("marker: %d", st)
	}
	eventually(t, "the 59 good events and the marker", 30*time.Second, func() bool {
		return len(ingestEventIDs(t, stack.URL, "user_id:ingest-user-a")) == 59 && len(ingestEventIDs(t, stack.URL, "user_id:ingest-user-b")) == 1
	})
	if got := ingestEventIDs(t, stack.URL, "user_id:ingest-user-a"); strings.Join(got, ",") != strings.Join(wantIDs, ",") {
		t.Fatalf("user a's events: %v", got)
	}
	if got := ingestEventIDs(t, stack.URL, "user_id:ingest-user-b"); strings.Join(got, ",") != "ingest-marker" {
		t.Fatalf("a refused request stored events: %v", got)
	}
}

// Timestamps that fall outside years 1–9999 (in UTC, or after clock-skew correction) are the
// client's mistake: 400 invalid_timestamp, never 503 (which SDKs retry forever).
func TestIngestOutOfRangeTimestampsAre400(t *testing.T) {
	stack, _, writeKey := startStack(t)
	for _, body := range []string{
		`{"userId":"u","event":"e","timestamp":"9999-12-31T23:59:59-23:59"}`,
		`{"userId":"u","event":"e","timestamp":"0000-01-01T00:00:00+01:00"}`,
		`{"userId":"u","event":"e","timestamp":"2026-01-01T00:00:00Z","sentAt":"9999-01-01T00:00:00Z"}`,
	} {
		if st, code, msg := ingestPost(t, stack.URL, "/v1/track", writeKey, []byte(body)); st != 400 || code != "invalid_timestamp" {
			t.Fatalf("%s: %d %s %q", body, st, code, msg)
		}
		batch := []byte(`{"batch":[` + ingestTrack("u", "m1") + `,` + strings.Replace(body, `{`, `{"type":"track",`, 1) + `]}`)
		if st, code, msg := ingestPost(t, stack.URL, "/v1/batch", writeKey, batch); st != 400 || code != "invalid_timestamp" || !strings.Contains(msg, "batch[1]") {
			t.Fatalf("batch with %s: %d %s %q", body, st, code, msg)
		}
	}
}

// `u\xff` and `u\xfe` would both decode to `u\uFFFD` and two strangers would share a profile.
func TestIngestInvalidUTF8IDsAre400(t *testing.T) {
	stack, _, writeKey := startStack(t)
	for _, id := range []string{"u\xff", "u\xfe", `u\ud800`} {
		body := []byte(`{"userId":"` + id + `","event":"e"}`)
		if st, code, msg := ingestPost(t, stack.URL, "/v1/track", writeKey, body); st != 400 || code != "invalid_field" || !strings.Contains(msg, "userId") {
			t.Fatalf("userId %q: %d %s %q", id, st, code, msg)
		}
	}
}

// The Profile API answers a 3 KB identifier and forged paging cursors with 4xx {code,message}.
func TestIngestProfileAPIBadIdentifiersAndCursorsAre4xx(t *testing.T) {
	stack, _, writeKey := startStack(t)
	for _, u := range []string{"ingest-p1", "ingest-p2"} {
		items := []string{ingestTrack(u, u+"-m1"), ingestTrack(u, u+"-m2"), ingestTrack(u, u+"-m3")}
		if st, _, _ := ingestPost(t, stack.URL, "/v1/batch", writeKey, ingestBatch(items)); st != 200 {
			t.Fatalf("seed %s: %d", u, st)
		}
	}
	eventually(t, "seeded events", 30*time.Second, func() bool {
		return len(ingestEventIDs(t, stack.URL, "user_id:ingest-p1")) == 3 && len(ingestEventIDs(t, stack.URL, "user_id:ingest-p2")) == 3
	})
	want4xx := func(rest string, status int, code string) {
		t.Helper()
		var e struct{ Code, Message string }
		st := ingestProfileGet(t, stack.URL, rest, &e)
		if st != status || e.Code != code || e.Message == "" {
			t.Fatalf("%.100s: %d %+v, want %d %s", rest, st, e, status, code)
		}
	}
	long := strings.Repeat("x", 3000)
	for _, res := range []string{"traits", "external_ids", "events", "metadata", "links", "merges"} {
		want4xx("user_id:"+long+"/"+res, 400, "invalid_identifier")
		want4xx("email:"+long+"%40example.com/"+res, 400, "invalid_identifier")
	}
	want4xx("user_id:nobody-"+strings.Repeat("y", 400)+"/traits", 404, "not_found")

	page := func(ref string) string {
		var body struct{ Cursor struct{ Next string } }
		if st := ingestProfileGet(t, stack.URL, ref+"/events?limit=1", &body); st != 200 || body.Cursor.Next == "" {
			t.Fatalf("%s: %d %+v", ref, st, body)
		}
		return body.Cursor.Next
	}
	p1Next, p2Next := page("user_id:ingest-p1"), page("user_id:ingest-p2")
	var genuine struct{ Data []any }
	if st := ingestProfileGet(t, stack.URL, "user_id:ingest-p1/events?limit=1&next="+url.QueryEscape(p1Next), &genuine); st != 200 || len(genuine.Data) != 1 {
		t.Fatalf("genuine cursor: %d %+v", st, genuine)
	}
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for name, forged := range map[string]string{
		"random base64":          enc("\x93\x11\xfe\x00 random"),
		"base64 of garbage JSON": enc(`{"p":[1,2`),
		"another profile":        p2Next,
		"store position only":    enc("EVT#" + long),
		"too long":               strings.Repeat("QUFB", 1000),
	} {
		for _, res := range []string{"events", "merges"} {
			var e struct{ Code string }
			if st := ingestProfileGet(t, stack.URL, "user_id:ingest-p1/"+res+"?next="+url.QueryEscape(forged), &e); st != 400 || e.Code != "invalid_cursor" {
				t.Fatalf("%s cursor on %s: %d %s", name, res, st, e.Code)
			}
		}
	}
}

// ingestAdminRoutes reads every admin operation from api/openapi.yaml.
func ingestAdminRoutes(t *testing.T) [][2]string {
	t.Helper()
	raw, err := os.ReadFile("../../api/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var out [][2]string
	for p, ops := range doc.Paths {
		for m := range ops {
			switch m {
			case "get", "put", "post", "delete":
				out = append(out, [2]string{strings.ToUpper(m), p})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i][1]+out[i][0] < out[j][1]+out[j][0] })
	return out
}

// ingestAdminDo makes an admin request with a raw path and body and returns the status.
func ingestAdminDo(t *testing.T, method, rawURL string, body []byte) int {
	t.Helper()
	req, err := http.NewRequest(method, rawURL, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("%s %.100s: %v", method, rawURL, err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %.100s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// Every admin route answers bad path parameters, query parameters and bodies with 4xx.
func TestIngestAdminAPIBadInputIs4xx(t *testing.T) {
	stack, _, _ := startStack(t)
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }))
	defer rc.Close()
	bearer := "Bearer " + adminToken
	var dest struct{ Destination struct{ ID string } }
	if st := call(t, "POST", stack.URL+"/admin/v1/destinations", bearer, map[string]any{
		"name": "ingest-crm", "url": rc.URL + "/hook", "subscriptions": map[string]any{"audiences": []string{"*"}},
	}, &dest); st != 201 {
		t.Fatalf("create destination: %d", st)
	}
	var aud struct{ ID string }
	if st := call(t, "POST", stack.URL+"/admin/v1/audiences", bearer, map[string]any{
		"key": "ingest_buyers", "name": "Buyers",
		"condition": map[string]any{"event": map[string]any{"name": "Order Completed", "count": map[string]any{"op": "at_least", "n": 1}, "within": map[string]any{"days": 30}}},
	}, &aud); st != 201 && st != 200 {
		t.Fatalf("create audience: %d", st)
	}
	real := map[string]string{"/destinations/": dest.Destination.ID, "/audiences/": aud.ID, "/dead-letters/": "identity"}
	fill := func(path, v string) string {
		out := path
		for strings.Contains(out, "{") {
			i, j := strings.Index(out, "{"), strings.Index(out, "}")
			out = out[:i] + v + out[j+1:]
		}
		return out
	}
	// fillReal uses existing ids for the first parameter, so the listings reach their cursors.
	fillReal := func(path string) string {
		for prefix, id := range real {
			if i := strings.Index(path, prefix+"{"); i >= 0 && id != "" {
				j := strings.Index(path[i:], "}") + i
				path = path[:i+len(prefix)] + id + path[j+1:]
			}
		}
		return fill(path, "x")
	}
	long := strings.Repeat("x", 3000)
	forged := []string{
		"garbage!", base64.RawURLEncoding.EncodeToString([]byte(`{"pk":"X","zz":"` + long[:100] + `"}`)),
		base64.RawURLEncoding.EncodeToString([]byte(long[:1500])), base64.RawURLEncoding.EncodeToString([]byte("\xff\xfe")),
		strings.Repeat("A", 3000),
	}
	bodies := [][]byte{[]byte(`{`), []byte(`[]`), []byte(`"x"`), []byte(`{"unknown":1}`), []byte(`{"name":"` + strings.Repeat("n", 500<<10) + `"}`)}
	for _, r := range ingestAdminRoutes(t) {
		method, path := r[0], r[1]
		check := func(what, u string, body []byte) {
			t.Helper()
			if st := ingestAdminDo(t, method, u, body); st < 400 || st >= 500 {
				t.Errorf("%s %s with %s: %d, want 4xx", method, path, what, st)
			}
		}
		if strings.Contains(path, "{") {
			check("a 3000-byte parameter", stack.URL+fill(path, long), nil)
			check("a parameter not UTF-8", stack.URL+fill(path, "u%FF"), nil)
		}
		if method == "GET" {
			// A listing refuses a bad limit; a route that does not page may ignore it.
			for _, l := range []string{"abc", "-1", "99999999999"} {
				if st := ingestAdminDo(t, method, stack.URL+fillReal(path)+"?limit="+l, nil); st >= 500 {
					t.Errorf("GET %s with limit=%s: %d", path, l, st)
				}
			}
			check("a 3000-byte query", stack.URL+fillReal(path)+"?q="+long, nil)
			if strings.HasSuffix(path, "s") || strings.HasSuffix(path, "}") || strings.Contains(path, "members") || strings.Contains(path, "letters") {
				for _, f := range forged {
					st := ingestAdminDo(t, method, stack.URL+fillReal(path)+"?next="+url.QueryEscape(f), nil)
					if st >= 500 {
						t.Errorf("GET %s with next=%.30q: %d", path, f, st)
					}
				}
			}
		}
		if method == "POST" || method == "PUT" {
			for _, b := range bodies {
				// Routes that take no body (enable, disable) may ignore one; none may fail.
				if st := ingestAdminDo(t, method, stack.URL+fillReal(path), b); st >= 500 {
					t.Errorf("%s %s with body %.20q: %d", method, path, b, st)
				}
			}
		}
	}
}

// ingestPreflight sends a browser's CORS preflight and reports whether the answer lets it send
// every requested header from origin.
func ingestPreflight(t *testing.T, endpoint, origin, requested string) bool {
	t.Helper()
	req, _ := http.NewRequest("OPTIONS", endpoint, nil)
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", requested)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 || (resp.Header.Get("Access-Control-Allow-Origin") != "*" && resp.Header.Get("Access-Control-Allow-Origin") != origin) {
		return false
	}
	allowed := map[string]bool{}
	for _, h := range strings.Split(resp.Header.Get("Access-Control-Allow-Headers"), ",") {
		allowed[strings.ToLower(strings.TrimSpace(h))] = true
	}
	for _, h := range strings.Split(requested, ",") {
		if !allowed[strings.ToLower(strings.TrimSpace(h))] {
			return false
		}
	}
	return true
}

// The browser SDKs' requests pass the preflight and are then accepted: RudderStack's JS SDK
// (v1.1 and v3, first try and retry) and analytics-next with a custom header.
func TestIngestBrowserSDKPreflights(t *testing.T) {
	stack, _, writeKey := startStack(t)
	const origin = "https://shop.example"
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(writeKey+":"))
	for _, sdk := range []struct {
		name, path, requested string
		headers               []string
	}{
		{"rudderstack v1.1", "/v1/track", "anonymousid,authorization,content-type",
			[]string{"Content-Type", "application/json;charset=UTF-8", "AnonymousId", base64.StdEncoding.EncodeToString([]byte("anon-rs1"))}},
		{"rudderstack v3", "/v1/batch", "accept,anonymousid,authorization,content-type",
			[]string{"Content-Type", "application/json;charset=UTF-8", "Accept", "application/json", "AnonymousId", base64.StdEncoding.EncodeToString([]byte("anon-rs3"))}},
		{"rudderstack v3 retry", "/v1/batch", "accept,anonymousid,authorization,content-type,rsa-retry-attempt,rsa-retry-reason,rsa-since-first-attempt,rsa-since-last-attempt,sentat",
			[]string{"Content-Type", "application/json;charset=UTF-8", "AnonymousId", base64.StdEncoding.EncodeToString([]byte("anon-rs3")), "SentAt", time.Now().UTC().Format(time.RFC3339),
				"rsa-retry-attempt", "1", "rsa-since-last-attempt", "1200", "rsa-since-first-attempt", "1200", "rsa-retry-reason", "server-5xx"}},
		{"analytics-next custom header", "/v1/b", "content-type,x-api-key", []string{"Content-Type", "application/json", "X-Api-Key", "k"}},
	} {
		if !ingestPreflight(t, stack.URL+sdk.path, origin, sdk.requested) {
			t.Fatalf("%s: preflight refused %q", sdk.name, sdk.requested)
		}
		body := []byte(`{"batch":[{"type":"track","event":"e","anonymousId":"anon-1"}]}`)
		if sdk.path == "/v1/track" {
			body = []byte(`{"event":"e","anonymousId":"anon-1"}`)
		}
		if !strings.Contains(sdk.requested, "authorization") {
			body = bytes.Replace(body, []byte(`{`), []byte(`{"writeKey":"`+writeKey+`",`), 1)
		}
		hdr := append([]string{"Origin", origin}, sdk.headers...)
		if strings.Contains(sdk.requested, "authorization") {
			hdr = append(hdr, "Authorization", auth)
		}
		req, _ := http.NewRequest("POST", stack.URL+sdk.path, bytes.NewReader(body))
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") == "" {
			t.Fatalf("%s: POST %d, allow-origin %q", sdk.name, resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
		}
	}
}
