"""End to end, the Aurora path: ``database.engine: aurora-postgresql`` on an empty account →
both regions built → a second run → drift put back. The assertions read the emulator's state
with plain boto3; one stack is built for the module.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from configs.models import Config
from configs.names import names_for
from flows.provision import provision
from sandbox.testing import ROOT, plain
from tasks.resources.database.lookup import global_cluster_id
from tests.support import fresh_account, plan_build_rerun, watch


def aurora_yaml(folder: Path) -> Path:
    """``configs/sandbox.yaml`` with an Aurora PostgreSQL cluster: a writer, one reader in
    another AZ, a global database with its secondary cluster in DR."""
    data = yaml.safe_load((ROOT / "configs" / "sandbox.yaml").read_text())
    data["database"] = {
        "engine": "aurora-postgresql",
        "engine_version": "16.4",
        "instance_class": "db.r6g.large",
        "read_replicas": 1,
        "dr_replica": True,
        "deletion_protection": True,
        "backup_retention_days": 7,
    }
    path = folder / "aurora.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def stack(
    aws_endpoint: str,
    moto_as_aws: pytest.MonkeyPatch,
    prefect_harness: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    path = str(aurora_yaml(tmp_path_factory.mktemp("aurora")))
    cfg = fresh_account(aws_endpoint, moto_as_aws, path)
    built = plan_build_rerun(cfg, path)
    calls = watch(cfg)
    built["replan"] = provision(config=path, plan=True)
    built["replan_calls"] = list(calls.seen)
    yield built | {"path": path}


def cluster(cfg: Config, role: str = "primary") -> dict[str, Any]:
    names = names_for(cfg, role)  # type: ignore[arg-type]
    found = plain(cfg, "rds", names.region).describe_db_clusters(
        DBClusterIdentifier=names.db_cluster
    )["DBClusters"]
    assert len(found) == 1
    return found[0]  # type: ignore[no-any-return]


def instances(cfg: Config, role: str = "primary") -> list[dict[str, Any]]:
    names = names_for(cfg, role)  # type: ignore[arg-type]
    found = plain(cfg, "rds", names.region).describe_db_instances(
        Filters=[{"Name": "db-cluster-id", "Values": [names.db_cluster]}]
    )["DBInstances"]
    return sorted(found, key=lambda i: i["DBInstanceIdentifier"])


def data_subnets(cfg: Config, role: str = "primary") -> set[str]:
    names = names_for(cfg, role)  # type: ignore[arg-type]
    ec2 = plain(cfg, "ec2", names.region)
    vpc = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [names.vpc]}])["Vpcs"][0]
    found = ec2.describe_subnets(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc["VpcId"]]},
            {"Name": "tag:component", "Values": ["network-data"]},
        ]
    )["Subnets"]
    return {s["SubnetId"] for s in found}


def data_group(cfg: Config, role: str = "primary") -> str:
    names = names_for(cfg, role)  # type: ignore[arg-type]
    found = plain(cfg, "ec2", names.region).describe_security_groups(
        Filters=[{"Name": "group-name", "Values": [names.security_group("data")]}]
    )["SecurityGroups"]
    return str(found[0]["GroupId"])


# -- plan and convergence ---------------------------------------------------------------------
def test_plan_lists_the_aurora_resources_and_mutates_nothing(stack: dict) -> None:
    assert stack["plan_calls"] == []
    kinds = [c["resource"] for c in stack["plan"]["changes"]]
    assert kinds.count("rds:cluster") == 2  # primary and DR secondary
    assert kinds.count("rds:cluster-instance") >= 2
    assert "rds:global-cluster" in kinds
    assert "rds:instance" not in kinds and "rds:cross-region-replica" not in kinds


def test_first_run_builds_and_second_run_changes_nothing(stack: dict) -> None:
    assert stack["first"]["outcome"] == "succeeded"
    made = {(c["resource"], c["name"]) for c in stack["first"]["changes"]}
    cfg = stack["cfg"]
    for role in ("primary", "dr"):
        assert ("rds:cluster", names_for(cfg, role).db_cluster) in made  # type: ignore[arg-type]
    assert ("rds:global-cluster", global_cluster_id(cfg)) in made
    assert stack["second"]["changes"] == []
    assert stack["second_calls"] == []
    assert stack["replan"]["changes"] == [] and stack["replan_calls"] == []


# -- the primary cluster ----------------------------------------------------------------------
def test_primary_cluster_settings(stack: dict) -> None:
    cfg = stack["cfg"]
    c = cluster(cfg)
    key = plain(cfg, "kms").describe_key(KeyId=names_for(cfg).kms_alias)["KeyMetadata"]
    assert c["Engine"] == "aurora-postgresql"
    assert c["StorageEncrypted"] is True and c["KmsKeyId"] == key["Arn"]
    secret = c["MasterUserSecret"]["SecretArn"]
    assert secret.startswith(f"arn:aws:secretsmanager:{cfg.regions.primary}:")
    assert plain(cfg, "secretsmanager").describe_secret(SecretId=secret)["ARN"] == secret
    assert c["BackupRetentionPeriod"] == cfg.database.backup_retention_days == 7
    assert c["DeletionProtection"] is True
    assert c["IAMDatabaseAuthenticationEnabled"] is True
    assert c["DBSubnetGroup"] == names_for(cfg).db_subnet_group
    assert [g["VpcSecurityGroupId"] for g in c["VpcSecurityGroups"]] == [data_group(cfg)]
    group = plain(cfg, "rds").describe_db_subnet_groups(
        DBSubnetGroupName=names_for(cfg).db_subnet_group
    )["DBSubnetGroups"][0]
    assert {s["SubnetIdentifier"] for s in group["Subnets"]} == data_subnets(cfg)
    tags = {t["Key"]: t["Value"] for t in c["TagList"]}
    assert tags["managed-by"] == "tierbook"


def test_writer_and_reader_in_different_azs(stack: dict) -> None:
    cfg = stack["cfg"]
    members = {m["DBInstanceIdentifier"]: m for m in cluster(cfg)["DBClusterMembers"]}
    found = instances(cfg)
    assert len(found) == 1 + cfg.database.read_replicas == 2
    writers = [i for i in found if members[i["DBInstanceIdentifier"]]["IsClusterWriter"]]
    assert len(writers) == 1
    assert len({i["AvailabilityZone"] for i in found}) == len(found)
    for i in found:
        assert i["Engine"] == "aurora-postgresql"
        assert i["DBInstanceClass"] == cfg.database.instance_class
        assert i["PerformanceInsightsEnabled"] is True
        assert i["PubliclyAccessible"] is False


# -- DR: a global database with its secondary cluster ------------------------------------------
def test_global_database_with_secondary_cluster_in_dr(stack: dict) -> None:
    cfg = stack["cfg"]
    primary, dr = cluster(cfg), cluster(cfg, "dr")
    g = plain(cfg, "rds").describe_global_clusters(GlobalClusterIdentifier=global_cluster_id(cfg))[
        "GlobalClusters"
    ][0]
    assert g["StorageEncrypted"] is True
    by_arn = {m["DBClusterArn"]: m for m in g["GlobalClusterMembers"]}
    assert set(by_arn) == {primary["DBClusterArn"], dr["DBClusterArn"]}
    assert by_arn[primary["DBClusterArn"]]["IsWriter"] is True
    assert by_arn[dr["DBClusterArn"]]["IsWriter"] is False
    assert dr["DBClusterArn"].startswith(f"arn:aws:rds:{cfg.regions.dr}:")
    dr_key = plain(cfg, "kms", cfg.regions.dr).describe_key(KeyId=names_for(cfg, "dr").kms_alias)
    assert dr["StorageEncrypted"] is True and dr["KmsKeyId"] == dr_key["KeyMetadata"]["Arn"]
    assert dr["DBSubnetGroup"] == names_for(cfg, "dr").db_subnet_group
    assert dr["DeletionProtection"] is True and dr["IAMDatabaseAuthenticationEnabled"] is True
    assert [g["VpcSecurityGroupId"] for g in dr["VpcSecurityGroups"]] == [data_group(cfg, "dr")]
    (reader,) = instances(cfg, "dr")
    assert reader["AvailabilityZone"] in cfg.network.dr.azs


def test_dr_app_reads_the_secondary_and_the_replicated_secret(stack: dict) -> None:
    cfg = stack["cfg"]
    dr = names_for(cfg, "dr")
    td = plain(cfg, "ecs", dr.region).describe_task_definition(taskDefinition=dr.task_family("web"))
    c = td["taskDefinition"]["containerDefinitions"][0]
    env = {e["name"]: e["value"] for e in c["environment"]}
    assert env["DB_HOST"] == cluster(cfg, "dr")["Endpoint"]
    secret = cluster(cfg)["MasterUserSecret"]["SecretArn"]
    secrets = {s["name"]: s["valueFrom"] for s in c["secrets"]}
    assert secrets["DB_PASSWORD"].startswith(secret.replace(cfg.regions.primary, dr.region))
    status = plain(cfg, "secretsmanager").describe_secret(SecretId=secret)["ReplicationStatus"]
    assert [r["Region"] for r in status] == [cfg.regions.dr]


# -- drift ------------------------------------------------------------------------------------
def test_drift_is_planned_exactly_and_put_back(stack: dict) -> None:
    cfg, path = stack["cfg"], stack["path"]
    ident = names_for(cfg).db_cluster
    reader = f"{ident}-2"
    rds = plain(cfg, "rds")
    rds.modify_db_cluster(DBClusterIdentifier=ident, BackupRetentionPeriod=1, ApplyImmediately=True)
    rds.modify_db_instance(
        DBInstanceIdentifier=reader, DBInstanceClass="db.r6g.xlarge", ApplyImmediately=True
    )
    calls = watch(cfg)
    plan = provision(config=path, plan=True)
    assert calls.seen == []
    by_name = {c["name"]: c for c in plan["changes"]}
    assert sorted(by_name) == [ident, reader], plan["changes"]
    assert by_name[ident]["resource"] == "rds:cluster"
    assert (by_name[ident]["before"], by_name[ident]["after"]) == (
        {"BackupRetentionPeriod": 1},
        {"BackupRetentionPeriod": 7},
    )
    assert by_name[reader]["resource"] == "rds:cluster-instance"
    assert by_name[reader]["after"] == {"DBInstanceClass": cfg.database.instance_class}

    fixed = provision(config=path)
    assert len(fixed["changes"]) == 2
    assert calls.counted() == {"rds:ModifyDBCluster": 1, "rds:ModifyDBInstance": 1}
    assert cluster(cfg)["BackupRetentionPeriod"] == 7
    assert (
        rds.describe_db_instances(DBInstanceIdentifier=reader)["DBInstances"][0]["DBInstanceClass"]
        == cfg.database.instance_class
    )
    calls.reset()
    assert provision(config=path, plan=True)["changes"] == []
    assert calls.seen == []


def test_readiness_sees_the_secondary_replicating_not_promoted(stack: dict) -> None:
    """A global secondary names no replication source: it is still no writer, so a failover
    must promote it (not skip it as promoted before)."""
    from tasks.resources.database.lookup import dr_writes
    from tasks.runbooks.failover.readiness import check_dr_database

    finding, promoted = check_dr_database(stack["cfg"])
    assert (finding.status, promoted) == ("pass", False), finding
    assert "shop-sandbox-global" in finding.detail
    assert not dr_writes(stack["cfg"])


def test_provision_refuses_once_the_dr_cluster_has_left_the_global_database(stack: dict) -> None:
    """Detached (as a failover that promotes the secondary leaves it), the DR cluster is the
    writer: converging to the config would undo the failover. Runs last: it breaks the stack."""
    from configs.errors import Refused

    cfg = stack["cfg"]
    dr = cluster(cfg, "dr")
    plain(cfg, "rds", cfg.regions.dr).remove_from_global_cluster(
        GlobalClusterIdentifier=global_cluster_id(cfg), DbClusterIdentifier=dr["DBClusterArn"]
    )
    calls = watch(cfg)
    with pytest.raises(Refused, match=r"since a failover .* `tierbook failback`"):
        provision(config=stack["path"], plan=True)
    assert calls.seen == []
