#!/usr/bin/env bash
# gofmt-check.sh fails if any Go file in the tree (tracked or new, not
# ignored, not under testdata/) is not gofmt-formatted, and lists them.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

unformatted=$(
	git ls-files -z --cached --others --exclude-standard -- '*.go' ':(exclude)*testdata/*' |
		while IFS= read -r -d '' f; do
			[[ -f $f ]] && printf '%s\0' "$f"
		done |
		xargs -0 -r gofmt -l
)
if [[ -n $unformatted ]]; then
	echo "gofmt-check: these files need 'gofmt -w':" >&2
	sed 's/^/  /' <<<"$unformatted" >&2
	exit 1
fi
echo "gofmt-check: all Go files are formatted"
