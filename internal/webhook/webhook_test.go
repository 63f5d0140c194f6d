package webhook

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

func TestStandardSignatureVerifiesWithReferenceLibrary(t *testing.T) {
	secret := NewSecret()
	body := []byte(`{"type":"track","event":"Audience Entered"}`)
	h := http.Header{}
	if err := Sign(h, ModeStandard, "msg_abc", time.Now(), body, []string{secret}); err != nil {
		t.Fatal(err)
	}
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(body, h); err != nil {
		t.Fatalf("reference library rejects our signature: %v (headers %v)", err, h)
	}
	if err := wh.Verify(append(body, ' '), h); err == nil {
		t.Fatal("tampered body verified")
	}
}

func TestRotationSendsBothSignatures(t *testing.T) {
	oldS, newS := NewSecret(), NewSecret()
	body := []byte(`{}`)
	h := http.Header{}
	if err := Sign(h, "", "msg_1", time.Now(), body, []string{newS, oldS}); err != nil {
		t.Fatal(err)
	}
	if n := len(strings.Split(h.Get(HeaderSignature), " ")); n != 2 {
		t.Fatalf("want 2 signatures, got %d: %q", n, h.Get(HeaderSignature))
	}
	for _, s := range []string{oldS, newS} {
		wh, _ := standardwebhooks.NewWebhook(s)
		if err := wh.Verify(body, h); err != nil {
			t.Fatalf("secret %s: %v", s[:10], err)
		}
	}
	other, _ := standardwebhooks.NewWebhook(NewSecret())
	if err := other.Verify(body, h); err == nil {
		t.Fatal("unrelated secret verified")
	}
}

func TestSegmentSignature(t *testing.T) {
	// Known HMAC-SHA1 vector (RFC 2202 test case 2).
	if got := SegmentSignature("Jefe", []byte("what do ya want for nothing?")); got != "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79" {
		t.Fatalf("got %s", got)
	}
	h := http.Header{}
	if err := Sign(h, ModeSegment, "id", time.Now(), []byte("x"), []string{"s"}); err != nil {
		t.Fatal(err)
	}
	if h.Get(HeaderXSignature) == "" || h.Get(HeaderSignature) != "" {
		t.Fatalf("headers %v", h)
	}
}

func TestBadSecret(t *testing.T) {
	for _, s := range []string{"", "whsec_", "whsec_!!!", "abc", "whsec_c2hvcnQ="} {
		if _, err := SecretKey(s); !errors.Is(err, ErrBadSecret) {
			t.Errorf("%q: %v", s, err)
		}
	}
}

func TestPolicyCheck(t *testing.T) {
	deny := []string{
		"127.0.0.1", "127.1.2.3", "::1", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
		"169.254.169.254", "fe80::1", "fc00::1", "fd12:3456::1", "0.0.0.0", "::", "100.64.0.1",
		"::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe",
		"224.0.0.1", "255.255.255.255", "ff02::1",
	}
	allow := []string{"8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "172.32.0.1"}
	for _, s := range deny {
		if err := (Policy{}).Check(netip.MustParseAddr(s)); !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("%s allowed by default", s)
		}
	}
	for _, s := range allow {
		if err := (Policy{}).Check(netip.MustParseAddr(s)); err != nil {
			t.Errorf("%s refused: %v", s, err)
		}
	}
	lo := Policy{AllowLoopback: true}
	for _, s := range []string{"127.0.0.1", "::1", "::ffff:127.0.0.1"} {
		if err := lo.Check(netip.MustParseAddr(s)); err != nil {
			t.Errorf("loopback %s refused with AllowLoopback: %v", s, err)
		}
	}
	if err := lo.Check(netip.MustParseAddr("10.0.0.1")); err == nil {
		t.Error("AllowLoopback allowed a private address")
	}
	if err := (Policy{AllowPrivate: true}).Check(netip.MustParseAddr("10.0.0.1")); err != nil {
		t.Error(err)
	}
}

func TestValidateURL(t *testing.T) {
	bad := []string{"ftp://x.example", "http://", "https://user:pw@x.example/", "http://127.0.0.1/",
		"http://localhost:8080/", "http://[::1]/", "http://169.254.169.254/latest", "not a url", "http://x.example:99999/"}
	for _, u := range bad {
		if err := (Policy{}).ValidateURL(u); err == nil {
			t.Errorf("%s accepted", u)
		}
	}
	for _, u := range []string{"https://hooks.example.com/x?y=1", "http://8.8.8.8:8080/"} {
		if err := (Policy{}).ValidateURL(u); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	if err := (Policy{AllowLoopback: true}).ValidateURL("http://localhost:8080/"); err != nil {
		t.Error(err)
	}
}

func TestClientRefusesLoopbackByDefaultAtDialTime(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	// A host name that resolves to loopback: the dial-time check catches it, whatever DNS says.
	url := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	_, err := NewClient(Options{}).Do(context.Background(), Request{URL: url, Body: []byte("{}")})
	if !errors.Is(err, ErrForbiddenAddress) {
		t.Fatalf("want ErrForbiddenAddress, got %v", err)
	}
	_, err = NewClient(Options{}).Do(context.Background(), Request{URL: srv.URL, Body: []byte("{}")})
	if !errors.Is(err, ErrForbiddenAddress) {
		t.Fatalf("want ErrForbiddenAddress, got %v", err)
	}
	if hits.Load() != 0 {
		t.Fatal("request reached the server")
	}
	resp, err := NewClient(Options{Policy: Policy{AllowLoopback: true}}).Do(context.Background(), Request{URL: url, Body: []byte("{}")})
	if err != nil || resp.StatusCode != 200 || hits.Load() != 1 {
		t.Fatalf("allowed loopback: %v %v hits=%d", resp.StatusCode, err, hits.Load())
	}
}

func TestClientDoesNotFollowRedirectsAndCapsBody(t *testing.T) {
	var target int
	mux := http.NewServeMux()
	mux.HandleFunc("/redir", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/target", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/target", func(w http.ResponseWriter, r *http.Request) { target++ })
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(500)
		_, _ = io.WriteString(w, strings.Repeat("x", 1<<20))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := NewClient(Options{Policy: Policy{AllowLoopback: true}, MaxResponseBytes: 1024})
	resp, err := c.Do(context.Background(), Request{URL: srv.URL + "/redir"})
	if err != nil || resp.StatusCode != http.StatusTemporaryRedirect || target != 0 {
		t.Fatalf("redirect: status %d err %v target hits %d", resp.StatusCode, err, target)
	}
	resp, err = c.Do(context.Background(), Request{URL: srv.URL + "/big"})
	if err != nil || resp.StatusCode != 500 || len(resp.Body) != 1024 {
		t.Fatalf("big: status %d err %v len %d", resp.StatusCode, err, len(resp.Body))
	}
}

func TestClientTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	start := time.Now()
	_, err := NewClient(Options{Policy: Policy{AllowLoopback: true}}).Do(context.Background(),
		Request{URL: srv.URL, Timeout: 100 * time.Millisecond})
	var ne net.Error
	if err == nil || !(errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())) {
		t.Fatalf("want timeout, got %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v", d)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := map[string]time.Duration{"": 0, "30": 30 * time.Second, "-1": 0, "abc": 0,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second}
	for v, want := range cases {
		h := http.Header{}
		h.Set("Retry-After", v)
		if got := RetryAfter(h, now); got != want {
			t.Errorf("%q: got %v want %v", v, got, want)
		}
	}
}
