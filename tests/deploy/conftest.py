"""Fixtures for the deploy runbook: one provisioned stack per module, and a local HTTP server
whose answer a test sets. Images are pushed as CI would with ``sandbox.testing.push``."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from configs.models import Config
from flows.provision import provision
from sandbox.testing import CONFIG
from tests.support import fresh_account


@pytest.fixture(scope="module")
def stack(
    aws_endpoint: str, moto_as_aws: pytest.MonkeyPatch, prefect_harness: None
) -> Iterator[Config]:
    """Both regions provisioned once for the module (the slow part)."""
    cfg = fresh_account(aws_endpoint, moto_as_aws)
    provision(config=CONFIG)
    yield cfg


@pytest.fixture
def http_server() -> Iterator[dict[str, Any]]:
    """A local HTTP server whose answer the test sets."""
    state: dict[str, Any] = {"status": 200}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(state["status"])
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}/healthz"
    yield state
    server.shutdown()
