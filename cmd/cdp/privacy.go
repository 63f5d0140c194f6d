package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/serverless-cdp/cdp/internal/apitypes"
)

// privacyUsage is the privacy part of the usage text.
const privacyUsage = `  cdp privacy request --type TYPE --id TYPE:VALUE [--id …] [--reason TEXT] [--wait]
      Submit a privacy request: TYPE is delete, suppress, suppress_with_delete, unsuppress or
      export; each --id names the person, e.g. --id email:ann@example.com. --wait polls until
      it is completed or failed. Prints the request as JSON.
  cdp privacy get ID [-o FILE] [--ndjson]
      Show a request; -o writes an export's result to FILE (JSON, or NDJSON with --ndjson).
  cdp privacy list [--limit N] [--next TOKEN]
  cdp privacy suppressions
      The audit log of privacy requests (newest first); the suppression list.
      All take --url and --token like apply.
`

// adminClient is the little HTTP client of the privacy commands.
type adminClient struct {
	base, token string
	http        *http.Client
}

func newAdminClient(base, token string) (*adminClient, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("admin URL %q: want http(s)://host[:port]", base)
	}
	if token == "" {
		return nil, errors.New("no admin token: pass --token or set CDP_ADMIN_TOKEN")
	}
	return &adminClient{base: strings.TrimSuffix(u.String(), "/"), token: token, http: &http.Client{Timeout: 60 * time.Second}}, nil
}

// call sends a request and returns the answer's body; an error answer is an error naming its
// status, code and message.
func (c *adminClient) call(ctx context.Context, method, path string, in any) ([]byte, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var e apitypes.ErrorBody
		if json.Unmarshal(raw, &e) != nil || e.Code == "" {
			e = apitypes.ErrorBody{Code: "unexpected", Message: strings.TrimSpace(string(raw))}
		}
		return nil, fmt.Errorf("admin API: %d %s: %s", resp.StatusCode, e.Code, e.Message)
	}
	return raw, nil
}

func (c *adminClient) getJSON(ctx context.Context, path string, out any) error {
	raw, err := c.call(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("GET %s: decode answer: %w", path, err)
	}
	return nil
}

// idList is a repeatable flag.
type idList []string

func (l *idList) String() string     { return strings.Join(*l, ",") }
func (l *idList) Set(v string) error { *l = append(*l, v); return nil }

// privacyCmd runs `cdp privacy SUB …`.
func privacyCmd(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: privacy needs request, get, list or suppressions", errUsage)
	}
	sub := args[0]
	fs := flag.NewFlagSet("privacy "+sub, flag.ContinueOnError)
	base := fs.String("url", envOr(getenv, "CDP_ADMIN_URL", defaultAdminURL), "admin API base URL")
	token := fs.String("token", getenv("CDP_ADMIN_TOKEN"), "admin token")
	p := privacyFlags{}
	fs.StringVar(&p.typ, "type", "", "request type")
	fs.Var(&p.ids, "id", "identifier TYPE:VALUE (repeatable)")
	fs.StringVar(&p.reason, "reason", "", "why")
	fs.BoolVar(&p.wait, "wait", false, "poll until completed or failed")
	fs.StringVar(&p.out, "o", "", "file for the export result")
	fs.BoolVar(&p.ndjson, "ndjson", false, "write the export as NDJSON")
	fs.IntVar(&p.limit, "limit", 50, "page size")
	fs.StringVar(&p.next, "next", "", "next page token")
	rest, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	if !map[string]bool{"request": true, "get": true, "list": true, "suppressions": true}[sub] {
		return fmt.Errorf("%w: unknown privacy command %q", errUsage, sub)
	}
	if err := p.check(sub, rest); err != nil {
		return err
	}
	c, err := newAdminClient(*base, *token)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	switch sub {
	case "request":
		return p.request(ctx, c, stdout)
	case "get":
		return p.get(ctx, c, rest[0], stdout)
	case "list":
		return p.list(ctx, c, stdout)
	}
	return p.suppressions(ctx, c, stdout)
}

type privacyFlags struct {
	typ, reason, out, next string
	ids                    idList
	wait, ndjson           bool
	limit                  int
}

func (p privacyFlags) check(sub string, rest []string) error {
	switch {
	case sub == "get" && len(rest) != 1:
		return fmt.Errorf("%w: privacy get needs one request ID", errUsage)
	case sub != "get" && len(rest) > 0:
		return fmt.Errorf("%w: unexpected argument %q", errUsage, rest[0])
	case sub == "request" && (p.typ == "" || len(p.ids) == 0):
		return fmt.Errorf("%w: privacy request needs --type and at least one --id", errUsage)
	}
	return nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (p privacyFlags) request(ctx context.Context, c *adminClient, stdout io.Writer) error {
	raw, err := c.call(ctx, http.MethodPost, apitypes.Prefix+"/privacy/requests",
		apitypes.PrivacyRequestInput{Type: p.typ, Identifiers: p.ids, Reason: p.reason})
	if err != nil {
		return err
	}
	var r apitypes.PrivacyRequest
	if err := json.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for p.wait && r.Status != "completed" && r.Status != "failed" {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", r.ID, ctx.Err())
		case <-tick.C:
		}
		if err := c.getJSON(ctx, apitypes.Prefix+"/privacy/requests/"+url.PathEscape(r.ID), &r); err != nil {
			return err
		}
	}
	r.Export = nil
	return printJSON(stdout, r)
}

func (p privacyFlags) get(ctx context.Context, c *adminClient, id string, stdout io.Writer) error {
	path := apitypes.Prefix + "/privacy/requests/" + url.PathEscape(id)
	var r apitypes.PrivacyRequest
	if err := c.getJSON(ctx, path, &r); err != nil {
		return err
	}
	if p.out != "" {
		doc := []byte(r.Export)
		if p.ndjson {
			var err error
			if doc, err = c.call(ctx, http.MethodGet, path+"?format=ndjson", nil); err != nil {
				return err
			}
		}
		if len(doc) == 0 {
			return fmt.Errorf("request %s has no export result (type %s, status %s)", id, r.Type, r.Status)
		}
		if err := os.WriteFile(p.out, doc, 0o600); err != nil {
			return fmt.Errorf("write export: %w", err)
		}
	}
	r.Export = nil
	return printJSON(stdout, r)
}

func (p privacyFlags) list(ctx context.Context, c *adminClient, stdout io.Writer) error {
	q := url.Values{"limit": {fmt.Sprint(p.limit)}}
	if p.next != "" {
		q.Set("next", p.next)
	}
	var page apitypes.PrivacyRequestList
	if err := c.getJSON(ctx, apitypes.Prefix+"/privacy/requests?"+q.Encode(), &page); err != nil {
		return err
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tTYPE\tSTATUS\tCREATED\tBY\tIDENTIFIERS")
	for _, r := range page.Requests {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Type, r.Status, r.CreatedAt.UTC().Format(time.RFC3339), r.RequestedBy, strings.Join(r.Labels, " "))
	}
	if page.Next != "" {
		fmt.Fprintf(w, "(more: --next %s)\n", page.Next)
	}
	return w.Flush()
}

func (p privacyFlags) suppressions(ctx context.Context, c *adminClient, stdout io.Writer) error {
	var s apitypes.PrivacySuppressions
	if err := c.getJSON(ctx, apitypes.Prefix+"/privacy/suppressions", &s); err != nil {
		return err
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "REQUEST\tCREATED\tIDENTIFIERS")
	for _, g := range s.Suppressions {
		fmt.Fprintf(w, "%s\t%s\t%s\n", g.Group, g.CreatedAt.UTC().Format(time.RFC3339), strings.Join(g.Labels, " "))
	}
	fmt.Fprintln(w, "\nSOURCE\tEVENTS DROPPED")
	for _, src := range sortedNames(s.DroppedBySource) {
		fmt.Fprintf(w, "%s\t%d\n", src, s.DroppedBySource[src])
	}
	return w.Flush()
}

func sortedNames(m map[string]int64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
