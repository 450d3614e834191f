"""The logger a step should use: the Prefect run logger inside a run, else ``tierbook``."""

from __future__ import annotations

import logging
from typing import Any


def logger() -> logging.Logger | logging.LoggerAdapter[Any]:
    from prefect.context import FlowRunContext, TaskRunContext
    from prefect.logging import get_run_logger

    if TaskRunContext.get() or FlowRunContext.get():
        return get_run_logger()
    return logging.getLogger("tierbook")
