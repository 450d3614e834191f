"""Fixtures for the deploy runbook: one provisioned stack per module, images pushed as CI would.

``push`` puts a (synthetic) image manifest under a tag into a service's repository in both
regions, the way ECR replication would copy it, and returns its digest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest

from configs.models import Config
from configs.names import names_for
from flows.provision import provision
from tests.provision.conftest import fresh_account, moto_as_aws, plain, watch

__all__ = ["moto_as_aws", "plain", "watch"]

CONFIG = "configs/sandbox.yaml"


def manifest(seed: str) -> str:
    digest = hashlib.sha256(seed.encode()).hexdigest()
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 1000,
                "digest": f"sha256:{digest}",
            },
            "layers": [
                {
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": 2000,
                    "digest": f"sha256:{digest[::-1]}",
                }
            ],
        }
    )


def push(cfg: Config, svc: str, tag: str, *, dr: bool = True) -> str:
    """Push ``svc:tag`` with plain boto3 (primary, and DR as replication would); its digest."""
    body = manifest(f"{svc}:{tag}")
    digest = ""
    for role in ("primary", "dr") if dr else ("primary",):
        names = names_for(cfg, role)  # type: ignore[arg-type]
        got = plain(cfg, "ecr", names.region).put_image(
            repositoryName=names.repository(svc), imageManifest=body, imageTag=tag
        )
        digest = got["image"]["imageId"]["imageDigest"]
    return digest


def service(cfg: Config, svc: str, role: str = "primary") -> dict[str, Any]:
    names = names_for(cfg, role)  # type: ignore[arg-type]
    return plain(cfg, "ecs", names.region).describe_services(
        cluster=names.cluster, services=[names.service(svc)]
    )["services"][0]


def taskdef(cfg: Config, arn: str, role: str = "primary") -> dict[str, Any]:
    region = names_for(cfg, role).region  # type: ignore[arg-type]
    return plain(cfg, "ecs", region).describe_task_definition(taskDefinition=arn)["taskDefinition"]


def revisions(cfg: Config, svc: str, role: str = "primary") -> list[str]:
    names = names_for(cfg, role)  # type: ignore[arg-type]
    return plain(cfg, "ecs", names.region).list_task_definitions(
        familyPrefix=names.task_family(svc)
    )["taskDefinitionArns"]


@pytest.fixture(scope="module")
def stack(
    aws_endpoint: str, moto_as_aws: pytest.MonkeyPatch, prefect_harness: None
) -> Iterator[Config]:
    """Both regions provisioned once for the module (the slow part)."""
    cfg = fresh_account(aws_endpoint, moto_as_aws)
    provision(config=CONFIG)
    yield cfg


@pytest.fixture
def http_server() -> Iterator[dict[str, Any]]:
    """A local HTTP server whose answer the test sets."""
    import http.server
    import threading

    state: dict[str, Any] = {"status": 200}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(state["status"])
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}/healthz"
    yield state
    server.shutdown()
