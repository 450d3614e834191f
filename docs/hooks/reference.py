"""MkDocs hook: the reference pages are generated from the code at build time, never typed.

A page asks for a generated block with a marker on a line of its own:

``<!-- tierbook:cli -->``
    every command of the ``tierbook`` typer app (sub-commands included): usage, help, and each
    argument and option with its help, default and environment variable, read through the
    app's own click command objects.
``<!-- tierbook:config -->``
    every field of :class:`configs.models.Config`, block by block: type, default, constraints
    and description (the field's ``description``, else the comment next to it in the source).
``<!-- tierbook:deployments -->``
    the runbooks ``deployments/catalog.py`` deploys (its ``RUNBOOKS``) and which of them carry a
    schedule from the config (its ``SCHEDULES``), read with :mod:`ast`.
``<!-- tierbook:iam -->``
    per runbook, how many IAM actions its policy holds (called + implicit), from
    :mod:`configs.permissions` (pure data).
``<!-- tierbook:flow NAME -->``
    the module docstring of ``flows/NAME.py`` (the runbook as it reads on a wiki) and the
    docstring of each ``@flow`` in it. Read with :mod:`ast`, so Prefect is not imported.

An unknown marker, or a flow module that does not exist, fails the build: the reference cannot
silently rot when commands, fields or flows change.
"""

from __future__ import annotations

import ast
import enum
import io
import json
import re
import sys
import tokenize
import types
import typing
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
MARKER = re.compile(r"^<!-- tierbook:(?P<kind>[\w-]+)(?: (?P<arg>[\w-]+))? -->$", re.M)


def on_config(config: Any) -> Any:
    """Make the repository importable whatever directory ``mkdocs`` runs from."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return config


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    def expand(match: re.Match[str]) -> str:
        kind, arg = match["kind"], match["arg"]
        if kind == "cli":
            return cli_reference()
        if kind == "config":
            return config_reference()
        if kind == "iam":
            return iam_table()
        if kind == "deployments":
            return deployments_table()
        if kind == "flow" and arg:
            return flow_docstrings(arg)
        raise ValueError(f"{page.file.src_path}: unknown marker {match[0]!r}")

    return MARKER.sub(expand, markdown)


# --- docstrings -------------------------------------------------------------------------------

ROLE = re.compile(r":(?:mod|class|func|meth|attr|data|exc):`~?([^`]+)`")


def docstring_markdown(text: str) -> str:
    """Docstrings use reST roles and ``double`` backticks: both become Markdown code spans."""
    return ROLE.sub(r"`\1`", text).replace("``", "`")


def flow_docstrings(name: str) -> str:
    path = ROOT / "flows" / f"{name}.py"
    if not path.is_file():
        raise ValueError(f"no flow module flows/{name}.py")
    tree = ast.parse(path.read_text())
    parts = [f"*From the docstring of `flows/{name}.py`:*", ""]
    parts += [docstring_markdown(ast.get_docstring(tree) or ""), ""]
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        decorators = [ast.unparse(d) for d in node.decorator_list]
        flow = next((d for d in decorators if d == "flow" or d.startswith("flow(")), None)
        if flow is None:
            continue
        doc = docstring_markdown(ast.get_docstring(node) or "").replace("\n", " ")
        parts.append(f"- `{node.name}` (`@{flow}`): {doc}")
    return "\n".join(parts).rstrip() + "\n"


def catalog_dicts() -> dict[str, dict[str, str]]:
    """``RUNBOOKS`` and ``SCHEDULES`` of ``deployments/catalog.py``: key → the value's source."""
    tree = ast.parse((ROOT / "deployments" / "catalog.py").read_text())
    found: dict[str, dict[str, str]] = {}
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        value = getattr(node, "value", None)
        if isinstance(target, ast.Name) and isinstance(value, ast.Dict):
            found[target.id] = {
                ast.literal_eval(k): ast.unparse(v)
                for k, v in zip(value.keys, value.values, strict=True)
                if k
            }
    return found


def deployments_table() -> str:
    dicts = catalog_dicts()
    runbooks, schedules = dicts["RUNBOOKS"], dicts.get("SCHEDULES", {})
    out = ["| deployment | flow | schedule from the config |", "|---|---|---|"]
    for name, flow in runbooks.items():
        sched = schedules.get(name, "")
        sched = sched.split(":", 1)[1].strip().removeprefix("cfg.") if sched else "—"
        out.append(f"| `{name}/<app>-<env>` | `{flow}` | {cell(sched)} |")
    return "\n".join(out) + "\n"


def iam_table() -> str:
    from configs.permissions import ALIASES, RUNBOOKS

    out = ["| runbook | actions | called | implicit |", "|---|---|---|---|"]
    for name, perms in RUNBOOKS.items():
        called, implicit = len(frozenset(perms.calls)), len(perms.implicit)
        out.append(f"| `{name}` | {len(perms.actions)} | {called} | {implicit or '—'} |")
    aliases = ", ".join(f"`{a}` → `{b}`" for a, b in ALIASES.items())
    return "\n".join(out) + f"\n\nAlso accepted: {aliases}.\n"


# --- CLI ----------------------------------------------------------------------------------------


def cell(text: str) -> str:
    """One Markdown table cell: no line breaks, no bare pipes. A pipe inside a code span is
    left alone: the tables extension does not split there, and would print the backslash."""
    parts = docstring_markdown(" ".join(text.split())).split("`")
    return "`".join(p if i % 2 else plain(p) for i, p in enumerate(parts))


def plain(text: str) -> str:
    """Text outside code: ``<app>`` is not an HTML tag, ``|`` is not a column."""
    return text.replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


def cli_commands() -> list[tuple[str, Any, Any]]:
    """(full name, command, click context) of every visible command, depth first."""
    import typer

    from cli.main import app

    root = typer.main.get_command(app)
    found: list[tuple[str, Any, Any]] = []

    def walk(cmd: Any, ctx: Any, path: str) -> None:
        found.append((path, cmd, ctx))
        if hasattr(cmd, "list_commands"):
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                if sub is not None and not sub.hidden:
                    walk(sub, type(ctx)(sub, info_name=name, parent=ctx), f"{path} {name}")

    walk(root, type(root).context_class(root, info_name="tierbook"), "tierbook")
    return found


def cli_reference() -> str:
    out: list[str] = []
    for path, cmd, ctx in cli_commands():
        depth = min(path.count(" ") + 1, 4)
        out += [f"{'#' * (depth + 1)} `{path}`", ""]
        usage = " ".join([path, *cmd.collect_usage_pieces(ctx)])
        out += ["```", usage, "```", ""]
        if cmd.help:
            out += [docstring_markdown(cmd.help.strip()), ""]
        rows = [p.get_help_record(ctx) for p in cmd.params if not getattr(p, "hidden", False)]
        rows = [r for r in rows if r]
        if rows:
            out += ["| argument / option | help |", "|---|---|"]
            out += [f"| {cell('`' + names + '`')} | {cell(text)} |" for names, text in rows]
            out.append("")
        if hasattr(cmd, "list_commands"):
            subs = [n for n in cmd.list_commands(ctx) if not cmd.get_command(ctx, n).hidden]
            out += ["Commands: " + ", ".join(f"`{path} {n}`" for n in subs), ""]
    return "\n".join(out)


# --- config -------------------------------------------------------------------------------------


def type_name(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin is typing.Literal:
        return " \\| ".join(json.dumps(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(type_name(a) for a in args)
    if origin is not None:
        inner = ", ".join(type_name(a) for a in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    if tp is type(None):
        return "null"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return " \\| ".join(json.dumps(m.value) for m in tp)
    return getattr(tp, "__name__", str(tp))


def constraints(field: Any) -> str:
    """ge/le/pattern/length from the field's metadata, also those inside ``T | None``."""
    metas = list(field.metadata)
    for arg in typing.get_args(field.annotation):
        if typing.get_origin(arg) is typing.Annotated:
            metas += list(getattr(arg, "__metadata__", ()))
    out = []
    for meta in metas:
        for attr, sign in (
            ("ge", "≥"),
            ("gt", ">"),
            ("le", "≤"),
            ("lt", "<"),
            ("min_length", "min length"),
            ("max_length", "max length"),
            ("pattern", "pattern"),
        ):
            value = getattr(meta, attr, None)
            if value is not None:
                out.append(f"{sign} `{value}`" if attr == "pattern" else f"{sign} {value}")
    return ", ".join(out)


def default_text(field: Any, block_default: Any = None, name: str = "") -> str:
    """The field's default, as the enclosing block's default sets it when it has one
    (``services.web`` defaults to ``Service(port=8080)``, not to ``Service()``)."""
    from pydantic import BaseModel

    if block_default is not None:
        value = getattr(block_default, name)
    elif field.is_required():
        return "**required**"
    else:
        value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "(the block's defaults)"
    if isinstance(value, enum.Enum):
        value = value.value
    return f"`{json.dumps(value)}`"


def source_comments(model: type) -> dict[str, str]:
    """Field name → the comment on its line, or the comment lines just above it."""
    import inspect

    source = Path(inspect.getsourcefile(model) or "").read_text()
    lines = source.splitlines()
    comments: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    found: dict[str, str] = {}
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.ClassDef) and node.name == model.__name__):
            continue
        for stmt in node.body:
            if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
                continue
            text = [comments[stmt.end_lineno]] if stmt.end_lineno in comments else []
            above, line = [], stmt.lineno - 1
            while line in comments and lines[line - 1].strip().startswith("#"):
                above.insert(0, comments[line])
                line -= 1
            found[stmt.target.id] = " — ".join([" ".join(above), *text] if above else text)
    return found


def nested_models(tp: Any) -> list[tuple[str, type]]:
    """The pydantic models a field holds: ``("", M)`` for ``M`` / ``M | None``, ``("[]", M)``
    for ``list[M]``."""
    from pydantic import BaseModel

    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        return nested_models(args[0])
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [("", tp)]
    if origin in (typing.Union, types.UnionType):
        return [m for a in args for m in nested_models(a)]
    if origin is list and args:
        return [("[]" + s, m) for s, m in nested_models(args[0])]
    return []


def config_blocks() -> list[tuple[str, type, Any]]:
    """(dotted path, model, the block's default instance or None) of the config and of every
    block inside it, in field order."""

    from configs.models import Config

    blocks: list[tuple[str, type, Any]] = []

    def walk(path: str, model: Any, default: Any) -> None:
        blocks.append((path, model, default))
        for name, field in model.model_fields.items():
            for suffix, sub in nested_models(field.annotation):
                if default is not None:
                    inner = getattr(default, name)
                elif not field.is_required():
                    inner = field.get_default(call_default_factory=True)
                else:
                    inner = None
                inner = inner if isinstance(inner, sub) and not suffix else None
                walk(f"{path}.{name}{suffix}" if path else f"{name}{suffix}", sub, inner)

    walk("", Config, None)
    return blocks


def config_fields() -> list[str]:
    """Every field's dotted path (``database.engine``, ``queues[].name``)."""
    return [
        f"{path}.{name}" if path else name
        for path, model, _ in config_blocks()
        for name in model.model_fields
    ]


def config_reference() -> str:
    out: list[str] = []
    for path, model, default in config_blocks():
        title = path or "top level"
        out += [f"## `{title}`", ""]
        doc = (model.__doc__ or "").strip()
        if doc and not doc.startswith(model.__name__ + "("):
            out += [docstring_markdown(" ".join(doc.split())), ""]
        out += [f"Model: `{model.__module__}.{model.__name__}`", ""]
        comments = source_comments(model)
        out += ["| field | type | default | constraints | description |", "|---|---|---|---|---|"]
        for name, field in model.model_fields.items():
            full = f"{path}.{name}" if path else name
            about = field.description or comments.get(name, "")
            nested = nested_models(field.annotation)
            if nested:
                suffix = nested[0][0]
                link = (f"{full}{suffix}").replace(".", "").replace("[]", "")
                about = (about + " " if about else "") + f"See [`{full}{suffix}`](#{link})."
            out.append(
                f"| `{full}` | {type_name(field.annotation)} | {default_text(field, default, name)} "
                f"| {cell(constraints(field))} | {cell(about)} |"
            )
        out.append("")
    return "\n".join(out)
