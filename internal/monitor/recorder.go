package monitor

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Recorder keeps one container's counts in memory and flushes them to a Store at most once
// per FlushEvery (FlushIfDue, called at the end of a request or batch; the first one at once). It never fails its
// caller: a flush that fails is logged and its counts dropped.
type Recorder struct {
	store  Store
	now    func() time.Time
	every  time.Duration
	logger *slog.Logger

	mu         sync.Mutex
	last       time.Time // the last flush
	counts     map[countKey]*Count
	lags       map[countKey]*Lag
	rejections []Rejection
}

type countKey struct {
	name   string
	minute time.Time
}

// RecorderOptions tune a Recorder; zero values take the defaults.
type RecorderOptions struct {
	Every  time.Duration // FlushEvery
	Now    func() time.Time
	Logger *slog.Logger
}

// NewRecorder returns a recorder flushing to s. A nil *Recorder records nothing.
func NewRecorder(s Store, o RecorderOptions) *Recorder {
	if o.Every == 0 {
		o.Every = FlushEvery
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	// The first flush is due at once: a new container's first request writes.
	return &Recorder{store: s, now: o.Now, every: o.Every, logger: o.Logger,
		counts: map[countKey]*Count{}, lags: map[countKey]*Lag{}}
}

func (r *Recorder) count(source string) *Count {
	k := countKey{source, minute(r.now())}
	c := r.counts[k]
	if c == nil {
		c = &Count{Source: source, Minute: k.minute}
		r.counts[k] = c
	}
	return c
}

// Accepted counts n events of source accepted.
func (r *Recorder) Accepted(source string, n int) {
	if r == nil || n <= 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.count(source).Accepted += int64(n)
}

// Rejected counts one refused request and keeps a sample of it (the latest MaxRejections).
// source is "" (UnknownSource) when the request carried no valid write key.
func (r *Recorder) Rejected(source, code, message, path string) {
	if r == nil {
		return
	}
	if source == "" {
		source = UnknownSource
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.count(source)
	if c.Rejected == nil {
		c.Rejected = map[string]int64{}
	}
	c.Rejected[code]++
	r.rejections = append(r.rejections, Rejection{At: r.now().UTC(), Source: source, Code: code,
		Message: truncate(redact(message), MaxMessage), Path: truncate(path, 100)})
	if n := len(r.rejections); n > MaxRejections {
		r.rejections = append(r.rejections[:0], r.rejections[n-MaxRejections:]...)
	}
}

// Processed records that stage processed n records, the oldest of which waited maxAge in its
// stream.
func (r *Recorder) Processed(stage string, n int, maxAge time.Duration) {
	if r == nil || n <= 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	k := countKey{stage, minute(r.now())}
	l := r.lags[k]
	if l == nil {
		l = &Lag{Stage: stage, Minute: k.minute}
		r.lags[k] = l
	}
	l.Records += int64(n)
	l.MaxAge = max(l.MaxAge, maxAge)
}

// take empties the recorder into a batch if a flush is due (or force).
func (r *Recorder) take(force bool) (Batch, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if !force && now.Sub(r.last) < r.every {
		return Batch{}, false
	}
	var b Batch
	for _, c := range r.counts {
		b.Counts = append(b.Counts, *c)
	}
	for _, l := range r.lags {
		b.Lags = append(b.Lags, *l)
	}
	b.Rejections = r.rejections
	if b.Empty() {
		return b, false // the next thing recorded is written at once
	}
	r.last = now
	r.counts, r.lags, r.rejections = map[countKey]*Count{}, map[countKey]*Lag{}, nil
	return b, true
}

// FlushIfDue writes what was recorded if the last flush is FlushEvery old, within a second.
func (r *Recorder) FlushIfDue(ctx context.Context) { r.flush(ctx, false) }

// Flush writes what was recorded now (tests, shutdown).
func (r *Recorder) Flush(ctx context.Context) { r.flush(ctx, true) }

func (r *Recorder) flush(ctx context.Context, force bool) {
	if r == nil {
		return
	}
	b, ok := r.take(force)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if err := r.store.Write(ctx, b); err != nil {
		r.logger.WarnContext(ctx, "monitor: counts not written (dropped)", "err", err,
			"counts", len(b.Counts), "lags", len(b.Lags), "rejections", len(b.Rejections))
	}
}

// redact removes what an error message echoes of the input (a quoted value, or what follows
// "got "), which could be personal data: samples keep the reason, never the value.
func redact(message string) string {
	var b strings.Builder
	quoted := false
	for _, r := range message {
		switch {
		case r == '"':
			if !quoted {
				b.WriteString(`"…"`)
			}
			quoted = !quoted
		case !quoted:
			b.WriteRune(r)
		}
	}
	out := b.String()
	if i := strings.Index(out, "got "); i >= 0 {
		out = out[:i+len("got ")] + "…"
	}
	return out
}
