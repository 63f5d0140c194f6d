package segments

import (
	"context"
	"net/http"

	"github.com/serverless-cdp/cdp/internal/admin"
	"github.com/serverless-cdp/cdp/internal/httpapi"
	"github.com/serverless-cdp/cdp/internal/segment"
)

// predictions is the training side of the segments service (segment.Service): queue a run of
// a predictive computed trait, and read its model's quality and latest run. Both answer
// segment.ErrNotFound for an unknown trait and a *segment.ValidationError for one that is not
// predictive.
type predictions interface {
	Train(ctx context.Context, id string) (*segment.Training, error)
	Quality(ctx context.Context, id string) (*segment.QualityView, error)
}

// errNoTraining answers when the service cannot train (no predictions wired).
var errNoTraining = &admin.Error{Status: http.StatusNotImplemented, Code: httpapi.CodeInternal,
	Message: "this deployment does not train predictive computed traits"}

// train queues a training run now: 202 and the run (queued, or the one already under way).
// Asking again while a run is queued or running answers that run, so a retried request starts
// nothing twice.
func (a adminAPI) train(ctx context.Context, r *admin.Request) (int, any, error) {
	if a.pred == nil {
		return 0, nil, errNoTraining
	}
	tr, err := a.pred.Train(ctx, r.Param("id"))
	if err != nil {
		return 0, nil, adminErr(err)
	}
	return http.StatusAccepted, tr, nil
}

// quality answers the published model's backtest (none before the first published run) and
// the latest run.
func (a adminAPI) quality(ctx context.Context, r *admin.Request) (int, any, error) {
	if a.pred == nil {
		return 0, nil, errNoTraining
	}
	q, err := a.pred.Quality(ctx, r.Param("id"))
	if err != nil {
		return 0, nil, adminErr(err)
	}
	return http.StatusOK, q, nil
}
