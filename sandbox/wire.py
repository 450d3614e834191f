"""What a request is (service, region, operation, protocol) and how AWS words an error."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from urllib.parse import parse_qs

_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request")
# Global services: their control planes answer from us-east-1 whatever a client signs for, so
# a dark us-east-1 takes them down too.
GLOBAL_SERVICES = {"route53": "us-east-1", "iam": "us-east-1", "cloudfront": "us-east-1"}
_REST_OPS = [
    ("route53", "GET", re.compile(r"^/2013-04-01/change/"), "GetChange"),
    ("route53", "POST", re.compile(r"^/2013-04-01/healthcheck/?$"), "CreateHealthCheck"),
    ("route53", "GET", re.compile(r"^/2013-04-01/healthcheck/?$"), "ListHealthChecks"),
    (
        "route53",
        "GET",
        re.compile(r"^/2013-04-01/healthcheck/[^/]+/status/?$"),
        "GetHealthCheckStatus",
    ),
    ("route53", "GET", re.compile(r"^/2013-04-01/healthcheck/[^/]+/?$"), "GetHealthCheck"),
    ("route53", "POST", re.compile(r"^/2013-04-01/healthcheck/[^/]+/?$"), "UpdateHealthCheck"),
    ("route53", "DELETE", re.compile(r"^/2013-04-01/healthcheck/[^/]+/?$"), "DeleteHealthCheck"),
    ("route53", "GET", re.compile(r"^/2013-04-01/testdnsanswer/?$"), "TestDNSAnswer"),
    (
        "route53",
        "POST",
        re.compile(r"^/2013-04-01/hostedzone/[^/]+/rrset/?$"),
        "ChangeResourceRecordSets",
    ),
]


@dataclass(frozen=True)
class Call:
    service: str  # signing name, e.g. "ecs", "elasticloadbalancing", "monitoring"
    region: str
    operation: str
    protocol: str  # "json" | "query" | "ec2" | "rest-xml" | "s3"
    params: dict[str, object]


def parse(environ: dict[str, object], body: bytes) -> Call:
    auth = str(environ.get("HTTP_AUTHORIZATION", ""))
    m = _SCOPE.search(auth)
    region, service = (m.group(1), m.group(2)) if m else ("us-east-1", "")
    region = GLOBAL_SERVICES.get(service, region)
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    method = str(environ.get("REQUEST_METHOD", "GET"))
    path = str(environ.get("PATH_INFO", ""))
    params: dict[str, object] = {}
    if target:
        operation, protocol = target.split(".")[-1], "json"
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            params = {}
    elif service == "s3":
        operation, protocol = f"{method} {path}", "s3"
    else:
        form = parse_qs(body.decode("utf-8", "replace")) if body else {}
        query = parse_qs(str(environ.get("QUERY_STRING", "")))
        action = (form.get("Action") or query.get("Action") or [""])[0]
        if action:
            operation = action
            protocol = "ec2" if service == "ec2" else "query"
            params = {k: v[0] for k, v in {**query, **form}.items()}
        else:
            operation = next(
                (
                    op
                    for svc, verb, rx, op in _REST_OPS
                    if svc == service and verb == method and rx.match(path)
                ),
                f"{method} {path}",
            )
            protocol = "rest-xml" if service in ("route53", "cloudfront") else "json"
    return Call(service, region, operation, protocol, params)


def error(
    call: Call, code: str, status: int, message: str
) -> tuple[int, list[tuple[str, str]], bytes]:
    """An error answer botocore parses into ``code``, in the protocol ``call`` speaks."""
    rid = str(uuid.uuid4())
    if call.protocol == "json":
        body = json.dumps({"__type": code, "message": message}).encode()
        return (
            status,
            [
                ("Content-Type", "application/x-amz-json-1.1"),
                ("x-amzn-ErrorType", code),
                ("x-amzn-RequestId", rid),
            ],
            body,
        )
    if call.protocol == "ec2":
        xml = f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>{rid}</RequestID></Response>"
    elif call.protocol == "s3":
        xml = f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{rid}</RequestId></Error>"
    else:
        xml = f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>{rid}</RequestId></ErrorResponse>"
    return status, [("Content-Type", "text/xml"), ("x-amzn-RequestId", rid)], xml.encode()


def throttling(call: Call) -> tuple[str, int]:
    if call.protocol == "json":
        return "ThrottlingException", 400
    if call.protocol == "ec2":
        return "RequestLimitExceeded", 503
    if call.protocol == "s3":
        return "SlowDown", 503
    return "Throttling", 400


def unavailable(call: Call) -> tuple[str, int]:
    if call.protocol == "json":
        return "ServiceUnavailableException", 503
    if call.protocol == "ec2":
        return "Unavailable", 503
    return "ServiceUnavailable", 503
