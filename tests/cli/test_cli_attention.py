"""The person at the terminal during `adw sdlc`: permission questions asked and answered on the terminal, the
bell and `notify-send` when an agent needs input or a workflow ends (adw.cli.attention)."""

from __future__ import annotations

import asyncio
import io
import os
import secrets
import sys
from pathlib import Path
from typing import TextIO, cast

import pytest

from adw.cli.attention import Attention
from adw.config import NotifyConfig, PhaseConfig
from adw.sdlc.engine import agent_factories
from adw.workflow.engine import Engine
from adw.workflow.events import PermissionAsked
from adw.workflow.models import Task, TaskState, Workflow
from tests.fakes import FAKES, FAST, workflow
from tests.lsp.conftest import eventually


class Screen(io.StringIO):
    """stderr of a terminal: what was written, and a tty as far as the bell is concerned."""

    def isatty(self) -> bool:
        return True


def asking_workflow(work: Path, timeout: float) -> Workflow:
    config = {"agent": "acp", "command": [sys.executable, str(FAKES / "acp_agent.py")], "prompt": "permission again",
              "permissions": "ask", "permission_timeout": timeout, "retries": 0}
    task = Task(id="build", phase="build", agent="acp", config=PhaseConfig.model_validate(config))
    return workflow(work, [task], name=f"asks-{secrets.token_hex(3)}")


@pytest.fixture
def notify_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `notify-send` first on PATH that records its arguments, one call per line."""
    bin_dir, log = tmp_path / "bin", tmp_path / "notify.log"
    bin_dir.mkdir()
    script = bin_dir / "notify-send"
    script.write_text(f'#!/bin/sh\nprintf "%s|" "$@" >> {log}\necho >> {log}\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


async def test_questions_are_asked_and_answered_on_the_terminal(tmp_path: Path, notify_log: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    engine = Engine(config=FAST, agents=agent_factories())
    wf = asking_workflow(work, timeout=60)
    master, slave = os.openpty()
    screen = Screen()
    with os.fdopen(slave, "r") as terminal:
        attention = Attention(engine, [wf], NotifyConfig(), stdin=terminal, out=screen)
        attending = asyncio.create_task(attention.run())
        running = asyncio.create_task(engine.run(wf))

        async def answer(tool: str, *typed: str) -> None:
            await eventually(lambda: f"asks to {tool}" in screen.getvalue(), 60, f"the question about {tool}")
            for line in typed:
                os.write(master, line.encode() + b"\n")

        await answer("Edit a.txt", "a")
        await answer("Run rm -rf /", "d")
        await answer("Edit /etc/passwd", "maybe", "o")  # an unknown answer asks again
        result = await running
        attention.stop()
        await attending
    os.close(master)

    task = result.task("build")
    assert task.state is TaskState.SUCCEEDED, task.reason
    assert [d["why"] for d in task.outputs["acp"]["permissions"]] == [
        "allowed for this task by the terminal", "denied by the terminal", "allowed once by the terminal",
        "edit tools allowed for this task by the terminal",
    ]
    shown = screen.getvalue()
    assert f"adw: {wf.name} · build asks to Edit a.txt ({work / 'a.txt'})\n" in shown
    assert shown.count("allow [o]nce, [a]lways for this task, or [d]eny? (denied in 60 s)") == 4  # one repeat
    assert shown.count("\a") == 4  # three questions and the end
    calls = notify_log.read_text().splitlines()
    assert f"--app-name=ADW|ADW: {wf.name} needs you|build asks to Edit a.txt|" in calls
    assert calls[-1] == f"--app-name=ADW|ADW: {wf.name} succeeded|succeeded|"


async def test_without_a_terminal_questions_say_why_they_are_denied(tmp_path: Path, notify_log: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    engine = Engine(config=FAST, agents=agent_factories())
    wf = asking_workflow(work, timeout=0.1)
    reading, writing = os.pipe()
    screen = Screen()
    with os.fdopen(reading, "r") as piped, os.fdopen(writing, "w"):
        attention = Attention(engine, [wf], NotifyConfig(on=["failed"], bell=False), stdin=piped, out=screen)
        attending = asyncio.create_task(attention.run())
        result = await engine.run(wf)
        attention.stop()
        await attending
    assert [d["why"] for d in result.task("build").outputs["acp"]["permissions"]] == [
        "nobody answered within 0.1 s"] * 4
    assert (f"adw: {wf.name} · build asks to Edit a.txt; stdin is not a terminal, so it is denied in 0.1 s "
            "(set the phase's permissions to allow it)") in screen.getvalue()
    assert "\a" not in screen.getvalue()
    assert not notify_log.exists()  # only failures were asked for, and the workflow succeeded


def test_it_writes_to_the_stderr_of_the_moment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not to the stderr there was when the module was imported (under pytest, a capture closed since)."""
    screen = Screen()
    monkeypatch.setattr(sys, "stderr", screen)
    attention = Attention(Engine(config=FAST, agents=agent_factories()), [], NotifyConfig())
    attention._say("hello")
    assert screen.getvalue() == "adw: hello\n"


class CountingTerminal:
    """A terminal's stdin that counts how often it is read."""

    def __init__(self, terminal: TextIO) -> None:
        self.terminal = terminal
        self.reads = 0

    def readline(self) -> str:
        self.reads += 1
        return self.terminal.readline()

    def fileno(self) -> int:
        return self.terminal.fileno()

    def isatty(self) -> bool:
        return self.terminal.isatty()


def question(wf: Workflow, number: int, tool: str = "Edit a.txt", paths: list[str] | None = None) -> PermissionAsked:
    return PermissionAsked(workflow_id=wf.id, task_id="build", request_id=f"q{number}", tool=tool, kind="edit",
                           paths=paths or [], timeout=60)


async def turns(count: int) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


async def test_a_terminal_whose_input_ends_is_read_no_more_and_questions_wait_for_their_time(tmp_path: Path) -> None:
    """Ctrl-D, or the terminal closed: the end of input is read once, not in a loop, and said once."""
    engine = Engine(config=FAST, agents=agent_factories())
    wf = workflow(tmp_path, [], name="mine")
    master, slave = os.openpty()
    screen = Screen()
    with os.fdopen(slave, "r") as tty:
        terminal = CountingTerminal(tty)
        attention = Attention(engine, [wf], NotifyConfig(bell=False), stdin=cast(TextIO, terminal), out=screen)
        attending = asyncio.create_task(attention.run())
        asking = asyncio.create_task(engine.bus.ask(question(wf, 1)))
        await eventually(lambda: "asks to Edit a.txt" in screen.getvalue(), 10, "the question")
        os.close(master)  # the terminal went away: its input is at its end for good
        await turns(200)
        assert terminal.reads == 1
        assert screen.getvalue().count("allow [o]nce") == 1
        assert "adw: the terminal's input ended: questions are denied when their time runs out" in screen.getvalue()
        assert engine.answer_permission("q1", "deny", "the editor")  # still open to other answers
        assert await asking == ("deny", "the editor")
        attention.stop()
        await attending


async def test_questions_of_other_workflows_are_not_asked_and_garbage_asks_again(tmp_path: Path) -> None:
    engine = Engine(config=FAST, agents=agent_factories())
    mine, theirs = workflow(tmp_path, [], name="mine"), workflow(tmp_path, [], name="theirs")
    master, slave = os.openpty()
    screen = Screen()
    with os.fdopen(slave, "r") as tty:
        attention = Attention(engine, [mine], NotifyConfig(bell=False), stdin=tty, out=screen)
        attending = asyncio.create_task(attention.run())
        foreign = asyncio.create_task(engine.bus.ask(question(theirs, 1, tool="Run theirs")))
        asking = asyncio.create_task(engine.bus.ask(question(mine, 2)))
        await eventually(lambda: "asks to Edit a.txt" in screen.getvalue(), 10, "the question")
        os.write(master, b"\x1b[A\x00 what?\n")
        await eventually(lambda: screen.getvalue().count("allow [o]nce") == 2, 10, "the question asked again")
        os.write(master, b"d\n")
        assert await asking == ("deny", "the terminal")
        assert engine.answer_permission("q1", "allow_once", "the editor")
        await foreign
        attention.stop()
        await attending
    os.close(master)
    assert "theirs" not in screen.getvalue() and "Run theirs" not in screen.getvalue()


async def test_an_agents_tool_title_cannot_write_over_the_prompt_nor_flood_it(tmp_path: Path) -> None:
    """The title and paths are the agent's words: control characters are shown escaped, and long ones cut."""
    engine = Engine(config=FAST, agents=agent_factories())
    wf = workflow(tmp_path, [], name="mine")
    master, slave = os.openpty()
    screen = Screen()
    forged = "Run rm -rf ~\r\x1b[2Kadw: mine · build asks to Read README.md" + "x" * 100_000
    with os.fdopen(slave, "r") as tty:
        attention = Attention(engine, [wf], NotifyConfig(bell=False), stdin=tty, out=screen)
        attending = asyncio.create_task(attention.run())
        asking = asyncio.create_task(engine.bus.ask(question(wf, 1, tool=forged, paths=["/w/" + "p" * 100_000])))
        await eventually(lambda: "allow [o]nce" in screen.getvalue(), 10, "the question")
        os.write(master, b"d\n")
        assert await asking == ("deny", "the terminal")
        attention.stop()
        await attending
    os.close(master)
    shown = screen.getvalue()
    assert "\r" not in shown and "\x1b" not in shown
    assert "asks to Run rm -rf ~\\r\\x1b[2Kadw: mine" in shown
    assert len(shown) < 2_000


async def test_a_question_whose_turn_ends_says_so_and_the_next_is_asked(tmp_path: Path) -> None:
    engine = Engine(config=FAST, agents=agent_factories())
    wf = workflow(tmp_path, [], name="mine")
    master, slave = os.openpty()
    screen = Screen()
    with os.fdopen(slave, "r") as tty:
        attention = Attention(engine, [wf], NotifyConfig(bell=False), stdin=tty, out=screen)
        attending = asyncio.create_task(attention.run())
        first = asyncio.create_task(engine.bus.ask(question(wf, 1)))
        await eventually(lambda: "asks to Edit a.txt" in screen.getvalue(), 10, "the first question")
        second = asyncio.create_task(engine.bus.ask(question(wf, 2, tool="Run make")))
        await turns(5)
        assert "Run make" not in screen.getvalue()  # one question at a time
        first.cancel()  # its turn ended while it was open
        await eventually(lambda: "asks to Run make" in screen.getvalue(), 10, "the second question")
        os.write(master, b"o\n")
        assert await second == ("allow_once", "the terminal")
        attention.stop()
        await attending
    os.close(master)
    assert "adw: build: ended (cancelled)\n" in screen.getvalue()
    assert first.cancelled()
