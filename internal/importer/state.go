package importer

import (
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// Checkpoint is what a run has finished, saved after every acknowledged batch. A rerun of the
// same file (same bytes) with the same mapping skips the first Rows rows; anything else starts
// over, which is still correct because message ids are stable.
type Checkpoint struct {
	Version     int    `json:"version"`
	File        string `json:"file"`    // sha256 of the input
	Mapping     string `json:"mapping"` // Mapping.Fingerprint
	Rows        int    `json:"rows"`    // data rows handled: acknowledged by the API or reported
	Sent        int    `json:"sent"`    // rows acknowledged
	Bad         int    `json:"bad"`     // rows reported
	ReportBytes int64  `json:"reportBytes"`
	Done        bool   `json:"done"`
}

const checkpointVersion = 1

// LoadCheckpoint reads a checkpoint file; a missing file is a zero checkpoint.
func LoadCheckpoint(path string) (Checkpoint, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Checkpoint{}, nil
	}
	if err != nil {
		return Checkpoint{}, fmt.Errorf("read checkpoint: %w", err)
	}
	var c Checkpoint
	if err := json.Unmarshal(raw, &c); err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint %s is not valid JSON (delete it to start over): %w", path, err)
	}
	return c, nil
}

// Save writes the checkpoint atomically (a temporary file renamed over the old one).
func (c Checkpoint) Save(path string) error {
	raw, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("encode checkpoint: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".cdp-import-*")
	if err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(raw); err != nil {
		tmp.Close()
		return fmt.Errorf("write checkpoint: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	return nil
}

// fileDigest is the sha256 of a file's bytes and its size.
func fileDigest(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("open input: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("read input: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// report is the per-row error report: a CSV of line, column, reason — never a row's values.
type report struct {
	f *os.File
	w *csv.Writer
}

// openReport opens the report, keeping its first keep bytes (a resumed run's earlier rows) or
// starting it afresh with a header when keep is 0.
func openReport(path string, keep int64) (*report, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open error report: %w", err)
	}
	if err := f.Truncate(keep); err != nil {
		f.Close()
		return nil, fmt.Errorf("open error report: %w", err)
	}
	if _, err := f.Seek(keep, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("open error report: %w", err)
	}
	r := &report{f: f, w: csv.NewWriter(f)}
	if keep == 0 {
		_ = r.w.Write([]string{"line", "column", "reason"})
	}
	return r, nil
}

func (r *report) add(e RowError) { _ = r.w.Write([]string{strconv.Itoa(e.Line), e.Column, e.Reason}) }

// offset flushes the report and returns its size.
func (r *report) offset() (int64, error) {
	r.w.Flush()
	if err := r.w.Error(); err != nil {
		return 0, fmt.Errorf("write error report: %w", err)
	}
	n, err := r.f.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, fmt.Errorf("write error report: %w", err)
	}
	return n, nil
}

func (r *report) close() error {
	_, err := r.offset()
	if cerr := r.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close error report: %w", cerr)
	}
	return err
}
