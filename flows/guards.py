"""Guards the stack-wide runbooks share: the checks a run that changes the stack opens with,
which regions a run touches, and the refusal to converge or tear down a stack that has failed
over (provision and destroy both ask)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context

from configs.errors import BadInput, Refused
from configs.models import Config
from configs.names import Role
from flows.fencing import fence_on_return
from flows.report import Timeline
from tasks.resources.database.lookup import dr_writes
from tasks.runbooks.failover.fencing import pending_fences
from tasks.runbooks.preflight import check_account


def open_run(
    tl: Timeline, cfg: Config, *, dry_run: bool, refuse: Callable[[Config], None] | None = None
) -> None:
    """The first steps of a run that changes the stack, in this order: the credentials reach
    the config's account; a region a region move left unfenced is fenced once it answers
    again; ``refuse``, a check that raises to refuse the run (provision and destroy:
    :func:`refuse_if_failed_over`), in its turn. Their reads go out at once (the caller's
    identity, the pending fences in DR's lock table, what ``refuse`` reads): the run waits one
    round trip for them, not three. Nothing is changed before the account is checked."""
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="tierbook-open")
    try:
        fences = pool.submit(copy_context().run, pending_fences, cfg)
        refused = pool.submit(copy_context().run, refuse, cfg) if refuse is not None else None
        check_account(cfg)
        fence_on_return(tl, cfg, dry_run=dry_run, read=fences)
        if refused is not None:
            refused.result()  # raises the refusal
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)  # the refusal is not held up by a read
        raise
    pool.shutdown()


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
