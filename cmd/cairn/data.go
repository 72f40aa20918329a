package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairn-cdp/cairn/client"
)

var (
	sourceColumns = cols("ID", "id", "NAME", "name", "KEY HINT", "key_hint", "REVOKED", "revoked",
		"ORIGINS", "allowed_origins", "CREATED", "created_at")
	// sourceKeyColumns show the write key, which the API shows once.
	sourceKeyColumns = append(cols("WRITE KEY", "write_key"), sourceColumns...)
	profileColumns   = cols("ID", "id", "IDENTIFIERS", "identifiers", "SEGMENTS", "segments", "MERGED", "merged_profile_ids", "UPDATED", "updated_at")
	profileEventCols = cols("TIME", "timestamp", "TYPE", "type", "NAME", "name", "MESSAGE ID", "message_id", "PROFILE", "profile_id")
	mergeColumns     = cols("MERGED PROFILE", "merged_profile_id", "MEMBERS", "members", "IDENTIFIER", "identifier", "AT", "at")
	erasureColumns   = cols("ID", "id", "PROFILE", "profile_id", "STATUS", "status", "SUPPRESS", "suppress",
		"ITEMS DELETED", "items_deleted", "OBJECTS REWRITTEN", "objects_rewritten", "LINES REMOVED", "lines_removed")
	segmentColumns = cols("ID", "id", "NAME", "name", "STATUS", "status", "VERSION", "version", "UPDATED", "updated_at")
	memberColumns  = cols("PROFILE", "profile_id", "ENTERED", "entered_at")
	previewColumns = cols("MEMBERS", "member_count", "SAMPLE", "sample")
)

// fileFlag adds -f FILE for a request body.
func fileFlag(target *string) func(*cobra.Command) {
	return func(cmd *cobra.Command) {
		cmd.Flags().StringVarP(target, "filename", "f", "", "the request body from a JSON or YAML file (- for standard input)")
	}
}

func (a *app) sourcesCommand() *cobra.Command {
	var (
		name    string
		origins []string
	)
	originsFlag := func(cmd *cobra.Command) {
		cmd.Flags().StringSliceVar(&origins, "allowed-origin", nil, "an origin browsers may send from, e.g. https://shop.example (repeat; none: any)")
	}
	originsBody := func() *client.AllowedOrigins {
		o := client.AllowedOrigins(origins)
		if o == nil {
			o = client.AllowedOrigins{}
		}
		return &o
	}
	return a.group("sources", "Event sources and their write keys", []string{"source"},
		op{
			use: "list", short: "List the tenant's sources", tenant: true, columns: sourceColumns,
			list: func(ctx context.Context, x call, limit *client.Limit, cursor *client.Cursor) (*http.Response, error) {
				return x.c.ListSources(ctx, x.tenant, &client.ListSourcesParams{Limit: limit, Cursor: cursor})
			},
		},
		op{
			use: "get SOURCE_ID", short: "Show a source (never its write key)", tenant: true, args: cobra.ExactArgs(1), columns: sourceColumns,
			send: func(ctx context.Context, x call) (*http.Response, error) {
				return x.c.GetSource(ctx, x.tenant, x.args[0])
			},
		},
		op{
			use: "create", short: "Make a source; its write key is shown once", tenant: true, columns: sourceKeyColumns,
			example: `  cairn sources create --tenant ten_7f3kq2w6xbm4zr5vjc2nd7ayqe --name web --allowed-origin https://shop.example`,
			create: func(ctx context.Context, x call, key *string) (*http.Response, error) {
				if name == "" {
					return nil, usagef("give --name")
				}
				body := client.SourceCreate{Name: name}
				if len(origins) > 0 {
					body.AllowedOrigins = originsBody()
				}
				return x.c.CreateSource(ctx, x.tenant, &client.CreateSourceParams{IdempotencyKey: key}, body)
			},
			flags: func(cmd *cobra.Command) {
				cmd.Flags().StringVar(&name, "name", "", "the source's name")
				originsFlag(cmd)
			},
		},
		op{
			use: "update SOURCE_ID", short: "Set the origins browsers may send a source's events from", tenant: true,
			args: cobra.ExactArgs(1), columns: sourceColumns,
			send: func(ctx context.Context, x call) (*http.Response, error) {
				return x.c.UpdateSource(ctx, x.tenant, x.args[0], client.SourceUpdate{AllowedOrigins: originsBody()})
			},
			flags: originsFlag,
		},
		op{
			use: "rotate SOURCE_ID", short: "Give a source a new write key (shown once); the old one stops working", tenant: true,
			args: cobra.ExactArgs(1), columns: sourceKeyColumns,
			send: func(ctx context.Context, x call) (*http.Response, error) {
				return x.c.RotateSource(ctx, x.tenant, x.args[0])
			},
		},
		op{
			use: "revoke SOURCE_ID", short: "Revoke a source's write key for good", tenant: true,
			args: cobra.ExactArgs(1), columns: sourceColumns, done: "Source revoked.",
			send: func(ctx context.Context, x call) (*http.Response, error) {
				return x.c.RevokeSource(ctx, x.tenant, x.args[0])
			},
		},
	)
}

func (a *app) identityCommand() *cobra.Command {
	var file string
	return a.group("identity", "The tenant's identity resolution rules", []string{"identity-config"},
		op{
			use: "get", short: "Show the identity configuration", tenant: true,
			send: func(ctx context.Context, x call) (*http.Response, error) { return x.c.GetIdentityConfig(ctx, x.tenant) },
		},
		op{
			use: "set", short: "Replace the identity configuration with a file's", tenant: true,
			example: `  cairn identity set --tenant ten_7f3kq2w6xbm4zr5vjc2nd7ayqe -f identity.yaml`,
			send: func(ctx context.Context, x call) (*http.Response, error) {
				raw, err := a.readBody(file)
				if err != nil {
					return nil, err
				}
				return x.c.PutIdentityConfigWithBody(ctx, x.tenant, "application/json", bytes.NewReader(raw))
			},
			flags: fileFlag(&file),
		},
	)
}

func (a *app) profilesCommand() *cobra.Command {
	var (
		identifier, event, member string
		suppress, wait            bool
		w                         waitFlags
	)
	return a.group("profiles", "Unified customer profiles", []string{"profile"},
		op{
			use: "lookup", short: "Find the profile of an identifier", tenant: true, columns: profileColumns,
			example: `  cairn profiles lookup --tenant ten_7f3kq2w6xbm4zr5vjc2nd7ayqe --identifier email:jane@example.com`,
			send: func(ctx context.Context, x call) (*http.Response, error) {
				if identifier == "" {
					return nil, usagef("give --identifier TYPE:VALUE")
				}
				return x.c.LookupProfile(ctx, x.tenant, &client.LookupProfileParams{Identifier: identifier})
			},
			flags: func(cmd *cobra.Command) {
				cmd.Flags().StringVar(&identifier, "identifier", "", "TYPE:VALUE, e.g. email:jane@example.com or user_id:42")
			},
		},
		op{
			use: "get PROFILE_ID", short: "Show a profile", tenant: true, args: cobra.ExactArgs(1), columns: profileColumns,
			send: func(ctx context.Context, x call) (*http.Response, error) {
				return x.c.GetProfile(ctx, x.tenant, x.args[0])
			},
		},
		op{
			use: "events PROFILE_ID", short: "List a profile's events", tenant: true, args: cobra.ExactArgs(1), columns: profileEventCols,
			list: func(ctx context.Context, x call, limit *client.Limit, cursor *client.Cursor) (*http.Response, error) {
				return x.c.ListProfileEvents(ctx, x.tenant, x.args[0], &client.ListProfileEventsParams{
					Limit: limit, Cursor: cursor, Event: optional(x.cmd, "event", event)})
			},
			flags: func(cmd *cobra.Command) {
				cmd.Flags().StringVar(&event, "event", "", "only events with this name")
			},
		},
		op{
			use: "merges PROFILE_ID", short: "List the merges that made a profile", tenant: true, args: cobra.ExactArgs(1), columns: mergeColumns,
			send: func(ctx context.Context, x call) (*http.Response, error) {
				return x.c.ListProfileMerges(ctx, x.tenant, x.args[0])
			},
		},
		op{
			use: "unmerge PROFILE_ID", short: "Split a member profile out of a merged one", tenant: true, args: cobra.ExactArgs(1), columns: profileColumns,
			send: func(ctx context.Context, x call) (*http.Response, error) {
				if member == "" {
					return nil, usagef("give --member PROFILE_ID, the member to split out")
				}
				return x.c.UnmergeProfile(ctx, x.tenant, x.args[0], client.UnmergeRequest{ProfileId: member})
			},
			flags: func(cmd *cobra.Command) {
				cmd.Flags().StringVar(&member, "member", "", "the member profile to split out")
			},
		},
		op{
			use: "erase PROFILE_ID", short: "Erase a profile and its events (GDPR); --wait until done", tenant: true,
			args: cobra.ExactArgs(1), columns: erasureColumns,
			example: `  cairn profiles erase --tenant ten_7f3kq2w6xbm4zr5vjc2nd7ayqe prof_... --suppress --wait`,
			send: func(ctx context.Context, x call) (*http.Response, error) {
				p := &client.EraseProfileParams{}
				if suppress {
					p.Suppress = &suppress
				}
				resp, err := x.c.EraseProfile(ctx, x.tenant, x.args[0], p)
				if err != nil || !wait || resp.StatusCode >= 400 {
					return resp, err
				}
				body, err := read(resp, nil)
				if err != nil {
					return nil, err
				}
				var e struct {
					ID string `json:"id"`
				}
				if err := json.Unmarshal(body, &e); err != nil {
					return nil, transportError{fmt.Errorf("reading the erasure: %w", err)}
				}
				// The wait shows the erasure itself: answer nothing more.
				return nil, a.waitErasure(ctx, x, e.ID, w)
			},
			flags: func(cmd *cobra.Command) {
				cmd.Flags().BoolVar(&suppress, "suppress", false, "also refuse the profile's identifiers' future events")
				cmd.Flags().BoolVar(&wait, "wait", false, "wait until the erasure has completed (exit code 5 on timeout)")
				w.add(cmd, 10*time.Minute)
			},
		},
	)
}

func (a *app) waitErasure(ctx context.Context, x call, id string, w waitFlags) error {
	body, err := a.waitUntil(ctx, w, "erasure "+id, condition{path: "status", want: "completed"}, func(ctx context.Context) ([]byte, error) {
		return read(x.c.GetErasure(ctx, x.tenant, id))
	})
	return a.showWaited(body, erasureColumns, err)
}

func (a *app) erasuresCommand() *cobra.Command {
	var w waitFlags
	return a.group("erasures", "Profile erasures", []string{"erasure"},
		op{
			use: "get ERASURE_ID", short: "Show an erasure", tenant: true, args: cobra.ExactArgs(1), columns: erasureColumns,
			send: func(ctx context.Context, x call) (*http.Response, error) {
				return x.c.GetErasure(ctx, x.tenant, x.args[0])
			},
		},
		op{
			use: "wait ERASURE_ID", short: "Wait until an erasure has completed (exit code 5 on timeout)", tenant: true,
			args: cobra.ExactArgs(1),
			send: func(ctx context.Context, x call) (*http.Response, error) {
				return nil, a.waitErasure(ctx, x, x.args[0], w)
			},
			flags: func(cmd *cobra.Command) { w.add(cmd, 10*time.Minute) },
		},
	)
}

func (a *app) segmentsCommand() *cobra.Command {
	var file, ifMatch string
	return a.group("segments", "Trait-based segments of profiles", []string{"segment"},
		op{
			use: "list", short: "List the tenant's segments", tenant: true, columns: segmentColumns,
			list: func(ctx context.Context, x call, limit *client.Limit, cursor *client.Cursor) (*http.Response, error) {
				return x.c.ListSegments(ctx, x.tenant, &client.ListSegmentsParams{Limit: limit, Cursor: cursor})
			},
		},
		op{
			use: "get SEGMENT_ID", short: "Show a segment", tenant: true, args: cobra.ExactArgs(1), columns: segmentColumns,
			send: func(ctx context.Context, x call) (*http.Response, error) {
				return x.c.GetSegment(ctx, x.tenant, x.args[0])
			},
		},
		op{
			use: "create", short: "Make a segment from a file (SegmentCreate, JSON or YAML)", tenant: true, columns: segmentColumns,
			example: `  cairn segments create --tenant ten_7f3kq2w6xbm4zr5vjc2nd7ayqe -f vip.yaml`,
			create: func(ctx context.Context, x call, key *string) (*http.Response, error) {
				raw, err := a.readBody(file)
				if err != nil {
					return nil, err
				}
				return x.c.CreateSegmentWithBody(ctx, x.tenant, &client.CreateSegmentParams{IdempotencyKey: key}, "application/json", bytes.NewReader(raw))
			},
			flags: fileFlag(&file),
		},
		op{
			use: "update SEGMENT_ID", short: "Change a segment from a file (SegmentUpdate)", tenant: true, args: cobra.ExactArgs(1), columns: segmentColumns,
			send: func(ctx context.Context, x call) (*http.Response, error) {
				raw, err := a.readBody(file)
				if err != nil {
					return nil, err
				}
				return x.c.UpdateSegmentWithBody(ctx, x.tenant, x.args[0],
					&client.UpdateSegmentParams{IfMatch: optional(x.cmd, "if-match", ifMatch)}, "application/json", bytes.NewReader(raw))
			},
			flags: func(cmd *cobra.Command) {
				fileFlag(&file)(cmd)
				cmd.Flags().StringVar(&ifMatch, "if-match", "", `apply only if the segment's ETag is this one (e.g. '"v3"')`)
			},
		},
		op{
			use: "preview", short: "Count the members a definition would have, from a file (SegmentPreviewRequest)", tenant: true, columns: previewColumns,
			send: func(ctx context.Context, x call) (*http.Response, error) {
				raw, err := a.readBody(file)
				if err != nil {
					return nil, err
				}
				return x.c.PreviewSegmentWithBody(ctx, x.tenant, "application/json", bytes.NewReader(raw))
			},
			flags: fileFlag(&file),
		},
		op{
			use: "members SEGMENT_ID", short: "List a segment's members", tenant: true, args: cobra.ExactArgs(1), columns: memberColumns,
			list: func(ctx context.Context, x call, limit *client.Limit, cursor *client.Cursor) (*http.Response, error) {
				return x.c.ListSegmentMembers(ctx, x.tenant, x.args[0], &client.ListSegmentMembersParams{Limit: limit, Cursor: cursor})
			},
		},
		op{
			use: "recompute SEGMENT_ID", short: "Recompute a segment's members", tenant: true, args: cobra.ExactArgs(1), columns: segmentColumns,
			done: "Recompute started.",
			send: func(ctx context.Context, x call) (*http.Response, error) {
				return x.c.RecomputeSegment(ctx, x.tenant, x.args[0])
			},
		},
		op{
			use: "delete SEGMENT_ID", short: "Delete a segment", tenant: true, args: cobra.ExactArgs(1), columns: segmentColumns,
			done: "Segment deleted.",
			send: func(ctx context.Context, x call) (*http.Response, error) {
				return x.c.DeleteSegment(ctx, x.tenant, x.args[0])
			},
		},
	)
}
