"""Route 53 changes that take time to sync, and CodeBuild builds that push their image."""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
import time
from typing import Any

from moto.core.models import DEFAULT_ACCOUNT_ID

from sandbox.settings import Timings

_CHANGE_ID = re.compile(r"<ChangeInfo>\s*<Id>([^<]+)</Id>")
PHASES = [
    "SUBMITTED",
    "QUEUED",
    "PROVISIONING",
    "DOWNLOAD_SOURCE",
    "INSTALL",
    "PRE_BUILD",
    "BUILD",
    "POST_BUILD",
    "UPLOAD_ARTIFACTS",
    "FINALIZING",
    "COMPLETED",
]


class Route53Sim:
    def __init__(self, timings: Timings) -> None:
        self.timings = timings
        self.changes: dict[str, float] = {}
        self.lock = threading.Lock()

    def reset(self) -> None:
        with self.lock:
            self.changes.clear()

    def rewrite(self, op: str, body: bytes) -> bytes:
        text = body.decode("utf-8")
        m = _CHANGE_ID.search(text)
        if not m:
            return body
        change = m.group(1).split("/")[-1]
        with self.lock:
            if op == "ChangeResourceRecordSets":
                self.changes[change] = time.time() + self.timings.route53_sync_seconds
            until = self.changes.get(change, 0.0)
        if time.time() < until:
            text = text.replace("<Status>INSYNC</Status>", "<Status>PENDING</Status>")
        return text.encode("utf-8")


def _push_refused(state: dict[str, Any], exc: Exception) -> str:
    """What a build's ``docker push`` says when ECR refuses the image (the phase context)."""
    env = state["env"]
    repo, tag = env.get("IMAGE_REPO_NAME"), env.get("IMAGE_TAG", "latest")
    code = type(exc).__name__
    if "TagAlreadyExists" in code or "ImageAlreadyExists" in code:
        return (
            f"Error while executing command: docker push. Reason: exit status 1: tag invalid: "
            f"The image tag '{tag}' already exists in the '{repo}' repository and cannot be "
            "overwritten because the repository is immutable."
        )
    return f"Error while executing command: docker push. Reason: exit status 1: {code}: {exc}"


class CodeBuildSim:
    """Builds run through their phases; a successful one puts ``IMAGE_REPO_NAME:IMAGE_TAG``
    (from the build's environment variables) into ECR, and into the registry's replication
    destinations, as a real build with a push step would."""

    def __init__(self, timings: Timings) -> None:
        self.timings = timings
        self.builds: dict[str, dict[str, Any]] = {}
        self.fail_next = False
        self.lock = threading.Lock()

    def reset(self) -> None:
        with self.lock:
            self.builds.clear()
            self.fail_next = False

    def started(
        self, region: str, params: dict[str, Any], answer: dict[str, Any]
    ) -> dict[str, Any]:
        build = answer.get("build") or {}
        env = {
            e["name"]: e["value"]
            for e in (build.get("environment") or {}).get("environmentVariables", [])
        }
        env.update({e["name"]: e["value"] for e in params.get("environmentVariablesOverride", [])})
        with self.lock:
            self.builds[build.get("id", "")] = {
                "region": region,
                "start": time.time(),
                "env": env,
                "fail": self.fail_next,
                "pushed": False,
            }
            self.fail_next = False
        return self._render(build)

    def described(self, answer: dict[str, Any]) -> dict[str, Any]:
        answer["builds"] = [self._render(b) for b in answer.get("builds", [])]
        return answer

    def _render(self, build: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            state = self.builds.get(build.get("id", ""))
        if state is None:
            return build
        duration = max(self.timings.codebuild_seconds, 1e-6)
        progress = (time.time() - state["start"]) / duration
        done = progress >= 1.0
        index = len(PHASES) - 1 if done else min(len(PHASES) - 2, int(progress * (len(PHASES) - 1)))
        if done and not state["fail"] and not state["pushed"]:
            state["pushed"] = True
            try:
                state["digest"] = self._push(state)
            except Exception as exc:  # the push step of the build failed, as docker push would
                state["fail"] = True
                state["fail_phase"] = "POST_BUILD"
                state["fail_message"] = _push_refused(state, exc)
        failed = done and state["fail"]
        failed_phase = state.get("fail_phase", "BUILD")
        build = dict(build)
        build["currentPhase"] = PHASES[index]
        build["buildStatus"] = ("FAILED" if failed else "SUCCEEDED") if done else "IN_PROGRESS"
        build["buildComplete"] = done
        build["phases"] = [
            {
                "phaseType": p,
                "phaseStatus": ("FAILED" if failed and p == failed_phase else "SUCCEEDED"),
            }
            for p in PHASES[:index]
        ] + [{"phaseType": PHASES[index]}]
        if failed and state.get("fail_message"):
            for phase in build["phases"]:
                if phase["phaseType"] == failed_phase:
                    phase["contexts"] = [
                        {"statusCode": "COMMAND_EXECUTION_ERROR", "message": state["fail_message"]}
                    ]
        if state.get("digest"):
            build["resolvedSourceVersion"] = state["digest"]
        return build

    def _push(self, state: dict[str, Any]) -> str | None:
        from moto.ecr.models import ecr_backends

        repo, tag = state["env"].get("IMAGE_REPO_NAME"), state["env"].get("IMAGE_TAG", "latest")
        if not repo:
            return None
        seed = hashlib.sha256(f"{repo}:{tag}:{state['start']}".encode()).hexdigest()
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {
                    "mediaType": "application/vnd.docker.container.image.v1+json",
                    "size": 1469,
                    "digest": f"sha256:{seed}",
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                        "size": 3000000,
                        "digest": f"sha256:{seed[::-1]}",
                    }
                ],
            }
        )
        region = state["region"]
        backend = ecr_backends[DEFAULT_ACCOUNT_ID][region]
        image = backend.put_image(repo, manifest, tag)
        for rule in backend.replication_config.get("rules", []):
            for dest in rule.get("destinations", []):
                other = ecr_backends[DEFAULT_ACCOUNT_ID][dest["region"]]
                if dest["region"] != region and repo in other.repositories:
                    # replication is asynchronous in AWS: a destination that already holds
                    # the tag does not fail the build
                    with contextlib.suppress(Exception):
                        other.put_image(repo, manifest, tag)
        return str(image.get_image_digest()) if hasattr(image, "get_image_digest") else None
