"""Demo helper: put the images the task definitions name into ECR, as CI with registry
replication would have, so the failover's readiness finds them. Sandbox only."""

from __future__ import annotations

import hashlib
import json

from configs.errors import Refused
from configs.models import Config
from configs.names import names_for
from tasks.core.aws import connect
from tasks.core.steps import step
from tasks.runbooks.failover.readiness import (
    image_in_repository,
    image_reference,
    running_image,
    service_names,
)


def manifest(tag: str) -> str:
    digest = "sha256:" + hashlib.sha256(tag.encode()).hexdigest()
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 1024,
                "digest": digest,
            },
            "layers": [],
        }
    )


@step("push the images CI would have pushed")
def ensure_ci_images(cfg: Config) -> list[str]:
    if not cfg.aws.endpoint_url:
        raise Refused("demo images are only pushed into the sandbox (aws.endpoint_url)")
    pushed = []
    for role in ("primary", "dr"):
        names = names_for(cfg, role)  # type: ignore[arg-type]
        ecr = connect(cfg).client("ecr", names.region)
        for svc in service_names(cfg):
            _, image = running_image(cfg, role, svc)  # type: ignore[arg-type]
            ref = image_reference(image or "")
            if not image or ref.startswith("@"):
                continue  # a digest was pushed by a deploy: nothing to stand in for
            if image_in_repository(cfg, role, svc, ref):  # type: ignore[arg-type]
                continue
            ecr.put_image(
                repositoryName=names.repository(svc), imageManifest=manifest(ref), imageTag=ref[1:]
            )
            pushed.append(f"{names.region} {names.repository(svc)}{ref}")
    return pushed
