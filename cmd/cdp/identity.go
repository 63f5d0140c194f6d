package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/serverless-cdp/cdp/internal/apitypes"
	"github.com/serverless-cdp/cdp/internal/config"
	"github.com/serverless-cdp/cdp/internal/idrules"
)

// identityUsage is the identity part of the usage text.
const identityUsage = `  cdp identity dry-run -f RULES --from TIME --to TIME [--source ID …] [--max-events N]
                       [--examples N] [--json]
      Replay the archived events of [from, to) (RFC 3339 or YYYY-MM-DD; at most 31 days) under
      a candidate identity rule set, in memory, and print which profiles would split or merge
      compared with the rules in force, with examples. Nothing is changed. RULES is a rule set
      (types: […], as PUT /admin/v1/identity-rules takes it) or a cdp config file with
      identityRules. --json prints the API's answer. Takes --url and --token like apply.
`

// dryRunReport is the part of the dry-run answer the CLI prints (the CLI links no server code:
// these mirror the API's JSON, documented in api/openapi.yaml).
type dryRunReport struct {
	Events       int    `json:"events"`
	Suppressed   int    `json:"suppressed"`
	Duplicates   int    `json:"duplicates"`
	Unresolvable int    `json:"unresolvable"`
	Truncated    bool   `json:"truncated"`
	TruncatedBy  string `json:"truncatedBy"`
	BadLines     int    `json:"badLines"`
	Current      struct {
		Profiles    int `json:"profiles"`
		Identifiers int `json:"identifiers"`
	} `json:"current"`
	Candidate struct {
		Profiles    int `json:"profiles"`
		Identifiers int `json:"identifiers"`
	} `json:"candidate"`
	Splits        int             `json:"splits"`
	Merges        int             `json:"merges"`
	Detached      int             `json:"detached"`
	Attached      int             `json:"attached"`
	SplitExamples []dryRunExample `json:"splitExamples"`
	MergeExamples []dryRunExample `json:"mergeExamples"`
}

type dryRunExample struct {
	Current         [][]string `json:"current"`
	Candidate       [][]string `json:"candidate"`
	CurrentUnheld   []string   `json:"currentUnheld"`
	CandidateUnheld []string   `json:"candidateUnheld"`
	Decisions       []struct {
		Text string `json:"text"`
	} `json:"decisions"`
}

type dryRunFlags struct {
	file, from, to       string
	sources              idList
	maxEvents, maxExampl int
	asJSON               bool
}

// identityCmd runs `cdp identity SUB …`.
func identityCmd(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	if len(args) == 0 || args[0] != "dry-run" {
		return fmt.Errorf("%w: identity needs dry-run", errUsage)
	}
	fs := flag.NewFlagSet("identity dry-run", flag.ContinueOnError)
	base := fs.String("url", envOr(getenv, "CDP_ADMIN_URL", defaultAdminURL), "admin API base URL")
	token := fs.String("token", getenv("CDP_ADMIN_TOKEN"), "admin token")
	var f dryRunFlags
	fs.StringVar(&f.file, "f", "", "candidate rule set (YAML or JSON)")
	fs.StringVar(&f.from, "from", "", "start of the range")
	fs.StringVar(&f.to, "to", "", "end of the range (exclusive)")
	fs.Var(&f.sources, "source", "source id (repeatable; default every source)")
	fs.IntVar(&f.maxEvents, "max-events", 0, "records read at most (default the API's)")
	fs.IntVar(&f.maxExampl, "examples", 0, "examples of each kind (default the API's)")
	fs.BoolVar(&f.asJSON, "json", false, "print the API's JSON answer")
	rest, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	in, err := f.input(rest)
	if err != nil {
		return err
	}
	c, err := newAdminClient(*base, *token)
	if err != nil {
		return err
	}
	c.http.Timeout = 2 * time.Minute
	raw, err := c.call(ctx, http.MethodPost, apitypes.Prefix+"/identity-rules/dry-run", in)
	if err != nil {
		return err
	}
	if f.asJSON {
		var out bytes.Buffer
		if err := json.Indent(&out, raw, "", "  "); err != nil {
			return fmt.Errorf("decode answer: %w", err)
		}
		_, err := fmt.Fprintln(stdout, out.String())
		return err
	}
	var rep dryRunReport
	if err := json.Unmarshal(raw, &rep); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	return printDryRun(stdout, &rep)
}

// input checks the flags and reads the rule set, before anything talks to the CDP.
func (f dryRunFlags) input(rest []string) (map[string]any, error) {
	switch {
	case len(rest) > 0:
		return nil, fmt.Errorf("%w: unexpected argument %q", errUsage, rest[0])
	case f.file == "" || f.from == "" || f.to == "":
		return nil, fmt.Errorf("%w: identity dry-run needs -f RULES, --from and --to", errUsage)
	}
	from, err := cliTime("--from", f.from)
	if err != nil {
		return nil, err
	}
	to, err := cliTime("--to", f.to)
	if err != nil {
		return nil, err
	}
	rules, err := loadRules(f.file)
	if err != nil {
		return nil, err
	}
	in := map[string]any{"rules": rules, "from": from, "to": to}
	if len(f.sources) > 0 {
		in["sources"] = []string(f.sources)
	}
	if f.maxEvents > 0 {
		in["maxEvents"] = f.maxEvents
	}
	if f.maxExampl > 0 {
		in["maxExamples"] = f.maxExampl
	}
	return in, nil
}

// cliTime accepts RFC 3339 or a date (midnight UTC).
func cliTime(flagName, v string) (string, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC().Format(time.RFC3339), nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t.UTC().Format(time.RFC3339), nil
	}
	return "", fmt.Errorf("%w: %s %q: want RFC 3339 (2026-11-01T00:00:00Z) or a date (2026-11-01)", errUsage, flagName, v)
}

// loadRules reads a rule set, or a cdp config file's identityRules, and validates it locally.
func loadRules(path string) (idrules.Rules, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return idrules.Rules{}, fmt.Errorf("read rules: %w", err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return idrules.Rules{}, fmt.Errorf("%s: %w", path, err)
	}
	var r idrules.Rules
	if _, ok := doc["identityRules"]; ok {
		f, err := config.Load(path)
		if err != nil {
			return idrules.Rules{}, err
		}
		r = *f.IdentityRules
	} else {
		js, err := json.Marshal(doc)
		if err != nil {
			return idrules.Rules{}, fmt.Errorf("%s: %w", path, err)
		}
		dec := json.NewDecoder(bytes.NewReader(js))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			return idrules.Rules{}, fmt.Errorf("%s: not a rule set (types: […]) nor a config file with identityRules: %w", path, err)
		}
	}
	if err := idrules.Validate(r); err != nil {
		return idrules.Rules{}, fmt.Errorf("%s: %w", path, err)
	}
	if r.Types == nil {
		r.Types = []idrules.TypeRule{}
	}
	return r, nil
}

func printDryRun(w io.Writer, r *dryRunReport) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Events read\t%d\t(suppressed %d, duplicates %d, unresolvable %d, bad lines %d)\n", r.Events, r.Suppressed, r.Duplicates, r.Unresolvable, r.BadLines)
	if r.Truncated {
		fmt.Fprintf(tw, "TRUNCATED\tthe %s budget ran out: only the events read were compared\t\n", r.TruncatedBy)
	}
	fmt.Fprintf(tw, "Profiles\tnow %d\tcandidate %d\n", r.Current.Profiles, r.Candidate.Profiles)
	fmt.Fprintf(tw, "Would split\t%d\t\n", r.Splits)
	fmt.Fprintf(tw, "Would merge\t%d\t\n", r.Merges)
	fmt.Fprintf(tw, "Identifiers detached\t%d\t(held now, by no profile under the candidate)\n", r.Detached)
	fmt.Fprintf(tw, "Identifiers attached\t%d\t\n", r.Attached)
	if err := tw.Flush(); err != nil {
		return err
	}
	printExamples(w, "split", r.SplitExamples)
	printExamples(w, "merge", r.MergeExamples)
	return nil
}

func printExamples(w io.Writer, kind string, exs []dryRunExample) {
	for i, ex := range exs {
		fmt.Fprintf(w, "\n%s %d:\n  now:       %s\n  candidate: %s\n", kind, i+1, groupsText(ex.Current, ex.CurrentUnheld), groupsText(ex.Candidate, ex.CandidateUnheld))
		for _, d := range ex.Decisions {
			fmt.Fprintf(w, "  %s\n", d.Text)
		}
	}
}

func groupsText(groups [][]string, unheld []string) string {
	parts := make([]string, 0, len(groups)+1)
	for _, g := range groups {
		parts = append(parts, "{"+strings.Join(g, " ")+"}")
	}
	if len(unheld) > 0 {
		parts = append(parts, "no profile: "+strings.Join(unheld, " "))
	}
	return strings.Join(parts, " ")
}
