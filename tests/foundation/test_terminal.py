"""The 3 a.m. terminal: refusals before Prefect starts, only tierbook's own lines on the
terminal (success, refusal, failure), live progress, an endpoint that does not answer, and
Prefect's state and logs under TIERBOOK_HOME."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox.testing import free_port

ROOT = Path(__file__).resolve().parents[2]
PREP = 2  # the terminal's own steps before the runbook's: the local Prefect API, the AWS probe

# Anything Prefect would print: its log format, its logger names, its banner, tracebacks.
PREFECT_LINE = re.compile(
    r"\| (DEBUG|INFO|WARNING|ERROR|CRITICAL) +\||prefect\.|EventsWorker|Traceback|"
    r"Starting temporary server|docs\.prefect\.io|telemetry|uvicorn|Finished in state|"
    r"Flow run '|Task run '"
)


def run_cli(
    args: list[str], endpoint: str, home: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "TIERBOOK_"))}
    environ.update(
        TIERBOOK_AWS_ENDPOINT_URL=endpoint,
        TIERBOOK_HOME=str(home),
        TIERBOOK_POLL_SCALE="0.02",
        HOME=str(home.parent),  # ~/.prefect would land here
        **env,
    )
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=environ,
        timeout=600,
    )


def prefect_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in (done.stdout + done.stderr).splitlines() if PREFECT_LINE.search(line)]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "tierbook"


def test_bad_config_is_refused_without_starting_prefect(home: Path) -> None:
    for args in (["preflight"], ["provision", "--plan"], ["failover", "--plan"], ["audit"]):
        done = run_cli([*args, "-c", "no/such.yaml"], "http://127.0.0.1:1", home)
        assert done.returncode == 2, done.stderr
        assert "no/such.yaml" in done.stderr and "cannot read" in done.stderr
        assert not prefect_lines(done)
    assert not (home / "prefect" / "prefect.db").exists()  # no Prefect API was started


def test_bad_option_values_are_refused(home: Path, tmp_path: Path) -> None:
    done = run_cli(["deploy", "--service", "web"], "http://127.0.0.1:1", home)
    assert done.returncode == 2 and "--tag" in done.stderr
    help_text = run_cli(["deploy", "--help"], "http://127.0.0.1:1", home).stdout
    assert re.search(r"--tag.*required", help_text, re.S)
    done = run_cli(["drill", "backup", "--source", "yesterday"], "http://127.0.0.1:1", home)
    assert done.returncode == 2 and "new or automated" in done.stderr
    assert not (home / "prefect" / "prefect.db").exists()


def test_help_says_what_is_safe_to_run_again(home: Path) -> None:
    for args in (
        ["provision"],
        ["deploy"],
        ["rollback"],
        ["failover"],
        ["failback"],
        ["redrive"],
        ["destroy"],
        ["drill", "gameday"],
    ):
        done = run_cli([*args, "--help"], "http://127.0.0.1:1", home)
        assert done.returncode == 0, done.stderr
        text = " ".join(done.stdout.split())
        assert "re-run" in text or "Re-run" in text, (args, text[-400:])


def test_sandbox_not_running_is_reported_with_the_fix(home: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    done = run_cli(["failover", "--plan"], dead, home)
    assert done.returncode != 0
    assert "tierbook sandbox start" in done.stderr
    assert "retrying" not in done.stdout + done.stderr
    assert not prefect_lines(done)


def test_success_shows_progress_and_only_tierbook_lines(clean_aws: str, home: Path) -> None:
    done = run_cli(["preflight"], clean_aws, home)
    assert done.returncode == 0, done.stderr
    assert not prefect_lines(done), prefect_lines(done)
    # each step appears when it starts and when it ends, with outcome and seconds
    assert re.search(r"▶ check account", done.stdout)
    assert re.search(r"✓ check account: passed \(\d+\.\ds\)", done.stdout)
    assert done.stdout.index("▶ check account") < done.stdout.index("✓ check account")
    # While Prefect loads, the terminal shows its own steps: the local API, the AWS probe.
    out = done.stdout
    assert (
        out.index("▶ start a local Prefect API")
        < out.index("▶ check AWS answers")
        < out.index("✓ check AWS answers: passed")
        < out.index("▶ check account")
    )
    assert re.search(r"✓ check AWS answers: passed \(\d+\.\ds\) — account 123456789012", out)
    assert out.index("✓ start a local Prefect API: passed") < out.index("▶ check account")
    # Prefect's state and logs live under TIERBOOK_HOME, not ~/.prefect
    assert (home / "prefect" / "prefect.db").exists()
    assert (home / "logs" / "prefect.log").exists()
    assert not (home.parent / ".prefect").exists()


def test_json_output_is_only_json(clean_aws: str, home: Path) -> None:
    done = run_cli(["provision", "--plan", "-o", "json"], clean_aws, home)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["runbook"] == "provision" and report["changes"]
    assert not prefect_lines(done), prefect_lines(done)


def test_refusal_and_failure_show_only_tierbook_lines(
    clean_aws: str, home: Path, tmp_path: Path
) -> None:
    data: dict[str, Any] = yaml.safe_load((ROOT / "configs" / "sandbox.yaml").read_text())
    data["account_id"] = "999999999999"
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(yaml.safe_dump(data))
    refused = run_cli(["provision", "-c", str(wrong)], clean_aws, home)
    assert refused.returncode == 2 and "999999999999" in refused.stderr
    assert not prefect_lines(refused), prefect_lines(refused)

    # the sandbox answers, but every EC2 call fails for good: the runbook fails
    from sandbox.control import SandboxControl

    SandboxControl(clean_aws).set_faults(
        {"kind": "error", "services": ["ec2"], "code": "UnauthorizedOperation", "status": 403}
    )
    try:
        failed = run_cli(["provision"], clean_aws, home)
    finally:
        SandboxControl(clean_aws).clear_faults()
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "UnauthorizedOperation" in failed.stdout + failed.stderr
    assert "✗" in failed.stdout
    assert not prefect_lines(failed), prefect_lines(failed)


# -- Ctrl-C in a real terminal ----------------------------------------------------------------
def _children(pid: int) -> set[int]:
    """Every descendant of ``pid`` (from /proc), the local Prefect API included."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        for path in Path("/proc").glob(f"{parent}/task/*/children"):
            try:
                kids = {int(k) for k in path.read_text().split()}
            except OSError:
                continue
            todo += list(kids - found)
            found |= kids
    return found


def _alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running, after giving them a moment to finish exiting."""
    import time

    alive: set[int] = set(pids)
    for _ in range(50):
        alive = set()
        for pid in pids:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().split()[2]
            except OSError:
                continue
            if state != "Z":
                alive.add(pid)
        if not alive:
            break
        time.sleep(0.1)
    return alive


def interrupt_after(
    args: list[str], endpoint: str, home: Path, *, started: int
) -> tuple[int | None, float, str, set[int]]:
    """Run the CLI in a pseudo-terminal (its own process group); once ``started`` steps have
    started, SIGINT the group. Returns (exit code, seconds to exit, output, children)."""
    import select
    import signal
    import time

    environ = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "TIERBOOK_"))}
    environ.update(
        TIERBOOK_AWS_ENDPOINT_URL=endpoint, TIERBOOK_HOME=str(home), TIERBOOK_POLL_SCALE="0.05"
    )
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=ROOT,
        env=environ,
        start_new_session=True,
    )
    os.close(slave)
    out = b""
    kids: set[int] = set()
    sent_at: float | None = None
    exited_at: float | None = None
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        chunk = b""
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the terminal's other end is closed
                chunk = b""
            out += chunk
        if sent_at is None and out.count("▶".encode()) >= started:
            kids = _children(proc.pid)
            os.killpg(proc.pid, signal.SIGINT)
            sent_at = time.monotonic()
        if exited_at is None and proc.poll() is not None:
            exited_at = time.monotonic()
        if exited_at is not None and not chunk:
            break
    code = proc.wait(timeout=30) if sent_at is not None else None
    took = (exited_at or time.monotonic()) - sent_at if sent_at is not None else float("inf")
    os.close(master)
    return code, took, out.decode(errors="replace"), kids


@pytest.mark.timeout(1800)  # provision and deploy, each twice, through the CLI
def test_ctrl_c_during_provision_and_deploy(clean_aws: str, home: Path) -> None:
    code, took, out, kids = interrupt_after(["provision"], clean_aws, home, started=PREP + 6)
    assert code == 130, out
    assert took < 5.0, out
    assert not [line for line in out.splitlines() if PREFECT_LINE.search(line)], out
    assert kids, "the local Prefect API runs as a child"
    assert not _alive(kids), out
    reports = sorted((home / "reports").glob("provision-*.json"))
    assert reports and json.loads(reports[-1].read_text())["outcome"] == "interrupted"

    again = run_cli(["provision"], clean_aws, home)  # a re-run converges
    assert again.returncode == 0, again.stdout + again.stderr
    assert "changed: " in again.stdout and "plan: " not in again.stdout  # a run, not a plan

    code, took, out, kids = interrupt_after(
        ["deploy", "--tag", "2.0.0", "--source", "codebuild", "--yes"],
        clean_aws,
        home,
        started=PREP + 4,
    )
    assert code == 130, out
    assert took < 5.0, out
    assert not _alive(kids), out
    reports = sorted((home / "reports").glob("deploy-*.json"))
    assert reports and json.loads(reports[-1].read_text())["outcome"] == "interrupted"
    import boto3

    ddb = boto3.client(
        "dynamodb",
        endpoint_url=clean_aws,
        region_name="us-east-1",
        aws_access_key_id="sandbox",
        aws_secret_access_key="sandbox",
    )
    for table in ddb.list_tables()["TableNames"]:
        if table.endswith("tierbook-locks"):
            assert not ddb.scan(TableName=table)["Items"], "the deploy lock was released"

    again = run_cli(["deploy", "--tag", "2.0.0", "--source", "codebuild", "--yes"], clean_aws, home)
    assert again.returncode == 0, again.stdout + again.stderr


def test_ctrl_c_before_the_runbook_starts_exits_at_once(clean_aws: str, home: Path) -> None:
    # The first line is the local API starting: the runbook has not begun.
    code, took, out, kids = interrupt_after(["provision"], clean_aws, home, started=1)
    assert code == 130, out
    assert took < 5.0, out
    assert "before the runbook started: nothing done" in out
    assert "Traceback" not in out and "Aborted" not in out
    assert not _alive(kids), out
    assert not list((home / "reports").glob("provision-*.json")), "no run, no report"


def test_a_ctrl_c_a_library_swallows_before_the_runbook_still_stops_it() -> None:
    """A Ctrl-C landing inside a library's catch-all (e.g. around an optional import while the
    runbook loads) is not lost: the block ends with exit 130, nothing started."""
    import signal
    import time

    import typer

    from cli.common import before_the_runbook

    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(typer.Exit) as stopped, before_the_runbook():
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(2)  # the handler runs here and raises
        except BaseException:  # the catch-all under test
            pass
    assert stopped.value.exit_code == 130
    assert signal.getsignal(signal.SIGINT) is before  # the handler is gone again


def test_each_failed_readiness_check_has_a_fix() -> None:
    from cli.fixes import fixes

    report = {
        "notes": [
            "readiness dr-image: fail — not in the DR repository: "
            "shop-sandbox/web:1.0.0, shop-sandbox/worker:1.0.0",
            "readiness secret: fail — rds!db-1 is not replicated to us-west-2",
            "readiness dr-database: pass — shop-sandbox-db-dr available",
            "readiness replica-lag: fail — replica lag 120s is over the RPO budget of 30s",
        ]
    }
    found = fixes(report, "us-east-1", "us-west-2")
    assert len(found) == 3
    assert "tierbook deploy --service all --tag 1.0.0 --source codebuild" in found[0]
    assert "replicate-secret-to-regions" in found[1] and "Region=us-west-2" in found[1]
    assert found[2].startswith("replica-lag: ")


def test_retries_show_as_a_count_and_in_detail_with_verbose(clean_aws: str, home: Path) -> None:
    from sandbox.control import SandboxControl

    control = SandboxControl(clean_aws)
    control.set_faults(
        {
            "kind": "throttle",
            "services": ["ec2"],
            "operations": ["DescribeAvailabilityZones"],
            "rate": 0.5,
        },
        seed=3,
    )
    try:
        done = run_cli(["-v", "preflight"], clean_aws, home)
    finally:
        control.clear_faults()
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"✓ check us-\S+ answers: passed \(\d+\.\ds, \d+ retries\)", done.stdout)
    assert "↻ check us-" in done.stdout  # -v: each retry
    assert not prefect_lines(done), prefect_lines(done)
    report = json.loads(sorted((home / "reports").glob("preflight-*.json"))[-1].read_text())
    assert any("retry" in note for note in report["notes"])
