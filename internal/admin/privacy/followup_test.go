package privacy_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	adminprivacy "github.com/serverless-cdp/cdp/internal/admin/privacy"
	"github.com/serverless-cdp/cdp/internal/privacy"
)

// TestWireShowsFollowUps: the request document shows each follow-up erase (done ones with
// their time), never the hashes it matches by.
func TestWireShowsFollowUps(t *testing.T) {
	due := time.Date(2026, 11, 30, 10, 20, 0, 0, time.UTC)
	r := privacy.Request{ID: "pr_1", Status: privacy.StatusCompleted, Hashes: []string{"secret-hash"}, FollowUps: []privacy.FollowUp{
		{Holder: "archive", Since: due.Add(-100 * time.Minute), Due: due, Status: privacy.FollowUpPending},
		{Holder: "other", Since: due, Due: due, Status: privacy.FollowUpDone, DoneAt: due.Add(time.Minute), Erased: 3},
	}}
	w := adminprivacy.Wire(r)
	b, _ := json.Marshal(w)
	s := string(b)
	if len(w.FollowUps) != 2 || w.FollowUps[0].DoneAt != nil || w.FollowUps[1].DoneAt == nil || w.FollowUps[1].Erased != 3 ||
		!strings.Contains(s, `"followUps":[{"holder":"archive","status":"pending","since":"2026-11-30T08:40:00Z","due":"2026-11-30T10:20:00Z","erased":0}`) ||
		strings.Contains(s, "secret-hash") {
		t.Fatalf("wire: %s", s)
	}
}
