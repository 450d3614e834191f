"""The one way to reach AWS: a client for (service, region) from one session.

* One boto3 session per config: a named profile, a role to assume (credentials refresh on
  their own), or static sandbox credentials when the config points at an endpoint.
* botocore's own retries are off; every call goes through :func:`tasks.retry.call` once.
* Before the first mutating call of a process, the caller's account must equal the config's
  ``account_id`` (:class:`configs.errors.AccountMismatch` otherwise, and nothing was changed).
* Every mutating call that succeeds emits a Prefect event (:mod:`tasks.events`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import boto3
import botocore.session
from botocore.config import Config as BotoConfig
from botocore.credentials import AssumeRoleCredentialFetcher, DeferredRefreshableCredentials

from configs.errors import AccountMismatch, AwsError
from configs.models import Config
from tasks.core import retry
from tasks.core.events import current_run, emit_mutation

if TYPE_CHECKING:
    from mypy_boto3_sts import STSClient


# Operations that only read. Anything else counts as mutating for the account guard and events.
READ_PREFIXES = (
    "Describe",
    "List",
    "Get",
    "Head",
    "Lookup",
    "Search",
    "Query",
    "Scan",
    "Filter",
    "BatchGet",
    "Validate",
)


# Data-plane calls: far too many to be worth an event each (the runbook reports them in bulk).
QUIET_OPERATIONS = frozenset(
    {
        "ReceiveMessage",
        "SendMessage",
        "SendMessageBatch",
        "DeleteMessage",
        "DeleteMessageBatch",
        "ChangeMessageVisibility",
        "ChangeMessageVisibilityBatch",
        "PutObject",
        "PutMetricData",
        "AssumeRole",
    }
)


def is_mutating(operation: str) -> bool:
    return not operation.startswith(READ_PREFIXES) and operation != "ReceiveMessage"


class Aws:
    """Clients for one environment's account, in any region, sharing one session."""

    def __init__(self, cfg: Config, *, session: boto3.Session | None = None) -> None:
        self.cfg = cfg
        self.account_id = cfg.account_id
        self.session = session or _session_for(cfg)
        self._clients: dict[tuple[str, str, bool, str | None], Any] = {}
        self._lock = threading.RLock()
        self._verified_account: str | None = None

    # -- clients -------------------------------------------------------------------------
    def client(
        self, service: str, region: str, *, impaired: bool = False, endpoint_url: str | None = None
    ) -> Any:
        """A client for ``service`` in ``region``; ``impaired=True`` for a region that may be
        down: short timeouts and a short retry deadline, so a dead region costs seconds.
        ``endpoint_url`` for services reached at their own endpoints (ARC's cluster)."""
        key = (service, region, impaired, endpoint_url)
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self._make_client(service, region, impaired, endpoint_url)
            return self._clients[key]

    def _make_client(
        self, service: str, region: str, impaired: bool, endpoint_url: str | None
    ) -> Any:
        access = self.cfg.aws
        from configs import defaults

        boto_cfg = BotoConfig(
            region_name=region,
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=defaults.IMPAIRED_REGION_CONNECT_TIMEOUT_S
            if impaired
            else access.connect_timeout_seconds,
            read_timeout=defaults.IMPAIRED_REGION_READ_TIMEOUT_S
            if impaired
            else access.read_timeout_seconds,
            max_pool_connections=32,
        )
        # Any: the stubs type client() per literal service name; ``service`` is a plain str.
        session: Any = self.session
        client = session.client(
            service, endpoint_url=endpoint_url or access.endpoint_url, config=boto_cfg
        )
        policy = retry.IMPAIRED_REGION_POLICY if impaired else _policy(self.cfg)
        _install(client, policy=policy, before_mutation=self.verify_account, env=self.cfg.stack)
        return client

    # -- account guard -------------------------------------------------------------------
    def caller_account(self) -> str:
        """Asked of the primary region's STS, or the DR one's when the primary does not
        answer: a failover must still pass the guard on the day the primary is down."""
        try:
            sts: STSClient = self.client("sts", self.cfg.regions.primary, impaired=True)
            return str(sts.get_caller_identity()["Account"])
        except AwsError:
            sts = self.client("sts", self.cfg.regions.dr)
            return str(sts.get_caller_identity()["Account"])

    def verify_account(self) -> str:
        """Refuse to go on unless the credentials reach the config's account. Cached."""
        if self._verified_account is not None:
            return self._verified_account
        with self._lock:
            if self._verified_account is None:
                actual = self.caller_account()
                if actual != self.account_id:
                    raise AccountMismatch(
                        f"credentials reach account {actual}, but the config is for account "
                        f"{self.account_id} ({self.cfg.stack}); refusing to change anything"
                    )
                self._verified_account = actual
        return self._verified_account


def _policy(cfg: Config) -> retry.RetryPolicy:
    r = cfg.aws.retry
    return retry.RetryPolicy(
        max_attempts=r.max_attempts,
        deadline_s=r.deadline_seconds,
        initial_backoff_s=r.initial_backoff_seconds,
        max_backoff_s=r.max_backoff_seconds,
    )


def _session_for(cfg: Config) -> boto3.Session:
    access = cfg.aws
    if access.endpoint_url:
        # The sandbox accepts any credentials; never pick up real ones by accident.
        return boto3.Session(
            aws_access_key_id="sandbox",
            aws_secret_access_key="sandbox",
            region_name=cfg.regions.primary,
        )
    base = boto3.Session(profile_name=access.profile, region_name=cfg.regions.primary)
    if not access.role_arn:
        return base
    extra: dict[str, Any] = {"RoleSessionName": f"tierbook-{cfg.stack}"}
    if access.external_id:
        extra["ExternalId"] = access.external_id
    fetcher = AssumeRoleCredentialFetcher(
        client_creator=base._session.create_client,
        source_credentials=base.get_credentials(),
        role_arn=access.role_arn,
        extra_args=extra,
    )
    core = botocore.session.Session()
    # Refreshed before they expire, the way botocore's own assume-role provider does it.
    core._credentials = DeferredRefreshableCredentials(  # type: ignore[attr-defined]
        method="assume-role", refresh_using=fetcher.fetch_credentials
    )
    return boto3.Session(botocore_session=core, region_name=cfg.regions.primary)


def _install(
    client: Any,
    *,
    policy: retry.RetryPolicy,
    before_mutation: Callable[[], object],
    env: str,
) -> None:
    """Route every call of ``client`` (methods, paginators alike) through the retry policy.

    botocore's generated methods, paginators and waiters all end in ``_make_api_call``; an
    instance attribute shadows the class method, so this is the single choke point.
    """
    original = client._make_api_call
    service = client.meta.service_model.service_name
    region = client.meta.region_name

    def _make_api_call(operation: str, params: dict[str, Any]) -> Any:
        run = current_run()  # before the call: the thread may be a step's own worker
        mutating = is_mutating(operation)
        if mutating and not (service == "sts" and operation == "AssumeRole"):
            before_mutation()
        result = retry.call(
            lambda: original(operation, params),
            policy=policy,
            service=service,
            operation=operation,
            region=region,
        )
        if mutating and operation not in QUIET_OPERATIONS:
            emit_mutation(
                env=env,
                service=service,
                region=region,
                operation=operation,
                params=params,
                run=run,
            )
        return result

    client._make_api_call = _make_api_call


_registry: dict[str, Aws] = {}


_registry_lock = threading.Lock()


def connect(cfg: Config) -> Aws:
    """The :class:`Aws` for ``cfg``, made once per process and shared by all steps."""
    key = cfg.model_dump_json()
    with _registry_lock:
        if key not in _registry:
            _registry[key] = Aws(cfg)
        return _registry[key]


def forget_connections() -> None:
    """Drop cached sessions and clients (tests; after credentials change)."""
    with _registry_lock:
        _registry.clear()
