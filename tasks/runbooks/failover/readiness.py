"""Is the DR region ready to take over? Read-only checks, each ending pass, warn, fail or
unknown.

Shared by ``tierbook failover`` (before it acts, and as ``--plan``) and the readiness drill.
The primary region is probed once (every probe in parallel, one short deadline; see
:meth:`tasks.core.aws.Aws.probe_region`) and nothing else asks it when it is dark: a check
that needs it is then ``unknown`` with the reason, never a hang nor a crash — that is the day
failover exists for. What a failover needs from the DR region is checked regardless. A check
that cannot run for any other reason is ``unknown`` (nobody answered) or ``fail`` (AWS said
no), with the error; ``--force`` gets past both.

* ``dr-database``: the DR replica exists, is available and still replicates the primary.
* ``replica-lag``: ``AWS/RDS ReplicaLag`` (worst of the last minutes) within the RPO budget.
* ``dr-services``: each DR service and task definition exists, running the primary's image.
* ``dr-image``: that image is in the DR region's repository.
* ``secret``: the database's master secret is replicated to the DR region.
* ``dr-cache`` (``cache.global_datastore``): the DR member of the session cache's Global
  Datastore is associated and the datastore available (read in the DR region only).
* ``dr-load-balancer``: the DR ALB and its target group exist.
* ``dns``: the app's records point at both load balancers, with the primary's health check.
* ``dns-switch``: the data-plane switch is prepared (its alarm in the DR region).
* ``old-primary-fenced``: no region moved away from is left unfenced (a pending fence in the
  lock table, see :mod:`tasks.runbooks.failover.fencing`). Fails, without refusing a
  failover (it concerns the region left, not the one to go to), while one is pending and the
  region's services run or cannot be read.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel

from configs.models import Config
from configs.names import Role, names_for
from tasks.core.aws import RegionProbe, connect
from tasks.core.errors import AwsError
from tasks.core.retry import is_code, unreachable
from tasks.resources.cache_global import find_global_cache, global_cache_findings
from tasks.resources.database.copies import copy_age_s, newest_copy
from tasks.resources.database.lookup import (
    describe_cluster,
    describe_instance,
    dr_database,
    in_region,
    is_aurora,
    writes,
)
from tasks.resources.dns import find_dns
from tasks.resources.dns_switch import check_switch
from tasks.resources.load_balancer import find_load_balancer
from tasks.runbooks.failover.fencing import PendingFence, desired_counts, pending_fences
from tasks.runbooks.failover.services import newest_revision
from tasks.runbooks.failover.traffic_switch import arc_client

Status = Literal["pass", "warn", "fail", "unknown"]


class Finding(BaseModel):
    check: str
    status: Status
    detail: str
    figures: dict[str, Any] = {}
    # A finding that does not hold a failover back: an ``unknown`` that needs the dark
    # primary, a ``fail`` about the region already left.
    blocking: bool = True


class Readiness(BaseModel):
    """Every finding, and what they add up to."""

    findings: list[Finding]
    replica_lag_s: float | None = None
    # backup and restore: the newest DR snapshot copy's age (what a failover now would lose)
    snapshot_age_s: float | None = None
    primary_answers: bool = True
    route53_answers: bool = True
    probe: dict[str, str] = {}
    promoted_already: bool = False
    primary_counts: dict[str, int] = {}

    @property
    def failed(self) -> list[Finding]:
        """What refuses a failover unless forced: failed or unknown checks that block."""
        return [f for f in self.findings if f.status in ("fail", "unknown") and f.blocking]

    @property
    def failing(self) -> list[Finding]:
        """What fails the readiness drill: every failed check, and unknown ones that block."""
        return [
            f for f in self.findings if f.status == "fail" or (f.status == "unknown" and f.blocking)
        ]

    @property
    def status(self) -> Status:
        states = {f.status for f in self.findings}
        for worst in ("fail", "unknown", "warn"):
            if worst in states:
                return worst  # type: ignore[return-value]
        return "pass"

    def by_check(self) -> dict[str, Status]:
        return {f.check: f.status for f in self.findings}

    def summary(self) -> str:
        return "; ".join(f"{f.check} {f.status}: {f.detail}" for f in self.findings)


def _client(cfg: Config, service: str, role: Role) -> Any:
    return connect(cfg).client(service, names_for(cfg, role).region, impaired=role == "primary")


def not_run(check: str, why: str) -> Finding:
    """A check that needs the dark primary: unknown, and no reason to refuse a failover."""
    return Finding(check=check, status="unknown", detail=why, blocking=False)


def guarded(check: str, fn: Callable[[], Any], fallback: Callable[[Finding], Any]) -> Any:
    """``fn()``; when it raises, ``fallback`` of a finding saying why: ``unknown`` when
    nobody answered, ``fail`` when AWS (or the world) said no. Readiness never crashes."""
    try:
        return fn()
    except Exception as exc:
        status: Status = "unknown" if unreachable(exc) else "fail"
        return fallback(Finding(check=check, status=status, detail=f"could not check: {exc}"[:500]))


def check_dr_database(cfg: Config) -> tuple[Finding, bool]:
    """(finding, promoted already)."""
    db = dr_database(cfg)
    ident = names_for(cfg, "dr").db_cluster if is_aurora(cfg) else names_for(cfg, "dr").db_instance
    if db is None and cfg.restores:
        detail = f"none kept (backup and restore): a move restores {ident} from the newest copy"
        return Finding(check="dr-database", status="pass", detail=detail), False
    if db is None:
        return Finding(check="dr-database", status="fail", detail=f"{ident} does not exist"), False
    status = db.get("DBInstanceStatus") or db.get("Status") or "?"
    if writes(cfg, db):
        return (
            Finding(
                check="dr-database",
                status="warn",
                detail=f"{ident} is already a standalone primary ({status}): promoted before",
            ),
            True,
        )
    source = (
        db.get("ReadReplicaSourceDBInstanceIdentifier")
        or db.get("ReplicationSourceIdentifier")
        or db.get("GlobalClusterIdentifier")
    )
    if status != "available":
        return (
            Finding(check="dr-database", status="fail", detail=f"{ident} is {status}"),
            False,
        )
    return (
        Finding(
            check="dr-database",
            status="pass",
            detail=f"{ident} available, replicating {str(source).split(':')[-1]}",
        ),
        False,
    )


def replica_lag(cfg: Config) -> float | None:
    """The worst ``ReplicaLag`` of the DR replica over the RPO window (None: no data)."""
    return replica_lag_of(cfg, "dr")


def worst_lag(points: list[dict[str, Any]], *, aurora: bool = False) -> float | None:
    """The maximum over every datapoint of the window, in seconds; None without data (an
    unknown RPO is not a zero one). Pure."""
    if not points:
        return None
    worst = max(float(p["Maximum"]) for p in points)
    return worst / 1000 if aurora else worst  # Aurora reports milliseconds


def lag_points(cfg: Config, role: Role, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """``role``'s replica lag datapoints (the Maximum of each minute) between the two times."""
    names = names_for(cfg, role)
    cw = connect(cfg).client("cloudwatch", names.region)
    dims = (
        [{"Name": "DBClusterIdentifier", "Value": names.db_cluster}]
        if is_aurora(cfg)
        else [{"Name": "DBInstanceIdentifier", "Value": names.db_instance}]
    )
    points: list[dict[str, Any]] = cw.get_metric_statistics(
        Namespace="AWS/RDS",
        MetricName="AuroraGlobalDBReplicationLag" if is_aurora(cfg) else "ReplicaLag",
        Dimensions=dims,
        StartTime=start,
        EndTime=end,
        Period=60,
        Statistics=["Maximum"],
    )["Datapoints"]
    return points


def replica_lag_of(cfg: Config, role: Role) -> float | None:
    end = datetime.now(UTC) + timedelta(minutes=1)  # the newest point may be this second
    window = timedelta(seconds=cfg.failover.rpo_window_seconds)
    return worst_lag(lag_points(cfg, role, end - window, end), aurora=is_aurora(cfg))


def check_replica_lag(cfg: Config) -> tuple[Finding, float | None]:
    budget = cfg.failover.max_replica_lag_seconds
    lag = replica_lag(cfg)
    if lag is None:
        return (
            Finding(
                check="replica-lag",
                status="unknown",
                detail=(
                    f"no ReplicaLag data in the last {cfg.failover.rpo_window_seconds:g}s: "
                    "the RPO is unknown"
                ),
                figures={"budget_s": budget},
                blocking=False,
            ),
            None,
        )
    figures = {"lag_s": lag, "budget_s": budget}
    if lag > budget:
        return (
            Finding(
                check="replica-lag",
                status="fail",
                detail=(
                    f"replica lag {lag:g}s is over the RPO budget of {budget:g}s "
                    f"(the worst over the last {cfg.failover.rpo_window_seconds:g}s)"
                ),
                figures=figures,
            ),
            lag,
        )
    return (
        Finding(
            check="replica-lag",
            status="pass",
            detail=(
                f"replica lag {lag:g}s within {budget:g}s "
                f"(the worst over the last {cfg.failover.rpo_window_seconds:g}s)"
            ),
            figures=figures,
        ),
        lag,
    )


def check_snapshot_copy(cfg: Config) -> tuple[Finding, float | None]:
    """Backup and restore: the newest copy in DR, its data's age against the RPO budget (DR
    reads only). Returns the age, the RPO a failover now would have."""
    budget = cfg.dr.snapshot_copy.rpo_budget_minutes * 60
    copy = newest_copy(cfg)
    if copy is None:
        detail = (
            f"no snapshot copy in {cfg.regions.dr}: run `tierbook snapshot-copy` (provision "
            "makes the first, its deployment's schedule the rest)"
        )
        return Finding(check="dr-snapshot-copy", status="fail", detail=detail), None
    age = round(copy_age_s(copy), 1)
    ident = copy["DBSnapshotIdentifier"]
    figures = {"age_s": age, "budget_s": budget, "copy": ident}
    if age > budget:
        detail = (
            f"the newest copy, {ident}, is {age:g}s old: over the RPO budget of {budget:g}s "
            "(is the snapshot-copy schedule running?)"
        )
        return Finding(check="dr-snapshot-copy", status="fail", detail=detail, figures=figures), age
    detail = f"{ident}, {age:g}s old, within {budget:g}s"
    return Finding(check="dr-snapshot-copy", status="pass", detail=detail, figures=figures), age


def check_data(cfg: Config) -> tuple[Finding, float | None]:
    """What a failover loses: the replica's lag, or (backup and restore) the copy's age."""
    return check_snapshot_copy(cfg) if cfg.restores else check_replica_lag(cfg)


# -- the app ---------------------------------------------------------------------------------
def service_names(cfg: Config) -> list[str]:
    return ["web"] + (["worker"] if cfg.services.worker is not None else [])


def image_reference(image: str) -> str:
    """The part of an image URI that names the build: ``@sha256:…`` or ``:tag``."""
    if "@" in image:
        return "@" + image.split("@", 1)[1]
    last = image.rsplit("/", 1)[-1]
    return ":" + last.split(":", 1)[1] if ":" in last else ":latest"


def running_image(cfg: Config, role: Role, svc: str) -> tuple[dict[str, Any] | None, str | None]:
    """(service, image of its task definition) in ``role``'s region; None where missing."""
    names = names_for(cfg, role)
    ecs = _client(cfg, "ecs", role)
    found = ecs.describe_services(cluster=names.cluster, services=[names.service(svc)])
    services = [s for s in found.get("services", []) if s.get("status") == "ACTIVE"]
    if not services:
        return None, None
    td = ecs.describe_task_definition(taskDefinition=services[0]["taskDefinition"])
    containers = td["taskDefinition"]["containerDefinitions"]
    main = next((c for c in containers if c["name"] == svc), containers[0])
    return services[0], str(main["image"])


def revision_image(cfg: Config, role: Role, svc: str) -> str | None:
    """The image of ``svc``'s newest task definition in ``role``'s region (None: none)."""
    td = newest_revision(cfg, role, svc)
    if td is None:
        return None
    containers = td["containerDefinitions"]
    return str(next((c for c in containers if c["name"] == svc), containers[0])["image"])


def image_in_repository(cfg: Config, role: Role, svc: str, reference: str) -> bool:
    names = names_for(cfg, role)
    ecr = _client(cfg, "ecr", role)
    image_id = (
        {"imageDigest": reference[1:]} if reference.startswith("@") else {"imageTag": reference[1:]}
    )
    try:
        ecr.describe_images(repositoryName=names.repository(svc), imageIds=[image_id])
    except AwsError as exc:
        if is_code(exc, "ImageNotFoundException", "RepositoryNotFoundException"):
            return False
        raise
    return True


def check_services(cfg: Config, primary_answers: bool) -> tuple[list[Finding], dict[str, int]]:
    """Findings for dr-services and dr-image, and the primary's desired counts (if it answers)."""
    problems, images, missing = [], [], []
    counts: dict[str, int] = {}
    for svc in service_names(cfg):
        dr_service, dr_image = running_image(cfg, "dr", svc)
        if dr_service is None and not cfg.runs_services("dr"):
            # Pilot light: no service until a move creates one from the newest revision.
            dr_image = revision_image(cfg, "dr", svc)
            if dr_image is None:
                problems.append(f"DR {svc} task definition missing (run `tierbook provision`)")
                continue
        elif dr_service is None or dr_image is None:
            problems.append(f"DR {svc} service missing")
            continue
        ref = image_reference(dr_image)
        if primary_answers:
            try:
                primary_service, primary_image = running_image(cfg, "primary", svc)
            except Exception as exc:
                if not unreachable(exc):
                    raise
                primary_service, primary_image = None, None
            if primary_service is not None:
                counts[svc] = int(primary_service.get("desiredCount", 0))
            if primary_image is not None and image_reference(primary_image) != ref:
                problems.append(
                    f"DR {svc} runs {ref}, the primary {image_reference(primary_image)}"
                )
        if not image_in_repository(cfg, "dr", svc, ref):
            missing.append(f"{names_for(cfg, 'dr').repository(svc)}{ref}")
        images.append(f"{svc} {ref}")
    findings = [
        Finding(
            check="dr-services",
            status="fail" if problems else "pass",
            detail="; ".join(problems)
            if problems
            else (
                "DR services run "
                if cfg.runs_services("dr")
                else f"DR task definitions ({cfg.dr.posture.replace('_', ' ')}) name "
            )
            + ", ".join(images),
        ),
        Finding(
            check="dr-image",
            status="fail" if missing else "pass",
            detail=(
                f"not in the DR repository: {', '.join(missing)}"
                if missing
                else "images present in the DR repositories"
            ),
        ),
    ]
    return findings, counts


def check_secret(cfg: Config) -> Finding:
    names = names_for(cfg, "primary")
    rds = _client(cfg, "rds", "primary")
    db = (
        describe_cluster(rds, names.db_cluster)
        if is_aurora(cfg)
        else describe_instance(rds, names.db_instance)
    )
    arn = ((db or {}).get("MasterUserSecret") or {}).get("SecretArn")
    if not arn:
        return Finding(
            check="secret", status="warn", detail="the primary database has no managed secret"
        )
    sm = connect(cfg).client("secretsmanager", cfg.regions.dr)
    try:
        sm.describe_secret(SecretId=in_region(arn, cfg.regions.dr))
    except AwsError as exc:
        if is_code(exc, "ResourceNotFoundException"):
            return Finding(
                check="secret",
                status="fail",
                detail=f"{arn.split(':')[-1]} is not replicated to {cfg.regions.dr}",
            )
        raise
    return Finding(check="secret", status="pass", detail=f"replicated to {cfg.regions.dr}")


def check_global_cache(cfg: Config) -> Finding:
    """The session cache's DR member, as the DR region sees its Global Datastore."""
    names = names_for(cfg, "dr")
    status, detail = global_cache_findings(find_global_cache(cfg, "dr"), names.cache, names.region)
    return Finding(check="dr-cache", status=status, detail=detail)


def check_load_balancer(cfg: Config) -> Finding:
    names = names_for(cfg, "dr")
    lb = find_load_balancer(cfg, "dr")
    if lb is None:
        return Finding(check="dr-load-balancer", status="fail", detail=f"{names.alb} missing")
    elb = connect(cfg).client("elbv2", names.region)
    try:
        elb.describe_target_groups(Names=[names.target_group])
    except AwsError as exc:
        if is_code(exc, "TargetGroupNotFound"):
            return Finding(
                check="dr-load-balancer",
                status="fail",
                detail=f"target group {names.target_group} missing",
            )
        raise
    return Finding(
        check="dr-load-balancer", status="pass", detail=f"{names.alb} and its target group exist"
    )


def check_dns(cfg: Config, route53_answers: bool = True) -> Finding:
    """The records, read through Route 53's control plane (so ``unknown`` when it is dark)."""
    if cfg.edge is None:
        return Finding(check="dns", status="warn", detail="no edge block: no DNS to flip")
    if cfg.dns.strategy == "arc":
        return check_arc(cfg)
    if not route53_answers:
        return not_run(
            "dns", "Route 53's control plane (us-east-1) does not answer: records not read"
        )
    dns = find_dns(cfg)
    missing = [role for role in ("primary", "dr") if role not in dns["records"]]
    if missing:
        return Finding(
            check="dns", status="fail", detail=f"no {' or '.join(missing)} record for {dns['name']}"
        )
    if not dns["health_check_id"]:
        return Finding(check="dns", status="fail", detail="the primary health check is missing")
    return Finding(
        check="dns",
        status="pass",
        detail=f"{dns['name']} {cfg.dns.strategy} records for both regions, health check set",
    )


def check_dns_switch(cfg: Config, route53_answers: bool = True) -> Finding:
    """The data-plane switch: its alarm in the DR region (read there, whatever the primary
    does) and, when Route 53's control plane answers, the primary record following it."""
    if cfg.edge is None or cfg.dns.strategy == "arc":
        return Finding(check="dns-switch", status="pass", detail="not used by this DNS strategy")
    prepared, detail = check_switch(cfg, read_route53=route53_answers)
    if prepared:
        return Finding(check="dns-switch", status="pass", detail=detail)
    if route53_answers:
        # The record-rewriting fallback still works while the control plane answers.
        return Finding(
            check="dns-switch",
            status="warn",
            detail=f"{detail}; traffic would move by rewriting the records (control plane)",
        )
    return Finding(
        check="dns-switch",
        status="fail",
        detail=f"{detail}, and Route 53's control plane does not answer: nothing can move traffic",
    )


def check_arc(cfg: Config, *, client_for: Callable[[str], Any] | None = None) -> Finding:
    """Both routing controls readable through some cluster endpoint; which one is On."""
    arc = cfg.dns.arc
    assert arc is not None  # the config requires it for this strategy
    errors = []
    for endpoint in arc.cluster_endpoints:
        client = (client_for or (lambda e: arc_client(cfg, e)))(endpoint)
        try:
            states = {
                role: client.get_routing_control_state(RoutingControlArn=control)[
                    "RoutingControlState"
                ]
                for role, control in (
                    ("primary", arc.primary_control_arn),
                    ("dr", arc.dr_control_arn),
                )
            }
        except Exception as exc:
            errors.append(f"{endpoint}: {type(exc).__name__}")
            continue
        on = [role for role, state in states.items() if state == "On"]
        return Finding(
            check="dns",
            status="pass" if len(on) == 1 else "warn",
            detail=f"ARC routing controls readable via {endpoint}; On: {', '.join(on) or 'none'}",
        )
    return Finding(
        check="dns", status="fail", detail="no ARC cluster endpoint answered: " + "; ".join(errors)
    )


FENCE_CHECK = "old-primary-fenced"


def fence_finding(fence: PendingFence | None, counts: dict[str, int] | None) -> Finding:
    """``counts``: the pending region's desired counts, None when it does not answer. Pure."""
    if fence is None:
        return Finding(check=FENCE_CHECK, status="pass", detail="no fence pending")
    serving = {s: n for s, n in (counts or {}).items() if n > 0}
    if counts is not None and not serving:
        return Finding(
            check=FENCE_CHECK,
            status="warn",
            detail=f"{fence.describe()}, but its services are at 0; the next run clears it",
        )
    what = (
        "runs " + ", ".join(f"{s}={n}" for s, n in serving.items())
        if serving
        else "does not answer: it serves again as soon as it does"
    )
    return Finding(
        check=FENCE_CHECK,
        status="fail",
        detail=(
            f"old primary still serving after a failover: {fence.describe()}; {fence.region} "
            f"{what} (database {fence.database}); the first tierbook run it answers fences it"
        ),
        blocking=False,
    )


def check_fenced(cfg: Config, primary_answers: bool) -> Finding:
    """One read of the DR lock table; the pending region's services only when there is one."""
    fences = pending_fences(cfg)
    if not fences:
        return fence_finding(None, None)
    fence = fences[0]
    answers = primary_answers or fence.role != "primary"
    return fence_finding(fence, desired_counts(cfg, fence) if answers else None)


def probe_primary(cfg: Config) -> RegionProbe:
    """Probe the primary region once for this run (shared with the account guard)."""
    return connect(cfg).probe_region(cfg.regions.primary)


def _dark(cfg: Config, probe: RegionProbe) -> str:
    return f"{cfg.regions.primary} does not answer ({probe.why()})"


def evaluate(cfg: Config) -> Readiness:
    """Probe the primary once, then run every check in parallel (independent reads)."""
    probe = probe_primary(cfg)
    answers, r53 = probe.answers, probe.control_plane_answers
    dark = _dark(cfg, probe)

    def services() -> tuple[list[Finding], dict[str, int]]:
        return check_services(cfg, answers)

    def secret() -> Finding:
        return check_secret(cfg) if answers else not_run("secret", f"{dark}: not read")

    jobs: dict[str, tuple[Callable[[], Any], Callable[[Finding], Any]]] = {
        "dr-database": (lambda: check_dr_database(cfg), lambda f: (f, False)),
        "replica-lag": (lambda: check_data(cfg), lambda f: (f, None)),
        "services": (services, lambda f: ([f.model_copy(update={"check": "dr-services"})], {})),
        "secret": (secret, lambda f: f),
        "dr-load-balancer": (lambda: check_load_balancer(cfg), lambda f: f),
        **(
            {"dr-cache": (lambda: check_global_cache(cfg), lambda f: f)} if cfg.global_cache else {}
        ),
        "dns": (lambda: check_dns(cfg, r53), lambda f: f),
        "dns-switch": (lambda: check_dns_switch(cfg, r53), lambda f: f),
        # About the region already left: never a reason to refuse a failover.
        FENCE_CHECK: (
            lambda: check_fenced(cfg, answers),
            lambda f: f.model_copy(update={"blocking": False}),
        ),
    }
    with ThreadPoolExecutor(len(jobs), thread_name_prefix="readiness") as pool:
        futures = {
            name: pool.submit(guarded, name, job, fallback)
            for name, (job, fallback) in jobs.items()
        }
        results = {name: f.result() for name, f in futures.items()}
    db_finding, promoted = results["dr-database"]
    lag_finding, lag = results["replica-lag"]
    service_findings, counts = results["services"]
    findings = [db_finding]
    copy_age = lag if cfg.restores else None
    lag = None if cfg.restores else lag
    if promoted:
        lag_finding = Finding(
            check=lag_finding.check,
            status="warn",
            detail="DR already writes: promoted or restored before",
        )
        lag = copy_age = None
    findings += [lag_finding, *service_findings, results["secret"]]
    if not answers:
        findings.append(not_run("primary-region", f"{dark}: checks needing it were skipped"))
    elif not r53:
        findings.append(
            not_run("route53-control-plane", f"{dark}: Route 53's control plane is unreachable")
        )
    findings += [results["dr-load-balancer"], results["dns"], results["dns-switch"]]
    if "dr-cache" in results:
        findings.append(results["dr-cache"])
    findings.append(results[FENCE_CHECK])
    return Readiness(
        findings=findings,
        replica_lag_s=lag,
        snapshot_age_s=copy_age,
        primary_answers=answers,
        route53_answers=r53,
        probe=dict(probe.services),
        promoted_already=promoted,
        primary_counts=counts,
    )
