"""Deploy: image → ECR → task-definition revision → rolling update → verify → roll back.

The runbook, as it would read on a wiki, for each service asked for (web, then worker):

0. Check the request (service, source, tag, env/secret changes) and the account; for an image
   CI pushed, find the tag in ECR now — a missing tag is refused before anything changes.
1. Approval in a protected environment; the ``deploy-<service>`` lock.
2. **Image**: build it (CodeBuild or a local Docker engine) or take the pushed one; resolve
   the tag to its digest and deploy ``repo@sha256:…``; optionally refuse it on scan findings.
3. **Revision**: a copy of the running task definition with only the image changed (plus
   the env/secret changes asked for); none registered when nothing differs.
4. **Roll out**: point the service at it; wait, with a deadline, for *this* deployment's
   rolloutState COMPLETED (FAILED, or replaced by a circuit-breaker rollback, is a failure).
5. **Verify**: healthy targets of the new tasks ≥ desired; an optional HTTP smoke check.
6. **Roll back** on any failure or timeout in steps 4 to 5: back to the previous revision, wait for
   it, and fail the run saying what happened and why.
7. **DR in step**: the DR task definition gets the same digest from the replicated
   repository in the DR region; the DR service takes it at its warm size (count untouched).

``plan=True`` resolves what it can, prints the revisions and service updates it would make,
and makes no mutating call.
"""

from __future__ import annotations

from typing import Any, Literal

from prefect import flow

from configs import resolve_config
from configs.errors import BadInput, DeadlineExceeded, NotFound, StepFailed
from configs.models import SECRET_LIKE, Config
from configs.names import Role, names_for
from flows.approval import approve_protected
from flows.guards import open_run
from flows.report import Timeline, publish_plan, runbook
from tasks.core.changes import Change
from tasks.core.locks import hold
from tasks.resources.ecs import describe_service
from tasks.runbooks.deploy.images import (
    Image,
    check_scan,
    ensure_build_project,
    provide_image,
    registry_for,
    resolve,
    source_named,
    wait_for_replica_image,
)
from tasks.runbooks.deploy.rollout import (
    ROLLOUT_TIMEOUT_S,
    check_smoke,
    check_targets,
    container_name,
    describe_revision,
    ensure_revision,
    ensure_service_revision,
    image_of,
    previous_revision,
    revision_running,
    roll_back,
    wait_for_rollout,
)

STEPS = [
    "provide image",
    "pin digest",
    "register revision",
    "update service",
    "wait for rollout",
    "verify",
    "roll back on failure",
    "DR in step",
]


def services_for(cfg: Config, service: str) -> list[str]:
    known = [name for name, _ in cfg.services.items()]
    if service == "all":
        return known
    if service not in known:
        raise BadInput(f"--service must be one of {[*known, 'all']} (got {service!r})")
    return [service]


def check_changes(
    cfg: Config, environment: dict[str, str | None], secrets: dict[str, str | None]
) -> None:
    """The seeds' "password as a plain env value" anti-pattern is refused here too."""
    leaked = [
        k
        for k, v in environment.items()
        if v is not None and SECRET_LIKE.search(k) and k not in cfg.acknowledge.plain_env_secrets
    ]
    if leaked:
        raise BadInput(f"--env {leaked} look like secrets; pass them with --secret NAME=ARN")
    bad = [k for k, v in secrets.items() if v is not None and not v.startswith("arn:")]
    if bad:
        raise BadInput(f"--secret {bad}: the value must be a Secrets Manager or SSM ARN")


def dr_image(cfg: Config, image: Image) -> Image:
    return Image(image.repository, image.tag, image.digest, registry_for(cfg, cfg.regions.dr))


@flow(name="deploy", persist_result=False)
def deploy(
    config: str = "sandbox",
    service: str = "web",
    tag: str = "",
    source: Literal["pushed", "codebuild", "docker"] = "pushed",
    context: str = ".",
    build_source: str | None = None,
    build_version: str | None = None,
    environment: dict[str, str | None] | None = None,
    secrets: dict[str, str | None] | None = None,
    max_findings: int | None = None,
    smoke_url: str | None = None,
    timeout_s: float = ROLLOUT_TIMEOUT_S,
    dr: bool = True,
    plan: bool = False,
    approved: bool = False,
) -> dict[str, Any]:
    """Roll a service onto a new image, verify it, roll back on failure, keep DR in step.

    Args:
        config: The environment: its config's name under configs/ or a path to its YAML file.
        service: The service to deploy (web, worker…), or ``all`` (web first).
        tag: The image tag to roll out (required).
        source: pushed: CI already pushed the tag to ECR; codebuild: build it with the
            stack's CodeBuild project; docker: build it here with Docker.
        context: Build context directory, for source docker.
        build_source: CodeBuild source override (``s3://…`` or a repository URL).
        build_version: Branch, tag or commit to build (CodeBuild).
        environment: Environment variables to set, by name (a null value removes one).
        secrets: Secret ARNs to inject, by variable name (a null value removes one).
        max_findings: Refuse an image with more critical+high scan findings than this
            (empty: the config's limit).
        smoke_url: A URL that must answer 2xx/3xx after the rollout (empty: none).
        timeout_s: Roll back if the rollout has not finished after this many seconds.
        dr: Keep the DR region's task definition in step.
        plan: Show the task-definition changes; change nothing.
        approved: Approval given up front for a protected environment (``--yes``);
            otherwise a run from a deployment pauses for approval.
    """
    cfg = resolve_config(config)
    svcs = services_for(cfg, service)
    env, sec = dict(environment or {}), dict(secrets or {})
    if not tag:
        raise BadInput("--tag is required: the image tag to build, or to take from ECR")
    src = source_named(
        source, context=context, build_source=build_source, build_version=build_version
    )
    check_changes(cfg, env, sec)
    if timeout_s <= 0:
        raise BadInput(f"--timeout must be positive (got {timeout_s:g})")
    with runbook("deploy", cfg.stack) as tl:
        if not plan:
            src.ready()
        open_run(tl, cfg, dry_run=plan)
        tl.metrics |= {"tag": tag, "source": src.name, "services": ", ".join(svcs)}
        # An image CI pushed must exist before anything is touched.
        pinned = (
            {svc: resolve(cfg, "primary", svc, tag) for svc in svcs} if src.name == "pushed" else {}
        )
        if plan:
            return _plan(tl, cfg, svcs, tag, pinned, env, sec, dr, build=src.name == "codebuild")
        approve_protected(tl, cfg, approved, f"deploying {tag} to {', '.join(svcs)}")
        if src.name == "codebuild":
            tl.changes += ensure_build_project(cfg).changes
        for svc in svcs:
            with hold(
                cfg,
                f"deploy-{svc}",
                region=cfg.regions.primary,
                purpose=f"deploy {svc} {tag}",
            ):
                made = provide_image(cfg, svc, tag, src)
                tl.changes += made.changes
                image: Image = made.outputs["image"]
                tl.metrics[f"{svc} image"] = image.uri
                if max_findings is not None:
                    check_scan(cfg, svc, image, max_findings)
                _roll(tl, cfg, "primary", svc, image, env, sec, timeout_s, smoke_url)
                if dr:
                    wait_for_replica_image(cfg, "dr", svc, image)
                    _roll(tl, cfg, "dr", svc, dr_image(cfg, image), env, sec, timeout_s, None)
        if not tl.changes:
            tl.note(f"no changes: {', '.join(svcs)} already run {tag}")
    return tl.model_dump(mode="json")


def _roll(
    tl: Timeline,
    cfg: Config,
    role: Role,
    svc: str,
    image: Image,
    env: dict[str, str | None],
    sec: dict[str, str | None],
    timeout_s: float,
    smoke_url: str | None,
) -> None:
    """Revision → update → wait → verify in one region; roll back on failure."""
    rev = ensure_revision(cfg, role, svc, image.uri, env, sec)
    tl.changes += rev.changes
    previous, target = rev.outputs["previous"], rev.outputs["task_definition_arn"]
    tl.metrics[f"{role} {svc} revision"] = (
        f"{previous.split('/')[-1]} → {target.split('/')[-1]}"
        if previous != target
        else f"{target.split('/')[-1]} (unchanged)"
    )
    if _pilot_light_idle(cfg, role, svc):
        tl.note(
            f"{role} {svc}: {target.split('/')[-1]} registered; no service runs it until a move"
        )
        return
    moved = ensure_service_revision(cfg, role, svc, target)
    tl.changes += moved.changes
    try:
        wait_for_rollout(cfg, role, svc, moved.outputs["deployment_id"], timeout_s)
        check_targets(cfg, role, svc, target, timeout_s)
        if smoke_url:
            check_smoke(smoke_url, min(timeout_s, 120.0))
    except (StepFailed, DeadlineExceeded) as exc:
        reason = str(exc)
        if previous == target:
            raise StepFailed(f"{role} {svc}: {reason} (no earlier revision to return to)") from exc
        try:
            back = roll_back(cfg, role, svc, previous, reason, timeout_s)
        except (StepFailed, DeadlineExceeded) as stuck:
            raise StepFailed(
                f"{role} {svc}: rollout of {target.split('/')[-1]} failed ({reason}); the "
                f"rollback to {previous.split('/')[-1]} failed too ({stuck}): act by hand"
            ) from exc
        tl.changes += back.changes
        tl.note(f"{role} {svc}: rolled back to {previous.split('/')[-1]} because {reason}")
        raise StepFailed(
            f"{role} {svc}: rollout of {target.split('/')[-1]} failed ({reason}); "
            f"rolled back to {previous.split('/')[-1]}"
        ) from exc


def _pilot_light_idle(cfg: Config, role: Role, svc: str) -> bool:
    """A pilot-light DR region between moves: its revisions are kept current, no service
    runs them (a move creates the services from the newest one)."""
    if cfg.runs_services(role):
        return False
    try:
        describe_service(cfg, role, svc)
    except NotFound:
        return True
    return False


def _plan(
    tl: Timeline,
    cfg: Config,
    svcs: list[str],
    tag: str,
    pinned: dict[str, Image],
    env: dict[str, str | None],
    sec: dict[str, str | None],
    dr: bool,
    *,
    build: bool,
) -> dict[str, Any]:
    changes: list[Change] = ensure_build_project(cfg, dry_run=True).changes if build else []
    roles: list[Role] = ["primary", "dr"] if dr else ["primary"]
    for svc in svcs:
        for role in roles:
            names = names_for(cfg, role)
            if svc in pinned:
                uri = Image(
                    pinned[svc].repository, tag, pinned[svc].digest, registry_for(cfg, names.region)
                ).uri
            else:
                uri = f"{registry_for(cfg, names.region)}/{names.repository(svc)}@(digest of {tag} after the build)"
            rev = ensure_revision(cfg, role, svc, uri, env, sec, dry_run=True)
            changes += rev.changes
            if _pilot_light_idle(cfg, role, svc):
                continue
            moved = ensure_service_revision(
                cfg, role, svc, rev.outputs["task_definition_arn"], dry_run=True
            )
            changes += moved.changes
    tl.changes = changes
    tl.outcome = "planned"
    tl.metrics["steps"] = " → ".join(STEPS if dr else STEPS[:-1])
    publish_plan("deploy", cfg.stack, changes)
    if not changes:
        tl.note(f"no changes: {', '.join(svcs)} already run {tag}")
    return tl.model_dump(mode="json")


def dr_in_step(tl: Timeline, cfg: Config, svc: str, want: str, timeout_s: float) -> None:
    """DR back onto the image the primary now runs, as a deploy keeps it: else the failover's
    readiness refuses (DR on another image than the primary)."""
    if _pilot_light_idle(cfg, "dr", svc):
        primary = describe_revision(cfg, "primary", want)
        image = image_of(primary, container_name(primary, svc))
        uri = f"{registry_for(cfg, cfg.regions.dr)}/{image.split('/', 1)[1]}"
        tl.changes += ensure_revision(cfg, "dr", svc, uri).changes  # what a move would start
        return
    try:
        target = revision_running(cfg, "dr", svc, describe_revision(cfg, "primary", want))
    except NotFound as exc:
        tl.note(f"DR {svc} not rolled back: {exc}")
        return
    if target is None:
        tl.note(f"DR {svc}: no revision runs the primary's image; deploy it to DR")
        return
    if target != describe_service(cfg, "dr", svc)["taskDefinition"]:
        tl.changes += roll_back(
            cfg, "dr", svc, target, "in step with the primary", timeout_s
        ).changes


@flow(name="rollback", persist_result=False)
def rollback(
    config: str = "sandbox",
    service: str = "web",
    to: str | None = None,
    timeout_s: float = ROLLOUT_TIMEOUT_S,
    approved: bool = False,
) -> dict[str, Any]:
    """Return a service to its previous revision (or ``to``: a number or an ARN) and verify.

    Args:
        config: The environment: its config's name under configs/ or a path to its YAML file.
        service: The service to roll back (web, worker…), or ``all``.
        to: The revision to return to: a number or a task-definition ARN (empty: the
            previous one).
        timeout_s: Fail if the rollout has not finished after this many seconds.
        approved: Approval given up front for a protected environment (``--yes``);
            otherwise a run from a deployment pauses for approval.
    """
    cfg = resolve_config(config)
    svcs = services_for(cfg, service)
    if to is not None and len(svcs) != 1:
        raise BadInput("--to names one revision: pick one --service with it")
    with runbook("rollback", cfg.stack) as tl:
        open_run(tl, cfg, dry_run=False)
        targets: dict[str, str] = {}
        for svc in svcs:
            current = describe_revision(
                cfg, "primary", describe_service(cfg, "primary", svc)["taskDefinition"]
            )
            if to is None:
                want = previous_revision(cfg, "primary", current)
            else:
                ref = f"{current['family']}:{to}" if to.isdigit() else to
                want = describe_revision(cfg, "primary", ref)["taskDefinitionArn"]
            if want == current["taskDefinitionArn"]:
                tl.note(f"{svc}: already on {want.split('/')[-1]}")
                continue
            targets[svc] = want
            tl.metrics[f"{svc} revision"] = (
                f"{current['taskDefinitionArn'].split('/')[-1]} → {want.split('/')[-1]}"
            )
        if not targets:
            return tl.model_dump(mode="json")
        approve_protected(tl, cfg, approved, f"rolling back {', '.join(targets)}")
        for svc, want in targets.items():
            with hold(
                cfg,
                f"deploy-{svc}",
                region=cfg.regions.primary,
                purpose=f"rollback {svc}",
            ):
                back = roll_back(cfg, "primary", svc, want, "requested", timeout_s)
                tl.changes += back.changes
                check_targets(cfg, "primary", svc, want, timeout_s)
                dr_in_step(tl, cfg, svc, want, timeout_s)
    return tl.model_dump(mode="json")
