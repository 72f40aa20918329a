package athena_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cairn-cdp/cairn/internal/lake"
	"github.com/cairn-cdp/cairn/internal/lake/athena"
)

func TestCheck(t *testing.T) {
	const db = "cairn_ten_abc"
	cases := []struct {
		sql    string
		reason string // "" for accepted
	}{
		{"SELECT count(*) FROM tracks", ""},
		{"select * from tracks;", ""},
		{"  -- a comment\n/* another */ SELECT 1", ""},
		{"(SELECT user_id FROM tracks) UNION ALL (SELECT user_id FROM identifies)", ""},
		{"WITH t AS (SELECT * FROM tracks), u AS (SELECT * FROM t) SELECT * FROM u", ""},
		{"SELECT * FROM cairn_ten_abc.tracks", ""},
		{`SELECT * FROM "CAIRN_TEN_ABC"."tracks"`, ""},
		{"SELECT * FROM awsdatacatalog.cairn_ten_abc.tracks t JOIN profiles p ON t.user_id = p.user_id", ""},
		{"SELECT t.event, p.profile_id FROM tracks t, profiles p WHERE t.user_id = p.user_id", ""},
		{"SELECT EXTRACT(YEAR FROM t.timestamp), TRIM(BOTH 'x' FROM t.event), substring(t.event FROM 2) FROM tracks t", ""},
		{"SELECT * FROM tracks t WHERE t.a IS DISTINCT FROM t.b AND t.c IS NOT DISTINCT FROM t.d", ""},
		{"SELECT x FROM tracks CROSS JOIN UNNEST(ARRAY[1, 2]) AS u(x)", ""},
		{"SELECT 'DROP TABLE x; other.t' AS s, \"select\" FROM tracks", ""},
		{"SELECT 1 -- ; DROP TABLE tracks", ""},
		{"SELECT * FROM (SELECT * FROM tracks) s, (VALUES (1, 2), (3, 4)) AS v(a, b)", ""},
		{"SELECT * FROM tracks WHERE user_id IN (SELECT user_id FROM identifies)", ""},
		{"SELECT coalesce((SELECT max(x) FROM cairn_ten_abc.tracks), 0)", ""},

		{"", lake.RefusedSyntax},
		{" ; -- nothing", lake.RefusedSyntax},
		{"SELECT 'unclosed", lake.RefusedSyntax},
		{`SELECT "unclosed FROM tracks`, lake.RefusedSyntax},
		{"SELECT 1 /* unclosed", lake.RefusedSyntax},
		{"SELECT 1; SELECT 2", lake.RefusedNotSelect},
		{"SELECT 1; DROP TABLE tracks", lake.RefusedNotSelect},
		{"SHOW TABLES", lake.RefusedNotSelect},
		{"DESCRIBE tracks", lake.RefusedNotSelect},
		{"EXPLAIN ANALYZE SELECT * FROM tracks", lake.RefusedNotSelect},
		{"VALUES 1", lake.RefusedNotSelect},
		{"'x'", lake.RefusedNotSelect},
		{"INSERT INTO tracks SELECT * FROM tracks", lake.RefusedWrite},
		{"/* SELECT */ CREATE TABLE x AS SELECT * FROM tracks", lake.RefusedWrite},
		{"-- SELECT\nDROP TABLE tracks", lake.RefusedWrite},
		{"UNLOAD (SELECT * FROM tracks) TO 's3://b/x' WITH (format = 'PARQUET')", lake.RefusedWrite},
		{"MSCK REPAIR TABLE tracks", lake.RefusedWrite},
		{"ALTER TABLE tracks ADD PARTITION (dt = '1')", lake.RefusedWrite},
		{"(DELETE FROM tracks)", lake.RefusedWrite},
		{"SET SESSION query_max_run_time = '1h'", lake.RefusedSettings},
		{"USE other", lake.RefusedAttach},
		{"SELECT * FROM cairn_ten_other.tracks", lake.RefusedOtherTenant},
		{`SELECT * FROM "tracks$partitions"`, lake.RefusedOtherTenant},
		{`SELECT * FROM "cairn_ten_abc"."tracks$files"`, lake.RefusedOtherTenant},
		{"SELECT * FROM cairn_ten_abcd.tracks", lake.RefusedOtherTenant},
		{`SELECT * FROM "cairn_ten_other" . "tracks"`, lake.RefusedOtherTenant},
		{"SELECT * FROM/**/cairn_ten_other.tracks", lake.RefusedOtherTenant},
		{"SELECT * FROM tracks, cairn_ten_other.tracks", lake.RefusedOtherTenant},
		{"SELECT * FROM tracks t LEFT JOIN cairn_ten_other.profiles p ON t.user_id = p.user_id", lake.RefusedOtherTenant},
		{"WITH s AS (SELECT * FROM cairn_ten_other.tracks) SELECT * FROM s", lake.RefusedOtherTenant},
		{"SELECT * FROM tracks WHERE user_id IN (SELECT user_id FROM cairn_ten_other.identifies)", lake.RefusedOtherTenant},
		{"SELECT * FROM (cairn_ten_other.tracks)", lake.RefusedOtherTenant},
		{"SELECT * FROM awsdatacatalog.cairn_ten_other.tracks", lake.RefusedOtherTenant},
		{"SELECT * FROM othercatalog.cairn_ten_abc.tracks", lake.RefusedOtherTenant},
		{"SELECT * FROM information_schema.tables", lake.RefusedOtherTenant},
		{"SELECT * FROM " + strings.Repeat("x", lake.DefaultMaxSQL), lake.RefusedTooLong},
	}
	// A pooled tenant's: the pool's database, where its queries run, and
	// its own.
	pooled := []string{"cairn_pool_shared", "cairn_pool_ten_abc"}
	for _, c := range []struct{ sql, reason string }{
		{"SELECT count(*) FROM tracks", ""},
		{"SELECT * FROM cairn_pool_shared.tracks t JOIN awsdatacatalog.cairn_pool_shared.profile_traits p ON t.profile_id = p.profile_id", ""},
		{"SELECT * FROM cairn_pool_ten_abc.raw_events", ""},
		{"SELECT * FROM cairn_pool_ten_other.raw_events", lake.RefusedOtherTenant},
		{"SELECT * FROM cairn_ten_abc.tracks", lake.RefusedOtherTenant},
		{"SELECT * FROM tracks t JOIN cairn_pool_other_shared.tracks o ON t.message_id = o.message_id", lake.RefusedOtherTenant},
		{`SELECT * FROM "cairn_pool_shared"."tracks" UNION ALL SELECT * FROM "cairn_pool_ten_xyz"."tracks"`, lake.RefusedOtherTenant},
	} {
		err := athena.Check(pooled, c.sql, lake.DefaultMaxSQL)
		if got := refusedFor(err); got != c.reason {
			t.Errorf("pooled %q: refused for %q (%v), want %q", c.sql, got, err, c.reason)
		}
	}
	for _, c := range cases {
		err := athena.Check([]string{db}, c.sql, lake.DefaultMaxSQL)
		var refusal *lake.QueryRefusal
		switch {
		case c.reason == "" && err != nil:
			t.Errorf("%q: refused: %v", c.sql, err)
		case c.reason == "":
		case !errors.As(err, &refusal) || !errors.Is(err, lake.ErrQueryRefused):
			t.Errorf("%q: got %v, want a refusal (%s)", c.sql, err, c.reason)
		case refusal.Reason != c.reason:
			t.Errorf("%q: refused for %s (%s), want %s", c.sql, refusal.Reason, refusal.Message, c.reason)
		}
	}
}

// refusedFor is the reason of a refusal, "" for none.
func refusedFor(err error) string {
	var refusal *lake.QueryRefusal
	if errors.As(err, &refusal) {
		return refusal.Reason
	}
	if err != nil {
		return "not a refusal: " + err.Error()
	}
	return ""
}
