package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairn-cdp/cairn/client"
)

// apiError is the API's refusal: its status and the RFC 9457 problem it
// answered with (title and detail may be empty when the body was no
// problem, e.g. a proxy's error page).
type apiError struct {
	Status    int          `json:"status"`
	Type      string       `json:"type"`
	Title     string       `json:"title"`
	Detail    string       `json:"detail"`
	RequestID string       `json:"request_id"`
	Errors    []fieldError `json:"errors"`
}

type fieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (e *apiError) Error() string {
	title := e.Title
	if title == "" {
		title = http.StatusText(e.Status)
	}
	msg := fmt.Sprintf("%s (HTTP %d)", title, e.Status)
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

// printError prints err for a person: a problem's title, detail, field
// errors and request ID; a usage error with a pointer to --help.
func printError(w io.Writer, cmd *cobra.Command, err error) {
	fmt.Fprintf(w, "Error: %v\n", err)
	var p *apiError
	if errors.As(err, &p) {
		for _, f := range p.Errors {
			fmt.Fprintf(w, "  %s: %s\n", f.Field, f.Message)
		}
		if p.Type != "" {
			fmt.Fprintf(w, "  type: %s\n", p.Type)
		}
		if p.RequestID != "" {
			fmt.Fprintf(w, "  request_id: %s\n", p.RequestID)
		}
	}
	var u usageError
	if errors.As(err, &u) && cmd != nil {
		fmt.Fprintf(w, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
}

// connect makes the API client of the resolved context: its server, and
// its token on every request.
func (a *app) connect() (*client.Client, error) {
	target, err := a.resolve()
	if err != nil {
		return nil, err
	}
	token := target.token
	// A transport of its own: the standard one would resend a request
	// with an Idempotency-Key on a broken reused connection by itself,
	// behind create's back.
	hc := &http.Client{Timeout: a.requestTimeout, Transport: http.DefaultTransport.(*http.Transport).Clone()}
	u, err := url.Parse(target.server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("the server %q is not an http:// or https:// URL", target.server)
	}
	return client.NewClient(target.server, client.WithHTTPClient(hc),
		client.WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			req.Header.Set("User-Agent", "cairn-cli")
			return nil
		}))
}

// read turns a generated client call's outcome into the answer's body: a
// transportError when no answer was read, an *apiError for any status of
// 400 or more.
func read(resp *http.Response, err error) ([]byte, error) {
	if err != nil {
		if isClassified(err) {
			return nil, err
		}
		return nil, transportError{err}
	}
	if resp == nil {
		// The command answered for itself (a wait that printed what it saw).
		return nil, nil
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, transportError{fmt.Errorf("reading the answer: %w", err)}
	}
	if resp.StatusCode < 400 {
		return body, nil
	}
	p := &apiError{}
	if json.Unmarshal(body, p) != nil || p.Title == "" {
		p = &apiError{Detail: strings.TrimSpace(string(body))}
	}
	p.Status = resp.StatusCode
	return nil, p
}

// create sends a request that creates something with an Idempotency-Key
// (the --idempotency-key flag's, or a new one), and sends it again with the
// same key when it got no answer or the server was briefly unavailable, so
// that a retry never creates twice.
func (a *app) create(ctx context.Context, cmd *cobra.Command, send func(key *string) (*http.Response, error)) ([]byte, error) {
	key, _ := cmd.Flags().GetString("idempotency-key")
	if key == "" {
		key = rand.Text()
	}
	const attempts = 3
	var err error
	for attempt := 1; attempt <= attempts; attempt++ {
		var body []byte
		body, err = read(send(&key))
		var p *apiError
		retry := errors.As(err, new(transportError)) ||
			(errors.As(err, &p) && (p.Status == http.StatusServiceUnavailable || p.Type == "urn:cairn:problem:idempotency-key-in-flight"))
		if !retry {
			return body, err
		}
		if attempt == attempts {
			break
		}
		select {
		case <-ctx.Done():
			return nil, transportError{ctx.Err()}
		case <-time.After(time.Duration(attempt) * 500 * time.Millisecond):
		}
	}
	fmt.Fprintf(a.stderr, "The request may have been applied: repeat it with --idempotency-key %s to find out safely.\n", key)
	return nil, err
}

// page fetches one page of a list, or with all every page, following
// next_cursor and joining the items into one list envelope.
func page(all bool, fetch func(cursor *string) (*http.Response, error)) ([]byte, error) {
	body, err := read(fetch(nil))
	if err != nil || !all {
		return body, err
	}
	var items []json.RawMessage
	seen := map[string]bool{}
	for {
		var env struct {
			Items      []json.RawMessage `json:"items"`
			NextCursor *string           `json:"next_cursor"`
		}
		if err := json.Unmarshal(body, &env); err != nil {
			return nil, transportError{fmt.Errorf("reading the list: %w", err)}
		}
		items = append(items, env.Items...)
		// A cursor seen before would loop for ever: stop there.
		if env.NextCursor == nil || *env.NextCursor == "" || seen[*env.NextCursor] {
			break
		}
		seen[*env.NextCursor] = true
		if body, err = read(fetch(env.NextCursor)); err != nil {
			return nil, err
		}
	}
	if items == nil {
		items = []json.RawMessage{}
	}
	return json.Marshal(map[string]any{"items": items, "next_cursor": nil})
}
