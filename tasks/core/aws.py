"""The one way to reach AWS: a client for (service, region) from one session.

* One boto3 session per config: a named profile, a role to assume (credentials refresh on
  their own), or static sandbox credentials when the config points at an endpoint.
* botocore's own retries are off; every call goes through :func:`tasks.retry.call` once.
* Before the first mutating call of a process, the caller's account must equal the config's
  ``account_id`` (:class:`tasks.core.errors.AccountMismatch` otherwise, and nothing was changed).
* Every mutating call that succeeds emits a Prefect event (:mod:`tasks.events`).
* A region that may be dark is probed once (:meth:`Aws.probe_region`): a few cheap reads in
  parallel under one deadline. The answer is kept for the run: the account guard asks the DR
  region's STS straight away when the primary is dark, and fencing does not wait on it.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
import botocore.session
from botocore.config import Config as BotoConfig
from botocore.credentials import AssumeRoleCredentialFetcher, DeferredRefreshableCredentials
from botocore.loaders import Loader

from configs import defaults
from configs.models import Config
from configs.names import Role, names_for
from tasks.core import retry
from tasks.core.errors import AccountMismatch, TransientAwsError
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


# Route 53's control plane (and IAM's, CloudFront's) lives in us-east-1: on the day that region
# is dark they are too, whatever region a client is made for.
GLOBAL_CONTROL_REGION = "us-east-1"


@dataclass(frozen=True)
class RegionProbe:
    """What one probe of a region found: per service, ``answered`` or why not."""

    region: str
    services: dict[str, str] = field(default_factory=dict)
    account: str | None = None
    seconds: float = 0.0
    at: float = 0.0

    @property
    def answers(self) -> bool:
        """Dark only when none of the regional services answered (throttled or 5xx counts as
        answering). Route 53's control plane is probed too, but told apart."""
        return any(v == "answered" for k, v in self.services.items() if k != "route53")

    @property
    def control_plane_answers(self) -> bool:
        """Route 53's control plane (in us-east-1), where this probe covered it."""
        return self.services.get("route53", "answered") == "answered"

    def service_answers(self, service: str) -> bool:
        return self.services.get(service) == "answered"

    def why(self) -> str:
        return "; ".join(f"{s}: {v}" for s, v in self.services.items() if v != "answered")


def _probe_calls(region: str) -> dict[str, tuple[str, Callable[[Any], Any]]]:
    """Cheap reads, one per service a region move touches there: {label: (service, call)}."""
    calls: dict[str, tuple[str, Callable[[Any], Any]]] = {
        "sts": ("sts", lambda c: c.get_caller_identity()),
        "rds": ("rds", lambda c: c.describe_db_instances(MaxRecords=20)),
        "ecs": ("ecs", lambda c: c.list_clusters(maxResults=1)),
    }
    if region == GLOBAL_CONTROL_REGION:
        calls["route53"] = ("route53", lambda c: c.list_hosted_zones(MaxItems="1"))
    return calls


class Aws:
    """Clients for one environment's account, in any region, sharing one session."""

    def __init__(self, cfg: Config, *, session: boto3.Session | None = None) -> None:
        self.cfg = cfg
        self.account_id = cfg.account_id
        self.session = session or _session_for(cfg)
        self._clients: dict[tuple[str, str, str | bool, str | None], Any] = {}
        self._lock = threading.Lock()  # clients and probes (never taken twice)
        self._verify_lock = threading.Lock()  # the account check: clients are made meanwhile
        self._verified_account: str | None = None
        self._probes: dict[str, RegionProbe] = {}

    # -- clients -------------------------------------------------------------------------
    def client(
        self,
        service: str,
        region: str,
        *,
        impaired: bool = False,
        endpoint_url: str | None = None,
        probe: bool = False,
    ) -> Any:
        """A client for ``service`` in ``region``; ``impaired=True`` for a region that may be
        down: short timeouts and a short retry deadline, so a dead region costs seconds.
        ``probe=True``: the same timeouts, and a hang is not retried at all (the probe's).
        ``endpoint_url`` for services reached at their own endpoints (ARC's cluster)."""
        key = (service, region, "probe" if probe else impaired, endpoint_url)
        made = self._clients.get(key)  # no lock: a step never waits while another makes one
        if made is not None:
            return made
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self._make_client(
                    service, region, impaired or probe, endpoint_url, probe
                )
            return self._clients[key]

    def _make_client(
        self, service: str, region: str, impaired: bool, endpoint_url: str | None, probe: bool
    ) -> Any:
        access = self.cfg.aws
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
        endpoint = endpoint_url or access.service_endpoints.get(service) or access.endpoint_url
        client = session.client(service, endpoint_url=endpoint, config=boto_cfg)
        policy = (
            retry.PROBE_POLICY
            if probe
            else retry.IMPAIRED_REGION_POLICY
            if impaired
            else _policy(self.cfg)
        )
        install_retries(
            client, policy=policy, before_mutation=self.verify_account, env=self.cfg.stack
        )
        return client

    # -- region probe --------------------------------------------------------------------
    def probe_region(self, region: str, *, deadline_s: float | None = None) -> RegionProbe:
        """Probe ``region`` once: every probe call in parallel under one deadline. A call
        that neither answered nor failed by the deadline counts as not answering. The result
        is kept (:meth:`last_probe`) for the rest of the run."""
        limit = deadline_s if deadline_s is not None else defaults.REGION_PROBE_DEADLINE_S
        calls = _probe_calls(region)
        started = time.monotonic()
        outcomes: dict[str, str] = {}
        account: list[str] = []

        def run(label: str, service: str, fn: Callable[[Any], Any]) -> None:
            try:
                answer = fn(self.client(service, region, probe=True))
            except Exception as exc:
                outcomes[label] = (
                    f"does not answer ({exc})" if retry.unreachable(exc) else "answered"
                )
                return
            outcomes[label] = "answered"
            if label == "sts":
                account.append(str(answer["Account"]))

        pool = ThreadPoolExecutor(len(calls), thread_name_prefix=f"probe-{region}")
        futures = [pool.submit(run, label, svc, fn) for label, (svc, fn) in calls.items()]
        wait(futures, timeout=limit)
        pool.shutdown(wait=False, cancel_futures=True)
        services = {label: outcomes.get(label, f"no answer within {limit:g}s") for label in calls}
        found = RegionProbe(
            region=region,
            services=services,
            account=account[0] if account else None,
            seconds=round(time.monotonic() - started, 2),
            at=time.time(),
        )
        with self._lock:
            self._probes[region] = found
        return found

    def last_probe(self, region: str) -> RegionProbe | None:
        """The probe of ``region`` made earlier in this run, if any."""
        with self._lock:
            return self._probes.get(region)

    def forget_probes(self) -> None:
        with self._lock:
            self._probes.clear()

    # -- account guard -------------------------------------------------------------------
    def caller_account(self) -> str:
        """Asked of the primary region's STS, or the DR one's when the primary does not
        answer: a failover must still pass the guard on the day the primary is down. A probe
        made earlier in the run decides which, without asking the dark region again."""
        primary = self.cfg.regions.primary
        probe = self.last_probe(primary)
        if probe is not None and probe.account is not None:
            return probe.account
        if probe is None or probe.service_answers("sts"):
            try:
                # One try that gives up at the first hang; throttling is retried in full.
                sts: STSClient = self.client("sts", primary, probe=probe is None)
                return str(sts.get_caller_identity()["Account"])
            except TransientAwsError as exc:
                if not retry.unreachable(exc):
                    sts = self.client("sts", primary)
                    return str(sts.get_caller_identity()["Account"])
        sts = self.client("sts", self.cfg.regions.dr)
        return str(sts.get_caller_identity()["Account"])

    def verify_account(self) -> str:
        """Refuse to go on unless the credentials reach the config's account. Cached."""
        if self._verified_account is not None:
            return self._verified_account
        with self._verify_lock:
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


class _PathsOnce(list[str]):
    """boto3 appends its data directory to the loader of every session it wraps; with one
    loader for the process, once is enough."""

    def append(self, path: str) -> None:
        if path not in self:
            super().append(path)


@functools.cache
def _shared_loader(data_path: str | None) -> Loader:
    """One botocore loader per process (per ``AWS_DATA_PATH``): the service models it parses
    (ec2's alone is ~0.2 s of CPU, holding the GIL) are parsed once, not once per session —
    every environment of a fleet and every run of a long-lived worker has a session of its
    own. The loader caches read-only data; botocore already shares it between the clients of
    one session, across threads."""
    extra = [] if data_path is None else data_path.split(os.pathsep)
    return Loader(
        extra_search_paths=_PathsOnce(os.path.expandvars(os.path.expanduser(p)) for p in extra)
    )


def _core_session() -> botocore.session.Session:
    core = botocore.session.Session()
    # Lazily, as botocore does: ``data_path`` is read once the session's profile is set.
    core.lazy_register_component(
        "data_loader", lambda: _shared_loader(core.get_config_variable("data_path"))
    )
    return core


def _session_for(cfg: Config) -> boto3.Session:
    access = cfg.aws
    if access.endpoint_url:
        # The sandbox accepts any credentials; never pick up real ones by accident.
        return boto3.Session(
            aws_access_key_id="sandbox",
            aws_secret_access_key="sandbox",
            region_name=cfg.regions.primary,
            botocore_session=_core_session(),
        )
    base = boto3.Session(
        profile_name=access.profile,
        region_name=cfg.regions.primary,
        botocore_session=_core_session(),
    )
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
    core = _core_session()
    # Refreshed before they expire, the way botocore's own assume-role provider does it.
    core._credentials = DeferredRefreshableCredentials(  # type: ignore[attr-defined]
        method="assume-role", refresh_using=fetcher.fetch_credentials
    )
    return boto3.Session(botocore_session=core, region_name=cfg.regions.primary)


def install_retries(
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


def role_client(cfg: Config, service: str, role: Role) -> Any:
    """A client for ``service`` in the region of ``role`` (primary or DR)."""
    return connect(cfg).client(service, names_for(cfg, role).region)


def forget_connections() -> None:
    """Drop cached sessions and clients (tests; after credentials change)."""
    with _registry_lock:
        _registry.clear()
