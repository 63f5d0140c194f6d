// Package config is configuration as code: one YAML (or JSON) file declares the CDP's resources
// and Apply makes the running CDP match it through the admin API, idempotently, printing a diff.
//
//	sources:
//	  - name: web
//	  - name: ios
//	    enabled: false
//
// Resources are matched by name. Apply never deletes what the file does not mention unless
// pruning is asked for. A file that does not parse or validate is refused before anything is
// read or changed.
//
// Each kind of resource lives in its own file (sources.go): its part of File, a validate
// function and a plan function that compares the file with the admin API and returns the
// changes. Adding a kind is a field on File and an entry in kinds.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"gopkg.in/yaml.v3"
)

// File is a configuration file.
type File struct {
	Sources []Source `yaml:"sources" json:"sources"`
}

// kind is one kind of resource the file can declare. Kinds are planned and applied in this
// order (later kinds may refer to earlier ones) and pruned in reverse.
type kind struct {
	name     string
	validate func(f *File) []error
	plan     func(ctx planContext, f *File) ([]Change, error)
}

var kinds = []kind{
	{name: "source", validate: validateSources, plan: planSources},
}

// Load reads and validates a configuration file.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	f, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// Parse decodes and validates a configuration, YAML or JSON (a document starting with '{').
// Unknown fields, duplicate keys, several documents and invalid values are errors.
func Parse(data []byte) (*File, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, errors.New("config is empty")
	}
	if trimmed[0] == '{' {
		return parseJSON(trimmed)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f File
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("invalid config: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("invalid config: more than one YAML document")
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

// parseJSON decodes a JSON configuration (YAML would accept most JSON, but not tab indentation).
func parseJSON(data []byte) (*File, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f File
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("invalid config: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("invalid config: data after the JSON object")
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

// Validate checks every resource the file declares and reports all problems at once.
func (f *File) Validate() error {
	var errs []error
	for _, k := range kinds {
		errs = append(errs, k.validate(f)...)
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid config:\n%w", errors.Join(errs...))
	}
	return nil
}
