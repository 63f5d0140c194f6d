// Package archive is the raw event archive: every record accepted on the `events` stream,
// exactly as stored there (a tracking.Record as JSON, one per line), in gzip-compressed NDJSON
// objects partitioned by source and hour:
//
//	source=<sourceId>/dt=YYYY-MM-DD/hour=HH/<name>.json.gz
//
// On AWS, Kinesis Data Firehose writes this layout from the `events` stream into S3 (dynamic
// partitioning on sourceId, the hour of arrival); locally the runner writes the same layout to
// a folder. Replay, the identity-rule dry run and privacy requests read it through the Store
// port, which a folder and S3 (or any S3-compatible server) implement.
//
// The hour of an object is the hour the records arrived on the stream (their receivedAt, as
// Firehose's arrival timestamp), not the events' own timestamps.
package archive

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/serverless-cdp/cdp/internal/tracking"
)

// Layout.
const (
	// Suffix ends every object name (Firehose's GZIP compression with the ".json.gz" file
	// extension).
	Suffix     = ".json.gz"
	dayLayout  = "2006-01-02"
	hourLayout = "15"
)

// ErrNotFound is returned by Store.Get for a key that does not exist.
var ErrNotFound = errors.New("archive: object not found")

// Store is where archive objects live: a folder locally, S3 on AWS. Keys use "/" separators.
type Store interface {
	// Put writes (or replaces) the object at key.
	Put(ctx context.Context, key string, body []byte) error
	// Get reads the object at key (ErrNotFound if absent).
	Get(ctx context.Context, key string) ([]byte, error)
	// List calls fn with every key that starts with prefix, in lexical order.
	List(ctx context.Context, prefix string, fn func(key string) error) error
	// Delete removes the object at key (no error if absent).
	Delete(ctx context.Context, key string) error
}

// HourPrefix is the prefix of every object of one source and hour.
func HourPrefix(sourceID string, hour time.Time) string {
	h := hour.UTC()
	return "source=" + sourceID + "/dt=" + h.Format(dayLayout) + "/hour=" + h.Format(hourLayout) + "/"
}

// Key is the key of an object named name (without Suffix) of one source and hour.
func Key(sourceID string, hour time.Time, name string) string {
	return HourPrefix(sourceID, hour) + name + Suffix
}

// ParseKey returns the source and hour of an object's key; ok is false for a key outside the
// layout.
func ParseKey(key string) (sourceID string, hour time.Time, ok bool) {
	parts := strings.Split(key, "/")
	if len(parts) != 4 || !strings.HasSuffix(parts[3], Suffix) {
		return "", time.Time{}, false
	}
	src, ok1 := strings.CutPrefix(parts[0], "source=")
	day, ok2 := strings.CutPrefix(parts[1], "dt=")
	hh, ok3 := strings.CutPrefix(parts[2], "hour=")
	if !ok1 || !ok2 || !ok3 || src == "" {
		return "", time.Time{}, false
	}
	t, err := time.Parse(dayLayout+" "+hourLayout, day+" "+hh)
	if err != nil {
		return "", time.Time{}, false
	}
	return src, t, true
}

// Encode is the body of an object holding records: gzip-compressed NDJSON, each line the
// record's JSON exactly as on the events stream.
func Encode(lines [][]byte) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	for _, l := range lines {
		if _, err := zw.Write(append(bytes.TrimRight(l, "\n"), '\n')); err != nil {
			return nil, fmt.Errorf("archive: encode: %w", err)
		}
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("archive: encode: %w", err)
	}
	return buf.Bytes(), nil
}

// Lines calls fn with each line of an object body (gzip NDJSON; a body that is not gzip is
// read as plain NDJSON). Empty lines are skipped.
func Lines(body []byte, fn func(line []byte) error) error {
	var r io.Reader = bytes.NewReader(body)
	if zr, err := gzip.NewReader(bytes.NewReader(body)); err == nil {
		r = zr
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20) // a record is at most Kinesis's 1 MiB
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		if err := fn(sc.Bytes()); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("archive: read lines: %w", err)
	}
	return nil
}

// Range selects archived records: the hours [From, To) of arrival, and optionally some sources.
type Range struct {
	From, To time.Time
	Sources  []string // empty: every source
}

// Scan calls fn with every record archived in r, source by source and hour by hour, in key
// order; without Sources, every source but InvalidSource. A record archived twice is passed
// twice (wrap fn with Dedupe). A line that is not a record is passed to bad (never silently skipped; nil: Scan stops
// with an error). Scan lists only the hour prefixes inside the range, so its cost is the
// objects it reads.
func Scan(ctx context.Context, st Store, r Range, fn func(key string, rec tracking.Record) error, bad func(key string, line []byte, err error) error) error {
	sources := slices.Clone(r.Sources)
	if len(sources) == 0 {
		var err error
		if sources, err = Sources(ctx, st); err != nil {
			return err
		}
	}
	for _, src := range sources {
		for h := r.From.UTC().Truncate(time.Hour); h.Before(r.To); h = h.Add(time.Hour) {
			err := st.List(ctx, HourPrefix(src, h), func(key string) error {
				return scanObject(ctx, st, key, fn, bad)
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func scanObject(ctx context.Context, st Store, key string, fn func(string, tracking.Record) error, bad func(string, []byte, error) error) error {
	body, err := st.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("archive: read %s: %w", key, err)
	}
	return Lines(body, func(line []byte) error {
		var rec tracking.Record
		if err := json.Unmarshal(line, &rec); err != nil || rec.Message.MessageID == "" {
			if err == nil {
				err = errors.New("no messageId")
			}
			if bad == nil {
				return fmt.Errorf("archive: %s: bad line: %w", key, err)
			}
			return bad(key, line, err)
		}
		return fn(key, rec)
	})
}

// Sources lists the sources whose history the archive holds (one listing of its keys): every
// source=<id>/ folder but InvalidSource (records that are not events) and ReplaySource
// (records a pipeline replay put back, archived already under their source).
func Sources(ctx context.Context, st Store) ([]string, error) {
	var out []string
	err := st.List(ctx, "source=", func(key string) error {
		src, _, ok := ParseKey(key)
		if ok && src != InvalidSource && src != ReplaySource && !slices.Contains(out, src) {
			out = append(out, src)
		}
		return nil
	})
	return out, err
}
