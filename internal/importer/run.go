package importer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// File limits: an input holds at most MaxRows data rows and MaxFileBytes bytes (Segment's CSV
// uploader takes 1M rows and 100 MB). A longer file stops at the limit with an error, having
// imported the rows before it; split it and import the parts.
const (
	MaxRows      = 5_000_000
	MaxFileBytes = 1 << 30
)

// Options configure one import.
type Options struct {
	File       string
	Format     Format // "" guesses from the file name
	Mapping    Mapping
	Client     *Client // nil only with DryRun
	DryRun     bool    // read, convert and report; send nothing, save no checkpoint
	StatePath  string  // "" is File + ".import-state.json"
	ReportPath string  // "" is File + ".errors.csv"
	Progress   io.Writer
	Now        func() time.Time
	MaxRows    int   // 0 is MaxRows
	MaxBytes   int64 // 0 is MaxFileBytes
}

// Summary counts what an import did.
type Summary struct {
	Rows       int // data rows read
	Skipped    int // rows a resumed run did not resend (acknowledged before)
	Sent       int // rows acknowledged by the API in all runs of this file (valid rows in a dry run)
	Bad        int // rows reported, in all runs of this file
	Resumed    bool
	ReportPath string
	StatePath  string
	Elapsed    time.Duration
}

// importer is one run's state.
type importer struct {
	o       Options
	conv    *Converter
	rep     *report
	cp      Checkpoint
	sum     Summary
	pending batch
	skip    int
	// limit is the batch size in events (at most MaxBatchEvents): halved when the API fails a
	// batch with 5xx, doubled again after growAfter batches in a row go through.
	limit, streak int
	progress      *progress
}

// Run imports a file. On an error (a cancelled context, an API that keeps failing) the checkpoint
// holds what was acknowledged, and running again resumes there.
func Run(ctx context.Context, o Options) (Summary, error) {
	im, rows, closeFile, err := start(o)
	if err != nil {
		return Summary{}, err
	}
	defer closeFile()
	err = im.loop(ctx, rows)
	if err == nil {
		err = im.flush(ctx, im.sum.Rows)
	}
	if err == nil && !o.DryRun {
		im.cp.Done = true
		err = im.checkpoint(im.sum.Rows)
	}
	im.progress.finish(im.sum.Rows)
	im.sum.Sent, im.sum.Bad = im.cp.Sent, im.cp.Bad
	im.sum.Elapsed = im.o.Now().Sub(im.progress.started)
	if cerr := im.rep.close(); err == nil {
		err = cerr
	}
	return im.sum, err
}

// start checks the file and the checkpoint and opens the rows and the report.
func start(o Options) (*importer, Rows, func(), error) {
	o = withDefaults(o)
	if !o.DryRun && o.Client == nil {
		return nil, nil, nil, errors.New("import: no client")
	}
	if err := o.Mapping.Validate(); err != nil {
		return nil, nil, nil, err
	}
	digest, size, err := fileDigest(o.File)
	if err != nil {
		return nil, nil, nil, err
	}
	if size > o.MaxBytes {
		return nil, nil, nil, fmt.Errorf("%s is %d bytes; the limit is %d: split it", o.File, size, o.MaxBytes)
	}
	im := &importer{o: o, conv: NewConverter(o.Mapping), sum: Summary{ReportPath: o.ReportPath, StatePath: o.StatePath}, limit: MaxBatchEvents}
	im.cp = Checkpoint{Version: checkpointVersion, File: digest, Mapping: o.Mapping.Fingerprint()}
	if !o.DryRun {
		old, err := LoadCheckpoint(o.StatePath)
		if err != nil {
			return nil, nil, nil, err
		}
		if old.Version == checkpointVersion && old.File == digest && old.Mapping == im.cp.Mapping {
			im.cp, im.skip, im.sum.Resumed = old, old.Rows, old.Rows > 0
		}
	}
	f, err := os.Open(o.File)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("open input: %w", err)
	}
	rows, err := NewRows(f, o.Format)
	if err == nil {
		err = checkColumns(rows, o.Mapping)
	}
	if err == nil {
		im.rep, err = openReport(o.ReportPath, im.cp.ReportBytes)
	}
	if err != nil {
		f.Close()
		return nil, nil, nil, err
	}
	im.progress = newProgress(o.Progress, o.Now, size, rows.Offset)
	return im, rows, func() { f.Close() }, nil
}

func withDefaults(o Options) Options {
	if o.Format == "" {
		o.Format = FormatOf(o.File)
	}
	if o.StatePath == "" {
		o.StatePath = o.File + ".import-state.json"
	}
	if o.ReportPath == "" {
		o.ReportPath = o.File + ".errors.csv"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxRows <= 0 {
		o.MaxRows = MaxRows
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = MaxFileBytes
	}
	return o
}

// checkColumns refuses a CSV file that lacks a column the mapping reads.
func checkColumns(rows Rows, m Mapping) error {
	c, ok := rows.(*csvRows)
	if !ok {
		return nil
	}
	have := map[string]bool{}
	for _, h := range c.Header() {
		have[h] = true
	}
	for _, col := range m.Columns() {
		if !have[col] {
			return fmt.Errorf("the mapping reads column %q, which the CSV header does not have", col)
		}
	}
	return nil
}

// loop reads every row, reporting bad ones and sending good ones in batches.
func (im *importer) loop(ctx context.Context, rows Rows) error {
	for {
		r, err := rows.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if im.sum.Rows >= im.o.MaxRows {
			return fmt.Errorf("%s has more than %d rows: split it (the first %d were imported)", im.o.File, im.o.MaxRows, im.o.MaxRows)
		}
		im.sum.Rows++
		n := im.sum.Rows
		msg, rerr := im.conv.Convert(r) // skipped rows too: ids count identical rows
		im.progress.tick(n)
		if n <= im.skip {
			im.sum.Skipped++
			continue
		}
		if rerr != nil {
			im.rep.add(*rerr)
			im.cp.Bad++
			continue
		}
		it := item{line: r.Line, row: n, json: msg}
		if !im.pending.fits(it, im.limit) {
			if err := im.flush(ctx, n-1); err != nil {
				return err
			}
		}
		im.pending.add(it)
	}
}

// flush sends the pending batch and, once it is acknowledged, checkpoints that every row up to
// done is handled.
func (im *importer) flush(ctx context.Context, done int) error {
	items := im.pending.items
	im.pending = batch{}
	if len(items) > 0 {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("import stopped: %w", err)
		}
		if im.o.DryRun {
			im.cp.Sent += len(items)
		} else if err := im.send(ctx, items); err != nil {
			return err
		}
	}
	if im.o.DryRun {
		return nil
	}
	return im.checkpoint(done)
}

// send posts items; a refused item is reported with its line and the rest are sent again. When
// the answer names no item, the batch is halved until the refused row is alone; a batch the API
// keeps failing (5xx) is halved too, down to one row.
func (im *importer) send(ctx context.Context, items []item) error {
	for len(items) > 0 {
		err := im.o.Client.Send(ctx, body(items), len(items) > 1)
		if err == nil {
			im.cp.Sent += len(items)
			im.adapt(len(items), false)
			return nil
		}
		ref := &Refused{Index: -1} // ErrSplit: halved below
		split := errors.Is(err, ErrSplit)
		switch {
		case split:
			im.adapt(len(items), true)
		case !errors.As(err, &ref):
			return err
		case ref.Index >= 0 && ref.Index < len(items):
			im.refuse(items[ref.Index], ref)
			items = append(items[:ref.Index:ref.Index], items[ref.Index+1:]...)
			continue
		case len(items) == 1: // (never after ErrSplit: one row is not splittable)
			im.refuse(items[0], ref)
			return nil
		}
		half := len(items) / 2
		if err := im.send(ctx, items[:half]); err != nil {
			return err
		}
		items = items[half:]
	}
	return nil
}

// growAfter is how many batches in a row must go through before the batch size doubles.
const growAfter = 4

// adapt sets the next batches' size: half of a batch the API failed, twice the size after
// growAfter batches in a row went through.
func (im *importer) adapt(n int, failed bool) {
	if failed {
		im.limit, im.streak = max(1, min(im.limit, n/2)), 0
		return
	}
	if im.streak++; im.streak >= growAfter && n >= im.limit {
		im.limit, im.streak = min(MaxBatchEvents, im.limit*2), 0
	}
}

func (im *importer) refuse(it item, ref *Refused) {
	im.rep.add(RowError{Line: it.line, Reason: "refused by the tracking API: " + ref.Code + ": " + ref.Reason})
	im.cp.Bad++
}

func (im *importer) checkpoint(done int) error {
	n, err := im.rep.offset()
	if err != nil {
		return err
	}
	im.cp.Rows, im.cp.ReportBytes = done, n
	return im.cp.Save(im.o.StatePath)
}
