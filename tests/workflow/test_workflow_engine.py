"""The scheduler: AND-dependencies, the agent cap, timeouts, retries, cancellation, resource caps, events."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import psutil
import pytest

from adw.config import AdwConfig, AgentsConfig, PhaseConfig
from adw.errors import AdwError
from adw.sdlc.engine import agent_factories
from adw.workflow.agent import CancelToken
from adw.workflow.engine import Engine, default_max_agents
from adw.workflow.events import OutputLine, Subscription, TaskEvents, TaskFinished, TaskStarted
from adw.workflow.models import AgentResult, Task, TaskState, Workflow
from tests.fakes import FAST, command_task, python, workflow


class Recorder:
    """In-process agents whose outcome the test chooses; records when each task ran."""

    def __init__(self, outcomes: dict[str, str] | None = None, delay: float = 0.05) -> None:
        self.outcomes = outcomes or {}
        self.delay = delay
        self.spans: dict[str, tuple[float, float]] = {}

    def factory(self, workflow: Workflow, settings: AgentsConfig) -> Recorder.Agent:
        return Recorder.Agent(self)

    class Agent:
        def __init__(self, recorder: Recorder) -> None:
            self.recorder = recorder

        async def run(self, task: Task, worktree: Path, events: TaskEvents, cancel: CancelToken) -> AgentResult:
            start = time.monotonic()
            await asyncio.sleep(self.recorder.delay)
            self.recorder.spans[task.id] = (start, time.monotonic())
            if self.recorder.outcomes.get(task.id) == "fail":
                return AgentResult.failed(f"{task.id} broke")
            return AgentResult(status="succeeded", summary=f"{task.id} done")


def fake_task(task_id: str, deps: list[str] | None = None) -> Task:
    return Task(id=task_id, phase=task_id, agent="fake", deps=deps or [], config=PhaseConfig(agent="command"))


def diamond() -> list[Task]:
    return [fake_task("a"), fake_task("b", ["a"]), fake_task("c", ["a"]), fake_task("d", ["b", "c"])]


async def test_a_task_starts_only_after_all_its_dependencies_succeeded(tmp_path: Path) -> None:
    recorder = Recorder()
    engine = Engine(agents={"fake": recorder.factory}, max_agents=4)
    result = await engine.run(workflow(tmp_path, diamond()))
    assert result.state is TaskState.SUCCEEDED
    spans = recorder.spans
    assert spans["d"][0] >= max(spans["b"][1], spans["c"][1])
    assert spans["b"][0] >= spans["a"][1] and spans["c"][0] >= spans["a"][1]
    assert spans["b"][0] < spans["c"][1] and spans["c"][0] < spans["b"][1]  # b and c overlapped


async def test_a_failure_skips_its_dependents_while_independent_tasks_go_on(tmp_path: Path) -> None:
    recorder = Recorder({"c": "fail"})
    tasks = [*diamond(), fake_task("e", ["a"])]
    engine = Engine(agents={"fake": recorder.factory})
    result = await engine.run(workflow(tmp_path, tasks))
    states = {task.id: task.state for task in result.tasks}
    assert states == {
        "a": TaskState.SUCCEEDED,
        "b": TaskState.SUCCEEDED,
        "c": TaskState.FAILED,
        "d": TaskState.SKIPPED,
        "e": TaskState.SUCCEEDED,
    }
    assert result.task("d").reason == "dependency c failed"
    assert result.state is TaskState.FAILED and result.reason == "c: c broke"
    # What an editor offers on it: the failed task's log, and Resume.
    assert [action.model_dump() for action in result.next_steps()] == [
        {"title": "Show Log", "kind": "showLog", "workflow": result.id, "task": "c"},
        {"title": "Resume", "kind": "resume", "workflow": result.id},
    ]


async def test_a_succeeded_workflow_offers_no_next_step(tmp_path: Path) -> None:
    result = await Engine(agents={"fake": Recorder().factory}).run(workflow(tmp_path, diamond()))
    assert result.next_steps() == []


async def test_an_unknown_agent_fails_its_task_with_the_known_names(tmp_path: Path) -> None:
    task = Task(id="x", phase="x", agent="nope")
    result = await Engine(agents=agent_factories()).run(workflow(tmp_path, [task]))
    assert result.task("x").state is TaskState.FAILED
    assert "unknown agent 'nope'" in result.task("x").reason and "spec-apply" in result.task("x").reason


def test_the_default_cap_follows_cores_and_memory_and_never_passes_eight() -> None:
    assert 1 <= default_max_agents() <= 8
    assert default_max_agents() <= (os.cpu_count() or 1) * 4


@pytest.mark.parametrize("cap", [0, -5, 9])
def test_a_cap_outside_one_to_eight_is_refused(cap: int) -> None:
    with pytest.raises(AdwError, match=f"max_agents must be 1 to 8, not {cap}"):
        Engine(max_agents=cap, agents=agent_factories())


async def test_never_more_agent_processes_alive_than_the_cap(tmp_path: Path) -> None:
    marker = f"adw-cap-{os.getpid()}"
    tasks = [command_task(f"t{i}", python(f"import time  # {marker}\ntime.sleep(0.3)")) for i in range(6)]
    engine = Engine(config=FAST, max_agents=2, agents=agent_factories())
    peak = 0

    async def sample() -> None:
        nonlocal peak
        while True:
            alive = [p for p in psutil.Process().children(recursive=True) if marker in " ".join(_cmdline(p))]
            peak = max(peak, len(alive))
            await asyncio.sleep(0.01)

    sampler = asyncio.create_task(sample())
    started = time.monotonic()
    result = await engine.run(workflow(tmp_path, tasks))
    elapsed = time.monotonic() - started
    sampler.cancel()
    assert result.state is TaskState.SUCCEEDED
    assert peak == 2
    assert elapsed >= 0.9  # three rounds of 0.3 s: the cap really serialised them


class Gate:
    """In-process agents that hold their slot until the test opens the gate; counts how many run at once."""

    def __init__(self) -> None:
        self.running = 0
        self.peak = 0
        self.open = asyncio.Event()
        self.changed = asyncio.Event()

    def factory(self, workflow: Workflow, settings: AgentsConfig) -> Gate.Agent:
        return Gate.Agent(self)

    async def until(self, running: int) -> None:
        while self.running != running:
            self.changed.clear()
            await self.changed.wait()

    class Agent:
        def __init__(self, gate: Gate) -> None:
            self.gate = gate

        async def run(self, task: Task, worktree: Path, events: TaskEvents, cancel: CancelToken) -> AgentResult:
            gate = self.gate
            gate.running += 1
            gate.peak = max(gate.peak, gate.running)
            gate.changed.set()
            await gate.open.wait()
            gate.running -= 1
            gate.changed.set()
            return AgentResult(status="succeeded", summary=f"{task.id} done")


async def test_set_max_agents_lowers_the_cap_of_an_engine(tmp_path: Path) -> None:
    gate = Gate()
    engine = Engine(agents={"fake": gate.factory}, max_agents=4)
    engine.set_max_agents(1)
    run = asyncio.create_task(engine.run(workflow(tmp_path, [fake_task(f"t{i}") for i in range(4)])))
    await gate.until(running=1)
    gate.open.set()
    result = await run
    assert result.state is TaskState.SUCCEEDED
    assert gate.peak == 1 and engine.max_agents == 1


async def test_set_max_agents_while_tasks_run_starts_waiting_agents(tmp_path: Path) -> None:
    gate = Gate()
    engine = Engine(agents={"fake": gate.factory}, max_agents=1)
    run = asyncio.create_task(engine.run(workflow(tmp_path, [fake_task(f"t{i}") for i in range(3)])))
    await gate.until(running=1)
    assert engine.agent_load() == (1, 2)  # one runs, two wait for a slot (what the editor's progress says)
    engine.set_max_agents(3)
    await gate.until(running=3)  # the two waiting agents started without any finishing
    engine.set_max_agents(2)  # a cut never stops a running agent
    gate.open.set()
    assert (await run).state is TaskState.SUCCEEDED
    assert gate.peak == 3 and engine.max_agents == 2
    assert engine.agent_load() == (0, 0)


def test_set_max_agents_refuses_a_cap_out_of_bounds() -> None:
    engine = Engine(max_agents=2, agents=agent_factories())
    for bad in (0, -5, 9):
        with pytest.raises(AdwError, match="max_agents must be 1 to 8"):
            engine.set_max_agents(bad)
    assert engine.max_agents == 2


def test_reconfigure_takes_the_new_agent_cap_unless_the_caller_set_one() -> None:
    engine = Engine(config=AdwConfig(agents=AgentsConfig(max_agents=2)), agents=agent_factories())
    engine.reconfigure(AdwConfig(agents=AgentsConfig(max_agents=3)))
    assert engine.max_agents == 3 and engine.settings.max_agents == 3
    engine.set_max_agents(1)
    engine.reconfigure(AdwConfig(agents=AgentsConfig(max_agents=4)))
    assert engine.max_agents == 1
    given = Engine(max_agents=2, agents=agent_factories())  # `adw sdlc --max-agents 2`
    given.reconfigure(AdwConfig(agents=AgentsConfig(max_agents=4)))
    assert given.max_agents == 2


async def test_wall_clock_timeout_stops_the_agent(tmp_path: Path) -> None:
    task = command_task(
        "slow", python("import time\nwhile True:\n print('busy', flush=True); time.sleep(0.05)"), timeout=0.5
    )
    started = time.monotonic()
    result = await Engine(config=FAST, agents=agent_factories()).run(workflow(tmp_path, [task]))
    assert time.monotonic() - started < 3
    assert result.task("slow").state is TaskState.FAILED
    assert result.task("slow").reason == "timed out after 0.5s"


async def test_inactivity_timeout_stops_a_silent_agent(tmp_path: Path) -> None:
    task = command_task(
        "quiet", python("import time\nprint('hello', flush=True)\ntime.sleep(30)"), inactivity_timeout=0.4
    )
    started = time.monotonic()
    result = await Engine(config=FAST, agents=agent_factories()).run(workflow(tmp_path, [task]))
    assert time.monotonic() - started < 3
    assert result.task("quiet").state is TaskState.FAILED
    assert result.task("quiet").reason == "no output for 0.4s"


async def test_retryable_failures_are_retried_with_exponential_backoff(tmp_path: Path) -> None:
    counter = tmp_path / "count"
    code = (
        "import pathlib, sys\n"
        f"p = pathlib.Path({str(counter)!r})\n"
        "n = int(p.read_text()) if p.exists() else 0\n"
        "p.write_text(str(n + 1))\n"
        "sys.exit(75 if n < 2 else 0)"
    )
    task = command_task("flaky", python(code), retries=3, retry_backoff=0.1)
    engine = Engine(config=FAST, agents=agent_factories())
    async with engine.subscribe(types=[TaskFinished]) as events:
        result = await engine.run(workflow(tmp_path, [task]))
        finished = [event async for event in _drain(events)]
    assert result.task("flaky").state is TaskState.SUCCEEDED
    assert [a.state for a in result.task("flaky").attempts] == [
        TaskState.FAILED,
        TaskState.FAILED,
        TaskState.SUCCEEDED,
    ]
    assert [e.retry_in for e in finished if isinstance(e, TaskFinished)] == [0.1, 0.2, None]
    attempts = result.task("flaky").attempts
    assert attempts[1].started_at - attempts[0].finished_at >= 0.1  # type: ignore[operator]
    assert attempts[2].started_at - attempts[1].finished_at >= 0.2  # type: ignore[operator]


async def test_a_failure_not_marked_retryable_is_not_retried(tmp_path: Path) -> None:
    task = command_task("broken", python("import sys; sys.exit(3)"), retries=3, retry_backoff=0.01)
    result = await Engine(config=FAST, agents=agent_factories()).run(workflow(tmp_path, [task]))
    assert len(result.task("broken").attempts) == 1
    assert result.task("broken").reason.startswith("python")
    assert "exited with status 3" in result.task("broken").reason


# A parent that ignores SIGINT and SIGTERM and has a child doing the same: only SIGKILL ends the group.
STUBBORN = """
import os, signal, subprocess, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
ignore = "import signal as s; s.signal(s.SIGINT, s.SIG_IGN); s.signal(s.SIGTERM, s.SIG_IGN); "
child = subprocess.Popen([sys.executable, "-c", ignore + "import time; time.sleep(60)"])
print(child.pid, flush=True)
time.sleep(60)
"""


async def test_cancel_escalates_to_sigkill_and_leaves_no_process_of_the_group(tmp_path: Path) -> None:
    engine = Engine(config=FAST, agents=agent_factories())
    wf = workflow(tmp_path, [command_task("stubborn", python(STUBBORN))])
    pids: list[int] = []
    async with engine.subscribe(types=[OutputLine]) as events:
        run = asyncio.create_task(engine.run(wf))
        async for event in events:
            assert isinstance(event, OutputLine)
            pids.append(int(event.text))
            break
    leader = next(p for p in psutil.Process().children() if pids[0] in {c.pid for c in p.children()})
    started = time.monotonic()
    assert engine.cancel(wf.id, "stubborn")
    result = await run
    assert result.task("stubborn").state is TaskState.CANCELLED
    assert result.task("stubborn").reason == "cancelled by user"
    assert 0.5 <= time.monotonic() - started < 3  # SIGINT, grace, SIGTERM, grace, SIGKILL
    for pid in (leader.pid, pids[0]):
        assert not _alive(pid)


async def test_cancelling_a_workflow_cancels_running_and_pending_tasks(tmp_path: Path) -> None:
    tasks = [
        command_task("first", python("import time; time.sleep(30)")),
        command_task("then", ["true"], ["first"]),
    ]
    engine = Engine(config=FAST, agents=agent_factories())
    wf = workflow(tmp_path, tasks)
    async with engine.subscribe(types=[TaskStarted]) as events:
        run = asyncio.create_task(engine.run(wf))
        await anext(events)
    engine.cancel(wf.id)
    result = await run
    assert [t.state for t in result.tasks] == [TaskState.CANCELLED, TaskState.CANCELLED]
    assert result.state is TaskState.CANCELLED


async def test_memory_cap_stops_an_agent_with_a_clear_reason(tmp_path: Path) -> None:
    hog = "import time\nblock = b'x' * (300 << 20)  # every page touched\ntime.sleep(30)"
    task = command_task("hog", python(hog), memory_limit="100MB")
    result = await Engine(config=FAST, agents=agent_factories()).run(workflow(tmp_path, [task]))
    assert result.task("hog").state is TaskState.FAILED
    assert result.task("hog").reason.startswith("memory limit exceeded:")
    assert "limit 100 MB" in result.task("hog").reason


async def test_megabytes_of_output_pass_through_without_stalling(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "for i in range(50000): sys.stdout.write(f'line {i} ' + 'x' * 80 + '\\n')\n"
        "sys.stdout.write('y' * (3 * 1024 * 1024) + '\\n')\n"
        "print('tail')\n"
    )
    engine = Engine(config=FAST, agents=agent_factories())
    lines = 0
    async with engine.subscribe(types=[OutputLine]) as events:
        started = time.monotonic()
        result = await engine.run(workflow(tmp_path, [command_task("loud", python(code))]))
        elapsed = time.monotonic() - started
        async for event in _drain(events):
            assert isinstance(event, OutputLine)
            lines += 1
            assert len(event.text) <= 1024 * 1024 + 16
    assert result.task("loud").state is TaskState.SUCCEEDED
    assert result.task("loud").summary == "tail"
    assert lines >= 10_000  # a slow subscriber may lose some lines past its backlog, never the run
    assert elapsed < 20


async def test_subscribers_see_typed_events_and_can_filter_by_workflow(tmp_path: Path) -> None:
    recorder = Recorder()
    engine = Engine(agents={"fake": recorder.factory})
    one, two = (
        workflow(tmp_path, [fake_task("a")], name="one"),
        workflow(tmp_path, [fake_task("a")], name="two"),
    )
    async with engine.subscribe(workflow_id=one.id) as events:
        await engine.run_all([one, two])
        seen = [event async for event in _drain(events)]
    assert {event.workflow_id for event in seen} == {one.id}
    assert [event.type for event in seen] == [
        "workflow_started",
        "task_started",
        "task_finished",
        "workflow_finished",
    ]
    assert [wf.name for wf in engine.workflows()] != []


async def _drain(events: object) -> object:
    """What the subscription holds right now, then stop."""
    assert isinstance(events, Subscription)
    events.close()
    async for event in events:
        yield event


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return list(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return []


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def test_cancelling_a_pending_task_skips_what_depends_on_it(tmp_path: Path) -> None:
    recorder = Recorder(delay=0.2)
    tasks = [fake_task("a"), fake_task("b", ["a"]), fake_task("c", ["b"]), fake_task("x")]
    engine = Engine(agents={"fake": recorder.factory})
    wf = workflow(tmp_path, tasks)
    run = asyncio.create_task(engine.run(wf))
    await asyncio.sleep(0.05)
    assert engine.cancel(wf.id, "b")
    result = await run
    states = [t.state for t in result.tasks]
    assert states == [TaskState.SUCCEEDED, TaskState.CANCELLED, TaskState.SKIPPED, TaskState.SUCCEEDED]
    assert result.task("c").reason == "dependency b cancelled"


async def test_a_dependency_cycle_is_skipped_not_hung(tmp_path: Path) -> None:
    tasks = [fake_task("a"), fake_task("b", ["c"]), fake_task("c", ["b"])]
    result = await Engine(agents={"fake": Recorder().factory}).run(workflow(tmp_path, tasks))
    assert [t.state for t in result.tasks] == [TaskState.SUCCEEDED, TaskState.SKIPPED, TaskState.SKIPPED]
    assert result.task("b").reason == "dependency cycle"
