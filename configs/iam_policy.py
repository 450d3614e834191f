"""The least-privilege IAM policy of one runbook for one environment (pure: config in, JSON out).

Actions come from :mod:`configs.permissions`. Beyond actions, the policy narrows:

* **Regions.** Regional services only in the config's primary and DR regions
  (``aws:RequestedRegion``). Global services (IAM, Route 53, CloudFront) and ARC's cluster
  (reached at whichever regional cluster endpoint answers) are in a statement of their own
  without that condition. A CLOUDFRONT-scope web ACL lives in us-east-1: provision gets its
  WAF actions there too, in a separate statement, when the config puts CloudFront in front.
* **Account.** Services whose every action tierbook uses accepts a resource ARN carrying the
  account (SQS, DynamoDB, Secrets Manager, CloudWatch Logs) are limited to ARNs of the config's
  account. The other regional services keep ``Resource: "*"``: many of their actions
  (``ec2:Describe*``, ``ecs:RegisterTaskDefinition``, ``kms:CreateKey``,
  ``route53:CreateHealthCheck``...) support no resource-level permission, and an ARN there would
  deny them. An identity policy reaches another account only where that account's resource
  policy lets it, so the account is bounded by where the role lives.
* **IAM.** Role actions only on the stack's roles (``role/<app>-<env>-*``: execution, task,
  flow-log and image-build roles); ``iam:PassRole`` only to the services that take them;
  service-linked roles only under ``role/aws-service-role/``.
"""

from __future__ import annotations

from typing import Any

from configs.errors import BadInput
from configs.models import Config
from configs.permissions import ALIASES, RUNBOOKS

GLOBAL = frozenset(
    {"iam", "route53", "cloudfront", "route53-recovery-cluster", "route53-recovery-control-config"}
)
IN_ACCOUNT = ("sqs", "dynamodb", "secretsmanager", "logs")
CLOUDFRONT_REGION = "us-east-1"
# The services tierbook passes its roles to: ECS tasks, VPC flow logs, CodeBuild.
PASSED_TO = ["ecs-tasks.amazonaws.com", "vpc-flow-logs.amazonaws.com", "codebuild.amazonaws.com"]


class UnknownRunbook(BadInput):
    """``tierbook iam-policy`` was asked for a runbook it has no permissions for."""


def runbook_name(name: str) -> str:
    """The runbook ``name`` means (an alias such as ``drill-backup`` included)."""
    name = ALIASES.get(name, name)
    if name not in RUNBOOKS:
        raise UnknownRunbook(
            f"unknown runbook {name!r}; known runbooks: {', '.join(sorted(RUNBOOKS))}"
        )
    return name


def partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def _statement(sid: str, actions: set[str], resource: Any, **condition: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Sid": sid,
        "Effect": "Allow",
        "Action": sorted(actions),
        "Resource": resource,
    }
    if condition:
        out["Condition"] = condition
    return out


def policy_for(cfg: Config, runbook: str) -> dict[str, Any]:
    """The IAM policy document (a dict, ready for ``json.dumps``) ``runbook`` needs on ``cfg``."""
    actions = set(RUNBOOKS[runbook_name(runbook)].actions)
    part = partition(cfg.regions.primary)
    account = cfg.account_id
    regions = {"aws:RequestedRegion": [cfg.regions.primary, cfg.regions.dr]}

    def take(keep: Any) -> set[str]:
        chosen = {a for a in actions if keep(a.split(":", 1)[0], a)}
        actions.difference_update(chosen)
        return chosen

    service_linked = take(lambda _p, a: a == "iam:CreateServiceLinkedRole")
    pass_role = take(lambda _p, a: a == "iam:PassRole")
    roles = take(lambda p, _a: p == "iam")
    edge_waf: set[str] = set()
    if cfg.edge and cfg.edge.cloudfront and CLOUDFRONT_REGION not in regions["aws:RequestedRegion"]:
        # AssociateWebACL is for the ALBs' regional ACLs only.
        edge_waf = {a for a in actions if a.startswith("wafv2:")} - {"wafv2:AssociateWebACL"}
    glob = take(lambda p, _a: p in GLOBAL)
    in_account = take(lambda p, _a: p in IN_ACCOUNT)
    stack_roles = f"arn:{part}:iam::{account}:role/{cfg.stack}-*"

    statements = [
        _statement("Regional", actions, "*", StringEquals=regions),
        _statement(
            "RegionalInAccount",
            in_account,
            sorted({f"arn:{part}:{a.split(':')[0]}:*:{account}:*" for a in in_account}),
            StringEquals=regions,
        ),
        _statement("Global", glob, "*"),
        _statement("StackRoles", roles, stack_roles),
        _statement(
            "PassStackRoles",
            pass_role,
            stack_roles,
            StringEquals={"iam:PassedToService": PASSED_TO},
        ),
        _statement(
            "ServiceLinkedRoles",
            service_linked,
            f"arn:{part}:iam::{account}:role/aws-service-role/*",
        ),
        _statement(
            "CloudFrontWebAcl",
            edge_waf,
            "*",
            StringEquals={"aws:RequestedRegion": [CLOUDFRONT_REGION]},
        ),
    ]
    return {"Version": "2012-10-17", "Statement": [s for s in statements if s["Action"]]}


def policy_actions(policy: dict[str, Any]) -> set[str]:
    """Every action a policy document names."""
    return {a for s in policy["Statement"] for a in s["Action"]}


def implicit_reasons(runbook: str) -> dict[str, str]:
    """Why each action the runbook needs but does not call is in its policy."""
    return dict(RUNBOOKS[runbook_name(runbook)].implicit)
