"""A fleet: many environments moved or checked together, in waves. Pure: no boto3, no Prefect.

A fleet file names its environments (each by a config, as a name under the configs directory
or a path relative to the fleet file) and orders them into **waves**: the environments of one
wave run together, a wave starts once the one before it has finished. An environment may reach
its own account: ``account_id`` and ``role_arn`` (with ``external_id``) override the config's,
so one set of base credentials assumes each environment's role and the wrong-account guard
holds per environment::

    name: sandbox-fleet
    environments:
      shop:
        config: sandbox
      blog:
        config: blog-sandbox.yaml
        account_id: "210987654321"
        role_arn: arn:aws:iam::210987654321:role/tierbook
    waves:
      - [shop]
      - [blog]
    scorecard:
      cron: "*/30 * * * *"   # the fleet's readiness scorecard (a deployment), UTC
    work_pool: tierbook      # optional: each environment's run goes to this Prefect work pool

Waves are an ordered list, so there is no cycle to find; what can be wrong (an unknown
environment, one in two waves or in none, an empty wave, two environments that are the same
stack, a config that does not load) is refused with the field named, before any AWS call.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError, model_validator

from configs.errors import ConfigError, Problem
from configs.loader import (
    config_dir,
    config_path,
    named_path,
    parse_config,
    problems_from,
    read_yaml,
)
from configs.models import ARN, Config, Schedule, Strict

NAME = r"^[a-z][a-z0-9-]{0,39}$"
# A Prefect work pool's name as tierbook accepts it: no spaces, quotes or slashes.
POOL = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"


class FleetEnvironment(Strict):
    """One environment of the fleet: its config, and where it lives when not where the
    config says (its own account, reached by its role)."""

    config: Annotated[str, Field(min_length=1)]
    account_id: Annotated[str | None, Field(pattern=r"^\d{12}$")] = None
    role_arn: Annotated[str | None, Field(pattern=ARN)] = None
    external_id: str | None = None

    def overrides(self) -> dict[str, Any]:
        """What this entry changes in the config's own data (empty: the config as it is)."""
        out: dict[str, Any] = {}
        if self.account_id:
            out["account_id"] = self.account_id
        access = {
            k: v for k, v in (("role_arn", self.role_arn), ("external_id", self.external_id)) if v
        }
        if access:
            out["aws"] = access
        return out


class FleetFile(Strict):
    """The fleet file as written: names and waves, before any config is read."""

    name: Annotated[str, Field(pattern=NAME)]
    environments: Annotated[dict[str, FleetEnvironment], Field(min_length=1)]
    waves: Annotated[list[list[str]], Field(min_length=1)]
    # When the fleet's readiness scorecard runs (``tierbook serve --fleet``); no cron: never.
    scorecard: Schedule = Schedule(cron="*/30 * * * *")
    # The Prefect work pool the environments' runs are dispatched to when the fleet runs
    # against a server; none: they run in the fleet's own process.
    work_pool: Annotated[str | None, Field(pattern=POOL)] = None

    @model_validator(mode="after")
    def _waves_cover_each_environment_once(self) -> FleetFile:
        problems: list[str] = []
        seen: dict[str, int] = {}
        for i, wave in enumerate(self.waves):
            if not wave:
                problems.append(f"waves.{i}: a wave needs at least one environment")
            for j, env in enumerate(wave):
                if env not in self.environments:
                    problems.append(f"waves.{i}.{j}: unknown environment {env!r}")
                elif env in seen:
                    problems.append(f"waves.{i}.{j}: {env!r} is already in wave {seen[env]}")
                else:
                    seen[env] = i
        for env in self.environments:
            if env not in seen:
                problems.append(f"environments.{env}: in no wave")
        if problems:
            # One ValueError per model: the loader splits the lines back into problems.
            raise ValueError("\n".join(problems))
        return self


@dataclass(frozen=True)
class Member:
    """One environment of a loaded fleet: its name in the fleet, the config file it came
    from, and the config with the fleet's overrides applied."""

    name: str
    source: Path
    cfg: Config
    overrides: dict[str, Any]


@dataclass(frozen=True)
class Fleet:
    name: str
    members: dict[str, Member]
    waves: tuple[tuple[str, ...], ...]
    scorecard: Schedule
    work_pool: str | None = None

    def only(self, env: str) -> Fleet:
        """The fleet cut down to ``env`` (a rerun of one environment)."""
        if env not in self.members:
            raise ConfigError(
                self.name,
                [Problem("only", f"{env!r} is not in the fleet ({', '.join(self.members)})")],
            )
        return Fleet(self.name, {env: self.members[env]}, ((env,),), self.scorecard, self.work_pool)


def _split(problems: list[Problem]) -> list[Problem]:
    """A validator's several lines, each ``field: message``, as separate problems."""
    out = []
    for p in problems:
        for line in p.message.splitlines():
            field, sep, message = line.partition(": ")
            out.append(
                Problem(field, message) if sep and " " not in field else Problem(p.path, line)
            )
    return out


def parse_fleet(data: Any, *, source: str = "<fleet>", base: Path | None = None) -> Fleet:
    """Validate a fleet and load every environment's config (``base``: the fleet file's
    folder, where relative config paths start). Raises :class:`ConfigError` naming fields."""
    if not isinstance(data, dict):
        raise ConfigError(source, [Problem("", "the file must hold a mapping of keys to values")])
    try:
        spec = FleetFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, _split(problems_from(exc))) from None
    members: dict[str, Member] = {}
    problems: list[Problem] = []
    stacks: dict[str, str] = {}
    for env, entry in spec.environments.items():
        path = member_path(entry.config, base)
        try:
            cfg = parse_config(with_overrides(read_yaml(path), entry.overrides()), source=str(path))
        except ConfigError as exc:
            problems += [
                Problem(f"environments.{env}.config", f"{exc.source}: {p}") for p in exc.problems
            ]
            continue
        if cfg.stack in stacks:
            problems.append(
                Problem(
                    f"environments.{env}.config",
                    f"stack {cfg.stack} is also environments.{stacks[cfg.stack]}",
                )
            )
            continue
        stacks[cfg.stack] = env
        members[env] = Member(env, path, cfg, entry.overrides())
    if problems:
        raise ConfigError(source, problems)
    return Fleet(
        spec.name, members, tuple(tuple(w) for w in spec.waves), spec.scorecard, spec.work_pool
    )


def member_path(ref: str, base: Path | None) -> Path:
    """A config named in a fleet: a path relative to the fleet file, else an environment name
    in the configs directory."""
    p = Path(ref)
    if p.suffix in (".yaml", ".yml") and not p.is_absolute() and base is not None:
        return base / p
    return config_path(ref)


def with_overrides(data: Any, overrides: dict[str, Any]) -> Any:
    """A config's data with the fleet's account and role in it (validated as a config after:
    a role with the sandbox's endpoint is refused as it would be in the config file)."""
    if not overrides or not isinstance(data, dict):
        return data
    aws = {**(data.get("aws") or {}), **overrides.get("aws", {})}
    return {**data, **overrides, "aws": aws}


def load_fleet(path: str | Path) -> Fleet:
    """Read and validate the fleet file at ``path`` and every config it names."""
    p = fleet_path(path)
    return parse_fleet(read_yaml(p), source=str(p), base=p.parent)


def fleet_path(ref: str | Path) -> Path:
    """A fleet file from a path, or from a name (``sandbox`` → ``<config dir>/fleets/sandbox.yaml``)."""
    return named_path(ref, config_dir() / "fleets")
