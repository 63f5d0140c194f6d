// Package deadletters is the admin API adapter for the pipeline stages' dead letters: it mounts
// their routes on the admin router and calls the shared dead-letter service (package deadletter).
package deadletters

import (
	"context"
	"errors"
	"net/http"
	"regexp"

	"github.com/serverless-cdp/cdp/internal/admin"
	"github.com/serverless-cdp/cdp/internal/deadletter"
)

// Service is what the pipeline dead-letter routes need; *deadletter.Service
// implements it.
type Service interface {
	List(ctx context.Context, stage string, limit int, next string) ([]deadletter.Entry, string, error)
	Get(ctx context.Context, stage, id string) (deadletter.Entry, error)
	Delete(ctx context.Context, stage, id string) error
	// Replay runs one entry through its stage again and removes it on success; on failure the
	// entry stays with the error recorded.
	Replay(ctx context.Context, stage, id string) error
	// ReplayAll replays entries once each, starting after the entry id next, until done or
	// the context's deadline is near, and says how far it got.
	ReplayAll(ctx context.Context, stage, next string) (deadletter.ReplayAllResult, error)
}

// Page answers GET /admin/v1/dead-letters/{stage}.
type Page struct {
	DeadLetters []deadletter.Entry `json:"deadLetters"`
	Next        string             `json:"next"`
}

// ReplayAllRequest is the optional body of POST /admin/v1/dead-letters/{stage}/replay: Next
// continues a sweep that ran out of time (the `next` of its answer).
type ReplayAllRequest struct {
	Next string `json:"next"`
}

var (
	stageRE   = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)
	entryIDRE = regexp.MustCompile(`^[0-9a-f]{1,64}$`)
)

// Register adds the dead-letter routes to the admin router:
//
//	GET    /admin/v1/dead-letters/{stage}               ?limit=&next= (paged)
//	POST   /admin/v1/dead-letters/{stage}/replay        replay all, within the function's time
//	GET    /admin/v1/dead-letters/{stage}/{id}
//	DELETE /admin/v1/dead-letters/{stage}/{id}          204
//	POST   /admin/v1/dead-letters/{stage}/{id}/replay   replay one; kept with the error on failure
func Register(r *admin.Router, svc Service) {
	h := deadLettersAPI{svc}
	p := admin.Prefix + "/dead-letters/{stage}"
	r.Handle(http.MethodGet, p, h.list)
	r.Handle(http.MethodPost, p+"/replay", h.replayAll)
	r.Handle(http.MethodGet, p+"/{id}", h.get)
	r.Handle(http.MethodDelete, p+"/{id}", h.delete)
	r.Handle(http.MethodPost, p+"/{id}/replay", h.replay)
}

type deadLettersAPI struct{ svc Service }

func stageOf(r *admin.Request) (string, error) {
	s := r.Param("stage")
	if !stageRE.MatchString(s) {
		return "", admin.BadRequest("stage %q is not a stage name (e.g. identity)", s)
	}
	return s, nil
}

// entry checks the stage and finds the entry: 404 when there is none.
func (h deadLettersAPI) entry(ctx context.Context, r *admin.Request) (deadletter.Entry, error) {
	stage, err := stageOf(r)
	if err != nil {
		return deadletter.Entry{}, err
	}
	id := r.Param("id")
	if !entryIDRE.MatchString(id) {
		return deadletter.Entry{}, admin.NotFound("no dead letter %s in stage %s", id, stage)
	}
	e, err := h.svc.Get(ctx, stage, id)
	if errors.Is(err, deadletter.ErrNotFound) {
		return e, admin.NotFound("no dead letter %s in stage %s", id, stage)
	}
	return e, err
}

func noReplayer(stage string) error {
	return admin.Conflict("stage %s cannot replay dead letters (no replayer is registered); list or delete them instead", stage)
}

func (h deadLettersAPI) list(ctx context.Context, r *admin.Request) (int, any, error) {
	stage, err := stageOf(r)
	if err != nil {
		return 0, nil, err
	}
	limit, err := r.Limit()
	if err != nil {
		return 0, nil, err
	}
	next := r.Query("next")
	if next != "" && !entryIDRE.MatchString(next) {
		return 0, nil, admin.BadRequest("invalid next token")
	}
	es, cursor, err := h.svc.List(ctx, stage, limit, next)
	if err != nil {
		return 0, nil, err
	}
	if es == nil {
		es = []deadletter.Entry{}
	}
	return http.StatusOK, Page{DeadLetters: es, Next: cursor}, nil
}

func (h deadLettersAPI) get(ctx context.Context, r *admin.Request) (int, any, error) {
	e, err := h.entry(ctx, r)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, e, nil
}

func (h deadLettersAPI) delete(ctx context.Context, r *admin.Request) (int, any, error) {
	e, err := h.entry(ctx, r)
	if err != nil {
		return 0, nil, err
	}
	if err := h.svc.Delete(ctx, e.Stage, e.ID); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

func (h deadLettersAPI) replay(ctx context.Context, r *admin.Request) (int, any, error) {
	if err := r.DecodeOptional(&struct{}{}); err != nil {
		return 0, nil, err
	}
	e, err := h.entry(ctx, r)
	if err != nil {
		return 0, nil, err
	}
	switch err := h.svc.Replay(ctx, e.Stage, e.ID); {
	case err == nil:
		return http.StatusOK, map[string]int{"replayed": 1}, nil
	case errors.Is(err, deadletter.ErrNotFound):
		return 0, nil, admin.NotFound("no dead letter %s in stage %s", e.ID, e.Stage)
	case errors.Is(err, deadletter.ErrNoReplayer):
		return 0, nil, noReplayer(e.Stage)
	default:
		return 0, nil, admin.Conflict("replay failed; the dead letter is kept with the error: %v", err)
	}
}

// replayAll runs inside the API function's time limit: the service stops before the deadline
// and the answer is 200 either way, with `remaining` and a `next` to continue from.
func (h deadLettersAPI) replayAll(ctx context.Context, r *admin.Request) (int, any, error) {
	var body ReplayAllRequest
	if err := r.DecodeOptional(&body); err != nil {
		return 0, nil, err
	}
	stage, err := stageOf(r)
	if err != nil {
		return 0, nil, err
	}
	next := body.Next
	if q := r.Query("next"); q != "" {
		next = q
	}
	if next != "" && !entryIDRE.MatchString(next) {
		return 0, nil, admin.BadRequest("invalid next token")
	}
	res, err := h.svc.ReplayAll(ctx, stage, next)
	if errors.Is(err, deadletter.ErrNoReplayer) {
		return 0, nil, noReplayer(stage)
	}
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, res, nil
}
