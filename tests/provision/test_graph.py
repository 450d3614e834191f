"""Provision as a graph: the declared graph is sound for every region choice, a plan and a
real run visit the same steps, a failing step stops only what needs it, ``--graph`` prints the
graph without AWS."""

from __future__ import annotations

import json
from typing import Any

import pytest
from prefect import flow
from typer.testing import CliRunner

from cli.main import app
from configs import load_config, resolve_config
from configs.errors import StepFailed
from configs.models import Config
from configs.names import names_for
from flows.graph import Done, Graph, Inputs, Node, Ref, execute
from flows.provision import provision, roles_for
from flows.provision_graph import build
from sandbox.testing import ROOT, Sandbox, plain

CONFIG = "configs/sandbox.yaml"
CFG = load_config(ROOT / CONFIG)
AURORA = CFG.model_copy(
    update={"database": CFG.database.model_copy(update={"engine": "aurora-postgresql"})}
)


@pytest.mark.parametrize("region", ["both", "primary", "dr"])
@pytest.mark.parametrize("cfg", [CFG, AURORA], ids=["postgres", "aurora"])
def test_the_graph_has_no_cycle_and_every_need_is_a_node(cfg: Config, region: str) -> None:
    for dry_run in (True, False):
        g = build(cfg, roles_for(region), dry_run=dry_run)
        assert g.problems() == []
        assert all(k in g.nodes for n in g for k in n.needs)


class _Anything:
    """Stands for any output: every attribute, item and call is itself."""

    def __getattr__(self, name: str) -> _Anything:
        return self

    def __getitem__(self, key: object) -> _Anything:
        return self

    def __call__(self, *args: object) -> _Anything:
        return self


@pytest.mark.parametrize("region", ["both", "primary", "dr"])
def test_every_node_reads_only_the_nodes_it_needs(region: str) -> None:
    for dry_run in (True, False):
        g = build(CFG, roles_for(region), dry_run=dry_run)
        outputs = {k: _Anything() for k in g.nodes}
        for n in g:
            inputs = Inputs(n, outputs)
            if n.skip is not None:
                n.skip(inputs)
            n.args(inputs)  # a KeyError names the node and what it read


def test_both_regions_build_everything_and_dr_waits_only_on_what_it_reads() -> None:
    g = build(CFG, ["primary", "dr"], dry_run=False)
    for role in ("primary", "dr"):
        assert {f"{role}.vpc", f"{role}.service:web", f"{role}.alarms"} <= set(g.nodes)
    assert {"dns-records", "cloudfront-distribution", "hosted-zone"} <= set(g.nodes)
    # no layer barrier: DR's network needs nothing of the primary's, the app's first steps
    # need no database
    assert g.nodes["dr.vpc"].needs == () and g.nodes["dr.subnets"].needs == ("dr.vpc",)
    assert "primary.database" not in _ancestors(g, "primary.load-balancer")
    assert "dr.service:web" not in _ancestors(g, "dns-records")
    # IAM is global: the DR roles follow the primary's
    assert "primary.execution-role" in g.nodes["dr.task-roles"].needs


def _ancestors(g: Graph, key: str) -> set[str]:
    out, todo = set(), list(g.nodes[key].needs)
    while todo:
        k = todo.pop()
        if k not in out:
            out.add(k)
            todo.extend(g.nodes[k].needs)
    return out


def test_a_cycle_and_a_missing_need_are_found() -> None:
    def noop(cfg: Config) -> None:
        return None

    g = Graph()
    g.nodes["a"] = Node("a", "network", None, noop, needs=("b",))
    g.nodes["b"] = Node("b", "network", None, noop, needs=("a",))
    g.nodes["c"] = Node("c", "network", None, noop, needs=("nowhere",))
    found = g.problems()
    assert any(p.startswith("cycle:") and "a" in p and "b" in p for p in found), found
    assert "c needs nowhere, which is no node" in found
    with pytest.raises(ValueError, match="not declared before it"):
        g.add("d", "data", None, noop, needs=[Ref("later", Done)])


def test_a_failing_node_stops_only_its_dependents() -> None:
    """Plain functions (run inline): the failure's dependents never start, the rest still
    run, and the error names the node."""
    ran: list[str] = []

    def ok(cfg: Config, name: str) -> str:
        ran.append(name)
        return name

    def boom(cfg: Config, name: str) -> str:
        raise RuntimeError("no such thing")

    g = Graph()
    a = g.add("a", "network", None, ok, args=lambda i: ("a",), output=str, mutating=False)
    b = g.add("b", "data", None, boom, needs=[a], args=lambda i: ("b",), output=str, mutating=False)
    g.add("c", "app", None, ok, needs=[b], args=lambda i: (i[b],), mutating=False)
    g.add("d", "app", None, ok, needs=[a], args=lambda i: (i[a] + "d",), mutating=False)
    with pytest.raises(
        StepFailed, match=r"b failed: RuntimeError: no such thing \(not started: c\)"
    ):
        execute(g, CFG, dry_run=False)
    assert ran == ["a", "ad"]


def test_ready_steps_start_longest_chain_first() -> None:
    """Of the steps ready at once, the one with the longest chain of dependents after it
    starts first (the critical path is not queued behind short steps); one at a time keeps
    the declaration order."""

    def ok(cfg: Config) -> str:
        return "x"

    g = Graph()
    short = g.add("short", "network", None, ok, output=str, mutating=False)
    head = g.add("head", "network", None, ok, output=str, mutating=False)
    middle = g.add("middle", "data", None, ok, needs=[head], output=str, mutating=False)
    g.add("tail", "app", None, ok, needs=[middle], mutating=False)
    g.add("after-short", "app", None, ok, needs=[short], mutating=False)
    assert g.heights() == {"short": 2, "head": 3, "middle": 2, "tail": 1, "after-short": 1}
    assert execute(g, CFG, dry_run=False).started == [
        "head",
        "short",
        "middle",
        "after-short",
        "tail",
    ]
    assert execute(g, CFG, dry_run=False, sequential=True).started == [
        "short",
        "head",
        "middle",
        "tail",
        "after-short",
    ]


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_a_run_hides_the_heap_it_started_with_from_full_collections_and_hands_it_back() -> None:
    """While a graph runs, what the process held when it started is frozen (a full collection
    does not walk it and stops no step); at the end, failed or not, it is unfrozen, and
    garbage that was frozen is collected then, not kept."""
    import gc
    import weakref

    seen: list[int] = []

    def look(cfg: Config) -> str:
        seen.append(gc.get_freeze_count())
        return "x"

    def boom(cfg: Config) -> str:
        seen.append(gc.get_freeze_count())
        raise RuntimeError("no such thing")

    gc.disable()  # no automatic collection frees the cycle before the run starts
    try:
        garbage = _Cycle()
        gone = weakref.ref(garbage)
        del garbage  # a cycle: only a collection frees it
        assert gc.get_freeze_count() == 0
        g = Graph()
        g.add("a", "network", None, look, output=str, mutating=False)
        execute(g, CFG, dry_run=False)
        g.add("b", "network", None, boom, output=str, mutating=False)
        with pytest.raises(StepFailed):
            execute(g, CFG, dry_run=False)
    finally:
        gc.enable()
    assert len(seen) == 3 and all(frozen > 0 for frozen in seen)
    assert gc.get_freeze_count() == 0
    assert gone() is not None
    gc.collect()
    assert gone() is None


def test_concurrent_runs_unfreeze_the_heap_when_the_last_one_ends() -> None:
    """Two graphs at once (a fleet's environments): the one that ends first leaves the heap
    frozen for the one still running."""
    import gc
    import threading

    running, other_ended = threading.Event(), threading.Event()
    seen: list[int] = []

    def slow(cfg: Config) -> str:
        running.set()
        assert other_ended.wait(10)
        seen.append(gc.get_freeze_count())
        return "x"

    def quick(cfg: Config) -> str:
        return "x"

    long_run, short_run = Graph(), Graph()
    long_run.add("slow", "network", None, slow, output=str, mutating=False)
    short_run.add("quick", "network", None, quick, output=str, mutating=False)
    first = threading.Thread(target=execute, args=(long_run, CFG), kwargs={"dry_run": False})
    first.start()
    assert running.wait(10)
    execute(short_run, CFG, dry_run=False)
    other_ended.set()
    first.join(10)
    assert seen and seen[0] > 0  # still frozen after the short run ended
    assert gc.get_freeze_count() == 0


def test_a_node_reading_what_it_does_not_need_fails() -> None:
    def ok(cfg: Config, value: str = "") -> str:
        return value or "x"

    g = Graph()
    a = g.add("a", "network", None, ok, output=str, mutating=False)
    g.add("b", "data", None, ok, args=lambda i: (i[a],), mutating=False)
    with pytest.raises(StepFailed, match="b reads a without needing it"):
        execute(g, CFG, dry_run=False)


# -- against the sandbox ----------------------------------------------------------------------
@flow(name="provision-graph-under-test", persist_result=False)
def _visit(config: str, plan: bool, region: str) -> list[str]:
    cfg = resolve_config(config)
    return execute(build(cfg, roles_for(region), dry_run=plan), cfg, dry_run=plan).started


def test_a_plan_and_a_real_run_visit_the_same_nodes(account: Config, prefect_harness: None) -> None:
    planned = _visit(CONFIG, True, "primary")
    built = _visit(CONFIG, False, "primary")
    assert (
        sorted(planned) == sorted(built) == sorted(build(account, ["primary"], dry_run=False).nodes)
    )
    assert len(set(built)) == len(built)  # each once
    # and the real run built what the plan named
    ecs = plain(account, "ecs")
    cluster = names_for(account, "primary").cluster
    assert len(ecs.list_services(cluster=cluster)["serviceArns"]) == len(
        list(account.services.items())
    )


def test_a_failing_step_stops_only_what_needs_it(
    account: Config, sandbox: Sandbox, prefect_harness: None
) -> None:
    """The image repositories cannot be made: no task definition or service starts, but the
    network, the database, the load balancer and DNS are built, and the run names the step."""
    sandbox.control.set_faults(
        {
            "kind": "error",
            "services": ["ecr"],
            "operations": ["CreateRepository"],
            "code": "AccessDeniedException",
            "status": 400,
        }
    )
    try:
        with pytest.raises(StepFailed, match=r"primary\.repositories failed") as err:
            provision(config=CONFIG, region="primary")
    finally:
        sandbox.control.clear_faults()
    message = str(err.value)
    assert "AccessDenied" in message
    held = message.split("not started:")[1]
    for node in ("primary.task-definition:web", "primary.service:web", "primary.autoscaling:web"):
        assert node in held
    assert "primary.alarms" not in held and "primary.load-balancer" not in held
    names = names_for(account, "primary")
    assert plain(account, "ecs").list_services(cluster=names.cluster)["serviceArns"] == []
    assert plain(account, "ecs").list_task_definitions()["taskDefinitionArns"] == []
    lbs = plain(account, "elbv2").describe_load_balancers()["LoadBalancers"]
    assert [lb["LoadBalancerName"] for lb in lbs] == [names.alb]
    assert plain(account, "rds").describe_db_instances()["DBInstances"]
    assert plain(account, "cloudwatch").describe_alarms()["MetricAlarms"]
    zone = plain(account, "route53").list_hosted_zones()["HostedZones"][0]["Id"]
    records = plain(account, "route53").list_resource_record_sets(HostedZoneId=zone)
    assert any(r["Type"] == "A" for r in records["ResourceRecordSets"])


# -- the CLI ----------------------------------------------------------------------------------
def test_cli_prints_the_graph_as_json_without_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERBOOK_AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing answers
    out = CliRunner().invoke(app, ["provision", "--graph", "-c", CONFIG, "-o", "json"])
    assert out.exit_code == 0, out.output
    nodes: list[dict[str, Any]] = json.loads(out.stdout)["nodes"]
    assert nodes == build(CFG, ["primary", "dr"], dry_run=False).describe()
    by_key = {n["node"]: n for n in nodes}
    assert by_key["dr.subnets"] == {
        "node": "dr.subnets",
        "phase": "network",
        "region": "dr",
        "step": "ensure_subnets",
        "needs": ["dr.vpc"],
    }


def test_cli_prints_the_graph_as_a_tree() -> None:
    out = CliRunner().invoke(app, ["provision", "--graph", "-c", CONFIG, "--region", "primary"])
    assert out.exit_code == 0, out.output
    for phase in ("network", "data", "app", "edge"):
        assert phase in out.stdout
    assert "primary.service:web" in out.stdout and "dr.vpc" not in out.stdout
