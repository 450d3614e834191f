"""``destroy --region dr``: the warm standby goes, the primary is left exactly as provisioned."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from cli.main import app
from configs.models import Config
from configs.names import names_for
from flows.provision import provision
from sandbox.testing import ZONE, plain
from tasks.resources.iam import policy_name
from tests.support import watch

CONFIG = "configs/sandbox.yaml"


def test_destroying_the_dr_region_leaves_the_primary_as_provisioned(
    account: Config, prefect_harness: None
) -> None:
    cfg = account
    assert provision(config=CONFIG)["outcome"] == "succeeded"
    out = CliRunner().invoke(
        app,
        ["destroy", "-c", CONFIG, "--region", "dr", "--yes", "--disable-deletion-protection",
         "-o", "json"],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)
    assert report["metrics"]["final_snapshot"] == "none"  # a replica has no final snapshot
    assert "deleted in us-east-1" not in report["metrics"]
    dr, primary = names_for(cfg, "dr"), names_for(cfg, "primary")
    assert plain(cfg, "rds", dr.region).describe_db_instances()["DBInstances"] == []
    assert plain(cfg, "ec2", dr.region).describe_vpcs(
        Filters=[{"Name": "tag:Name", "Values": [dr.vpc]}]
    )["Vpcs"] == []  # fmt: skip
    r53 = plain(cfg, "route53")
    zone = r53.list_hosted_zones_by_name(DNSName=ZONE)["HostedZones"][0]["Id"]
    records = r53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
    assert sorted(r["SetIdentifier"] for r in records if r.get("SetIdentifier")) == [
        "shop-sandbox-primary"
    ]
    iam = plain(cfg, "iam")
    assert iam.list_role_policies(RoleName=primary.execution_role)["PolicyNames"] == [
        policy_name(cfg, "primary")
    ]
    # Nothing of the primary half was touched: converging it plans no change.
    again = provision(config=CONFIG, region="primary", plan=True)
    assert again["changes"] == [], again["changes"][:5]


def test_a_stack_running_in_dr_since_a_failover_is_refused(
    account: Config, prefect_harness: None
) -> None:
    cfg = account
    assert provision(config=CONFIG)["outcome"] == "succeeded"
    dr = names_for(cfg, "dr")
    plain(cfg, "rds", dr.region).promote_read_replica(DBInstanceIdentifier=dr.db_instance)
    calls = watch(cfg)
    out = CliRunner().invoke(
        app, ["destroy", "-c", CONFIG, "--yes", "--disable-deletion-protection", "-o", "json"]
    )
    assert out.exit_code == 2, out.output
    assert "destroy would delete the live database" in json.loads(out.stdout)["error"]
    assert calls.seen == []
