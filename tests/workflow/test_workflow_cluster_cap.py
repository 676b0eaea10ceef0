"""The agent cap on an executor with slots of its own (a Ray cluster): its agent slots, not this machine's
MAX_AGENTS, unless the user's max_agents is lower; said in the run's events. Tested with an executor that runs
phases here but reports a cluster's slots (no Ray needed)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from adw.config import MAX_AGENTS, AdwConfig, AgentsConfig
from adw.workflow import engine as engine_module
from adw.workflow.engine import Engine
from adw.workflow.events import Progress
from adw.workflow.executor import AgentSlotCount, LocalExecutor
from adw.workflow.models import TaskState
from tests.fakes import workflow
from tests.workflow.test_workflow_engine import Gate, fake_task

SLOTS = MAX_AGENTS + 4


class TwelveSlots(LocalExecutor):
    async def agent_slots(self) -> AgentSlotCount:
        return AgentSlotCount("the Ray cluster at test:6379", SLOTS, SLOTS - 1)


@pytest.fixture(autouse=True)
def cluster_executor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_module, "open_executor", lambda config: TwelveSlots())


async def _run(tmp_path: Path, engine: Engine, gate: Gate, running: int) -> tuple[TaskState, list[str]]:
    tasks = [fake_task(f"t{i}") for i in range(SLOTS)]
    async with engine.subscribe(types=[Progress]) as events:
        run = asyncio.create_task(engine.run(workflow(tmp_path, tasks)))
        await gate.until(running=running)
        gate.open.set()
        state = (await run).state
        events.close()  # what it holds is still read
        said = [event.message async for event in events if isinstance(event, Progress) and event.task_id is None]
    return state, said


async def test_on_a_cluster_the_cap_is_its_agent_slots_beyond_max_agents(tmp_path: Path) -> None:
    gate = Gate()
    engine = Engine(agents={"fake": gate.factory})
    state, said = await _run(tmp_path, engine, gate, running=SLOTS)
    assert state is TaskState.SUCCEEDED
    assert gate.peak == SLOTS == engine.max_agents
    assert said == [f"agent cap {SLOTS}: the Ray cluster at test:6379 has {SLOTS} agent slot(s), {SLOTS - 1} free"]


@pytest.mark.parametrize("given", ["caller", "config"])
async def test_on_a_cluster_a_lower_max_agents_of_the_user_is_kept(tmp_path: Path, given: str) -> None:
    gate = Gate()
    if given == "caller":  # `adw sdlc --max-agents 3`, the editor's adw.maxAgents
        engine = Engine(agents={"fake": gate.factory}, max_agents=3)
    else:  # [tool.adw.agents] max_agents = 3
        engine = Engine(config=AdwConfig(agents=AgentsConfig(max_agents=3)), agents={"fake": gate.factory})
    state, said = await _run(tmp_path, engine, gate, running=3)
    assert state is TaskState.SUCCEEDED
    assert gate.peak == 3 == engine.max_agents
    assert said == [f"agent cap 3: the Ray cluster at test:6379 has {SLOTS} agent slot(s), {SLOTS - 1} free; "
                    "max_agents 3 keeps it lower"]
