package importer

import (
	"fmt"
	"io"
	"time"
)

// progress draws a one-line progress bar (percent of the file's bytes, rows, rows per second) on
// a terminal's stderr, at most five times a second.
type progress struct {
	w       io.Writer
	now     func() time.Time
	size    int64
	offset  func() int64
	started time.Time
	last    time.Time
}

func newProgress(w io.Writer, now func() time.Time, size int64, offset func() int64) *progress {
	t := now()
	return &progress{w: w, now: now, size: size, offset: offset, started: t, last: t}
}

func (p *progress) tick(rows int) {
	if p.w == nil {
		return
	}
	if t := p.now(); t.Sub(p.last) >= 200*time.Millisecond {
		p.last = t
		p.draw(rows, t)
	}
}

func (p *progress) finish(rows int) {
	if p.w == nil {
		return
	}
	p.draw(rows, p.now())
	fmt.Fprintln(p.w)
}

func (p *progress) draw(rows int, t time.Time) {
	pct := 100.0
	if p.size > 0 {
		pct = min(100, 100*float64(p.offset())/float64(p.size))
	}
	const width = 30
	filled := int(pct / 100 * width)
	bar := make([]byte, width)
	for i := range bar {
		bar[i] = ' '
		if i < filled {
			bar[i] = '='
		}
	}
	rate := 0.0
	if secs := t.Sub(p.started).Seconds(); secs > 0 {
		rate = float64(rows) / secs
	}
	fmt.Fprintf(p.w, "\r[%s] %5.1f%%  %d rows  %.0f rows/s ", bar, pct, rows, rate)
}
