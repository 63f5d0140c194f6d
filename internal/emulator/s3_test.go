package emulator

import (
	"net/http"
	"strings"
	"testing"
)

// TestS3ServerServesOnLoopbackUntilStopped: the S3 server answers S3's ListBuckets on
// BindHost only, and stops accepting connections when stopped.
func TestS3ServerServesOnLoopbackUntilStopped(t *testing.T) {
	srv, err := StartS3(0)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(srv.Endpoint, "http://"+BindHost+":") {
		t.Fatalf("endpoint %s is not on %s", srv.Endpoint, BindHost)
	}
	resp, err := http.Get(srv.Endpoint + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Type"), "xml") {
		t.Fatalf("ListBuckets: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	srv.Stop()
	if _, err := http.Get(srv.Endpoint + "/"); err == nil {
		t.Fatal("the server still answers after Stop")
	}
}
