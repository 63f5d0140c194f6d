//go:build integration

package chaos_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/emulator"
)

// chaosEmulators is this package's private emulator pair, set once by TestMain: the tests stop
// and restart emulators, so they never touch the ones other packages share.
var chaosEmulators struct {
	cfg   emulator.Config
	stack *emulator.Stack
}

func TestMain(m *testing.M) { os.Exit(chaosMain(m)) }

func chaosMain(m *testing.M) int {
	cfg, err := emulator.DefaultConfig(".")
	if err == nil {
		cfg.DynamoDBPort, err = emulator.FreePort()
	}
	if err == nil {
		cfg.KinesisPort, err = emulator.FreeKinesisPort()
	}
	if err == nil {
		cfg.LogDir, err = os.MkdirTemp("", "cdp-chaos-emulators-")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	stack, err := emulator.Start(ctx, cfg)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		return 1
	}
	defer os.RemoveAll(cfg.LogDir)
	defer stack.Stop()
	chaosEmulators.cfg, chaosEmulators.stack = cfg, stack
	os.Setenv("AWS_ENDPOINT_URL_DYNAMODB", stack.DynamoDBEndpoint)
	os.Setenv("AWS_ENDPOINT_URL_KINESIS", stack.KinesisEndpoint)
	for k, v := range map[string]string{"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"} {
		if os.Getenv(k) == "" {
			os.Setenv(k, v)
		}
	}
	return m.Run()
}

// chaosEvent is one track call; its messageId is unique in the test.
type chaosEvent struct{ ID, User string }

func chaosEvents(prefix string, users, perUser int) []chaosEvent {
	var out []chaosEvent
	for i := 0; i < perUser; i++ {
		for u := 0; u < users; u++ {
			out = append(out, chaosEvent{ID: fmt.Sprintf("%s-%d-%d", prefix, u, i), User: fmt.Sprintf("%s-user-%d", prefix, u)})
		}
	}
	return out
}

// chaosSender sends events through the tracking API with net/http and remembers the answers.
type chaosSender struct {
	baseURL  string
	writeKey string
	client   *http.Client

	mu      sync.Mutex
	acked   map[string]int // messageId → answers 200 for a request holding it
	answers map[int]int    // HTTP status → count; 0 is a transport error
}

func newChaosSender(baseURL, writeKey string) *chaosSender {
	return &chaosSender{
		baseURL: baseURL, writeKey: writeKey, client: &http.Client{Timeout: 15 * time.Second},
		acked: map[string]int{}, answers: map[int]int{},
	}
}

// send posts the events as one /v1/batch call and reports whether it was answered 200.
func (s *chaosSender) send(evs ...chaosEvent) bool {
	items := make([]map[string]any, len(evs))
	for i, e := range evs {
		items[i] = map[string]any{"type": "track", "userId": e.User, "event": "Chaos Tested", "messageId": e.ID, "properties": map[string]int{"i": i}}
	}
	body, _ := json.Marshal(map[string]any{"batch": items})
	req, _ := http.NewRequest(http.MethodPost, s.baseURL+"/v1/batch", strings.NewReader(string(body)))
	req.SetBasicAuth(s.writeKey, "")
	req.Header.Set("Content-Type", "application/json")
	status := 0
	if resp, err := s.client.Do(req); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		status = resp.StatusCode
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answers[status]++
	if status == http.StatusOK {
		for _, e := range evs {
			s.acked[e.ID]++
		}
	}
	return status == http.StatusOK
}

// sendAll sends the events once, batch events per call, from workers goroutines; progress (if
// set) is called after each call with how many events were answered 200 so far. It returns the
// events whose call was not answered 200.
func (s *chaosSender) sendAll(evs []chaosEvent, batch, workers int, progress func(acked int)) []chaosEvent {
	work := make(chan []chaosEvent)
	var mu sync.Mutex
	var failed []chaosEvent
	acked := 0
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range work {
				ok := s.send(b...)
				mu.Lock()
				if ok {
					acked += len(b)
				} else {
					failed = append(failed, b...)
				}
				n := acked
				mu.Unlock()
				if progress != nil {
					progress(n)
				}
			}
		}()
	}
	for i := 0; i < len(evs); i += batch {
		work <- evs[i:min(i+batch, len(evs))]
	}
	close(work)
	wg.Wait()
	return failed
}

// resend sends each event again, one call each, until it is answered 200; it fails the test if
// that does not happen within the time given, and returns when the first one succeeded.
func (s *chaosSender) resend(t *testing.T, evs []chaosEvent, within time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(within)
	var first time.Time
	for _, e := range evs {
		for !s.send(e) {
			if time.Now().After(deadline) {
				t.Fatalf("event %s still not accepted after %s; answers so far %v", e.ID, within, s.statusCounts())
			}
			time.Sleep(50 * time.Millisecond)
		}
		if first.IsZero() {
			first = time.Now()
		}
	}
	return first
}

func (s *chaosSender) statusCounts() map[int]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[int]int{}
	for k, v := range s.answers {
		out[k] = v
	}
	return out
}

func (s *chaosSender) ackedIDs() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.acked {
		out[k] = v
	}
	return out
}

// chaosTimelines reads every user's events through the Profile API and counts message ids.
func chaosTimelines(t *testing.T, baseURL, token string, users map[string]bool) map[string]int {
	t.Helper()
	counts := map[string]int{}
	client := &http.Client{Timeout: 15 * time.Second}
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(token+":"))
	for user := range users {
		next := ""
		for page := 0; page < 100; page++ {
			u := baseURL + "/v1/spaces/default/collections/users/profiles/" + url.PathEscape("user_id:"+user) + "/events?limit=100"
			if next != "" {
				u += "&next=" + url.QueryEscape(next)
			}
			req, _ := http.NewRequest(http.MethodGet, u, nil)
			req.Header.Set("Authorization", auth)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("profile api: %v", err)
			}
			var body struct {
				Data []struct {
					MessageID string `json:"message_id"`
				} `json:"data"`
				Cursor struct{ Next string } `json:"cursor"`
			}
			err = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusNotFound {
				break // not resolved yet
			}
			if resp.StatusCode != http.StatusOK || err != nil {
				t.Fatalf("profile api %s: %d %v", user, resp.StatusCode, err)
			}
			for _, d := range body.Data {
				counts[d.MessageID]++
			}
			if next = body.Cursor.Next; next == "" {
				break
			}
		}
	}
	return counts
}

// chaosExpectExactlyOnce waits until every event answered 200 is in its user's timeline, then
// requires each stored exactly once and nothing else stored. It returns the number checked.
func chaosExpectExactlyOnce(t *testing.T, baseURL, token string, s *chaosSender, evs []chaosEvent, within time.Duration) int {
	t.Helper()
	acked := s.ackedIDs()
	users := map[string]bool{}
	known := map[string]bool{}
	for _, e := range evs {
		users[e.User], known[e.ID] = true, true
	}
	deadline := time.Now().Add(within)
	for {
		stored := chaosTimelines(t, baseURL, token, users)
		var missing []string
		for id := range acked {
			if stored[id] == 0 {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 {
			for id, n := range stored {
				if !known[id] {
					t.Fatalf("stored an event never sent: %s", id)
				}
				if n != 1 {
					t.Fatalf("event %s stored %d times", id, n)
				}
			}
			return len(acked)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events answered 200 are not stored after %s (e.g. %v)", len(missing), len(acked), within, missing[:min(5, len(missing))])
		}
		time.Sleep(200 * time.Millisecond)
	}
}
