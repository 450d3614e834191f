"""Test support for tierbook, imported by tests and benchmarks like ``prefect.testing``.

Importing it changes nothing: no environment variable is set, no server started, no client
made. Every setting is a value the caller applies on purpose and can print.

* settings: :func:`isolated_environment`, :func:`poll_environment`, :func:`environment`,
  :func:`poll_scale`, :func:`describe` (the banner a benchmark prints);
* emulators on a free port: :func:`running_sandbox` (in this process),
  :func:`sandbox_process` (``python -m sandbox``), :func:`moto_process` (plain moto);
  :data:`TEST_TIMINGS`; :func:`postgres` (a throwaway PostgreSQL for a Prefect server);
  :func:`listening_pid` and :func:`cpu_seconds` (an emulator's CPU, where it runs);
* accounts: :func:`reset_aws`, :func:`fresh_account`, :func:`plain`, :func:`make_network`;
* stacks: :func:`push`, :func:`push_images`, :class:`Stack` and its readers;
* calls: :class:`Calls`, :func:`watch`, :func:`plan_build_rerun`;
* queues: :func:`make_queues`, :func:`dlq_pair` and message makers;
* Prefect: :func:`start_server` (a test server with only the services it needs; :func:`running_server`
  for a block), :func:`resume`.

sandbox/ does not import tasks/ or flows/: what is needed from them (tierbook's boto3 session,
the rule for what mutates, the provision flow) is passed in by the caller.
"""

from sandbox.testing.accounts import (
    ZONE,
    Net,
    fresh_account,
    make_network,
    plain,
    reset_aws,
    web_target_group,
)
from sandbox.testing.calls import Calls, Mutations, plan_build_rerun, watch
from sandbox.testing.environment import (
    CONFIG,
    ROOT,
    TEST_POLL_SCALE,
    describe,
    environment,
    free_port,
    isolated_environment,
    poll_environment,
    poll_scale,
    restore_environment,
    set_environment,
)
from sandbox.testing.prefect import (
    SERVER_TEST_TIMEOUT_S,
    PrefectServer,
    resume,
    running_server,
    start_server,
)
from sandbox.testing.queues import (
    Pair,
    SandboxQueues,
    dlq_pair,
    fifo_messages,
    make_queues,
    sent_shape,
    shape,
    standard_messages,
)
from sandbox.testing.servers import (
    TEST_TIMINGS,
    NoPostgres,
    Sandbox,
    cpu_seconds,
    listening_pid,
    machine_ticks,
    moto_process,
    postgres,
    running_sandbox,
    sandbox_process,
    status_server,
)
from sandbox.testing.stacks import (
    MANIFEST,
    Stack,
    manifest,
    push,
    push_images,
    revisions,
    service,
    taskdef,
)

__all__ = [
    "CONFIG",
    "MANIFEST",
    "ROOT",
    "SERVER_TEST_TIMEOUT_S",
    "TEST_POLL_SCALE",
    "TEST_TIMINGS",
    "ZONE",
    "Calls",
    "Mutations",
    "Net",
    "NoPostgres",
    "Pair",
    "PrefectServer",
    "Sandbox",
    "SandboxQueues",
    "Stack",
    "cpu_seconds",
    "describe",
    "dlq_pair",
    "environment",
    "fifo_messages",
    "free_port",
    "fresh_account",
    "isolated_environment",
    "listening_pid",
    "machine_ticks",
    "make_network",
    "make_queues",
    "manifest",
    "moto_process",
    "plain",
    "plan_build_rerun",
    "poll_environment",
    "poll_scale",
    "postgres",
    "push",
    "push_images",
    "reset_aws",
    "restore_environment",
    "resume",
    "revisions",
    "running_sandbox",
    "running_server",
    "sandbox_process",
    "sent_shape",
    "service",
    "set_environment",
    "shape",
    "standard_messages",
    "start_server",
    "status_server",
    "taskdef",
    "watch",
    "web_target_group",
]
