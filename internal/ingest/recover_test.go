package ingest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/serverless-cdp/cdp/internal/ingest"
)

type panickingKeys struct{}

func (panickingKeys) ResolveWriteKey(context.Context, string) (ingest.Source, error) {
	panic("bug with key-secret")
}

// TestPanicIs500: a panic while serving is answered 500 {"code":"internal"} (httpapi.Recover),
// not a crashed invocation, and the answer does not carry the panic's text.
func TestPanicIs500(t *testing.T) {
	h := ingest.New(panickingKeys{}, &memPub{}, ingest.Config{})
	resp, err := h.Handle(context.Background(), post("/v1/track", `{"event":"e","userId":"u"}`, "authorization", basic("k:")))
	if err != nil || resp.StatusCode != 500 || !strings.Contains(resp.Body, `"code":"internal"`) || strings.Contains(resp.Body, "secret") {
		t.Fatalf("%d %v %s", resp.StatusCode, err, resp.Body)
	}
}
