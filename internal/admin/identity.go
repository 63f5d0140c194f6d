package admin

import (
	"context"
	"errors"
	"net/http"

	"github.com/serverless-cdp/cdp/internal/identity"
)

// IdentityRulesService is what the identity-rules routes need; *identity.RulesService
// implements it.
type IdentityRulesService interface {
	Get(ctx context.Context) (identity.Rules, error)
	// Put validates and stores a whole rule set; an invalid set is an *identity.ValidationError
	// and stores nothing.
	Put(ctx context.Context, r identity.Rules) error
}

func registerIdentityRules(r *Router, svc IdentityRulesService) {
	h := identityRulesAPI{svc}
	r.Handle(http.MethodGet, Prefix+"/identity-rules", h.get)
	r.Handle(http.MethodPut, Prefix+"/identity-rules", h.put)
}

type identityRulesAPI struct{ svc IdentityRulesService }

func withTypes(r identity.Rules) identity.Rules {
	if r.Types == nil {
		r.Types = []identity.TypeRule{}
	}
	return r
}

func (h identityRulesAPI) get(ctx context.Context, _ *Request) (int, any, error) {
	rules, err := h.svc.Get(ctx)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, withTypes(rules), nil
}

func (h identityRulesAPI) put(ctx context.Context, r *Request) (int, any, error) {
	var in identity.Rules
	if err := r.Decode(&in); err != nil {
		return 0, nil, err
	}
	if err := h.svc.Put(ctx, in); err != nil {
		var ve *identity.ValidationError
		if errors.As(err, &ve) {
			return 0, nil, BadRequest("%s: %s", ve.Field, ve.Message)
		}
		return 0, nil, err
	}
	return http.StatusOK, withTypes(in), nil
}
