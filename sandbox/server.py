"""Run the sandbox: in a thread (tests) or as a process (``python -m sandbox``)."""

from __future__ import annotations

import argparse
import logging
import os
import threading
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

from sandbox.app import SandboxApp
from sandbox.settings import Timings

logging.getLogger("werkzeug").setLevel(logging.WARNING)


class SandboxServer:
    """``with SandboxServer(port=0) as sb: sb.endpoint`` — moto plus progressions and faults."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, timings: Timings | None = None
    ) -> None:
        os.environ.setdefault("MOTO_ACM_VALIDATION_WAIT", "0")
        # moto fills every new account's EC2 region with a few hundred public AMIs (and their
        # snapshots) on its first EC2 call: ~0.2 s of the emulator's CPU per account and
        # region that AWS never spends, and no runbook launches an instance.
        os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        self.app = SandboxApp(timings)
        self.host, self.port = host, port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> str:
        from moto.moto_server.werkzeug_app import MotoRequestHandler

        self._server = make_server(
            self.host, self.port, self.app, threaded=True, request_handler=MotoRequestHandler
        )
        self.port = self._server.server_port
        self.app.port = self.port
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="sandbox", daemon=True
        )
        self._thread.start()
        return self.endpoint

    def serve_forever(self) -> None:
        from moto.moto_server.werkzeug_app import MotoRequestHandler

        self._server = make_server(
            self.host, self.port, self.app, threaded=True, request_handler=MotoRequestHandler
        )
        self.port = self._server.server_port
        self.app.port = self.port
        self._server.serve_forever()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> SandboxServer:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox", description="tierbook's embedded AWS"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5055)
    parser.add_argument("--timings", default="default", choices=["default", "fast", "realistic"])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=SECONDS")
    args = parser.parse_args(argv)
    timings = Timings.preset(args.timings)
    timings.update(dict(kv.split("=", 1) for kv in args.set))
    SandboxServer(args.host, args.port, timings).serve_forever()
