package privacyfn_test

import (
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/app"
	"github.com/serverless-cdp/cdp/internal/app/privacyfn"
)

// TestArchiveLag: Firehose's buffer and a margin for S3, a few seconds for the local folder,
// the configured value over both.
func TestArchiveLag(t *testing.T) {
	for _, c := range []struct {
		archive string
		set     time.Duration
		want    time.Duration
	}{
		{"s3://bucket", 0, 20 * time.Minute},
		{"/tmp/archive", 0, privacyfn.LocalArchiveLag},
		{"s3://bucket", 2 * time.Second, 2 * time.Second},
	} {
		cfg := app.Defaults()
		cfg.Archive, cfg.ArchiveLag = c.archive, c.set
		if got := privacyfn.ArchiveLag(cfg); got != c.want {
			t.Errorf("%s, set %v: lag %v, want %v", c.archive, c.set, got, c.want)
		}
	}
	if privacyfn.FirehoseArchiveLag < 15*time.Minute { // infra ArchiveBufferSeconds
		t.Fatal("the lag must exceed Firehose's buffering")
	}
}
