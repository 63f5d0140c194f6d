package identityrules

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"time"

	"github.com/serverless-cdp/cdp/internal/admin"
	"github.com/serverless-cdp/cdp/internal/archive"
	"github.com/serverless-cdp/cdp/internal/identity"
	"github.com/serverless-cdp/cdp/internal/idrules"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// Limits of a dry-run request.
const (
	// MaxDryRunRange is the longest time range a dry run reads (31 days of arrival hours).
	MaxDryRunRange = 31 * 24 * time.Hour
	// MaxDryRunSources is how many sources a request may name.
	MaxDryRunSources = 100
	// DefaultDryRunMaxEvents is the most records a request may ask for unless configured: what
	// the API function's 256 MB hold (about 4 KB per record in the two in-memory runs).
	DefaultDryRunMaxEvents = 40_000
	// DefaultDryRunTimeout bounds a dry run whose context has no earlier deadline (API
	// Gateway answers within 29 s).
	DefaultDryRunTimeout = 25 * time.Second
)

// DryRunConfig is what the dry-run route reads besides the rules service.
type DryRunConfig struct {
	// Archive is the raw event archive (nil: none configured; the route answers 404).
	Archive archive.Store
	// Suppressions (optional) leaves suppressed people's records out of the run.
	Suppressions identity.SuppressionList
	// Timeout bounds one run (0: DefaultDryRunTimeout); an earlier deadline of the request wins.
	Timeout time.Duration
	// MaxEvents is the most records a request may ask to read (0: DefaultDryRunMaxEvents, at
	// most identity.MaxDryRunEvents); size it to the function's memory.
	MaxEvents int
}

// RegisterDryRun adds the identity-rule dry run to the admin router:
//
//	POST /admin/v1/identity-rules/dry-run   replay archived history under a candidate rule set
//	                                        in memory and report what would split or merge
//
// It reads the rules in force from svc and writes nothing anywhere.
func RegisterDryRun(r *admin.Router, svc Service, cfg DryRunConfig) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultDryRunTimeout
	}
	if cfg.MaxEvents <= 0 {
		cfg.MaxEvents = DefaultDryRunMaxEvents
	}
	cfg.MaxEvents = min(cfg.MaxEvents, identity.MaxDryRunEvents)
	h := dryRunAPI{svc: svc, cfg: cfg}
	r.Handle(http.MethodPost, admin.Prefix+"/identity-rules/dry-run", h.post)
}

type dryRunAPI struct {
	svc Service
	cfg DryRunConfig
}

// DryRunInput is the request body.
type DryRunInput struct {
	Rules       *idrules.Rules `json:"rules"`
	From        string         `json:"from"`
	To          string         `json:"to"`
	Sources     []string       `json:"sources,omitempty"`
	MaxEvents   int            `json:"maxEvents,omitempty"`
	MaxExamples int            `json:"maxExamples,omitempty"`
}

// DryRunOutput is the answer: the report, the range read and the archive lines that were not
// records (skipped, counted).
type DryRunOutput struct {
	*identity.DryRunReport
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	Sources  []string  `json:"sources"`
	BadLines int       `json:"badLines"`
}

func (h dryRunAPI) post(ctx context.Context, r *admin.Request) (int, any, error) {
	var in DryRunInput
	if err := r.Decode(&in); err != nil {
		return 0, nil, err
	}
	rng, err := in.validate(h.cfg.MaxEvents)
	if err != nil {
		return 0, nil, err
	}
	if h.cfg.Archive == nil {
		return 0, nil, admin.NotFound("no event archive is configured in this deployment")
	}
	current, err := h.svc.Get(ctx)
	if err != nil {
		return 0, nil, fmt.Errorf("dry run: read the rules in force: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	out := &DryRunOutput{From: rng.From, To: rng.To, Sources: rng.Sources}
	if out.Sources == nil {
		out.Sources = []string{}
	}
	if in.MaxEvents == 0 {
		in.MaxEvents = min(h.cfg.MaxEvents, identity.DefaultDryRunEvents)
	}
	hist := ArchiveHistory(ctx, h.cfg.Archive, rng, in.MaxEvents, &out.BadLines)
	opts := identity.DryRunOptions{MaxEvents: in.MaxEvents, MaxExamples: in.MaxExamples, Suppressions: h.cfg.Suppressions}
	out.DryRunReport, err = identity.DryRun(ctx, hist, current, *in.Rules, opts)
	if err != nil {
		return 0, nil, fmt.Errorf("dry run: %w", err)
	}
	return http.StatusOK, out, nil
}

// validate checks the input and returns the range to read; the error is a 400 naming the field.
func (in *DryRunInput) validate(maxEvents int) (archive.Range, error) {
	if in.Rules == nil {
		return archive.Range{}, admin.BadRequest("rules: required (the candidate rule set, as PUT /admin/v1/identity-rules takes it)")
	}
	if err := idrules.Validate(*in.Rules); err != nil {
		var ve *idrules.ValidationError
		if errors.As(err, &ve) {
			return archive.Range{}, admin.BadRequest("rules.%s: %s", ve.Field, ve.Message)
		}
		return archive.Range{}, err
	}
	from, err := parseTime("from", in.From)
	if err != nil {
		return archive.Range{}, err
	}
	to, err := parseTime("to", in.To)
	if err != nil {
		return archive.Range{}, err
	}
	switch {
	case !to.After(from):
		return archive.Range{}, admin.BadRequest("to: must be after from")
	case to.Sub(from) > MaxDryRunRange:
		return archive.Range{}, admin.BadRequest("to: the range is at most %d days", int(MaxDryRunRange/(24*time.Hour)))
	case in.MaxEvents < 0 || in.MaxEvents > maxEvents:
		return archive.Range{}, admin.BadRequest("maxEvents: between 1 and %d (0 or absent: %d)", maxEvents, min(maxEvents, identity.DefaultDryRunEvents))
	case in.MaxExamples < 0 || in.MaxExamples > identity.MaxDryRunExamples:
		return archive.Range{}, admin.BadRequest("maxExamples: between 1 and %d (0 or absent: %d)", identity.MaxDryRunExamples, identity.DefaultDryRunExamples)
	}
	if err := checkSources(in.Sources); err != nil {
		return archive.Range{}, err
	}
	return archive.Range{From: from, To: to, Sources: in.Sources}, nil
}

func parseTime(field, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, admin.BadRequest("%s: required (RFC 3339, e.g. 2026-11-01T00:00:00Z)", field)
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, admin.BadRequest("%s: not an RFC 3339 time: %.64q", field, v)
	}
	return t.UTC(), nil
}

func checkSources(srcs []string) error {
	if len(srcs) > MaxDryRunSources {
		return admin.BadRequest("sources: at most %d", MaxDryRunSources)
	}
	for i, s := range srcs {
		if s == "" || len(s) > admin.MaxParamBytes || !tracking.ValidUTF8ID(s) || slices.Contains(srcs[:i], s) {
			return admin.BadRequest("sources[%d]: not a source id (empty, too long, not UTF-8 or repeated)", i)
		}
	}
	return nil
}

// errHourFull stops reading an hour whose records exceed what the run may read.
var errHourFull = errors.New("identityrules: hour buffer full")

// ArchiveHistory reads the archived records of rng in arrival order: hour by hour, all sources
// of an hour read together and ordered by receivedAt (the archive is partitioned per source, and
// identity resolution depends on the order). Without sources, the archive's sources are listed
// once. At most maxEvents+1 records of one hour are held (0: identity.DefaultDryRunEvents): the
// run stops there anyway. Lines that are not records are counted in bad.
func ArchiveHistory(ctx context.Context, st archive.Store, rng archive.Range, maxEvents int, bad *int) identity.History {
	if maxEvents <= 0 {
		maxEvents = identity.DefaultDryRunEvents
	}
	return func(yield func(tracking.Record) error) error {
		sources := rng.Sources
		if len(sources) == 0 {
			var err error
			if sources, err = listSources(ctx, st); err != nil {
				return err
			}
		}
		if len(sources) == 0 {
			return nil
		}
		countBad := func(string, []byte, error) error { *bad++; return nil }
		for h := rng.From.UTC().Truncate(time.Hour); h.Before(rng.To); h = h.Add(time.Hour) {
			var hour []tracking.Record
			err := archive.Scan(ctx, st, archive.Range{From: h, To: h.Add(time.Hour), Sources: sources}, func(_ string, rec tracking.Record) error {
				if len(hour) > maxEvents {
					return errHourFull
				}
				hour = append(hour, rec)
				return nil
			}, countBad)
			if err != nil && !errors.Is(err, errHourFull) {
				return fmt.Errorf("read the archive: %w", err)
			}
			sort.SliceStable(hour, func(i, j int) bool { return hour[i].Message.ReceivedAt.Before(hour[j].Message.ReceivedAt) })
			for _, rec := range hour {
				if err := yield(rec); err != nil {
					return err
				}
			}
		}
		return nil
	}
}

// listSources lists the sources whose history the archive holds (not its _invalid and _replay
// folders).
func listSources(ctx context.Context, st archive.Store) ([]string, error) {
	out, err := archive.Sources(ctx, st)
	if err != nil {
		return nil, fmt.Errorf("list the archive's sources: %w", err)
	}
	return out, nil
}
