//go:build integration

package privacyfn_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/app"
	"github.com/serverless-cdp/cdp/internal/app/privacyfn"
	"github.com/serverless-cdp/cdp/internal/archive"
	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
	"github.com/serverless-cdp/cdp/internal/privacy"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func archiveLine(t *testing.T, id, user, email string, at time.Time) []byte {
	t.Helper()
	m := tracking.Message{Type: "identify", MessageID: id, UserID: user, ReceivedAt: at, Timestamp: at}
	if email != "" {
		m.Traits = json.RawMessage(`{"email":"` + email + `"}`)
	}
	b, err := json.Marshal(tracking.Record{SourceID: "src_web", Message: m})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func putObject(t *testing.T, st archive.Store, key string, lines ...[]byte) {
	t.Helper()
	body, err := archive.Encode(lines)
	if err == nil {
		err = st.Put(context.Background(), key, body)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// archived returns the text of every line in the archive.
func archived(t *testing.T, st archive.Store) string {
	t.Helper()
	var b strings.Builder
	err := st.List(context.Background(), "", func(key string) error {
		body, err := st.Get(context.Background(), key)
		if err != nil {
			return err
		}
		return archive.Lines(body, func(l []byte) error { b.Write(l); b.WriteByte('\n'); return nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestArchiveFollowUpErasesALateLine: the privacy composition root on DynamoDB Local with a
// folder archive and a lag of 2 s. A delete completes inline, erasing the person's archived
// event; then an event of theirs lands in the archive (as Firehose delivers what was in its
// buffer when the erase ran). The schedule's runs erase it once the lag has passed, add it to
// the request's archive count and mark the follow-up done; other people's lines stay, and the
// stored request names the person nowhere.
func TestArchiveFollowUpErasesALateLine(t *testing.T) {
	for k, v := range map[string]string{"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"} {
		if os.Getenv(k) == "" {
			t.Setenv(k, v)
		}
	}
	ctx := context.Background()
	c := testenv.Clients(t)
	cfg := app.Defaults()
	cfg.Table = testenv.Table(t, c.DynamoDB)
	cfg.Archive, cfg.ArchiveLag = t.TempDir(), 2*time.Second
	if err := cfg.SetPrivacyKey("followup-test-privacy-key-0123456789"); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	st := archive.Folder{Root: cfg.Archive}
	now := time.Now().UTC()
	putObject(t, st, archive.Key("src_web", now, "first"),
		archiveLine(t, "m1", "zed-1", "Zed@Example.com", now), archiveLine(t, "m2", "amy-2", "", now))

	r, err := privacyfn.NewService(c, cfg, logger).Submit(ctx, privacy.Input{Type: privacy.TypeDelete, Identifiers: []string{"user_id:zed-1"}})
	if err != nil || r.Status != privacy.StatusCompleted || r.Results[archive.HolderName][archive.KindEvents] != 1 ||
		len(r.FollowUps) != 1 || r.FollowUps[0].Status != privacy.FollowUpPending {
		t.Fatalf("delete: %+v %v", r, err)
	}
	// Firehose delivers late: an object written after the request completed, holding an
	// event of Zed's.
	putObject(t, st, archive.Key("src_web", now, "late"),
		archiveLine(t, "m3", "zed-1", "", now), archiveLine(t, "m4", "amy-2", "", now))
	if got := archived(t, st); !strings.Contains(got, `"m3"`) {
		t.Fatalf("the late line is not there: %s", got)
	}

	rn := privacyfn.New(c, cfg, logger)
	deadline := time.Now().Add(30 * time.Second)
	for r.FollowUps[0].Status == privacy.FollowUpPending && time.Now().Before(deadline) {
		if err := rn.Run(ctx); err != nil {
			t.Fatal(err)
		}
		if r, err = privacy.NewDynamoStore(c.DynamoDB, cfg.Table).Get(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // poll
	}
	f := r.FollowUps[0]
	if f.Status != privacy.FollowUpDone || f.Erased != 1 || r.Results[archive.HolderName][archive.KindEvents] != 2 || f.DoneAt.Before(f.Due) {
		t.Fatalf("follow-up: %+v", r)
	}
	got := archived(t, st)
	if strings.Contains(got, `"m3"`) || strings.Contains(strings.ToLower(got), "zed") || strings.Count(got, "amy-2") != 2 {
		t.Fatalf("archive after the follow-up:\n%s", got)
	}
	doc, _ := json.Marshal(r)
	if strings.Contains(strings.ToLower(string(doc)), "zed") {
		t.Fatalf("the request names the person: %s", doc)
	}
}
