package httpapi_test

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/serverless-cdp/cdp/internal/httpapi"
)

// TestParseAuthorization: the one Authorization parser, as each API reads it.
func TestParseAuthorization(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for h, want := range map[string]httpapi.Credentials{
		"":                        {},
		"Basic " + b64("key:"):    {Scheme: "basic", Present: true, User: "key"},
		"basic " + b64(":tok"):    {Scheme: "basic", Present: true, Password: "tok"},
		"Basic " + b64("k:a:b"):   {Scheme: "basic", Present: true, User: "k", Password: "a:b"},
		"Basic !!!":               {Scheme: "basic", Present: true, Malformed: true},
		"Basic":                   {Scheme: "basic"},
		"Bearer  abc ":            {Scheme: "bearer", Present: true, Token: "abc"},
		"Digest x":                {Scheme: "digest", Present: true},
		"  Bearer " + b64("key:"): {Scheme: "bearer", Present: true, Token: b64("key:")},
	} {
		if got := httpapi.ParseAuthorization(h); got != want {
			t.Errorf("%q: got %+v, want %+v", h, got, want)
		}
	}
}

// TestRecover: a panicking handler is answered 500 {"code":"internal"} and no error.
func TestRecover(t *testing.T) {
	h := httpapi.Recover(nil, func(context.Context, httpapi.Request) (httpapi.Response, error) { panic("boom secret") })
	resp, err := h(context.Background(), withAuth(""))
	if err != nil || resp.StatusCode != 500 || resp.Body != `{"code":"internal","message":"internal error"}` || strings.Contains(resp.Body, "secret") {
		t.Fatalf("%d %v %s", resp.StatusCode, err, resp.Body)
	}
}
