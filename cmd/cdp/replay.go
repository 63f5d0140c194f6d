package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/serverless-cdp/cdp/internal/apitypes"
)

// replayUsage is the replay part of the usage text.
const replayUsage = `  cdp replay start --from TIME --to TIME (--pipeline | --destination ID) [--source ID …]
                   [--id TYPE:VALUE …] [--event NAME …] [--wait]
      Replay archived events received in [--from, --to) (RFC 3339, at most 31 days) back into
      the pipeline (deduplicated by identity) or to one destination (forward history to a new
      tool), optionally only from some sources, about some people, named some event names.
      --wait polls until the job is completed or failed. Prints the job as JSON.
  cdp replay get ID
  cdp replay list [--limit N] [--next TOKEN]
      Show a replay job (progress, counts of records read, matched, sent and skipped by
      reason); list jobs, newest first. All take --url and --token like apply.
`

type replayFlags struct {
	from, to, dest, next string
	sources, ids, events idList
	pipeline, wait       bool
	limit                int
}

// replayCmd runs `cdp replay SUB …`.
func replayCmd(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: replay needs start, get or list", errUsage)
	}
	sub := args[0]
	fs := flag.NewFlagSet("replay "+sub, flag.ContinueOnError)
	base := fs.String("url", envOr(getenv, "CDP_ADMIN_URL", defaultAdminURL), "admin API base URL")
	token := fs.String("token", getenv("CDP_ADMIN_TOKEN"), "admin token")
	p := replayFlags{}
	fs.StringVar(&p.from, "from", "", "start (RFC 3339)")
	fs.StringVar(&p.to, "to", "", "end, exclusive (RFC 3339)")
	fs.BoolVar(&p.pipeline, "pipeline", false, "replay into the pipeline")
	fs.StringVar(&p.dest, "destination", "", "replay to this destination")
	fs.Var(&p.sources, "source", "source id (repeatable)")
	fs.Var(&p.ids, "id", "identifier TYPE:VALUE (repeatable)")
	fs.Var(&p.events, "event", "event name (repeatable)")
	fs.BoolVar(&p.wait, "wait", false, "poll until completed or failed")
	fs.IntVar(&p.limit, "limit", 50, "page size")
	fs.StringVar(&p.next, "next", "", "next page token")
	rest, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	if err := p.check(sub, rest); err != nil {
		return err
	}
	c, err := newAdminClient(*base, *token)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 24*time.Hour)
	defer cancel()
	switch sub {
	case "start":
		return p.start(ctx, c, stdout)
	case "get":
		var j apitypes.Replay
		if err := c.getJSON(ctx, apitypes.Prefix+"/replays/"+url.PathEscape(rest[0]), &j); err != nil {
			return err
		}
		return printJSON(stdout, j)
	}
	return p.list(ctx, c, stdout)
}

func (p replayFlags) check(sub string, rest []string) error {
	switch {
	case sub != "start" && sub != "get" && sub != "list":
		return fmt.Errorf("%w: unknown replay command %q", errUsage, sub)
	case sub == "get" && len(rest) != 1:
		return fmt.Errorf("%w: replay get needs one job ID", errUsage)
	case sub != "get" && len(rest) > 0:
		return fmt.Errorf("%w: unexpected argument %q", errUsage, rest[0])
	case sub == "start" && (p.from == "" || p.to == ""):
		return fmt.Errorf("%w: replay start needs --from and --to", errUsage)
	case sub == "start" && p.pipeline == (p.dest != ""):
		return fmt.Errorf("%w: replay start needs one of --pipeline and --destination ID", errUsage)
	}
	return nil
}

func (p replayFlags) start(ctx context.Context, c *adminClient, stdout io.Writer) error {
	in := apitypes.ReplayInput{From: p.from, To: p.to, Sources: p.sources, Identifiers: p.ids, Events: p.events,
		Target: apitypes.ReplayTarget{Type: "pipeline"}}
	if p.dest != "" {
		in.Target = apitypes.ReplayTarget{Type: "destination", DestinationID: p.dest}
	}
	raw, err := c.call(ctx, http.MethodPost, apitypes.Prefix+"/replays", in)
	if err != nil {
		return err
	}
	var j apitypes.Replay
	if err := json.Unmarshal(raw, &j); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for p.wait && j.Status != "completed" && j.Status != "failed" {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", j.ID, ctx.Err())
		case <-tick.C:
		}
		if err := c.getJSON(ctx, apitypes.Prefix+"/replays/"+url.PathEscape(j.ID), &j); err != nil {
			return err
		}
	}
	return printJSON(stdout, j)
}

func (p replayFlags) list(ctx context.Context, c *adminClient, stdout io.Writer) error {
	q := url.Values{"limit": {fmt.Sprint(p.limit)}}
	if p.next != "" {
		q.Set("next", p.next)
	}
	var page apitypes.ReplayList
	if err := c.getJSON(ctx, apitypes.Prefix+"/replays?"+q.Encode(), &page); err != nil {
		return err
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tSTATUS\tTARGET\tFROM\tTO\tREAD\tSENT\tSKIPPED")
	for _, j := range page.Replays {
		target := j.Target.Type
		if j.Target.DestinationID != "" {
			target += ":" + j.Target.DestinationID
		}
		var skipped []string
		for _, r := range []string{"filtered", "suppressed", "erased_profile", "unresolved", "bad_line"} {
			if n := j.Counts.Skipped[r]; n > 0 {
				skipped = append(skipped, fmt.Sprintf("%s=%d", r, n))
			}
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", j.ID, j.Status, target, j.From.UTC().Format(time.RFC3339),
			j.To.UTC().Format(time.RFC3339), j.Counts.Read, j.Counts.Sent, strings.Join(skipped, " "))
	}
	if page.Next != "" {
		fmt.Fprintf(w, "(more: --next %s)\n", page.Next)
	}
	return w.Flush()
}
