package tracking_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/tracking"
)

// FuzzParse feeds arbitrary bodies to every endpoint kind: the parser must never panic, must
// reject with a *tracking.Error (a 400 with a code), and whatever it accepts must be valid.
func FuzzParse(f *testing.F) {
	seeds := []string{
		`{"userId":"u","event":"e"}`,
		`{"batch":[{"type":"track","userId":1,"event":"e","timestamp":"2026-01-01T00:00:00Z"}],"sentAt":"2026-01-01T00:00:01Z","context":{"a":1}}`,
		`{"batch":[{"type":"alias","userId":"u","previousId":"p"}],"integrations":{"All":false}}`,
		`{"anonymousId":"a","traits":{"email":"x@y"},"context":{"traits":{"k":"v"}},"originalTimestamp":"2026-01-01"}`,
		`{"batch":null}`, `{}`, `[]`, `{"userId":{"x":1}}`, `{"batch":[1,"a",null]}`,
		`{"userId":"u\ud800","event":"e"}`, "{\"userId\":\"u\xff\",\"event\":\"e\"}",
		`{"userId":"u","event":"e","timestamp":"9999-12-31T23:59:59-23:59"}`,
		`{"batch":[{"type":"track","userId":"u","event":"e","timestamp":"9999-01-01T00:00:00Z"}],"sentAt":"0001-01-01T00:00:00Z"}`,
		`{"anonymousId":"` + strings.Repeat("a", 300) + `","context":{"externalIds":[{"id":"x","type":"t"}]}}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s), uint8(0))
	}
	kinds := []string{tracking.KindBatch, tracking.TypeIdentify, tracking.TypeTrack, tracking.TypePage, tracking.TypeScreen, tracking.TypeGroup, tracking.TypeAlias}
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte, k uint8) {
		kind := kinds[int(k)%len(kinds)]
		req, err := tracking.ParseRequest(body, kind, tracking.DefaultLimits)
		if err != nil {
			assertClientError(t, err)
			return
		}
		msgs, err := req.Normalize(now, "src")
		if err != nil {
			assertClientError(t, err)
			return
		}
		if len(msgs) == 0 {
			t.Fatal("accepted a request with no messages")
		}
		for _, m := range msgs {
			if m.MessageID == "" || m.Timestamp.IsZero() || !m.ReceivedAt.Equal(now) {
				t.Fatalf("accepted an incomplete message: %+v", m)
			}
			if m.UserID == "" && m.AnonymousID == "" {
				t.Fatalf("accepted a message without ids: %+v", m)
			}
			if _, err := json.Marshal(tracking.Record{SourceID: "src", Message: m}); err != nil {
				t.Fatalf("accepted message does not encode: %v", err)
			}
			if err := tracking.CheckKeys(&m); err != nil {
				t.Fatalf("accepted message fails CheckKeys: %v", err)
			}
			if pk := m.PartitionKey(); pk == "" || len(pk) > tracking.MaxPartitionKeyBytes {
				t.Fatalf("partition key of %d bytes", len(pk))
			}
		}
	})
}

func assertClientError(t *testing.T, err error) {
	t.Helper()
	var e *tracking.Error
	if !errors.As(err, &e) || e.Code == "" || e.Message == "" {
		t.Fatalf("rejection is not a coded client error: %#v", err)
	}
}
