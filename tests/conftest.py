"""Shared fixtures; the support itself lives in :mod:`sandbox.testing` (and, where it needs
tierbook's AWS factory or flows, in ``tests/support.py``).

* Process settings (set when pytest loads this file, put back at exit): Prefect and tierbook
  state under a temporary directory, no Prefect API or AWS endpoint from the shell.
* ``short_polls`` (session, autouse): every poll interval at ``TEST_POLL_SCALE``.
* Prefect: ``prefect_harness``, one temporary API for the session's flow runs.
* AWS: ``sandbox`` is the embedded AWS on a free port for the session (``aws_endpoint`` is its
  URL), emptied per test by ``clean_aws``; ``sandbox_cfg`` is ``configs/sandbox.yaml`` aimed at
  it. Drive it with ``sandbox.control``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from configs import load_config
from configs.models import Config
from sandbox import testing

# Applied when pytest loads this file, which it does before any other conftest (and so before
# anything imports Prefect, which reads PREFECT_HOME once): pytest_configure would come after
# the conftests of the directories named on the command line.
_TMP = Path(tempfile.mkdtemp(prefix="tierbook-tests-"))
_settings = testing.set_environment(testing.isolated_environment(_TMP))


def pytest_unconfigure(config: pytest.Config) -> None:
    testing.restore_environment(_settings)
    shutil.rmtree(_TMP, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def short_polls() -> Iterator[float]:
    """Deadline-bounded polls wait a fraction of their production interval."""
    with testing.poll_scale() as scale:
        yield scale


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """A Prefect API for tests that run flows (started once, ~10 s)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="session")
def sandbox() -> Iterator[testing.Sandbox]:
    """The embedded AWS for the whole session, in a thread, with short timings."""
    with testing.running_sandbox() as running:
        yield running


@pytest.fixture(scope="session")
def aws_endpoint(sandbox: testing.Sandbox) -> str:
    return sandbox.endpoint


@pytest.fixture
def clean_aws(sandbox: testing.Sandbox) -> str:
    """A fresh account: no resources, no faults, default test timings."""
    # Here, not at the top: tierbook's modules import Prefect, which must not be imported
    # before the settings above are applied.
    from tests.support import reset_aws

    reset_aws(sandbox.endpoint)
    return sandbox.endpoint


@pytest.fixture
def sandbox_cfg(clean_aws: str, monkeypatch: pytest.MonkeyPatch) -> Config:
    """``configs/sandbox.yaml`` aimed at this session's AWS endpoint, on a clean account."""
    monkeypatch.setenv("TIERBOOK_AWS_ENDPOINT_URL", clean_aws)
    return load_config(testing.ROOT / testing.CONFIG)


@pytest.fixture(scope="module")
def moto_as_aws(aws_endpoint: str) -> Iterator[pytest.MonkeyPatch]:
    """A module-wide monkeypatch for module-scoped stacks (the sandbox itself answers as AWS
    does where moto drops fields: ``sandbox/moto_fixes.py``)."""
    with pytest.MonkeyPatch.context() as mp:
        yield mp


@pytest.fixture
def queues(sandbox_cfg: Config, clean_aws: str) -> testing.SandboxQueues:
    """The sandbox config's queues and their DLQs, made with plain boto3."""
    return testing.make_queues(sandbox_cfg, clean_aws)


@pytest.fixture(autouse=True)
def _no_leftover_interrupt() -> Iterator[None]:
    """The CLI's per-process flags (Ctrl-C seen, AWS unreachable) end with the test that set
    them: in-process CLI runs share one process."""
    yield
    from tasks.core.retry import FAIL_FAST, STOPPING

    FAIL_FAST.clear()
    STOPPING.clear()
