// Package segments is the admin API adapter for computed traits and audiences: it mounts their
// routes on the admin router and calls the segments service (package segment).
package segments

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/serverless-cdp/cdp/internal/admin"
	"github.com/serverless-cdp/cdp/internal/segment"
)

// Register adds the computed-trait and audience routes to the admin router:
//
//	POST   /admin/v1/computed-traits            create (201), starts a backfill
//	GET    /admin/v1/computed-traits            list with status (computing|live) and progress
//	GET    /admin/v1/computed-traits/{id}
//	PUT    /admin/v1/computed-traits/{id}       replace (new version), restarts the backfill
//	DELETE /admin/v1/computed-traits/{id}       204; 400 while an audience uses it
//	POST   /admin/v1/computed-traits/{id}/train 202 and the queued Training (predictive kinds)
//	GET    /admin/v1/computed-traits/{id}/quality  the published model's quality and the latest run
//	POST   /admin/v1/audiences                  create (201), starts a backfill
//	GET    /admin/v1/audiences                  list with size, status and progress
//	GET    /admin/v1/audiences/{id}
//	PUT    /admin/v1/audiences/{id}
//	DELETE /admin/v1/audiences/{id}
//	GET    /admin/v1/audiences/{id}/members     ?limit=&next= (paged)
//	POST   /admin/v1/audiences/preview          draft audience → {matched, scanned, complete, sample}; ?limit=
//	GET    /admin/v1/profiles/{id}/segments     a profile's audiences and computed traits
//
// Bad definitions answer 400 {code, message} with the offending field in the message; train
// and quality answer 404 for an unknown trait and 400 for one that is not predictive.
func Register(r *admin.Router, svc *segment.Service) {
	a := adminAPI{svc}
	ct, au := admin.Prefix+"/computed-traits", admin.Prefix+"/audiences"
	r.Handle(http.MethodPost, ct, a.saveTrait(false))
	r.Handle(http.MethodGet, ct, a.listTraits)
	r.Handle(http.MethodGet, ct+"/{id}", a.getTrait)
	r.Handle(http.MethodPut, ct+"/{id}", a.saveTrait(true))
	r.Handle(http.MethodDelete, ct+"/{id}", a.deleteTrait)
	r.Handle(http.MethodPost, ct+"/{id}/train", a.train)
	r.Handle(http.MethodGet, ct+"/{id}/quality", a.quality)
	r.Handle(http.MethodPost, au, a.saveAudience(false))
	r.Handle(http.MethodGet, au, a.listAudiences)
	r.Handle(http.MethodGet, au+"/{id}", a.getAudience)
	r.Handle(http.MethodPut, au+"/{id}", a.saveAudience(true))
	r.Handle(http.MethodDelete, au+"/{id}", a.deleteAudience)
	r.Handle(http.MethodGet, au+"/{id}/members", a.members)
	r.Handle(http.MethodPost, au+"/preview", a.preview)
	r.Handle(http.MethodGet, admin.Prefix+"/profiles/{id}/segments", a.profile)
}

type adminAPI struct{ svc *segment.Service }

func adminErr(err error) error {
	var ve *segment.ValidationError
	switch {
	case errors.As(err, &ve):
		return admin.BadRequest("%s", ve.Error())
	case errors.Is(err, segment.ErrNotFound):
		return admin.NotFound("%s", err.Error())
	case errors.Is(err, segment.ErrConflict):
		return admin.Conflict("the definition was changed concurrently; read it again and retry")
	}
	return err
}

func (a adminAPI) saveTrait(replace bool) admin.HandlerFunc {
	return func(ctx context.Context, r *admin.Request) (int, any, error) {
		var t segment.ComputedTrait
		if err := r.Decode(&t); err != nil {
			return 0, nil, err
		}
		t.ID = ""
		status := http.StatusCreated
		if replace {
			t.ID, status = r.Param("id"), http.StatusOK
		}
		v, err := a.svc.SaveTrait(ctx, t)
		if err != nil {
			return 0, nil, adminErr(err)
		}
		return status, v, nil
	}
}

func (a adminAPI) saveAudience(replace bool) admin.HandlerFunc {
	return func(ctx context.Context, r *admin.Request) (int, any, error) {
		var au segment.Audience
		if err := r.Decode(&au); err != nil {
			return 0, nil, err
		}
		au.ID = ""
		status := http.StatusCreated
		if replace {
			au.ID, status = r.Param("id"), http.StatusOK
		}
		v, err := a.svc.SaveAudience(ctx, au)
		if err != nil {
			return 0, nil, adminErr(err)
		}
		return status, v, nil
	}
}

func (a adminAPI) listTraits(ctx context.Context, _ *admin.Request) (int, any, error) {
	l, err := a.svc.Traits(ctx)
	if err != nil {
		return 0, nil, adminErr(err)
	}
	return http.StatusOK, map[string]any{"computedTraits": l}, nil
}

func (a adminAPI) getTrait(ctx context.Context, r *admin.Request) (int, any, error) {
	v, err := a.svc.Trait(ctx, r.Param("id"))
	if err != nil {
		return 0, nil, adminErr(err)
	}
	return http.StatusOK, v, nil
}

func (a adminAPI) deleteTrait(ctx context.Context, r *admin.Request) (int, any, error) {
	if err := a.svc.DeleteTrait(ctx, r.Param("id")); err != nil {
		return 0, nil, adminErr(err)
	}
	return http.StatusNoContent, nil, nil
}

func (a adminAPI) listAudiences(ctx context.Context, _ *admin.Request) (int, any, error) {
	l, err := a.svc.Audiences(ctx)
	if err != nil {
		return 0, nil, adminErr(err)
	}
	return http.StatusOK, map[string]any{"audiences": l}, nil
}

func (a adminAPI) getAudience(ctx context.Context, r *admin.Request) (int, any, error) {
	v, err := a.svc.Audience(ctx, r.Param("id"))
	if err != nil {
		return 0, nil, adminErr(err)
	}
	return http.StatusOK, v, nil
}

func (a adminAPI) deleteAudience(ctx context.Context, r *admin.Request) (int, any, error) {
	if err := a.svc.DeleteAudience(ctx, r.Param("id")); err != nil {
		return 0, nil, adminErr(err)
	}
	return http.StatusNoContent, nil, nil
}

func limitParam(r *admin.Request) (int, error) {
	s := r.Query("limit")
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, admin.BadRequest("limit must be a positive whole number")
	}
	return n, nil
}

func (a adminAPI) members(ctx context.Context, r *admin.Request) (int, any, error) {
	limit, err := limitParam(r)
	if err != nil {
		return 0, nil, err
	}
	if _, err := a.svc.Audience(ctx, r.Param("id")); err != nil {
		return 0, nil, adminErr(err)
	}
	ms, next, err := a.svc.Members(ctx, r.Param("id"), limit, r.Query("next"))
	if err != nil {
		return 0, nil, adminErr(err)
	}
	return http.StatusOK, map[string]any{"members": ms, "next": next}, nil
}

func (a adminAPI) preview(ctx context.Context, r *admin.Request) (int, any, error) {
	limit, err := limitParam(r)
	if err != nil {
		return 0, nil, err
	}
	var au segment.Audience
	if err := r.Decode(&au); err != nil {
		return 0, nil, err
	}
	if au.Name == "" {
		au.Name = "preview"
	}
	res, err := a.svc.Preview(ctx, au, limit)
	if err != nil {
		return 0, nil, adminErr(err)
	}
	return http.StatusOK, res, nil
}

func (a adminAPI) profile(ctx context.Context, r *admin.Request) (int, any, error) {
	v, err := a.svc.Profile(ctx, r.Param("id"))
	if err != nil {
		return 0, nil, adminErr(err)
	}
	return http.StatusOK, v, nil
}
