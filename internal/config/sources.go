package config

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/serverless-cdp/cdp/internal/apitypes"
)

// Source declares a source. Its write keys are never in the file: a created source's key is
// printed once by apply.
type Source struct {
	Name    string `json:"name"`
	Enabled *bool  `json:"enabled,omitempty"` // default true
}

func (s Source) enabled() bool { return s.Enabled == nil || *s.Enabled }

func validateSources(f *File) []error {
	var errs []error
	seen := map[string]int{}
	for i, s := range f.Sources {
		path := fmt.Sprintf("sources[%d]", i)
		if err := apitypes.ValidateSourceName(s.Name); err != nil {
			errs = append(errs, f.errorf(path+".name", "%v", err))
			continue
		}
		if j, dup := seen[s.Name]; dup {
			errs = append(errs, f.errorf(path+".name", "name %q is already declared by sources[%d]", s.Name, j))
			continue
		}
		seen[s.Name] = i
	}
	return errs
}

func planSources(pc planContext, f *File) ([]Change, error) {
	if f.Sources == nil { // not declared: left alone, even with --prune
		return nil, nil
	}
	current, err := pc.client.ListSources(pc.ctx)
	if err != nil {
		return nil, err
	}
	byName := map[string]apitypes.Source{}
	for _, s := range current {
		byName[s.Name] = s
	}
	c := pc.client
	var changes []Change
	for _, want := range f.Sources {
		have, ok := byName[want.Name]
		if !ok {
			changes = append(changes, Change{Op: Create, Kind: "source", Name: want.Name,
				apply: func(ctx context.Context) ([]string, error) {
					created, err := c.CreateSource(ctx, want.Name)
					if err != nil {
						return nil, err
					}
					notes := []string{"write key: " + created.WriteKey + "  (shown once: store it now)"}
					if !want.enabled() {
						if _, err := c.SetSourceEnabled(ctx, created.Source.ID, false); err != nil {
							return notes, fmt.Errorf("created %s but could not disable it: %w", created.Source.ID, err)
						}
					}
					return notes, nil
				}})
			continue
		}
		if have.Enabled != want.enabled() {
			id, enabled := have.ID, want.enabled()
			changes = append(changes, Change{Op: Update, Kind: "source", Name: want.Name,
				Details: []string{fmt.Sprintf("enabled %t -> %t", have.Enabled, enabled)},
				apply: func(ctx context.Context) ([]string, error) {
					_, err := c.SetSourceEnabled(ctx, id, enabled)
					return nil, err
				}})
		}
	}
	if pc.prune {
		declared := map[string]bool{}
		for _, s := range f.Sources {
			declared[s.Name] = true
		}
		for _, have := range current {
			if declared[have.Name] {
				continue
			}
			id := have.ID
			changes = append(changes, Change{Op: Delete, Kind: "source", Name: have.Name,
				apply: func(ctx context.Context) ([]string, error) { return nil, c.DeleteSource(ctx, id) }})
		}
	}
	return changes, nil
}

// ListSources returns every source.
func (c *Client) ListSources(ctx context.Context) ([]apitypes.Source, error) {
	var out apitypes.SourceList
	err := c.do(ctx, http.MethodGet, apitypes.Prefix+"/sources", nil, &out)
	return out.Sources, err
}

// CreateSource creates a source; the answer carries its write key.
func (c *Client) CreateSource(ctx context.Context, name string) (apitypes.SourceWithKey, error) {
	var out apitypes.SourceWithKey
	err := c.do(ctx, http.MethodPost, apitypes.Prefix+"/sources", apitypes.CreateSourceRequest{Name: name}, &out)
	return out, err
}

// SetSourceEnabled enables or disables a source.
func (c *Client) SetSourceEnabled(ctx context.Context, id string, enabled bool) (apitypes.Source, error) {
	action := "disable"
	if enabled {
		action = "enable"
	}
	var out apitypes.Source
	err := c.do(ctx, http.MethodPost, apitypes.Prefix+"/sources/"+url.PathEscape(id)+"/"+action, nil, &out)
	return out, err
}

// DeleteSource deletes a source.
func (c *Client) DeleteSource(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, apitypes.Prefix+"/sources/"+url.PathEscape(id), nil, nil)
}
