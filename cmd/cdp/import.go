package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/serverless-cdp/cdp/internal/importer"
)

// importUsage is the import part of the usage text.
const importUsage = `  cdp import -f FILE --write-key KEY (--map KEY=VALUE … | --mapping FILE) [--url URL]
             [--state FILE] [--errors FILE] [--format csv|jsonl] [--dry-run] [--no-progress]
      Send the rows of a CSV (header line first) or JSONL file through the tracking API's
      /v1/import as identify, track or page calls, e.g.
        --map type=identify --map userId=customer_id --map email=email
        --map traits=name,age:number,vip:bool,signed_up:time
      Each row gets a stable messageId (from --map messageId=COLUMN, else from the mapping and
      the row), so running a file again stores nothing twice. A checkpoint (FILE.import-state.json
      or --state) lets a rerun resume; bad rows go to FILE.errors.csv (or --errors) by line.
      --url defaults to $CDP_TRACKING_URL or ` + defaultAdminURL + `; --write-key to $CDP_WRITE_KEY.
`

// multiFlag collects a repeated flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, " ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func importCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	file := fs.String("f", "", "input file (CSV or JSONL)")
	writeKey := fs.String("write-key", getenv("CDP_WRITE_KEY"), "write key of the source")
	base := fs.String("url", envOr(getenv, "CDP_TRACKING_URL", defaultAdminURL), "tracking API base URL")
	mappingFile := fs.String("mapping", "", "mapping file (YAML or JSON)")
	state := fs.String("state", "", "checkpoint file")
	errorsPath := fs.String("errors", "", "per-row error report (CSV)")
	format := fs.String("format", "", "csv or jsonl (default: from the file name)")
	dryRun := fs.Bool("dry-run", false, "read and validate every row; send nothing")
	noProgress := fs.Bool("no-progress", false, "no progress bar on stderr")
	var maps multiFlag
	fs.Var(&maps, "map", "KEY=VALUE mapping setting (repeatable)")
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(rest) > 0:
		return fmt.Errorf("%w: unexpected argument %q", errUsage, rest[0])
	case *file == "":
		return fmt.Errorf("%w: import needs -f FILE", errUsage)
	case (*mappingFile == "") == (len(maps) == 0):
		return fmt.Errorf("%w: import needs --map settings or one --mapping FILE", errUsage)
	case *format != "" && *format != string(importer.CSV) && *format != string(importer.JSONL):
		return fmt.Errorf("%w: --format %q: want csv or jsonl", errUsage, *format)
	}
	m, err := loadMapping(*mappingFile, maps)
	if err != nil {
		return err
	}
	o := importer.Options{File: *file, Format: importer.Format(*format), Mapping: m, DryRun: *dryRun,
		StatePath: *state, ReportPath: *errorsPath}
	if !*noProgress {
		o.Progress = stderr
	}
	if !*dryRun {
		if o.Client, err = importer.NewClient(*base, *writeKey, nil); err != nil {
			return err
		}
	}
	sum, err := importer.Run(ctx, o)
	printSummary(stdout, sum, *dryRun)
	return err
}

func loadMapping(path string, maps []string) (importer.Mapping, error) {
	if path != "" {
		return importer.LoadMapping(path)
	}
	return importer.ParseMap(maps)
}

func printSummary(w io.Writer, s importer.Summary, dryRun bool) {
	verb := "imported"
	if dryRun {
		verb = "valid"
	}
	fmt.Fprintf(w, "%d rows read", s.Rows)
	if s.Skipped > 0 {
		fmt.Fprintf(w, " (%d handled by an earlier run, not sent again)", s.Skipped)
	}
	fmt.Fprintf(w, "; %d %s; %d bad", s.Sent, verb, s.Bad)
	if s.Bad > 0 {
		fmt.Fprintf(w, " (by line in %s)", s.ReportPath)
	}
	fmt.Fprintf(w, "; %.1fs\n", s.Elapsed.Seconds())
}
