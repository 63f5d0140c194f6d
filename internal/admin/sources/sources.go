// Package sources is the admin API adapter for sources (write keys): it mounts their routes on
// the admin router and calls the sources service (package source).
package sources

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/serverless-cdp/cdp/internal/admin"
	"github.com/serverless-cdp/cdp/internal/apitypes"
	"github.com/serverless-cdp/cdp/internal/source"
)

// Service is what the sources routes need; *source.Repository implements it.
type Service interface {
	Create(ctx context.Context, name string) (source.Source, string, error)
	Get(ctx context.Context, id string) (source.Source, error)
	List(ctx context.Context) ([]source.Source, error)
	SetEnabled(ctx context.Context, id string, enabled bool) (source.Source, error)
	RotateKey(ctx context.Context, id string, grace time.Duration) (source.Source, string, error)
	Delete(ctx context.Context, id string) error
}

// The sources routes' wire types (package apitypes, shared with the cdp CLI).
type (
	SourceWithKey       = apitypes.SourceWithKey
	SourceList          = apitypes.SourceList
	CreateSourceRequest = apitypes.CreateSourceRequest
	RotateKeyRequest    = apitypes.RotateKeyRequest
)

// Register adds the sources routes to the admin router:
//
//	POST   /admin/v1/sources                    create (201) with its write key (shown once)
//	GET    /admin/v1/sources                    list
//	GET    /admin/v1/sources/{id}
//	DELETE /admin/v1/sources/{id}               204
//	POST   /admin/v1/sources/{id}/disable       and /enable
//	POST   /admin/v1/sources/{id}/rotate-key    a new key; the old one works for graceSeconds
func Register(r *admin.Router, svc Service) {
	h := sourcesAPI{svc}
	r.Handle(http.MethodPost, admin.Prefix+"/sources", h.create)
	r.Handle(http.MethodGet, admin.Prefix+"/sources", h.list)
	r.Handle(http.MethodGet, admin.Prefix+"/sources/{id}", h.get)
	r.Handle(http.MethodDelete, admin.Prefix+"/sources/{id}", h.delete)
	r.Handle(http.MethodPost, admin.Prefix+"/sources/{id}/disable", h.setEnabled(false))
	r.Handle(http.MethodPost, admin.Prefix+"/sources/{id}/enable", h.setEnabled(true))
	r.Handle(http.MethodPost, admin.Prefix+"/sources/{id}/rotate-key", h.rotateKey)
}

type sourcesAPI struct{ svc Service }

// sourceError maps the source package's errors to answers.
func sourceError(err error) error {
	switch {
	case errors.Is(err, source.ErrInvalid):
		return admin.BadRequest("%s", err.Error())
	case errors.Is(err, source.ErrNotFound):
		return admin.NotFound("source not found")
	case errors.Is(err, source.ErrNameTaken), errors.Is(err, source.ErrConflict):
		return admin.Conflict("%s", err.Error())
	}
	return err
}

func (h sourcesAPI) create(ctx context.Context, r *admin.Request) (int, any, error) {
	var in CreateSourceRequest
	if err := r.Decode(&in); err != nil {
		return 0, nil, err
	}
	if err := source.ValidateName(in.Name); err != nil {
		return 0, nil, sourceError(err)
	}
	s, key, err := h.svc.Create(ctx, in.Name)
	if err != nil {
		return 0, nil, sourceError(err)
	}
	return http.StatusCreated, SourceWithKey{Source: s, WriteKey: key}, nil
}

func (h sourcesAPI) list(ctx context.Context, r *admin.Request) (int, any, error) {
	all, err := h.svc.List(ctx)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, SourceList{Sources: all}, nil
}

func (h sourcesAPI) get(ctx context.Context, r *admin.Request) (int, any, error) {
	s, err := h.svc.Get(ctx, r.Param("id"))
	if err != nil {
		return 0, nil, sourceError(err)
	}
	return http.StatusOK, s, nil
}

func (h sourcesAPI) delete(ctx context.Context, r *admin.Request) (int, any, error) {
	if err := h.svc.Delete(ctx, r.Param("id")); err != nil {
		return 0, nil, sourceError(err)
	}
	return http.StatusNoContent, nil, nil
}

func (h sourcesAPI) setEnabled(enabled bool) admin.HandlerFunc {
	return func(ctx context.Context, r *admin.Request) (int, any, error) {
		var in struct{}
		if err := r.DecodeOptional(&in); err != nil {
			return 0, nil, err
		}
		s, err := h.svc.SetEnabled(ctx, r.Param("id"), enabled)
		if err != nil {
			return 0, nil, sourceError(err)
		}
		return http.StatusOK, s, nil
	}
}

func (h sourcesAPI) rotateKey(ctx context.Context, r *admin.Request) (int, any, error) {
	var in RotateKeyRequest
	if err := r.DecodeOptional(&in); err != nil {
		return 0, nil, err
	}
	maxSeconds := int64(source.MaxGracePeriod / time.Second)
	if in.GraceSeconds < 0 || in.GraceSeconds > maxSeconds {
		return 0, nil, admin.BadRequest("graceSeconds must be between 0 and %d", maxSeconds)
	}
	s, key, err := h.svc.RotateKey(ctx, r.Param("id"), time.Duration(in.GraceSeconds)*time.Second)
	if err != nil {
		return 0, nil, sourceError(err)
	}
	return http.StatusOK, SourceWithKey{Source: s, WriteKey: key}, nil
}
