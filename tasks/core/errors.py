"""The errors of AWS access: an AWS call that failed, the wrong account, a lock held.

::

    TierbookError (configs.errors)
    ├── BadInput
    │   └── Refused
    │       ├── AccountMismatch   the credentials reach another account than the config names
    │       └── LockHeld          another run holds the lock this runbook needs
    └── AwsError                  an AWS call failed; carries the AWS error code and operation
        ├── TransientAwsError     throttling, 5xx, connection trouble: retried by tasks.core.retry
        └── PermanentAwsError     everything else: fails at once

botocore's errors are mapped to these in one place, :mod:`tasks.core.retry`, and re-raised
``from`` the original.
"""

from __future__ import annotations

from configs.errors import Refused, TierbookError


class AccountMismatch(Refused):
    """The credentials reach another AWS account than the config names."""


class LockHeld(Refused):
    """Another run holds the lock this runbook needs."""


class AwsError(TierbookError):
    """An AWS call failed. ``code`` is the AWS error code (e.g. ``AccessDenied``)."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        operation: str = "",
        service: str = "",
        region: str = "",
        status: int | None = None,
    ) -> None:
        self.code = code
        self.operation = operation
        self.service = service
        self.region = region
        self.status = status
        where = f"{service}:{operation}" if operation else service
        if region:
            where = f"{where} in {region}"
        super().__init__(f"{code}: {message} ({where})" if where else f"{code}: {message}")


class TransientAwsError(AwsError):
    """Worth retrying: throttling, a 5xx answer, a dropped or timed-out connection."""


class PermanentAwsError(AwsError):
    """Not worth retrying: access denied, validation, not found, conflicts…"""
