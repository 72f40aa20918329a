package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// waitFlags are a wait's condition and patience.
type waitFlags struct {
	timeout  time.Duration
	interval time.Duration
}

func (w *waitFlags) add(cmd *cobra.Command, timeout time.Duration) {
	cmd.Flags().DurationVar(&w.timeout, "timeout", timeout, "give up waiting after this long (exit code 5)")
	cmd.Flags().DurationVar(&w.interval, "interval", 2*time.Second, "how often to look")
}

// condition is a wait's goal: a top-level field of the resource (a dotted
// path) equal to a value, and the values it can never leave by itself, at
// which waiting longer is pointless.
type condition struct {
	path, want string
	dead       []string
}

func parseCondition(s string, dead ...string) (condition, error) {
	path, want, ok := strings.Cut(s, "=")
	if !ok || path == "" || want == "" {
		return condition{}, usagef("--for wants FIELD=VALUE, e.g. status=active, not %q", s)
	}
	c := condition{path: path, want: want}
	for _, d := range dead {
		if d != want {
			c.dead = append(c.dead, d)
		}
	}
	return c, nil
}

// waitUntil reads a resource until cond holds, and returns its last body.
// An API refusal or transport failure ends the wait at once; so does a
// dead state. The wait is bounded by w.timeout.
func (a *app) waitUntil(ctx context.Context, w waitFlags, what string, cond condition, fetch func(context.Context) ([]byte, error)) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	last := ""
	for {
		body, err := fetch(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, waitError{fmt.Sprintf("timed out after %s waiting for %s to have %s=%s (last: %q)", w.timeout, what, cond.path, cond.want, last)}
			}
			return nil, err
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, transportError{fmt.Errorf("reading %s: %w", what, err)}
		}
		last = cell(lookup(v, cond.path))
		if last == cond.want {
			return body, nil
		}
		for _, d := range cond.dead {
			if last == d {
				reason := cell(lookup(v, "status_reason"))
				if reason != "" {
					reason = ": " + reason
				}
				return body, waitError{fmt.Sprintf("%s is %s=%s, which it does not leave by itself%s", what, cond.path, last, reason)}
			}
		}
		select {
		case <-ctx.Done():
			return nil, waitError{fmt.Sprintf("timed out after %s waiting for %s to have %s=%s (last: %q)", w.timeout, what, cond.path, cond.want, last)}
		case <-time.After(w.interval):
		}
	}
}

// showWaited prints the last body of a wait, also when it failed (a dead
// state has a body worth seeing).
func (a *app) showWaited(body []byte, c columns, err error) error {
	if body != nil {
		if perr := a.show(body, c, ""); perr != nil && err == nil {
			err = perr
		}
	}
	return err
}
