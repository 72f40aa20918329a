#!/usr/bin/env python3
"""spec-scopes.py moves the scopes of api/openapi.yaml's bearer security
requirements into the `x-cairn-scopes` extension, in place.

Scopes on an HTTP bearer scheme are not valid OpenAPI 3.0 (only oauth2 and
openIdConnect requirements list scopes), so every requirement names
`bearerAuth: []` and the scopes a token needs stand beside it, as
alternatives: `x-cairn-scopes: [[admin], ["grants:write"]]` admits a token
holding every scope of any one list, `[]` any token of the route's tenant.
The gate (internal/httpapi) reads them; see the bearerAuth scheme.

It rewrites text, not YAML, so the rest of the file stays byte for byte; it
is idempotent, and rerunning it after merging an operation written the old
way (`- bearerAuth: [admin]` under `security:`) converts that one too.
Usage: scripts/spec-scopes.py [api/openapi.yaml]
"""
import re
import sys

path = sys.argv[1] if len(sys.argv) > 1 else "api/openapi.yaml"
lines = open(path, encoding="utf-8").read().split("\n")
requirement = re.compile(r"^(\s*)- bearerAuth: \[(.*)\]\s*$")
out = []
i = 0
changed = 0
while i < len(lines):
    line = lines[i]
    m = re.match(r"^(\s*)security:\s*$", line)
    if not m:
        out.append(line)
        i += 1
        continue
    indent = m.group(1)
    j = i + 1
    alternatives = []
    others = []
    while j < len(lines):
        r = requirement.match(lines[j])
        if r and len(r.group(1)) > len(indent):
            scopes = [s.strip().strip('"').strip("'") for s in r.group(2).split(",") if s.strip()]
            alternatives.append(scopes)
        elif re.match(r"^" + indent + r"\s+- ", lines[j]):
            others.append(lines[j])
        else:
            break
        j += 1
    if not alternatives or all(a == [] for a in alternatives) and len(alternatives) == 1:
        out.append(line)
        i += 1
        continue
    out.append(line)
    out.append(indent + "  - bearerAuth: []")
    out.extend(others)
    flow = ", ".join("[" + ", ".join('"%s"' % s if ":" in s else s for s in a) + "]" for a in alternatives)
    out.append(indent + "x-cairn-scopes: [" + flow + "]")
    changed += 1
    i = j

open(path, "w", encoding="utf-8").write("\n".join(out))
print("spec-scopes: %d security blocks rewritten in %s" % (changed, path))
