"""ECS Service Auto Scaling: a scalable target and target-tracking policies per service.

The web service tracks ALB requests per target (the demand signal) and CPU; the worker tracks
CPU. Scale-in waits longer than scale-out (the config enforces it), so a brief dip does not
throw away capacity a returning peak needs.
"""

from __future__ import annotations

from typing import Any

from configs.models import Config
from configs.names import Role, names_for
from tasks.core.aws import connect
from tasks.core.changes import Change, StepResult, created, diff, updated
from tasks.core.steps import step
from tasks.resources.ecs import capacity

DIMENSION = "ecs:service:DesiredCount"


def policies(
    cfg: Config, svc: str, alb_arn_suffix: str | None, tg_arn_suffix: str | None
) -> dict[str, dict[str, Any]]:
    """Target-tracking configurations by policy name."""
    scaling = getattr(cfg.services, svc).scaling
    cooldowns = {
        "ScaleOutCooldown": scaling.scale_out_cooldown_seconds,
        "ScaleInCooldown": scaling.scale_in_cooldown_seconds,
    }
    out: dict[str, dict[str, Any]] = {}
    if svc == "web" and scaling.requests_per_target and alb_arn_suffix and tg_arn_suffix:
        out[f"{svc}-requests-per-target"] = {
            "TargetValue": float(scaling.requests_per_target),
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "ALBRequestCountPerTarget",
                "ResourceLabel": f"{alb_arn_suffix}/{tg_arn_suffix}",
            },
            **cooldowns,
        }
    if scaling.cpu_percent:
        out[f"{svc}-cpu"] = {
            "TargetValue": float(scaling.cpu_percent),
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "ECSServiceAverageCPUUtilization"
            },
            **cooldowns,
        }
    return out


def _comparable(conf: dict[str, Any]) -> dict[str, Any]:
    keep = ("TargetValue", "PredefinedMetricSpecification", "ScaleOutCooldown", "ScaleInCooldown")
    return {k: conf.get(k) for k in keep}


@step("ensure {role} {svc} autoscaling")
def ensure_autoscaling(
    cfg: Config,
    role: Role,
    svc: str,
    alb_arn_suffix: str | None = None,
    tg_arn_suffix: str | None = None,
    *,
    dry_run: bool = False,
) -> StepResult:
    names = names_for(cfg, role)
    aas = connect(cfg).client("application-autoscaling", names.region)
    resource_id = f"service/{names.cluster}/{names.service(svc)}"
    label, region = names.service(svc), names.region
    _, low, high = capacity(cfg, role, svc)
    changes: list[Change] = []
    targets = aas.describe_scalable_targets(
        ServiceNamespace="ecs", ResourceIds=[resource_id], ScalableDimension=DIMENSION
    )["ScalableTargets"]
    want_target = {"MinCapacity": low, "MaxCapacity": high}
    before, after = diff(want_target, targets[0]) if targets else ({}, want_target)
    if after:
        action = updated if targets else None
        changes.append(
            action("appautoscaling:target", label, region, before, after)
            if action
            else created("appautoscaling:target", label, region, after)
        )
        if not dry_run:
            aas.register_scalable_target(
                ServiceNamespace="ecs",
                ResourceId=resource_id,
                ScalableDimension=DIMENSION,
                **want_target,
            )
    have = {
        p["PolicyName"]: p
        for p in aas.describe_scaling_policies(
            ServiceNamespace="ecs", ResourceId=resource_id, ScalableDimension=DIMENSION
        )["ScalingPolicies"]
    }
    for name, conf in policies(cfg, svc, alb_arn_suffix, tg_arn_suffix).items():
        current = have.get(name, {}).get("TargetTrackingScalingPolicyConfiguration")
        if current is not None and _comparable(current) == _comparable(conf):
            continue
        if current is None:
            changes.append(created("appautoscaling:policy", name, region, conf))
        else:
            b, a = diff(_comparable(conf), _comparable(current))
            changes.append(updated("appautoscaling:policy", name, region, b, a))
        if not dry_run:
            aas.put_scaling_policy(
                PolicyName=name,
                ServiceNamespace="ecs",
                ResourceId=resource_id,
                ScalableDimension=DIMENSION,
                PolicyType="TargetTrackingScaling",
                TargetTrackingScalingPolicyConfiguration=conf,
            )
    return StepResult(changes=changes, outputs={"resource_id": resource_id}, applied=not dry_run)
