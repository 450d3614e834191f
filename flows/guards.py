"""Guards the stack-wide runbooks share: which regions a run touches, and the refusal to
converge or tear down a stack that has failed over (provision and destroy both ask)."""

from __future__ import annotations

from configs.errors import BadInput, Refused
from configs.models import Config
from configs.names import Role
from tasks.resources.database.lookup import dr_writes


def refuse_if_failed_over(cfg: Config, consequence: str = "provision would undo it") -> None:
    """After a failover the DR database is the writer and the primary's services are fenced;
    converging to the config would undo that (and destroying would take the live writer).
    Failback is the way home."""
    if cfg.database.dr_replica and dr_writes(cfg):
        raise Refused(
            f"{cfg.stack} runs in {cfg.regions.dr} since a failover (the DR database is the "
            f"writer); {consequence} — run `tierbook failback` first"
        )


def roles_for(region: str) -> list[Role]:
    if region not in ("primary", "dr", "both"):
        raise BadInput(f"--region must be primary, dr or both (got {region!r})")
    return ["primary", "dr"] if region == "both" else [region]  # type: ignore[list-item]
