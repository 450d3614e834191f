"""Destroy, app layer of one region: alarms, autoscaling, ECS services (scaled to zero, then
deleted), task definitions, the cluster, the load balancer with its listeners and web ACL, the
target group, queues, image repositories, log groups, buckets, the certificate tierbook
requested, and the IAM roles of the region.

Everything is found by the names provision gives it (``configs.names``), so only this stack's
resources are ever deleted.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from configs.models import Config
from configs.names import Role, names_for
from tasks.alarms import desired_alarms
from tasks.aws import connect
from tasks.certificates import _find_requested
from tasks.changes import Change, StepResult
from tasks.iam import policy_name
from tasks.loadbalancer import find_load_balancer
from tasks.retry import absent
from tasks.scaling import DIMENSION
from tasks.steps import step
from tasks.teardown import deleted, result, wait_gone
from tasks.teardown_network import delete_log_groups, delete_roles
from tasks.waf import _find as find_web_acl

S3_BATCH = 1000  # DeleteObjects takes at most this many keys


def _client(cfg: Config, service: str, role: Role) -> Any:
    return connect(cfg).client(service, names_for(cfg, role).region)


def _services(cfg: Config) -> list[str]:
    return [svc for svc, _ in cfg.services.items()]


@step("delete {role} alarms and autoscaling")
def ensure_alarms_deleted(cfg: Config, role: Role, *, dry_run: bool = False) -> StepResult:
    names = names_for(cfg, role)
    region = names.region
    cw, aas = _client(cfg, "cloudwatch", role), _client(cfg, "application-autoscaling", role)
    wanted = sorted(desired_alarms(cfg, role, "-", "-"))
    found = [a["AlarmName"] for a in cw.describe_alarms(AlarmNames=wanted)["MetricAlarms"]]
    changes = [deleted("cloudwatch:alarm", a, region) for a in found]
    if found and not dry_run:
        cw.delete_alarms(AlarmNames=found)
    for svc in _services(cfg):
        rid = f"service/{names.cluster}/{names.service(svc)}"
        scope = {"ServiceNamespace": "ecs", "ResourceId": rid, "ScalableDimension": DIMENSION}
        for p in aas.describe_scaling_policies(**scope)["ScalingPolicies"]:
            changes.append(deleted("appautoscaling:policy", p["PolicyName"], region))
            if not dry_run:
                aas.delete_scaling_policy(PolicyName=p["PolicyName"], **scope)
        targets = aas.describe_scalable_targets(
            ServiceNamespace="ecs", ResourceIds=[rid], ScalableDimension=DIMENSION
        )["ScalableTargets"]
        if targets:
            changes.append(deleted("appautoscaling:target", names.service(svc), region))
            if not dry_run:
                aas.deregister_scalable_target(**scope)
    return result(changes, dry_run)


@step("delete {role} ECS services")
def ensure_services_deleted(cfg: Config, role: Role, *, dry_run: bool = False) -> StepResult:
    """Scale each service to zero, delete it, wait until it is inactive."""
    names = names_for(cfg, role)
    ecs, cluster = _client(cfg, "ecs", role), names.cluster
    wanted = [names.service(svc) for svc in _services(cfg)]

    def live() -> list[dict[str, Any]]:
        found = absent(
            lambda: ecs.describe_services(cluster=cluster, services=wanted)["services"],
            "ClusterNotFoundException",
        )
        return [s for s in found or [] if s.get("status") in ("ACTIVE", "DRAINING")]

    found = live()
    changes: list[Change] = []
    for s in found:
        if s["status"] != "ACTIVE":
            continue
        changes.append(
            deleted("ecs:service", s["serviceName"], names.region, "scaled to 0, then deleted")
        )
        if dry_run:
            continue
        if s.get("desiredCount"):
            ecs.update_service(cluster=cluster, service=s["serviceName"], desiredCount=0)
        ecs.delete_service(cluster=cluster, service=s["serviceName"])
    if found and not dry_run:
        wait_gone(live, f"{names.region} services deleted")
    return result(changes, dry_run)


@step("delete {role} task definitions and cluster")
def ensure_cluster_deleted(cfg: Config, role: Role, *, dry_run: bool = False) -> StepResult:
    """Deregister every active revision of the stack's families, then delete the cluster."""
    names = names_for(cfg, role)
    ecs, region = _client(cfg, "ecs", role), names.region
    changes: list[Change] = []
    for svc in _services(cfg):
        family = names.task_family(svc)
        pages = ecs.get_paginator("list_task_definitions").paginate(
            familyPrefix=family, status="ACTIVE"
        )
        arns = [a for p in pages for a in p["taskDefinitionArns"]]
        for arn in (a for a in arns if a.split("/")[-1].rsplit(":", 1)[0] == family):
            changes.append(deleted("ecs:task-definition", arn.split("/")[-1], region))
            if not dry_run:
                ecs.deregister_task_definition(taskDefinition=arn)
    found = ecs.describe_clusters(clusters=[names.cluster])["clusters"]
    if any(c.get("status") == "ACTIVE" for c in found):
        changes.append(deleted("ecs:cluster", names.cluster, region))
        if not dry_run:
            ecs.delete_cluster(cluster=names.cluster)
    return result(changes, dry_run)


@step("delete {role} load balancer")
def ensure_load_balancer_deleted(cfg: Config, role: Role, *, dry_run: bool = False) -> StepResult:
    """Web ACL association → listeners → load balancer (wait until gone) → target group and
    the regional web ACL."""
    names = names_for(cfg, role)
    region = names.region
    elb, waf = _client(cfg, "elbv2", role), _client(cfg, "wafv2", role)
    changes: list[Change] = []
    lb = find_load_balancer(cfg, role)
    if lb is not None:
        arn = lb["LoadBalancerArn"]
        acl = absent(
            lambda: waf.get_web_acl_for_resource(ResourceArn=arn).get("WebACL"),
            "WAFNonexistentItemException",
        )
        if acl and acl.get("Name") == names.web_acl:
            changes.append(deleted("wafv2:association", names.alb, region))
            if not dry_run:
                waf.disassociate_web_acl(ResourceArn=arn)
        for listener in elb.describe_listeners(LoadBalancerArn=arn)["Listeners"]:
            changes.append(deleted("elbv2:listener", f"{names.alb}:{listener['Port']}", region))
            if not dry_run:
                elb.delete_listener(ListenerArn=listener["ListenerArn"])
        changes.append(deleted("elbv2:load-balancer", names.alb, region))
        if not dry_run:
            elb.delete_load_balancer(LoadBalancerArn=arn)
            wait_gone(lambda: find_load_balancer(cfg, role), f"load balancer {names.alb} deleted")
    tg = absent(
        lambda: elb.describe_target_groups(Names=[names.target_group])["TargetGroups"],
        "TargetGroupNotFound",
    )
    if tg:
        changes.append(deleted("elbv2:target-group", names.target_group, region))
        if not dry_run:
            elb.delete_target_group(TargetGroupArn=tg[0]["TargetGroupArn"])
    if cfg.edge is not None and (acl := find_web_acl(waf, names.web_acl, "REGIONAL")):
        changes.append(deleted("wafv2:web-acl", names.web_acl, region))
        if not dry_run:
            waf.delete_web_acl(
                Name=acl["Name"], Scope="REGIONAL", Id=acl["Id"], LockToken=acl["LockToken"]
            )
    return result(changes, dry_run)


@step("delete {role} queues")
def ensure_queues_deleted(cfg: Config, role: Role, *, dry_run: bool = False) -> StepResult:
    """Each source queue, then its DLQ (messages in them go too: that is what destroy means)."""
    names = names_for(cfg, role)
    sqs = _client(cfg, "sqs", role)
    changes: list[Change] = []
    for q in cfg.queues:
        for name in (names.queue(q.name, fifo=q.fifo), names.dlq(q.name, fifo=q.fifo)):
            found = absent(
                partial(sqs.get_queue_url, QueueName=name),
                "AWS.SimpleQueueService.NonExistentQueue",
                "QueueDoesNotExist",
            )
            if found is None:
                continue
            changes.append(deleted("sqs:queue", name, names.region))
            if not dry_run:
                sqs.delete_queue(QueueUrl=found["QueueUrl"])
    return result(changes, dry_run)


@step("delete {role} image repositories and log groups")
def ensure_repositories_deleted(cfg: Config, role: Role, *, dry_run: bool = False) -> StepResult:
    """ECR repositories with their images (force), and the services' log groups."""
    names = names_for(cfg, role)
    ecr = _client(cfg, "ecr", role)
    changes: list[Change] = []
    for svc in _services(cfg):
        repo = names.repository(svc)
        found = absent(
            partial(ecr.describe_repositories, repositoryNames=[repo]),
            "RepositoryNotFoundException",
        )
        if not found:
            continue
        changes.append(deleted("ecr:repository", repo, names.region, "with its images"))
        if not dry_run:
            ecr.delete_repository(repositoryName=repo, force=True)
    groups = [names.log_group(svc) for svc in _services(cfg)]
    changes += delete_log_groups(cfg, role, groups, dry_run)
    return result(changes, dry_run)


@step("delete {role} buckets")
def ensure_buckets_deleted(cfg: Config, role: Role, *, dry_run: bool = False) -> StepResult:
    """The log bucket (and the asset bucket in primary): every object version and delete
    marker first, since S3 refuses to delete a bucket that is not empty."""
    names = names_for(cfg, role)
    s3 = _client(cfg, "s3", role)
    buckets = [names.log_bucket] + ([names.asset_bucket] if role == "primary" else [])
    changes: list[Change] = []
    for bucket in buckets:
        if absent(partial(s3.head_bucket, Bucket=bucket), "404", "NoSuchBucket") is None:
            continue
        changes.append(deleted("s3:bucket", bucket, names.region, "emptied of every version"))
        if dry_run:
            continue
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            keys = [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
            ]
            for i in range(0, len(keys), S3_BATCH):
                s3.delete_objects(
                    Bucket=bucket, Delete={"Objects": keys[i : i + S3_BATCH], "Quiet": True}
                )
        s3.delete_bucket(Bucket=bucket)
    return result(changes, dry_run)


@step("delete {role} certificate")
def ensure_certificate_deleted(cfg: Config, role: Role, *, dry_run: bool = False) -> StepResult:
    """Only the certificate tierbook requested; a configured one belongs to someone else."""
    if cfg.edge is None:
        return result([], dry_run)
    given = cfg.edge.certificate_arn if role == "primary" else cfg.edge.dr_certificate_arn
    if given:
        return StepResult(skipped="the configured certificate is not tierbook's to delete")
    names = names_for(cfg, role)
    acm = _client(cfg, "acm", role)
    arn = _find_requested(acm, cfg.edge.domain, names.tags("edge"))
    if arn is None:
        return result([], dry_run)
    if not dry_run:
        acm.delete_certificate(CertificateArn=arn)
    return result([deleted("acm:certificate", cfg.edge.domain, names.region)], dry_run)


@step("delete {role} IAM roles")
def ensure_roles_deleted(cfg: Config, role: Role, *, dry_run: bool = False) -> StepResult:
    """The execution and task roles: this region's inline policy, and the role once no other
    region's policy is left on it (IAM is global; both regions share the role names)."""
    names = names_for(cfg, role)
    roles = [names.execution_role] + [names.task_role(svc) for svc in _services(cfg)]
    return result(delete_roles(cfg, roles, policy_name(cfg, role), dry_run), dry_run)
