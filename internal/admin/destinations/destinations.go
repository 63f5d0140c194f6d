// Package destinations is the admin API adapter for destinations and their deliveries: it
// mounts their routes on the admin router and calls the destination service and the
// activation stage's delivery log, dead letters and redrive.
package destinations

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/serverless-cdp/cdp/internal/activation"
	"github.com/serverless-cdp/cdp/internal/admin"
	"github.com/serverless-cdp/cdp/internal/destination"
)

// DestinationService is what the destination routes need; *destination.Service implements it.
type DestinationService interface {
	Create(ctx context.Context, spec destination.Spec) (destination.Destination, string, error)
	Get(ctx context.Context, id string) (destination.Destination, error)
	List(ctx context.Context) ([]destination.Destination, error)
	Update(ctx context.Context, id string, spec destination.Spec) (destination.Destination, error)
	SetEnabled(ctx context.Context, id string, enabled bool, reason string) (destination.Destination, error)
	RotateSecret(ctx context.Context, id string, grace time.Duration) (destination.Destination, string, error)
	Delete(ctx context.Context, id string) error
}

// DestinationWithSecret answers create and rotate-secret: the secret is shown this once.
type DestinationWithSecret struct {
	Destination destination.Destination `json:"destination"`
	Secret      string                  `json:"secret"`
}

// DestinationWithStats answers GET /admin/v1/destinations/{id}.
type DestinationWithStats struct {
	Destination destination.Destination `json:"destination"`
	Stats       activation.Stats        `json:"stats"`
}

// RotateSecretRequest is the optional body of POST …/rotate-secret.
type RotateSecretRequest struct {
	// GraceSeconds keeps the previous secret signing this long (0: 24 h; negative: stop at once).
	GraceSeconds int64 `json:"graceSeconds"`
}

// RedriveRequest is the optional body of POST …/dead-letters/redrive (empty: all).
type RedriveRequest struct {
	RecordIDs []string `json:"recordIds"`
}

// Register adds the destination routes under /admin/v1/destinations:
//
//	POST   /destinations                                   create (201, secret shown once)
//	GET    /destinations                                   list
//	GET    /destinations/{id}                              show, with counters
//	PUT    /destinations/{id}                              replace the definition
//	DELETE /destinations/{id}                              delete (204)
//	POST   /destinations/{id}/enable | /disable            enable, disable
//	POST   /destinations/{id}/rotate-secret                new secret; old one signs during grace
//	GET    /destinations/{id}/deliveries[?limit&next]      delivery log, newest first
//	GET    /destinations/{id}/deliveries/{recordId}        one delivery
//	GET    /destinations/{id}/dead-letters[?limit&next]    dead letters
//	GET    /destinations/{id}/dead-letters/{recordId}      one dead letter with its payload
//	POST   /destinations/{id}/dead-letters/redrive         redrive all or {"recordIds":[…]}
//	POST   /destinations/{id}/dead-letters/{recordId}/redrive  redrive one
func Register(r *admin.Router, dests DestinationService, d *activation.Deliverer) {
	h := adminAPI{dests: dests, d: d}
	p := admin.Prefix + "/destinations"
	r.Handle(http.MethodPost, p, h.create)
	r.Handle(http.MethodGet, p, h.list)
	r.Handle(http.MethodGet, p+"/{id}", h.get)
	r.Handle(http.MethodPut, p+"/{id}", h.update)
	r.Handle(http.MethodDelete, p+"/{id}", h.delete)
	r.Handle(http.MethodPost, p+"/{id}/enable", h.setEnabled(true))
	r.Handle(http.MethodPost, p+"/{id}/disable", h.setEnabled(false))
	r.Handle(http.MethodPost, p+"/{id}/rotate-secret", h.rotate)
	r.Handle(http.MethodGet, p+"/{id}/deliveries", h.deliveries)
	r.Handle(http.MethodGet, p+"/{id}/deliveries/{recordId}", h.delivery)
	r.Handle(http.MethodGet, p+"/{id}/dead-letters", h.deadLetters)
	r.Handle(http.MethodGet, p+"/{id}/dead-letters/{recordId}", h.deadLetter)
	r.Handle(http.MethodPost, p+"/{id}/dead-letters/redrive", h.redriveAll)
	r.Handle(http.MethodPost, p+"/{id}/dead-letters/{recordId}/redrive", h.redriveOne)
}

type adminAPI struct {
	dests DestinationService
	d     *activation.Deliverer
}

func adminError(err error) error {
	var ve *destination.ValidationError
	switch {
	case errors.As(err, &ve):
		return admin.BadRequest("%s", ve.Msg)
	case errors.Is(err, destination.ErrNotFound):
		return admin.NotFound("destination not found")
	case errors.Is(err, activation.ErrNotFound):
		return admin.NotFound("not found")
	case errors.Is(err, destination.ErrConflict), errors.Is(err, activation.ErrNotDead):
		return admin.Conflict("%s", err.Error())
	case errors.Is(err, activation.ErrBadPage):
		return admin.BadRequest("invalid next token")
	}
	return err
}

func (h adminAPI) create(ctx context.Context, r *admin.Request) (int, any, error) {
	var spec destination.Spec
	if err := r.Decode(&spec); err != nil {
		return 0, nil, err
	}
	d, secret, err := h.dests.Create(ctx, spec)
	if err != nil {
		return 0, nil, adminError(err)
	}
	return http.StatusCreated, DestinationWithSecret{d, secret}, nil
}

func (h adminAPI) list(ctx context.Context, _ *admin.Request) (int, any, error) {
	ds, err := h.dests.List(ctx)
	if err != nil {
		return 0, nil, err
	}
	if ds == nil {
		ds = []destination.Destination{}
	}
	return http.StatusOK, map[string]any{"destinations": ds}, nil
}

func (h adminAPI) get(ctx context.Context, r *admin.Request) (int, any, error) {
	d, err := h.dests.Get(ctx, r.Param("id"))
	if err != nil {
		return 0, nil, adminError(err)
	}
	st, err := h.d.Stats(ctx, d.ID)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, DestinationWithStats{d, st}, nil
}

func (h adminAPI) update(ctx context.Context, r *admin.Request) (int, any, error) {
	var spec destination.Spec
	if err := r.Decode(&spec); err != nil {
		return 0, nil, err
	}
	if spec.Secret != "" {
		return 0, nil, admin.BadRequest("secret cannot be updated; use rotate-secret")
	}
	d, err := h.dests.Update(ctx, r.Param("id"), spec)
	if err != nil {
		return 0, nil, adminError(err)
	}
	return http.StatusOK, d, nil
}

func (h adminAPI) delete(ctx context.Context, r *admin.Request) (int, any, error) {
	if err := h.dests.Delete(ctx, r.Param("id")); err != nil {
		return 0, nil, adminError(err)
	}
	return http.StatusNoContent, nil, nil
}

func (h adminAPI) setEnabled(enabled bool) admin.HandlerFunc {
	return func(ctx context.Context, r *admin.Request) (int, any, error) {
		reason := ""
		if !enabled {
			reason = "disabled by an operator"
		}
		d, err := h.dests.SetEnabled(ctx, r.Param("id"), enabled, reason)
		if err != nil {
			return 0, nil, adminError(err)
		}
		return http.StatusOK, d, nil
	}
}

func (h adminAPI) rotate(ctx context.Context, r *admin.Request) (int, any, error) {
	var in RotateSecretRequest
	if err := r.DecodeOptional(&in); err != nil {
		return 0, nil, err
	}
	d, secret, err := h.dests.RotateSecret(ctx, r.Param("id"), time.Duration(in.GraceSeconds)*time.Second)
	if err != nil {
		return 0, nil, adminError(err)
	}
	return http.StatusOK, DestinationWithSecret{d, secret}, nil
}

func (h adminAPI) exists(ctx context.Context, id string) error {
	_, err := h.dests.Get(ctx, id)
	return adminError(err)
}

func (h adminAPI) deliveries(ctx context.Context, r *admin.Request) (int, any, error) {
	limit, err := r.Limit()
	if err != nil {
		return 0, nil, err
	}
	if err := h.exists(ctx, r.Param("id")); err != nil {
		return 0, nil, err
	}
	ds, next, err := h.d.Deliveries(ctx, r.Param("id"), limit, r.Query("next"))
	if err != nil {
		return 0, nil, adminError(err)
	}
	return http.StatusOK, map[string]any{"deliveries": ds, "next": next}, nil
}

func (h adminAPI) delivery(ctx context.Context, r *admin.Request) (int, any, error) {
	d, err := h.d.Delivery(ctx, r.Param("id"), r.Param("recordId"))
	if err != nil {
		return 0, nil, adminError(err)
	}
	return http.StatusOK, d, nil
}

func (h adminAPI) deadLetters(ctx context.Context, r *admin.Request) (int, any, error) {
	limit, err := r.Limit()
	if err != nil {
		return 0, nil, err
	}
	id := r.Param("id")
	if id != activation.UndecodableDestination {
		if err := h.exists(ctx, id); err != nil {
			return 0, nil, err
		}
	}
	dls, next, err := h.d.DeadLetters(ctx, id, limit, r.Query("next"))
	if err != nil {
		return 0, nil, adminError(err)
	}
	return http.StatusOK, map[string]any{"deadLetters": dls, "next": next}, nil
}

func (h adminAPI) deadLetter(ctx context.Context, r *admin.Request) (int, any, error) {
	dl, err := h.d.DeadLetter(ctx, r.Param("id"), r.Param("recordId"))
	if err != nil {
		return 0, nil, adminError(err)
	}
	return http.StatusOK, dl, nil
}

func (h adminAPI) redriveAll(ctx context.Context, r *admin.Request) (int, any, error) {
	var in RedriveRequest
	if err := r.DecodeOptional(&in); err != nil {
		return 0, nil, err
	}
	if err := h.exists(ctx, r.Param("id")); err != nil {
		return 0, nil, err
	}
	n, err := h.d.Redrive(ctx, r.Param("id"), in.RecordIDs...)
	if err != nil {
		return 0, nil, adminError(err)
	}
	return http.StatusAccepted, map[string]int{"redriven": n}, nil
}

func (h adminAPI) redriveOne(ctx context.Context, r *admin.Request) (int, any, error) {
	if err := h.exists(ctx, r.Param("id")); err != nil {
		return 0, nil, err
	}
	n, err := h.d.Redrive(ctx, r.Param("id"), r.Param("recordId"))
	if err != nil {
		return 0, nil, adminError(err)
	}
	return http.StatusAccepted, map[string]int{"redriven": n}, nil
}
