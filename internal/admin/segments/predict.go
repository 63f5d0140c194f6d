package segments

import (
	"context"
	"net/http"

	"github.com/serverless-cdp/cdp/internal/admin"
)

// train queues a training run of a predictive computed trait now: 202 and the run. Asking
// while a run is queued or under way answers that run, so a retried request starts nothing
// twice.
func (a adminAPI) train(ctx context.Context, r *admin.Request) (int, any, error) {
	tr, err := a.svc.Train(ctx, r.Param("id"))
	if err != nil {
		return 0, nil, adminErr(err)
	}
	return http.StatusAccepted, tr, nil
}

// quality answers the published model's backtest and parameters (none before the first
// published run), the latest run and when the schedule retrains next.
func (a adminAPI) quality(ctx context.Context, r *admin.Request) (int, any, error) {
	q, err := a.svc.Quality(ctx, r.Param("id"))
	if err != nil {
		return 0, nil, adminErr(err)
	}
	return http.StatusOK, q, nil
}
