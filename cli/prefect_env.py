"""Prefect, set up for a terminal: before ``prefect`` is imported, decide which API to use.

At 3 a.m. the Prefect server may be down. If ``PREFECT_API_URL`` names a server that does not
answer, the CLI says so and runs on Prefect's temporary local API instead: a runbook never
waits on its orchestrator. Console logging from Prefect itself is turned down so the terminal
shows tierbook's own output; every log still reaches the API (and the UI) as usual.
"""

from __future__ import annotations

import logging
import os
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


def prepare(*, quiet: bool = True) -> str | None:
    """Pick the Prefect API and quiet its console. Returns a warning to show, if any."""
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
    warning = None
    url = os.environ.get("PREFECT_API_URL")
    if url and not api_answers(url):
        os.environ.pop("PREFECT_API_URL", None)
        os.environ["PREFECT_SERVER_ALLOW_EPHEMERAL_MODE"] = "true"
        warning = f"Prefect server at {url} does not answer; running on a temporary local API."
    if quiet:
        _quiet_console()
    return warning


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
    import prefect.logging.configuration as conf

    conf.setup_logging()
    own = _OwnOutputOnly()
    for name in ("", "uvicorn", "fastapi"):
        for handler in logging.getLogger(name).handlers:
            if type(handler).__name__ == "PrefectConsoleHandler":
                handler.addFilter(own)
    logging.getLogger("prefect._internal").handlers.clear()
    logging.getLogger("prefect._internal").addHandler(logging.NullHandler())
