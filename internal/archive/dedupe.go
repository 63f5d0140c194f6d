package archive

import (
	"time"

	"github.com/serverless-cdp/cdp/internal/tracking"
)

// DefaultDedupeWindow is how far apart in arrival two copies of a record can be archived: a
// batch is delivered again at most while its records are in the stream (24 hours).
const DefaultDedupeWindow = 25 * time.Hour

// Dedupe wraps a Scan callback so that it sees each (sourceId, messageId) once: the archive
// holds a record twice when a batch was delivered again with other boundaries (the Writer) or
// when Firehose delivered again (at-least-once). Copies of one record are archived within
// window of each other (DefaultDedupeWindow when 0), under the same source, so it remembers
// the message ids of the current source's last window of hours only, as Scan goes source by
// source and hour by hour: its memory is the records of window, not of the whole range.
//
// The wrapper is for one Scan (it is not safe for concurrent use).
func Dedupe(window time.Duration, fn func(key string, rec tracking.Record) error) func(key string, rec tracking.Record) error {
	if window <= 0 {
		window = DefaultDedupeWindow
	}
	source := ""
	seen := map[time.Time]map[string]struct{}{} // hour → message ids
	return func(key string, rec tracking.Record) error {
		src, hour, _ := ParseKey(key)
		if src != source {
			source, seen = src, map[time.Time]map[string]struct{}{}
		}
		for h, ids := range seen {
			if h.Before(hour.Add(-window)) {
				delete(seen, h)
				continue
			}
			if _, dup := ids[rec.Message.MessageID]; dup {
				return nil
			}
		}
		if seen[hour] == nil {
			seen[hour] = map[string]struct{}{}
		}
		seen[hour][rec.Message.MessageID] = struct{}{}
		return fn(key, rec)
	}
}
