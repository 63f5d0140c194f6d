package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrForbiddenAddress is wrapped by errors for targets the Policy refuses.
var ErrForbiddenAddress = errors.New("webhook target address is not allowed")

// Policy says which non-public targets are allowed. The zero value allows public unicast only.
type Policy struct {
	AllowPrivate  bool // every non-public address (private, loopback, link-local, …): local development only
	AllowLoopback bool // loopback only (127.0.0.0/8, ::1): what the local runner and tests use
}

var blocked = func() []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
		"192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
		"203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
		"::/128", "::1/128", "100::/64", "2001:db8::/32", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
	} {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}()

var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// Check returns nil if the policy allows connecting to ip, else an error wrapping
// ErrForbiddenAddress. IPv4-mapped and NAT64 IPv6 addresses are judged by their IPv4 address.
func (p Policy) Check(ip netip.Addr) error {
	ip = ip.Unmap().WithZone("")
	if nat64.Contains(ip) {
		b := ip.As16()
		ip = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	}
	if !ip.IsValid() {
		return fmt.Errorf("%w: invalid address", ErrForbiddenAddress)
	}
	if p.AllowPrivate || (p.AllowLoopback && ip.IsLoopback()) {
		return nil
	}
	for _, b := range blocked {
		if b.Contains(ip) {
			return fmt.Errorf("%w: %s is not a public address", ErrForbiddenAddress, ip)
		}
	}
	return nil
}

// ValidateURL checks a destination URL when it is configured: http or https, a host, no user
// info, and, when the host is an IP literal or "localhost", an address the policy allows. Host
// names are checked again at every connection, after resolution.
func (p Policy) ValidateURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("invalid URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return errors.New("URL scheme must be http or https")
	}
	if u.Host == "" || u.Hostname() == "" {
		return errors.New("URL must have a host")
	}
	if u.User != nil {
		return errors.New("URL must not contain user info")
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return errors.New("URL port is invalid")
		}
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return p.Check(netip.MustParseAddr("127.0.0.1"))
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return p.Check(ip)
	}
	return nil
}

// Request is one webhook request.
type Request struct {
	URL     string
	Body    []byte
	Header  http.Header   // extra headers (static headers, signatures); Content-Type defaults to JSON
	Timeout time.Duration // 0: the client's default
}

// Response is what came back. Body holds at most MaxResponseBytes.
type Response struct {
	StatusCode int
	Header     http.Header
	Body       []byte
	Latency    time.Duration
}

// Client sends webhook requests safely. Safe for concurrent use.
type Client struct {
	http    *http.Client
	timeout time.Duration
	maxBody int64
	agent   string
}

// Options configure a Client.
type Options struct {
	Policy           Policy
	Timeout          time.Duration // per request; default 10 s
	MaxResponseBytes int64         // default 64 KiB
	UserAgent        string        // default "serverless-cdp-webhooks/1"
}

// NewClient returns a client enforcing opts.Policy at dial time.
func NewClient(opts Options) *Client {
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.MaxResponseBytes <= 0 {
		opts.MaxResponseBytes = 64 << 10
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "serverless-cdp-webhooks/1"
	}
	policy := opts.Policy
	dialer := &net.Dialer{
		Timeout:   opts.Timeout,
		KeepAlive: 30 * time.Second,
		// Control runs for every connection attempt with the resolved address, so a host name
		// that resolves (or re-resolves) to a forbidden address is refused.
		Control: func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: cannot parse %q", ErrForbiddenAddress, address)
			}
			return policy.Check(ap.Addr())
		},
	}
	transport := &http.Transport{
		Proxy:                 nil, // a proxy would dial for us and bypass the check
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   10,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   opts.Timeout,
		ResponseHeaderTimeout: opts.Timeout,
	}
	return &Client{
		http: &http.Client{
			Transport:     transport,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		timeout: opts.Timeout, maxBody: opts.MaxResponseBytes, agent: opts.UserAgent,
	}
}

// Do sends a POST. A non-nil error means no response arrived (refused address, connection
// error, timeout); any HTTP status, including 3xx, comes back as a Response.
func (c *Client) Do(ctx context.Context, r Request) (Response, error) {
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = c.timeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(r.Body))
	if err != nil {
		return Response{}, fmt.Errorf("build request: %w", err)
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", c.agent)
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message repeats the URL, query string included
		}
		return Response{Latency: time.Since(start)}, fmt.Errorf("post %s: %w", redact(r.URL), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBody))
	out := Response{StatusCode: resp.StatusCode, Header: resp.Header, Body: body, Latency: time.Since(start)}
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		// The status arrived; a broken body does not change the outcome.
		out.Body = append(out.Body, []byte(" [body read error]")...)
	}
	return out, nil
}

// redact drops the query string (which may carry tokens) from URLs in error messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	u.RawQuery, u.Fragment, u.User = "", "", nil
	return u.String()
}

// RetryAfter parses a Retry-After header (delay seconds or an HTTP date) relative to now.
// It returns 0 when absent or invalid.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		if n > 7*24*3600 {
			n = 7 * 24 * 3600
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
