"""The engine with an executor of a cluster (Ray): the agent cap is its agent slots, not this machine's MAX_AGENTS,
unless the user's max_agents is lower, said in the run's events; the node an attempt runs on is kept on it; the
executor chosen by the caller (the editor's adw.executor). Tested with an executor that runs phases here but
reports a cluster's slots and nodes (no Ray needed)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from adw.cli.workflow import _print_progress
from adw.config import MAX_AGENTS, AdwConfig, AgentsConfig
from adw.errors import AdwError
from adw.workflow import engine as engine_module
from adw.workflow.agent import CancelToken
from adw.workflow.engine import Engine
from adw.workflow.events import Placed, Progress, TaskEvents
from adw.workflow.executor import AgentSlotCount, LocalExecutor, Phase
from adw.workflow.models import AgentResult, TaskState
from adw.workflow.store import Store
from tests.fakes import workflow
from tests.workflow.test_workflow_engine import Gate, Recorder, fake_task

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


class PlacedOnANode(TwelveSlots):
    async def run(self, phase: Phase, events: TaskEvents, cancel: CancelToken) -> AgentResult:
        events.placed("0123456789abcdef", "node-7")
        return await super().run(phase, events, cancel)


async def test_the_node_an_attempt_runs_on_is_kept_on_it_and_saved_before_anyone_hears(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "open_executor", lambda config: PlacedOnANode())
    store = Store(tmp_path / "state.db")
    engine = Engine(store, agents={"fake": Recorder().factory})
    wf = workflow(tmp_path, [fake_task("t")])
    heard: list[str | None] = []
    async with engine.subscribe(types=[Placed]) as events:
        done = await engine.run(wf)
        events.close()
        async for event in events:
            assert isinstance(event, Placed)
            heard.append(event.node)
    assert heard == ["node-7 (0123456789ab)"]
    assert done.task("t").attempts[-1].node == "node-7 (0123456789ab)"
    stored = store.load(wf.id)
    assert stored is not None and stored.task("t").attempts[-1].node == "node-7 (0123456789ab)"
    engine.close()


async def test_choose_executor_switches_unless_agent_phases_run_on_the_current_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[tuple[str, str]] = []

    def record(config: AdwConfig) -> TwelveSlots:
        opened.append((config.executor, config.address))
        return TwelveSlots()

    monkeypatch.setattr(engine_module, "open_executor", record)
    gate = Gate()
    engine = Engine(config=AdwConfig(address="ray://head:10001"), agents={"fake": gate.factory})
    run = asyncio.create_task(engine.run(workflow(tmp_path, [fake_task("t")])))
    await gate.until(running=1)
    with pytest.raises(AdwError, match="1 agent phase\\(s\\) run on the local executor now") as refused:
        engine.choose_executor("ray")
    assert 'set adw.executor to "local"' in refused.value.editor_hint
    engine.choose_executor(None)  # the configuration's: the one open, nothing to switch
    gate.open.set()
    await run
    engine.choose_executor("ray")  # [tool.adw] address
    engine.choose_executor("ray", "10.0.0.1:6379")
    engine.reconfigure(AdwConfig(agents=AgentsConfig(max_agents=2)))  # a reload keeps the choice
    engine.choose_executor(None)
    assert opened == [("local", "ray://head:10001"), ("ray", "ray://head:10001"), ("ray", "10.0.0.1:6379"),
                      ("local", "auto")]


async def test_adw_sdlc_prints_the_cap_the_cluster_gives(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gate = Gate()
    gate.open.set()
    engine = Engine(agents={"fake": gate.factory})
    wf = workflow(tmp_path, [fake_task("t")])
    printer = asyncio.create_task(_print_progress(engine, [wf]))
    await asyncio.sleep(0)  # subscribed
    await engine.run(wf)
    await asyncio.sleep(0)
    printer.cancel()
    shown = capsys.readouterr().out
    assert f"agent cap {SLOTS}: the Ray cluster at test:6379 has {SLOTS} agent slot(s), {SLOTS - 1} free" in shown
