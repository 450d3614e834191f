"""Load one environment's YAML into a :class:`Config`, or say everything that is wrong with it."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from configs.errors import ConfigError, Problem
from configs.guards import anti_patterns
from configs.models import Config

# Overrides the sandbox endpoint of a config, e.g. when tests start the sandbox on a free port.
ENDPOINT_ENV = "TIERBOOK_AWS_ENDPOINT_URL"


# ``TIERBOOK_AWS_ENDPOINT_URL_DYNAMODB=URL`` (botocore's naming, service upper-cased, dashes as
# underscores) points one service of such a config elsewhere: aws.service_endpoints.
SERVICE_ENDPOINT_ENV_PREFIX = ENDPOINT_ENV + "_"


def _with_endpoints(aws: dict[str, Any]) -> dict[str, Any]:
    """The ``aws`` block with the endpoint overrides of the environment applied."""
    endpoint = os.environ.get(ENDPOINT_ENV)
    if endpoint:
        aws = {**aws, "endpoint_url": endpoint}
    services = {
        name.removeprefix(SERVICE_ENDPOINT_ENV_PREFIX).lower().replace("_", "-"): url
        for name, url in os.environ.items()
        if name.startswith(SERVICE_ENDPOINT_ENV_PREFIX) and url
    }
    if services:
        aws = {**aws, "service_endpoints": {**(aws.get("service_endpoints") or {}), **services}}
    return aws


def _path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


# A cross-field validator names the field it blames first: "network.dr.azs: ...".
_BLAMED = re.compile(r"^([a-z_][a-z0-9_.]*): (.+)$", re.S)


def problems_from(exc: ValidationError) -> list[Problem]:
    out = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if p not in ("function-after",))
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (not part of the config schema)"
        elif msg.startswith("Value error, "):
            msg = msg.removeprefix("Value error, ")
            if blamed := _BLAMED.match(msg):
                loc = (*loc, blamed.group(1))
                msg = blamed.group(2)
        out.append(Problem(_path(loc), msg))
    return out


def parse_config(data: Any, *, source: str = "<config>") -> Config:
    """Validate already-parsed YAML. Raises :class:`ConfigError` listing every problem."""
    if not isinstance(data, dict):
        raise ConfigError(source, [Problem("", "the file must hold a mapping of keys to values")])
    aws = data.get("aws")
    if isinstance(aws, dict) and aws.get("endpoint_url"):  # only a config made for emulators
        data = {**data, "aws": _with_endpoints(aws)}
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, problems_from(exc)) from None
    found = anti_patterns(cfg)
    if found:
        raise ConfigError(source, found)
    return cfg


def load_config(path: str | Path) -> Config:
    """Read and validate ``path``. Invalid input fails here, before any AWS call."""
    return parse_config(read_yaml(path), source=str(path))


def read_yaml(path: str | Path) -> Any:
    """The YAML at ``path``, or a :class:`ConfigError` saying why it cannot be read."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(str(p), [Problem("", f"cannot read the file: {exc.strerror}")]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(
            str(p), [Problem("", f"not valid YAML: {where}{getattr(exc, 'problem', exc)}")]
        ) from None
    return data


CONFIG_DIR_ENV = "TIERBOOK_CONFIG_DIR"


def config_path(ref: str | Path) -> Path:
    """A config file from a path, or from an environment name (``sandbox`` →
    ``<config dir>/sandbox.yaml``, the config dir being ``$TIERBOOK_CONFIG_DIR`` or this
    package's folder)."""
    return named_path(ref, config_dir())


def config_dir() -> Path:
    """Where environment names are looked up: ``$TIERBOOK_CONFIG_DIR`` or this package's folder."""
    return Path(os.environ.get(CONFIG_DIR_ENV, Path(__file__).parent))


def named_path(ref: str | Path, folder: Path) -> Path:
    """``ref`` itself when it is a YAML path or an existing file (not a folder: ``sandbox/``
    is the emulator's package), else ``folder/<ref>.yaml``."""
    p = Path(ref)
    if p.suffix in (".yaml", ".yml") or p.is_file():
        return p
    return folder / f"{ref}.yaml"


def resolve_config(ref: str | Path) -> Config:
    """Load the config that ``ref`` (a path or an environment name) points at."""
    return load_config(config_path(ref))
