#!/usr/bin/env bash
# schemathesis-both.sh runs scripts/schemathesis.sh twice at once, under
# `scripts/testenv.sh run`: once on the embedded store, once on the
# PostgreSQL database testenv started (CAIRN_TEST_DATABASE_URL) with
# SCHEMATHESIS_PG_EXAMPLES cases per operation and phase (default 25;
# SCHEMATHESIS_MAX_EXAMPLES, when set, applies to both). Each run is a
# server and a Python process of its own, so on two cores the pair takes
# little longer than the longer one alone. Their outputs are kept apart and
# printed whole, one after the other, once both have ended; it fails when
# either run failed.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

log() { printf 'schemathesis-both.sh: %s\n' "$*" >&2; }
[[ -n ${CAIRN_TEST_DATABASE_URL:-} ]] || {
	log "ERROR: no CAIRN_TEST_DATABASE_URL: run me with scripts/testenv.sh run"
	exit 1
}

out=$(mktemp -d "${TMPDIR:-/tmp}/cairn-schemathesis-both.XXXXXX")
pids=()
stop() {
	trap - INT TERM
	# Each run stops its own server when it is told to end.
	((${#pids[@]} == 0)) || kill "${pids[@]}" 2>/dev/null || true
	wait || true
	exit 143
}
trap 'rm -rf "$out"' EXIT
trap stop INT TERM

scripts/schemathesis.sh >"$out/embedded.log" 2>&1 &
pids+=($!)
SCHEMATHESIS_DATABASE_URL=$CAIRN_TEST_DATABASE_URL \
	SCHEMATHESIS_MAX_EXAMPLES=${SCHEMATHESIS_MAX_EXAMPLES:-${SCHEMATHESIS_PG_EXAMPLES:-25}} \
	scripts/schemathesis.sh >"$out/postgres.log" 2>&1 &
pids+=($!)

names=("the embedded store" PostgreSQL)
logs=(embedded postgres)
rc=0
for i in 0 1; do
	status=0
	wait "${pids[$i]}" || status=$?
	printf '=== schemathesis on %s: exit %d\n' "${names[$i]}" "$status"
	cat "$out/${logs[$i]}.log"
	((status == 0)) || rc=1
done
exit "$rc"
