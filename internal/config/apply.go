package config

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// Op is what a change does.
type Op string

// Change operations, as printed at the start of a diff line.
const (
	Create Op = "+"
	Update Op = "~"
	Delete Op = "-"
)

// Change is one difference between the file and the running CDP.
type Change struct {
	Op      Op
	Kind    string   // "source", "identity rules", "computed trait", "audience", "destination"
	Name    string   // the resource's name or key (empty for identity rules)
	Details []string // for updates: "enabled false -> true"
	// apply makes the change and returns lines to print once (e.g. a new write key).
	apply func(ctx context.Context) ([]string, error)
}

// String is the diff line: "+ source web", "~ source web: enabled false -> true".
func (c Change) String() string {
	s := fmt.Sprintf("%s %s", c.Op, c.Kind)
	if c.Name != "" {
		s += " " + c.Name
	}
	if len(c.Details) > 0 {
		s += ": " + strings.Join(c.Details, ", ")
	}
	return s
}

// Options tune Apply.
type Options struct {
	DryRun bool      // print the diff, change nothing
	Prune  bool      // delete resources the file does not declare
	Out    io.Writer // where the diff goes (nil: discarded)
}

// planContext is what a kind's plan function gets.
type planContext struct {
	ctx    context.Context
	client *Client
	prune  bool
}

// Plan compares the file with the running CDP and returns the changes, without making any.
func Plan(ctx context.Context, c *Client, f *File, prune bool) ([]Change, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	pc := planContext{ctx: ctx, client: c, prune: prune}
	var changes []Change
	deletes := make([][]Change, len(kinds))
	for i, k := range kinds {
		cs, err := k.plan(pc, f)
		if err != nil {
			return nil, fmt.Errorf("plan %ss: %w", k.name, err)
		}
		for _, ch := range cs {
			if ch.Op == Delete {
				deletes[i] = append(deletes[i], ch)
			} else {
				changes = append(changes, ch)
			}
		}
	}
	// Deletions last and in reverse kind order, so nothing is deleted while still referred to
	// (within a kind, plan orders them).
	for i := len(deletes) - 1; i >= 0; i-- {
		changes = append(changes, deletes[i]...)
	}
	return changes, nil
}

// Apply makes the running CDP match the file and prints each change as it is made (or, on a dry
// run, as it would be made). In sync, it prints nothing. It stops at the first failure; changes
// made before it stay made, and running Apply again continues from there.
func Apply(ctx context.Context, c *Client, f *File, opts Options) ([]Change, error) {
	out := opts.Out
	if out == nil {
		out = io.Discard
	}
	changes, err := Plan(ctx, c, f, opts.Prune)
	if err != nil {
		return nil, err
	}
	if opts.DryRun {
		for _, ch := range changes {
			fmt.Fprintln(out, ch.String())
		}
		if len(changes) > 0 {
			fmt.Fprintln(out, "(dry run: nothing changed)")
		}
		return changes, nil
	}
	for i, ch := range changes {
		notes, err := ch.apply(ctx)
		if err != nil {
			return changes[:i], fmt.Errorf("%s: %w", ch.String(), err)
		}
		fmt.Fprintln(out, ch.String())
		for _, n := range notes {
			fmt.Fprintln(out, "    "+n)
		}
	}
	return changes, nil
}
