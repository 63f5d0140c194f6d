package console

import (
	"context"
	"time"

	"github.com/serverless-cdp/cdp/internal/monitor"
)

// Monitor is what the Overview and Live events pages read that no API serves (monitor.Reader):
// the tail of the events stream, the per-minute counts of tracking requests and stage lag,
// and the latest rejected requests.
type Monitor interface {
	// Live returns the newest events (perSource of each source; only source's when not empty)
	// and the latest rejections.
	Live(ctx context.Context, source string, perSource int) (monitor.Live, error)
	// Stats returns the per-minute counts and lags from since on and the latest rejections.
	Stats(ctx context.Context, since time.Time) (monitor.Stats, error)
}

var _ Monitor = (*monitor.Reader)(nil)
