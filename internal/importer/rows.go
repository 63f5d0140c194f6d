package importer

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// MaxLineBytes bounds one line of a JSONL file (and so one row).
const MaxLineBytes = 1 << 20

// Row is one data row of the input. A row that cannot be read has Err set (and no values): it
// is reported by line and the import goes on.
type Row struct {
	Line    int            // 1-based line of the file where the row starts
	Values  map[string]any // CSV: strings; JSONL: decoded JSON (numbers as json.Number)
	Content []byte         // the row's bytes in a canonical form, for ids derived from content
	Err     error
}

// Rows reads the rows of a file one at a time.
type Rows interface {
	// Next returns the next row, or io.EOF after the last one.
	Next() (Row, error)
	// Offset is how many bytes of the input have been consumed.
	Offset() int64
}

// Format is the kind of input file.
type Format string

// Input formats.
const (
	CSV   Format = "csv"
	JSONL Format = "jsonl"
)

// FormatOf guesses the format from a file name: .jsonl, .ndjson and .json are JSONL.
func FormatOf(name string) Format {
	n := strings.ToLower(name)
	for _, ext := range []string{".jsonl", ".ndjson", ".json"} {
		if strings.HasSuffix(n, ext) {
			return JSONL
		}
	}
	return CSV
}

// NewRows reads r in the given format. A CSV file's first line is its header.
func NewRows(r io.Reader, f Format) (Rows, error) {
	if f == JSONL {
		return &jsonlRows{r: bufio.NewReaderSize(r, 64<<10)}, nil
	}
	return newCSVRows(r)
}

type csvRows struct {
	r      *csv.Reader
	header []string
}

func newCSVRows(r io.Reader) (*csvRows, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("read CSV header: %w", err)
	}
	header = slices.Clone(header)
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\ufeff") // a byte order mark
	}
	seen := map[string]bool{}
	for i, h := range header {
		header[i] = strings.TrimSpace(h)
		if seen[header[i]] {
			return nil, fmt.Errorf("CSV header: column %q appears twice", header[i])
		}
		seen[header[i]] = true
	}
	return &csvRows{r: cr, header: header}, nil
}

// Header is the CSV file's column names.
func (c *csvRows) Header() []string { return c.header }

func (c *csvRows) Offset() int64 { return c.r.InputOffset() }

func (c *csvRows) Next() (Row, error) {
	rec, err := c.r.Read()
	if errors.Is(err, io.EOF) {
		return Row{}, io.EOF
	}
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return Row{Line: pe.StartLine, Err: fmt.Errorf("not valid CSV: %v", pe.Err)}, nil
		}
		return Row{}, fmt.Errorf("read CSV: %w", err)
	}
	line, _ := c.r.FieldPos(0)
	if len(rec) != len(c.header) {
		return Row{Line: line, Err: fmt.Errorf("has %d fields; the header has %d", len(rec), len(c.header))}, nil
	}
	vals := make(map[string]any, len(rec))
	var content bytes.Buffer
	for i, v := range rec {
		vals[c.header[i]] = v
		content.WriteString(v)
		content.WriteByte(0x1f)
	}
	return Row{Line: line, Values: vals, Content: content.Bytes()}, nil
}

type jsonlRows struct {
	r      *bufio.Reader
	line   int
	offset int64
}

func (j *jsonlRows) Offset() int64 { return j.offset }

func (j *jsonlRows) Next() (Row, error) {
	for {
		raw, tooLong, err := j.readLine()
		if err != nil {
			return Row{}, err
		}
		j.line++
		if tooLong {
			return Row{Line: j.line, Err: fmt.Errorf("line is over %d bytes", MaxLineBytes)}, nil
		}
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var vals map[string]any
		if err := dec.Decode(&vals); err != nil || vals == nil || dec.More() {
			return Row{Line: j.line, Err: errors.New("not a JSON object")}, nil
		}
		return Row{Line: j.line, Values: vals, Content: raw}, nil
	}
}

// readLine reads one line (without its newline), consuming but not keeping lines over
// MaxLineBytes. It returns io.EOF only when nothing is left.
func (j *jsonlRows) readLine() ([]byte, bool, error) {
	var buf []byte
	tooLong := false
	for {
		chunk, err := j.r.ReadSlice('\n')
		j.offset += int64(len(chunk))
		if !tooLong {
			buf = append(buf, chunk...)
			if len(buf) > MaxLineBytes+1 {
				tooLong, buf = true, nil
			}
		}
		switch {
		case err == nil:
			return buf, tooLong, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if len(buf) == 0 && !tooLong {
				return nil, false, io.EOF
			}
			return buf, tooLong, nil
		default:
			return nil, false, fmt.Errorf("read JSONL: %w", err)
		}
	}
}
