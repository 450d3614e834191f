"""The 3 a.m. terminal, timed: how long from pressing Enter until something happens.

For ``preflight``, ``provision --plan`` and ``failover --plan`` against a sandbox on a free
port, all in one run:

* **refusal**: a config path that does not exist, until the process exits (code 2);
* **first step**: the command's start until its first step line (``▶``) is printed, with a
  ``TIERBOOK_HOME`` whose Prefect database already exists (a second run on a machine) — the
  terminal's own steps (the local Prefect API starting, the AWS probe) come first;
* **runbook step**: the same until the runbook's first step (its flow on Prefect) starts;
* **baseline**: the technique the CLI used before — a flow run on Prefect's own temporary
  API (``SubprocessASGIServer``), measured the same way, in the same run: a one-step flow in
  a fresh process, from its start until the step's body runs.

Run: ``python benchmarks/cli_startup.py [--repeat N]``. Prints medians in seconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

COMMANDS = {
    "preflight": ["preflight"],
    "provision --plan": ["provision", "--plan"],
    "failover --plan": ["failover", "--plan"],
}

OWN_STEPS = ("start a local Prefect API", "check AWS answers")

BASELINE = """
import time, os, sys
t0 = float(sys.argv[1])
from prefect import flow, task

@task
def first():
    print(f"FIRST {time.time() - t0:.3f}", flush=True)

@flow
def f():
    first()

f()
"""


def environ(home: Path, endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "TIERBOOK_"))}
    env |= {
        "TIERBOOK_HOME": str(home),
        "TIERBOOK_AWS_ENDPOINT_URL": endpoint,
        "TIERBOOK_POLL_SCALE": "0.05",
    }
    return env


def time_to_first_step(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Seconds to the first step line, and to the runbook's first step (its flow on Prefect;
    the lines before it are the terminal's own steps, shown while Prefect loads)."""
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", *args, "-c", "configs/sandbox.yaml"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    first = runbook = float("nan")
    for line in proc.stdout:
        if "▶" in line and first != first:
            first = time.monotonic() - start
        if "▶" in line and runbook != runbook and not any(s in line for s in OWN_STEPS):
            runbook = time.monotonic() - start
    proc.wait()
    return first, runbook


def time_to_refusal(args: list[str], env: dict[str, str]) -> float:
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "cli", *args, "-c", "no/such/config.yaml"],
        cwd=ROOT,
        env=env,
        capture_output=True,
    )
    assert done.returncode == 2, done.stderr
    return time.monotonic() - start


def baseline(tmp: Path) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {
        "PREFECT_HOME": str(tmp / "prefect-baseline"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "0",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "300",
    }
    done = subprocess.run(
        [sys.executable, "-c", BASELINE, repr(time.time())],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    return next(
        float(line.split()[1]) for line in done.stdout.splitlines() if line.startswith("FIRST")
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    opts = parser.parse_args()
    from sandbox import SandboxServer, Timings

    tmp = Path(tempfile.mkdtemp(prefix="tierbook-bench-cli-"))
    timings = Timings()
    with SandboxServer(port=0, timings=timings) as server:
        env = environ(tmp / "home", server.endpoint)
        warm, _ = time_to_first_step(["preflight"], env)  # creates the Prefect database once
        print(f"first run on a fresh TIERBOOK_HOME (database created): {warm:.2f}s to first step")
        baseline(tmp)  # the same for the baseline's PREFECT_HOME
        base = statistics.median(baseline(tmp) for _ in range(opts.repeat))
        print(f"baseline: a plain Prefect flow on its temporary API: {base:.2f}s to first step")
        print(
            f"{'command':<18} {'refusal':>8} {'first step':>11} {'vs baseline':>12} "
            f"{'runbook step':>13} {'vs baseline':>12}"
        )
        for name, args in COMMANDS.items():
            refusal = statistics.median(time_to_refusal(args, env) for _ in range(opts.repeat))
            runs = [time_to_first_step(args, env) for _ in range(opts.repeat)]
            first = statistics.median(r[0] for r in runs)
            runbook = statistics.median(r[1] for r in runs)
            print(
                f"{name:<18} {refusal:>7.2f}s {first:>10.2f}s {base / first:>11.1f}x "
                f"{runbook:>12.2f}s {base / runbook:>11.1f}x"
            )


if __name__ == "__main__":
    main()
