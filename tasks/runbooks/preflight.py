"""Read-only checks that a run can start: the right account, every region answering."""

from __future__ import annotations

from configs.models import Config
from tasks.core.aws import connect
from tasks.core.changes import StepResult
from tasks.core.steps import step


@step("check account")
def check_account(cfg: Config) -> StepResult:
    account = connect(cfg).verify_account()
    return StepResult(
        outputs={"account": account},
        detail=f"account {account} matches the config",
        status="passed",
    )


@step("check {region} answers")
def check_region(cfg: Config, region: str) -> StepResult:
    ec2 = connect(cfg).client("ec2", region)
    zones = ec2.describe_availability_zones()["AvailabilityZones"]
    names = sorted(z["ZoneName"] for z in zones if z.get("State") == "available")
    return StepResult(outputs={"azs": names}, detail=f"{len(names)} AZs available", status="passed")
