package tracking_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/tracking"
)

var keysNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func normalize(t *testing.T, body, kind string) ([]tracking.Message, error) {
	t.Helper()
	req, err := tracking.ParseRequest([]byte(body), kind, tracking.DefaultLimits)
	if err != nil {
		return nil, err
	}
	return req.Normalize(keysNow, "src")
}

func wantCode(t *testing.T, err error, code, msgPart string) {
	t.Helper()
	var e *tracking.Error
	if !errors.As(err, &e) {
		t.Fatalf("want a *tracking.Error %s, got %v", code, err)
	}
	if e.Code != code || !strings.Contains(e.Message, msgPart) {
		t.Fatalf("got %s %q, want %s containing %q", e.Code, e.Message, code, msgPart)
	}
}

// batchWith is a batch of n tracks; item bad replaces item i.
func batchWith(n, i int, bad string) string {
	items := make([]string, n)
	for k := range items {
		items[k] = fmt.Sprintf(`{"type":"track","event":"e","userId":"u%d","messageId":"m%d"}`, k, k)
	}
	items[i] = bad
	return `{"batch":[` + strings.Join(items, ",") + `]}`
}

func TestNormalizeRefusesOverlongKeysNamingTheItem(t *testing.T) {
	long := strings.Repeat("x", 3000)
	for _, tc := range []struct{ item, want string }{
		{`{"type":"track","event":"e","userId":"u","messageId":"` + long + `"}`, "batch[17]: messageId is 3000 bytes; the limit is 512"},
		{`{"type":"track","event":"e","userId":"` + long + `"}`, "batch[17]: userId is 3000 bytes; the limit is 512"},
		{`{"type":"identify","anonymousId":"a","traits":{"email":"` + long + `"}}`, "batch[17]: traits.email is 3000 bytes"},
		{`{"type":"track","event":"` + long + `","userId":"u"}`, "batch[17]: event is 3000 bytes; the limit is 1024"},
	} {
		_, err := normalize(t, batchWith(60, 17, tc.item), tracking.KindBatch)
		wantCode(t, err, tracking.CodeInvalidField, tc.want)
	}
	// An envelope context is merged into every item and checked there.
	env := `{"context":{"device":{"id":"` + long + `"}},"batch":[{"type":"track","event":"e","userId":"u"}]}`
	_, err := normalize(t, env, tracking.KindBatch)
	wantCode(t, err, tracking.CodeInvalidField, "batch[0]: context.device.id is 3000 bytes")
	// At the limit is fine.
	ok := strings.Repeat("y", tracking.MaxIDBytes)
	if _, err := normalize(t, `{"userId":"`+ok+`","messageId":"`+ok+`","event":"e"}`, tracking.TypeTrack); err != nil {
		t.Fatalf("ids of exactly %d bytes refused: %v", tracking.MaxIDBytes, err)
	}
}

func TestNormalizeRefusesIDsThatAreNotUTF8(t *testing.T) {
	for _, id := range []string{"u\xff", "u\xfe", `u\ud800`, `\udfff`, "u\ufffd"} {
		_, err := normalize(t, `{"userId":"`+id+`","event":"e"}`, tracking.TypeTrack)
		wantCode(t, err, tracking.CodeInvalidField, "userId is not valid UTF-8")
		_, err = normalize(t, `{"batch":[{"type":"identify","anonymousId":"`+id+`"}]}`, tracking.KindBatch)
		wantCode(t, err, tracking.CodeInvalidField, "batch[0]: anonymousId is not valid UTF-8")
	}
	// Valid non-ASCII ids are fine, and free text (properties) may hold anything.
	if _, err := normalize(t, `{"userId":"ü-用户-😀","event":"e","properties":{"p":"`+"\xff"+`"}}`, tracking.TypeTrack); err != nil {
		t.Fatalf("valid UTF-8 id refused: %v", err)
	}
}

func TestNormalizeRefusesTimestampsOutsideYears1To9999(t *testing.T) {
	for _, tc := range []struct{ body, field string }{
		{`{"userId":"u","event":"e","timestamp":"9999-12-31T23:59:59-23:59"}`, "timestamp"},
		{`{"userId":"u","event":"e","timestamp":"0000-01-01T00:00:00+01:00"}`, "timestamp"},
		{`{"userId":"u","event":"e","originalTimestamp":"0000-12-31T23:00:00Z"}`, "originalTimestamp"},
		{`{"userId":"u","event":"e","sentAt":"0000-06-01T00:00:00Z"}`, "sentAt"},
		// Valid on their own, but the correction pushes the timestamp out of range.
		{`{"userId":"u","event":"e","timestamp":"9999-01-01T00:00:00Z","sentAt":"0001-01-02T00:00:00Z"}`, "corrected timestamp"},
		{`{"userId":"u","event":"e","timestamp":"0001-01-02T00:00:00Z","sentAt":"9999-01-01T00:00:00Z"}`, "corrected timestamp"},
		{`{"userId":"u","event":"e","timestamp":"2026-11-23T12:00:00Z","sentAt":"9999-01-01T00:00:00Z"}`, "corrected timestamp"},
	} {
		_, err := normalize(t, tc.body, tracking.TypeTrack)
		wantCode(t, err, tracking.CodeInvalidTimestamp, tc.field)
	}
	// The batch envelope's sentAt is checked too, and the error names the item.
	_, err := normalize(t, `{"sentAt":"0000-01-01T00:00:00Z","batch":[{"type":"track","userId":"u","event":"e"}]}`, tracking.KindBatch)
	wantCode(t, err, tracking.CodeInvalidTimestamp, "batch[0]: sentAt")

	// Edges that are in range are accepted and encode.
	msgs, err := normalize(t, `{"userId":"u","event":"e","timestamp":"9999-12-31T23:59:59Z","sentAt":"9999-12-31T23:59:59Z"}`, tracking.TypeTrack)
	if err != nil {
		t.Fatal(err)
	}
	if !msgs[0].Timestamp.Equal(keysNow) {
		t.Fatalf("timestamp %v, want receivedAt %v", msgs[0].Timestamp, keysNow)
	}
	if _, err := json.Marshal(tracking.Record{Message: msgs[0]}); err != nil {
		t.Fatal(err)
	}
	if _, err := normalize(t, `{"userId":"u","event":"e","timestamp":"0001-01-01T00:00:01Z"}`, tracking.TypeTrack); err != nil {
		t.Fatal(err)
	}
}

func TestPartitionKeyStaysWithinKinesisLimit(t *testing.T) {
	short := tracking.Message{UserID: "u1", AnonymousID: "a"}
	if short.PartitionKey() != "u1" {
		t.Fatalf("short key changed: %q", short.PartitionKey())
	}
	edge := tracking.Message{AnonymousID: strings.Repeat("é", 128)} // 256 bytes
	if edge.PartitionKey() != edge.AnonymousID {
		t.Fatal("a 256-byte key must stay as it is")
	}
	long := strings.Repeat("ü", 200) // 400 bytes, 200 characters
	a := tracking.Message{UserID: long, AnonymousID: "x"}
	b := tracking.Message{UserID: long, AnonymousID: "y", MessageID: "other"}
	c := tracking.Message{UserID: long[:len(long)-2] + "u"}
	if len(a.PartitionKey()) > tracking.MaxPartitionKeyBytes || !strings.HasPrefix(a.PartitionKey(), "h:") {
		t.Fatalf("long key not hashed: %d bytes", len(a.PartitionKey()))
	}
	if a.PartitionKey() != b.PartitionKey() {
		t.Fatal("two events of one user got different partition keys")
	}
	if a.PartitionKey() == c.PartitionKey() {
		t.Fatal("two users share a hashed partition key")
	}
}
