"""Which flows are deployed, with which schedules and forms. Add a runbook here when it lands."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from prefect.client.schemas.schedules import CronSchedule
from prefect.deployments.runner import RunnerDeployment
from prefect.utilities.callables import ParameterSchema

from configs import Config, config_path, resolve_config
from configs.fleet import fleet_path, load_fleet
from configs.models import Schedule
from flows.approval import CLI_ONLY_PARAMETERS
from flows.audit import audit
from flows.deploy import deploy, rollback
from flows.destroy import destroy
from flows.dispatch import SEPARATOR
from flows.dispatch import deployment_name as named
from flows.drills import backup_drill, game_day
from flows.failover import failback, failover, switchover
from flows.fleet import READ_ONLY
from flows.fleet import fleet as fleet_flow
from flows.preflight import preflight
from flows.provision import provision
from flows.readiness import readiness_drill
from flows.redrive import redrive
from flows.region_drill import region_drill
from flows.snapshot_copy import snapshot_copy

# deployment flow name -> flow
RUNBOOKS: dict[str, Any] = {
    "preflight": preflight,
    "provision": provision,
    "deploy": deploy,
    "rollback": rollback,
    "redrive": redrive,
    "failover": failover,
    "switchover": switchover,
    "failback": failback,
    "drill-readiness": readiness_drill,
    "backup-drill": backup_drill,
    "game-day": game_day,
    "drill-region": region_drill,
    "audit": audit,
    "snapshot-copy": snapshot_copy,
    "destroy": destroy,
}

# flow name -> the config's schedule for it
SCHEDULES: dict[str, Callable[[Config], Schedule]] = {
    "drill-readiness": lambda cfg: cfg.drills.readiness,
    "backup-drill": lambda cfg: cfg.drills.backup_restore,
    "game-day": lambda cfg: cfg.drills.game_day,
    "drill-region": lambda cfg: cfg.drills.region,
    "audit": lambda cfg: cfg.drills.audit,
    "snapshot-copy": lambda cfg: cfg.dr.snapshot_copy,
}

# Runbooks deployed only for the environments whose config needs them.
NEEDED: dict[str, Callable[[Config], bool]] = {"snapshot-copy": lambda cfg: cfg.restores}

# Runbooks whose form starts safe: a plan, until the operator unticks it.
PLAN_FIRST = frozenset({"provision", "destroy"})

# Runbooks approved only in the paused run's form (a typed approval), never by a parameter.
TYPED_APPROVAL = frozenset({"failover", "switchover", "failback", "drill-region", "destroy"})


class ClosedParameterSchema(ParameterSchema):
    """A parameter schema that names every parameter a run may pass: with schema
    enforcement (on for these deployments) the API refuses any other.

    The runner sends a schema without the fields left at their defaults, so every field the
    UI needs is set explicitly: without ``type: object`` at its root the UI cannot tell the
    schema is a form and offers a JSON editor instead of the fields."""

    additionalProperties: bool = False  # the JSON Schema keyword

    @classmethod
    def of(
        cls, properties: dict[str, Any], required: list[str], definitions: dict[str, Any]
    ) -> ClosedParameterSchema:
        return cls(
            title="Parameters",
            type="object",
            additionalProperties=False,
            properties=properties,
            required=required,
            definitions=definitions,
        )


def deployment_name(runbook: str, cfg: Config) -> str:
    """What the UI's deployment list shows: the runbook and the environment."""
    return named(runbook, cfg.stack)


def config_ref(config: str) -> str:
    """How a run finds the config, from any working directory: its name when it lives in
    the configs directory, else its absolute path."""
    path = config_path(config).resolve()
    return path.stem if path.parent == config_path(path.stem).resolve().parent else str(path)


def summary(flow: Any) -> str | None:
    """The flow's docstring up to its ``Args:`` section (the section feeds the form)."""
    text = (flow.description or "").split("\nArgs:")[0].strip()
    return text or None


def form(
    schema: ParameterSchema, *, runbook: str, ref: str, served: Sequence[str]
) -> ClosedParameterSchema:
    """The deployment's form: no up-front approval where the pause must approve, the
    environment picked from those this process serves, nothing else accepted."""
    properties = dict(schema.properties)
    if runbook in TYPED_APPROVAL:
        for name in CLI_ONLY_PARAMETERS:
            properties.pop(name, None)
    properties["config"] = {
        **properties["config"],
        "title": "environment",
        "description": "The environment to act on (one this server serves).",
        "enum": list(served),
        "default": ref,
    }
    for name, value in defaults_for(runbook).items():
        properties[name] = {**properties[name], "default": value}
    return ClosedParameterSchema.of(
        properties=properties,
        required=[name for name in schema.required if name in properties],
        definitions=schema.definitions,
    )


def tags_for(cfg: Config) -> list[str]:
    return ["tierbook", cfg.stack, f"app:{cfg.app}", f"env:{cfg.env}"]


def runbooks_for(cfg: Config) -> dict[str, Any]:
    """The runbooks deployed for ``cfg``'s environment (those it needs), by name."""
    return {
        runbook: flow
        for runbook, flow in RUNBOOKS.items()
        if runbook not in NEEDED or NEEDED[runbook](cfg)
    }


def schedule_for(runbook: str, cfg: Config) -> Schedule | None:
    """The config's schedule for ``runbook``; None: it runs when started."""
    schedule = SCHEDULES[runbook](cfg) if runbook in SCHEDULES else None
    return schedule if schedule and schedule.cron else None


def defaults_for(runbook: str) -> dict[str, Any]:
    return {"plan": True} if runbook in PLAN_FIRST else {}


def build(*configs: str) -> list[RunnerDeployment]:
    """Every runbook's deployment for each environment ``configs`` name, named after both."""
    loaded = [(resolve_config(config), config_ref(config)) for config in configs]
    served = [ref for _, ref in loaded]
    deployments = []
    for cfg, ref in loaded:
        for runbook, flow in runbooks_for(cfg).items():
            schedule = schedule_for(runbook, cfg)
            deployment = flow.to_deployment(
                name=deployment_name(runbook, cfg),
                parameters={"config": ref, **defaults_for(runbook)},
                tags=tags_for(cfg),
                description=summary(flow),
                enforce_parameter_schema=True,
                schedules=(
                    [CronSchedule(cron=schedule.cron, timezone=schedule.timezone)]
                    if schedule and schedule.cron
                    else None
                ),
            )
            deployment._parameter_openapi_schema = form(
                deployment._parameter_openapi_schema, runbook=runbook, ref=ref, served=served
            )
            deployments.append(deployment)
    return deployments


def build_fleets(*fleets: str) -> list[RunnerDeployment]:
    """A fleet's readiness scorecard for each fleet file ``fleets`` names, on the fleet's
    ``scorecard`` schedule: every environment, every wave (a failed one does not stop the
    rest). Its form offers the read-only fleet runbooks only: a region move of a fleet is
    the CLI's (``tierbook fleet failover``), approved once for the whole fleet."""
    loaded = [(load_fleet(ref), str(fleet_path(ref).resolve())) for ref in fleets]
    served = [ref for _, ref in loaded]
    deployments = []
    for spec, ref in loaded:
        # Called outside an event loop, to_deployment returns the deployment, not a coroutine.
        deployment: RunnerDeployment = fleet_flow.to_deployment(  # type: ignore[assignment]
            name=f"fleet-readiness{SEPARATOR}{spec.name}",
            parameters={"fleet": ref, "runbook": "readiness", "continue_on_error": True},
            tags=["tierbook", "fleet", f"fleet:{spec.name}"],
            description=summary(fleet_flow),
            enforce_parameter_schema=True,
            schedules=(
                [CronSchedule(cron=spec.scorecard.cron, timezone=spec.scorecard.timezone)]
                if spec.scorecard.cron
                else None
            ),
        )
        schema = deployment._parameter_openapi_schema
        properties = {k: v for k, v in schema.properties.items() if k in FLEET_FORM}
        properties["fleet"] = {**properties["fleet"], "enum": served, "default": ref}
        properties["runbook"] = {
            **properties["runbook"],
            "enum": sorted(READ_ONLY),
            "default": "readiness",
        }
        properties["continue_on_error"] = {**properties["continue_on_error"], "default": True}
        deployment._parameter_openapi_schema = ClosedParameterSchema.of(
            properties=properties,
            required=[],
            definitions=schema.definitions,
        )
        deployments.append(deployment)
    return deployments


# What a fleet deployment's form offers: nothing that moves a region or approves one.
FLEET_FORM = frozenset({"fleet", "runbook", "continue_on_error", "only"})
