"""Config: the sandbox file validates; malformed and dangerous files fail naming field and reason."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from configs import ConfigError, load_config, names_for, parse_config
from tasks.core.aws import Aws

ROOT = Path(__file__).resolve().parents[2]
SANDBOX = ROOT / "configs" / "sandbox.yaml"


def base() -> dict[str, Any]:
    return yaml.safe_load(SANDBOX.read_text())


def with_change(path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(base())
    *parents, leaf = path.split(".")
    node = data
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node.setdefault(p, {})
    if value is DELETE:
        del node[leaf]
    else:
        node[leaf] = value
    return data


DELETE = object()

# (what is wrong, the change, the field path the error must name, words the reason must contain)
BAD = [
    ("unknown key", ("network.natgateways", 2), "network.natgateways", "unknown key"),
    ("account id", ("account_id", "12345"), "account_id", "pattern"),
    ("single-AZ database", ("database.multi_az", False), "database.multi_az", "single-AZ"),
    ("one NAT for all AZs", ("network.nat", "single"), "network.nat", "single point of failure"),
    ("one AZ", ("network.dr.azs", ["us-west-2a"]), "network.dr.azs", "availability zone"),
    (
        "data tier open",
        ("network.data_ingress_cidrs", ["0.0.0.0/0"]),
        "network.data_ingress_cidrs.0",
        "whole internet",
    ),
    (
        "plain secret",
        ("services.web.environment", {"DB_PASSWORD": "hunter2"}),
        "services.web.environment.DB_PASSWORD",
        "credential",
    ),
    ("same regions", ("regions.dr", "us-east-1"), "regions", "different regions"),
    (
        "AZ outside region",
        ("network.primary.azs", ["us-east-1a", "us-west-2b"]),
        "network.primary.azs",
        "not in region",
    ),
    ("desired above max", ("services.web.desired", 50), "services.web", "min <= desired <= max"),
    ("bad CIDR", ("network.primary.cidr", "10.0.0.0/33"), "network.primary.cidr", ""),
    (
        "cooldowns",
        (
            "services.web.scaling",
            {"scale_in_cooldown_seconds": 30, "scale_out_cooldown_seconds": 60},
        ),
        "services.web.scaling",
        "scale_in_cooldown",
    ),
    ("DLQ retention", ("queues.0.dlq_retention_seconds", 60), "queues.0", "dlq_retention_seconds"),
    (
        "cache without failover",
        ("cache.automatic_failover", False),
        "cache.automatic_failover",
        "failover",
    ),
    ("missing network", ("network", DELETE), "network", "required"),
    (
        "sandbox plus role",
        ("aws.role_arn", "arn:aws:iam::123456789012:role/x"),
        "aws",
        "cannot be combined",
    ),
    ("domain outside zone", ("edge.domain", "shop.other.org"), "edge", "not inside hosted_zone"),
]


@pytest.mark.parametrize(("case", "change", "field", "words"), BAD, ids=[b[0] for b in BAD])
def test_bad_config_names_field_and_reason(
    case: str, change: tuple[str, Any], field: str, words: str
) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(with_change(*change), source="bad.yaml")
    problems = err.value.problems
    assert any(p.path == field and words.lower() in p.message.lower() for p in problems), problems


def test_acknowledged_risk_is_accepted() -> None:
    data = with_change("database.multi_az", False)
    data["acknowledge"] = {"single_az_database": True}
    assert parse_config(data).database.multi_az is False


def test_sandbox_config_resolves_derived_names() -> None:
    cfg = load_config(SANDBOX)
    primary, dr = names_for(cfg, "primary"), names_for(cfg, "dr")
    assert primary.cluster == "shop-sandbox" and primary.service("web") == "shop-sandbox-web"
    assert dr.db_instance == "shop-sandbox-db-dr" != primary.db_instance
    assert primary.dlq("payments", fifo=True) == "shop-sandbox-payments-dlq.fifo"
    assert len(primary.alb) <= 32 and len(primary.target_group) <= 32


def test_adopted_names_win_over_derived() -> None:
    cfg = load_config(ROOT / "configs" / "production.example.yaml")
    assert names_for(cfg).vpc == "larkfield-prod-vpc"
    assert names_for(cfg, "dr").db_instance == "larkfield-prod-pg-usw2"
    assert names_for(cfg).service("worker") == "larkfield-prod-worker"


def test_dr_names_name_the_dr_database_and_route53_names_stay_per_region() -> None:
    data = base()
    data["names"] = {"alb": "tf-public", "health_check": "tf-east-check", "record_set_id": "east"}
    data["dr_names"] = {"db_instance": "tf-pg-west"}
    cfg = parse_config(data)
    primary, dr = names_for(cfg, "primary"), names_for(cfg, "dr")
    assert dr.db_instance == "tf-pg-west" and primary.db_instance == "shop-sandbox-db"
    assert dr.alb == primary.alb == "tf-public"  # regional: one name may serve both regions
    # Route 53 is global: the primary's check and record are never taken for DR's.
    assert (primary.health_check_reference, primary.record_set_id) == ("tf-east-check", "east")
    assert (dr.health_check_reference, dr.record_set_id) == ("shop-sandbox-dr", "shop-sandbox-dr")
    with pytest.raises(ConfigError) as err:
        parse_config({**data, "dr_names": {"record_set_id": "x" * 129}})
    assert [p.path for p in err.value.problems] == ["dr_names.record_set_id"]


@pytest.mark.parametrize("block", ["names", "dr_names"])
@pytest.mark.parametrize(
    ("old", "new"), [("dr_db_instance", "db_instance"), ("dr_db_cluster", "db_cluster")]
)
def test_the_retired_dr_database_spelling_is_refused_naming_the_one_to_use(
    block: str, old: str, new: str
) -> None:
    data = base()
    data[block] = {old: "tf-pg-west"}
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert err.value.exit_code == 2
    [problem] = err.value.problems
    assert problem.path == f"{block}.{old}"
    assert f"dr_names.{new}" in problem.message


def test_cli_validate_refuses_the_retired_dr_database_spelling(tmp_path: Path) -> None:
    data = base()
    data["names"] = {"dr_db_instance": "tf-pg-west"}
    bad = tmp_path / "old-spelling.yaml"
    bad.write_text(yaml.safe_dump(data))
    done = cli("config", "validate", str(bad))
    assert done.returncode == 2
    assert "names.dr_db_instance" in done.stderr and "dr_names.db_instance" in done.stderr


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], capture_output=True, text=True, cwd=ROOT, timeout=120
    )


def test_cli_validate_ok_prints_resolved_config() -> None:
    done = cli("config", "validate", "configs/sandbox.yaml")
    assert done.returncode == 0, done.stderr
    assert "derived_names" in done.stdout and "shop-sandbox-web" in done.stdout


def test_cli_validate_lists_every_problem_and_exits_2(tmp_path: Path) -> None:
    data = with_change("database.multi_az", False)
    data["network"]["nat"] = "single"
    data["services"]["web"]["environment"] = {"API_TOKEN": "abc"}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    done = cli("config", "validate", str(bad))
    assert done.returncode == 2
    lines = [
        ln
        for ln in done.stderr.splitlines()
        if ln.startswith(("database.", "network.", "services."))
    ]
    assert {ln.split(":")[0] for ln in lines} == {
        "database.multi_az",
        "network.nat",
        "services.web.environment.API_TOKEN",
    }


def test_cli_validate_malformed_yaml(tmp_path: Path) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text("app: shop\nnetwork: [unclosed\n")
    done = cli("config", "validate", str(bad))
    assert done.returncode == 2 and "not valid YAML" in done.stderr


def test_one_service_can_have_its_own_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    """LocalStack's SQS with the run locks' DynamoDB on the sandbox, say."""
    data = with_change("aws.service_endpoints", {"dynamodb": "http://127.0.0.1:5055"})
    assert parse_config(data).aws.service_endpoints == {"dynamodb": "http://127.0.0.1:5055"}
    monkeypatch.setenv("TIERBOOK_AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:6000")
    monkeypatch.setenv("TIERBOOK_AWS_ENDPOINT_URL_RESOURCE_GROUPS", "http://127.0.0.1:6001")
    cfg = parse_config(base())
    assert cfg.aws.service_endpoints == {
        "dynamodb": "http://127.0.0.1:6000",
        "resource-groups": "http://127.0.0.1:6001",
    }
    aws = Aws(cfg)
    assert aws.client("dynamodb", "us-east-1").meta.endpoint_url == "http://127.0.0.1:6000"
    assert aws.client("sqs", "us-east-1").meta.endpoint_url == cfg.aws.endpoint_url


def test_service_endpoints_only_next_to_an_emulator_endpoint() -> None:
    data = with_change("aws.service_endpoints", {"dynamodb": "http://127.0.0.1:5055"})
    del data["aws"]["endpoint_url"]
    with pytest.raises(ConfigError, match="service_endpoints"):
        parse_config(data)
    with pytest.raises(ConfigError, match="service_endpoints"):
        parse_config(with_change("aws.service_endpoints", {"DynamoDB": "http://x"}))
