"""Screenshots of the Prefect UI for the docs: a finished runbook's page with its timeline
artifact, a deployment's custom-run form, and a paused run's approval form.

    .venv/bin/python docs/screenshot.py [--out-dir docs/] [--out FILE] [--keep-tmp]

Saves ``runbook-page.png`` (or ``--out``), ``run-form.png`` and ``approval-form.png`` in
``--out-dir``. Needs Debian's Chromium (``apt-get install -y chromium``: /usr/bin/chromium).
Everything it starts lives in a temporary directory and is stopped at the end, also on failure:

1. a Prefect server (UI + API) on a free port, with its own PREFECT_HOME, analytics and the
   scheduler off (the drills' cron schedules start nothing while it runs);
2. the sandbox (``tierbook sandbox start``) on another free port, with its own TIERBOOK_HOME;
3. ``tierbook serve -c configs/sandbox.yaml`` against both: every runbook's deployment;
4. ``tierbook preflight`` against both: a short runbook that ends, like every runbook, with its
   timeline as a Prefect markdown artifact;
5. ``tierbook provision`` and the images in both regions' repositories (what CI's registry
   replication leaves), so that the failover's readiness checks pass;
6. a failover run started from its deployment through the API, which pauses for its typed
   approval; once shot, it is cancelled through the API.

Headless Chromium (driven over its DevTools protocol) opens, in turn, the preflight's flow
run page (Artifacts tab, the timeline artifact opened from the run graph into the side panel),
the failover deployment's custom-run form, and the paused failover's page with its Resume
button clicked (the approval form in its modal), and saves a PNG of each.

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
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("TIERBOOK_CHROMIUM", "/usr/bin/chromium")
TIERBOOK = [sys.executable, "-m", "cli"]
PREFECT_SERVER = [sys.executable, "-m", "prefect", "server", "start"]
CONFIG = "configs/sandbox.yaml"
# The deployment shot (deployments/catalog.py names them "<runbook> · <environment>").
FAILOVER = ("failover", "failover · shop-sandbox")
# What the sandbox's images look like once CI has pushed them to both regions.
PUSH_IMAGES = (
    "from configs import resolve_config; from sandbox.testing import push_images; "
    f"push_images(resolve_config({CONFIG!r}))"
)
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
    """A JSON call to the Prefect API. A 503 (SQLite busy with another writer: the server
    answers "database is locked" so) is retried, as Prefect's own client does."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    for attempt in range(10):
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            if exc.code not in (429, 503) or attempt == 9:
                raise
        time.sleep(0.5 * (attempt + 1))


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


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group ``proc`` leads (its children too), SIGKILL after 30 s."""
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextmanager
def prefect_server(env: dict[str, str], log: Path) -> Iterator[str]:
    """A Prefect server in its own process group; yields the UI's base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*PREFECT_SERVER, "--host", "127.0.0.1", "--port", str(port)],
            env={
                **env,
                # The UI asks its API at 127.0.0.1:4200 unless told where it is.
                "PREFECT_UI_API_URL": f"{base}/api",
                # No drill's cron schedule starts a run while the screenshots are taken.
                "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
            },
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until_up(f"{base}/api/health", 180, proc)
        yield base
    finally:
        stop(proc)


@contextmanager
def served(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``tierbook serve`` in the background, in its own process group (its flow runs'
    processes with it)."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*TIERBOOK, "serve", "-c", CONFIG],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        stop(proc)


def logged(cmd: list[str], env: dict[str, str], log: Path) -> None:
    """Run ``cmd`` to its end with its output in ``log``; the log's tail if it fails."""
    with log.open("wb") as out:
        done = subprocess.run(cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{' '.join(cmd[2:])} exited {done.returncode}:\n{tail}")


def deployment_id(base: str, flow: str, name: str, proc: subprocess.Popen[bytes]) -> str:
    """The id of deployment ``flow``/``name``, once ``tierbook serve`` has registered it."""
    url = f"{base}/api/deployments/name/{urllib.parse.quote(flow)}/{urllib.parse.quote(name)}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"tierbook serve exited ({proc.returncode})")
        with suppress(urllib.error.HTTPError):
            return str(api(url)["id"])
        time.sleep(1)
    raise RuntimeError(f"deployment {flow}/{name} never appeared")


def wait_state(base: str, run_id: str, types: set[str], deadline_s: float) -> dict[str, Any]:
    """The flow run's state once its type is one of ``types``."""
    deadline = time.monotonic() + deadline_s
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        state = api(f"{base}/api/flow_runs/{run_id}")["state"] or {}
        if state.get("type") in types:
            return state
        time.sleep(1)
    raise RuntimeError(f"flow run {run_id} stuck in {state.get('name')}")


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

    def wait_for(self, expression: str, what: str, deadline_s: float = 30) -> Any:
        """The value of ``expression`` once it is truthy."""
        deadline = time.monotonic() + deadline_s
        while not (value := self.js(expression)):
            if time.monotonic() > deadline:
                shown = self.js("document.body.innerText.slice(0, 600)")
                raise RuntimeError(f"the page never showed {what}; it showed: {shown!r}")
            time.sleep(0.25)
        return value

    def mouse(self, kind: str, x: int, y: int, **params: Any) -> None:
        self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, **params)

    def click(self, x: int, y: int) -> None:
        self.mouse("mouseMoved", x, y)
        for kind in ("mousePressed", "mouseReleased"):
            self.mouse(kind, x, y, button="left", clickCount=1)

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
# The graph's cursor: "pointer" while the mouse is over one of its nodes (an artifact's pill).
GRAPH_CURSOR = """(() => {
  const c = [...document.querySelectorAll('canvas')]
    .filter(c => c.getBoundingClientRect().width > 300)
    .sort((a, b) => b.getBoundingClientRect().width - a.getBoundingClientRect().width)[0];
  return c ? c.style.cursor : null;
})()"""
# What a click on a node of the artifact row opened: the side panel with the title sought,
# the popover of artifacts too close together to draw apart, or something else.
CLICKED = """(() => {
  if (document.body.innerText.includes(%s)) return 'shown';
  if (document.querySelector('.flow-run-graph-artifacts-popover__label')) return 'cluster';
  if (document.querySelector('.flow-run-graph-popover, .flow-run-graph-artifact-drawer__header'))
    return 'other';
  return null;
})()"""
# Artifacts sit on a row just above the graph's bottom edge (the run's state bar).
ARTIFACT_ROW_OFFSETS = (41, 36, 46, 31, 51)


def open_artifact_on_graph(chrome: DevTools, title: str) -> None:
    """Open the artifact whose side panel shows ``title`` from the graph's artifact row.

    The mouse moves along the row from the right (the timeline is a run's last artifact)
    and clicks each node it comes over, then waits for what opens: the panel loads the
    artifact from the API first (seconds, on a loaded machine). Artifacts created close
    together (a short run) share one node, a popover that links elsewhere: the graph is
    then zoomed in around it (the mouse wheel) until they are drawn apart."""
    clicked = CLICKED % json.dumps(title)
    chrome.wait_for(GRAPH_BOX, "the run graph")
    time.sleep(1.5)  # the graph lays out its nodes after the canvas appears
    left, top, right, bottom = (int(v) for v in chrome.js(GRAPH_BOX))
    for _zoom in range(4):
        cluster = None
        for dy in ARTIFACT_ROW_OFFSETS:
            y, on_node = bottom - dy, False
            for x in range(right - 20, left + 20, -12):
                chrome.mouse("mouseMoved", x, y)
                over = chrome.js(GRAPH_CURSOR) == "pointer"
                if over and not on_node:
                    chrome.click(x, y)
                    with suppress(RuntimeError):
                        opened = chrome.wait_for(clicked, "a click's result", deadline_s=15)
                        if opened == "shown":
                            return
                        if opened == "cluster":
                            cluster = (x, y)
                            break
                on_node = over
            if cluster:
                break
        if not cluster:
            break
        chrome.click(left + 10, top + 10)  # an empty corner: the popover closes
        chrome.mouse("mouseMoved", *cluster)
        chrome.mouse("mouseWheel", *cluster, deltaX=0, deltaY=-400)
        time.sleep(1.5)  # the zoom eases in
    raise RuntimeError(f"no artifact on the run graph opened {title!r}")


# The custom-run form has loaded once its submit button and the environment field show.
RUN_FORM_SHOWN = """(() => {
  const text = document.body.innerText;
  return text.includes('environment') && [...document.querySelectorAll('button')]
    .some(b => b.textContent.trim() === 'Submit' && b.getClientRects().length > 0);
})()"""
# The paused run's Resume button, in the page's header (not a menu item).
CLICK_RESUME = """(() => {
  const button = [...document.querySelectorAll('button')]
    .find(b => b.textContent.trim() === 'Resume' && b.getClientRects().length > 0);
  if (button) button.click();
  return Boolean(button);
})()"""
# The resume modal, once it shows the pause's form: its description and both typed fields.
APPROVAL_FORM_SHOWN = """(() => {
  const modal = document.querySelector('.p-modal');
  const text = modal ? modal.innerText : '';
  return text.includes('Approval needed') && text.includes('Environment')
    && text.includes('Reason');
})()"""


def open_page(chrome: DevTools, url: str) -> None:
    chrome.send("Page.navigate", url=url)


def capture(chrome: DevTools, out: Path) -> None:
    shot = chrome.send("Page.captureScreenshot", format="png")
    out.write_bytes(base64.b64decode(shot["data"]))


def shoot_runbook_page(chrome: DevTools, url: str, out: Path, title: str) -> None:
    """The flow run page at ``url``: its Artifacts tab, and the timeline artifact ``title``
    opened from the run graph in the side panel."""
    open_page(chrome, url)
    chrome.wait_for(CLICK_ARTIFACTS_TAB, "the Artifacts tab")
    open_artifact_on_graph(chrome, title)
    time.sleep(1.0)  # let the panel's transition finish
    capture(chrome, out)


def shoot_run_form(chrome: DevTools, url: str, out: Path) -> None:
    """A deployment's custom-run form at ``url``, as the UI's "Custom run" opens it."""
    open_page(chrome, url)
    chrome.wait_for(RUN_FORM_SHOWN, "the custom-run form")
    time.sleep(1.0)  # let the layout settle
    capture(chrome, out)


def shoot_approval_form(chrome: DevTools, url: str, out: Path) -> None:
    """The paused flow run's page at ``url`` with its Resume button clicked: the pause's
    form in the resume modal."""
    open_page(chrome, url)
    chrome.wait_for(CLICK_RESUME, "the Resume button")
    chrome.wait_for(APPROVAL_FORM_SHOWN, "the approval form")
    time.sleep(1.0)  # let the modal's transition finish
    capture(chrome, out)


@contextmanager
def chromium(profile: Path) -> Iterator[DevTools]:
    """Headless Chromium at the screenshots' size; closed at the end, also on failure."""
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
        yield chrome
    finally:
        chrome.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=ROOT / "docs", help="where the PNGs go")
    parser.add_argument(
        "--out", type=Path, help="the runbook page (default: OUT_DIR/runbook-page.png)"
    )
    parser.add_argument("--keep-tmp", action="store_true", help="keep logs and state to look at")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} not found: apt-get install -y chromium", file=sys.stderr)
        return 2
    out_dir: Path = args.out_dir.resolve()
    page_png: Path = (args.out or out_dir / "runbook-page.png").resolve()
    form_png, approval_png = out_dir / "run-form.png", out_dir / "approval-form.png"
    for png in (page_png, form_png, approval_png):
        png.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="tierbook-screenshot-"))
    print(f"working in {tmp}", flush=True)
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "TIERBOOK_HOME": str(tmp / "home"),
    }
    env.pop("PREFECT_API_URL", None)
    try:
        with prefect_server(env, tmp / "prefect-server.log") as base, sandbox(env) as endpoint:
            print(f"Prefect server {base}", flush=True)
            run_env = {
                **env,
                "PREFECT_API_URL": f"{base}/api",
                "TIERBOOK_AWS_ENDPOINT_URL": endpoint,
            }
            with served(run_env, tmp / "serve.log") as serve:
                shoot(base, run_env, serve, tmp, page_png, form_png, approval_png)
    finally:
        if args.keep_tmp:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


def shoot(
    base: str,
    env: dict[str, str],
    serve: subprocess.Popen[bytes],
    tmp: Path,
    page_png: Path,
    form_png: Path,
    approval_png: Path,
) -> None:
    """The three screenshots, against the server at ``base`` that ``serve`` serves."""
    subprocess.run([*TIERBOOK, "preflight", "-c", CONFIG], env=env, cwd=ROOT, check=True)
    artifact = timeline_artifact(base)
    page_url = f"{base}/runs/flow-run/{artifact['flow_run_id']}"
    # A stack the failover's readiness passes: provisioned, its images in both regions.
    logged([*TIERBOOK, "provision", "-c", CONFIG], env, tmp / "provision.log")
    logged([sys.executable, "-c", PUSH_IMAGES], env, tmp / "push-images.log")
    failover = deployment_id(base, *FAILOVER, serve)
    form_url = f"{base}/deployments/deployment/{failover}/run"
    # A run as the form would start it (its defaults), paused for its typed approval.
    run_id = api(f"{base}/api/deployments/{failover}/create_flow_run", {"parameters": {}})["id"]
    paused = wait_state(base, run_id, {"PAUSED", "COMPLETED", "FAILED", "CRASHED"}, 300)
    if paused["type"] != "PAUSED":
        raise RuntimeError(f"the failover run ended {paused['name']} instead of pausing")
    approval_url = f"{base}/runs/flow-run/{run_id}"
    try:
        with chromium(tmp / "chromium") as chrome:
            # The timeline's heading: "<runbook> · <environment> · <outcome>".
            title = "preflight · shop-sandbox · succeeded"
            shoot_runbook_page(chrome, page_url, page_png, title)
            print(f"{page_png} ← {page_url} (artifact {artifact['key']})", flush=True)
            shoot_run_form(chrome, form_url, form_png)
            print(f"{form_png} ← {form_url} (deployment {FAILOVER[1]})", flush=True)
            shoot_approval_form(chrome, approval_url, approval_png)
            shot_in = api(f"{base}/api/flow_runs/{run_id}")["state"]["name"]
            print(f"{approval_png} ← {approval_url} (flow run state {shot_in})", flush=True)
    finally:
        cancel(base, run_id)


def cancel(base: str, run_id: str) -> None:
    """Nothing left waiting for an approval: the run cancelled through the API, which the
    runner answers by stopping the run's process. Should that fail, stopping ``tierbook
    serve`` stops the process all the same."""
    try:
        api(
            f"{base}/api/flow_runs/{run_id}/set_state",
            {"state": {"type": "CANCELLING", "name": "Cancelling"}, "force": True},
        )
        done = wait_state(base, run_id, {"CANCELLED", "COMPLETED", "FAILED", "CRASHED"}, 120)
        print(f"failover run {run_id}: {done['name']}", flush=True)
    except (OSError, RuntimeError) as exc:
        print(f"could not cancel failover run {run_id}: {exc}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
