"""The sandbox's WSGI app: moto behind a layer that injects faults, makes asynchronous AWS
changes take time, and answers a small control API under ``/_sandbox/``."""

from __future__ import annotations

import io
import json
import random
import re
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict
from typing import Any
from urllib.parse import urlencode

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from sandbox import moto_fixes, sim_elasticache, wire
from sandbox.settings import FaultRule, Timings
from sandbox.sim_ecs import EcsSim
from sandbox.sim_misc import CodeBuildSim, Route53Sim
from sandbox.sim_rds import CHANGES as RDS_CHANGES
from sandbox.sim_rds import RdsSim
from sandbox.sim_route53 import Route53DataPlaneSim

StartResponse = Callable[..., Any]
ECS_TASK_OPS = ("ListTasks", "DescribeTasks", "StopTask")
METRIC_READS = ("GetMetricStatistics", "GetMetricData")
HEALTH_CHECK_ANSWERS = (
    "CreateHealthCheck",
    "UpdateHealthCheck",
    "GetHealthCheck",
    "ListHealthChecks",
)
GATEWAY_TIMEOUT_PAGE = b"<html><body><h1>504 Gateway Time-out</h1></body></html>"


class SandboxApp:
    def __init__(self, timings: Timings | None = None) -> None:
        moto_fixes.apply()
        self.moto = DomainDispatcherApplication(create_backend_app)
        self.timings = timings or Timings()
        self.caches = sim_elasticache.SIM
        self.caches.timings = self.timings
        self.ecs = EcsSim(self.timings)
        self.rds = RdsSim(self.timings, self.ecs.writers)
        self.route53 = Route53Sim(self.timings)
        self.codebuild = CodeBuildSim(self.timings)
        self.dns = Route53DataPlaneSim(self.timings, self.dark)
        self.rules: list[FaultRule] = []
        self.rng = random.Random()
        self.requests: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.port = 0

    # -- WSGI --------------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_sandbox/"):
            return self._control(environ, start_response)
        size = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(size) if size else b""
        environ["wsgi.input"] = io.BytesIO(body)
        call = wire.parse(environ, body)
        with self.lock:
            self.requests[f"{call.region} {call.service}:{call.operation}"] += 1
        fault = self._fault(call)
        if fault is not None:
            return self._reply(start_response, *fault)
        if (
            call.service == "ecs"
            and call.operation in ECS_TASK_OPS
            and self.ecs.owns_tasks(call.region, call.operation, dict(call.params))
        ):
            answer = self.ecs.answer_tasks(call.region, call.operation, dict(call.params))
            return self._reply(
                start_response,
                200,
                [("Content-Type", "application/x-amz-json-1.1")],
                json.dumps(answer).encode(),
            )
        if call.service == "rds" and (why := self.rds.refuse(call.operation, dict(call.params))):
            return self._reply(
                start_response, *wire.error(call, "InvalidGlobalClusterStateFault", 400, why)
            )
        if call.service == "monitoring" and call.operation in METRIC_READS:
            self.refresh_metrics(call.region)  # a metric AWS keeps publishing is fresh when read
        if call.service == "monitoring" and call.operation == "DescribeAlarms":
            self.dns.evaluate_alarms(call.region)
        if call.service == "route53" and call.operation == "TestDNSAnswer":
            xml = self.dns.test_dns_answer(str(environ.get("QUERY_STRING", "")))
            return self._reply(start_response, 200, [("Content-Type", "text/xml")], xml)
        if call.service == "elasticache" and call.operation == "TestFailover":
            return self._reply(start_response, *self._cache_failover(environ, call))
        if call.service == "route53" and call.operation == "GetHealthCheckStatus":
            xml = self.dns.health_check_status(str(environ.get("PATH_INFO", "")))
            return self._reply(start_response, 200, [("Content-Type", "text/xml")], xml)
        status, headers, out = self._moto(environ)
        if status < 300:
            out = self._progress(call, out)
            if call.service == "route53" and call.operation in HEALTH_CHECK_ANSWERS:
                self.dns.remember(call.operation, str(environ.get("PATH_INFO", "")), body, out)
                out = self.dns.inject(out)
            if call.service == "monitoring" and call.operation == "PutMetricData":
                self.dns.evaluate_alarms(call.region)
        return self._reply(start_response, status, headers, out)

    def _cache_failover(
        self, environ: dict[str, Any], call: wire.Call
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """ElastiCache ``TestFailover``, which moto lacks: AWS answers with the replication
        group (moto's own description of it) and fails its primary over in the background;
        here the group stays available, which is where a real failover ends."""
        group = str(call.params.get("ReplicationGroupId", ""))
        body = urlencode(
            {
                "Action": "DescribeReplicationGroups",
                "Version": "2015-02-02",
                "ReplicationGroupId": group,
            }
        ).encode()
        status, headers, out = self._moto(
            {**environ, "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))}
        )
        if status >= 300:  # moto's not-found answer, in protocol
            return status, headers, out
        xml = out.decode("utf-8")
        xml = xml.replace("DescribeReplicationGroups", "TestFailover")
        # the list's one element becomes the answer's ReplicationGroup
        opened = r"<ReplicationGroups>\s*<(?:member|ReplicationGroup)>"
        closed = r"</(?:member|ReplicationGroup)>\s*</ReplicationGroups>"
        xml = re.sub(opened, "<ReplicationGroup>", xml, count=1)
        xml = re.sub(closed, "</ReplicationGroup>", xml, count=1)
        return status, headers, xml.encode("utf-8")

    def dark(self, region: str, service: str) -> bool:
        """Does ``region`` not answer ``service`` at all (a ``down`` rule hitting every call)?"""
        with self.lock:
            return any(
                r.kind == "down"
                and r.rate >= 1.0
                and not r.operations
                and r.matches(service, region, "")
                for r in self.rules
            )

    def _moto(self, environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        captured: dict[str, Any] = {}

        def capture(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], None]:
            captured["status"], captured["headers"] = int(status.split()[0]), headers
            return lambda _data: None

        chunks = self.moto(environ, capture)
        try:
            out = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close:
                close()
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        return captured["status"], headers, out

    @staticmethod
    def _reply(
        start_response: StartResponse, status: int, headers: list[tuple[str, str]], body: bytes
    ) -> list[bytes]:
        reason = {
            200: "OK",
            400: "Bad Request",
            403: "Forbidden",
            404: "Not Found",
            500: "Internal Server Error",
            503: "Service Unavailable",
            504: "Gateway Timeout",
        }.get(status, "Status")
        start_response(f"{status} {reason}", [*headers, ("Content-Length", str(len(body)))])
        return [body]

    # -- faults ------------------------------------------------------------------------------
    def _fault(self, call: wire.Call) -> tuple[int, list[tuple[str, str]], bytes] | None:
        with self.lock:
            rules = [r for r in self.rules if r.matches(call.service, call.region, call.operation)]
            hits = [r for r in rules if self.rng.random() < r.rate]
        for rule in hits:
            if rule.kind == "latency":
                time.sleep(rule.latency_ms / 1000.0)
                continue
            with self.lock:
                self.faults[f"{rule.kind} {call.service}:{call.operation}"] += 1
            if rule.kind == "down":
                time.sleep(rule.hang_seconds)
                # A gateway's page, as a load balancer in front of a dead service answers it
                # (botocore reads it as a bare 504, never as the service's own error).
                return 504, [("Content-Type", "text/html")], GATEWAY_TIMEOUT_PAGE
            if rule.kind == "throttle":
                code, status = wire.throttling(call)
            else:
                default_code, default_status = wire.unavailable(call)
                code, status = rule.code or default_code, rule.status or default_status
            return wire.error(call, code, status, f"sandbox fault: {rule.kind}")
        return None

    # -- progressions ------------------------------------------------------------------------
    def _progress(self, call: wire.Call, out: bytes) -> bytes:
        params = dict(call.params)
        if call.service == "ecs" and call.operation in (
            "CreateService",
            "UpdateService",
            "DescribeServices",
            "DeleteService",
        ):
            answer = json.loads(out or b"{}")
            return json.dumps(
                self.ecs.handle(call.region, call.operation, params, answer), default=str
            ).encode()
        if call.service == "rds":
            if call.operation in RDS_CHANGES:
                self.rds.record(call.region, call.operation, params)
            if call.operation == "DescribeDBInstances":
                self.rds.publish_lag(call.region)
            return self.rds.rewrite(call.region, out)
        if call.service == "route53" and call.operation in (
            "ChangeResourceRecordSets",
            "GetChange",
        ):
            return self.route53.rewrite(call.operation, out)
        if call.service == "codebuild" and call.operation in ("StartBuild", "BatchGetBuilds"):
            answer = json.loads(out or b"{}")
            if call.operation == "StartBuild":
                answer["build"] = self.codebuild.started(call.region, params, answer)
            else:
                answer = self.codebuild.described(answer)
            return json.dumps(answer, default=str).encode()
        return out

    def refresh_metrics(self, region: str) -> None:
        self.rds.publish_lag(region)

    # -- control API -------------------------------------------------------------------------
    def _control(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        path = environ["PATH_INFO"].removeprefix("/_sandbox/").strip("/")
        method = environ.get("REQUEST_METHOD", "GET")
        size = int(environ.get("CONTENT_LENGTH") or 0)
        data = json.loads(environ["wsgi.input"].read(size) or b"{}") if size else {}
        try:
            result = self._command(method, path, data)
        except (ValueError, KeyError, TypeError) as exc:
            return self._reply(
                start_response,
                400,
                [("Content-Type", "application/json")],
                json.dumps({"error": str(exc)}).encode(),
            )
        return self._reply(
            start_response, 200, [("Content-Type", "application/json")], json.dumps(result).encode()
        )

    def _command(self, method: str, path: str, data: dict[str, Any]) -> dict[str, Any]:
        if path == "health":
            return {"ok": True}
        if path == "timings":
            if method == "POST":
                self.timings.update(data)
            return self.timings.to_dict()
        if path == "faults":
            if method == "POST":
                rules = [FaultRule.from_dict(r) for r in data.get("rules", [])]
                with self.lock:
                    self.rules = rules
                    self.rng = random.Random(data.get("seed"))
            elif method == "DELETE":
                with self.lock:
                    self.rules = []
            with self.lock:
                return {"rules": [asdict(r) for r in self.rules]}
        if path == "ecs/fail-next-deployment":
            self.ecs.fail_next(data["region"], data["service"], data.get("mode", "fail"))
            return {"ok": True}
        if path == "codebuild/fail-next-build":
            self.codebuild.fail_next = True
            return {"ok": True}
        if path == "rds/replica-lag":
            self.rds.set_lag(
                data.get("identifier", "*"),
                float(data["seconds"]),
                while_writers_run=bool(data.get("while_writers_run")),
            )
            return {"ok": True}
        if path == "route53/dns-answer":
            return {
                "answers": self.dns.answer_any_zone(str(data["name"]), str(data.get("type", "A")))
            }
        if path == "route53/health-check":
            return {"healthy": self.dns.healthy(str(data["id"]))}
        if path == "stats":
            with self.lock:
                return {"requests": dict(self.requests), "faults": dict(self.faults)}
        if path == "reset":
            self.reset()
            return {"ok": True}
        raise KeyError(f"no sandbox control {method} /_sandbox/{path}")

    def reset(self) -> None:
        if self.port:
            req = urllib.request.Request(
                f"http://127.0.0.1:{self.port}/moto-api/reset", method="POST"
            )
            urllib.request.urlopen(req, timeout=30).read()
        for sim in (self.ecs, self.rds, self.route53, self.codebuild, self.dns, self.caches):
            sim.reset()
        with self.lock:
            self.rules = []
            self.requests.clear()
            self.faults.clear()
