"""A screenshot of a finished runbook's page in the Prefect UI, with its timeline artifact.

    .venv/bin/python docs/screenshot.py [--out docs/runbook-page.png] [--keep-tmp]

Needs Debian's Chromium (``apt-get install -y chromium``: /usr/bin/chromium). Everything it
starts lives in a temporary directory and is stopped at the end, also on failure:

1. a Prefect server (UI + API) on a free port, with its own PREFECT_HOME and analytics off;
2. the sandbox (``tierbook sandbox start``) on another free port, with its own TIERBOOK_HOME;
3. ``tierbook preflight`` against both (PREFECT_API_URL, TIERBOOK_AWS_ENDPOINT_URL): a short
   runbook that ends, like every runbook, with its timeline as a Prefect markdown artifact;
4. headless Chromium (driven over its DevTools protocol) opens the flow run's page, picks the
   Artifacts tab, opens the timeline artifact from the run graph into the side panel, and saves
   the PNG.

The Chromium flags are the ones that work on a closed network (no background networking,
component updates or sync) with a fresh profile.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("TIERBOOK_CHROMIUM", "/usr/bin/chromium")
TIERBOOK = [sys.executable, "-m", "cli"]
PREFECT_SERVER = [sys.executable, "-m", "prefect", "server", "start"]
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1440,1100",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def api(url: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read() or b"null")


def wait_until_up(url: str, deadline_s: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the Prefect server exited ({proc.returncode})")
        with suppress(OSError, ValueError):
            api(url)
            return
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer within {deadline_s:.0f} s")


@contextmanager
def prefect_server(env: dict[str, str], log: Path) -> Iterator[str]:
    """A Prefect server in its own process group; yields the UI's base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*PREFECT_SERVER, "--host", "127.0.0.1", "--port", str(port)],
            # The UI asks its API at 127.0.0.1:4200 unless told where it is.
            env={**env, "PREFECT_UI_API_URL": f"{base}/api"},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until_up(f"{base}/api/health", 180, proc)
        yield base
    finally:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextmanager
def sandbox(env: dict[str, str]) -> Iterator[str]:
    """The sandbox in the background (``tierbook sandbox start``); yields its endpoint."""
    port = free_port()
    started = subprocess.run(
        [*TIERBOOK, "sandbox", "start", "--port", str(port), "--timings", "fast", "-o", "json"],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    try:
        yield json.loads(started.stdout)["endpoint"]
    finally:
        subprocess.run([*TIERBOOK, "sandbox", "stop"], env=env, cwd=ROOT, capture_output=True)


def timeline_artifact(base: str) -> dict[str, Any]:
    """The newest timeline artifact the server holds (the runbook's)."""
    found = api(
        f"{base}/api/artifacts/filter",
        {"artifacts": {"type": {"any_": ["markdown"]}}, "sort": "CREATED_DESC", "limit": 10},
    )
    for artifact in found:
        if "-timeline-" in (artifact.get("key") or ""):
            return dict(artifact)
    raise RuntimeError("the runbook left no timeline artifact")


class DevTools:
    """A headless Chromium driven over the DevTools protocol (``websockets`` comes with
    Prefect): open a page, click a tab, capture a PNG. No browser-automation dependency."""

    def __init__(self, profile: Path) -> None:
        port = free_port()
        self.proc = subprocess.Popen(
            [
                CHROMIUM,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--remote-debugging-port={port}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        pages: list[dict[str, Any]] = []
        while not pages:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                raise RuntimeError("Chromium did not open its DevTools port")
            with suppress(OSError, ValueError):
                pages = [p for p in api(f"http://127.0.0.1:{port}/json") if p["type"] == "page"]
            time.sleep(0.2)
        from websockets.sync.client import connect

        self.ws = connect(pages[0]["webSocketDebuggerUrl"], max_size=None)
        self.ids = 0

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        self.ids += 1
        self.ws.send(json.dumps({"id": self.ids, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=60))
            if msg.get("id") == self.ids:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return dict(msg.get("result") or {})

    def js(self, expression: str) -> Any:
        got = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        return (got.get("result") or {}).get("value")

    def wait_for(self, expression: str, what: str, deadline_s: float = 30) -> None:
        deadline = time.monotonic() + deadline_s
        while not self.js(expression):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the page never showed {what}")
            time.sleep(0.25)

    def close(self) -> None:
        with suppress(Exception):
            self.ws.close()
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


# The UI shows the flow run's tabs once the run has loaded; its ``?tab=`` is reset before that.
CLICK_ARTIFACTS_TAB = """(() => {
  const tab = [...document.querySelectorAll('.p-tab, [role=tab], button')]
    .find(e => e.textContent.trim() === 'Artifacts' && e.offsetParent !== null);
  if (tab) tab.click();
  return Boolean(tab);
})()"""
# The run graph is a canvas: [left, top, right, bottom] of the widest one.
GRAPH_BOX = """(() => {
  const r = [...document.querySelectorAll('canvas')].map(c => c.getBoundingClientRect())
    .filter(r => r.width > 300).sort((a, b) => b.width - a.width)[0];
  return r ? [r.left, r.top, r.right, r.bottom] : null;
})()"""
# Artifacts sit on a row just above the graph's bottom edge (the run's state bar).
ARTIFACT_ROW_OFFSETS = (41, 36, 46, 31, 51)


def open_artifact_on_graph(chrome: DevTools, title: str) -> None:
    """Click along the graph's artifact row until the artifact's panel shows ``title``."""
    shown = f"document.body.innerText.includes({json.dumps(title)})"
    chrome.wait_for(GRAPH_BOX, "the run graph")
    time.sleep(1.5)  # the graph lays out its nodes after the canvas appears
    left, _top, right, bottom = chrome.js(GRAPH_BOX)
    for dy in ARTIFACT_ROW_OFFSETS:
        for x in range(int(left) + 20, int(right) - 20, 24):
            for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
                chrome.send(
                    "Input.dispatchMouseEvent",
                    type=kind,
                    x=x,
                    y=int(bottom) - dy,
                    button="left",
                    clickCount=1,
                )
            with suppress(RuntimeError):
                chrome.wait_for(shown, title, deadline_s=0.4)
                return
    raise RuntimeError(f"no artifact on the run graph opened {title!r}")


def screenshot(url: str, out: Path, profile: Path, title: str) -> None:
    """The flow run page at ``url``: its Artifacts tab, and the timeline artifact ``title``
    opened from the run graph in the side panel."""
    chrome = DevTools(profile)
    try:
        chrome.send(
            "Emulation.setDeviceMetricsOverride",
            width=1440,
            height=1100,
            deviceScaleFactor=1,
            mobile=False,
        )
        chrome.send("Page.enable")
        chrome.send("Page.navigate", url=url)
        chrome.wait_for(CLICK_ARTIFACTS_TAB, "the Artifacts tab")
        open_artifact_on_graph(chrome, title)
        time.sleep(1.0)  # let the panel's transition finish
        shot = chrome.send("Page.captureScreenshot", format="png")
        out.write_bytes(base64.b64decode(shot["data"]))
    finally:
        chrome.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "runbook-page.png")
    parser.add_argument("--keep-tmp", action="store_true", help="keep logs and state to look at")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} not found: apt-get install -y chromium", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="tierbook-screenshot-"))
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "TIERBOOK_HOME": str(tmp / "home"),
    }
    env.pop("PREFECT_API_URL", None)
    try:
        with prefect_server(env, tmp / "prefect-server.log") as base, sandbox(env) as endpoint:
            run_env = {
                **env,
                "PREFECT_API_URL": f"{base}/api",
                "TIERBOOK_AWS_ENDPOINT_URL": endpoint,
            }
            subprocess.run(
                [*TIERBOOK, "preflight", "-c", "configs/sandbox.yaml"],
                env=run_env,
                cwd=ROOT,
                check=True,
            )
            artifact = timeline_artifact(base)
            url = f"{base}/runs/flow-run/{artifact['flow_run_id']}"
            args.out.parent.mkdir(parents=True, exist_ok=True)
            # The timeline's heading: "<runbook> · <environment> · <outcome>".
            title = "preflight · shop-sandbox · succeeded"
            screenshot(url, args.out.resolve(), tmp / "chromium", title)
            print(f"{args.out} ← {url} (artifact {artifact['key']})")
    finally:
        if args.keep_tmp:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
