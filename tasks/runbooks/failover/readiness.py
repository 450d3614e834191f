"""Is the DR region ready to take over? Read-only checks, each ending pass, warn or fail.

Shared by ``tierbook failover`` (before it acts, and as ``--plan``) and the readiness drill.
Calls into the primary region use impaired-region clients: a primary that does not answer
turns the checks that need it into warnings, never into a hang — that is the day failover
exists for.

* ``dr-database``: the DR replica exists, is available and still replicates the primary.
* ``replica-lag``: ``AWS/RDS ReplicaLag`` (worst of the last minutes) within the RPO budget.
* ``dr-services``: each DR service and task definition exists, running the primary's image.
* ``dr-image``: that image is in the DR region's repository.
* ``secret``: the database's master secret is replicated to the DR region.
* ``dr-load-balancer``: the DR ALB and its target group exist.
* ``dns``: the app's records point at both load balancers, with the primary's health check.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel

from configs.errors import AwsError, TierbookError, TransientAwsError
from configs.models import Config
from configs.names import Role, names_for
from tasks.core.aws import connect
from tasks.core.retry import is_code
from tasks.resources.database.lookup import (
    describe_cluster,
    describe_instance,
    dr_database,
    in_region,
    is_aurora,
    writes,
)
from tasks.resources.dns import find_dns
from tasks.resources.load_balancer import find_load_balancer
from tasks.runbooks.failover.traffic_switch import arc_client

Status = Literal["pass", "warn", "fail"]


LAG_WINDOW = timedelta(minutes=5)


class Finding(BaseModel):
    check: str
    status: Status
    detail: str
    figures: dict[str, Any] = {}


class Readiness(BaseModel):
    """Every finding, and what they add up to."""

    findings: list[Finding]
    replica_lag_s: float | None = None
    primary_answers: bool = True
    promoted_already: bool = False
    primary_counts: dict[str, int] = {}

    @property
    def failed(self) -> list[Finding]:
        return [f for f in self.findings if f.status == "fail"]

    @property
    def status(self) -> Status:
        states = {f.status for f in self.findings}
        return "fail" if "fail" in states else "warn" if "warn" in states else "pass"

    def by_check(self) -> dict[str, Status]:
        return {f.check: f.status for f in self.findings}

    def summary(self) -> str:
        return "; ".join(f"{f.check} {f.status}: {f.detail}" for f in self.findings)


def _client(cfg: Config, service: str, role: Role) -> Any:
    return connect(cfg).client(service, names_for(cfg, role).region, impaired=role == "primary")


def _unreachable(exc: BaseException) -> bool:
    """True for a region that does not answer (as opposed to one that says no)."""
    if isinstance(exc, AwsError):
        return isinstance(exc, TransientAwsError)
    return not isinstance(exc, TierbookError)


def check_dr_database(cfg: Config) -> tuple[Finding, bool]:
    """(finding, promoted already)."""
    db = dr_database(cfg)
    ident = names_for(cfg, "dr").db_cluster if is_aurora(cfg) else names_for(cfg, "dr").db_instance
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
    """The newest ``ReplicaLag`` of the DR replica in the last minutes (None: no data)."""
    return replica_lag_of(cfg, "dr")


def replica_lag_of(cfg: Config, role: Role) -> float | None:
    names = names_for(cfg, role)
    cw = connect(cfg).client("cloudwatch", names.region)
    end = datetime.now(UTC) + timedelta(minutes=1)  # the newest point may be this second
    dims = (
        [{"Name": "DBClusterIdentifier", "Value": names.db_cluster}]
        if is_aurora(cfg)
        else [{"Name": "DBInstanceIdentifier", "Value": names.db_instance}]
    )
    points = cw.get_metric_statistics(
        Namespace="AWS/RDS",
        MetricName="AuroraGlobalDBReplicationLag" if is_aurora(cfg) else "ReplicaLag",
        Dimensions=dims,
        StartTime=end - LAG_WINDOW,
        EndTime=end,
        Period=60,
        Statistics=["Maximum"],
    )["Datapoints"]
    if not points:
        return None
    newest = max(points, key=lambda p: p["Timestamp"])
    worst = float(newest["Maximum"])
    return worst / 1000 if is_aurora(cfg) else worst  # Aurora reports milliseconds


def check_replica_lag(cfg: Config) -> tuple[Finding, float | None]:
    budget = cfg.failover.max_replica_lag_seconds
    lag = replica_lag(cfg)
    if lag is None:
        return (
            Finding(
                check="replica-lag",
                status="warn",
                detail="no ReplicaLag data in the last 5 minutes: the RPO is unknown",
                figures={"budget_s": budget},
            ),
            None,
        )
    figures = {"lag_s": lag, "budget_s": budget}
    if lag > budget:
        return (
            Finding(
                check="replica-lag",
                status="fail",
                detail=f"replica lag {lag:g}s is over the RPO budget of {budget:g}s",
                figures=figures,
            ),
            lag,
        )
    return (
        Finding(
            check="replica-lag",
            status="pass",
            detail=f"replica lag {lag:g}s within {budget:g}s",
            figures=figures,
        ),
        lag,
    )


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
        if dr_service is None or dr_image is None:
            problems.append(f"DR {svc} service missing")
            continue
        ref = image_reference(dr_image)
        if primary_answers:
            try:
                primary_service, primary_image = running_image(cfg, "primary", svc)
            except Exception as exc:
                if not _unreachable(exc):
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
            detail="; ".join(problems) if problems else "DR services run " + ", ".join(images),
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


def check_dns(cfg: Config) -> Finding:
    if cfg.edge is None:
        return Finding(check="dns", status="warn", detail="no edge block: no DNS to flip")
    if cfg.dns.strategy == "arc":
        return check_arc(cfg)
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


def primary_answers(cfg: Config) -> bool:
    """Does the primary region's RDS endpoint answer at all (within the impaired deadline)?"""
    try:
        _client(cfg, "rds", "primary").describe_db_instances(MaxRecords=20)
    except Exception as exc:
        if _unreachable(exc):
            return False
        raise
    return True


def evaluate(cfg: Config) -> Readiness:
    """Run every check (in parallel: they are independent reads)."""
    answers = primary_answers(cfg)
    jobs: dict[str, Callable[[], Any]] = {
        "dr-database": lambda: check_dr_database(cfg),
        "replica-lag": lambda: check_replica_lag(cfg),
        "services": lambda: check_services(cfg, answers),
        "dr-load-balancer": lambda: check_load_balancer(cfg),
        "dns": lambda: check_dns(cfg),
    }
    if answers:
        jobs["secret"] = lambda: check_secret(cfg)
    with ThreadPoolExecutor(len(jobs)) as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        results = {name: f.result() for name, f in futures.items()}
    db_finding, promoted = results["dr-database"]
    lag_finding, lag = results["replica-lag"]
    service_findings, counts = results["services"]
    findings = [db_finding]
    if promoted:
        lag_finding = Finding(
            check="replica-lag", status="warn", detail="no replica any more: already promoted"
        )
        lag = None
    findings += [lag_finding, *service_findings]
    if answers:
        findings.append(results["secret"])
    else:
        findings.append(
            Finding(
                check="primary-region",
                status="warn",
                detail=f"{cfg.regions.primary} does not answer: checks needing it were skipped",
            )
        )
    findings += [results["dr-load-balancer"], results["dns"]]
    return Readiness(
        findings=findings,
        replica_lag_s=lag,
        primary_answers=answers,
        promoted_already=promoted,
        primary_counts=counts,
    )
