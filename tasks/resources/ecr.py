"""ECR repositories of the services, and replication of their images to the DR region.

Tags are immutable (a deployed tag always means the same image, so a rollback is exact),
every push is scanned, and images are encrypted at rest. Replication is a registry-wide
setting: tierbook adds its own rule for its repositories and leaves other rules as they are.
Encryption cannot change on an existing repository; a mismatch is reported, never "fixed" by
recreating the repository (that would delete every image).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from configs.models import Config
from configs.names import Role, names_for
from tasks.core.aws import connect, role_client
from tasks.core.changes import Change, StepResult, created, deleted, result, tag_change, updated
from tasks.core.errors import AwsError
from tasks.core.retry import absent, is_code
from tasks.core.steps import step
from tasks.core.tags import missing_tags, tag_dict, tag_list
from tasks.resources.ecs import service_names
from tasks.resources.logs import delete_log_groups

RESOURCE = "ecr:repository"


REGISTRY = "ecr:registry"


ENCRYPTION = {"encryptionType": "AES256"}


def repository_settings(repo: dict[str, Any]) -> dict[str, Any]:
    return {
        "imageTagMutability": repo.get("imageTagMutability"),
        "scanOnPush": (repo.get("imageScanningConfiguration") or {}).get("scanOnPush", False),
    }


# Repository filters per replication rule (ECR quota).
# https://docs.aws.amazon.com/AmazonECR/latest/userguide/service-quotas.html
MAX_FILTERS = 100

DESIRED = {"imageTagMutability": "IMMUTABLE", "scanOnPush": True}


def replication_rules(
    current: list[dict[str, Any]], repositories: list[str], account: str, dr_region: str
) -> list[dict[str, Any]]:
    """``current`` rules with every repository covered by a rule replicating to ``dr_region``.

    A repository already replicated there by any rule (ours or another's) is left alone; the
    rest get one PREFIX_MATCH filter each in a single added rule."""
    destination = {"region": dr_region, "registryId": account}
    covered = set()
    for rule in current:
        if destination in rule.get("destinations", []):
            for f in rule.get("repositoryFilters") or [
                {"filter": "", "filterType": "PREFIX_MATCH"}
            ]:
                covered |= {r for r in repositories if r.startswith(f["filter"])}
    todo = [r for r in repositories if r not in covered]
    if not todo:
        return current
    filters = [{"filter": r, "filterType": "PREFIX_MATCH"} for r in todo]
    # Another stack's rule to the same region takes ours too: a registry has few rules (10 in
    # AWS) and many stacks may share an account (a fleet), each filter list up to 100.
    for i, rule in enumerate(current):
        own = rule.get("repositoryFilters") or []
        if rule.get("destinations") == [destination] and 0 < len(own) <= MAX_FILTERS - len(todo):
            return [
                *current[:i],
                {**rule, "repositoryFilters": [*own, *filters]},
                *current[i + 1 :],
            ]
    return [*current, {"destinations": [destination], "repositoryFilters": filters}]


def _describe(ecr: Any, name: str) -> dict[str, Any] | None:
    try:
        return dict(ecr.describe_repositories(repositoryNames=[name])["repositories"][0])
    except AwsError as exc:
        if is_code(exc, "RepositoryNotFoundException"):
            return None
        raise


@step("ensure {role} image repositories")
def ensure_repositories(cfg: Config, role: Role, *, dry_run: bool = False) -> StepResult:
    names = names_for(cfg, role)
    region = names.region
    ecr = connect(cfg).client("ecr", region)
    tags = names.tags("images")
    changes: list[Change] = []
    outputs: dict[str, dict[str, str]] = {}
    warnings: list[str] = []
    for svc, _ in cfg.services.items():
        name = names.repository(svc)
        repo = _describe(ecr, name)
        uri = f"{cfg.account_id}.dkr.ecr.{region}.amazonaws.com/{name}"
        arn = f"arn:aws:ecr:{region}:{cfg.account_id}:repository/{name}"
        outputs[svc] = {"name": name, "uri": uri, "arn": arn}
        if repo is None:
            changes.append(created(RESOURCE, name, region, {**DESIRED, **ENCRYPTION}))
            if not dry_run:
                ecr.create_repository(
                    repositoryName=name,
                    imageTagMutability="IMMUTABLE",
                    imageScanningConfiguration={"scanOnPush": True},
                    encryptionConfiguration=ENCRYPTION,
                    tags=tag_list(tags),
                )
            continue
        before, after = converge_settings(repository_settings(repo))
        if after:
            changes.append(updated(RESOURCE, name, region, before, after))
            if not dry_run and "imageTagMutability" in after:
                ecr.put_image_tag_mutability(repositoryName=name, imageTagMutability="IMMUTABLE")
            if not dry_run and "scanOnPush" in after:
                ecr.put_image_scanning_configuration(
                    repositoryName=name, imageScanningConfiguration={"scanOnPush": True}
                )
        if not (repo.get("encryptionConfiguration") or {}).get("encryptionType"):
            warnings.append(f"{name} has no encryption configuration (cannot change in place)")
        have = tag_dict(ecr.list_tags_for_resource(resourceArn=arn).get("tags"))
        if change := tag_change(RESOURCE, name, region, tags, have):
            changes.append(change)
            if not dry_run:
                todo = missing_tags(tags, have)
                ecr.tag_resource(resourceArn=arn, tags=tag_list(todo))
    if role == "primary":
        changes += _ensure_replication(cfg, ecr, [o["name"] for o in outputs.values()], dry_run)
    return StepResult(
        changes=changes,
        outputs={"repositories": outputs},
        applied=not dry_run,
        detail="; ".join(warnings),
    )


def converge_settings(actual: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    before = {k: actual.get(k) for k, v in DESIRED.items() if actual.get(k) != v}
    return before, {k: DESIRED[k] for k in before}


def _ensure_replication(
    cfg: Config, ecr: Any, repositories: list[str], dry_run: bool
) -> list[Change]:
    current = ecr.describe_registry().get("replicationConfiguration", {}).get("rules", [])
    wanted = replication_rules(current, repositories, cfg.account_id, cfg.regions.dr)
    if wanted == current:
        return []
    change = updated(
        REGISTRY, "replication", cfg.regions.primary, {"rules": current}, {"rules": wanted}
    )
    if not dry_run:
        ecr.put_replication_configuration(replicationConfiguration={"rules": wanted})
    return [change]


@step("delete {role} image repositories and log groups")
def ensure_repositories_deleted(cfg: Config, role: Role, *, dry_run: bool = False) -> StepResult:
    """ECR repositories with their images (force), and the services' log groups."""
    names = names_for(cfg, role)
    ecr = role_client(cfg, "ecr", role)
    changes: list[Change] = []
    for svc in service_names(cfg):
        repo = names.repository(svc)
        found = absent(
            partial(ecr.describe_repositories, repositoryNames=[repo]),
            "RepositoryNotFoundException",
        )
        if not found:
            continue
        changes.append(deleted("ecr:repository", repo, names.region, "with its images"))
        if not dry_run:
            ecr.delete_repository(repositoryName=repo, force=True)
    groups = [names.log_group(svc) for svc in service_names(cfg)]
    changes += delete_log_groups(cfg, role, groups, dry_run)
    return result(changes, dry_run)
