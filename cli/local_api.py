"""The temporary Prefect API of one CLI process (started by :mod:`cli.prefect_env`).

Prefect's API app under uvicorn, plus a watchdog: when the CLI that started it is gone
(finished, interrupted, killed), the server goes too — nothing is left behind.
"""

from __future__ import annotations

import argparse
import os
import threading
import time


def _watch(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            os._exit(0)
        time.sleep(0.25)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--parent", type=int, required=True)
    args = parser.parse_args()
    threading.Thread(target=_watch, args=(args.parent,), daemon=True).start()
    import uvicorn

    uvicorn.run(
        "prefect.server.api.server:create_app",
        factory=True,
        host="127.0.0.1",
        port=args.port,
        log_level="error",
        lifespan="on",
    )


if __name__ == "__main__":
    main()
