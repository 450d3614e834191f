"""What the app tier should look like, as plain data built from the config. Pure.

The ECS steps (``tasks.ecs``) register and compare these; the IAM step (``tasks.iam``) grants
the execution role exactly the secrets these task definitions reference, so the two can never
disagree about which secrets a task reads.
"""

from __future__ import annotations

from typing import Any

from configs.errors import ConfigError, Problem
from configs.models import SECRET_LIKE, Config, Service
from configs.names import Role, names_for

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
