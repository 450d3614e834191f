from __future__ import annotations

from configs.models import Config
from sandbox.testing import Mutations, plain
from tasks.resources.alarms import ensure_alarms

LB, TG = "app/shop-sandbox/abc", "targetgroup/shop-sandbox-web/def"


def test_alarms_exist_converge_and_restore_drift(sandbox_cfg: Config, mutations: Mutations) -> None:
    plan = ensure_alarms.fn(sandbox_cfg, "dr", LB, TG, dry_run=True)
    assert mutations.calls == []
    assert {c.name for c in plan.changes} == {
        "shop-sandbox-web-5xx",
        "shop-sandbox-web-latency",
        "shop-sandbox-web-healthy-hosts",
        "shop-sandbox-db-cpu",
        "shop-sandbox-db-connections",
        "shop-sandbox-db-replica-lag",
        "shop-sandbox-cache-evictions",
        "shop-sandbox-orders-age",
        "shop-sandbox-orders-dlq-depth",
        "shop-sandbox-payments-age",
        "shop-sandbox-payments-dlq-depth",
    }
    ensure_alarms.fn(sandbox_cfg, "primary", LB, TG)
    assert ensure_alarms.fn(sandbox_cfg, "primary", LB, TG).changes == []

    cw = plain(sandbox_cfg, "cloudwatch", "us-east-1")
    dlq = cw.describe_alarms(AlarmNames=["shop-sandbox-orders-dlq-depth"])["MetricAlarms"][0]
    assert dlq["Dimensions"] == [{"Name": "QueueName", "Value": "shop-sandbox-orders-dlq"}]
    assert (dlq["Threshold"], dlq["ComparisonOperator"]) == (0.0, "GreaterThanThreshold")
    assert "shop-sandbox-db-replica-lag" not in {
        a["AlarmName"] for a in cw.describe_alarms()["MetricAlarms"]
    }

    cw.put_metric_alarm(
        AlarmName="shop-sandbox-db-cpu", Namespace="AWS/RDS", MetricName="CPUUtilization",
        Dimensions=[{"Name": "DBInstanceIdentifier", "Value": "shop-sandbox-db"}],
        Statistic="Average", Period=60, EvaluationPeriods=5, Threshold=99.0,
        ComparisonOperator="GreaterThanThreshold", TreatMissingData="notBreaching",
        AlarmActions=["arn:aws:sns:us-east-1:123456789012:pager"],
    )  # fmt: skip
    fixed = ensure_alarms.fn(sandbox_cfg, "primary", LB, TG)
    assert [(c.name, c.before, c.after) for c in fixed.changes] == [
        ("shop-sandbox-db-cpu", {"Threshold": 99.0}, {"Threshold": 80.0})
    ]
    cpu = cw.describe_alarms(AlarmNames=["shop-sandbox-db-cpu"])["MetricAlarms"][0]
    assert cpu["Threshold"] == 80.0
    assert cpu["AlarmActions"] == ["arn:aws:sns:us-east-1:123456789012:pager"]
