#!/usr/bin/env bash
# testenv.sh brings up the throwaway services that `make test` runs against and
# takes them down again, whatever way the command under test ends.
#
# Usage:
#   scripts/testenv.sh venv         create or refresh .venv/ from requirements-test.txt
#   scripts/testenv.sh clients      install what the client and browser tests need:
#                                   e2e/node_modules (npm ci) and Debian's chromium
#   scripts/testenv.sh lint-tools   install the OpenAPI linters (tools/apilint/node_modules,
#                                   npm ci; fails if it cannot)
#   scripts/testenv.sh run CMD...   start PostgreSQL 15 and the moto server, export
#                                   their addresses, run CMD, stop both, exit with
#                                   CMD's status
#
# `run` exports, for CMD:
#   CAIRN_TEST_DATABASE_URL      postgres://postgres@127.0.0.1:PORT/postgres?sslmode=disable
#   CAIRN_TEST_REQUIRE_POSTGRES  1 (tests fail instead of skipping without Postgres)
#   CAIRN_TEST_AWS_ENDPOINT      http://127.0.0.1:PORT (moto, every service on one port)
#   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (both "testing"), AWS_REGION and
#   AWS_DEFAULT_REGION (us-east-1), AWS_ENDPOINT_URL (moto, for any SDK client
#   built without an explicit endpoint)
#   PATH                         with .venv/bin first (cfn-lint for golden-template tests)
#   CAIRN_TEST_PYTHON            .venv/bin/python, with the Python tracking clients
#   CAIRN_TEST_NODE_DIR          e2e/, its node_modules installed by npm ci
#   CAIRN_TEST_CHROMIUM          /usr/bin/chromium (Debian's; installed when missing)
#   CAIRN_TEST_REQUIRE_CLIENTS   1 (client and browser tests fail instead of skipping)
# and isolates the AWS SDK from the machine: no shared config or credentials
# files, no instance metadata lookups.
#
# Nothing is reused between runs: each gets a fresh cluster (initdb, trust
# auth, fsync off) and a fresh moto, each on a free loopback port, so two runs
# on one machine do not collide and no service that happens to be running is
# ever used. The venv is the exception: it is rebuilt only when
# requirements-test.txt or the Python interpreter changes (stamp in .venv/);
# so are e2e/node_modules and tools/apilint/node_modules, reinstalled by
# `npm ci` only when their package-lock.json or Node changes (stamp in
# node_modules/). Chromium comes from Debian
# (apt-get, as root) when /usr/bin/chromium is missing; Playwright never
# downloads a browser.
#
# Environment knobs:
#   PYTHON          interpreter for the venv (default python3)
#   PG_BIN          PostgreSQL binaries (default /usr/lib/postgresql/15/bin)
#   KEEP_TESTENV=1  keep the temp dir (cluster, logs) for a post-mortem
#
# PostgreSQL refuses to run as root, so as root initdb and pg_ctl run as the
# postgres system user (runuser) in a directory that user owns.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$root/.venv"
e2e="$root/e2e"
chromium=/usr/bin/chromium
requirements="$root/requirements-test.txt"
python=${PYTHON:-python3}
pg_bin=${PG_BIN:-/usr/lib/postgresql/15/bin}

log() { printf 'testenv: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# free_port prints a TCP port on 127.0.0.1 that nothing listens on right now.
# Another process can take it before we bind it; the start functions retry.
free_port() {
	"$python" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# ensure_venv creates .venv/ from requirements-test.txt unless the stamp says
# it already matches. A lock keeps two concurrent runs in one checkout from
# building it at the same time.
ensure_venv() {
	[[ -f $requirements ]] || die "missing $requirements"
	command -v "$python" >/dev/null || die "no $python on PATH"
	local want
	want=$({ "$python" -c 'import sys; print(sys.version)'; cat "$requirements"; } | sha256sum | cut -d' ' -f1)
	# The lock is held on requirements-test.txt itself, so no lock file is left behind.
	(
		flock 9
		if [[ -x $venv/bin/python && -f $venv/.requirements.sha256 && $(<"$venv/.requirements.sha256") == "$want" ]]; then
			exit 0
		fi
		log "building .venv from requirements-test.txt"
		local start=$SECONDS
		rm -rf "$venv"
		"$python" -m venv "$venv"
		"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$requirements"
		# Written last: an interrupted install leaves no stamp and is redone.
		printf '%s\n' "$want" >"$venv/.requirements.sha256"
		log "built .venv in $((SECONDS - start))s"
	) 9<"$requirements"
}

# ensure_npm_ci runs `npm ci` in the directory $1 unless the stamp says its
# node_modules already matches package-lock.json and this Node; it fails when
# node, npm or the install fail. Install scripts are off: no package may
# fetch a browser or a binary of its own.
ensure_npm_ci() {
	local dir=$1
	if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
		if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
			log "installing nodejs and npm (no node or npm on PATH)"
			{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm; } >&2 || true
		fi
		command -v node >/dev/null && command -v npm >/dev/null || { log "no node/npm on PATH"; return 1; }
	fi
	local lock="$dir/package-lock.json" want
	want=$({ node --version; cat "$lock"; } | sha256sum | cut -d' ' -f1)
	(
		flock 9
		if [[ -f $dir/node_modules/.package-lock.sha256 && $(<"$dir/node_modules/.package-lock.sha256") == "$want" ]]; then
			exit 0
		fi
		log "npm ci in ${dir#"$root"/}/"
		local start=$SECONDS
		(cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) >&2 || exit 1
		# Written last: an interrupted install leaves no stamp and is redone.
		printf '%s\n' "$want" >"$dir/node_modules/.package-lock.sha256"
		log "installed ${dir#"$root"/}/node_modules in $((SECONDS - start))s"
	) 9<"$lock"
}

# ensure_node_modules installs e2e/node_modules. Failures are logged, not
# fatal: the client tests then fail and say why.
ensure_node_modules() {
	ensure_npm_ci "$e2e" || { log "WARNING: npm ci failed in e2e/: the client tests will fail"; return 0; }
	# playwright-core needs Node 20; the Rudder SDK alone would run on older.
	local major
	major=$(node -p 'process.versions.node.split(".")[0]')
	((major >= 20)) || log "WARNING: Node $(node --version) is older than 20: the browser test will fail"
}

# ensure_chromium installs Debian's chromium when it is missing (as root).
ensure_chromium() {
	[[ -x $chromium ]] && return 0
	if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
		log "installing chromium ($chromium not found)"
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } >&2 || true
	fi
	[[ -x $chromium ]] || log "WARNING: no $chromium: the browser test will fail"
}

ensure_clients() {
	ensure_node_modules
	ensure_chromium
}

# The temp dir holding the cluster and the logs; set by start_services.
env_dir=
pg_data=
moto_pid=
as_postgres=()

start_postgres() {
	if [[ ! -x $pg_bin/initdb ]]; then
		if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
			log "installing postgresql-15 ($pg_bin/initdb not found)"
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql-15 >&2 ||
				{ apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql-15 >&2; }
		fi
		[[ -x $pg_bin/initdb ]] || die "no PostgreSQL 15 at $pg_bin (set PG_BIN)"
	fi
	local dir="$env_dir/pg"
	mkdir -m 700 "$dir"
	if [[ $(id -u) -eq 0 ]]; then
		chown postgres:postgres "$dir"
		as_postgres=(runuser -u postgres --)
	fi
	pg_data="$dir/data"
	# cd: initdb as postgres must be able to read its working directory.
	if ! (cd "$dir" && "${as_postgres[@]}" "$pg_bin/initdb" -D "$pg_data" -A trust -U postgres \
		--no-sync --no-instructions -E UTF8 --locale=C) >"$env_dir/initdb.log" 2>&1; then
		cat "$env_dir/initdb.log" >&2
		die "initdb failed"
	fi
	local attempt port
	for attempt in 1 2 3; do
		port=$(free_port)
		if (cd "$dir" && "${as_postgres[@]}" "$pg_bin/pg_ctl" -D "$pg_data" -l "$dir/postgres.log" -w -t 60 \
			-o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
			start) >"$env_dir/pg_ctl.log" 2>&1; then
			export CAIRN_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
			export CAIRN_TEST_REQUIRE_POSTGRES=1
			log "PostgreSQL $("$pg_bin/postgres" -V | awk '{print $3}') on 127.0.0.1:$port"
			return 0
		fi
		log "PostgreSQL did not start on port $port (attempt $attempt)"
		stop_postgres
	done
	cat "$env_dir/pg_ctl.log" "$dir/postgres.log" >&2 2>/dev/null || true
	die "PostgreSQL failed to start"
}

stop_postgres() {
	[[ -n $pg_data && -f $pg_data/postmaster.pid ]] || return 0
	(cd "$env_dir/pg" && "${as_postgres[@]}" "$pg_bin/pg_ctl" -D "$pg_data" -m immediate -w -t 30 stop) >/dev/null 2>&1 && return 0
	# pg_ctl could not stop it: end the postmaster by its own pid.
	local pid
	pid=$(head -n1 "$pg_data/postmaster.pid" 2>/dev/null || true)
	if [[ $pid =~ ^[0-9]+$ ]]; then
		kill -KILL "$pid" 2>/dev/null || true
	fi
}

start_moto() {
	local attempt port deadline
	for attempt in 1 2 3; do
		port=$(free_port)
		# moto_server, one request at a time (see the script).
		"$venv/bin/python" "$root/scripts/moto_server.py" -H 127.0.0.1 -p "$port" >"$env_dir/moto.log" 2>&1 &
		moto_pid=$!
		deadline=$((SECONDS + 60))
		while ((SECONDS < deadline)) && kill -0 "$moto_pid" 2>/dev/null; do
			# Any HTTP answer means it is serving; curl prints 000 until then.
			if [[ $(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$port/moto-api/" || true) != 000 ]]; then
				export CAIRN_TEST_AWS_ENDPOINT="http://127.0.0.1:$port"
				export CAIRN_TEST_REQUIRE_AWS=1
				log "moto $("$venv/bin/python" -c 'import moto; print(moto.__version__)') on 127.0.0.1:$port"
				return 0
			fi
			sleep 0.2
		done
		log "moto did not answer on port $port (attempt $attempt)"
		stop_moto
	done
	cat "$env_dir/moto.log" >&2 || true
	die "moto server failed to start"
}

stop_moto() {
	[[ -n $moto_pid ]] || return 0
	kill "$moto_pid" 2>/dev/null || true
	wait "$moto_pid" 2>/dev/null || true
	moto_pid=
}

# moto_errors prints the Python tracebacks in moto's log, the last ones
# first cut if there are many: an emulator error behind a failed test
# (a stack left CREATE_IN_PROGRESS by a create that raised half-way) shows
# only there.
moto_errors() {
	local log=$env_dir/moto.log
	[[ -f $log ]] && grep -q '^Traceback' "$log" || return 0
	log "moto logged $(grep -c '^Traceback' "$log") tracebacks; the last of them:"
	# A traceback is its header, indented frames, and one unindented line:
	# the exception.
	awk '/^Traceback/ { tb = 1; print; next } tb { print } tb && /^[^ ]/ { tb = 0 }' "$log" | tail -n 120 >&2
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_moto
	stop_postgres
	if [[ -n $env_dir ]]; then
		if [[ ${KEEP_TESTENV:-} == 1 ]]; then
			log "kept $env_dir"
		else
			rm -rf "$env_dir"
		fi
	fi
	exit "$rc"
}

run() {
	(($# > 0)) || die "usage: testenv.sh run CMD..."
	ensure_venv
	ensure_clients
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	env_dir=$(mktemp -d "${TMPDIR:-/tmp}/cairn-testenv.XXXXXX")
	chmod 755 "$env_dir" # the postgres user must reach $env_dir/pg
	start_postgres
	start_moto
	export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
	export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
	export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
	unset AWS_SESSION_TOKEN AWS_PROFILE
	# SDK clients built without an explicit endpoint go to moto too, never to AWS.
	export AWS_ENDPOINT_URL="$CAIRN_TEST_AWS_ENDPOINT"
	export PATH="$venv/bin:$PATH"
	export CAIRN_TEST_PYTHON="$venv/bin/python" CAIRN_TEST_NODE_DIR="$e2e" CAIRN_TEST_CHROMIUM="$chromium"
	export CAIRN_TEST_REQUIRE_CLIENTS=1
	# Not exec: the EXIT trap must run after CMD to stop the services.
	local rc=0
	"$@" || rc=$?
	if ((rc != 0)); then
		moto_errors
	fi
	exit "$rc"
}

case ${1:-} in
venv) ensure_venv ;;
clients) ensure_clients ;;
lint-tools) ensure_npm_ci "$root/tools/apilint" ;;
run)
	shift
	run "$@"
	;;
*)
	sed -n '2,13p' "${BASH_SOURCE[0]}" >&2
	exit 2
	;;
esac
