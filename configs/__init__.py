"""One environment's configuration: pydantic models and YAML files. Pure: no boto3, no Prefect."""

from configs.errors import ConfigError, Problem
from configs.layout import subnet_plan
from configs.loader import config_path, load_config, parse_config, resolve_config
from configs.models import Config
from configs.names import StackNames, names_for

__all__ = [
    "Config",
    "ConfigError",
    "Problem",
    "StackNames",
    "config_path",
    "load_config",
    "names_for",
    "parse_config",
    "resolve_config",
    "subnet_plan",
]
