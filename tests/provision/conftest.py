"""Fixtures for the provision runbook.

* ``stack``: one environment provisioned from an empty account in both regions, shared by a
  module's read-only assertions (building it is the slow part).
* ``counter``: counts mutating calls made through ``connect(cfg)`` with a botocore
  ``before-call`` hook on the session's event emitter (shared by all its clients).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from configs import load_config
from configs.models import Config
from sandbox.control import SandboxControl
from tasks.core.aws import connect, forget_connections, is_mutating
from tests.conftest import ROOT, TEST_TIMINGS

ZONE = "example.com"


def plain(cfg: Config, service: str, region: str | None = None) -> Any:
    """A boto3 client outside tierbook: for making and breaking things in tests."""
    return boto3.client(  # type: ignore[call-overload]  # service is a plain str
        service,
        endpoint_url=cfg.aws.endpoint_url,
        region_name=region or cfg.regions.primary,
        aws_access_key_id="sandbox",
        aws_secret_access_key="sandbox",
    )


def web_target_group(cfg: Config, name: str, vpc: str, region: str | None = None) -> str:
    """A target group for the web service as someone else's stack might have it; its ARN."""
    return str(
        plain(cfg, "elbv2", region).create_target_group(
            Name=name,
            Protocol="HTTP",
            Port=8080,
            VpcId=vpc,
            TargetType="ip",
            HealthCheckPath="/healthz",
        )["TargetGroups"][0]["TargetGroupArn"]
    )


@dataclass
class Calls:
    """Mutating calls seen, as ``service:Operation``; every call, as (service, Operation)."""

    seen: list[str] = field(default_factory=list)
    operations: set[tuple[str, str]] = field(default_factory=set)

    def hook(self, model: Any, **_: Any) -> None:
        self.operations.add((model.service_model.service_name, model.name))
        if is_mutating(model.name):
            self.seen.append(f"{model.service_model.service_name}:{model.name}")

    def reset(self) -> None:
        self.seen.clear()
        self.operations.clear()

    def counted(self) -> Counter[str]:
        return Counter(self.seen)


def watch(cfg: Config) -> Calls:
    """Count from now on. Clients copy the session's emitter when they are made, so the
    cached clients are dropped first: every client after this carries the hook."""
    forget_connections()
    calls = Calls()
    connect(cfg).session.events.register("before-call.*.*", calls.hook)
    return calls


def reset_aws(endpoint: str) -> None:
    """Empty the sandbox: resources, faults, pending progressions."""
    SandboxControl(endpoint).reset()
    SandboxControl(endpoint).timings(**TEST_TIMINGS)
    forget_connections()


def fresh_account(
    endpoint: str, mp: pytest.MonkeyPatch, path: str = "configs/sandbox.yaml"
) -> Config:
    """An empty account with only what provision expects to exist: the public hosted zone."""
    reset_aws(endpoint)
    mp.setenv("TIERBOOK_AWS_ENDPOINT_URL", endpoint)
    cfg = load_config(ROOT / path)
    plain(cfg, "route53").create_hosted_zone(Name=ZONE, CallerReference="tests")
    return cfg


def plan_build_rerun(cfg: Config, config: str) -> dict[str, Any]:
    """On an empty account: a plan, a provision, and a second provision, with the mutating
    calls of the plan and of the second run."""
    from flows.provision import provision

    calls = watch(cfg)
    planned = provision(config=config, plan=True)
    plan_calls = list(calls.seen)
    first = provision(config=config)
    calls.reset()
    second = provision(config=config)
    return {
        "cfg": cfg,
        "plan": planned,
        "plan_calls": plan_calls,
        "first": first,
        "second": second,
        "second_calls": list(calls.seen),
    }


@pytest.fixture(scope="module")
def moto_as_aws(aws_endpoint: str) -> Iterator[pytest.MonkeyPatch]:
    """The sandbox answers as AWS does where moto drops fields (``sandbox/moto_fixes.py``)."""
    with pytest.MonkeyPatch.context() as mp:
        yield mp


@pytest.fixture
def account(
    aws_endpoint: str, moto_as_aws: pytest.MonkeyPatch, monkeypatch: pytest.MonkeyPatch
) -> Config:
    """A fresh, empty account for one test."""
    return fresh_account(aws_endpoint, monkeypatch)
