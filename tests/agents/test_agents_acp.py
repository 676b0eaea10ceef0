"""The `acp` adapter against a scripted ACP agent (tests/fakes/acp_agent.py), through the engine."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sys
from pathlib import Path

import psutil
import pytest

from adw.agents.preflight import preflight
from adw.config import PhaseConfig
from adw.errors import AdwError
from adw.sdlc.engine import agent_factories, open_engine
from adw.sdlc.pipeline import sdlc_workflows
from adw.workflow.engine import Engine
from adw.workflow.events import (
    BaseEvent,
    FindingReported,
    OutputLine,
    PermissionAnswered,
    PermissionAsked,
    PermissionChoice,
    Progress,
    ToolUse,
)
from adw.workflow.models import Task, TaskState, Workflow
from tests.conftest import MakeRepo, run_git
from tests.fakes import FAKES, FAST, workflow

FAKE = [sys.executable, str(FAKES / "acp_agent.py")]


def acp_task(script: str, *flags: str, **config: object) -> Task:
    fields = {"agent": "acp", "command": [*FAKE, *flags], "prompt": script, "retries": 0, **config}
    return Task(id="build", phase="build", agent="acp", config=PhaseConfig.model_validate(fields))


async def run_acp(work: Path, task: Task, cancel_on: str | None = None) -> tuple[Workflow, list[BaseEvent]]:
    """Run one `acp` task in `work`; with `cancel_on`, cancel it once an output line contains that text."""
    engine = Engine(config=FAST, agents=agent_factories())
    wf = workflow(work, [task], name=f"acp-{secrets.token_hex(4)}")  # its own marker, told from other tests'
    events: list[BaseEvent] = []
    async with engine.subscribe() as subscription:
        run = asyncio.create_task(engine.run(wf))

        async def watch() -> None:
            async for event in subscription:
                events.append(event)
                if cancel_on and isinstance(event, OutputLine) and cancel_on in event.text:
                    engine.cancel(wf.id, "build")

        watcher = asyncio.create_task(watch())
        result = await run
        subscription.close()
        await watcher
    return result, events


def lines(events: list[BaseEvent], stream: str = "stdout") -> list[str]:
    return [e.text for e in events if isinstance(e, OutputLine) and e.stream == stream]


def progress(events: list[BaseEvent]) -> list[str]:
    return [e.message for e in events if isinstance(e, Progress)]


@pytest.fixture
def work(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


async def test_streamed_updates_become_lines_progress_and_the_summary(work: Path) -> None:
    result, events = await run_acp(work, acp_task("stream"))
    task = result.task("build")
    assert task.state is TaskState.SUCCEEDED, task.reason
    # Chunks cut mid-word arrive as whole lines; the session ran in the worktree.
    assert lines(events)[:3] == ["Hello world", "second line", "Done: all good"]
    assert f"cwd: {work}" in lines(events)
    assert "thinking: weighing it" in progress(events)
    assert "plan 1/2 done: write" in progress(events)
    assert "fake-acp 1.0 speaks ACP 1" in progress(events)
    assert task.summary == f"cwd: {work}"  # the first line of the last message
    assert task.outputs["acp"]["session_id"] == "fake-session-1"
    assert task.outputs["acp"]["agent"] == "fake-acp 1.0"
    assert (task.usage.input_tokens, task.usage.output_tokens, task.usage.turns) == (120, 30, 1)


async def test_tool_calls_report_tools_changed_files_and_failures(work: Path) -> None:
    result, events = await run_acp(work, acp_task("tools"))
    task = result.task("build")
    assert task.state is TaskState.SUCCEEDED, task.reason
    tools = [(e.tool, e.detail) for e in events if isinstance(e, ToolUse)]
    assert tools == [("Edit src/edited.py", "src/edited.py"), ("Run make", "")]
    assert task.files_changed == ["src/edited.py"]  # only the completed edit
    assert [f.message for f in task.findings] == ["Run make failed"]
    assert task.summary == "tools done (1 tool problem(s), see findings)"


async def test_permissions_allow_edits_allows_edits_inside_and_denies_the_rest(work: Path) -> None:
    result, events = await run_acp(work, acp_task("permission"))
    task = result.task("build")
    assert task.state is TaskState.SUCCEEDED, task.reason
    assert lines(events)[:3] == ["p1: yes", "p2: no", "p3: no"]
    decisions = task.outputs["acp"]["permissions"]
    assert [d["verdict"] for d in decisions] == ["allowed", "denied", "denied"]
    assert "permission allowed: Edit a.txt (permissions = allow-edits allows edit)" in progress(events)
    assert any("/etc/passwd is outside the worktree" in m for m in progress(events))
    denied = [e.finding.message for e in events if isinstance(e, FindingReported)]
    assert denied == [
        "permission denied: Run rm -rf / (permissions = allow-edits does not allow execute tools)",
        "permission denied: Edit /etc/passwd (permissions = allow-edits: /etc/passwd is outside the worktree)",
    ]


@pytest.mark.parametrize(
    ("policy", "answers"),
    [("allow-all", ["p1: yes", "p2: yes", "p3: yes"]), ("deny", ["p1: no", "p2: no", "p3: no"])],
)
async def test_permission_policies_allow_all_and_deny(work: Path, policy: str, answers: list[str]) -> None:
    result, events = await run_acp(work, acp_task("permission", permissions=policy))
    assert result.task("build").state is TaskState.SUCCEEDED
    assert lines(events)[:3] == answers


async def test_ask_with_nobody_watching_denies_after_the_timeout(work: Path) -> None:
    result, events = await run_acp(work, acp_task("permission", permissions="ask", permission_timeout=0.1))
    task = result.task("build")
    assert lines(events)[:3] == ["p1: no", "p2: no", "p3: no"]
    assert progress(events).count("permission asked: Edit a.txt (waiting up to 0.1 s for an answer)") == 1
    assert {d["why"] for d in task.outputs["acp"]["permissions"]} == {"nobody answered within 0.1 s"}
    assert [(e.choice, e.by) for e in events if isinstance(e, PermissionAnswered)] == [(None, "timeout")] * 3


async def answer_as(engine: Engine, choices: dict[str, PermissionChoice], asked: list[PermissionAsked]) -> None:
    """Answer each question by its tool's title, as an editor would, recording what was asked."""
    async with engine.subscribe(types=[PermissionAsked]) as questions:
        async for question in questions:
            assert isinstance(question, PermissionAsked)
            asked.append(question)
            assert engine.answer_permission(question.request_id, choices[question.tool], "test")
            # A question is answered once: a second answer (another editor window) is refused.
            assert not engine.answer_permission(question.request_id, "deny", "late")


async def test_ask_is_answered_by_whoever_watches_and_always_covers_the_rest_of_the_task(work: Path) -> None:
    engine = Engine(config=FAST, agents=agent_factories())
    task = acp_task("permission again", permissions="ask", permission_timeout=30)
    wf = workflow(work, [task], name=f"acp-{secrets.token_hex(4)}")
    asked: list[PermissionAsked] = []
    choices: dict[str, PermissionChoice] = {
        "Edit a.txt": "allow_always", "Run rm -rf /": "deny", "Edit /etc/passwd": "allow_once",
    }
    answerer = asyncio.create_task(answer_as(engine, choices, asked))
    async with engine.subscribe(types=[OutputLine, PermissionAnswered]) as subscription:
        result = await engine.run(wf)
        subscription.close()
        seen = [event async for event in subscription]
    answerer.cancel()
    done = result.task("build")
    assert done.state is TaskState.SUCCEEDED, done.reason
    # "always" for edits covers b.txt (not asked) but not /etc/passwd, outside the worktree (asked again).
    assert [q.tool for q in asked] == ["Edit a.txt", "Run rm -rf /", "Edit /etc/passwd"]
    assert asked[0].paths == [str(work / "a.txt")] and asked[0].kind == "edit" and asked[0].timeout == 30
    assert lines([e for e in seen if isinstance(e, OutputLine)])[:4] == ["p1: yes", "p2: no", "p3: yes", "p4: yes"]
    assert [d["why"] for d in done.outputs["acp"]["permissions"]] == [
        "allowed for this task by test", "denied by test", "allowed once by test",
        "edit tools allowed for this task by test",
    ]
    answered = [(e.choice, e.by) for e in seen if isinstance(e, PermissionAnswered)]
    assert answered == [("allow_always", "test"), ("deny", "test"), ("allow_once", "test")]


async def test_files_are_served_inside_the_worktree_only(work: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret\n")
    (tmp_path / "outside.txt").write_text("outside\n")
    (work / "link").symlink_to(outside)
    (work / "linkfile").symlink_to(outside / "secret.txt")
    (work / ".git").mkdir()
    (work / ".git" / "config").write_text("[core]\n")
    (work / "three.txt").write_text("one\ntwo\nthree\n")
    absolute = str(outside / "secret.txt")
    result, events = await run_acp(work, acp_task(f"fs {absolute}"))
    task = result.task("build")
    assert task.state is TaskState.SUCCEEDED, task.reason
    out = lines(events)
    assert out[:2] == ["read-back: written by the agent", "line-2: two"]
    assert (work / "notes/new.txt").read_text() == "written by the agent\n"
    refused = [line for line in out if line.endswith(": error -32602")]
    missing = [line for line in out if line.endswith(": error -32002")]
    assert len(refused) == 10, out
    assert missing == [f"read {work}/missing.txt: error -32002"]
    assert not any(line.endswith(": ok") for line in out)
    # Nothing written outside, through a link, or into .git; the files outside are untouched.
    assert not (tmp_path / "escaped.txt").exists() and not (outside / "planted.txt").exists()
    assert (outside / "secret.txt").read_text() == "secret\n"
    assert (work / ".git" / "config").read_text() == "[core]\n"
    assert task.files_changed == ["notes/new.txt"]


async def test_terminals_run_argv_in_the_worktree_and_are_killed(work: Path) -> None:
    result, events = await run_acp(work, acp_task("terminal"))
    task = result.task("build")
    assert task.state is TaskState.SUCCEEDED, task.reason
    out = lines(events)
    assert "exit: 3" in out and "output: from the terminal" in out
    sleeper = next(line for line in out if line.startswith("sleeper "))
    pid, signal_name = sleeper.removeprefix("sleeper ").split(": ")
    assert signal_name == "SIGTERM"
    assert not psutil.pid_exists(int(pid)) or psutil.Process(int(pid)).status() == psutil.STATUS_ZOMBIE
    assert "cwd /: error -32602" in out
    assert "[term-1] from the terminal" in out
    assert ("terminal", f"{sys.executable} -c import sys; print('from the terminal'); sys.exit(3)") in [
        (e.tool, e.detail) for e in events if isinstance(e, ToolUse)
    ]


def _marked(workflow_id: str) -> list[list[str]]:
    """Command lines of the live processes carrying the task's marker: the agent's and its terminals'."""
    found = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if proc.environ().get("ADW_TASK_ID", "").startswith(workflow_id) and proc.status() != "zombie":
                found.append(proc.cmdline())
    return found


@pytest.mark.parametrize("argument", ["", "deaf"])
async def test_cancel_mid_turn_ends_the_turn_and_leaves_no_process(work: Path, argument: str) -> None:
    """The agent is sent session/cancel; one that answers `cancelled` and one that ignores it both end,
    with the terminal it started."""
    result, events = await run_acp(work, acp_task(f"hang {argument}".strip()), cancel_on="working in")
    task = result.task("build")
    assert task.state is TaskState.CANCELLED
    assert ("cancel received" in lines(events)) is (argument != "deaf")  # it got session/cancel
    assert task.outputs["acp"]["session_id"] == "fake-session-1"
    assert _marked(result.id) == []


@pytest.mark.slow  # waits for its 20 s timeout
async def test_a_timeout_stops_an_agent_that_ignores_the_cancel_and_its_terminal(work: Path) -> None:
    # Generous: the fake takes seconds to start on a loaded machine; the turn itself never ends.
    result, events = await run_acp(work, acp_task("hang deaf", timeout=20))
    task = result.task("build")
    assert task.state is TaskState.FAILED and task.reason == "timed out after 20s"
    assert "working in term-1" in lines(events)
    assert _marked(result.id) == []


async def test_a_crashed_agent_fails_the_task_with_its_last_words(work: Path) -> None:
    result, events = await run_acp(work, acp_task("crash"))
    task = result.task("build")
    assert task.state is TaskState.FAILED
    assert task.reason == "fake-acp exited with status 3 before it finished the turn: fatal: the fake agent crashed"
    assert "about to crash" in lines(events)
    assert _marked(result.id) == []


@pytest.mark.parametrize(
    ("stop", "reason"),
    [
        ("refusal", "fake-acp: the agent refused the prompt: reword the spec or the phase's prompt"),
        ("max_tokens", "fake-acp: the agent ran out of tokens for this turn"),
    ],
)
async def test_a_turn_that_did_not_end_normally_fails_with_what_to_do(work: Path, stop: str, reason: str) -> None:
    result, _ = await run_acp(work, acp_task(f"stop {stop}"))
    task = result.task("build")
    assert task.state is TaskState.FAILED
    assert task.reason.startswith(reason)


@pytest.mark.parametrize("flags", [(), ("--fail-session",)])
async def test_authentication_required_says_how_to_log_in(work: Path, flags: tuple[str, ...]) -> None:
    result, _ = await run_acp(work, acp_task("auth", *flags))
    task = result.task("build")
    assert task.state is TaskState.FAILED
    assert task.reason == (
        "fake-acp is not logged in (Authentication required): log in the agent's own way, then run the "
        "phase again: Log in (Run `fake-acp login`)"
    )


async def test_an_agent_refusing_root_says_so(work: Path) -> None:
    result, _ = await run_acp(work, acp_task("stream", "--root"))
    assert result.task("build").reason.startswith("fake-acp refuses to run as root")


async def test_a_missing_agent_program_says_how_to_fix_it(work: Path) -> None:
    task = Task(
        id="build",
        phase="build",
        agent="acp",
        config=PhaseConfig(agent="acp", command=["no-such-acp-agent"], retries=0),
    )
    result, _ = await run_acp(work, task)
    assert result.task("build").reason.startswith("`no-such-acp-agent` is not installed or not on PATH")


async def test_preflight_checks_the_acp_command(work: Path) -> None:
    await preflight({"build": PhaseConfig(agent="acp", command=FAKE)})
    with pytest.raises(AdwError) as raised:
        await preflight(
            {"build": PhaseConfig(agent="acp", command=["no-such-acp-agent"]), "plan": PhaseConfig(agent="acp")}
        )
    assert "phases.build.command: `no-such-acp-agent` is not installed or not on PATH" in raised.value.message
    assert "phases.plan.command is empty: the `acp` agent needs an argv list" in raised.value.message


def test_unknown_permission_policy_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="permissions"):
        PhaseConfig.model_validate({"agent": "acp", "command": ["x"], "permissions": "maybe"})


@pytest.mark.slow  # a whole SDLC run: ~50 s on a loaded 2-core machine
async def test_an_sdlc_build_phase_runs_an_acp_agent_end_to_end(make_repo: MakeRepo) -> None:
    command = ", ".join(f'"{part}"' for part in FAKE)
    spec = (
        "# add\n\nAdd add().\n\n```python path=src/calc/add.py\ndef add(a, b):\n    return a + b\n```\n\n"
        "```python path=tests/test_add.py\nfrom calc.add import add\n\n\ndef test_add():\n"
        "    assert add(2, 3) == 5\n```\n"
    )
    project = make_repo(
        {
            "pyproject.toml": '[tool.pytest.ini_options]\npythonpath = ["src"]\n\n'
            f'[tool.adw.phases.build]\nagent = "acp"\ncommand = [{command}]\n'
            'prompt = "implement\\n{spec_text}"\n\n'
            '[tool.adw.agents]\nstop_grace = 0.3\ntest_command = ["python", "-m", "pytest", "-q"]\n',
            "src/calc/__init__.py": "",
            "src/calc/calc.py": "def add_numbers(a, b):\n    return a + b\n",
            ".gitignore": "__pycache__/\n",
            "specs/add.md": spec,
        }
    )
    engine = await open_engine(project)
    [wf] = await engine.run_all(await sdlc_workflows(project, [project / "specs/add.md"], engine.config))
    assert wf.state is TaskState.SUCCEEDED, [(t.id, t.state.value, t.reason) for t in wf.tasks if t.reason]
    build = wf.task("build")
    assert build.agent == "acp" and build.files_changed == ["src/calc/add.py", "tests/test_add.py"]
    assert build.summary == "Implemented 2 file(s) of the spec"  # the spec's text was in the prompt
    assert build.outputs["acp"]["session_id"] == "fake-session-1"
    assert "test (pytest): 1 passed" in run_git(Path(wf.cwd), "log", "--format=%b", "-1")
    files = run_git(Path(wf.cwd), "show", "--name-only", "--format=", "HEAD").split()
    assert {"src/calc/add.py", "tests/test_add.py"} <= set(files)
