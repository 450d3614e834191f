"""The README's demo runs to the end and leaves no sandbox process behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sandbox.testing import ROOT, free_port


def test_demo_runs_every_chapter_and_stops_the_sandbox(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "TIERBOOK_AWS"))}
    env.update(TIERBOOK_HOME=str(tmp_path / "home"), PREFECT_HOME=str(tmp_path / "prefect"))
    done = subprocess.run(
        [sys.executable, "-m", "cli", "demo", "--port", str(free_port())],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=1200,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "demo finished" in done.stdout and "sandbox stopped" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    assert not (tmp_path / "home" / "sandbox.json").exists()
    reports = {
        p.name.split("-shop-sandbox-")[0] for p in (tmp_path / "home" / "reports").glob("*.json")
    }
    assert {"preflight", "provision", "redrive-demo", "failover"} <= reports
    assert "rto_seconds" in done.stdout and "rpo_seconds" in done.stdout
    assert {"preflight", "deploy", "redrive-demo"} <= reports
    assert "1.1.0" in done.stdout
    # the whole story: every runbook, then a summary table, timings stated
    assert {
        "rollback",
        "audit",
        "drill-readiness",
        "backup-drill",
        "game-day",
        "failback",
        "destroy",
    } <= reports
    assert "the demo, runbook by runbook" in done.stdout
    assert "TIERBOOK_POLL_SCALE=" in done.stdout and "'fast'" in done.stdout
    assert "▶ " in done.stdout  # live progress
