"""The embedded AWS: moto in server mode on 127.0.0.1, made to behave like AWS where the
runbooks wait on it (progressions with configurable timings) and able to inject faults.
See ``sandbox/README.md``."""

from sandbox.control import SandboxControl
from sandbox.server import SandboxServer
from sandbox.settings import FaultRule, Timings

__all__ = ["FaultRule", "SandboxControl", "SandboxServer", "Timings"]
