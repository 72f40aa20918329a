"""Verify Cairn's signatures with the reference Python library.

Reads a JSON list of cases from stdin, each {"secret", "headers", "body"}
with body in base64, and prints a JSON list of results in the same order:
"ok" when standardwebhooks.Webhook(secret).verify accepts the case, else
the verification error's text. A bug in this script (an unexpected
exception) exits non-zero.
"""

import base64
import json
import sys

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def main() -> None:
    results = []
    for case in json.load(sys.stdin):
        body = base64.b64decode(case["body"])
        try:
            Webhook(case["secret"]).verify(body, case["headers"], json_parse=False)
            results.append("ok")
        except WebhookVerificationError as err:
            results.append(f"refused: {err}")
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
