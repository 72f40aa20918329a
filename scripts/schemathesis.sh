#!/usr/bin/env bash
# schemathesis.sh fuzzes a freshly built server against api/openapi.yaml with
# every schemathesis check, and fails on any finding that the spec does not
# explain (schemathesis.toml and scripts/schemathesis_hooks.py say which).
#
# It builds ./cmd/server, starts it on a free loopback port with a throwaway
# data dir (the embedded default store), waits for GET /readyz to answer 200,
# mints an admin token with `cairn token --admin`, makes the run's fixtures
# (an active tenant with a source, whose write key the Segment-compatible
# routes need, and a profile), runs `schemathesis run`, and stops the server
# on exit, whatever way the run ends.
#
# Environment knobs:
#   SCHEMATHESIS_DATABASE_URL   run the server (and the token command) on this
#                               Postgres URL instead of the embedded store
#   SCHEMATHESIS_MAX_EXAMPLES   test cases per operation and phase (default:
#                               generation.max-examples in schemathesis.toml)
#   SCHEMATHESIS_TIMEOUT        seconds before the whole run is abandoned (default 900)
#   SCHEMATHESIS_ARGS           extra arguments for `schemathesis run`, e.g.
#                               "--include-path-regex ^/v1/tenants"
#   KEEP_SCHEMATHESIS=1         keep the temp dir (server log, data dir)
#
# Settings that belong with the spec (expected statuses, per-operation
# overrides) go in schemathesis.toml at the repo root; it is passed with
# --config-file. Rules the spec cannot state, which no status list can excuse
# narrowly enough, are in scripts/schemathesis_hooks.py. schemathesis runs
# inside the temp dir so that its crash cache (.schemathesis/) and
# Hypothesis' files (.hypothesis/) stay out of the tree.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

log() { printf 'schemathesis.sh: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

spec=api/openapi.yaml
[[ -f $spec ]] || die "no $spec"
scripts/testenv.sh venv

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cairn-schemathesis.XXXXXX")
server_pid=
fuzzing=0
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [[ -n $server_pid ]]; then
		# SIGTERM drains in-flight work; give it 15s, then stop it hard.
		kill "$server_pid" 2>/dev/null || true
		local i
		for ((i = 0; i < 75; i++)); do
			kill -0 "$server_pid" 2>/dev/null || break
			sleep 0.2
		done
		kill -KILL "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	if ((rc != 0)) && [[ -s $tmp/server.log ]]; then
		if ((fuzzing)); then
			# Findings are in schemathesis' report; from the server, show what
			# went wrong on its side (errors, warnings, panics), not every request.
			log "server log, without its INFO lines (last 40):"
			{ grep -v '"level":"INFO"' "$tmp/server.log" || true; } | tail -n 40 >&2
		else
			log "last lines of the server log:"
			tail -n 40 "$tmp/server.log" >&2
		fi
	fi
	if [[ ${KEEP_SCHEMATHESIS:-} == 1 ]]; then
		log "kept $tmp"
	else
		rm -rf "$tmp"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "building ./cmd/server"
go build -o "$tmp/cairn" ./cmd/server || die "go build ./cmd/server failed; schemathesis needs the server"

# The server reads CAIRN_* settings from the environment: start it from the
# defaults plus the flags below, not from whatever the caller's shell has set.
while IFS= read -r name; do
	[[ $name == CAIRN_TEST_* ]] || unset "$name"
done < <(compgen -e | grep '^CAIRN_' || true)

db_args=()
if [[ -n ${SCHEMATHESIS_DATABASE_URL:-} ]]; then
	db_args=(--database-url "$SCHEMATHESIS_DATABASE_URL")
fi

port=$(.venv/bin/python -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
# Short job and stack poll intervals: tenants onboarded early in the run are
# active soon after, so later requests reach suspend, resume and token minting
# on live tenants rather than only their 409 for a tenant still provisioning.
# schemathesis makes up write keys by the hundred (GET /v1/projects/{key}/
# settings): with the budget of refused credentials per address on, its
# own address would be refused everything after the first twenty
# (TestFailedAuthPerAddress covers that budget), so it is off here.
"$tmp/cairn" --addr "127.0.0.1:$port" --data-dir "$tmp/data" "${db_args[@]}" \
	--job-poll-interval 50ms --stack-poll-interval 100ms --failed-auth-per-minute 0 >"$tmp/server.log" 2>&1 </dev/null &
server_pid=$!

deadline=$((SECONDS + 60))
until [[ $(curl -s -o /dev/null -m 2 -w '%{http_code}' "$base/readyz" || true) == 200 ]]; do
	kill -0 "$server_pid" 2>/dev/null || die "server exited before it was ready"
	((SECONDS < deadline)) || die "server not ready on $base/readyz after 60s"
	sleep 0.2
done
log "server ready on $base"

token=$(timeout 60 "$tmp/cairn" token --admin --data-dir "$tmp/data" "${db_args[@]}" </dev/null) ||
	die "cairn token --admin failed"
[[ -n $token ]] || die "cairn token --admin printed nothing"

# api METHOD PATH [BODY] calls the API as the admin and prints the response
# body; it fails on an answer other than 2xx.
api() {
	curl -sS -f -m 10 -X "$1" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
		${3:+--data "$3"} "$base$2"
}
# field NAME prints the top-level field NAME of the JSON document on stdin.
field() { .venv/bin/python -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# The run's fixtures. The Segment-compatible routes take a source's write
# key, not a bearer token, and a tenant's events only land once its stack is
# ready: onboard one tenant for them, wait until it is active, and give
# schemathesis its source's write key. The hooks keep schemathesis from
# offboarding or suspending that tenant and from replacing that key
# (ST_FIXTURE_* name them).
tenant=$(api POST /v1/tenants '{"name": "Schemathesis", "slug": "schemathesis", "tier": "pooled", "home_region": "eu-west-1"}' | field id) ||
	die "could not onboard the fixture tenant"
deadline=$((SECONDS + 60))
until [[ $(api GET "/v1/tenants/$tenant" | field status) == active ]]; do
	((SECONDS < deadline)) || die "the fixture tenant $tenant is not active after 60s"
	sleep 0.2
done
src=$(api POST "/v1/tenants/$tenant/sources" '{"name": "schemathesis"}') ||
	die "could not create the fixture source"
write_key=$(field write_key <<<"$src")
export ST_FIXTURE_TENANT=$tenant ST_FIXTURE_SOURCE=$(field id <<<"$src")
# And one profile of that tenant, which lookupProfile is pinned to below: no
# generated ID names a profile, but schemathesis reuses the ID that lookup
# answers with on the other profile routes (reads first, the erasure last).
curl -sS -f -m 10 -o /dev/null -u "$write_key:" -H 'Content-Type: application/json' \
	--data '{"messageId": "schemathesis", "userId": "schemathesis", "traits": {"email": "schemathesis@example.com"}}' \
	"$base/v1/identify" || die "could not ingest the fixture profile's event"
log "fixture tenant $tenant is active, with a source and a profile"

# schemathesis.toml plus what only this run knows: the credentials per
# security scheme (the admin token; the write key as the Basic user name
# with no password, as Segment's client libraries send it) and the fixture
# profile's lookup. They are the throwaway server's and stay in the temp dir.
config=$tmp/schemathesis.toml
{
	cat schemathesis.toml
	printf '\n[auth.openapi.bearerAuth]\nbearer = "%s"\n' "$token"
	printf '\n[auth.openapi.writeKey]\nusername = "%s"\npassword = ""\n' "$write_key"
	printf '\n[[operations]]\ninclude-operation-id = ["lookupProfile"]\n'
	printf 'parameters = { "path.tenant_id" = "%s", "query.identifier" = "user_id:schemathesis" }\n' "$tenant"
	# The lake's status too: a generated tenant ID names no tenant.
	printf '\n[[operations]]\ninclude-operation-id = ["getTenantLake"]\n'
	printf 'parameters = { "path.tenant_id" = "%s" }\n' "$tenant"
} >"$config"

# --generation-deterministic derandomizes generation (schemathesis then
# ignores --seed, which pins the run should that flag ever go), and one worker
# keeps the request order, and so the server's state, the same from run to run.
# How many cases each phase generates is set in schemathesis.toml;
# SCHEMATHESIS_MAX_EXAMPLES overrides it for every phase. No --checks: every
# check is on by default, and naming checks on the command line would
# override the per-operation settings of schemathesis.toml.
read -r -a extra <<<"${SCHEMATHESIS_ARGS:-}"
args=(--url "$base"
	--seed 1 --generation-deterministic --workers 1 --request-timeout 10 --continue-on-failure)
if [[ -n ${SCHEMATHESIS_MAX_EXAMPLES:-} ]]; then
	args+=(--max-examples "$SCHEMATHESIS_MAX_EXAMPLES")
fi
# The hooks file holds the API rules that OpenAPI 3.0 cannot state (see it);
# no bytecode cache is written next to it.
export SCHEMATHESIS_HOOKS="$root/scripts/schemathesis_hooks.py" PYTHONDONTWRITEBYTECODE=1
cd "$tmp"
fuzzing=1
timeout "${SCHEMATHESIS_TIMEOUT:-900}" "$root/.venv/bin/schemathesis" --no-color \
	--config-file "$config" run "$root/$spec" "${args[@]}" "${extra[@]}"
