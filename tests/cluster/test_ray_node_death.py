"""A node that dies mid-phase of an LLM agent (not retried: a second run costs money again): the phase fails
saying so, no process of its agent outlives it, and `adw resume` on the cluster runs it again."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from adw.config import load_config, phase_configs
from adw.process import AgentTree, task_marker
from adw.sdlc.engine import agent_factories
from adw.workflow.engine import Engine
from adw.workflow.events import OutputLine
from adw.workflow.models import Task, TaskState
from adw.workflow.store import Store
from tests.agents.test_agents_acp import FAKE
from tests.agents.test_agents_follow_up import own
from tests.cluster.conftest import Cluster
from tests.cluster.test_ray_executor import _ADDRESSES, _gone
from tests.conftest import MakeRepo

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

ADW = Path(sys.executable).with_name("adw")


@_ADDRESSES
async def test_a_node_killed_mid_phase_fails_it_clearly_stops_its_agent_and_resume_runs_it_again(
    lone_worker_cluster: Cluster, make_repo: MakeRepo, tmp_path: Path, address: str
) -> None:
    cluster = lone_worker_cluster
    marks = tmp_path / "marks"
    marks.mkdir()
    command = ", ".join(json.dumps(part) for part in FAKE)
    # The repository's own build phase: an acp agent (an LLM's: Ray does not retry it) that works for ten minutes
    # the first time and finishes at once the next.
    build_phase = (f'[tool.adw.phases.build]\nagent = "acp"\ncommand = [{command}]\nprompt = "once {marks}"\n'
                   "retries = 0\n")
    repo = make_repo({"pyproject.toml": build_phase})
    config = load_config(repo).model_copy(update={"executor": "ray", "address": getattr(cluster, address)})
    build = phase_configs(config)["build"]
    workflow = own(repo, [Task(id="build", phase="build", agent="acp", config=build)])
    engine = Engine(Store.for_common_dir(repo / ".git"), config, agents=agent_factories())
    try:
        async with engine.subscribe(workflow.id) as events:
            run = asyncio.create_task(engine.run(workflow))
            async for event in events:
                if isinstance(event, OutputLine) and event.text.strip() == "working":
                    break
            agent = psutil.Process(int((marks / "agent.pid").read_text()))
            tree = AgentTree(agent.pid, agent.create_time(), task_marker(workflow.id, "build"))
            agents = await asyncio.to_thread(tree.members)
            assert len(agents) >= 3  # the agent, the terminal it asked for, and its own tool process
            raylet = next(parent for parent in agent.parents() if parent.name() == "raylet")
            assert str(cluster.temp) in " ".join(raylet.cmdline())  # the worker node of this test's cluster
            raylet.kill()  # SIGKILL: the node is gone
            done = await run
    finally:
        engine.close()
    task = done.task("build")
    assert task.state is TaskState.FAILED
    assert "the cluster node running the phase died" in task.reason and "adw resume" in task.reason
    assert len(task.attempts) == 1  # not retried
    for proc in agents:
        assert await _gone(proc.pid), proc

    cluster.add_worker()
    resumed = await asyncio.to_thread(
        subprocess.run, [str(ADW), "-C", str(repo), "resume", workflow.id, "--json",
                         "--executor", "ray", "--address", getattr(cluster, address)],
        capture_output=True, text=True, timeout=300, env=os.environ.copy(),
    )
    assert resumed.returncode == 0, (resumed.stdout[-2000:], resumed.stderr[-2000:])
    [again] = json.loads(resumed.stdout)["workflows"]
    assert again["state"] == "succeeded"
    log = (await asyncio.to_thread(
        subprocess.run, [str(ADW), "-C", str(repo), "logs", workflow.id, "--task", "build"],
        capture_output=True, text=True, timeout=60, check=True,
    )).stdout
    assert "running on node" in log and "done" in log
