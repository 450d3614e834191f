"""Images to deploy: where they come from, and the digest a deploy pins.

Three sources behind one interface (:class:`ImageSource`), each of which ends with an image
tagged in the service's ECR repository:

* ``pushed``    CI already pushed the tag; nothing to do but find it.
* ``codebuild`` start a build of the config's CodeBuild project, follow its phases and logs;
                the build pushes ``IMAGE_REPO_NAME:IMAGE_TAG``.
* ``docker``    build with a local Docker engine (the ``docker`` SDK) and push with an ECR
                token; a machine without the SDK or an engine gets a clear refusal.

Whatever the source, the tag is then resolved to its digest and the deploy uses
``repo@sha256:…``: a tag can be moved, a digest cannot, so what was verified is what runs and
a rollback returns to exactly the old bytes.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from configs.errors import BadInput, NotFound, Refused, StepFailed
from configs.models import Config
from configs.names import Role, names_for
from tasks.core.aws import connect
from tasks.core.changes import Action, Change, StepResult
from tasks.core.errors import AwsError
from tasks.core.log import logger
from tasks.core.retry import is_code, wait_for
from tasks.core.steps import step

BUILD_TIMEOUT_S = 1800.0


REPLICATION_TIMEOUT_S = 600.0


BLOCKING_SEVERITIES = ("CRITICAL", "HIGH")


# What a project tierbook creates runs: log in, build the source's Dockerfile, push one tag.
BUILDSPEC = """version: 0.2
phases:
  pre_build:
    commands:
      - aws ecr get-login-password --region $AWS_DEFAULT_REGION | docker login --username AWS --password-stdin $AWS_ACCOUNT_ID.dkr.ecr.$AWS_DEFAULT_REGION.amazonaws.com
  build:
    commands:
      - docker build -t $AWS_ACCOUNT_ID.dkr.ecr.$AWS_DEFAULT_REGION.amazonaws.com/$IMAGE_REPO_NAME:$IMAGE_TAG .
  post_build:
    commands:
      - docker push $AWS_ACCOUNT_ID.dkr.ecr.$AWS_DEFAULT_REGION.amazonaws.com/$IMAGE_REPO_NAME:$IMAGE_TAG
"""


@dataclass(frozen=True)
class Image:
    """One image, pinned: the tag it was asked for and the digest that tag meant then."""

    repository: str
    tag: str
    digest: str
    registry: str  # <account>.dkr.ecr.<region>.amazonaws.com

    @property
    def uri(self) -> str:
        return f"{self.registry}/{self.repository}@{self.digest}"


def registry_for(cfg: Config, region: str) -> str:
    return f"{cfg.account_id}.dkr.ecr.{region}.amazonaws.com"


# -- resolving tags and digests ----------------------------------------------------------------
def _ecr(cfg: Config, region: str) -> Any:
    return connect(cfg).client("ecr", region)


def resolve(cfg: Config, role: Role, svc: str, tag: str) -> Image:
    """The digest ``tag`` points at in ``svc``'s repository; :class:`NotFound` if there is none."""
    names = names_for(cfg, role)
    repo = names.repository(svc)
    try:
        found = _ecr(cfg, names.region).describe_images(
            repositoryName=repo, imageIds=[{"imageTag": tag}]
        )["imageDetails"]
    except AwsError as exc:
        if is_code(exc, "ImageNotFoundException"):
            found = []
        elif is_code(exc, "RepositoryNotFoundException"):
            raise NotFound(
                f"{svc}: ECR repository {repo} does not exist in {names.region}"
            ) from exc
        else:
            raise
    if not found:
        raise NotFound(
            f"{svc}: no image tagged {tag!r} in ECR repository {repo} ({names.region}); "
            "push it first or pick another --source"
        )
    return Image(repo, tag, str(found[0]["imageDigest"]), registry_for(cfg, names.region))


def has_digest(cfg: Config, role: Role, svc: str, digest: str) -> bool:
    names = names_for(cfg, role)
    try:
        found = _ecr(cfg, names.region).describe_images(
            repositoryName=names.repository(svc), imageIds=[{"imageDigest": digest}]
        )["imageDetails"]
    except AwsError as exc:
        if is_code(exc, "ImageNotFoundException", "RepositoryNotFoundException"):
            return False
        raise
    return bool(found)


@step("wait for {svc} image in {role}")
def wait_for_replica_image(
    cfg: Config, role: Role, svc: str, image: Image, timeout_s: float = REPLICATION_TIMEOUT_S
) -> StepResult:
    """ECR replication copies a pushed image to the DR region within minutes; wait for the
    same digest there, so DR runs exactly what primary runs."""
    names = names_for(cfg, role)
    wait_for(
        lambda: has_digest(cfg, role, svc, image.digest),
        until=bool,
        what=f"{image.digest[:19]} replicated to {names.repository(svc)} in {names.region}",
        timeout_s=timeout_s,
    )
    pinned = Image(image.repository, image.tag, image.digest, registry_for(cfg, names.region))
    return StepResult(
        outputs={"image": pinned.uri, "digest": image.digest},
        detail=f"{pinned.uri} present",
        status="passed",
    )


# -- scan gate -----------------------------------------------------------------------------------
def blocking_findings(findings: dict[str, Any]) -> dict[str, int]:
    """Counts of CRITICAL/HIGH findings in a DescribeImageScanFindings answer (basic or
    enhanced scanning both fill ``findingSeverityCounts``)."""
    counts = (findings.get("imageScanFindings") or {}).get("findingSeverityCounts") or {}
    return {s: int(counts.get(s, 0)) for s in BLOCKING_SEVERITIES if counts.get(s)}


@step("check {svc} image scan")
def check_scan(cfg: Config, svc: str, image: Image, max_findings: int) -> StepResult:
    """Refuse an image with more than ``max_findings`` critical+high findings, or no scan."""
    names = names_for(cfg)
    ecr = _ecr(cfg, names.region)
    ident = {"imageDigest": image.digest}

    def probe() -> dict[str, Any]:
        try:
            return dict(
                ecr.describe_image_scan_findings(repositoryName=image.repository, imageId=ident)
            )
        except AwsError as exc:
            if is_code(exc, "ScanNotFoundException"):
                return {"imageScanStatus": {"status": "NOT_FOUND"}}
            raise

    answer = wait_for(
        probe,
        until=lambda a: a.get("imageScanStatus", {}).get("status") != "IN_PROGRESS",
        what=f"scan of {image.uri}",
        timeout_s=300,
    )
    status = answer.get("imageScanStatus", {}).get("status")
    if status != "COMPLETE":
        raise Refused(
            f"{svc}: image {image.uri} has no completed scan (status {status}); "
            "the scan gate cannot pass it"
        )
    blocking = blocking_findings(answer)
    total = sum(blocking.values())
    if total > max_findings:
        raise Refused(
            f"{svc}: image {image.uri} has {total} critical/high findings {blocking}, "
            f"more than the {max_findings} allowed"
        )
    return StepResult(detail=f"{total} critical/high findings (≤ {max_findings})", status="passed")


# -- sources -------------------------------------------------------------------------------------
class ImageSource(Protocol):
    """Makes sure ``tag`` exists in ``svc``'s repository; returns what it did."""

    name: str

    def ready(self) -> None:
        """Raise :class:`BadInput` when this source cannot work here (before any change)."""

    def provide(self, cfg: Config, svc: str, tag: str) -> StepResult: ...


@dataclass
class PushedImage:
    """CI pushed the image already: nothing to make."""

    name: str = "pushed"

    def ready(self) -> None:
        return None

    def provide(self, cfg: Config, svc: str, tag: str) -> StepResult:
        return StepResult(detail=f"{tag}: pushed by CI", status="ok")


def build_env(cfg: Config, svc: str, tag: str) -> list[dict[str, str]]:
    """Environment the build's push step reads (the AWS sample buildspec's names)."""
    names = names_for(cfg)
    return [
        {"name": "IMAGE_REPO_NAME", "value": names.repository(svc), "type": "PLAINTEXT"},
        {"name": "IMAGE_TAG", "value": tag, "type": "PLAINTEXT"},
        {"name": "AWS_ACCOUNT_ID", "value": cfg.account_id, "type": "PLAINTEXT"},
        {"name": "SERVICE", "value": svc, "type": "PLAINTEXT"},
    ]


def build_progress(build: dict[str, Any]) -> tuple[str, str | None]:
    """(current phase, failure reason or None) of a BatchGetBuilds entry."""
    phase = str(build.get("currentPhase", "?"))
    if build.get("buildStatus") in ("FAILED", "FAULT", "TIMED_OUT", "STOPPED"):
        bad = [
            p for p in build.get("phases", []) if p.get("phaseStatus") not in (None, "SUCCEEDED")
        ]
        where = bad[0]["phaseType"] if bad else phase
        ctx = "; ".join(c.get("message", "") for c in (bad[0].get("contexts", []) if bad else []))
        return phase, f"build {build.get('buildStatus')} in phase {where}" + (
            f": {ctx}" if ctx else ""
        )
    return phase, None


@dataclass
class CodeBuildImage:
    """Build with the config's CodeBuild project (``<stack>-image-build``).

    ``source_location`` overrides the project's source for this build (an S3 object or a
    repository URL); ``source_version`` picks a branch, tag or commit."""

    source_location: str | None = None
    source_version: str | None = None
    timeout_s: float = BUILD_TIMEOUT_S
    name: str = "codebuild"

    def ready(self) -> None:
        return None

    def provide(self, cfg: Config, svc: str, tag: str) -> StepResult:
        names = names_for(cfg)
        cb = connect(cfg).client("codebuild", names.region)
        project = names.codebuild_project
        if not cb.batch_get_projects(names=[project]).get("projects"):
            raise NotFound(
                f"CodeBuild project {project} does not exist in {names.region}; "
                "the deploy runbook creates it; or use --source pushed"
            )
        extra: dict[str, Any] = {}
        if self.source_location:
            kind = "S3" if self.source_location.startswith("s3://") else "GITHUB"
            extra |= {
                "sourceTypeOverride": kind,
                "sourceLocationOverride": self.source_location.removeprefix("s3://"),
            }
        if self.source_version:
            extra["sourceVersion"] = self.source_version
        build = cb.start_build(
            projectName=project, environmentVariablesOverride=build_env(cfg, svc, tag), **extra
        )["build"]
        build_id = build["id"]
        seen: list[str] = []
        logs = BuildLogs(cfg, names.region)

        def probe() -> dict[str, Any]:
            got = dict(cb.batch_get_builds(ids=[build_id])["builds"][0])
            phase, _ = build_progress(got)
            if not seen or seen[-1] != phase:
                seen.append(phase)
                logger().info("build %s: phase %s", build_id, phase)
            logs.follow(got)
            return got

        def failed(b: dict[str, Any]) -> str | None:
            return build_progress(b)[1]

        done = wait_for(
            probe,
            until=lambda b: bool(b.get("buildComplete")),
            failed=failed,
            what=f"build {build_id} of {svc}:{tag}",
            timeout_s=self.timeout_s,
            interval_s=2,
            describe=lambda b: f"phase {b.get('currentPhase')}, {b.get('buildStatus')}",
        )
        phases = [p["phaseType"] for p in done.get("phases", [])] or seen
        return StepResult(
            changes=[
                Change(
                    resource="codebuild:build",
                    name=build_id,
                    action=Action.INVOKE,
                    region=names.region,
                    after={"image": f"{names.repository(svc)}:{tag}"},
                    detail=f"built and pushed {names.repository(svc)}:{tag}",
                )
            ],
            outputs={"build_id": build_id, "phases": phases, "log_lines": logs.lines},
            applied=True,
            detail=f"build {build_id} {done.get('buildStatus')} ({' → '.join(phases)})",
        )


class BuildLogs:
    """Prints new CloudWatch log lines of a running build (when the build has a log stream)."""

    def __init__(self, cfg: Config, region: str) -> None:
        self.logs = connect(cfg).client("logs", region)
        self.token: str | None = None
        self.lines = 0

    def follow(self, build: dict[str, Any]) -> None:
        where = build.get("logs") or {}
        group, stream = where.get("groupName"), where.get("streamName")
        if not group or not stream or "null" in (group, stream):
            return
        args: dict[str, Any] = {
            "logGroupName": group,
            "logStreamName": stream,
            "startFromHead": True,
        }
        if self.token:
            args["nextToken"] = self.token
        try:
            page = self.logs.get_log_events(**args)
        except AwsError as exc:
            if is_code(exc, "ResourceNotFoundException"):  # the stream appears once it runs
                return
            raise
        for event in page.get("events", []):
            logger().info("build | %s", str(event.get("message", "")).rstrip())
            self.lines += 1
        self.token = page.get("nextForwardToken", self.token)


@dataclass
class DockerImage:
    """Build ``context`` with a local Docker engine and push it with an ECR token.

    ``client_factory`` returns a docker-SDK-like client (``docker.from_env`` by default); the
    tests pass a fake one, which is the boundary this source is tested at."""

    context: str = "."
    dockerfile: str = "Dockerfile"
    client_factory: Callable[[], Any] | None = None
    name: str = "docker"
    _connected: Any = field(default=None, init=False, repr=False)

    def ready(self) -> None:
        """An SDK and an engine that answers, or a refusal naming what is missing."""
        self._client()

    def _client(self) -> Any:
        if self._connected is not None:
            return self._connected
        self._connected = self._connect()
        return self._connected

    def _connect(self) -> Any:
        if self.client_factory is not None:
            return self.client_factory()
        try:
            # Here, not at the top: the Docker SDK is optional and only --source docker needs it.
            import docker  # type: ignore[import-untyped]
        except ImportError as exc:
            raise BadInput(
                "--source docker needs the Docker SDK for Python (pip install docker) and a "
                "running Docker engine; use --source codebuild or --source pushed instead"
            ) from exc
        try:
            client = docker.from_env()
            client.ping()
            return client
        except Exception as exc:  # docker.errors.DockerException: no engine answering
            raise BadInput(
                f"--source docker: no Docker engine answers here ({exc}); "
                "use --source codebuild or --source pushed instead"
            ) from exc

    def provide(self, cfg: Config, svc: str, tag: str) -> StepResult:
        names = names_for(cfg)
        client = self._client()
        registry = registry_for(cfg, names.region)
        target = f"{registry}/{names.repository(svc)}"
        token = _ecr(cfg, names.region).get_authorization_token()["authorizationData"][0]
        user, password = base64.b64decode(token["authorizationToken"]).decode().split(":", 1)
        image, _ = client.images.build(
            path=self.context, dockerfile=self.dockerfile, tag=f"{target}:{tag}", rm=True
        )
        client.login(username=user, password=password, registry=token["proxyEndpoint"])
        stream = client.images.push(
            target,
            tag=tag,
            auth_config={"username": user, "password": password},
            stream=True,
            decode=True,
        )
        pushed = push_digest(stream)
        return StepResult(
            changes=[
                Change(
                    resource="ecr:image",
                    name=f"{names.repository(svc)}:{tag}",
                    action=Action.CREATE,
                    region=names.region,
                    after={"digest": pushed},
                    detail=f"built {getattr(image, 'id', '?')[:19]} and pushed",
                )
            ],
            outputs={"digest": pushed},
            applied=True,
            detail=f"pushed {target}:{tag} ({pushed})",
        )


def push_digest(stream: Any) -> str:
    """The digest a ``docker push`` progress stream reports; its error, raised."""
    digest = ""
    for chunk in stream:
        if isinstance(chunk, bytes | str):
            chunk = json.loads(chunk)
        if chunk.get("error") or chunk.get("errorDetail"):
            detail = chunk.get("errorDetail", {}).get("message") or chunk.get("error")
            raise StepFailed(f"docker push failed: {detail}")
        aux = chunk.get("aux") or {}
        digest = aux.get("Digest", digest)
    if not digest:
        raise StepFailed("docker push ended without reporting a digest")
    return str(digest)


def source_named(
    name: str,
    *,
    context: str = ".",
    build_source: str | None = None,
    build_version: str | None = None,
) -> ImageSource:
    if name == "pushed":
        return PushedImage()
    if name == "codebuild":
        return CodeBuildImage(source_location=build_source, source_version=build_version)
    if name == "docker":
        return DockerImage(context=context)
    raise BadInput(f"--source must be pushed, codebuild or docker (got {name!r})")


@step("provide {svc} image {tag} ({source.name})")
def provide_image(cfg: Config, svc: str, tag: str, source: ImageSource) -> StepResult:
    """Make the image exist (build/push, or nothing), then pin its tag to a digest."""
    made = source.provide(cfg, svc, tag)
    image = resolve(cfg, "primary", svc, tag)
    return StepResult(
        changes=made.changes,
        outputs={**made.outputs, "image": image},
        applied=made.applied,
        detail=f"{made.detail}; {tag} → {image.digest}" if made.detail else image.uri,
    )


def default_build_source(cfg: Config) -> str:
    return f"{names_for(cfg).asset_bucket}/image-build/source.zip"


def build_role_policy(cfg: Config, svc_repos: list[str]) -> dict[str, Any]:
    """Push to the services' repositories, write the build's logs; nothing else."""
    region, account = cfg.regions.primary, cfg.account_id
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
            {
                "Effect": "Allow",
                "Action": [
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:InitiateLayerUpload",
                    "ecr:UploadLayerPart",
                    "ecr:CompleteLayerUpload",
                    "ecr:PutImage",
                    "ecr:BatchGetImage",
                ],
                "Resource": [f"arn:aws:ecr:{region}:{account}:repository/{r}" for r in svc_repos],
            },
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                "Resource": f"arn:aws:s3:::{names_for(cfg).asset_bucket}/image-build/*",
            },
            {
                "Effect": "Allow",
                "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": f"arn:aws:logs:{region}:{account}:log-group:/aws/codebuild/*",
            },
        ],
    }


@step("ensure CodeBuild project")
def ensure_build_project(cfg: Config, *, dry_run: bool = False) -> StepResult:
    """The image-build project and its role, when none exists yet (an existing project, e.g.
    Terraform's, is used as it is)."""
    names = names_for(cfg)
    cb = connect(cfg).client("codebuild", names.region)
    iam = connect(cfg).client("iam", names.region)
    project = names.codebuild_project
    if cb.batch_get_projects(names=[project]).get("projects"):
        return StepResult(outputs={"project": project})
    role_name = project
    role_arn = f"arn:aws:iam::{cfg.account_id}:role/{role_name}"
    changes = [
        Change(resource="iam:role", name=role_name, action=Action.CREATE, region="global"),
        Change(
            resource="codebuild:project", name=project, action=Action.CREATE, region=names.region
        ),
    ]
    if dry_run:
        return StepResult(changes=changes, outputs={"project": project})
    try:
        iam.get_role(RoleName=role_name)
        changes.pop(0)
    except AwsError as exc:
        if not is_code(exc, "NoSuchEntity"):
            raise
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "codebuild.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"aws:SourceAccount": cfg.account_id}},
                }
            ],
        }
        iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(trust))
        repos = [names.repository(svc) for svc, _ in cfg.services.items()]
        iam.put_role_policy(
            RoleName=role_name,
            PolicyName="image-build",
            PolicyDocument=json.dumps(build_role_policy(cfg, repos)),
        )
    cb.create_project(
        name=project,
        # Until a build names its own (--build-source), it builds what CI left in the asset
        # bucket; the buildspec lives here so every service builds the same way.
        source={"type": "S3", "location": default_build_source(cfg), "buildspec": BUILDSPEC},
        artifacts={"type": "NO_ARTIFACTS"},
        environment={
            "type": "LINUX_CONTAINER",
            "image": "aws/codebuild/standard:7.0",
            "computeType": "BUILD_GENERAL1_SMALL",
            "privilegedMode": True,
        },
        serviceRole=role_arn,
        tags=[{"key": k, "value": v} for k, v in names.tags("images").items()],
    )
    return StepResult(changes=changes, outputs={"project": project}, applied=True)
