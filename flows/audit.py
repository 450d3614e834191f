"""Audit: check a live stack against the seeds' anti-patterns. Read-only.

The runbook, as it would read on a wiki:

1. Find the stack's VPC in each region (by the config's name, else its CIDR).
2. Check, side by side: databases, the DR replica, the cache (failover, encryption), queues
   (DLQ and its retention), and in both regions security groups on the data ports, NAT
   gateways per AZ, load balancers (stickiness, HTTP without redirect) and task definitions
   (credentials in plain env).
3. Report every finding with its severity and resource. Any ``high`` finding fails the run
   (exit 1), so a schedule or CI job notices; so does a check that could not run (the others
   are still reported).

Works on stacks tierbook did not build: nothing depends on tierbook's own tags.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from configs import resolve_config
from configs.names import Role
from flows.fencing import report_fences
from flows.report import publish_table, runbook
from tasks.runbooks.audit.checks import (
    check_cache,
    check_databases,
    check_dr_replica,
    check_load_balancers,
    check_nat,
    check_queues,
    check_security_groups,
    check_task_definitions,
    find_vpc_id,
)
from tasks.runbooks.audit.rules import Finding, ordered

ROLES: tuple[Role, ...] = ("primary", "dr")


def publish_findings(environment: str, findings: list[Finding]) -> None:
    rows = [
        {"severity": f.severity, "id": f.id, "resource": f.resource, "message": f.message}
        for f in findings
    ]
    publish_table(
        f"audit-findings-{environment}",
        rows or [{"severity": "-", "id": "-", "resource": "-", "message": "no findings"}],
        f"audit findings for {environment}",
    )


@flow(name="audit", persist_result=False)
def audit(config: str = "sandbox") -> dict[str, Any]:
    """Check the live stack against the anti-patterns; fail on any high-severity finding.

    Args:
        config: The environment: its config's name under configs/ or a path to its YAML file.
    """
    cfg = resolve_config(config)
    with runbook("audit", cfg.stack) as tl:
        report_fences(tl, cfg)
        vpcs: dict[Role, str | None] = {}
        for role in ROLES:
            with tl.step(f"find {role} VPC") as info:
                vpcs[role] = find_vpc_id(cfg, role)
                info["detail"] = vpcs[role] or "not found: VPC-wide checks skipped"
        futures = {
            "databases": check_databases.submit(cfg, vpcs["primary"]),
            "DR replica": check_dr_replica.submit(cfg, vpcs["primary"]),
            "cache": check_cache.submit(cfg),
            "queues": check_queues.submit(cfg),
        }
        for role in ROLES:
            futures[f"{role} security groups"] = check_security_groups.submit(cfg, role, vpcs[role])
            futures[f"{role} NAT gateways"] = check_nat.submit(cfg, role, vpcs[role])
            futures[f"{role} load balancers"] = check_load_balancers.submit(cfg, role, vpcs[role])
            futures[f"{role} task definitions"] = check_task_definitions.submit(cfg, role)
        found: list[Finding] = []
        incomplete: list[str] = []
        for what, future in futures.items():
            # one check that cannot run (access denied, a service down) does not hide the rest
            try:
                outputs = future.result().outputs
            except Exception as exc:
                incomplete.append(what)
                tl.note(f"check of {what} could not run: {exc}")
                continue
            found += [Finding.model_validate(x) for x in outputs.get("findings", [])]
        findings = ordered(found)
        high = [f for f in findings if f.severity == "high"]
        tl.metrics["findings"] = len(findings)
        tl.metrics["high"] = len(high)
        tl.metrics["medium"] = sum(f.severity == "medium" for f in findings)
        tl.metrics["low"] = sum(f.severity == "low" for f in findings)
        for f in findings:
            tl.note(f"{f.severity}: {f.id} · {f.resource} · {f.message}")
        publish_findings(cfg.stack, findings)
        problems = []
        if high:
            problems.append(
                f"{len(high)} high-severity finding(s): " + ", ".join(sorted({f.id for f in high}))
            )
        if incomplete:
            tl.metrics["checks_not_run"] = ", ".join(incomplete)
            problems.append(f"incomplete: {', '.join(incomplete)} could not be checked")
        if problems:
            tl.outcome = "failed"
            tl.error = "; ".join(problems)
    report = tl.model_dump(mode="json")
    report["findings"] = [f.model_dump() for f in findings]
    return report
