"""The moto server, one request at a time.

moto's backends are plain Python dicts with no locking, and moto_server
runs every request in its own thread. Under the test suite's concurrency
that raises errors half-way through a request ("dictionary changed size
during iteration" in a DynamoDB transaction's copy of its table, or in a
CloudFormation create that then leaves its stack CREATE_IN_PROGRESS for
good, as no real stack ever stays). This runs the same application as
moto_server, still accepting connections on many threads, but handles one
request at a time: each request is atomic, as each is in AWS. It also
honours DynamoDB's TransactWriteItems ClientRequestToken (see OneAtATime)
CloudFormation's DeletionPolicy RetainExceptOnCreate (see
retain_except_on_create), and creates the Athena workgroups a stack
declares (see athena_work_groups).

Usage: python moto_server.py [-H HOST] [-p PORT]
"""

import argparse
import io
import json
import os
import threading
import time

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.exceptions import ClientDisconnected
from werkzeug.serving import run_simple
from werkzeug.wsgi import get_input_stream


# How long DynamoDB honours a TransactWriteItems ClientRequestToken.
TOKEN_TTL = 600.0


class OneAtATime:
    """A WSGI middleware that runs the application under one lock, its
    response body included. The request body is read before the lock is
    taken, so that a client slow to send it holds up only itself.

    It also honours the ClientRequestToken of DynamoDB's TransactWriteItems,
    which moto ignores: a call repeated with the token of one that succeeded
    (the SDK retrying a call whose answer it lost) gets the same answer and
    writes nothing, as in DynamoDB, instead of being applied again or, with
    a condition, failing it."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.answered = {}  # token -> (time, status, headers, body)

    def __call__(self, environ, start_response):
        # As much as Content-Length says, or all of a chunked body.
        try:
            body = get_input_stream(environ).read()
        except ClientDisconnected:
            # The client gave up on the request (a test cancelling it, or a
            # server process it killed): nothing to serve, nothing to log.
            start_response("400 Bad Request", [("Content-Length", "0")])
            return [b""]
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)  # de-chunked above
        environ["wsgi.input_terminated"] = True
        token = transaction_token(environ, body)
        with self.lock:
            now = time.monotonic()
            if token in self.answered and now - self.answered[token][0] <= TOKEN_TTL:
                _, status, headers, answer = self.answered[token]
                start_response(status, headers)
                return [answer]
            seen = {}

            def record(status, headers, exc_info=None):
                seen["status"], seen["headers"] = status, list(headers)
                return start_response(status, headers, exc_info)

            result = self.app(environ, record if token else start_response)
            try:
                answer = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
            if token and seen.get("status", "").startswith("200"):
                for old in [t for t, a in self.answered.items() if now - a[0] > TOKEN_TTL]:
                    del self.answered[old]
                self.answered[token] = (now, seen["status"], seen["headers"], answer)
            return [answer]


def transaction_token(environ, body):
    """The ClientRequestToken of a DynamoDB TransactWriteItems call, or None."""
    if not environ.get("HTTP_X_AMZ_TARGET", "").endswith(".TransactWriteItems"):
        return None
    try:
        token = json.loads(body).get("ClientRequestToken")
    except (ValueError, AttributeError):
        return None
    return token if isinstance(token, str) and token else None


def retain_except_on_create():
    """Makes moto's DeleteStack retain the resources whose DeletionPolicy is
    RetainExceptOnCreate, as it does those whose policy is Retain.

    moto retains only "Retain" and deletes every other resource. AWS keeps a
    RetainExceptOnCreate resource when a stack is deleted, and deletes it
    only when the create that made it rolls back. moto never rolls a create
    back (a failed stack is the fault proxy's invention, moto's stack is
    complete), so every stack it deletes completed its create: retain."""
    from moto.cloudformation.parsing import ResourceMap

    delete = ResourceMap.delete

    def delete_retaining(self):
        policies = self._resource_json_map
        changed = [
            r for r in policies.values()
            if isinstance(r, dict) and r.get("DeletionPolicy") == "RetainExceptOnCreate"
        ]
        for r in changed:
            r["DeletionPolicy"] = "Retain"
        try:
            return delete(self)
        finally:
            for r in changed:
                r["DeletionPolicy"] = "RetainExceptOnCreate"

    ResourceMap.delete = delete_retaining


def athena_work_groups():
    """Makes moto's CloudFormation create (and delete) the stack's
    AWS::Athena::WorkGroup in moto's Athena, as AWS does.

    moto has no CloudFormation model for the type: it warns, creates
    nothing, and the stack completes with a workgroup that Athena does not
    know, so every query a tenant's stack is meant to run answers
    "WorkGroup does not exist". The model registers itself by subclassing
    CloudFormationModel, before moto first reads the list of models."""
    from moto.athena.models import athena_backends
    from moto.core.common_models import CloudFormationModel

    class AthenaWorkGroup(CloudFormationModel):
        __module__ = "moto.athena.cloudformation"  # moto files models by service

        def __init__(self, account_id, region_name, name):
            self.account_id, self.region_name, self.name = account_id, region_name, name

        @staticmethod
        def cloudformation_name_type():
            return "Name"

        @staticmethod
        def cloudformation_type():
            return "AWS::Athena::WorkGroup"

        @classmethod
        def has_cfn_attr(cls, attr):
            return False

        @property
        def physical_resource_id(self):
            return self.name

        @classmethod
        def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
            props = cloudformation_json.get("Properties", {})
            athena_backends[account_id][region_name].create_work_group(
                resource_name,
                dict(props.get("WorkGroupConfiguration", {})),
                props.get("Description", ""),
                props.get("Tags", []),
            )
            return cls(account_id, region_name, resource_name)

        @classmethod
        def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name):
            if new_resource_name == original_resource.name:
                return original_resource
            original_resource.delete(account_id, region_name)
            return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id, region_name)

        @classmethod
        def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
            athena_backends[account_id][region_name].delete_work_group(resource_name)

        def delete(self, account_id, region_name):
            athena_backends[account_id][region_name].delete_work_group(self.name)

        def is_created(self):
            return True


def main():
    retain_except_on_create()
    athena_work_groups()
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True  # as moto_server: errors are logged with their traceback
    run_simple(
        args.host,
        args.port,
        OneAtATime(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
