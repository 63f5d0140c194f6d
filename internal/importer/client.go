package importer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/serverless-cdp/cdp/internal/backoff"
)

// Client posts batches to the tracking API's /v1/import with the write key (HTTP Basic).
type Client struct {
	endpoint string
	writeKey string
	http     *http.Client
	policy   backoff.Policy
	sleep    func(context.Context, time.Duration) error
}

// NewClient returns a client of the tracking API at base (http(s)://host[:port][/stage]).
// httpClient nil is a client with a 60 s timeout.
func NewClient(base, writeKey string, httpClient *http.Client) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("tracking API URL %q: want http(s)://host[:port]", base)
	}
	if writeKey == "" {
		return nil, errors.New("no write key: pass --write-key or set CDP_WRITE_KEY")
	}
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 60 * time.Second}
	}
	return &Client{
		endpoint: strings.TrimSuffix(u.String(), "/") + "/v1/import", writeKey: writeKey, http: httpClient,
		policy: backoff.Policy{Attempts: 10, Base: 500 * time.Millisecond, Max: 30 * time.Second}, sleep: backoff.Sleep,
	}, nil
}

// Refused is a batch the tracking API refused (400 or 413): retrying it unchanged cannot help.
// Index is the refused item (from the answer's "batch[i]: …"), or -1 when the answer names none.
type Refused struct {
	Index  int
	Code   string
	Reason string // the answer's message with quoted values blanked
}

func (r *Refused) Error() string {
	return fmt.Sprintf("refused by the tracking API: %s: %s", r.Code, r.Reason)
}

var (
	itemIndex    = regexp.MustCompile(`^batch\[(\d+)\]: `)
	quotedValues = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
)

// ErrSplit is returned by Send, when the caller can split the batch, after splitAfter failures
// that smaller batches may avoid (5xx: a stage that cannot store the batch in its time).
var ErrSplit = errors.New("the tracking API keeps failing this batch; send it in smaller parts")

// splitAfter is how many 5xx answers a splittable batch gets before Send returns ErrSplit: one,
// since halving costs one more request, and each failed try of a batch too big for the stage
// costs its whole timeout (10 s for ingest).
const splitAfter = 1

// Send posts one body, retrying 429 (after Retry-After) and 5xx and network errors with backoff.
// It returns nil once the API answered 200, a *Refused for 400 and 413, ErrSplit when splittable
// and the API answered 5xx splitAfter times, and an error otherwise.
func (c *Client) Send(ctx context.Context, body []byte, splittable bool) error {
	var last error
	fails := 0
	for attempt := 1; attempt <= c.policy.Attempts; attempt++ {
		wait, err := c.post(ctx, body)
		if err == nil {
			return nil
		}
		var ref *Refused
		if errors.As(err, &ref) || errors.Is(err, errFatal) {
			return err
		}
		if errors.Is(err, errServer) {
			if fails++; splittable && fails >= splitAfter {
				return fmt.Errorf("%w: %w", ErrSplit, err)
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("post batch: %w", ctx.Err())
		}
		last = err
		if attempt == c.policy.Attempts {
			break
		}
		if wait <= 0 {
			wait = c.policy.Delay(attempt)
		}
		if err := c.sleep(ctx, wait); err != nil {
			return fmt.Errorf("post batch: %w", err)
		}
	}
	return fmt.Errorf("post batch: gave up after %d attempts: %w", c.policy.Attempts, last)
}

// errFatal marks answers that no retry can fix (a bad write key, a wrong URL).
var errFatal = errors.New("tracking API refused the import")

// errServer marks a 5xx answer.
var errServer = errors.New("tracking API failed")

// post makes one attempt; a retryable failure may come with the wait the server asked for.
func (c *Client) post(ctx context.Context, body []byte) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errFatal, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(c.writeKey, "")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("post batch: %w", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode == http.StatusOK:
		return 0, nil
	case resp.StatusCode == http.StatusTooManyRequests:
		return retryAfter(resp.Header.Get("Retry-After")), fmt.Errorf("post batch: HTTP %d", resp.StatusCode)
	case resp.StatusCode >= 500:
		return retryAfter(resp.Header.Get("Retry-After")), fmt.Errorf("post batch: %w: HTTP %d", errServer, resp.StatusCode)
	case resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusRequestEntityTooLarge:
		return 0, refused(raw)
	}
	return 0, fmt.Errorf("%w: HTTP %d %s", errFatal, resp.StatusCode, strings.TrimSpace(string(raw)))
}

func refused(raw []byte) *Refused {
	var e struct{ Code, Message string }
	_ = json.Unmarshal(raw, &e)
	r := &Refused{Index: -1, Code: e.Code, Reason: e.Message}
	if m := itemIndex.FindStringSubmatch(e.Message); m != nil {
		r.Index, _ = strconv.Atoi(m[1])
		r.Reason = e.Message[len(m[0]):]
	}
	r.Reason = quotedValues.ReplaceAllString(r.Reason, `"…"`)
	if r.Code == "" {
		r.Code = "refused"
	}
	return r
}

// retryAfter reads a Retry-After in seconds (at most 5 minutes), or 0.
func retryAfter(v string) time.Duration {
	s, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || s <= 0 {
		return 0
	}
	return time.Duration(min(s, 300)) * time.Second
}
