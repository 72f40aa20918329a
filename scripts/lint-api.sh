#!/usr/bin/env bash
# lint-api.sh lints the contract, api/openapi.yaml, with Redocly's recommended
# rules (redocly.yaml) and Spectral's spectral:oas ruleset (.spectral.yaml),
# and fails on any error or warning of either. The linters are the versions
# pinned in tools/apilint/package-lock.json, installed there by npm ci
# (`scripts/testenv.sh lint-tools`); nothing is installed globally.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
spec=api/openapi.yaml
bin=tools/apilint/node_modules/.bin

scripts/testenv.sh lint-tools

# No telemetry and no update check: the linters run offline.
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true NO_UPDATE_NOTIFIER=1

# Redocly exits non-zero on errors only: its JSON report counts the warnings.
report=$(mktemp)
trap 'rm -f "$report"' EXIT
"$bin/redocly" lint --config redocly.yaml --format=json "$spec" >"$report" 2>/dev/null || true
problems=$(node -e '
	const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
	console.log(r.totals.errors + r.totals.warnings);
' "$report") || problems=unknown
if [[ $problems != 0 ]]; then
	"$bin/redocly" lint --config redocly.yaml --format=stylish "$spec" >&2 || true
	echo "lint-api: Redocly found $problems problems in $spec (errors and warnings both fail)" >&2
	exit 1
fi
echo "lint-api: Redocly (recommended): no errors, no warnings"

"$bin/spectral" lint --ruleset .spectral.yaml --fail-severity=warn --quiet "$spec" ||
	{ "$bin/spectral" lint --ruleset .spectral.yaml "$spec" >&2 || true; echo "lint-api: Spectral (spectral:oas) found problems in $spec" >&2; exit 1; }
echo "lint-api: Spectral (spectral:oas): no errors, no warnings"
