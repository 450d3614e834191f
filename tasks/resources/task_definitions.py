"""Task definitions as plain data: what to compare, what a new revision changes. Pure.

AWS adds fields to every registered revision (ARN, revision, status, requiresAttributes…) and
fills defaults we never set; comparing raw descriptions would see a difference every time. So
both sides are first reduced to what ``RegisterTaskDefinition`` accepts, normalised.
"""

from __future__ import annotations

from typing import Any

from configs.errors import ConfigError, Problem
from configs.models import SECRET_LIKE, Config, Service
from configs.names import Role, names_for

# Accepted by RegisterTaskDefinition; everything else in a description is AWS's bookkeeping.
REGISTRABLE = (
    "family",
    "taskRoleArn",
    "executionRoleArn",
    "networkMode",
    "containerDefinitions",
    "volumes",
    "placementConstraints",
    "requiresCompatibilities",
    "cpu",
    "memory",
    "pidMode",
    "ipcMode",
    "proxyConfiguration",
    "inferenceAccelerators",
    "ephemeralStorage",
    "runtimePlatform",
)


_EMPTY: tuple[Any, ...] = (None, [], {}, "")


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in sorted(value.items()) if v not in _EMPTY}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _container(c: dict[str, Any]) -> dict[str, Any]:
    c = dict(c)
    for key in ("environment", "secrets"):
        if key in c:
            c[key] = sorted(c[key], key=lambda kv: kv.get("name", ""))
    if "portMappings" in c:
        c["portMappings"] = [
            {"protocol": "tcp", **{k: v for k, v in pm.items() if k != "hostPort" or v}}
            for pm in c["portMappings"]
        ]
    c.setdefault("essential", True)
    if c.get("cpu") == 0:  # what ECS reports for a container given no cpu share
        del c["cpu"]
    return _clean(c)


def registrable(td: dict[str, Any]) -> dict[str, Any]:
    """``td`` (a description or a request) reduced to comparable registration input."""
    out = {k: td[k] for k in REGISTRABLE if k in td}
    for key in ("cpu", "memory"):
        if key in out and out[key] is not None:
            out[key] = str(out[key])
    out["containerDefinitions"] = sorted(
        (_container(c) for c in out.get("containerDefinitions", [])),
        key=lambda c: c.get("name", ""),
    )
    cleaned: dict[str, Any] = _clean(out)
    return cleaned


def differences(
    current: dict[str, Any] | None, desired: dict[str, Any]
) -> dict[str, tuple[Any, Any]]:
    """Readable diff ``{"container web.image": (old, new), "cpu": (old, new)}``; empty if equal."""
    if current is None:
        return {"taskDefinition": (None, desired.get("family"))}
    a, b = registrable(current), registrable(desired)
    out: dict[str, tuple[Any, Any]] = {}
    for key in sorted(set(a) | set(b)):
        if key == "containerDefinitions":
            continue
        if a.get(key) != b.get(key):
            out[key] = (a.get(key), b.get(key))
    old = {c.get("name"): c for c in a.get("containerDefinitions", [])}
    new = {c.get("name"): c for c in b.get("containerDefinitions", [])}
    for name in sorted(set(old) | set(new), key=str):
        oc, nc = old.get(name, {}), new.get(name, {})
        for key in sorted(set(oc) | set(nc)):
            if oc.get(key) != nc.get(key):
                out[f"container {name}.{key}"] = (oc.get(key), nc.get(key))
    return out


def with_image(td: dict[str, Any], image: str, container: str | None = None) -> dict[str, Any]:
    """Registration input for a copy of ``td`` whose container (default: first) runs ``image``."""
    out = registrable(td)
    containers = [dict(c) for c in out["containerDefinitions"]]
    target = container or containers[0]["name"]
    if not any(c["name"] == target for c in containers):
        raise KeyError(f"no container named {target!r} in task definition {td.get('family')}")
    for c in containers:
        if c["name"] == target:
            c["image"] = image
    out["containerDefinitions"] = containers
    return out


DB_ENV = ("DB_HOST", "DB_PORT", "DB_NAME")


def with_database(
    td: dict[str, Any], db_name: str, database: dict[str, Any] | None
) -> dict[str, Any]:
    """Registration input for a copy of ``td`` whose containers reach ``database`` (its
    ``endpoint`` and ``port``; None: no database settings at all). Pure."""
    out = registrable(td)
    containers = []
    for c in out["containerDefinitions"]:
        env = {e["name"]: e["value"] for e in c.get("environment", []) if e["name"] not in DB_ENV}
        if database:
            env |= {
                "DB_HOST": str(database["endpoint"]),
                "DB_PORT": str(database["port"]),
                "DB_NAME": db_name,
            }
        containers.append(
            {**c, "environment": [{"name": k, "value": v} for k, v in sorted(env.items())]}
        )
    out["containerDefinitions"] = containers
    return out


# Fargate platform pinned rather than LATEST, so a platform change is a reviewed config change.
PLATFORM_VERSION = "1.4.0"


DB_SECRET_KEYS = {"DB_USERNAME": "username", "DB_PASSWORD": "password"}


def container_secrets(cfg: Config, svc: str, db_secret_arn: str | None) -> list[dict[str, str]]:
    """``secrets`` of the container: the DB master credential (by JSON key) and the config's
    secrets, all as Secrets Manager ``valueFrom`` references, never values."""
    service: Service = getattr(cfg.services, svc)
    out = [{"name": k, "valueFrom": v} for k, v in sorted(service.secrets.items())]
    if db_secret_arn:
        out += [
            {"name": env, "valueFrom": f"{db_secret_arn}:{key}::"}
            for env, key in DB_SECRET_KEYS.items()
        ]
    return sorted(out, key=lambda s: s["name"])


def secret_arns(cfg: Config, db_secret_arn: str | None) -> list[str]:
    """Every secret any task definition references: what the execution role may read."""
    arns = {db_secret_arn} if db_secret_arn else set()
    for _, service in cfg.services.items():
        arns |= set(service.secrets.values())
    return sorted(arns)


def container_environment(
    cfg: Config, svc: str, database: dict[str, Any] | None, queues: dict[str, str]
) -> list[dict[str, str]]:
    """Plain settings only; a secret-looking name here is refused unless acknowledged."""
    service: Service = getattr(cfg.services, svc)
    env = dict(service.environment)
    if database:
        env.setdefault("DB_HOST", str(database["endpoint"]))
        env.setdefault("DB_PORT", str(database.get("port", cfg.database.port)))
        env.setdefault("DB_NAME", cfg.database.db_name)
    for name, url in sorted(queues.items()):
        env.setdefault(f"QUEUE_{name.upper().replace('-', '_')}_URL", url)
    leaked = [
        k for k in env if SECRET_LIKE.search(k) and k not in cfg.acknowledge.plain_env_secrets
    ]
    if leaked:
        raise ConfigError(
            "config",
            [Problem(f"services.{svc}.environment", f"{leaked} look like secrets; use secrets:")],
        )
    return [{"name": k, "value": v} for k, v in sorted(env.items())]


def image_uri(cfg: Config, role: Role, svc: str) -> str:
    names = names_for(cfg, role)
    service: Service = getattr(cfg.services, svc)
    registry = f"{cfg.account_id}.dkr.ecr.{names.region}.amazonaws.com"
    return f"{registry}/{names.repository(svc)}:{service.image_tag}"


def task_definition(
    cfg: Config,
    role: Role,
    svc: str,
    *,
    execution_role_arn: str,
    task_role_arn: str,
    db_secret_arn: str | None,
    database: dict[str, Any] | None = None,
    queues: dict[str, str] | None = None,
) -> dict[str, Any]:
    """``RegisterTaskDefinition`` input for ``svc``: Fargate, awsvpc, logs to its log group."""
    names = names_for(cfg, role)
    service: Service = getattr(cfg.services, svc)
    container: dict[str, Any] = {
        "name": svc,
        "image": image_uri(cfg, role, svc),
        "essential": True,
        "environment": container_environment(cfg, svc, database, queues or {}),
        "secrets": container_secrets(cfg, svc, db_secret_arn),
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": names.log_group(svc),
                "awslogs-region": names.region,
                "awslogs-stream-prefix": svc,
            },
        },
    }
    if service.port:
        container["portMappings"] = [{"containerPort": service.port, "protocol": "tcp"}]
    if service.command:
        container["command"] = list(service.command)
    return {
        "family": names.task_family(svc),
        "taskRoleArn": task_role_arn,
        "executionRoleArn": execution_role_arn,
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": str(service.cpu),
        "memory": str(service.memory),
        "runtimePlatform": {"cpuArchitecture": "X86_64", "operatingSystemFamily": "LINUX"},
        "containerDefinitions": [container],
    }
