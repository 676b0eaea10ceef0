"""Nothing an agent starts outlives its task: background children, `setsid` grandchildren (their own session,
out of the agent's process group) and orphans whose parent exited are stopped on completion and on cancel,
and the task ends when the agent's leader exits, not when the last holder of its output pipes does."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from adw.agents.command import CommandAgent
from adw.agents.process import Stream
from adw.sdlc.engine import agent_factories
from adw.workflow.engine import Engine
from adw.workflow.events import ResourceSample
from adw.workflow.models import TaskState, Workflow
from tests.fakes import FAST, command_task, python, workflow

# Only a stall reaches this: every run below takes a second or two; the agents' own timeouts are far longer.
STALL = 60.0
PATIENT = {"timeout": 3600.0, "inactivity_timeout": 3600.0}

# A grandchild in a new session (the `setsid` of a shell, `start_new_session` here), its output sent nowhere,
# so nothing but its own pid ties it to the agent.
SETSID_GRANDCHILD = """
import pathlib, subprocess, sys
grandchild = subprocess.Popen(
    [sys.executable, "-c", "import time; time.sleep(600)"],
    start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
)
pathlib.Path(sys.argv[1] + ".tmp").write_text(str(grandchild.pid))
pathlib.Path(sys.argv[1] + ".tmp").rename(sys.argv[1])
"""


@pytest.fixture(autouse=True)
def _no_leftovers(tmp_path: Path) -> Iterator[None]:
    """A failing test must not leave its sleepers behind: what its pid files name is killed in the end."""
    started = time.time()
    yield
    for pid_file in tmp_path.glob("*.pid"):
        with contextlib.suppress(psutil.Error, ValueError):
            proc = psutil.Process(int(pid_file.read_text()))
            if proc.create_time() >= started:  # not a later process that was given the same pid
                proc.kill()


async def _run(engine: Engine, wf: Workflow) -> Workflow:
    return await asyncio.wait_for(engine.run(wf), STALL)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def _pid_in(path: Path) -> int:
    """The pid a test agent wrote (it renames the file into place, so it is never half-written)."""
    while True:
        if path.exists():
            return int(path.read_text())
        await asyncio.sleep(0.02)


async def test_a_background_child_holding_the_output_does_not_hold_the_task(tmp_path: Path) -> None:
    pid_file = tmp_path / "sleep.pid"
    script = 'sleep 600 & echo $! > "$1"; echo ok'
    task = command_task("bg", ["sh", "-c", script, "sh", str(pid_file)], **PATIENT)
    result = await _run(Engine(config=FAST, agents=agent_factories()), workflow(tmp_path, [task]))
    assert result.task("bg").state is TaskState.SUCCEEDED
    assert result.task("bg").summary == "ok"  # the leader's output, read before its leftovers were stopped
    assert not _alive(int(pid_file.read_text()))


async def test_a_setsid_grandchild_is_stopped_when_its_agent_completes(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    code = SETSID_GRANDCHILD + "print('done')\n"
    task = command_task("spawn", [*python(code), str(pid_file)], **PATIENT)
    result = await _run(Engine(config=FAST, agents=agent_factories()), workflow(tmp_path, [task]))
    assert result.task("spawn").state is TaskState.SUCCEEDED
    assert not _alive(int(pid_file.read_text()))


async def test_a_setsid_grandchild_is_stopped_when_its_task_is_cancelled(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    code = SETSID_GRANDCHILD + "import time\nwhile True: time.sleep(0.05)\n"
    engine = Engine(config=FAST, agents=agent_factories())
    wf = workflow(tmp_path, [command_task("spawn", [*python(code), str(pid_file)], **PATIENT)])
    run = asyncio.create_task(_run(engine, wf))
    grandchild = await asyncio.wait_for(_pid_in(pid_file), STALL)
    assert engine.cancel(wf.id, "spawn")
    result = await run
    assert result.task("spawn").state is TaskState.CANCELLED
    assert not _alive(grandchild)


# The orphan's parent exits at once and it drops ADW's marker from its environment: only the agent being its
# subreaper keeps it in the agent's tree.
SCRUBBED_ORPHAN = """
import pathlib, subprocess, sys, time
orphan = (
    "import os, pathlib, sys, time; pathlib.Path(sys.argv[1] + '.tmp').write_text(str(os.getpid()));"
    " pathlib.Path(sys.argv[1] + '.tmp').rename(sys.argv[1]); time.sleep(600)"
)
parent = (
    "import subprocess, sys; subprocess.Popen([sys.executable, '-c', sys.argv[1], sys.argv[2]], env={},"
    " start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)"
)
subprocess.run([sys.executable, "-c", parent, orphan, sys.argv[1]], check=True)
while True: time.sleep(0.05)
"""


LEAVES_AN_ORPHAN = SCRUBBED_ORPHAN.replace(
    "while True: time.sleep(0.05)",
    "while not pathlib.Path(sys.argv[1] + '.go').exists(): time.sleep(0.05)\nprint('done')",
)


@pytest.mark.skipif(sys.platform != "linux", reason="child subreapers are a Linux feature")
async def test_an_orphan_that_left_the_session_and_the_environment_is_stopped_on_completion(
    tmp_path: Path,
) -> None:
    """Once the leader has exited the orphan is nobody's descendant: the resource samples saw it below the
    leader, and that is how it is found."""
    pid_file = tmp_path / "orphan.pid"
    engine = Engine(config=FAST, agents=agent_factories())
    wf = workflow(tmp_path, [command_task("spawn", [*python(LEAVES_AN_ORPHAN), str(pid_file)], **PATIENT)])
    async with engine.subscribe(types=[ResourceSample]) as samples:
        run = asyncio.create_task(_run(engine, wf))
        orphan = await asyncio.wait_for(_pid_in(pid_file), STALL)
        since = time.time()
        async for sample in samples:  # one taken after the orphan was there
            if sample.time > since:
                break
    Path(f"{pid_file}.go").touch()
    result = await run
    assert result.task("spawn").state is TaskState.SUCCEEDED
    assert not _alive(orphan)


@pytest.mark.skipif(sys.platform != "linux", reason="child subreapers are a Linux feature")
async def test_an_orphan_that_left_the_session_and_the_environment_is_stopped_on_cancel(tmp_path: Path) -> None:
    pid_file = tmp_path / "orphan.pid"
    engine = Engine(config=FAST, agents=agent_factories())
    wf = workflow(tmp_path, [command_task("spawn", [*python(SCRUBBED_ORPHAN), str(pid_file)], **PATIENT)])
    run = asyncio.create_task(_run(engine, wf))
    orphan = await asyncio.wait_for(_pid_in(pid_file), STALL)
    assert engine.cancel(wf.id, "spawn")
    result = await run
    assert result.task("spawn").state is TaskState.CANCELLED
    assert not _alive(orphan)


class _UnparsableOutput(CommandAgent):
    def on_line(self, line: str, stream: Stream) -> None:
        raise ValueError(f"cannot parse {line!r}")


async def test_an_adapter_failing_on_a_line_fails_its_task_with_the_error(tmp_path: Path) -> None:
    engine = Engine(config=FAST, agents={"broken": _UnparsableOutput})
    task = command_task("parse", python("print('hello')"), **PATIENT)
    task.agent = "broken"
    result = await _run(engine, workflow(tmp_path, [task]))
    assert result.task("parse").state is TaskState.FAILED
    assert result.task("parse").reason == "agent broken crashed: ValueError: cannot parse 'hello'"
