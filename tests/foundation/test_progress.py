"""The progress artifact a runbook keeps in Prefect while it runs (step n of m, the current
wait): created when the run starts, at 100 % when it ends."""

from __future__ import annotations

from typing import Any

import pytest

from flows.preflight import preflight
from flows.progress import Progress

pytestmark = [pytest.mark.e2e]


def progress_artifacts(key: str) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        return list(
            client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
        )


def test_a_runbook_keeps_a_progress_artifact_that_ends_at_100(
    clean_aws: str, prefect_harness: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("TIERBOOK_AWS_ENDPOINT_URL", clean_aws)
    monkeypatch.setenv("TIERBOOK_REPORT_DIR", str(tmp_path))
    before = {a.id for a in progress_artifacts("preflight-progress")}
    report = preflight(config="configs/sandbox.yaml")
    assert report["outcome"] == "succeeded", report.get("error")
    new = [a for a in progress_artifacts("preflight-progress") if a.id not in before]
    assert len(new) == 1, new
    assert new[0].type == "progress"
    assert float(new[0].data) == 100.0
    assert new[0].description and "step" in new[0].description


def test_progress_counts_steps_against_the_last_run() -> None:
    """Step n of m: m is the number of steps the last run of the runbook took."""
    from datetime import UTC, datetime

    p = Progress(runbook="preflight", environment="shop-sandbox", expected=4)
    at = datetime.now(UTC)
    assert p.percent() == 0.0
    p.started("check account", at)
    p.ended("check account", at, at, "passed", "")
    assert p.percent() == 25.0
    for _ in range(5):
        p.ended("x", at, at, "ok", "")
    assert p.percent() == 99.0  # never 100 before the run has ended
