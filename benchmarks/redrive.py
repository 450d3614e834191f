"""Redrive throughput: the runbook's engine against two baselines, measured in one run.

* one-at-a-time: receive 1 → send 1 → delete 1, the loop most hand-written scripts use;
* batch-send ceiling: SendMessageBatch alone (10 per call, same worker count), the most the
  emulator can accept; the engine makes three calls per 10 messages (receive, send, delete),
  so a third of the ceiling is its bound and its figure reads as a fraction of that bound;
* engine: ``tasks.runbooks.redrive.engine.Engine`` (the receive → send → delete pipeline);
* peak memory (tracemalloc, this process only) of an engine run over each ``--memory-messages``;
* where the emulator's process can be read (Linux, the process listening on the endpoint's
  port): its CPU per message moved, in the loop and in the engine. An emulator whose requests
  run one at a time (one Python process) cannot serve the engine faster than one message per
  its engine CPU per message, so ``cap`` = the loop's seconds per message / that CPU is the
  most engine/loop can be on that emulator, whatever the engine does.

``--runs N`` repeats the three timings N times; every ratio compares figures of the same run.

Runs against a moto server it starts (default) or ``--endpoint URL`` (e.g. LocalStack). moto's
SQS slows as a queue grows, so keep ``--messages`` small there.

    python benchmarks/redrive.py [--messages 500] [--workers 4] [--runs 1]
        [--memory-messages 2000 [10000 ...]]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tracemalloc
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from configs import load_config  # noqa: E402
from sandbox import testing  # noqa: E402
from tasks.core.aws import forget_connections  # noqa: E402
from tasks.runbooks.redrive.engine import Engine, EngineSettings  # noqa: E402
from tasks.runbooks.redrive.routes import find_route  # noqa: E402


def message(i: int) -> dict[str, Any]:
    return {
        "MessageBody": json.dumps({"order": {"id": i, "tier": ("gold", "silver")[i % 2]}}),
        "MessageAttributes": {"kind": {"DataType": "String", "StringValue": "refund"}},
    }


def send_all(sqs: Any, url: str, n: int, workers: int) -> float:
    """Seconds to put ``n`` messages into ``url`` with SendMessageBatch."""
    chunks = [list(range(s, min(n, s + 10))) for s in range(0, n, 10)]

    def send(chunk: list[int]) -> None:
        entries = [{"Id": str(j), **message(i)} for j, i in enumerate(chunk)]
        sqs.send_message_batch(QueueUrl=url, Entries=entries)

    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(send, chunks))
    return time.perf_counter() - started


def one_at_a_time(sqs: Any, dlq: str, src: str, n: int) -> float:
    started = time.perf_counter()
    moved = 0
    while moved < n:
        got = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=1, VisibilityTimeout=60)
        for m in got.get("Messages", []):
            attrs = m.get("MessageAttributes", {})
            sqs.send_message(QueueUrl=src, MessageBody=m["Body"], MessageAttributes=attrs)
            sqs.delete_message(QueueUrl=dlq, ReceiptHandle=m["ReceiptHandle"])
            moved += 1
    return time.perf_counter() - started


def engine_run(
    cfg: Any,
    sqs: Any,
    n: int,
    workers: int,
    *,
    memory: bool = False,
    emulator: Callable[[], float] = lambda: 0.0,
) -> tuple[float, int, float]:
    """Seconds, peak bytes (with ``memory``) and the emulator's CPU seconds (read by
    ``emulator``) of one engine run over ``n`` messages."""
    stem = f"bench-{uuid.uuid4().hex[:6]}"
    dlq, _src = testing.dlq_pair(sqs, stem)
    send_all(sqs, dlq, n, workers)
    route = find_route.fn(cfg, f"{stem}-dlq")
    if memory:
        tracemalloc.start()
    cpu = emulator()
    started = time.perf_counter()
    tally = Engine(cfg, route, EngineSettings(workers=workers, visibility_s=120)).run()
    seconds = time.perf_counter() - started
    cpu = emulator() - cpu
    peak = tracemalloc.get_traced_memory()[1] if memory else 0
    if memory:
        tracemalloc.stop()
    assert tally.moved == n, f"engine moved {tally.moved} of {n}"
    return seconds, peak, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--endpoint", help="SQS endpoint to use instead of a fresh moto server")
    ap.add_argument("--messages", type=int, default=500)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--memory-messages", type=int, nargs="+", default=[2000])
    args = ap.parse_args()

    n, w = args.messages, args.workers
    where = args.endpoint or "plain moto.server in a subprocess (no sandbox progressions or faults)"
    with ExitStack() as running:
        endpoint = args.endpoint or running.enter_context(testing.moto_process())
        settings = {"TIERBOOK_AWS_ENDPOINT_URL": endpoint}
        print(
            testing.describe(
                "redrive benchmark settings:",
                settings,
                emulator=where,
                messages=n,
                workers=f"{w} (baselines' senders and the engine alike)",
                engine_visibility_timeout="120 s",
                runs=args.runs,
                memory_run_messages=", ".join(str(m) for m in args.memory_messages),
            )
        )
        running.enter_context(testing.environment(settings))
        forget_connections()
        cfg = load_config(ROOT / "configs" / "sandbox.yaml")
        account = boto3.client(
            "sts",
            endpoint_url=endpoint,
            region_name=cfg.regions.primary,
            aws_access_key_id="sandbox",
            aws_secret_access_key="sandbox",
        ).get_caller_identity()["Account"]
        cfg = cfg.model_copy(update={"account_id": account})  # LocalStack's is 000000000000
        sqs = boto3.client(
            "sqs",
            endpoint_url=endpoint,
            region_name=cfg.regions.primary,
            aws_access_key_id="sandbox",
            aws_secret_access_key="sandbox",
        )
        pid = testing.listening_pid(urlsplit(endpoint).port or 80)

        def emulator() -> float:
            return (testing.cpu_seconds(pid) or 0.0) if pid is not None else 0.0

        print(f"redrive benchmark: {n} messages, {w} workers, {args.runs} run(s)")
        print(
            "  run   loop msgs/s  ceiling msgs/s  bound msgs/s  engine msgs/s"
            "  engine/loop  engine/bound",
            flush=True,
        )
        for i in range(1, args.runs + 1):
            run = one_run(cfg, sqs, n, w, emulator)
            loop, engine, bound = n / run["loop_s"], n / run["engine_s"], run["ceiling"] / 3
            print(
                f"  {i:>3}  {loop:11.1f}  {run['ceiling']:14.1f}  {bound:12.1f}  {engine:13.1f}"
                f"  {engine / loop:10.1f}x  {engine / bound:12.2f}",
                flush=True,
            )
            if run["engine_cpu"] > 0:
                per_msg = run["engine_cpu"] / n
                print(
                    f"       emulator (pid {pid}) CPU per message: loop "
                    f"{run['loop_cpu'] / n * 1e3:.2f} ms, engine {per_msg * 1e3:.2f} ms, busy "
                    f"{run['engine_cpu'] / run['engine_s']:.0%} of the engine's run; "
                    f"cap {run['loop_s'] / n / per_msg:.1f}x the loop",
                    flush=True,
                )
        if pid is None:
            print("  (the emulator's process is not readable here: no CPU figures)")
        for m in args.memory_messages:
            _, peak, _ = engine_run(cfg, sqs, m, w, memory=True)
            print(f"  peak memory, {m} messages: {peak / 1e6:.1f} MB (tracemalloc)", flush=True)


def one_run(cfg: Any, sqs: Any, n: int, w: int, cpu: Callable[[], float]) -> dict[str, float]:
    """The ceiling (msgs/s), the loop's and the engine's seconds, measured one after the
    other, and the emulator's CPU seconds during each of the two (read by ``cpu``)."""
    ceiling_q = sqs.create_queue(QueueName=f"bench-ceiling-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    ceiling = n / send_all(sqs, ceiling_q, n, w)
    dlq, src = testing.dlq_pair(sqs, f"bench-loop-{uuid.uuid4().hex[:6]}")
    send_all(sqs, dlq, n, w)
    before = cpu()
    loop_s = one_at_a_time(sqs, dlq, src, n)
    loop_cpu = cpu() - before
    engine_s, _, engine_cpu = engine_run(cfg, sqs, n, w, emulator=cpu)
    return {
        "ceiling": ceiling,
        "loop_s": loop_s,
        "loop_cpu": loop_cpu,
        "engine_s": engine_s,
        "engine_cpu": engine_cpu,
    }


if __name__ == "__main__":
    main()
