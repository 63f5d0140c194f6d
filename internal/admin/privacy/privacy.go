// Package privacy is the admin API adapter for privacy requests (package privacy): submit a
// delete, suppress, suppress_with_delete, unsuppress or export request, follow it, read an
// export's result (JSON or NDJSON), list the audit log and the suppressions.
package privacy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"

	"github.com/serverless-cdp/cdp/internal/admin"
	"github.com/serverless-cdp/cdp/internal/apitypes"
	"github.com/serverless-cdp/cdp/internal/privacy"
)

// Service is what the routes need; *privacy.Service implements it.
type Service interface {
	Submit(ctx context.Context, in privacy.Input) (privacy.Request, error)
	Get(ctx context.Context, id string) (privacy.Request, []byte, error)
	List(ctx context.Context, limit int, next string) ([]privacy.Request, string, error)
	Suppressions(ctx context.Context) (privacy.SuppressionsView, error)
}

var idRE = regexp.MustCompile(`^pr_[0-9a-z]{21}$`)

// Register adds the privacy routes to the admin router:
//
//	POST /admin/v1/privacy/requests        202 and the request (run inline for a while)
//	GET  /admin/v1/privacy/requests        ?limit=&next= (newest first)
//	GET  /admin/v1/privacy/requests/{id}   ?format=ndjson for an export's items, one per line
//	GET  /admin/v1/privacy/suppressions
func Register(r *admin.Router, svc Service) {
	h := api{svc}
	p := admin.Prefix + "/privacy"
	r.Handle(http.MethodPost, p+"/requests", h.submit)
	r.Handle(http.MethodGet, p+"/requests", h.list)
	r.Handle(http.MethodGet, p+"/requests/{id}", h.get)
	r.Handle(http.MethodGet, p+"/suppressions", h.suppressions)
}

type api struct{ svc Service }

func (h api) submit(ctx context.Context, r *admin.Request) (int, any, error) {
	var in apitypes.PrivacyRequestInput
	if err := r.Decode(&in); err != nil {
		return 0, nil, err
	}
	by := r.Token.ID
	if r.Token.Name != "" {
		by += " (" + r.Token.Name + ")"
	}
	req, err := h.svc.Submit(ctx, privacy.Input{Type: in.Type, Identifiers: in.Identifiers, Reason: in.Reason, RequestedBy: by})
	var v *privacy.ValidationError
	if errors.As(err, &v) {
		return 0, nil, admin.BadRequest("%s", v.Error())
	}
	if err != nil {
		return 0, nil, err
	}
	return http.StatusAccepted, Wire(req), nil
}

func (h api) list(ctx context.Context, r *admin.Request) (int, any, error) {
	limit, next, err := r.Page(idRE.MatchString)
	if err != nil {
		return 0, nil, err
	}
	reqs, cursor, err := h.svc.List(ctx, limit, next)
	if err != nil {
		return 0, nil, err
	}
	out := apitypes.PrivacyRequestList{Requests: make([]apitypes.PrivacyRequest, 0, len(reqs)), Next: cursor}
	for _, q := range reqs {
		out.Requests = append(out.Requests, Wire(q))
	}
	return http.StatusOK, out, nil
}

func (h api) get(ctx context.Context, r *admin.Request) (int, any, error) {
	format := r.Query("format")
	if format != "" && format != "json" && format != "ndjson" {
		return 0, nil, admin.BadRequest("format must be json or ndjson")
	}
	id := r.Param("id")
	if !idRE.MatchString(id) {
		return 0, nil, admin.NotFound("no privacy request %s", id)
	}
	req, doc, err := h.svc.Get(ctx, id)
	if errors.Is(err, privacy.ErrNotFound) {
		return 0, nil, admin.NotFound("no privacy request %s", id)
	}
	if err != nil {
		return 0, nil, err
	}
	if format == "ndjson" {
		if req.Type != privacy.TypeExport || doc == nil {
			return 0, nil, admin.Conflict("request %s has no export result (type %s, status %s)", id, req.Type, req.Status)
		}
		body, err := NDJSON(doc)
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, admin.Raw{ContentType: "application/x-ndjson", Body: body}, nil
	}
	out := Wire(req)
	out.Export = doc
	out.ExportExpired = req.Type == privacy.TypeExport && req.Status == privacy.StatusCompleted && doc == nil
	return http.StatusOK, out, nil
}

func (h api) suppressions(ctx context.Context, _ *admin.Request) (int, any, error) {
	v, err := h.svc.Suppressions(ctx)
	if err != nil {
		return 0, nil, err
	}
	out := apitypes.PrivacySuppressions{Suppressions: make([]apitypes.PrivacySuppression, 0, len(v.Groups)), DroppedBySource: v.DroppedBySource}
	for _, g := range v.Groups {
		out.Suppressions = append(out.Suppressions, apitypes.PrivacySuppression{Group: g.Group, Labels: g.Labels, CreatedAt: g.CreatedAt})
	}
	if out.DroppedBySource == nil {
		out.DroppedBySource = map[string]int64{}
	}
	return http.StatusOK, out, nil
}

// Wire is a request as the admin API shows it (never its hashes or run state).
func Wire(r privacy.Request) apitypes.PrivacyRequest {
	out := apitypes.PrivacyRequest{
		ID: r.ID, Type: r.Type, Status: r.Status, Identifiers: r.Identifiers, Labels: r.Labels, Reason: r.Reason,
		RequestedBy: r.RequestedBy, CreatedAt: r.CreatedAt, Step: r.Step, Results: r.Results, Error: r.Error,
	}
	if out.Labels == nil {
		out.Labels = []string{}
	}
	if out.Results == nil {
		out.Results = map[string]map[string]int{}
	}
	if !r.StartedAt.IsZero() {
		out.StartedAt = &r.StartedAt
	}
	if !r.CompletedAt.IsZero() {
		out.CompletedAt = &r.CompletedAt
	}
	for _, n := range r.Notices {
		out.Notices = append(out.Notices, apitypes.PrivacyNotice{DestinationID: n.DestinationID, Status: n.Status, Error: n.Error})
	}
	for _, f := range r.FollowUps {
		w := apitypes.PrivacyFollowUp{Holder: f.Holder, Status: f.Status, Since: f.Since, Due: f.Due, Erased: f.Erased, Attempts: f.Attempts, Error: f.Error}
		if !f.DoneAt.IsZero() {
			w.DoneAt = &f.DoneAt
		}
		out.FollowUps = append(out.FollowUps, w)
	}
	return out
}

// NDJSON turns an export document into one line per item, {"holder","kind","item"}: first the
// identifiers and profiles (holder "request"), then each holder's kinds, in name order.
func NDJSON(doc []byte) ([]byte, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(doc, &top); err != nil {
		return nil, fmt.Errorf("privacy export decode: %w", err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, kind := range []string{"identifiers", "profiles"} {
		var items []json.RawMessage
		_ = json.Unmarshal(top[kind], &items)
		for _, it := range items {
			if err := enc.Encode(apitypes.PrivacyExportLine{Holder: "request", Kind: kind, Item: it}); err != nil {
				return nil, fmt.Errorf("privacy export encode: %w", err)
			}
		}
	}
	for _, holder := range sortedKeys(top) {
		if holder == "requestId" || holder == "identifiers" || holder == "profiles" {
			continue
		}
		var kinds map[string][]json.RawMessage
		if err := json.Unmarshal(top[holder], &kinds); err != nil {
			return nil, fmt.Errorf("privacy export decode %s: %w", holder, err)
		}
		for _, kind := range sortedKeys(kinds) {
			for _, it := range kinds[kind] {
				if err := enc.Encode(apitypes.PrivacyExportLine{Holder: holder, Kind: kind, Item: it}); err != nil {
					return nil, fmt.Errorf("privacy export encode: %w", err)
				}
			}
		}
	}
	return buf.Bytes(), nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
