"""Drive a running sandbox from tests, the demo or a terminal (HTTP; no boto3 needed)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any


class SandboxControl:
    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint.rstrip("/")

    def _call(self, method: str, path: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        body = json.dumps(data).encode() if data is not None else None
        req = urllib.request.Request(
            f"{self.endpoint}/_sandbox/{path}",
            data=body,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            return dict(json.loads(resp.read() or b"{}"))

    def healthy(self) -> bool:
        try:
            return bool(self._call("GET", "health").get("ok"))
        except OSError:
            return False

    def reset(self) -> None:
        """Forget every resource, fault and pending progression."""
        self._call("POST", "reset", {})

    def timings(self, **seconds: float) -> dict[str, float]:
        """Read, or set some of, the progression timings (see ``sandbox.settings.Timings``)."""
        return self._call("POST", "timings", seconds) if seconds else self._call("GET", "timings")

    def set_faults(self, *rules: dict[str, Any], seed: int | None = None) -> dict[str, Any]:
        """Replace the fault rules, e.g. ``{"kind": "throttle", "rate": 0.3}``,
        ``{"kind": "down", "regions": ["us-east-1"], "hang_seconds": 10}``."""
        return self._call("POST", "faults", {"rules": list(rules), "seed": seed})

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    def fail_next_deployment(self, region: str, service: str, mode: str = "fail") -> None:
        """The next deployment of ``service`` fails (circuit breaker) or ``stall``s forever."""
        self._call(
            "POST", "ecs/fail-next-deployment", {"region": region, "service": service, "mode": mode}
        )

    def fail_next_build(self) -> None:
        self._call("POST", "codebuild/fail-next-build", {})

    def set_replica_lag(
        self, seconds: float, identifier: str = "*", *, while_writers_run: bool = False
    ) -> None:
        """Every read replica (or ``identifier``) reports ``seconds`` of ``ReplicaLag``; with
        ``while_writers_run``, only while a service of its source's region wants tasks (writes
        in flight), and 0 once they are all fenced."""
        self._call(
            "POST",
            "rds/replica-lag",
            {"identifier": identifier, "seconds": seconds, "while_writers_run": while_writers_run},
        )

    def dns_answer(self, name: str, rtype: str = "A") -> list[str]:
        """What a resolver gets for ``name``: Route 53's data plane, evaluated from the health
        checks and routing policies (never faulted: resolvers answer when us-east-1 is dark)."""
        return list(
            self._call("POST", "route53/dns-answer", {"name": name, "type": rtype})["answers"]
        )

    def health_check_healthy(self, check_id: str) -> bool:
        """Route 53's view of one health check, as the sandbox evaluates it."""
        return bool(self._call("POST", "route53/health-check", {"id": check_id})["healthy"])

    def stats(self) -> dict[str, Any]:
        """Requests seen and faults injected, keyed ``"<region> <service>:<Operation>"``."""
        return self._call("GET", "stats")
