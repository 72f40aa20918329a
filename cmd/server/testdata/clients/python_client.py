"""Send a plan of tracking calls to Cairn through a Python client library.

Usage: python python_client.py rudder|segment < plan.json

The plan (JSON on stdin, written by cmd/server/clients_test.go) is
{"url": ..., "writeKey": ..., "calls": [{"type": "identify", "userId": ...}, ...]}.
Each call goes through the library's public API; the client is built with the
library's defaults except for the host, the error callback, no retries (a
refused batch fails the run at once instead of backing off for minutes) and,
for segment-analytics-python, gzip=True (its default is off; Rudder's is on).
The script flushes, and exits 1 listing the errors if any batch failed; the
library's warnings and errors go to stderr, and so does what the server
answered a refused batch (which rudder-sdk-python logs only at debug level).
"""

import json
import logging
import sys


def build(lib, plan, on_error):
    if lib == "rudder":
        from rudderstack.analytics import Client

        return Client(plan["writeKey"], host=plan["url"], on_error=on_error, max_retries=0)
    if lib == "segment":
        from segment.analytics import Client

        return Client(plan["writeKey"], host=plan["url"], on_error=on_error, max_retries=0, gzip=True)
    raise SystemExit(f"unknown library {lib!r}")


def send(client, call):
    kind = call["type"]
    if kind == "identify":
        client.identify(user_id=call.get("userId"), anonymous_id=call.get("anonymousId"), traits=call.get("traits"))
    elif kind == "track":
        client.track(user_id=call.get("userId"), anonymous_id=call.get("anonymousId"),
                     event=call["event"], properties=call.get("properties"))
    elif kind == "page":
        client.page(user_id=call.get("userId"), anonymous_id=call.get("anonymousId"),
                    name=call.get("name"), properties=call.get("properties"))
    elif kind == "group":
        client.group(user_id=call.get("userId"), anonymous_id=call.get("anonymousId"),
                     group_id=call["groupId"], traits=call.get("traits"))
    elif kind == "alias":
        client.alias(previous_id=call["previousId"], user_id=call["userId"])
    else:
        raise SystemExit(f"unknown call type {kind!r}")


def main():
    lib = sys.argv[1]
    plan = json.load(sys.stdin)
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(lambda r: r.levelno >= logging.WARNING or r.getMessage().startswith("received response"))
    logging.basicConfig(level=logging.DEBUG, handlers=[handler])
    errors = []

    def on_error(err, batch):
        errors.append(f"{type(err).__name__}: {err} ({len(batch)} events)")

    client = build(lib, plan, on_error)
    for call in plan["calls"]:
        send(client, call)
    client.flush()  # returns once the consumer has uploaded the queue
    client.join()
    if errors:
        print("\n".join(errors), file=sys.stderr)
        sys.exit(1)
    print(json.dumps({"library": lib, "sent": len(plan["calls"])}))


if __name__ == "__main__":
    main()
