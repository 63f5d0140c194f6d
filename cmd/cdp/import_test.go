package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestImportUsageErrors(t *testing.T) {
	c := cli{env: map[string]string{}}
	for _, args := range [][]string{
		{"import"},
		{"import", "-f", "x.csv"},
		{"import", "-f", "x.csv", "--map", "type=identify", "--mapping", "m.yaml"},
		{"import", "-f", "x.csv", "--map", "type=identify", "extra"},
		{"import", "-f", "x.csv", "--map", "type=identify", "--format", "xml"},
	} {
		if code, _, errOut := c.run(t, args...); code != 2 || !strings.Contains(errOut, "cdp import") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
}

// cdp import sends the rows with the write key, prints a summary, reports the bad row and, run
// again, sends nothing.
func TestImportCommand(t *testing.T) {
	var mu sync.Mutex
	var got []map[string]any
	requests := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, _, _ := r.BasicAuth()
		if r.URL.Path != "/v1/import" || user != "wk" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		raw, _ := io.ReadAll(r.Body)
		var b struct{ Batch []map[string]any }
		_ = json.Unmarshal(raw, &b)
		mu.Lock()
		got, requests = append(got, b.Batch...), requests+1
		mu.Unlock()
		_, _ = io.WriteString(w, `{"success":true}`)
	}))
	defer srv.Close()
	dir := t.TempDir()
	in := filepath.Join(dir, "customers.csv")
	_ = os.WriteFile(in, []byte("id,email,age\nc1,a@x.io,30\nc2,b@x.io,old\nc3,,41\n"), 0o600)
	c := cli{env: map[string]string{"CDP_WRITE_KEY": "wk", "CDP_TRACKING_URL": srv.URL}}
	args := []string{"import", "-f", in, "--map", "type=identify", "--map", "userId=id", "--map", "email=email", "--map", "traits=age:number", "--no-progress"}
	code, out, errOut := c.run(t, args...)
	if code != 0 || !strings.Contains(out, "3 rows read; 2 imported; 1 bad (by line in "+in+".errors.csv)") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if len(got) != 2 || got[0]["userId"] != "c1" || got[1]["traits"].(map[string]any)["age"] != float64(41) {
		t.Errorf("sent %v", got)
	}
	report, _ := os.ReadFile(in + ".errors.csv")
	if string(report) != "line,column,reason\n3,age,not a number\n" {
		t.Errorf("report %q", report)
	}
	code, out, _ = c.run(t, args...)
	if code != 0 || requests != 1 || !strings.Contains(out, "(3 handled by an earlier run, not sent again)") {
		t.Errorf("rerun: exit %d, %d requests, stdout %q", code, requests, out)
	}
}
