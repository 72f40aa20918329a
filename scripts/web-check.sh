#!/usr/bin/env bash
# web-check.sh rebuilds the admin portal (web/) from its sources with the
# locked dependencies (npm ci, then `npm run build`: the typed client is
# regenerated from api/openapi.yaml, type-checked with tsc --noEmit and
# bundled by Vite) and fails if that changed the committed build (web/dist,
# which the server embeds) or the generated client types. Like
# generate-check.sh, it fingerprints the files before and after, so a dirty
# tree is no finding, and leaves the fresh build in place to commit.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root/web"

fingerprint() {
	find dist src/schema.d.ts -type f -print0 2>/dev/null | sort -z | xargs -0 -r sha256sum
}

before=$(mktemp)
after=$(mktemp)
trap 'rm -f "$before" "$after"' EXIT

fingerprint >"$before"
# A lockfile that installs the same tree is cached: npm ci only when the
# lockfile changed since the last install.
stamp=node_modules/.package-lock.sha256
sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$sum" ]]; then
	npm ci --no-audit --no-fund --loglevel=error
	echo "$sum" >"$stamp"
fi
npm run --silent build >/dev/null
fingerprint >"$after"

if ! cmp -s "$before" "$after"; then
	echo "web-check: building web/ changed these files:" >&2
	{ diff "$before" "$after" || true; } | sed -n 's/^[<>] [0-9a-f]\{64\}  /  web\//p' | sort -u >&2
	echo "web-check: run 'make web' and commit web/dist and web/src/schema.d.ts." >&2
	exit 1
fi
echo "web-check: the committed portal build is up to date"
