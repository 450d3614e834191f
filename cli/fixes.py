"""What would make a refused failover pass: one fix per failed readiness check.

A refusal that only says "force it" sends the operator the wrong way at 3 a.m. Each failed
check (from the report's readiness notes) maps to the command or AWS call that repairs it.
"""

from __future__ import annotations

import re
from typing import Any

NOTE = re.compile(r"^readiness (?P<check>[\w-]+): fail — (?P<detail>.*)$")


def _tags(detail: str) -> list[str]:
    """``repo:tag`` references in a dr-image detail → the tags."""
    return sorted(set(re.findall(r"[\w./-]+:([\w.-]+)", detail)))


def fix_for(check: str, detail: str, primary: str, dr: str) -> str | None:
    if check == "dr-image":
        tag = " / ".join(_tags(detail)) or "<tag>"
        return (
            f"put the image in {dr}: `tierbook deploy --service all --tag {tag} --source "
            f"codebuild` builds it in {primary} and registry replication copies it to {dr} (or "
            f"push the tag to the {primary} repository from CI, then `tierbook deploy --tag "
            f"{tag}`)"
        )
    if check == "dr-services":
        if "missing" in detail:
            return "create the DR services: `tierbook provision --region dr`"
        return "bring DR in step with the primary: `tierbook deploy --tag <the primary's tag>`"
    if check == "secret":
        return (
            f"replicate the database's master secret to {dr}: `tierbook provision` (its "
            f"secret step), or `aws secretsmanager replicate-secret-to-regions --secret-id "
            f"<arn> --add-replica-regions Region={dr}`"
        )
    if check == "dr-database":
        if "promoted" in detail or "standalone" in detail:
            return "DR already writes: `tierbook failback` first, then fail over again"
        return "create or repair the cross-region replica: `tierbook provision --region both`"
    if check == "dr-load-balancer":
        return "create the DR load balancer and target group: `tierbook provision --region dr`"
    if check == "dns":
        return "create the failover records and the health check: `tierbook provision`"
    if check == "replica-lag":
        return (
            "wait until the replica catches up (`tierbook drill readiness` shows the lag), "
            "or fail over knowingly with `--force '<reason>'`"
        )
    return None


def fixes(report: dict[str, Any] | None, primary: str, dr: str) -> list[str]:
    """The fixes for the failed readiness checks named in ``report``'s notes."""
    found = []
    for note in (report or {}).get("notes") or []:
        if (m := NOTE.match(str(note))) and (fix := fix_for(m["check"], m["detail"], primary, dr)):
            found.append(f"{m['check']}: {fix}")
    return found
