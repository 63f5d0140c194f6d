// Package monitor is what the console's Overview and Live events pages show that no API
// serves: per-minute counts of accepted and rejected tracking requests per source, samples of
// the latest rejections, per-minute stream lag per pipeline stage, and the tail of the events
// stream.
//
// Counts are kept in memory by a Recorder in each container (ingest, the stages) and flushed
// to the table at most once per FlushEvery, at the end of a request or batch when due: one
// UpdateItem per (source, minute) or (stage, minute) touched since the last flush, plus one
// BatchWriteItem for the rejection samples. So the writes grow with containers × sources ×
// minutes, never with events. Counts of a container that stops before its next flush are lost
// (they are a picture of the traffic, not a ledger).
//
// Table layout (package store): counts and lag in one partition per hour,
// pk "MON#<yyyy-mm-ddThh>", sk "C#<mm>#<source>" (attributes acc and r_<code>) and
// "L#<mm>#<stage>" (n, maxAgeMs); TTL 2 h. Rejection samples in pk "MON#REJ",
// sk "<RFC3339Nano>#<random>", TTL 1 h: time, source id, code, message, path — never a payload
// or a write key.
package monitor

import (
	"context"
	"time"
)

// Bounds of what is kept and shown.
const (
	FlushEvery    = 10 * time.Second // a container writes its counts at most this often
	CountTTL      = 2 * time.Hour
	RejectionTTL  = time.Hour
	MaxRejections = 20 // samples kept per container between flushes, and shown
	MaxMessage    = 200
	// UnknownSource names the sender of a request whose write key matched no source.
	UnknownSource = "unknown"
)

// Count is one source's requests in one minute: events accepted and requests rejected per
// error code.
type Count struct {
	Source   string
	Minute   time.Time // UTC, truncated to the minute
	Accepted int64
	Rejected map[string]int64 // code -> requests
}

// Rejection is one refused tracking request: never its payload.
type Rejection struct {
	At      time.Time
	Source  string // the source id, or UnknownSource
	Code    string
	Message string
	Path    string
}

// Lag is what one stage processed in one minute: records, and the largest age of a record
// (arrival on its stream to processing).
type Lag struct {
	Stage   string
	Minute  time.Time
	Records int64
	MaxAge  time.Duration
}

// Batch is one flush of a Recorder.
type Batch struct {
	Counts     []Count
	Rejections []Rejection
	Lags       []Lag
}

// Empty reports whether there is nothing to write.
func (b Batch) Empty() bool { return len(b.Counts)+len(b.Rejections)+len(b.Lags) == 0 }

// Store keeps the flushed counts (the port; DynamoStore and MemStore implement it).
type Store interface {
	// Write adds the batch's counts to the stored ones (max for lag ages) and stores its
	// rejection samples.
	Write(ctx context.Context, b Batch) error
	// Counts returns the per-source counts of the minutes from since on, oldest first.
	Counts(ctx context.Context, since time.Time) ([]Count, error)
	// Lags returns the per-stage lag of the minutes from since on, oldest first.
	Lags(ctx context.Context, since time.Time) ([]Lag, error)
	// Rejections returns the latest samples, newest first, at most limit.
	Rejections(ctx context.Context, limit int) ([]Rejection, error)
}

// minute truncates t to its UTC minute.
func minute(t time.Time) time.Time { return t.UTC().Truncate(time.Minute) }

// truncate cuts s to n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// Reader is what the console reads: the stream's tail and the stored counts.
type Reader struct {
	Tail  *Tail // nil: no live events
	Store Store
}

// Live is the Live events page's data.
type Live struct {
	Events     []Event
	Rejections []Rejection
}

// Live returns the newest events (perSource of each source; only source's when not empty) and
// the latest rejections (only source's, and those of unknown keys, when source is not empty).
func (r *Reader) Live(ctx context.Context, source string, perSource int) (Live, error) {
	var out Live
	if r.Tail != nil {
		evs, err := r.Tail.Latest(ctx, source, perSource)
		if err != nil {
			return Live{}, err
		}
		out.Events = evs
	}
	rs, err := r.Store.Rejections(ctx, MaxRejections)
	if err != nil {
		return Live{}, err
	}
	for _, x := range rs {
		if source == "" || x.Source == source || x.Source == UnknownSource {
			out.Rejections = append(out.Rejections, x)
		}
	}
	return out, nil
}

// Stats is the Overview's data.
type Stats struct {
	Counts     []Count
	Lags       []Lag
	Rejections []Rejection
}

// Stats returns the counts and lags from since on and the latest rejections.
func (r *Reader) Stats(ctx context.Context, since time.Time) (Stats, error) {
	var s Stats
	var err error
	if s.Counts, err = r.Store.Counts(ctx, since); err != nil {
		return Stats{}, err
	}
	if s.Lags, err = r.Store.Lags(ctx, since); err != nil {
		return Stats{}, err
	}
	if s.Rejections, err = r.Store.Rejections(ctx, MaxRejections); err != nil {
		return Stats{}, err
	}
	return s, nil
}
