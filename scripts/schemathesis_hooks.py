"""Schemathesis hooks for scripts/schemathesis.sh (loaded via SCHEMATHESIS_HOOKS).

filter_failure drops findings that are explained by a rule api/openapi.yaml
cannot state, and nothing else. Each rule checks the request and the
server's problem document, so the same status for any other reason, or for
a request that keeps the rule, is still reported. The alternative, accepting
every 400 for valid data on createTenant and updateTenant in
schemathesis.toml, would hide any other wrong refusal there.

Answers that depend on earlier requests, which a spec cannot tie a request
to. Dropped: "schema-valid request rejected" with

  412 precondition-failed   for a request with If-Match: a generated ETag
                            rarely names the tenant's current version;
  422 principal-not-registered
                            for createGrant, when the detail names the
                            request's principal: only a principal registered
                            for the tenant may be granted (product spec), and
                            generated principals rarely are;
  400 naming plan           for createTenant and updateTenant, when the
                            message says the request's plan names no plan:
                            a tenant names one of the ISV's plans (PUT
                            /v1/plans/{name}), and generated names rarely do.

  422 nothing-to-roll-out  for createRollout: a rollout selects the stacks
                            behind the version of their template that the
                            server carries, and the run's fleet has none
                            (TestRollouts pins the 422).

Each status and problem type has only that source in the API, so no other
refusal hides behind it; the header rules apply to every operation that
takes the header, however many there are.

Rules the server rightly enforces and OpenAPI 3.0 cannot state (the spec's
descriptions say them in words). Dropped: "schema-valid request rejected"
with a 400 whose only error names the field, when the request breaks the rule:

  NUL      no string in a request may contain U+0000 (PostgreSQL cannot
           store it; stating it would take a pattern on every string);
           checked at the very parameter, value or key the server names, on
           every route, the Segment-compatible ones included;
  labels   keys are 1 to 63 characters of a-z, 0-9, '_', '.', '/', '-',
           starting and ending alphanumeric (3.0 has no propertyNames);
  regions  at most 10 Regions in all, counting the home Region (a rule
           across two fields; an update does not even carry the home Region);
  identifier types
           an identity configuration lists each type once (uniqueItems
           cannot say "unique by one property"); checked: the rule the
           server names repeats the type of an earlier one.
  usage range
           a usage report's to is after its from, and the range holds at
           most 744 hours, 366 days (or, for the fleet's, 366 days of hours);
  waves    a rollout's waves are cumulative percentages that increase and
           end at 100 (3.0 cannot order the items of an array);
  template_versions
           a rollout's expected versions must be the server's own (a
           generated 12-hex version never is);
  sql      a query's sql is one read-only statement over the tenant's own
           tables, as DuckDB's parser reads it (a 400 of type
           urn:cairn:problem:query-<reason>, TestQuerySandbox);
  If-Match an entity tag list as RFC 9110 defines it; the spec states it as
           the header's pattern, but the coverage phase sends header values
           that ignore it ("0"); checked: the value sent does not match the
           spec's own pattern.

before_call keeps the run's fixtures alive (see it); it drops nothing.

Keep the rules in step with internal/tenants (labelKeyPattern, MaxRegions)
and internal/profiles (IdentityConfig); internal/httpapi/conformance_test.go
pins the server behaviour the rules rely on (TestHeaderStateProblems,
TestConformanceUnregisteredPrincipal, TestNULIsRefused, TestLabelKeyRule,
TestRegionTotal, TestConformanceIdentifierTypeListedTwice, TestETagAndIfMatch,
TestParseIfMatch, TestPlans).
"""

import datetime
import itertools
import json
import os
import re

import schemathesis
import yaml
from schemathesis.openapi.checks import RejectedPositiveData

LABEL_KEY = re.compile(r"[a-z0-9]([a-z0-9_./-]{0,61}[a-z0-9])?")
MAX_REGIONS = 10
NUL_MESSAGE = "must not contain the NUL character (U+0000)"
PROBLEM = "urn:cairn:problem:"
# Status and problem type of the answers that only a request header, whose
# validity depends on earlier requests, explains; and that header.
HEADER_RULES = {
    (412, PROBLEM + "precondition-failed"): "If-Match",
}
# Idempotency-Key values before_call sends, one per request.
IDEMPOTENCY_KEYS = itertools.count(1)
UNREGISTERED = (422, PROBLEM + "principal-not-registered")
NOTHING_TO_ROLL = (422, PROBLEM + "nothing-to-roll-out")
DUPLICATE_TYPE = re.compile(r"identifiers/(\d+)/type")


def breaks_label_rule(body, message):
    labels = body.get("labels")
    return isinstance(labels, dict) and any(not LABEL_KEY.fullmatch(key) for key in labels)


def breaks_region_rule(body, message):
    regions = body.get("regions")
    if not isinstance(regions, list):
        return False
    # An update does not carry the home Region: count it as one more.
    return len(set(regions) | {body.get("home_region")}) > MAX_REGIONS


BODY_RULES = {
    "labels": breaks_label_rule,
    "regions": breaks_region_rule,
}


def problem(response):
    try:
        doc = json.loads(response.content)
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def carries_nul_at(case, field):
    """Whether the request has U+0000 where the server says: a JSON pointer
    into the body, or the name of a query or path parameter."""
    if not field.startswith("/"):
        for params in (case.query, case.path_parameters):
            value = (params or {}).get(field)
            values = value if isinstance(value, list) else [value]
            if any(isinstance(v, str) and "\0" in v for v in values):
                return True
        return False
    node = case.body
    for segment in field[1:].split("/"):
        key = segment.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and key in node:
            if "\0" in key:
                return True
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            return False
    return isinstance(node, str) and "\0" in node


def lists_type_twice(body, field, message):
    """Whether the identity configuration in body lists the type at the
    index the server names a second time, as the message says."""
    match = DUPLICATE_TYPE.fullmatch(field)
    rules = body.get("identifiers")
    if not match or not isinstance(rules, list) or int(match.group(1)) >= len(rules):
        return False
    index = int(match.group(1))
    kind = rules[index].get("type") if isinstance(rules[index], dict) else None
    earlier = [r.get("type") for r in rules[:index] if isinstance(r, dict)]
    return isinstance(kind, str) and message == f"type {kind} listed twice" and kind in earlier


def sent_header(case, name):
    return any(key.lower() == name.lower() for key in (case.headers or {}))


def operation_id(case):
    return case.operation.definition.raw.get("operationId")


# The spec, to resolve a parameter given by $ref (components/parameters).
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "api", "openapi.yaml")) as f:
    SPEC = yaml.safe_load(f)


def resolve(node):
    """node, or the local definition its $ref names."""
    ref = node.get("$ref") if isinstance(node, dict) else None
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return node
    target = SPEC
    for part in ref[2:].split("/"):
        target = target[part.replace("~1", "/").replace("~0", "~")]
    return target


def breaks_header_pattern(case, name):
    """Whether the request sent header name with a value that its
    parameter's pattern in the spec refuses."""
    value = next((v for k, v in (case.headers or {}).items() if k.lower() == name.lower()), None)
    for param in case.operation.definition.raw.get("parameters") or []:
        param = resolve(param)
        if param.get("in") == "header" and param.get("name", "").lower() == name.lower():
            pattern = (param.get("schema") or {}).get("pattern")
            return isinstance(value, str) and pattern is not None and re.search(pattern, value) is None
    return False


def explained_rejection(case, response):
    doc = problem(response)
    answer = (response.status_code, doc.get("type"))
    if answer in HEADER_RULES:
        return sent_header(case, HEADER_RULES[answer])
    if answer == UNREGISTERED:
        principal = case.body.get("principal") if isinstance(case.body, dict) else None
        return (
            operation_id(case) == "createGrant"
            and isinstance(principal, str)
            and doc.get("detail") == f"principal {principal} is not registered for this tenant."
        )
    if answer == NOTHING_TO_ROLL:
        return operation_id(case) == "createRollout"
    if response.status_code != 400:
        return False
    errors = [e for e in doc.get("errors") or [] if isinstance(e, dict)]
    if len(errors) != 1:
        return False
    field, message = str(errors[0].get("field", "")), str(errors[0].get("message", ""))
    if message == NUL_MESSAGE:
        return carries_nul_at(case, field)
    if field == "If-Match":
        return breaks_header_pattern(case, field)
    if operation_id(case) in USAGE_OPS and field == "to":
        return breaks_usage_range(case, message)
    if not isinstance(case.body, dict):
        return False
    if operation_id(case) == "putIdentityConfig":
        return lists_type_twice(case.body, field, message)
    op = operation_id(case)
    if op in ("createTenant", "updateTenant") and field == "plan":
        plan = case.body.get("plan")
        # The server quotes the name as Go's %q does, which escapes what
        # JSON would not (unprintable runes as \U…): compare the words,
        # and that a plan name was given at all.
        return isinstance(plan, str) and plan != "" and message.startswith("no plan is named ")
    if op in DEFINITION_OPS and field.startswith("/definition"):
        # A segment definition's rules (one kind a node, known operators,
        # durations, windows, limits) are ParseDefinition's, pinned by
        # internal/profiles/segdef_test.go; the schema is an open object.
        return True
    if op == "createSegment" and field == "conditions" and "definition" not in case.body and "conditions" not in case.body:
        # One of definition and conditions is required, which OpenAPI 3.0
        # says only with an anyOf the generated clients cannot type.
        return True
    if op in WEBHOOK_OPS and field == "url" and message.startswith("webhooks: refused URL"):
        # Whether a URL's host resolves to public addresses only is no
        # schema's to say; internal/webhooks/guard_test.go pins the guard.
        return True
    if op == "createLakeQuery" and field == "/sql" and str(doc.get("type", "")).startswith(PROBLEM + "query-"):
        # Whether a text is one read-only statement over the tenant's own
        # tables is DuckDB's parser's to say, no schema's;
        # internal/lake/duckdb TestQuerySandbox pins each refusal.
        return True
    if op == "createRollout" and (field == "waves" or field.startswith("waves/")):
        return breaks_waves(case.body.get("waves"))
    if op == "createRollout" and field.startswith("template_versions/"):
        return "this server applies version" in message
    rule = BODY_RULES.get(field)
    return rule is not None and op in ("createTenant", "updateTenant") and rule(case.body, message)


def breaks_waves(waves):
    """A rollout's waves must increase and end at 100 (internal/rollouts,
    Plan.normalize; pinned by TestRollouts)."""
    if not isinstance(waves, list) or not waves:
        return False
    return any(b <= a for a, b in zip(waves, waves[1:])) or waves[-1] != 100


DEFINITION_OPS = {"createSegment", "updateSegment", "previewSegment"}
USAGE_OPS = {"getTenantUsage", "getFleetUsage"}
USAGE_TOO_LONG = re.compile(r"(\d+) (hour|day)s from .* at most (\d+)$")


def breaks_usage_range(case, message):
    """A usage report's range must not be empty (to after from) nor longer
    than its most buckets (internal/usage.Span, pinned by its TestSpan): a
    rule across two parameters, which OpenAPI 3.0 cannot state."""
    query = case.query or {}
    try:
        start = datetime.datetime.fromisoformat(str(query["from"]).replace("Z", "+00:00"))
        end = datetime.datetime.fromisoformat(str(query["to"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return False
    if message == "to must be after from":
        return end <= start
    m = USAGE_TOO_LONG.search(message)
    if not m:
        return False
    count, unit, most = int(m.group(1)), m.group(2), int(m.group(3))
    step = datetime.timedelta(hours=1 if unit == "hour" else 24)
    return count > most and end - start > (most - 1) * step
WEBHOOK_OPS = {"createWebhook", "updateWebhook", "createFleetWebhook", "updateFleetWebhook"}


# The run's fixtures, which scripts/schemathesis.sh makes and names in the
# environment: the tenant whose source's write key authenticates the
# writeKey routes, and that source. For each operation that would end one:
# the path parameter that names it, the variable that holds its ID, and an
# ID of the same shape that names nothing.
SPARE = {
    "deleteTenant": ("tenant_id", "ST_FIXTURE_TENANT", "ten_" + "a" * 26),
    "suspendTenant": ("tenant_id", "ST_FIXTURE_TENANT", "ten_" + "a" * 26),
    "rotateSource": ("source_id", "ST_FIXTURE_SOURCE", "src_" + "a" * 26),
    "revokeSource": ("source_id", "ST_FIXTURE_SOURCE", "src_" + "a" * 26),
}


@schemathesis.hook
def before_call(context, case, kwargs):
    """Send a request that would offboard or suspend the fixture tenant, or
    replace its source's write key, to an ID that names nothing instead; it
    is still sent and judged, as the 404 it then is. schemathesis learns the
    fixtures' IDs from the API's answers and any phase may reuse them;
    without them every later request to a writeKey route would be a 401.

    A request with an Idempotency-Key gets a key of its own. schemathesis
    reuses generated values, and a reused key replays the first answer (or
    is a 422 with another body) by design: a replayed 201 then names a
    resource a later step may have deleted, which schemathesis reports as
    "created resource not found". The replay and the 422 are pinned by
    internal/httpapi/idempotency_test.go."""
    headers = case.headers or {}
    for name in headers:
        if name.lower() == "idempotency-key":
            case.headers = {**headers, name: f"st-{os.getpid()}-{next(IDEMPOTENCY_KEYS)}"}
            break
    rule = SPARE.get(operation_id(case))
    if rule is None:
        return
    param, variable, spare = rule
    params = case.path_parameters or {}
    if os.environ.get(variable) and params.get(param) == os.environ[variable]:
        case.path_parameters = {**params, param: spare}


@schemathesis.hook
def filter_failure(context, failure, case, response):
    """Keep every failure that no rule above explains."""
    if isinstance(failure, RejectedPositiveData):
        return not explained_rejection(case, response)
    return True
