"""``tierbook automations``: the alerts exist once however often it runs, and one fires into
the webhook when its event arrives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from sandbox.testing import ROOT
from sandbox.testing.prefect import SERVER_TEST_TIMEOUT_S, PrefectServer, running_server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(SERVER_TEST_TIMEOUT_S)]

CMD = [sys.executable, "-m", "cli", "automations", "-c", "configs/sandbox.yaml"]


class Receiver(HTTPServer):
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        assert isinstance(self.server, Receiver)
        self.server.received.append(json.loads(body or b"{}"))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


@pytest.fixture
def alerting_server(tmp_path: Path) -> Iterator[PrefectServer]:
    """A Prefect server that evaluates automations (the triggers and actions services)."""
    with running_server(tmp_path, services=("triggers",)) as server:
        yield server


def automations_cmd(server: PrefectServer, webhook: str) -> str:
    out = subprocess.run(
        [*CMD, "--webhook", webhook],
        cwd=ROOT,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")},
            "PREFECT_API_URL": server.api,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PYTHONPATH": str(ROOT),
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_automations_are_made_once_and_a_failed_readiness_check_reaches_the_webhook(
    alerting_server: PrefectServer, receiver: Receiver
) -> None:
    first = automations_cmd(alerting_server, receiver.url)
    assert first.count("created") == 4, first
    again = automations_cmd(alerting_server, receiver.url)
    assert again.count("unchanged") == 4, again
    r = alerting_server.client.post("/automations/filter", json={})
    r.raise_for_status()
    names = sorted(a["name"] for a in r.json())
    assert names == sorted(
        f"tierbook · shop-sandbox · {what}"
        for what in (
            "readiness check failed",
            "runbook failed",
            "region move started",
            "region move finished",
        )
    )

    event = {
        "id": str(uuid.uuid4()),
        "occurred": datetime.now(UTC).isoformat(),
        "event": "tierbook.readiness.check-failed",
        "resource": {
            "prefect.resource.id": "tierbook.env.shop-sandbox.readiness.replica-lag",
            "prefect.resource.name": "shop-sandbox replica-lag",
        },
        "related": [
            {
                "prefect.resource.id": "tierbook.env.shop-sandbox",
                "prefect.resource.role": "environment",
            }
        ],
        "payload": {"check": "replica-lag"},
    }
    deadline = time.monotonic() + 180
    while not receiver.received and time.monotonic() < deadline:
        # The triggers service loads new automations on its own clock: send until one fires.
        alerting_server.client.post("/events", json=[{**event, "id": str(uuid.uuid4())}])
        time.sleep(2)
    assert receiver.received, "no notification reached the webhook"
    text = receiver.received[0]["text"]
    assert "[shop-sandbox] a DR readiness check turned to fail" in text
    assert "tierbook.readiness.check-failed" in text


def test_an_automation_read_back_with_its_sets_in_another_order_is_unchanged() -> None:
    from prefect.events.schemas.automations import AutomationCore

    from configs import resolve_config
    from deployments.automations import automation, same, specs

    cfg = resolve_config(str(ROOT / "configs" / "sandbox.yaml"))
    for spec in specs(cfg):
        wanted = automation(spec, cfg, uuid.uuid4())
        stored = wanted.model_dump(mode="json")
        stored["trigger"]["expect"] = list(reversed(stored["trigger"]["expect"]))
        assert same(AutomationCore.model_validate(stored), wanted), spec.name
