// Package identityrules is the admin API adapter for the identity rule set: it mounts its routes
// on the admin router and calls the rules service (package identity).
package identityrules

import (
	"context"
	"errors"
	"net/http"

	"github.com/serverless-cdp/cdp/internal/admin"
	"github.com/serverless-cdp/cdp/internal/idrules"
)

// Service is what the identity-rules routes need; *identity.RulesService
// implements it.
type Service interface {
	Get(ctx context.Context) (idrules.Rules, error)
	// Put validates and stores a whole rule set; an invalid set is an *idrules.ValidationError
	// and stores nothing.
	Put(ctx context.Context, r idrules.Rules) error
}

// Register adds the identity-rules routes to the admin router:
//
//	GET /admin/v1/identity-rules    the rule set in force
//	PUT /admin/v1/identity-rules    replace the whole set; an invalid set is a 400 naming the field
func Register(r *admin.Router, svc Service) {
	h := identityRulesAPI{svc}
	r.Handle(http.MethodGet, admin.Prefix+"/identity-rules", h.get)
	r.Handle(http.MethodPut, admin.Prefix+"/identity-rules", h.put)
}

type identityRulesAPI struct{ svc Service }

func withTypes(r idrules.Rules) idrules.Rules {
	if r.Types == nil {
		r.Types = []idrules.TypeRule{}
	}
	return r
}

func (h identityRulesAPI) get(ctx context.Context, _ *admin.Request) (int, any, error) {
	rules, err := h.svc.Get(ctx)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, withTypes(rules), nil
}

func (h identityRulesAPI) put(ctx context.Context, r *admin.Request) (int, any, error) {
	var in idrules.Rules
	if err := r.Decode(&in); err != nil {
		return 0, nil, err
	}
	if err := h.svc.Put(ctx, in); err != nil {
		var ve *idrules.ValidationError
		if errors.As(err, &ve) {
			return 0, nil, admin.BadRequest("%s: %s", ve.Field, ve.Message)
		}
		return 0, nil, err
	}
	return http.StatusOK, withTypes(in), nil
}
