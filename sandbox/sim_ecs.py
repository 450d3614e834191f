"""ECS services that deploy like ECS does: IN_PROGRESS → COMPLETED after a while, with tasks
spread over the service's subnets (so AZs), registered healthy in the target group.

moto keeps services IN_PROGRESS with runningCount 0 forever and never creates a deployment on
update. Here the sandbox owns each service's deployments and tasks and rewrites moto's
answers to CreateService/UpdateService/DescribeServices; ListTasks, DescribeTasks and StopTask
for those services are answered from the same state. Progress is computed lazily from
timestamps whenever something is read.
"""

from __future__ import annotations

import ipaddress
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from moto.core.models import DEFAULT_ACCOUNT_ID

from sandbox.settings import Timings


@dataclass
class Deployment:
    id: str
    task_definition: str
    desired: int
    started: float
    mode: str = ""  # "" | "fail" | "stall"
    status: str = "PRIMARY"
    rollout: str = "IN_PROGRESS"
    reason: str = ""
    running: int = 0
    failed_tasks: int = 0


@dataclass
class Task:
    arn: str
    task_definition: str
    deployment: str
    subnet: str
    az: str
    ip: str
    started: float


@dataclass
class SimService:
    region: str
    cluster: str
    name: str
    arn: str
    desired: int
    subnets: list[str]
    security_groups: list[str]
    target_groups: list[tuple[str, int]]
    rollback: bool
    deployment_config: dict[str, Any]
    deployments: list[Deployment] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    stopped: list[tuple[Task, float]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    seq: int = 0

    @property
    def primary(self) -> Deployment:
        return self.deployments[-1]


class EcsSim:
    def __init__(self, timings: Timings) -> None:
        self.timings = timings
        self.services: dict[tuple[str, str, str], SimService] = {}
        self.next_mode: dict[tuple[str, str], str] = {}  # (region, service name) -> fail|stall
        self.lock = threading.RLock()

    def reset(self) -> None:
        with self.lock:
            self.services.clear()
            self.next_mode.clear()

    def writers(self, region: str, database: str = "") -> bool:
        """Whether a service that writes to ``database`` (in ``region``) still wants tasks:
        those of the cluster its identifier starts with (``<stack>`` for ``<stack>-db``), or
        every service of the region when no cluster name matches."""
        with self.lock:
            here = [s for s in self.services.values() if s.region == region]
            mine = [s for s in here if database.startswith(f"{s.cluster}-")]
            return any(s.desired > 0 for s in (mine or here))

    def fail_next(self, region: str, service: str, mode: str) -> None:
        if mode not in ("fail", "stall"):
            raise ValueError("mode must be 'fail' or 'stall'")
        with self.lock:
            self.next_mode[(region, service)] = mode

    # -- requests ----------------------------------------------------------------------------
    def handle(
        self, region: str, op: str, params: dict[str, Any], answer: dict[str, Any]
    ) -> dict[str, Any]:
        with self.lock:
            if op == "CreateService" and "service" in answer:
                created = self._create(region, params, answer["service"])
                answer["service"] = self._render(created, answer["service"])
            elif op == "UpdateService" and "service" in answer:
                updated = self._find(region, answer["service"])
                if updated:
                    self._update(updated, params)
                    answer["service"] = self._render(updated, answer["service"])
            elif op == "DescribeServices":
                answer["services"] = [
                    self._render(s, raw) if (s := self._find(region, raw)) else raw
                    for raw in answer.get("services", [])
                ]
            elif op == "DeleteService" and "service" in answer:
                deleted = self._find(region, answer["service"])
                if deleted:
                    self._set_tasks(deleted, [])
                    del self.services[(deleted.region, deleted.cluster, deleted.name)]
        return answer

    def owns_tasks(self, region: str, op: str, params: dict[str, Any]) -> bool:
        with self.lock:
            if op == "ListTasks":
                return any(
                    s.region == region
                    and s.name == str(params.get("serviceName", "")).split("/")[-1]
                    for s in self.services.values()
                )
            arns = params.get("tasks") or [params.get("task")]
            return bool(arns) and all(self._task(region, str(a)) for a in arns)

    def answer_tasks(self, region: str, op: str, params: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            if op == "ListTasks":
                name = str(params["serviceName"]).split("/")[-1]
                svc = next(
                    s for s in self.services.values() if s.region == region and s.name == name
                )
                self._tick(svc)
                if params.get("desiredStatus") == "STOPPED":
                    return {"taskArns": [t.arn for t, _ in svc.stopped]}
                return {"taskArns": [t.arn for t in svc.tasks]}
            if op == "StopTask":
                found = self._task(region, str(params["task"]))
                assert found is not None
                svc, task = found
                self._set_tasks(svc, [t for t in svc.tasks if t.arn != task.arn])
                svc.stopped.append((task, time.time()))
                return {"task": self._render_task(svc, task, "STOPPED")}
            rendered = []
            for arn in params.get("tasks", []):
                found = self._task(region, str(arn))
                if found:
                    svc, task = found
                    alive = any(t.arn == task.arn for t in svc.tasks)
                    rendered.append(self._render_task(svc, task, "RUNNING" if alive else "STOPPED"))
            return {"tasks": rendered, "failures": []}

    # -- state changes -------------------------------------------------------------------------
    def _create(self, region: str, params: dict[str, Any], raw: dict[str, Any]) -> SimService:
        net = (params.get("networkConfiguration") or {}).get("awsvpcConfiguration") or {}
        cfg = params.get("deploymentConfiguration") or {}
        breaker = cfg.get("deploymentCircuitBreaker") or {}
        svc = SimService(
            region=region,
            cluster=raw.get("clusterArn", "").split("/")[-1],
            name=raw["serviceName"],
            arn=raw["serviceArn"],
            desired=int(params.get("desiredCount", raw.get("desiredCount", 0)) or 0),
            subnets=list(net.get("subnets", [])),
            security_groups=list(net.get("securityGroups", [])),
            target_groups=[
                (lb["targetGroupArn"], int(lb.get("containerPort", 80)))
                for lb in params.get("loadBalancers", [])
                if lb.get("targetGroupArn")
            ],
            rollback=bool(breaker.get("enable") and breaker.get("rollback")),
            deployment_config=cfg,
        )
        self.services[(region, svc.cluster, svc.name)] = svc
        self._deploy(svc, raw.get("taskDefinition", ""))
        return svc

    def _update(self, svc: SimService, params: dict[str, Any]) -> None:
        self._tick(svc)
        if "deploymentConfiguration" in params:
            svc.deployment_config = params["deploymentConfiguration"] or {}
            breaker = svc.deployment_config.get("deploymentCircuitBreaker") or {}
            svc.rollback = bool(breaker.get("enable") and breaker.get("rollback"))
        if params.get("desiredCount") is not None:
            svc.desired = int(params["desiredCount"])
        td = params.get("taskDefinition")
        new_td = td and self._qualified(svc, td) != svc.primary.task_definition
        if new_td or params.get("forceNewDeployment"):
            self._deploy(svc, self._qualified(svc, td) if td else svc.primary.task_definition)
        elif params.get("desiredCount") is not None and svc.primary.desired != svc.desired:
            p = svc.primary
            p.desired, p.started, p.rollout = svc.desired, time.time(), "IN_PROGRESS"
            p.reason = f"ECS deployment {p.id} in progress."

    def _qualified(self, svc: SimService, td: str) -> str:
        if td.startswith("arn:"):
            return td
        from moto.ecs.models import ecs_backends

        return str(ecs_backends[DEFAULT_ACCOUNT_ID][svc.region].describe_task_definition(td).arn)

    def _deploy(self, svc: SimService, task_definition: str, *, rollback_of: str = "") -> None:
        now = time.time()
        for d in svc.deployments:
            if d.status == "PRIMARY":
                d.status = "ACTIVE"
        mode = "" if rollback_of else self.next_mode.pop((svc.region, svc.name), "")
        dep = Deployment(
            id=f"ecs-svc/{uuid.uuid4().int % 10**19:019d}",
            task_definition=task_definition,
            desired=svc.desired,
            started=now,
            mode=mode,
            reason="",
        )
        dep.reason = f"ECS deployment {dep.id} in progress."
        svc.deployments.append(dep)
        if rollback_of:
            svc.events.insert(
                0,
                self._event(
                    f"(service {svc.name}) rolling back to {task_definition.split('/')[-1]} after deployment {rollback_of} failed."
                ),
            )

    # -- progression -------------------------------------------------------------------------
    def _tick(self, svc: SimService) -> None:
        now = time.time()
        p = svc.primary
        if (
            p.rollout == "IN_PROGRESS"
            and p.mode != "stall"
            and now - p.started >= self.timings.ecs_deployment_seconds
        ):
            if p.mode == "fail":
                p.rollout, p.failed_tasks = "FAILED", max(1, p.desired)
                p.reason = "ECS deployment circuit breaker: tasks failed to start."
                svc.events.insert(
                    0,
                    self._event(
                        f"(service {svc.name}) deployment {p.id} failed: tasks failed to start."
                    ),
                )
                previous = next(
                    (d for d in reversed(svc.deployments[:-1]) if d.rollout == "COMPLETED"), None
                )
                if svc.rollback and previous is not None:
                    self._deploy(svc, previous.task_definition, rollback_of=p.id)
                    p.status = "ACTIVE"
            else:
                p.rollout, p.running = "COMPLETED", p.desired
                p.reason = f"ECS deployment {p.id} completed."
                svc.deployments = [p]
                self._set_tasks(svc, [self._new_task(svc, p, i) for i in range(p.desired)])
                svc.events.insert(
                    0, self._event(f"(service {svc.name}) has reached a steady state.")
                )
        elif p.rollout == "COMPLETED":
            missing = p.desired - len(svc.tasks)
            last_stop = max((t for _, t in svc.stopped), default=0.0)
            if missing > 0 and now - last_stop >= self.timings.ecs_task_replace_seconds:
                self._set_tasks(
                    svc,
                    svc.tasks
                    + [self._new_task(svc, p, len(svc.tasks) + i) for i in range(missing)],
                )
            elif missing < 0:
                self._set_tasks(svc, svc.tasks[: p.desired])
            p.running = len(svc.tasks)
        if p.rollout == "IN_PROGRESS" and p.mode == "stall":
            p.running = 0
        # tasks of older deployments keep serving until the new one completes
        if p.rollout != "COMPLETED":
            p.running = 0

    def _new_task(self, svc: SimService, dep: Deployment, index: int) -> Task:
        svc.seq += 1
        from moto.ec2.models import ec2_backends

        subnet_id = svc.subnets[index % len(svc.subnets)] if svc.subnets else ""
        az, ip = f"{svc.region}a", f"10.0.0.{10 + svc.seq % 240}"
        if subnet_id:
            subnet = ec2_backends[DEFAULT_ACCOUNT_ID][svc.region].get_subnet(subnet_id)
            az = subnet.availability_zone
            net = ipaddress.ip_network(subnet.cidr_block)
            ip = str(net.network_address + 10 + svc.seq % max(1, net.num_addresses - 20))
        task_id = uuid.uuid4().hex
        return Task(
            arn=f"arn:aws:ecs:{svc.region}:{DEFAULT_ACCOUNT_ID}:task/{svc.cluster}/{task_id}",
            task_definition=dep.task_definition,
            deployment=dep.id,
            subnet=subnet_id,
            az=az,
            ip=ip,
            started=time.time(),
        )

    def _set_tasks(self, svc: SimService, tasks: list[Task]) -> None:
        """Replace the running tasks, keeping the target groups' registrations in step."""
        from moto.elbv2.models import elbv2_backends

        elb = elbv2_backends[DEFAULT_ACCOUNT_ID][svc.region]
        old = {t.ip for t in svc.tasks}
        new = {t.ip for t in tasks}
        for tg_arn, port in svc.target_groups:
            try:
                if old - new:
                    elb.deregister_targets(tg_arn, [{"Id": ip, "Port": port} for ip in old - new])
                if new - old:
                    elb.register_targets(tg_arn, [{"Id": ip, "Port": port} for ip in new - old])
            except Exception:  # a deleted target group: nothing to keep in step
                pass
        svc.tasks = tasks

    # -- rendering ---------------------------------------------------------------------------
    def _find(self, region: str, raw: dict[str, Any]) -> SimService | None:
        cluster = raw.get("clusterArn", "").split("/")[-1]
        svc = self.services.get((region, cluster, raw.get("serviceName", "")))
        if svc:
            self._tick(svc)
        return svc

    def _task(self, region: str, arn: str) -> tuple[SimService, Task] | None:
        for svc in self.services.values():
            if svc.region != region:
                continue
            self._tick(svc)
            for t in svc.tasks + [t for t, _ in svc.stopped]:
                if t.arn == arn or t.arn.endswith("/" + arn):
                    return svc, t
        return None

    def _render(self, svc: SimService, raw: dict[str, Any]) -> dict[str, Any]:
        p = svc.primary
        running = len(svc.tasks)
        out = dict(raw)
        out.update(
            desiredCount=svc.desired,
            runningCount=running,
            pendingCount=max(0, svc.desired - running),
            taskDefinition=p.task_definition,
            deploymentConfiguration=svc.deployment_config or raw.get("deploymentConfiguration", {}),
            events=svc.events[:20],
            deployments=[
                {
                    "id": d.id,
                    "status": d.status,
                    "taskDefinition": d.task_definition,
                    "desiredCount": d.desired,
                    "pendingCount": 0 if d.rollout != "IN_PROGRESS" else d.desired,
                    "runningCount": len([t for t in svc.tasks if t.deployment == d.id]),
                    "failedTasks": d.failed_tasks,
                    "createdAt": d.started,
                    "updatedAt": time.time(),
                    "launchType": "FARGATE",
                    "rolloutState": d.rollout,
                    "rolloutStateReason": d.reason,
                    "networkConfiguration": raw.get("networkConfiguration", {}),
                }
                for d in reversed(svc.deployments)
            ],
        )
        return out

    def _render_task(self, svc: SimService, t: Task, status: str) -> dict[str, Any]:
        return {
            "taskArn": t.arn,
            "clusterArn": svc.arn.rsplit(":service/", 1)[0] + f":cluster/{svc.cluster}",
            "taskDefinitionArn": t.task_definition,
            "group": f"service:{svc.name}",
            "startedBy": svc.primary.id,
            "lastStatus": status,
            "desiredStatus": status,
            "launchType": "FARGATE",
            "availabilityZone": t.az,
            "startedAt": t.started,
            "healthStatus": "HEALTHY" if status == "RUNNING" else "UNKNOWN",
            "attachments": [
                {
                    "type": "ElasticNetworkInterface",
                    "status": "ATTACHED",
                    "details": [
                        {"name": "subnetId", "value": t.subnet},
                        {"name": "privateIPv4Address", "value": t.ip},
                    ],
                }
            ],
        }

    @staticmethod
    def _event(message: str) -> dict[str, Any]:
        return {"id": uuid.uuid4().hex, "createdAt": time.time(), "message": message}
