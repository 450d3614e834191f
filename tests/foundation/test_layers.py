"""The layer contracts of pyproject.toml hold, and they bite.

``lint-imports`` (``make lint``) checks the real tree; the same contracts, run on a tiny tree
with a planted import cycle and an import that points up a layer, must fail and name both.
Ruff's PLC2701 does not look at imports inside one top-level package, so private names
imported across modules are checked here from the source.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
PACKAGES = ("configs", "tasks", "flows", "cli", "deployments", "sandbox")


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd), "COLUMNS": "200"}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_tree_keeps_its_contracts() -> None:
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


# A skeleton of the real layout: every package the contracts name, and one module each.
SKELETON = {
    "configs/__init__.py": "",
    "configs/models.py": "",
    "tasks/__init__.py": "",
    "tasks/core/__init__.py": "",
    "tasks/core/aws.py": "from configs import models\n",
    "tasks/resources/__init__.py": "",
    "tasks/resources/dns.py": "from tasks.core import aws\n",
    "tasks/resources/certificates.py": "from tasks.resources import dns\n",
    "tasks/runbooks/__init__.py": "",
    "tasks/runbooks/deploy/__init__.py": "",
    "tasks/runbooks/failover/__init__.py": "",
    "flows/__init__.py": "",
    "flows/provision.py": "from tasks.resources import certificates\n",
    "cli/__init__.py": "",
    "cli/main.py": "from flows import provision\n",
    "deployments/__init__.py": "",
    "sandbox/__init__.py": "",
}


def skeleton(tmp_path: Path, plant: dict[str, str] | None = None) -> Path:
    """The skeleton under ``tmp_path`` with the project's import-linter settings; ``plant``
    adds lines to modules (creating them)."""
    for rel, text in SKELETON.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for rel, line in (plant or {}).items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text((path.read_text() if path.exists() else "") + line)
    # The real settings: lint-imports reads [tool.importlinter] from the working directory.
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    return tmp_path


def test_the_skeleton_keeps_the_contracts(tmp_path: Path) -> None:
    done = lint_imports(skeleton(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("plant", "names"),
    [
        pytest.param(
            {"tasks/resources/dns.py": "from tasks.resources import certificates\n"},
            [".certificates", ".dns"],
            id="cycle between resources",
        ),
        pytest.param(
            {
                "tasks/runbooks/deploy/images.py": "from tasks.runbooks.failover import checks\n",
                "tasks/runbooks/failover/checks.py": "def f():\n    from tasks.runbooks import deploy\n",
            },
            [".deploy", ".failover"],
            id="cycle hidden in a function",
        ),
        pytest.param(
            {"tasks/resources/dns.py": "from flows import provision\n"},
            ["tasks.resources.dns -> flows.provision"],
            id="tasks imports a flow",
        ),
        pytest.param(
            {"tasks/core/aws.py": "from tasks.resources import dns\n"},
            ["tasks.core.aws -> tasks.resources.dns"],
            id="core imports a resource",
        ),
        pytest.param(
            {"configs/models.py": "import boto3\n"},
            ["configs.models -> boto3"],
            id="configs imports boto3",
        ),
        pytest.param(
            {"sandbox/app.py": "import tasks.core.aws\n"},
            ["sandbox.app -> tasks.core.aws"],
            id="the sandbox imports tasks",
        ),
    ],
)
def test_a_planted_break_fails_the_lint(
    tmp_path: Path, plant: dict[str, str], names: list[str]
) -> None:
    done = lint_imports(skeleton(tmp_path, plant))
    assert done.returncode != 0, done.stdout
    assert "BROKEN" in done.stdout
    for name in names:
        assert name in done.stdout, done.stdout


# -- private names -------------------------------------------------------------------------
def private_imports(root: Path, packages: tuple[str, ...]) -> list[str]:
    """``path:line: from module import _name`` for each private name a module imports from
    another module of ours (a private name is one with a single leading underscore)."""
    found = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
                    continue
                if node.module.split(".")[0] not in PACKAGES:
                    continue
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        rel = path.relative_to(root)
                        found.append(f"{rel}:{node.lineno}: from {node.module} import {alias.name}")
    return found


def test_no_private_name_is_imported_across_modules() -> None:
    assert private_imports(ROOT, PACKAGES) == []


def test_a_private_import_is_found(tmp_path: Path) -> None:
    module = tmp_path / "tasks" / "resources" / "ecr.py"
    module.parent.mkdir(parents=True)
    module.write_text("from tasks.resources.ecs import _client, service_names\n")
    assert private_imports(tmp_path, ("tasks",)) == [
        "tasks/resources/ecr.py:1: from tasks.resources.ecs import _client"
    ]


def test_no_function_level_import_of_our_modules_in_tasks_and_flows() -> None:
    """An import inside a function hides a dependency from the contracts' readers (and once
    hid cycles); the few allowed are of heavy optional packages, not of ours."""
    found = []
    for package in ("tasks", "flows"):
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            for fn in ast.walk(tree):
                if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                for node in ast.walk(fn):
                    if isinstance(node, ast.ImportFrom) and node.module:
                        modules = [node.module]
                    elif isinstance(node, ast.Import):
                        modules = [a.name for a in node.names]
                    else:
                        continue
                    if any(m.split(".")[0] in PACKAGES for m in modules):
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []
