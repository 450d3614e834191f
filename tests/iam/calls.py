"""Which AWS operations a runbook can call, read from the source (no AWS, no import).

A function-level reference graph over ``flows/`` and ``tasks/`` (the only layers that reach
AWS): from the runbook's flow function, follow every name it references (imported functions,
module attributes, module-level tables, methods resolved by name over the classes reached). The
attribute names and string constants (paginator names, operation names handed to helpers) of
the reachable functions that are operations of a service they make clients for
(``client("rds", ...)``) are the runbook's calls. It over-approximates (a method name shared by
two classes is followed into both). What it cannot see is a method name built at run time
(``getattr(client, name)(...)``): each such place is listed in ``DYNAMIC`` with the names it can
build, and a test fails on one that is not.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import botocore.session
from botocore import xform_name

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("flows", "tasks")

# Functions that call a client method by a name built at run time -> the names they can build.
DYNAMIC: dict[str, frozenset[str]] = {
    "tasks.resources.network.security_groups._converge_rules": frozenset(
        f"{verb}_security_group_{way}"
        for verb in ("authorize", "revoke")
        for way in ("ingress", "egress")
    ),
    # Called with the getter names as string constants, which the scan sees.
    "tasks.resources.buckets._Bucket.current": frozenset(),
    # Calls a progress watcher's method by name (no AWS client).
    "tasks.core.retry._tell": frozenset(),
}


@dataclass
class Function:
    key: str
    module: str
    refs: set[str] = field(default_factory=set)  # qualified names this function references
    attrs: set[str] = field(default_factory=set)  # attribute names (method calls and the like)
    strings: set[str] = field(default_factory=set)
    # services it makes clients for: ``client("rds", ...)``, ``_client(cfg, "ec2")``
    services: set[str] = field(default_factory=set)
    methods: set[str] = field(default_factory=set)  # a class's methods
    dynamic: bool = False  # calls ``getattr(x, <not a constant>)(...)``


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            yield name, ast.parse(path.read_text(), str(path))


def _imports(module: str, tree: ast.Module) -> dict[str, str]:
    """Local name -> qualified name, for every import anywhere in the module."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name.split(".")[0]] = alias.name
    return names


def _callee(call: ast.Call) -> str:
    f = call.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""


def _scan(module: str, fn: ast.AST, key: str, imports: dict[str, str], local: set[str]) -> Function:
    out = Function(key=key, module=module)
    for node in ast.walk(fn):
        if isinstance(node, ast.Name):
            if node.id in local:
                out.refs.add(f"{module}.{node.id}")
            elif node.id in imports:
                out.refs.add(imports[node.id])
        elif isinstance(node, ast.Attribute):
            out.attrs.add(node.attr)
            if isinstance(node.value, ast.Name) and node.value.id in imports:
                out.refs.add(f"{imports[node.value.id]}.{node.attr}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            out.strings.add(node.value)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Call)
            and _callee(node.func) == "getattr"
            and not isinstance(node.func.args[1], ast.Constant)
        ):
            out.dynamic = True
        if isinstance(node, ast.Call) and _callee(node).endswith("client"):
            out.services |= {
                a.value
                for a in node.args
                if isinstance(a, ast.Constant) and isinstance(a.value, str)
            }
    return out


def _constants(tree: ast.Module) -> dict[str, ast.expr]:
    """Module-level ``NAME = value`` assignments."""
    out: dict[str, ast.expr] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        out |= {t.id: value for t in targets if isinstance(t, ast.Name)}
    return out


@cache
def functions() -> dict[str, Function]:
    """Every top-level function and method of ``flows/`` and ``tasks/``, by qualified name
    (``tasks.runbooks.failover.services.fence_services``, ``tasks.runbooks.redrive.engine.Engine.run``)."""
    found: dict[str, Function] = {}
    for module, tree in _modules():
        imports = _imports(module, tree)
        local = {
            n.name
            for n in tree.body
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        } | set(_constants(tree))
        for name, value in _constants(tree).items():
            # A module-level table (``SOURCES = {"pushed": PushedImage, ...}``) reaches what
            # it names.
            found[f"{module}.{name}"] = _scan(module, value, f"{module}.{name}", imports, local)
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                key = f"{module}.{node.name}"
                found[key] = _scan(module, node, key, imports, local)
            elif isinstance(node, ast.ClassDef):
                # The class itself (referenced when it is made) reaches its methods.
                cls = Function(key=f"{module}.{node.name}", module=module)
                for item in node.body:
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                        key = f"{module}.{node.name}.{item.name}"
                        found[key] = _scan(module, item, key, imports, local)
                        cls.methods.add(key)
                found[cls.key] = cls
    for key, names in DYNAMIC.items():
        found[key].attrs |= names
    return found


def undeclared_dynamic() -> set[str]:
    """Functions that build a method name at run time and are not in ``DYNAMIC``."""
    return {k for k, fn in functions().items() if fn.dynamic and k not in DYNAMIC}


def reachable(entry: str) -> set[str]:
    """Qualified names of the functions ``entry`` can reach. A method is followed by its name
    only into classes the reachable code names (``Engine(...)`` reaches ``Engine.run``)."""
    table = functions()
    seen: set[str] = set()
    attrs: set[str] = set()
    todo = [entry]
    while todo:
        while todo:
            key = todo.pop()
            if key in seen or key not in table:
                continue
            seen.add(key)
            todo.extend(table[key].refs)
            attrs |= table[key].attrs
        todo = [
            method
            for cls in seen
            for method in table[cls].methods
            if (name := method.rsplit(".", 1)[1]) in attrs or name.startswith("__")
        ]
        todo = [m for m in todo if m not in seen]
    return seen


@cache
def _session() -> botocore.session.Session:
    return botocore.session.get_session()


# boto3's managed transfers, methods its S3 client has beside the API's -> the operations
# they make (multipart above the transfer threshold).
MANAGED: dict[str, dict[str, str]] = {
    "s3": {
        "copy": "HeadObject CopyObject CreateMultipartUpload UploadPartCopy "
        "CompleteMultipartUpload AbortMultipartUpload",
    },
}


@cache
def operations(service: str) -> dict[str, str]:
    """snake_case method name -> operation name, for one botocore service."""
    model = _session().get_service_model(service)
    return {xform_name(op): op for op in model.operation_names}


def _hits(services: set[str], name: str) -> set[tuple[str, str]]:
    hits = {(s, operations(s)[name]) for s in services if name in operations(s)}
    for s in services:
        hits |= {(s, op) for op in MANAGED.get(s, {}).get(name, "").split()}
    return hits


@cache
def _services() -> frozenset[str]:
    return frozenset(_session().get_available_services())


def calls(entry: str) -> set[tuple[str, str]]:
    """(service, Operation) pairs the flow function ``entry`` can call.

    A name is matched against the services its function makes clients for (itself or through
    a ``*_client`` factory it calls), else those its
    module makes clients for, else all of the runbook's (a function handed its client):
    ``describe_images`` next to ``client("ecr")`` is not ``ec2:DescribeImages``."""
    table = functions()
    reach = [table[k] for k in reachable(entry)]

    def own(fn: Function) -> set[str]:
        # A client factory it calls (``rds_client(cfg, role)``) counts as its own client.
        factories = {
            s
            for ref in fn.refs
            if ref in table and ref.rsplit(".", 1)[1].endswith("client")
            for s in table[ref].services
        }
        return (fn.services | factories) & _services()

    by_module: dict[str, set[str]] = {}
    for fn in table.values():
        by_module.setdefault(fn.module, set()).update(own(fn))
    everywhere = {s for fn in reach for s in by_module[fn.module]}
    found = set()
    for fn in reach:
        tiers = (own(fn), by_module[fn.module], everywhere)
        for name in fn.attrs | fn.strings:
            for services in tiers:
                hits = _hits(services, name)
                if hits:
                    found |= hits
                    break
    return found
