"""Where moto 5.2 drops a field AWS returns, put it back, so a step comparing desired with
actual state does not see a change on every run. Applied once, in the sandbox's process."""

from __future__ import annotations

import threading
from typing import Any

from sandbox import moto_costs, sim_cache_export, sim_elasticache

_applied = False
_lock = threading.Lock()


def apply() -> None:
    global _applied
    with _lock:
        if _applied:
            return
        _sqs_returns_redrive_allow_policy()
        _ecs_create_service_keeps_settings()
        _cloudfront_keeps_origin_access()
        _cache_keeps_node_count()
        _rds_keeps_performance_insights()
        _sqs_one_consumer_at_a_time()
        _rds_promotion_detaches()
        _rds_cross_region_replica_deletes()
        _rds_cross_region_replica_placement()
        _rds_replicas_follow_a_rename()
        _rds_replica_deletion_keeps_the_secret()
        _rds_restore_makes_no_secret_unless_asked()
        _cache_deletion_completes()
        _cache_subnet_group_deletes()
        _rds_global_clusters_by_identifier()
        _route53_update_keeps_children()
        sim_elasticache.install()  # after _cache_deletion_completes: it wraps that delete
        sim_cache_export.install()
        moto_costs.install()
        from moto import settings

        settings.ACM_VALIDATION_WAIT = 0  # DNS-validated certificates are issued at once
        _applied = True


def _sqs_returns_redrive_allow_policy() -> None:
    """SQS: RedriveAllowPolicy is stored by SetQueueAttributes but never returned."""
    from moto.sqs.models import Queue

    original = Queue.attributes

    def attributes(self: Any) -> dict[str, Any]:
        out: dict[str, Any] = original.fget(self)  # type: ignore[attr-defined]
        allow = getattr(self, "redrive_allow_policy", None)
        if allow:
            out["RedriveAllowPolicy"] = allow
        return out

    Queue.attributes = property(attributes)  # type: ignore[method-assign,assignment]


def _sqs_one_consumer_at_a_time() -> None:
    """SQS: moto's receive and delete take no lock, so under concurrent callers two receives
    can hand out one message (or two messages of one FIFO group) and two deletes can each
    rebuild the queue from the same snapshot, bringing back what the other deleted. SQS does
    neither. Receives and deletes are serialised (a delete batch as one); a long poll waits
    outside the lock."""
    import time

    from moto.sqs.models import Queue, SQSBackend

    guard = threading.RLock()
    receive, delete = SQSBackend.receive_message, Queue.delete_message
    delete_batch = SQSBackend.delete_message_batch

    def receive_message(
        self: Any,
        queue_name: str,
        count: int,
        wait_seconds_timeout: int,
        visibility_timeout: int,
        message_attribute_names: list[str] | None = None,
    ) -> Any:
        deadline = time.monotonic() + wait_seconds_timeout
        while True:
            with guard:
                got = receive(
                    self, queue_name, count, 0, visibility_timeout, message_attribute_names
                )
            if got or time.monotonic() >= deadline:
                return got
            self.get_queue(queue_name).wait_for_messages(
                max(0.05, min(1.0, deadline - time.monotonic()))
            )

    def delete_message(self: Any, receipt_handle: str) -> None:
        with guard:
            delete(self, receipt_handle)

    def delete_message_batch(self: Any, queue_name: str, receipts: list[dict[str, Any]]) -> Any:
        # One turn of the lock per batch, not one per entry: with many receivers polling, a
        # batch that queued for the lock ten times could outwait a client's read timeout.
        with guard:
            return delete_batch(self, queue_name, receipts)

    SQSBackend.receive_message = receive_message  # type: ignore[method-assign]
    Queue.delete_message = delete_message  # type: ignore[method-assign]
    SQSBackend.delete_message_batch = delete_message_batch  # type: ignore[method-assign]


def _rds_promotion_detaches() -> None:
    """RDS: a promoted read replica still named its source, and the source still listed it."""
    from moto.rds.models import RDSBackend

    original = RDSBackend.promote_read_replica

    def promote_read_replica(self: Any, db_kwargs: dict[str, Any]) -> Any:
        database = self.databases[db_kwargs["db_instance_identifier"]]
        source = database.source_db_instance_identifier if database.is_replica else None
        promoted = original(self, db_kwargs)
        if source:
            try:
                primary = self.find_db_from_id(source)
            except Exception:  # the source is gone (or its region is): nothing to detach from
                primary = None
            if primary is not None:
                for ref in (promoted.db_instance_arn, promoted.db_instance_identifier):
                    if ref in primary.replicas:
                        primary.replicas.remove(ref)
            promoted.source_db_instance_identifier = None
        return promoted

    RDSBackend.promote_read_replica = promote_read_replica  # type: ignore[method-assign]


def _rds_cross_region_replica_deletes() -> None:
    """RDS: deleting a cross-region replica failed (HTTP 500) after removing it: its source
    lists it by ARN, and moto removed it by identifier."""
    from moto.rds.models import DBInstance

    def remove_replica(self: Any, replica: Any) -> None:
        for ref in (replica.db_instance_identifier, replica.db_instance_arn):
            if ref in self.replicas:
                self.replicas.remove(ref)

    DBInstance.remove_replica = remove_replica  # type: ignore[method-assign]


def _rds_replicas_follow_a_rename() -> None:
    """RDS: the replicas of a renamed instance name it by its new identifier (or ARN, across
    regions) as their source; moto kept the old one."""
    from moto.rds.models import RDSBackend, rds_backends

    original = RDSBackend.modify_db_instance

    def modify_db_instance(
        self: Any, db_instance_identifier: str, db_kwargs: dict[str, Any]
    ) -> Any:
        new = db_kwargs.get("new_db_instance_identifier")
        modified = original(self, db_instance_identifier, db_kwargs)
        if new and new != db_instance_identifier:
            old_arn = modified.db_instance_arn.rsplit(":", 1)[0] + f":{db_instance_identifier}"
            for backend in list(rds_backends[self.account_id].values()):
                for db in list(backend.databases.values()):
                    source = getattr(db, "source_db_instance_identifier", None)
                    if source == db_instance_identifier:
                        db.source_db_instance_identifier = new
                    elif source == old_arn:
                        db.source_db_instance_identifier = modified.db_instance_arn
        return modified

    RDSBackend.modify_db_instance = modify_db_instance  # type: ignore[method-assign]


def _rds_replica_deletion_keeps_the_secret() -> None:
    """RDS: deleting a read replica deleted the master user secret it shares with its source
    (failing when that secret is replicated); in AWS a replica owns no such secret."""
    from moto.rds.models import RDSBackend

    original = RDSBackend.delete_db_instance

    def delete_db_instance(self: Any, db_instance_identifier: str, *args: Any, **kw: Any) -> Any:
        database = self.databases.get(db_instance_identifier)
        if database is not None and database.is_replica:
            database.manage_master_user_password = False
        return original(self, db_instance_identifier, *args, **kw)

    RDSBackend.delete_db_instance = delete_db_instance  # type: ignore[method-assign]


def _rds_restore_makes_no_secret_unless_asked() -> None:
    """RDS: an instance restored from a snapshot made a new master user secret of its own
    (a new password) because its source managed one. In AWS a restore manages none unless
    ``ManageMasterUserPassword`` asks: the password is the snapshot's, the one in the source's
    secret (and in its replica in the restore's region). Here the restored instance names
    its source's secret, as this emulator's replicas do."""
    from moto.rds.models import RDSBackend

    original = RDSBackend.restore_db_instance_from_db_snapshot

    def restore(self: Any, from_snapshot_id: str, overrides: dict[str, Any]) -> Any:
        database = original(self, from_snapshot_id, overrides)
        if overrides.get("manage_master_user_password"):
            return database
        ident = from_snapshot_id.split(":")[-1]
        source = self.describe_db_snapshots(None, ident)[0].database
        made = getattr(database, "master_user_secret", None)
        if made is not None and getattr(source, "master_user_secret", None) is not made:
            made.delete_secret()
            database.master_user_secret = source.master_user_secret
            database.manage_master_user_password = False  # its deletion keeps the secret
        return database

    RDSBackend.restore_db_instance_from_db_snapshot = restore  # type: ignore[method-assign]


def _rds_cross_region_replica_placement() -> None:
    """RDS: a cross-region replica's subnet group was looked up in its source's region (the
    copied source moved to the replica's region only after its other settings were set)."""
    from moto.rds.models import RDSBackend

    original = RDSBackend.create_db_instance_read_replica

    def create_db_instance_read_replica(self: Any, db_kwargs: dict[str, Any]) -> Any:
        if self.arn_regex.match(db_kwargs["source_db_instance_identifier"]):
            db_kwargs = {"backend": self, **db_kwargs}
        return original(self, db_kwargs)

    RDSBackend.create_db_instance_read_replica = create_db_instance_read_replica  # type: ignore[method-assign]


def _cache_deletion_completes() -> None:
    """ElastiCache: a deleted replication group stayed ``deleting`` forever, nodes and all."""
    from moto.elasticache.models import ElastiCacheBackend

    original = ElastiCacheBackend.delete_replication_group

    def delete_replication_group(self: Any, replication_group_id: str, **kwargs: Any) -> Any:
        group = original(self, replication_group_id, **kwargs)
        self.replication_groups.pop(replication_group_id, None)
        for member in list(getattr(group, "member_clusters", []) or []):
            getattr(self, "cache_clusters", {}).pop(member, None)
        return group

    ElastiCacheBackend.delete_replication_group = delete_replication_group  # type: ignore[method-assign,assignment]


def _cache_subnet_group_deletes() -> None:
    """ElastiCache: DeleteCacheSubnetGroup is not implemented (a 500 with an HTML page)."""
    from moto.core.responses import EmptyResult
    from moto.elasticache.exceptions import CacheSubnetGroupNotFound
    from moto.elasticache.responses import ElastiCacheResponse

    def delete_cache_subnet_group(self: Any) -> Any:
        name = self._get_param("CacheSubnetGroupName")
        if self.elasticache_backend.cache_subnet_groups.pop(name, None) is None:
            raise CacheSubnetGroupNotFound(name)
        return EmptyResult()

    ElastiCacheResponse.delete_cache_subnet_group = delete_cache_subnet_group  # type: ignore[attr-defined]


def _rds_global_clusters_by_identifier() -> None:
    """RDS: DescribeGlobalClusters ignored GlobalClusterIdentifier (every global cluster, or an
    empty list, never ``GlobalClusterNotFoundFault``); a global database made from a cluster
    listed that cluster as a reader (``IsWriter`` false) and was unencrypted whatever the
    cluster's encryption; RemoveFromGlobalCluster, given a secondary's ARN (as AWS wants it),
    silently removed nothing."""
    from moto.core.responses import ActionResult
    from moto.rds.exceptions import RDSClientError
    from moto.rds.models import RDSBackend, find_cluster, rds_backends
    from moto.rds.responses import RDSResponse

    create = RDSBackend.create_global_cluster

    def create_global_cluster(self: Any, *args: Any, **kwargs: Any) -> Any:
        made = create(self, *args, **kwargs)
        if made.members:  # made from a cluster: it keeps writing, its encryption is inherited
            made.members[0].is_writer = True
            made.storage_encrypted = bool(made.members[0].storage_encrypted)
        return made

    def describe_global_clusters(self: Any) -> Any:
        found = self.global_backend.describe_global_clusters()
        ident = self.params.get("GlobalClusterIdentifier")
        if ident:
            want = ident.lower()
            found = [g for g in found if want in (g.global_cluster_identifier, g.arn)]
            if not found:
                raise RDSClientError(
                    "GlobalClusterNotFoundFault", f"GlobalCluster {want} not found."
                )
        return ActionResult({"GlobalClusters": found})

    def remove_from_global_cluster(
        self: Any, global_cluster_identifier: str, db_cluster_identifier: str
    ) -> Any:
        store = rds_backends[self.account_id]["us-east-1"].global_clusters
        found = store.get(global_cluster_identifier.lower())
        if found is None:
            raise RDSClientError(
                "GlobalClusterNotFoundFault",
                f"GlobalCluster {global_cluster_identifier} not found.",
            )
        cluster = (
            find_cluster(db_cluster_identifier)
            if db_cluster_identifier.startswith("arn:")
            else self.describe_db_clusters(db_cluster_identifier=db_cluster_identifier)[0]
        )
        if cluster in found.members:
            found.members.remove(cluster)
        cluster.global_cluster_identifier = None
        cluster.is_writer = True  # a detached secondary stands alone and takes writes
        return found

    RDSBackend.create_global_cluster = create_global_cluster  # type: ignore[method-assign]
    RDSBackend.remove_from_global_cluster = remove_from_global_cluster  # type: ignore[method-assign]
    RDSResponse.describe_global_clusters = describe_global_clusters  # type: ignore[method-assign]


def _ecs_create_service_keeps_settings() -> None:
    """ECS: CreateService ignores deploymentConfiguration and healthCheckGracePeriodSeconds
    (UpdateService keeps them)."""
    from moto.ecs.responses import EC2ContainerServiceResponse

    original = EC2ContainerServiceResponse.create_service

    def create_service(self: Any) -> Any:
        result = original(self)
        service = self.ecs_backend._get_service(
            self._get_param("cluster", "default"), self._get_param("serviceName")
        )
        for param, attr in (
            ("deploymentConfiguration", "deployment_configuration"),
            ("healthCheckGracePeriodSeconds", "health_check_grace_period_seconds"),
            ("enableECSManagedTags", "enable_ecs_managed_tags"),
        ):
            if self._get_param(param) is not None:
                setattr(service, attr, self._get_param(param))
        return result

    EC2ContainerServiceResponse.create_service = create_service  # type: ignore[method-assign]


def _cloudfront_keeps_origin_access() -> None:
    """CloudFront: an origin's OriginAccessControlId and S3OriginConfig are dropped."""
    from moto.cloudfront import models

    original_init = models.Origin.__init__

    def init(self: Any, origin: dict[str, Any]) -> None:
        original_init(self, origin)
        self.origin_access_control_id = origin.get("OriginAccessControlId", "")
        if "S3OriginConfig" in origin:
            self.s3_origin_config = origin["S3OriginConfig"]

    models.Origin.__init__ = init  # type: ignore[method-assign]


def _cache_keeps_node_count() -> None:
    """ElastiCache: with cluster mode off, NumCacheClusters is ignored (one node is made)."""
    from moto.elasticache.models import ReplicationGroup

    original = ReplicationGroup._set_node_members_clusters_disabled

    def members(self: Any, *args: Any, **kwargs: Any) -> None:
        if (
            not kwargs.get("replicas_per_node_group")
            and (kwargs.get("num_cache_clusters") or 1) > 1
        ):
            kwargs["replicas_per_node_group"] = kwargs["num_cache_clusters"] - 1
        original(self, *args, **kwargs)

    ReplicationGroup._set_node_members_clusters_disabled = members  # type: ignore[method-assign]


def _rds_keeps_performance_insights() -> None:
    """RDS: EnablePerformanceInsights is accepted and dropped; AWS reports it back."""
    from moto.rds.models import DBInstance

    original = DBInstance.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.enable_performance_insights = bool(kwargs.get("enable_performance_insights"))

    DBInstance.__init__ = init  # type: ignore[method-assign]
    DBInstance.performance_insights_enabled = property(  # type: ignore[attr-defined]
        lambda self: bool(getattr(self, "enable_performance_insights", False))
    )


def _route53_update_keeps_children() -> None:
    """UpdateHealthCheck without ``ChildHealthChecks`` (or ``Regions``) keeps them, as AWS
    does; moto read the omitted list as empty and dropped a calculated check's children."""
    from moto.route53.models import Route53Backend

    original = Route53Backend.update_health_check

    def update_health_check(self: Any, health_check_id: str, args: dict[str, Any]) -> Any:
        args = {k: v for k, v in args.items() if not (k in ("children", "regions") and not v)}
        return original(self, health_check_id, args)

    Route53Backend.update_health_check = update_health_check  # type: ignore[method-assign,assignment]
