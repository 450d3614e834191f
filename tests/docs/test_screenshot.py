"""``docs/screenshot.py`` end to end: a Prefect server, the sandbox, ``tierbook serve``, two
runbooks, headless Chromium; three PNGs, and nothing left running."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from sandbox.testing import ROOT

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ("runbook-page.png", "run-form.png", "approval-form.png")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's Chromium: apt-get install -y chromium"
    ),
]


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", path
    assert len(data) > 20_000, path  # a page, not a blank
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def processes_mentioning(text: str) -> list[str]:
    """The processes whose command line or environment mentions ``text`` (those readable)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline, environ = (proc / "cmdline").read_bytes(), (proc / "environ").read_bytes()
        except OSError:  # gone, or another user's
            continue
        if text.encode() in cmdline + environ:
            found.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
    return found


def test_the_script_shoots_three_pages_and_leaves_nothing_running(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "screenshot.py"), "--out-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    for name in SHOTS:
        assert png_size(tmp_path / name) == (1440, 1100), name
        assert f"{tmp_path / name} ← http://" in done.stdout, name
    assert "(artifact preflight-timeline-shop-sandbox)" in done.stdout  # the artifact it opened
    assert "/run (deployment failover · shop-sandbox)" in done.stdout  # the custom-run form
    # The approval form was shot while its run was paused; the run was cancelled afterwards.
    shot = re.search(
        r"approval-form\.png ← \S+/runs/flow-run/([-0-9a-f]+) \(flow run state (\w+)\)", done.stdout
    )
    assert shot and shot.group(2) == "Paused", done.stdout[-2000:]
    assert f"failover run {shot.group(1)}: Cancelled" in done.stdout

    # The Prefect server it started no longer answers; nothing it started runs: no server,
    # serve, flow run, sandbox or Chromium has its temporary directory in its arguments or
    # environment.
    base = re.search(r"http://127\.0\.0\.1:\d+", done.stdout).group(0)  # type: ignore[union-attr]
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{base}/api/health", timeout=2)
    workdir = re.search(r"working in (\S+)", done.stdout).group(1)  # type: ignore[union-attr]
    assert "tierbook-screenshot-" in workdir
    assert processes_mentioning(workdir) == []
    assert not Path(workdir).exists()
