"""What users see of a phase on the cluster, as they would of a local one: the agent cap the cluster's slots give,
the phases `adw cluster status` names, an `acp` agent's permission questions answered by the driver's watchers."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from adw.config import AdwConfig, AgentsConfig
from adw.sdlc.engine import agent_factories
from adw.workflow.engine import Engine
from adw.workflow.events import OutputLine, PermissionAnswered, PermissionAsked, PermissionChoice, Progress
from adw.workflow.models import TaskState
from tests.agents.test_agents_acp import acp_task, answer_as, lines
from tests.agents.test_agents_follow_up import own
from tests.cluster.conftest import Cluster
from tests.cluster.test_ray_executor import _ADDRESSES
from tests.conftest import MakeRepo
from tests.fakes import command_task, python

pytestmark = pytest.mark.cluster

ADW = Path(sys.executable).with_name("adw")


@_ADDRESSES
async def test_a_permission_question_on_a_node_is_answered_by_the_drivers_watchers(
    ray_cluster: Cluster, make_repo: MakeRepo, address: str
) -> None:
    repo = make_repo()
    config = AdwConfig(executor="ray", address=getattr(ray_cluster, address))
    engine = Engine(None, config, agents=agent_factories())
    wf = own(repo, [acp_task("permission again", permissions="ask", permission_timeout=30)])
    asked: list[PermissionAsked] = []
    choices: dict[str, PermissionChoice] = {
        "Edit a.txt": "allow_always", "Run rm -rf /": "deny", "Edit /etc/passwd": "allow_once",
    }
    answerer = asyncio.create_task(answer_as(engine, choices, asked))
    try:
        async with engine.subscribe(types=[OutputLine, PermissionAnswered]) as subscription:
            result = await engine.run(wf)
            subscription.close()
            seen = [event async for event in subscription]
    finally:
        answerer.cancel()
        engine.close()
    done = result.task("build")
    assert done.state is TaskState.SUCCEEDED, done.reason
    assert [q.tool for q in asked] == ["Edit a.txt", "Run rm -rf /", "Edit /etc/passwd"]
    assert asked[0].paths == [str(repo / "a.txt")]  # the driver's worktree, not the node's fresh clone
    assert lines([e for e in seen if isinstance(e, OutputLine)])[:4] == ["p1: yes", "p2: no", "p3: yes", "p4: yes"]
    assert [d["why"] for d in done.outputs["acp"]["permissions"]] == [
        "allowed for this task by test", "denied by test", "allowed once by test",
        "edit tools allowed for this task by test",
    ]
    answered = [(e.choice, e.by) for e in seen if isinstance(e, PermissionAnswered)]
    assert answered == [("allow_always", "test"), ("deny", "test"), ("allow_once", "test")]  # once each


async def test_a_permission_question_nobody_answers_is_denied_after_its_timeout(
    ray_cluster: Cluster, make_repo: MakeRepo
) -> None:
    repo = make_repo()
    engine = Engine(None, AdwConfig(executor="ray", address=ray_cluster.address), agents=agent_factories())
    try:
        async with engine.subscribe(types=[OutputLine, PermissionAnswered]) as subscription:
            result = await engine.run(own(repo, [acp_task("permission", permissions="ask", permission_timeout=0.5)]))
            subscription.close()
            seen = [event async for event in subscription]
    finally:
        engine.close()
    assert result.task("build").state is TaskState.SUCCEEDED
    assert lines([e for e in seen if isinstance(e, OutputLine)])[:3] == ["p1: no", "p2: no", "p3: no"]
    assert [(e.choice, e.by) for e in seen if isinstance(e, PermissionAnswered)] == [(None, "timeout")] * 3


async def test_the_agent_cap_is_the_clusters_slots_and_cluster_status_names_the_running_phase(
    ray_cluster: Cluster, make_repo: MakeRepo, tmp_path: Path
) -> None:
    repo = make_repo()
    agent = python("print('working', flush=True); import time; time.sleep(600)")
    workflow = own(repo, [command_task("long", agent)])
    # max_agents 8 on one machine; the cluster has 2 slots, so 2 it is.
    config = AdwConfig(executor="ray", address=ray_cluster.address, agents=AgentsConfig(max_agents=8, stop_grace=0.5))
    engine = Engine(None, config, agents=agent_factories())
    said: list[str] = []
    try:
        async with engine.subscribe(workflow.id) as events:
            run = asyncio.create_task(engine.run(workflow))
            async for event in events:
                if isinstance(event, Progress) and event.task_id is None:
                    said.append(event.message)
                if isinstance(event, OutputLine) and event.text == "working":
                    break
            shown = await asyncio.to_thread(_cluster_status, ray_cluster, tmp_path)
            engine.cancel(workflow.id)
            await run
    finally:
        engine.close()
    assert engine.max_agents == 2
    assert said[0].startswith(f"agent cap 2: the Ray cluster at {ray_cluster.address} has 2 agent slot(s), ")
    found, text = shown
    alive = {node["node_id"] for node in found["nodes"] if node["alive"]}
    [phase] = found["phases"]
    assert (phase["workflow_id"], phase["workflow"], phase["task_id"], phase["agent"]) == (
        workflow.id, workflow.name, "long", "command")
    assert phase["node_id"] in alive and phase["since"] > 0
    assert found["running_phases"] == 1
    assert f"{workflow.name} [{workflow.id}]  long (command)  on {phase['node_id'][:12]}" in text


def _cluster_status(cluster: Cluster, cwd: Path) -> tuple[dict[str, list[dict[str, object]]], str]:
    def status(*flags: str) -> str:
        done = subprocess.run([str(ADW), "-C", str(cwd), "cluster", "status", "--address", cluster.address, *flags],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return done.stdout

    return json.loads(status("--json")), status()


@pytest.mark.parametrize("scheme", ["", "ray://"], ids=["direct", "ray-client"])
def test_an_address_where_no_cluster_listens_is_one_clear_message_at_once(tmp_path: Path, scheme: str) -> None:
    with socket.socket() as closed:  # a port nothing listens on once closed
        closed.bind(("127.0.0.1", 0))
        address = f"{scheme}127.0.0.1:{closed.getsockname()[1]}"
    # Ray alone waits minutes for a head node there; the guard's timeout only keeps a regression from hanging.
    done = subprocess.run([str(ADW), "-C", str(tmp_path), "cluster", "status", "--address", address],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert f"no Ray cluster at {address}: nothing answers there" in done.stderr
    assert "ray start --head" in done.stderr


def test_a_ray_call_once_the_connection_is_gone_starts_no_ray_instance_here(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Ray starts a local instance for a call made without a connection (a late call after Ray Client's connection
    dropped, or after the executor closed), and writes a token into ~/.ray that every later `ray start` of the
    machine then demands: with ADW's ray executor imported, such a call fails instead."""
    home = tmp_path_factory.mktemp("h")  # short: a socket path of a session must fit in 107 bytes
    script = (
        "import ray, adw.workflow.ray_executor\n"
        "try:\n    ray.put(1)\nexcept Exception as exc:\n    print(type(exc).__name__)\n"
        "print('started' if ray.is_initialized() else 'none')\n"
    )
    ray_default = {name: value for name, value in os.environ.items() if name != "RAY_AUTH_MODE"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={**ray_default, "HOME": str(home), "RAY_TMPDIR": str(home)})
    assert done.stdout.split()[-1] == "none", (done.stdout, done.stderr[-2000:])
    assert not (home / ".ray").exists()
