"""Follow-ups: a message sent to the agent of a task that already ran continues its session (claude `--resume`,
`codex exec resume`, aider's restored chat history, ACP `session/load` or `session/resume`), in the same worktree,
as a new checkpointed attempt; what depends on the task is marked stale for `adw resume`."""

from __future__ import annotations

import json
import secrets
import sys
from pathlib import Path

import pytest

from adw.config import PhaseConfig
from adw.errors import AdwError
from adw.git.checkpoints import Checkpoints
from adw.sdlc.engine import agent_factories
from adw.workflow.engine import Engine
from adw.workflow.events import BaseEvent, OutputLine
from adw.workflow.models import FollowUp, Location, Task, TaskState, Workflow
from adw.workflow.store import Store
from tests.conftest import MakeRepo
from tests.fakes import FAKES, FAST, command_task, install_fakes, python, workflow


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    return install_fakes(tmp_path / "bin", "claude", "codex", "aider")


@pytest.fixture
def sessions(tmp_path: Path) -> Path:
    folder = tmp_path / "sessions"
    folder.mkdir()
    return folder


@pytest.fixture
def work(make_repo: MakeRepo) -> Path:
    return make_repo({"README.md": "# demo\n"})


def own(cwd: Path, tasks: list[Task], **fields: object) -> Workflow:
    """A workflow with a name of its own: its agents carry their own marker, which another test's cleanup of its
    agents' processes (found by marker) cannot match."""
    return workflow(cwd, tasks, name=f"fu-{secrets.token_hex(4)}", **fields)


def cli_task(agent: str, bin_dir: Path, record: Path, sessions: Path, **config: object) -> Task:
    env = {"PATH": str(bin_dir), "FAKE_RECORD": str(record), "FAKE_SESSIONS": str(sessions)}
    fields = {"agent": agent, "env": env, "retries": 0, "prompt": "first prompt", **config}
    return Task(id="build", phase="build", agent=agent, checkpoint=True, config=PhaseConfig.model_validate(fields))


async def run(tmp_path: Path, wf: Workflow) -> tuple[Workflow, list[BaseEvent]]:
    """Run `wf` in a new engine on one store, as each `adw` command is a new process."""
    engine = Engine(Store(tmp_path / "state.db"), FAST, agents=agent_factories())
    try:
        async with engine.subscribe() as subscription:
            result = await engine.run(wf)
            subscription.close()
            return result, [event async for event in subscription]
    finally:
        engine.close()


async def follow_up(
    tmp_path: Path, workflow_id: str, message: str, task_id: str | None = "build", location: Location | None = None
) -> tuple[Workflow, list[BaseEvent]]:
    engine = Engine(Store(tmp_path / "state.db"), FAST, agents=agent_factories())
    try:
        wf = engine.prepare_follow_up(workflow_id, task_id, FollowUp(message=message, location=location))
    finally:
        engine.close()
    return await run(tmp_path, wf)


async def test_claude_follow_up_resumes_its_session_with_the_location(
    tmp_path: Path, work: Path, bin_dir: Path, sessions: Path
) -> None:
    record = tmp_path / "argv.json"
    first, _ = await run(tmp_path, own(work, [cli_task("claude", bin_dir, record, sessions)]))
    build = first.task("build")
    assert build.state is TaskState.SUCCEEDED, build.reason
    assert build.session is not None and build.session.agent == "claude"
    session = build.session.id
    assert (sessions / f"{session}.json").exists()  # the id the CLI itself reported

    where = Location(file="src/hello.py", start_line=1, end_line=2, selected_code="def hello():\n    return 'hi'")
    second, _ = await follow_up(tmp_path, first.id, "Rename hello to greet", location=where)
    build = second.task("build")
    assert build.state is TaskState.SUCCEEDED, build.reason
    called = json.loads(record.read_text())
    assert f"--resume={session}" in called["argv"] and "-p" in called["argv"]
    assert called["prompt"] == (
        "Rename hello to greet\n\nThis is about src/hello.py, lines 1-2:\n```\ndef hello():\n    return 'hi'\n```\n"
    )
    assert (work / "src" / "followup.txt").read_text() == "after 1 prompt(s): Rename hello to greet\n"
    assert build.session is not None and build.session.id == session
    assert build.summary == f"Followed up in session {session}."
    # The follow-up adds to what the task changed; it is attempt 2, with what was asked.
    assert build.files_changed == ["src/followup.txt", "src/hello.py"]
    assert [a.follow_up.message if a.follow_up else None for a in build.attempts] == [None, "Rename hello to greet"]
    assert build.follow_up is None


async def test_a_follow_up_is_checkpointed_before_and_after_so_undo_takes_it_back(
    tmp_path: Path, work: Path, bin_dir: Path, sessions: Path
) -> None:
    task = cli_task("claude", bin_dir, tmp_path / "argv.json", sessions)
    task.checkpoint = False  # a follow-up is checkpointed even when its phase is not
    first, _ = await run(tmp_path, own(work, [task]))
    second, _ = await follow_up(tmp_path, first.id, "Add a follow-up file")
    marks = second.task("build").outputs["checkpoints"]
    assert marks["after"] == marks["before"] + 1
    assert (work / "src" / "followup.txt").exists()
    checkpoints = await Checkpoints.open(work)
    await checkpoints.undo()
    assert not (work / "src" / "followup.txt").exists()
    assert (work / "src" / "hello.py").exists()  # what the phase itself wrote stays


async def test_claude_follow_up_of_a_session_it_no_longer_has_fails_with_its_message(
    tmp_path: Path, work: Path, bin_dir: Path, sessions: Path
) -> None:
    first, _ = await run(tmp_path, own(work, [cli_task("claude", bin_dir, tmp_path / "argv.json", sessions)]))
    for saved in sessions.iterdir():
        saved.unlink()
    second, _ = await follow_up(tmp_path, first.id, "Once more")
    build = second.task("build")
    assert build.state is TaskState.FAILED
    assert "No conversation found with session ID" in build.reason


async def test_codex_follow_up_runs_exec_resume_with_its_thread(
    tmp_path: Path, work: Path, bin_dir: Path, sessions: Path
) -> None:
    record = tmp_path / "argv.json"
    first, _ = await run(tmp_path, own(work, [cli_task("codex", bin_dir, record, sessions, model="gpt-test")]))
    build = first.task("build")
    assert build.state is TaskState.SUCCEEDED, build.reason
    assert build.session is not None
    thread = build.session.id
    assert thread == "0199a213-81c0-7800-8aa1-bbab2a035a53"  # thread.started's thread_id

    second, _ = await follow_up(tmp_path, first.id, "Also update the changelog")
    build = second.task("build")
    assert build.state is TaskState.SUCCEEDED, build.reason
    called = json.loads(record.read_text())
    # exec's own options before the subcommand: `resume` takes no --sandbox (the fake refuses it, as 0.171 does)
    assert called["argv"] == [
        "exec", "--json", "--sandbox", "workspace-write", "--model", "gpt-test", "resume", thread, "-",
    ]
    assert called["prompt"] == "Also update the changelog"
    assert (work / "src" / "followup.txt").read_text() == "after 1 prompt(s): Also update the changelog\n"
    assert build.summary == f"Followed up in {thread}."


async def test_codex_follow_up_of_a_thread_it_no_longer_has_fails_with_its_error_line(
    tmp_path: Path, work: Path, bin_dir: Path, sessions: Path
) -> None:
    first, _ = await run(tmp_path, own(work, [cli_task("codex", bin_dir, tmp_path / "argv.json", sessions)]))
    for saved in sessions.iterdir():
        saved.unlink()
    second, _ = await follow_up(tmp_path, first.id, "Once more")
    build = second.task("build")
    assert build.state is TaskState.FAILED
    # Its error line, not the tail of the stack backtrace codex prints after it.
    assert build.reason == (
        "codex failed: thread/resume: thread/resume failed: no rollout found for thread id "
        "0199a213-81c0-7800-8aa1-bbab2a035a53 (code -32600)"
    )


async def test_aider_follow_up_restores_its_chat_history_kept_outside_the_worktree(
    tmp_path: Path, work: Path, bin_dir: Path, sessions: Path
) -> None:
    record = tmp_path / "argv.json"
    task = cli_task("aider", bin_dir, record, sessions, model="test-model")
    first, _ = await run(tmp_path, own(work, [task]))
    build = first.task("build")
    assert build.state is TaskState.SUCCEEDED, build.reason
    assert build.session is not None
    history = Path(build.session.id)
    assert history == work / ".git" / "adw" / "sessions" / first.id / "build"
    assert "#### first prompt" in (history / "chat.history.md").read_text()
    assert "--restore-chat-history" not in json.loads(record.read_text())["argv"]

    second, _ = await follow_up(tmp_path, first.id, "Now add subtraction")
    build = second.task("build")
    assert build.state is TaskState.SUCCEEDED, build.reason
    argv = json.loads(record.read_text())["argv"]
    assert "--restore-chat-history" in argv
    assert argv[argv.index("--chat-history-file") + 1] == str(history / "chat.history.md")
    assert (work / "src" / "followup.txt").read_text() == "after 1 prompt(s): Now add subtraction\n"
    assert sorted(p.name for p in work.iterdir()) == [".git", "README.md", "src"]  # no aider file in the worktree


async def test_a_task_without_an_llm_agent_is_refused_with_one_clear_error(tmp_path: Path, work: Path) -> None:
    first, _ = await run(tmp_path, own(work, [command_task("lint", python("print('ok')"))]))
    engine = Engine(Store(tmp_path / "state.db"), FAST, agents=agent_factories())
    try:
        with pytest.raises(AdwError) as refused:
            engine.prepare_follow_up(first.id, "lint", FollowUp(message="do better"))
        assert "task lint (agent command) has no agent session to continue" in refused.value.message
        assert "follow-ups need an LLM agent" in (refused.value.hint or "")
        with pytest.raises(AdwError, match=r"no task of workflow .* has an agent session"):
            engine.prepare_follow_up(first.id, None, FollowUp(message="do better"))
        with pytest.raises(AdwError, match="has no task 'nope'"):
            engine.prepare_follow_up(first.id, "nope", FollowUp(message="do better"))
        assert engine.get(first.id).task("lint").attempts[-1].follow_up is None  # nothing changed
    finally:
        engine.close()


async def test_dependants_that_ran_are_stale_after_a_follow_up_and_resume_runs_them_again(
    tmp_path: Path, work: Path, bin_dir: Path, sessions: Path
) -> None:
    count = tmp_path / "runs.txt"
    tally = python(f"open({str(count)!r}, 'a').write('x')")
    build = cli_task("claude", bin_dir, tmp_path / "argv.json", sessions)
    tasks = [build, command_task("verify", tally, deps=["build"]), command_task("notes", tally, deps=["verify"])]
    first, _ = await run(tmp_path, own(work, tasks))
    assert first.state is TaskState.SUCCEEDED and count.read_text() == "xx"

    second, _ = await follow_up(tmp_path, first.id, "One more change", task_id=None)  # default: the agent task
    assert [t.stale for t in second.tasks] == [False, True, True]
    assert second.state is TaskState.SUCCEEDED
    assert second.reason == "stale after a follow-up: verify, notes"
    assert count.read_text() == "xx"  # the follow-up ran only the task it was sent to

    engine = Engine(Store(tmp_path / "state.db"), FAST, agents=agent_factories())
    try:
        resumed = engine.prepare_resume(first.id)
        assert [t.id for t in resumed.tasks if t.state is TaskState.PENDING] == ["verify", "notes"]
        done = await engine.run(resumed)
    finally:
        engine.close()
    assert count.read_text() == "xxxx"
    assert [t.stale for t in done.tasks] == [False, False, False] and done.reason == ""


# -- ACP ----------------------------------------------------------------------------------------------------


def acp_task(sessions: Path, *flags: str) -> Task:
    argv = [sys.executable, str(FAKES / "acp_agent.py"), "--sessions", str(sessions), *flags]
    config = PhaseConfig.model_validate({"agent": "acp", "command": argv, "prompt": "recall", "retries": 0})
    return Task(id="build", phase="build", agent="acp", config=config)


def said(events: list[BaseEvent]) -> list[str]:
    return [e.text for e in events if isinstance(e, OutputLine) and e.stream == "stdout"]


@pytest.mark.parametrize("how", ["loaded", "resumed"])
async def test_acp_follow_up_continues_the_same_session(
    tmp_path: Path, work: Path, sessions: Path, how: str
) -> None:
    flags = ["--resume"] if how == "resumed" else []
    first, _ = await run(tmp_path, own(work, [acp_task(sessions, *flags)]))
    build = first.task("build")
    assert build.state is TaskState.SUCCEEDED, build.reason
    assert build.session is not None and build.session.id == "fake-session-1"

    where = Location(file="README.md", start_line=1, end_line=1, selected_code="# demo")
    second, events = await follow_up(tmp_path, first.id, "recall the title", location=where)
    build = second.task("build")
    assert build.state is TaskState.SUCCEEDED, build.reason
    lines = said(events)
    # The same session heard the phase's prompt before; `session/load`'s replay is not reported again.
    assert lines[0] == "session fake-session-1 heard 1 prompt(s) before: recall"
    assert "> This is about README.md, line 1:" in lines and "> # demo" in lines
    assert not any("(replayed)" in line for line in lines)
    assert build.session is not None and build.session.id == "fake-session-1"
    assert sorted(p.name for p in sessions.iterdir()) == ["fake-session-1.json"]  # no new session


async def test_acp_agent_that_cannot_continue_a_session_says_so(tmp_path: Path, work: Path) -> None:
    argv = [sys.executable, str(FAKES / "acp_agent.py")]  # without --sessions: neither session/load nor /resume
    config = PhaseConfig.model_validate({"agent": "acp", "command": argv, "prompt": "stream", "retries": 0})
    first, _ = await run(tmp_path, own(work, [Task(id="build", phase="build", agent="acp", config=config)]))
    assert first.task("build").session is not None
    second, _ = await follow_up(tmp_path, first.id, "recall")
    build = second.task("build")
    assert build.state is TaskState.FAILED
    assert build.reason == (
        "fake-acp cannot continue session fake-session-1: it offers neither session/resume nor session/load, so it "
        "cannot take follow-ups; run the phase again with `adw resume` instead"
    )
