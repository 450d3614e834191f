"""Prefect, set up for a terminal: before ``prefect`` is imported, decide which API to use.

At 3 a.m. the Prefect server may be down. If ``PREFECT_API_URL`` names a server that does not
answer, the CLI says so and runs on Prefect's temporary local API instead: a runbook never
waits on its orchestrator. Console logging from Prefect itself is turned down so the terminal
shows tierbook's own output; every log still reaches the API (and the UI) as usual.
"""

from __future__ import annotations

import logging
import os
import sys
import urllib.error
import urllib.request

DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_CLI_PROMPT": "false",
}


def api_answers(url: str, timeout_s: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=timeout_s) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def choose_api() -> str | None:
    """Pick the Prefect API; call before ``prefect`` is first imported (its settings are read
    then). Returns a warning to show, if any."""
    if "prefect" in sys.modules:
        raise RuntimeError("choose_api() must run before prefect is imported")
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
    url = os.environ.get("PREFECT_API_URL")
    if url and not api_answers(url):
        os.environ.pop("PREFECT_API_URL", None)
        os.environ["PREFECT_SERVER_ALLOW_EPHEMERAL_MODE"] = "true"
        return f"Prefect server at {url} does not answer; running on a temporary local API."
    return None


def quiet_console() -> None:
    """Keep the terminal for tierbook's own output (see :class:`_OwnOutputOnly`)."""
    _quiet_console()


class _OwnOutputOnly(logging.Filter):
    """Let warnings from steps through (retries, skipped fences); drop Prefect's chatter and
    its failure tracebacks: the CLI prints the error and the timeline itself."""

    NOISY = (
        "prefect.server",
        "prefect._internal",
        "prefect.events",
        "uvicorn",
        "fastapi",
        "prefect.client",
    )

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or record.name.startswith(self.NOISY):
            return False
        if record.name.startswith("prefect") and str(record.msg).startswith(
            ("Finished in state", "Failed to write result")
        ):
            return False
        return not (record.name.startswith("prefect") and record.exc_info)


def _quiet_console() -> None:
    """Filter every Prefect console handler, including ones Prefect makes later on (it
    rebuilds its logging when settings change), by patching the handler class once."""
    from prefect.logging.handlers import PrefectConsoleHandler

    if getattr(PrefectConsoleHandler, "_tierbook_quiet", False):
        return
    own = _OwnOutputOnly()
    original = PrefectConsoleHandler.filter

    def quiet_filter(self: logging.Handler, record: logging.LogRecord) -> bool | logging.LogRecord:
        return own.filter(record) and original(self, record)

    PrefectConsoleHandler.filter = quiet_filter  # type: ignore[method-assign,assignment]
    PrefectConsoleHandler._tierbook_quiet = True  # type: ignore[attr-defined]
    logging.getLogger("prefect._internal").handlers.clear()
    logging.getLogger("prefect._internal").addHandler(logging.NullHandler())
