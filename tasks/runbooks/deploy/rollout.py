"""Rolling an ECS service onto a new task-definition revision, verifying it, rolling it back.

* A revision is a copy of the one the service runs with only the image changed (and the
  environment or secrets, when asked): :func:`revision_input` is pure, ``ensure_revision``
  registers only when the copy differs, and reuses the family's latest revision when that one
  already is the copy (a re-deploy after a failed one does not pile up identical revisions).
* A rollout is judged by *its own* deployment (the id UpdateService returned): the service
  being "stable" says nothing, since a circuit-breaker rollback also ends stable — on the old
  revision. :func:`rollout_verdict` is that judgement, pure.
* Verification counts healthy targets among the new revision's tasks, not the old ones'.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

from configs.errors import NotFound, StepFailed
from configs.models import Config
from configs.names import Role, names_for
from tasks.core.aws import connect, role_client
from tasks.core.changes import Change, StepResult, updated
from tasks.core.errors import AwsError
from tasks.core.retry import is_code, wait_for
from tasks.core.steps import step
from tasks.resources.ecs import describe_service
from tasks.resources.task_definitions import differences, registrable, with_image

PREVIOUS_TAG = "tierbook:previous-revision"


ROLLOUT_TIMEOUT_S = 900.0


VERIFY_TIMEOUT_S = 300.0


# -- pure decisions ------------------------------------------------------------------------------
def revision_input(
    td: dict[str, Any],
    image: str,
    container: str | None = None,
    environment: dict[str, str | None] | None = None,
    secrets: dict[str, str | None] | None = None,
) -> dict[str, Any]:
    """Registration input: ``td`` with ``container`` on ``image``; ``environment``/``secrets``
    entries set (a ``None`` value removes the name). Everything else stays as it is."""
    out = with_image(td, image, container)
    target = container or out["containerDefinitions"][0]["name"]
    for c in out["containerDefinitions"]:
        if c["name"] != target:
            continue
        for key, field, changes in (
            ("environment", "value", environment),
            ("secrets", "valueFrom", secrets),
        ):
            if not changes:
                continue
            entries = {e["name"]: e[field] for e in c.get(key, [])}
            for name, value in changes.items():
                if value is None:
                    entries.pop(name, None)
                else:
                    entries[name] = value
            c[key] = [{"name": n, field: v} for n, v in sorted(entries.items())]
    return out


def container_name(td: dict[str, Any], svc: str) -> str:
    """The service's own container (named after it by provision), else the first one."""
    names = [c["name"] for c in td.get("containerDefinitions", [])]
    return svc if svc in names else names[0]


def image_of(td: dict[str, Any], container: str) -> str:
    return next(c["image"] for c in td["containerDefinitions"] if c["name"] == container)


def rollout_verdict(service: dict[str, Any], deployment_id: str) -> tuple[str, str]:
    """("completed" | "in_progress" | "failed", why) for one deployment of a DescribeServices
    entry. Gone from the list while another revision is primary: ECS replaced it (the circuit
    breaker rolled back, or someone deployed over it) — a failure either way."""
    deployments = service.get("deployments") or []
    mine = next((d for d in deployments if d.get("id") == deployment_id), None)
    primary = next((d for d in deployments if d.get("status") == "PRIMARY"), None)
    if mine is None:
        rolled = [e["message"] for e in service.get("events", []) if "roll" in e.get("message", "")]
        on = (primary or {}).get("taskDefinition", "?").split("/")[-1]
        why = f"deployment {deployment_id} was replaced; the service runs {on}"
        return "failed", why + (f" ({rolled[0]})" if rolled else "")
    state = mine.get("rolloutState", "IN_PROGRESS")
    reason = mine.get("rolloutStateReason", "")
    if state == "FAILED":
        return "failed", f"deployment {deployment_id} FAILED: {reason}".rstrip(": ")
    if state == "COMPLETED":
        if mine.get("status") != "PRIMARY":
            return "failed", f"deployment {deployment_id} completed but is no longer primary"
        return "completed", reason
    if mine.get("status") != "PRIMARY":
        on = (primary or {}).get("taskDefinition", "?").split("/")[-1]
        return "failed", f"deployment {deployment_id} was superseded by one on {on}"
    return "in_progress", reason or "in progress"


def revision_before(arns: list[str], current: str) -> str | None:
    """The ACTIVE revision numbered just below ``current`` (a fallback when the current one
    does not say which revision it replaced)."""
    number = int(current.rsplit(":", 1)[1])
    below = [a for a in arns if int(a.rsplit(":", 1)[1]) < number]
    return max(below, key=lambda a: int(a.rsplit(":", 1)[1])) if below else None


# -- reading ------------------------------------------------------------------------------------
def describe_revision(cfg: Config, role: Role, ref: str) -> dict[str, Any]:
    try:
        answer = role_client(cfg, "ecs", role).describe_task_definition(
            taskDefinition=ref, include=["TAGS"]
        )
    except AwsError as exc:
        if is_code(exc, "ClientException", "InvalidParameterException"):
            raise NotFound(f"task definition {ref} not found: {exc}") from exc
        raise
    return {**answer["taskDefinition"], "tags": answer.get("tags", [])}


def previous_revision(cfg: Config, role: Role, current: dict[str, Any]) -> str:
    """What ``current`` replaced: its ``tierbook:previous-revision`` tag, else the ACTIVE
    revision numbered just below it."""
    tags = {t["key"]: t["value"] for t in current.get("tags", [])}
    if tags.get(PREVIOUS_TAG):
        return tags[PREVIOUS_TAG]
    arns = role_client(cfg, "ecs", role).list_task_definitions(
        familyPrefix=current["family"], status="ACTIVE", sort="DESC"
    )["taskDefinitionArns"]
    before = revision_before(arns, current["taskDefinitionArn"])
    if before is None:
        raise NotFound(f"{current['taskDefinitionArn']} has no earlier revision to return to")
    return before


def same_image(a: str, b: str) -> bool:
    """The same repository and tag or digest, whatever the registry (each region has its
    own). Pure."""
    return a.split("/", 1)[-1] == b.split("/", 1)[-1]


def revision_running(cfg: Config, role: Role, svc: str, like: dict[str, Any]) -> str | None:
    """The newest ACTIVE revision of ``role``'s ``svc`` whose image is the one ``like`` (a
    revision of another region) runs; None when none is (among the last 20)."""
    image = image_of(like, container_name(like, svc))
    current = describe_revision(cfg, role, describe_service(cfg, role, svc)["taskDefinition"])
    arns = role_client(cfg, "ecs", role).list_task_definitions(
        familyPrefix=current["family"], status="ACTIVE", sort="DESC"
    )["taskDefinitionArns"]
    for arn in arns[:20]:
        td = current if arn == current["taskDefinitionArn"] else describe_revision(cfg, role, arn)
        if same_image(image_of(td, container_name(td, svc)), image):
            return str(arn)
    return None


def current_revision(cfg: Config, role: Role, svc: str) -> str:
    """The revision ``svc`` runs in ``role``'s region; in a pilot-light DR region between
    moves (no service), its family's newest revision, the one a move would start."""
    try:
        return str(describe_service(cfg, role, svc)["taskDefinition"])
    except NotFound:
        if not cfg.runs_services(role):
            return names_for(cfg, role).task_family(svc)
        raise


# -- steps --------------------------------------------------------------------------------------
@step("ensure {role} {svc} revision")
def ensure_revision(
    cfg: Config,
    role: Role,
    svc: str,
    image: str,
    environment: dict[str, str | None] | None = None,
    secrets: dict[str, str | None] | None = None,
    *,
    dry_run: bool = False,
) -> StepResult:
    """A revision of the running task definition on ``image``; registered only if needed."""
    names = names_for(cfg, role)
    ecs = role_client(cfg, "ecs", role)
    running = describe_revision(cfg, role, current_revision(cfg, role, svc))
    container = container_name(running, svc)
    desired = revision_input(running, image, container, environment, secrets)
    diff = differences(running, desired)
    outputs: dict[str, Any] = {
        "previous": running["taskDefinitionArn"],
        "previous_image": image_of(running, container),
        "task_definition_arn": running["taskDefinitionArn"],
        "diff": {k: list(v) for k, v in diff.items()},
    }
    if not diff:
        return StepResult(outputs=outputs, detail=f"{names.task_family(svc)} already on {image}")
    latest = describe_revision(cfg, role, running["family"])
    change = updated(
        "ecs:task-definition",
        running["family"],
        names.region,
        {k: v[0] for k, v in diff.items()},
        {k: v[1] for k, v in diff.items()},
    )
    if latest["taskDefinitionArn"] != running["taskDefinitionArn"] and not differences(
        latest, desired
    ):
        outputs["task_definition_arn"] = latest["taskDefinitionArn"]
        return StepResult(
            outputs=outputs,
            detail=f"reusing {latest['taskDefinitionArn'].split('/')[-1]} (same content)",
        )
    if dry_run:
        outputs["task_definition_arn"] = f"{running['family']}:(next)"
        return StepResult(changes=[change], outputs=outputs)
    tags = [t for t in running.get("tags", []) if t["key"] != PREVIOUS_TAG]
    tags.append({"key": PREVIOUS_TAG, "value": running["taskDefinitionArn"]})
    registered = ecs.register_task_definition(**registrable(desired), tags=tags)
    arn = registered["taskDefinition"]["taskDefinitionArn"]
    outputs["task_definition_arn"] = arn
    change.detail = f"{arn.split('/')[-1]}: " + change.summary()
    return StepResult(
        changes=[change],
        outputs=outputs,
        applied=True,
        detail=f"registered {arn.split('/')[-1]} ({', '.join(diff)} changed)",
    )


@step("update {role} {svc} service")
def ensure_service_revision(
    cfg: Config, role: Role, svc: str, task_definition_arn: str, *, dry_run: bool = False
) -> StepResult:
    """Point the service at the revision (desired count untouched); returns the deployment
    to follow. Already there and settled: nothing to do."""
    names = names_for(cfg, role)
    service = describe_service(cfg, role, svc)
    primary = next(d for d in service["deployments"] if d.get("status") == "PRIMARY")
    outputs = {"deployment_id": primary["id"], "desired": service.get("desiredCount")}
    if service["taskDefinition"] == task_definition_arn:
        return StepResult(outputs=outputs, detail="already on this revision")
    change = updated(
        "ecs:service",
        names.service(svc),
        names.region,
        {"taskDefinition": service["taskDefinition"].split("/")[-1]},
        {"taskDefinition": task_definition_arn.split("/")[-1]},
    )
    if dry_run:
        return StepResult(changes=[change], outputs=outputs)
    response = role_client(cfg, "ecs", role).update_service(
        cluster=names.cluster, service=names.service(svc), taskDefinition=task_definition_arn
    )["service"]
    mine = next(
        d
        for d in response["deployments"]
        if d.get("status") == "PRIMARY" and d.get("taskDefinition") == task_definition_arn
    )
    outputs["deployment_id"] = mine["id"]
    return StepResult(
        changes=[change], outputs=outputs, applied=True, detail=f"deployment {mine['id']} started"
    )


@step("wait for {role} {svc} rollout")
def wait_for_rollout(
    cfg: Config, role: Role, svc: str, deployment_id: str, timeout_s: float = ROLLOUT_TIMEOUT_S
) -> StepResult:
    """Until *this* deployment is COMPLETED; FAILED or replaced fails the step at once."""

    def failed(service: dict[str, Any]) -> str | None:
        state, why = rollout_verdict(service, deployment_id)
        return why if state == "failed" else None

    service = wait_for(
        lambda: describe_service(cfg, role, svc),
        until=lambda s: rollout_verdict(s, deployment_id)[0] == "completed",
        failed=failed,
        what=f"{names_for(cfg, role).service(svc)} deployment {deployment_id} COMPLETED",
        timeout_s=timeout_s,
        interval_s=5,
        describe=lambda s: rollout_verdict(s, deployment_id)[1],
    )
    return StepResult(
        outputs={"running": service.get("runningCount"), "desired": service.get("desiredCount")},
        detail=f"COMPLETED, {service.get('runningCount')}/{service.get('desiredCount')} running",
        status="passed",
    )


def _new_task_ips(cfg: Config, role: Role, svc: str, task_definition_arn: str) -> set[str]:
    names, ecs = names_for(cfg, role), role_client(cfg, "ecs", role)
    arns = ecs.list_tasks(cluster=names.cluster, serviceName=names.service(svc))["taskArns"]
    if not arns:
        return set()
    tasks = ecs.describe_tasks(cluster=names.cluster, tasks=arns)["tasks"]
    ips = set()
    for t in tasks:
        if t.get("taskDefinitionArn") != task_definition_arn or t.get("lastStatus") != "RUNNING":
            continue
        for att in t.get("attachments", []):
            for d in att.get("details", []):
                if d.get("name") == "privateIPv4Address":
                    ips.add(d["value"])
    return ips


@step("check {role} {svc} targets healthy")
def check_targets(
    cfg: Config, role: Role, svc: str, task_definition_arn: str, timeout_s: float = VERIFY_TIMEOUT_S
) -> StepResult:
    """Healthy targets of the new revision's tasks ≥ the service's desired count."""
    service = describe_service(cfg, role, svc)
    groups = [lb["targetGroupArn"] for lb in service.get("loadBalancers", [])]
    want = int(service.get("desiredCount", 0))
    if not groups:
        return StepResult(skipped="no load balancer in front of this service")
    elb = connect(cfg).client("elbv2", names_for(cfg, role).region)

    def healthy() -> int:
        ips = _new_task_ips(cfg, role, svc, task_definition_arn)
        got = elb.describe_target_health(TargetGroupArn=groups[0])["TargetHealthDescriptions"]
        return sum(
            1
            for t in got
            if t["Target"]["Id"] in ips and t.get("TargetHealth", {}).get("State") == "healthy"
        )

    count = wait_for(
        healthy,
        until=lambda n: n >= want,
        what=f"{want} healthy targets of {task_definition_arn.split('/')[-1]}",
        timeout_s=timeout_s,
        interval_s=5,
        describe=lambda n: f"{n} healthy",
    )
    return StepResult(detail=f"{count}/{want} targets healthy", status="passed")


@step("check smoke URL")
def check_smoke(url: str, timeout_s: float = 60.0) -> StepResult:
    """An HTTP GET that answers 2xx/3xx within the deadline."""

    def probe() -> str:
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                return str(resp.status)
        except urllib.error.HTTPError as exc:
            return str(exc.code)
        except (urllib.error.URLError, OSError) as exc:
            return f"error: {exc}"

    status = wait_for(
        probe,
        until=lambda s: s[:1] in ("2", "3"),
        what=f"GET {url} answering 2xx/3xx",
        timeout_s=timeout_s,
        interval_s=2,
        describe=str,
    )
    return StepResult(detail=f"GET {url} → {status}", status="passed")


@step("roll back {role} {svc}")
def roll_back(
    cfg: Config,
    role: Role,
    svc: str,
    task_definition_arn: str,
    reason: str,
    timeout_s: float = ROLLOUT_TIMEOUT_S,
) -> StepResult:
    """Return the service to ``task_definition_arn`` and wait until that deployment completes.
    When the circuit breaker already started the same rollback, follow it instead."""
    names = names_for(cfg, role)
    service = describe_service(cfg, role, svc)
    primary = next(d for d in service["deployments"] if d.get("status") == "PRIMARY")
    changes: list[Change] = []
    if primary.get("taskDefinition") == task_definition_arn:
        deployment, how = primary["id"], "ECS already rolling back; followed it"
    else:
        changes.append(
            updated(
                "ecs:service",
                names.service(svc),
                names.region,
                {"taskDefinition": service["taskDefinition"].split("/")[-1]},
                {"taskDefinition": task_definition_arn.split("/")[-1]},
                detail=f"rollback: {reason}",
            )
        )
        response = role_client(cfg, "ecs", role).update_service(
            cluster=names.cluster, service=names.service(svc), taskDefinition=task_definition_arn
        )["service"]
        deployment = next(d for d in response["deployments"] if d.get("status") == "PRIMARY")["id"]
        how = "returned to the previous revision"
    service = wait_for(
        lambda: describe_service(cfg, role, svc),
        until=lambda s: rollout_verdict(s, deployment)[0] == "completed",
        failed=lambda s: v[1] if (v := rollout_verdict(s, deployment))[0] == "failed" else None,
        what=f"rollback of {names.service(svc)} to {task_definition_arn.split('/')[-1]}",
        timeout_s=timeout_s,
        interval_s=5,
        describe=lambda s: rollout_verdict(s, deployment)[1],
    )
    if service["taskDefinition"] != task_definition_arn:
        raise StepFailed(
            f"rollback ended on {service['taskDefinition']}, not {task_definition_arn}"
        )
    return StepResult(
        changes=changes,
        applied=True,
        outputs={"deployment_id": deployment},
        detail=f"{how}: {task_definition_arn.split('/')[-1]} COMPLETED",
        status="changed",
    )
