"""Fixtures for the provision runbook.

* ``stack``: one environment provisioned from an empty account in both regions, shared by a
  module's read-only assertions (building it is the slow part).
* ``counter``: counts mutating calls made through ``connect(cfg)`` with a botocore
  ``before-call`` hook on the session's event emitter (shared by all its clients).
"""

from __future__ import annotations

import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from configs import load_config
from configs.models import Config
from tasks.aws import connect, forget_connections, is_mutating
from tests.conftest import ROOT
from tests.provision_app.conftest import faithful_moto

ZONE = "example.com"


def plain(cfg: Config, service: str, region: str | None = None) -> Any:
    """A boto3 client outside tierbook: for making and breaking things in tests."""
    return boto3.client(
        service,
        endpoint_url=cfg.aws.endpoint_url,
        region_name=region or cfg.regions.primary,
        aws_access_key_id="sandbox",
        aws_secret_access_key="sandbox",
    )


@dataclass
class Calls:
    """Mutating calls seen, as ``service:Operation``."""

    seen: list[str] = field(default_factory=list)

    def hook(self, model: Any, **_: Any) -> None:
        if is_mutating(model.name):
            self.seen.append(f"{model.service_model.service_name}:{model.name}")

    def reset(self) -> None:
        self.seen.clear()

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
    req = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(req, timeout=10).read()
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


@pytest.fixture(scope="module")
def moto_as_aws(aws_endpoint: str) -> Iterator[pytest.MonkeyPatch]:
    """The in-process moto, patched where it drops fields AWS returns (see provision_app)."""
    with pytest.MonkeyPatch.context() as mp:
        patch_moto(mp)
        yield mp


def patch_moto(mp: pytest.MonkeyPatch) -> None:
    """Every patch that makes the in-process moto answer as AWS does (also for benchmarks)."""
    gen = faithful_moto.__wrapped__(mp)  # type: ignore[attr-defined]
    next(gen)
    _cache_keeps_node_count(mp)
    _rds_keeps_performance_insights(mp)


def _cache_keeps_node_count(mp: pytest.MonkeyPatch) -> None:
    """ElastiCache: with cluster mode off, NumCacheClusters is ignored (one node is made)."""
    from moto.elasticache.models import ReplicationGroup

    original = ReplicationGroup._set_node_members_clusters_disabled

    def members(self: Any, *args: Any, **kwargs: Any) -> None:
        if (
            not kwargs.get("replicas_per_node_group")
            and (kwargs.get("num_cache_clusters") or 1) > 1
        ):
            kwargs["replicas_per_node_group"] = kwargs["num_cache_clusters"] - 1
        original(self, *args, **kwargs)

    mp.setattr(ReplicationGroup, "_set_node_members_clusters_disabled", members)


@pytest.fixture
def account(
    aws_endpoint: str, moto_as_aws: pytest.MonkeyPatch, monkeypatch: pytest.MonkeyPatch
) -> Config:
    """A fresh, empty account for one test."""
    return fresh_account(aws_endpoint, monkeypatch)


def _rds_keeps_performance_insights(mp: pytest.MonkeyPatch) -> None:
    """RDS: EnablePerformanceInsights is accepted and dropped; AWS reports it back."""
    from moto.rds.models import DBInstance

    original = DBInstance.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.enable_performance_insights = bool(kwargs.get("enable_performance_insights"))

    mp.setattr(DBInstance, "__init__", init)
    mp.setattr(
        DBInstance,
        "performance_insights_enabled",
        property(lambda self: bool(getattr(self, "enable_performance_insights", False))),
        raising=False,
    )
