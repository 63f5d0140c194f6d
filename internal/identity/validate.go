package identity

import (
	"errors"
	"fmt"
	"time"

	"github.com/serverless-cdp/cdp/internal/tracking"
)

// CheckRecord re-checks a record from the events stream against the limits ingest enforces at
// the door (records can also arrive by replay or import, or have been written before the
// limits existed): a messageId, every key-bearing field within tracking's limits
// (tracking.CheckKeys), a source id of at most tracking.MaxIDBytes, and every timestamp in
// years 0001–9999 (JSON cannot encode others, so such a record could never be re-emitted).
// The error names the field, never its value.
func CheckRecord(tr *tracking.Record) error {
	m := &tr.Message
	if m.MessageID == "" {
		return errors.New("message has no messageId")
	}
	if len(tr.SourceID) > tracking.MaxIDBytes {
		return fmt.Errorf("sourceId is %d bytes; the limit is %d", len(tr.SourceID), tracking.MaxIDBytes)
	}
	if err := tracking.CheckKeys(m); err != nil {
		return err
	}
	times := []struct {
		name string
		t    *time.Time
	}{{"timestamp", &m.Timestamp}, {"receivedAt", &m.ReceivedAt}, {"originalTimestamp", m.OriginalTimestamp}, {"sentAt", m.SentAt}}
	for _, f := range times {
		if f.t == nil {
			continue
		}
		if y := f.t.UTC().Year(); y < 1 || y > 9999 {
			return fmt.Errorf("%s is in year %d; years 0001 to 9999 are accepted", f.name, y)
		}
	}
	return nil
}
