#!/usr/bin/env bash
# generate-check.sh runs `go generate ./...` and fails if that changed,
# created or deleted any file in the tree, so generated code that is committed
# always matches its sources.
#
# It fingerprints every file git would see (tracked, plus untracked files that
# are not ignored) before and after generating, so it gives the same answer on
# a fresh clone and on a dirty working tree: a hand edit made before the run
# is not a finding, a file that generation rewrites is. Generated code is left
# regenerated in the tree, ready to review and commit.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

# fingerprint prints "sha256  path" for every non-ignored file in the tree.
fingerprint() {
	git ls-files -z --cached --others --exclude-standard |
		while IFS= read -r -d '' f; do
			[[ -f $f ]] && printf '%s\0' "$f"
		done |
		xargs -0 -r sha256sum |
		sort -k2
}

before=$(mktemp)
after=$(mktemp)
trap 'rm -f "$before" "$after"' EXIT

fingerprint >"$before"
go generate ./...
fingerprint >"$after"

if ! cmp -s "$before" "$after"; then
	echo "generate-check: 'go generate ./...' changed these files:" >&2
	{ diff "$before" "$after" || true; } | sed -n 's/^[<>] [0-9a-f]\{64\}  /  /p' | sort -u >&2
	echo "generate-check: run 'make generate' and commit the result." >&2
	if [[ ${CI:-} == true ]]; then
		git --no-pager diff --stat >&2 || true
		git --no-pager diff | head -n 200 >&2 || true
	fi
	exit 1
fi
echo "generate-check: generated code is up to date"
