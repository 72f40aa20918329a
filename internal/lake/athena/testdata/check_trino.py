"""Parses the Athena statements in a JSON list (argv[1]) with sqlglot's Trino
dialect (Athena engine version 3 is Trino) and transpiles each back to Trino;
exits 1 naming every statement that fails. An UNLOAD, which sqlglot's Trino
does not know, must be `UNLOAD (<query>) TO '<s3 url>' WITH (<options>)`,
and its query must parse."""
import json
import re
import sys

import sqlglot
from sqlglot.errors import ErrorLevel

UNLOAD = re.compile(
    r"^UNLOAD \(\n(?P<query>.*)\n\) TO 's3://[a-z0-9.-]+/[^']*/' "
    r"WITH \(format = 'PARQUET', compression = 'ZSTD'(, partitioned_by = ARRAY\['[a-z_]+'(, '[a-z_]+')*\])?\)$",
    re.S,
)

failed = 0
statements = json.load(open(sys.argv[1]))
for i, sql in enumerate(statements):
    query = sql
    if sql.startswith("UNLOAD"):
        m = UNLOAD.match(sql)
        if not m:
            print(f"statement {i}: malformed UNLOAD:\n{sql}\n")
            failed += 1
            continue
        query = m.group("query")
    try:
        parsed = sqlglot.parse(query, read="trino", error_level=ErrorLevel.RAISE)
        if len(parsed) != 1:
            raise ValueError(f"{len(parsed)} statements")
        if parsed[0].key not in ("select", "union"):
            raise ValueError(f"a {parsed[0].key}, not a query")
        sqlglot.transpile(query, read="trino", write="trino", unsupported_level=ErrorLevel.RAISE)
    except Exception as e:  # noqa: BLE001 - every failure is reported
        print(f"statement {i}: {e}\n{query}\n")
        failed += 1
print(f"{len(statements) - failed}/{len(statements)} statements parse as Trino")
sys.exit(1 if failed else 0)
