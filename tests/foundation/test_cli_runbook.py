"""A runbook from the terminal with no Prefect server: its own output only, exit codes, report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from sandbox.testing import free_port

ROOT = Path(__file__).resolve().parents[2]
NOISE = ("Traceback", "Error flushing", "CancelledError", "| INFO", "Starting temporary server")


def run_cli(
    args: list[str], endpoint: str, tmp_path: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    environ.update(
        TIERBOOK_AWS_ENDPOINT_URL=endpoint,
        TIERBOOK_HOME=str(tmp_path / "home"),
        PREFECT_HOME=str(tmp_path / "prefect"),
        **env,
    )
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=environ,
        timeout=300,
    )


def test_preflight_prints_only_its_own_output(clean_aws: str, tmp_path: Path) -> None:
    done = run_cli(["preflight", "-c", "configs/sandbox.yaml"], clean_aws, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "preflight · shop-sandbox · succeeded" in done.stdout
    assert not [n for n in NOISE if n in done.stderr + done.stdout], done.stderr
    reports = list((tmp_path / "home" / "reports").glob("preflight-shop-sandbox-*.json"))
    assert len(reports) == 1
    report = json.loads(reports[0].read_text())
    assert {s["step"] for s in report["steps"]} == {
        "check account",
        "check us-east-1 answers",
        "check us-west-2 answers",
    }
    assert all(s["outcome"] == "passed" for s in report["steps"])


def test_dead_prefect_server_falls_back_and_json_output(clean_aws: str, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/api"
    done = run_cli(["preflight", "-o", "json"], clean_aws, tmp_path, PREFECT_API_URL=dead)
    assert done.returncode == 0, done.stderr
    assert "does not answer" in done.stderr
    report = json.loads(done.stdout)
    assert report["outcome"] == "succeeded" and len(report["steps"]) == 3


def test_wrong_account_exits_2_and_says_why(clean_aws: str, tmp_path: Path) -> None:
    data: dict[str, Any] = yaml.safe_load((ROOT / "configs" / "sandbox.yaml").read_text())
    data["account_id"] = "999999999999"
    cfg = tmp_path / "wrong.yaml"
    cfg.write_text(yaml.safe_dump(data))
    done = run_cli(["preflight", "-c", str(cfg)], clean_aws, tmp_path)
    assert done.returncode == 2
    assert "999999999999" in done.stderr and "refusing" in done.stderr
    assert not [n for n in NOISE if n in done.stderr], done.stderr
