from __future__ import annotations

from typing import Any

import pytest

from configs.errors import ConfigError
from configs.models import Config
from sandbox.testing import Mutations, Net, plain
from tasks.resources.autoscaling import ensure_autoscaling
from tasks.resources.ecs import (
    desired_count_drift,
    ensure_cluster,
    ensure_service,
    ensure_task_definition,
)
from tasks.resources.task_definitions import task_definition

EXEC = "arn:aws:iam::123456789012:role/shop-sandbox-ecs-execution"
TASK = "arn:aws:iam::123456789012:role/shop-sandbox-web-task"
DB_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-abc-123456"
DB = {"endpoint": "shop-sandbox-db.abc.us-east-1.rds.amazonaws.com", "port": 5432}


def make_tg(cfg: Config, net: Net) -> str:
    elb = plain(cfg, "elbv2", "us-east-1")
    return str(
        elb.create_target_group(
            Name="shop-sandbox-web", Protocol="HTTP", Port=8080, VpcId=net.vpc_id, TargetType="ip"
        )["TargetGroups"][0]["TargetGroupArn"]
    )


def run_all(cfg: Config, net: Net, tg: str, *, dry_run: bool = False) -> list[Any]:
    results = [ensure_cluster.fn(cfg, "primary", dry_run=dry_run)]
    td = ensure_task_definition.fn(
        cfg, "primary", "web", EXEC, TASK, DB_SECRET, DB, dry_run=dry_run
    )
    results.append(td)
    results.append(
        ensure_service.fn(
            cfg,
            "primary",
            "web",
            td.outputs["task_definition_arn"],
            net.subnets["app"],
            net.security_groups["app"],
            tg,
            dry_run=dry_run,
        )
    )
    results.append(
        ensure_autoscaling.fn(
            cfg, "primary", "web", "app/shop-sandbox/abc", "targetgroup/x/1", dry_run=dry_run
        )
    )
    return results


def test_dry_run_plans_everything_and_calls_nothing(
    sandbox_cfg: Config, net: Net, mutations: Mutations
) -> None:
    tg = make_tg(sandbox_cfg, net)
    mutations.reset()
    results = run_all(sandbox_cfg, net, tg, dry_run=True)
    assert mutations.calls == []
    assert [c.resource for r in results for c in r.changes] == [
        "ecs:cluster",
        "ecs:task-definition",
        "ecs:service",
        "appautoscaling:target",
        "appautoscaling:policy",
        "appautoscaling:policy",
    ]


def test_app_tier_converges_and_second_run_changes_nothing(sandbox_cfg: Config, net: Net) -> None:
    tg = make_tg(sandbox_cfg, net)
    run_all(sandbox_cfg, net, tg)
    assert [r.changes for r in run_all(sandbox_cfg, net, tg)] == [[], [], [], []]

    ecs = plain(sandbox_cfg, "ecs", "us-east-1")
    cluster = ecs.describe_clusters(clusters=["shop-sandbox"], include=["SETTINGS"])["clusters"][0]
    assert {"name": "containerInsights", "value": "enabled"} in cluster["settings"]
    td = ecs.describe_task_definition(taskDefinition="shop-sandbox-web")["taskDefinition"]
    assert td["revision"] == 1 and td["networkMode"] == "awsvpc"
    assert td["requiresCompatibilities"] == ["FARGATE"]
    container = td["containerDefinitions"][0]
    assert container["image"] == "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/web:1.0.0"
    assert {s["name"]: s["valueFrom"] for s in container["secrets"]} == {
        "DB_PASSWORD": f"{DB_SECRET}:password::",
        "DB_USERNAME": f"{DB_SECRET}:username::",
    }
    env = {e["name"] for e in container["environment"]}
    assert env == {"DB_HOST", "DB_NAME", "DB_PORT", "LOG_LEVEL"}
    assert container["logConfiguration"]["options"]["awslogs-group"] == "/ecs/shop-sandbox/web"
    svc = ecs.describe_services(cluster="shop-sandbox", services=["shop-sandbox-web"])["services"][
        0
    ]
    assert svc["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"] == "DISABLED"
    assert sorted(svc["networkConfiguration"]["awsvpcConfiguration"]["subnets"]) == sorted(
        net.subnets["app"]
    )
    assert svc["deploymentConfiguration"]["deploymentCircuitBreaker"] == {
        "enable": True,
        "rollback": True,
    }
    assert svc["loadBalancers"][0]["targetGroupArn"] == tg
    aas = plain(sandbox_cfg, "application-autoscaling", "us-east-1")
    policies = {
        p["PolicyName"]: p["TargetTrackingScalingPolicyConfiguration"]
        for p in aas.describe_scaling_policies(ServiceNamespace="ecs")["ScalingPolicies"]
    }
    assert set(policies) == {"web-requests-per-target", "web-cpu"}
    rpt = policies["web-requests-per-target"]
    assert (
        rpt["PredefinedMetricSpecification"]["PredefinedMetricType"] == "ALBRequestCountPerTarget"
    )
    assert rpt["ScaleInCooldown"] > rpt["ScaleOutCooldown"]
    target = aas.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"][0]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (2, 6)


def test_autoscaled_desired_count_survives_a_rerun(sandbox_cfg: Config, net: Net) -> None:
    tg = make_tg(sandbox_cfg, net)
    run_all(sandbox_cfg, net, tg)
    ecs = plain(sandbox_cfg, "ecs", "us-east-1")
    ecs.update_service(cluster="shop-sandbox", service="shop-sandbox-web", desiredCount=5)
    assert [r.changes for r in run_all(sandbox_cfg, net, tg)] == [[], [], [], []]
    svc = ecs.describe_services(cluster="shop-sandbox", services=["shop-sandbox-web"])["services"][
        0
    ]
    assert svc["desiredCount"] == 5

    ecs.update_service(cluster="shop-sandbox", service="shop-sandbox-web", desiredCount=40)
    service_result = run_all(sandbox_cfg, net, tg)[2]
    assert [(c.before, c.after) for c in service_result.changes] == [
        ({"desiredCount": 40}, {"desiredCount": 6})
    ]


def test_service_drift_is_restored_and_config_change_registers_a_revision(
    sandbox_cfg: Config, net: Net
) -> None:
    tg = make_tg(sandbox_cfg, net)
    run_all(sandbox_cfg, net, tg)
    ecs = plain(sandbox_cfg, "ecs", "us-east-1")
    ecs.update_service(
        cluster="shop-sandbox",
        service="shop-sandbox-web",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": net.subnets["app"],
                "securityGroups": [net.security_groups["app"]],
                "assignPublicIp": "ENABLED",
            }
        },
    )
    fixed = run_all(sandbox_cfg, net, tg)[2]
    assert [list(c.after or {}) for c in fixed.changes] == [["networkConfiguration"]]
    svc = ecs.describe_services(cluster="shop-sandbox", services=["shop-sandbox-web"])["services"][
        0
    ]
    assert svc["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"] == "DISABLED"

    bigger = sandbox_cfg.model_copy(
        update={
            "services": sandbox_cfg.services.model_copy(
                update={"web": sandbox_cfg.services.web.model_copy(update={"memory": 2048})}
            )
        }
    )
    td = ensure_task_definition.fn(bigger, "primary", "web", EXEC, TASK, DB_SECRET, DB)
    assert td.changes[0].after == {"memory": "2048"}
    assert td.outputs["task_definition_arn"].endswith(":2")


def test_secret_looking_env_is_refused(sandbox_cfg: Config) -> None:
    web = sandbox_cfg.services.web.model_copy(update={"environment": {"DB_PASSWORD": "hunter2"}})
    cfg = sandbox_cfg.model_copy(
        update={"services": sandbox_cfg.services.model_copy(update={"web": web})}
    )
    with pytest.raises(ConfigError, match="look like secrets"):
        task_definition(
            cfg, "primary", "web", execution_role_arn=EXEC, task_role_arn=TASK, db_secret_arn=None
        )


def test_desired_count_is_autoscalings_inside_the_range() -> None:
    assert desired_count_drift(5, 2, 2, 6) is None
    assert desired_count_drift(9, 2, 2, 6) == 6
    assert desired_count_drift(1, 2, 2, 6) == 2
    assert desired_count_drift(0, 2, 2, 6) == 2
