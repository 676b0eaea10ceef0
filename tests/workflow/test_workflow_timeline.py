"""The timeline of a run: lanes and bars from the store, slot waits the engine records, the critical path and the
measured speedup, and the text, SVG and HTML drawn from it."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from xml.etree import ElementTree

import pytest

from adw.config import AgentsConfig, PhaseConfig
from adw.errors import AdwError
from adw.workflow.agent import CancelToken
from adw.workflow.engine import Engine
from adw.workflow.events import TaskEvents
from adw.workflow.models import AgentResult, Attempt, Task, TaskState, Usage, Workflow
from adw.workflow.store import Store
from adw.workflow.timeline import BarState, timeline
from adw.workflow.timeline_render import html, svg, text
from tests.fakes import workflow

T0 = 1_000_000.0


def attempt(number: int, start: float, end: float | None, state: TaskState, **fields: object) -> Attempt:
    return Attempt.model_validate(
        {"number": number, "started_at": T0 + start, "finished_at": None if end is None else T0 + end,
         "state": state, **fields}
    )


def task(task_id: str, deps: list[str], *attempts: Attempt, **fields: object) -> Task:
    state = attempts[-1].state if attempts else TaskState.PENDING
    return Task.model_validate(
        {"id": task_id, "phase": task_id, "agent": "fake", "deps": deps, "attempts": list(attempts),
         "state": state, **fields}
    )


def finished(name: str, *tasks: Task) -> Workflow:
    return Workflow(id=f"{name}-1", name=name, repo="/r", cwd="/r", run_id="run-1", tasks=list(tasks),
                    state=TaskState.SUCCEEDED, started_at=T0)


def test_the_critical_path_follows_the_dependency_that_ended_last() -> None:
    ok = TaskState.SUCCEEDED
    diamond = finished(
        "diamond",
        task("a", [], attempt(1, 0, 2, ok)),
        task("b", ["a"], attempt(1, 2, 3, ok)),
        task("c", ["a"], attempt(1, 2, 6, ok)),  # b and c ran together; d waited for c
        task("d", ["b", "c"], attempt(1, 6, 7, ok)),
    )
    short = finished("short", task("x", [], attempt(1, 0, 1, ok)))
    result = timeline([diamond, short])
    assert result.critical_path == ["diamond-1/a", "diamond-1/c", "diamond-1/d"]
    critical = {bar.task_id for lane in result.lanes for bar in lane.bars if bar.critical}
    assert critical == {"a", "c", "d"}


def test_speedup_is_the_attempts_one_after_another_over_the_wall_time() -> None:
    ok = TaskState.SUCCEEDED
    one = finished("one", task("a", [], attempt(1, 0, 4, ok)), task("b", ["a"], attempt(1, 4, 6, ok)))
    two = finished("two", task("a", [], attempt(1, 1, 5, ok)))
    result = timeline([one, two])
    assert result.wall == 6 and result.sequential == 10
    assert result.speedup == pytest.approx(10 / 6)
    assert result.slot_wait == 0


def test_a_retried_attempt_a_slot_wait_and_a_cancel_while_waiting_are_bars_of_their_own() -> None:
    flaky = task(
        "build", [],
        attempt(1, 0, 2, TaskState.FAILED, retryable=True, reason="rate limited"),
        attempt(2, 5, 8, TaskState.SUCCEEDED, queued_at=T0 + 3, usage=Usage(cost_usd=0.25, input_tokens=100)),
    )
    waiting = task("test", [], state=TaskState.CANCELLED, queued_at=T0 + 1, finished_at=T0 + 4, reason="cancelled")
    result = timeline([finished("wf", flaky, waiting)])
    bars = [(bar.task_id, bar.attempt, bar.state, bar.start, bar.end) for bar in result.lanes[0].bars]
    assert bars == [
        ("build", 1, BarState.RETRIED, 0, 2),
        ("build", 2, BarState.QUEUED, 3, 5),
        ("build", 2, BarState.SUCCEEDED, 5, 8),
        ("test", 1, BarState.QUEUED, 1, 4),
    ]
    assert result.slot_wait == 2 + 3
    assert result.sequential == 2 + 3  # queued time is no work
    assert result.usage.cost_usd == 0.25 and result.lanes[0].bars[2].usage.input_tokens == 100


def test_a_running_attempt_ends_now_and_marks_the_timeline_live() -> None:
    wf = finished("wf", task("plan", [], attempt(1, 1, None, TaskState.RUNNING), state=TaskState.RUNNING))
    wf.state = TaskState.RUNNING
    result = timeline([wf], now=T0 + 10)
    assert result.live and result.wall == 9
    assert [(bar.state, bar.end) for bar in result.lanes[0].bars] == [(BarState.RUNNING, 9)]


def test_checkpoints_are_ticks_at_the_start_and_end_of_the_last_attempt() -> None:
    build = task("build", [], attempt(1, 2, 5, TaskState.SUCCEEDED), outputs={"checkpoints": {"before": 3, "after": 4}})
    result = timeline([finished("wf", build)])
    assert [(t.number, t.when, t.at) for t in result.lanes[0].ticks] == [(3, "before", 0), (4, "after", 3)]


class Gate:
    """In-process agents; with `meet`, the first task holds on until a second one runs beside it (two slots make
    the runs overlap for certain), else each runs for a moment."""

    def __init__(self, meet: bool) -> None:
        self.meet = meet
        self.running = 0
        self.both = asyncio.Event()

    def factory(self, workflow: Workflow, settings: AgentsConfig) -> Gate.Agent:
        return Gate.Agent(self)

    class Agent:
        def __init__(self, gate: Gate) -> None:
            self.gate = gate

        async def run(self, task: Task, worktree: Path, events: TaskEvents, cancel: CancelToken) -> AgentResult:
            self.gate.running += 1
            if self.gate.running == 2:
                self.gate.both.set()
            if self.gate.meet:
                async with asyncio.timeout(30):  # a safety net: the second one starts at once with two slots
                    await self.gate.both.wait()
            else:
                await asyncio.sleep(0.01)
            self.gate.running -= 1
            events.cost(Usage(cost_usd=0.01, input_tokens=10, output_tokens=5))
            return AgentResult(status="succeeded", summary="done")


def chain(tmp_path: Path, name: str) -> Workflow:
    tasks = [Task(id=t, phase=t, agent="gate", deps=deps, config=PhaseConfig(agent="command"))
             for t, deps in (("plan", []), ("build", ["plan"]))]
    return workflow(tmp_path, tasks, name=name)


async def run_two(tmp_path: Path, max_agents: int) -> tuple[Engine, list[Workflow]]:
    store = Store(tmp_path / "state.db")
    engine = Engine(store, agents={"gate": Gate(meet=max_agents > 1).factory}, max_agents=max_agents)
    runs = await engine.run_all([chain(tmp_path, "one"), chain(tmp_path, "two")])
    return engine, runs


async def test_with_one_slot_tasks_wait_for_it_and_nothing_overlaps(tmp_path: Path) -> None:
    engine, runs = await run_two(tmp_path, max_agents=1)
    result = timeline(await engine.run_of(runs[0].id))
    queued = [bar for lane in result.lanes for bar in lane.bars if bar.state is BarState.QUEUED]
    ran = sorted((bar for lane in result.lanes for bar in lane.bars if bar.state is BarState.SUCCEEDED),
                 key=lambda bar: bar.start)
    assert len(ran) == 4 and queued  # the engine recorded that tasks waited for the one slot
    assert all(left.end <= right.start for left, right in itertools.pairwise(ran))
    assert result.slot_wait == pytest.approx(sum(bar.duration for bar in queued)) and result.slot_wait > 0
    assert result.speedup is not None and result.speedup <= 1
    assert result.usage.cost_usd == pytest.approx(0.04) and result.usage.input_tokens == 40


async def test_with_two_slots_no_task_waits_and_the_run_is_faster_than_one_after_another(tmp_path: Path) -> None:
    engine, runs = await run_two(tmp_path, max_agents=2)
    result = timeline(await engine.run_of(runs[1].id))
    assert [lane.name for lane in result.lanes] == ["one", "two"]
    assert result.slot_wait == 0
    assert all(bar.state is BarState.SUCCEEDED for lane in result.lanes for bar in lane.bars)
    assert result.speedup is not None and result.speedup > 1
    assert len(result.critical_path) == 2


async def test_workflows_started_together_are_one_run_in_the_store(tmp_path: Path) -> None:
    engine, runs = await run_two(tmp_path, max_agents=2)
    engine.close()
    store = Store(tmp_path / "state.db")
    run_id = runs[0].run_id
    assert run_id is not None and runs[1].run_id == run_id
    assert [wf.name for wf in store.run(run_id)] == ["one", "two"]
    assert [wf.name for wf in store.run(runs[1].id[:5])] == ["one", "two"]  # a workflow id's prefix names its run
    assert store.run("nothing-like-it") == []
    alone = Engine(Store(tmp_path / "state.db"), agents={"gate": Gate(meet=False).factory}, max_agents=1)
    solo = await alone.run(chain(tmp_path, "solo").model_copy(update={"id": "solo-test"}))
    assert solo.run_id not in (None, run_id)
    assert [wf.name for wf in await alone.run_of("solo-test")] == ["solo"]
    with pytest.raises(AdwError, match="no workflow 'nope'"):
        await alone.run_of("nope")


def test_the_svg_carries_every_bar_with_its_state_and_the_page_needs_no_network() -> None:
    ok = TaskState.SUCCEEDED
    wf = finished("add <b>", task("a", [], attempt(1, 0, 2, TaskState.FAILED, reason="x & y"),
                                  attempt(2, 3, 4, ok, queued_at=T0 + 2)))
    drawn = svg(timeline([wf]))
    root = ElementTree.fromstring(drawn)  # well-formed, names escaped
    bars = [el.attrib for el in root.iter("{http://www.w3.org/2000/svg}rect") if el.get("class") == "adw-bar"]
    assert [(b["data-task"], b["data-attempt"], b["data-state"]) for b in bars] == [
        ("a", "1", "retried"), ("a", "2", "queued"), ("a", "2", "succeeded")]
    page = html(timeline([wf]))
    assert "<svg" in page and "<script>" in page and "http" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
    costly = finished("paid", task("build", [], attempt(1, 0, 1, ok, usage=Usage(cost_usd=0.5, output_tokens=7))))
    lane = next(ElementTree.fromstring(svg(timeline([costly]))).iter("{http://www.w3.org/2000/svg}tspan"))
    lane_title = "".join(lane.itertext())
    assert lane_title == " — succeeded · $0.5000, 0 in / 7 out tokens"
    summary = text(timeline([wf]))
    assert "speedup 0.75×" in summary and "retried" in summary and "critical" in summary
