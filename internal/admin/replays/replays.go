// Package replays is the admin API adapter for replay jobs (package replay): start a replay of
// archived events into the pipeline or one destination, follow it, list them.
package replays

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"time"

	"github.com/serverless-cdp/cdp/internal/admin"
	"github.com/serverless-cdp/cdp/internal/apitypes"
	"github.com/serverless-cdp/cdp/internal/replay"
)

// Service is what the routes need; *replay.Service implements it.
type Service interface {
	Submit(ctx context.Context, in replay.Input) (replay.Job, error)
	Get(ctx context.Context, id string) (replay.Job, error)
	List(ctx context.Context, limit int, next string) ([]replay.Job, string, error)
}

var idRE = regexp.MustCompile(`^rp_[0-9a-z]{21}$`)

// Register adds the replay routes to the admin router:
//
//	POST /admin/v1/replays        202 and the job (run inline for a while)
//	GET  /admin/v1/replays        ?limit=&next= (newest first)
//	GET  /admin/v1/replays/{id}
func Register(r *admin.Router, svc Service) {
	h := api{svc}
	p := admin.Prefix + "/replays"
	r.Handle(http.MethodPost, p, h.submit)
	r.Handle(http.MethodGet, p, h.list)
	r.Handle(http.MethodGet, p+"/{id}", h.get)
}

type api struct{ svc Service }

func (h api) submit(ctx context.Context, r *admin.Request) (int, any, error) {
	var in apitypes.ReplayInput
	if err := r.Decode(&in); err != nil {
		return 0, nil, err
	}
	from, err := instant("from", in.From)
	if err != nil {
		return 0, nil, err
	}
	to, err := instant("to", in.To)
	if err != nil {
		return 0, nil, err
	}
	by := r.Token.ID
	if r.Token.Name != "" {
		by += " (" + r.Token.Name + ")"
	}
	j, err := h.svc.Submit(ctx, replay.Input{From: from, To: to, Sources: in.Sources, Identifiers: in.Identifiers, Events: in.Events,
		Target: replay.Target{Type: in.Target.Type, DestinationID: in.Target.DestinationID}, RequestedBy: by})
	var v *replay.ValidationError
	if errors.As(err, &v) {
		return 0, nil, admin.BadRequest("%s", v.Error())
	}
	if errors.Is(err, replay.ErrNoArchive) {
		return 0, nil, admin.Conflict("%s", err.Error())
	}
	if err != nil {
		return 0, nil, err
	}
	return http.StatusAccepted, Wire(j), nil
}

// instant parses an RFC 3339 time ("" is the zero time: the service says it is required).
func instant(field, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, admin.BadRequest("%s: must be an RFC 3339 time, e.g. 2026-03-01T00:00:00Z", field)
	}
	return t, nil
}

func (h api) list(ctx context.Context, r *admin.Request) (int, any, error) {
	limit, next, err := r.Page(idRE.MatchString)
	if err != nil {
		return 0, nil, err
	}
	jobs, cursor, err := h.svc.List(ctx, limit, next)
	if err != nil {
		return 0, nil, err
	}
	out := apitypes.ReplayList{Replays: make([]apitypes.Replay, 0, len(jobs)), Next: cursor}
	for _, j := range jobs {
		out.Replays = append(out.Replays, Wire(j))
	}
	return http.StatusOK, out, nil
}

func (h api) get(ctx context.Context, r *admin.Request) (int, any, error) {
	id := r.Param("id")
	if !idRE.MatchString(id) {
		return 0, nil, admin.NotFound("no replay %s", id)
	}
	j, err := h.svc.Get(ctx, id)
	if errors.Is(err, replay.ErrNotFound) {
		return 0, nil, admin.NotFound("no replay %s", id)
	}
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, Wire(j), nil
}

// Wire is a job as the admin API shows it (never its lease).
func Wire(j replay.Job) apitypes.Replay {
	p := j.Progress
	out := apitypes.Replay{
		ID: j.ID, Status: j.Status, From: j.From, To: j.To, Sources: j.Sources, Identifiers: j.Identifiers, Events: j.Events,
		Target:      apitypes.ReplayTarget{Type: j.Target.Type, DestinationID: j.Target.DestinationID},
		RequestedBy: j.RequestedBy, CreatedAt: j.CreatedAt,
		Progress: apitypes.ReplayProgress{ObjectsDone: p.ObjectsDone, SourceHoursDone: p.SourceHoursDone, SourceHours: p.SourceHours,
			Cursor: p.Cursor, Partial: p.Partial, Line: p.Line},
		Counts:   apitypes.ReplayCounts{Read: j.Counts.Read, Matched: j.Counts.Matched, Sent: j.Counts.Sent, Skipped: j.Counts.Skipped},
		BadLines: j.BadLines, Error: j.Error, Attempts: j.Attempts,
	}
	if out.Counts.Skipped == nil {
		out.Counts.Skipped = map[string]int64{}
	}
	if !j.StartedAt.IsZero() {
		out.StartedAt = &j.StartedAt
	}
	if !j.CompletedAt.IsZero() {
		out.CompletedAt = &j.CompletedAt
	}
	return out
}
