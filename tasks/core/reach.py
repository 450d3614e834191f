"""Can AWS be reached at all? Asked once, fast, before a runbook starts.

A runbook's own calls retry transient failures for up to a minute and a half — right for a
throttled API, wrong for an endpoint that is simply not there (the sandbox not started, no
credentials, no network). :func:`probe` asks STS once per region with short timeouts and no
retries of a hang (the client factory's probe clients), and turns the answer into the likely
fix. Used by the CLI before Prefect starts.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from botocore.exceptions import ProfileNotFound

from configs.models import Config
from tasks.core import retry
from tasks.core.aws import connect
from tasks.core.errors import AccountMismatch, AwsError

# STS answers with these when the credentials themselves are the problem.
CREDENTIAL_CODES = frozenset(
    {"InvalidClientTokenId", "ExpiredToken", "SignatureDoesNotMatch", "NoCredentialsError"}
)


class Unreachable(AwsError):
    """AWS (or the sandbox) did not answer; the message says what to do about it."""


def _sandbox_answers(url: str) -> bool:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def _fix(cfg: Config) -> str:
    if cfg.aws.endpoint_url:
        return "is the sandbox running? `tierbook sandbox start`"
    who = f"profile {cfg.aws.profile!r}" if cfg.aws.profile else "the default credentials"
    return (
        f"check {who} (`aws sts get-caller-identity"
        + (f" --profile {cfg.aws.profile}" if cfg.aws.profile else "")
        + "`), the regions in the config and the network (proxy, VPN)"
    )


def probe(cfg: Config) -> str:
    """The caller's account, asked of the primary region's STS, else the DR one's (a region
    may be down on the day of a failover), through the one client factory's probe clients
    (short timeouts, a hang not retried, throttling retried). Raises :class:`Unreachable`
    with the likely fix, or :class:`AccountMismatch` when the credentials reach another
    account. ``""`` when STS answered with an error that is not about reaching it (the
    runbook deals with those)."""
    url = cfg.aws.endpoint_url
    if url and not _sandbox_answers(url):
        raise Unreachable(
            "EndpointUnreachable",
            f"nothing answers at {url}; start the sandbox: `tierbook sandbox start` "
            "(or point TIERBOOK_AWS_ENDPOINT_URL at it)",
        )
    try:
        aws = connect(cfg)
    except ProfileNotFound as exc:
        raise Unreachable("NoCredentials", f"{exc}; {_fix(cfg)}") from exc
    problems: list[str] = []
    for region in dict.fromkeys((cfg.regions.primary, cfg.regions.dr)):
        try:
            answer = aws.client("sts", region, probe=True).get_caller_identity()
        except AwsError as exc:
            if exc.code in CREDENTIAL_CODES:
                raise Unreachable(exc.code, f"the credentials were refused; {_fix(cfg)}") from exc
            if retry.unreachable(exc):
                problems.append(f"{region}: {exc.code}")
                continue
            return ""  # it answers; the runbook's own calls retry or report the rest
        account = str(answer["Account"])
        if account != cfg.account_id:
            raise AccountMismatch(
                f"credentials reach account {account}, but the config is for account "
                f"{cfg.account_id} ({cfg.stack}); refusing to change anything"
            )
        return account
    raise Unreachable(
        "EndpointUnreachable", f"STS did not answer ({'; '.join(problems)}); {_fix(cfg)}"
    )
