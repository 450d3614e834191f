"""``docs/screenshot.py`` end to end: a Prefect server, the sandbox, a runbook, headless Chromium."""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from sandbox.testing import ROOT

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's Chromium: apt-get install -y chromium"
    ),
]


def test_the_script_shoots_the_runbook_page_and_leaves_nothing_running(tmp_path: Path) -> None:
    out = tmp_path / "page.png"
    done = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "screenshot.py"), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "preflight-timeline-" in done.stdout  # the artifact it opened
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1440, 1100)
    # The Prefect server it started no longer answers; no Chromium of its profile runs.
    base = re.search(r"http://127\.0\.0\.1:\d+", done.stdout).group(0)  # type: ignore[union-attr]
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{base}/api/health", timeout=2)
    leftovers = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "tierbook-screenshot-" not in leftovers
