"""`adw say` and `adw logs --follow`, run as a user runs them (the installed script in a subprocess), on a
workflow whose build task ran the fake claude."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from adw.config import PhaseConfig
from adw.sdlc.engine import agent_factories
from adw.workflow.engine import Engine
from adw.workflow.models import Task, TaskState, Workflow
from adw.workflow.store import Store
from tests.agents.test_agents_follow_up import cli_task, own
from tests.conftest import MakeRepo
from tests.fakes import FAKES, FAST, command_task, install_fakes, python

ADW = Path(sys.executable).with_name("adw")


def adw(repo: Path, *args: str, code: int = 0, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(ADW), "-C", str(repo), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == code, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    return done


async def ran_build(tmp_path: Path, repo: Path) -> tuple[Workflow, dict[str, str]]:
    """A workflow whose build (fake claude) succeeded and whose `lint` (a command) depends on it."""
    bin_dir = install_fakes(tmp_path / "bin", "claude")
    sessions = tmp_path / "sessions"
    sessions.mkdir()
    build = cli_task("claude", bin_dir, tmp_path / "argv.json", sessions)
    lint = command_task("lint", python("print('lint ok')"), deps=["build"])
    engine = Engine(Store.for_common_dir(repo / ".git"), FAST, agents=agent_factories())
    try:
        done = await engine.run(own(repo, [build, lint]))
    finally:
        engine.close()
    assert done.state is TaskState.SUCCEEDED, done.reason
    # What the preflight checks (claude on PATH, logged in) sees the fake.
    return done, {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "ANTHROPIC_API_KEY": "test"}


async def test_say_continues_the_session_and_logs_follow_prints_the_transcript(
    tmp_path: Path, make_repo: MakeRepo
) -> None:
    repo = make_repo({"README.md": "# demo\n"})
    wf, env = await ran_build(tmp_path, repo)
    said = adw(repo, "say", wf.id, "Write the follow-up file", env=env)
    assert f"following up build (claude) of {wf.name} [{wf.id}]" in said.stdout
    assert "tool Write src/followup.txt" in said.stdout  # the transcript streams as the agent works
    assert "Followed up in session" in said.stdout
    assert (repo / "src" / "followup.txt").read_text() == "after 1 prompt(s): Write the follow-up file\n"
    assert "stale after a follow-up: lint" in said.stdout

    transcript = adw(repo, "logs", wf.id, "--task", "build", "--follow").stdout.splitlines()
    # Both attempts, in order: the phase's run and the follow-up, each with its messages and tool calls.
    started = [line for line in transcript if "started claude" in line]
    assert [line.split()[-1] for line in started] == ["1)", "2)"]
    assert any("tool Write src/followup.txt" in line for line in transcript)
    assert not any(" cpu " in line for line in transcript)  # resource samples are not part of a transcript


async def test_say_to_a_command_task_is_one_clear_error(tmp_path: Path, make_repo: MakeRepo) -> None:
    repo = make_repo({"README.md": "# demo\n"})
    wf, env = await ran_build(tmp_path, repo)
    refused = adw(repo, "say", wf.id, "--task", "lint", "do better", code=2, env=env)
    assert refused.stderr == (
        "adw: task lint (agent command) has no agent session to continue\n"
        "  hint: follow-ups need an LLM agent (claude, codex, aider or acp) that has run the task; "
        "tasks with one: build\n"
    )
    assert adw(repo, "say", wf.id, "   ", code=2, env=env).stderr.startswith("adw: the follow-up message is empty")
    assert adw(repo, "logs", wf.id, "--follow", "--json", code=2).stderr.startswith("adw: --follow prints lines")


async def test_say_checks_only_the_agent_it_runs(tmp_path: Path, make_repo: MakeRepo) -> None:
    """A tool another task used, gone since, does not refuse a follow-up that will not run it."""
    repo = make_repo({"README.md": "# demo\n"})
    tool = install_fakes(tmp_path / "tools", "codex") / "codex"  # any executable: the lint task's program
    bin_dir = install_fakes(tmp_path / "bin", "claude")
    sessions = tmp_path / "sessions"
    sessions.mkdir()
    build = cli_task("claude", bin_dir, tmp_path / "argv.json", sessions)
    lint = command_task("lint", [str(tool), "--version"], deps=["build"])
    engine = Engine(Store.for_common_dir(repo / ".git"), FAST, agents=agent_factories())
    try:
        done = await engine.run(own(repo, [build, lint]))
    finally:
        engine.close()
    assert done.state is TaskState.SUCCEEDED, done.reason
    tool.unlink()
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "ANTHROPIC_API_KEY": "test"}
    said = adw(repo, "say", done.id, "Write the follow-up file", env=env)
    assert "Followed up in session" in said.stdout
    # `adw resume` runs lint again, so then its program must be there.
    refused = adw(repo, "resume", done.id, code=2, env=env)
    assert "phases.lint.command" in refused.stderr and "not installed or not on PATH" in refused.stderr


async def test_logs_follow_shows_the_permission_questions_and_decisions(tmp_path: Path, make_repo: MakeRepo) -> None:
    repo = make_repo({"README.md": "# demo\n"})
    argv = [sys.executable, str(FAKES / "acp_agent.py")]
    config = PhaseConfig.model_validate({"agent": "acp", "command": argv, "prompt": "permission", "retries": 0,
                                         "permissions": "ask", "permission_timeout": 0.2})
    engine = Engine(Store.for_common_dir(repo / ".git"), FAST, agents=agent_factories())
    try:
        done = await engine.run(own(repo, [Task(id="build", phase="build", agent="acp", config=config)]))
    finally:
        engine.close()
    transcript = adw(repo, "logs", done.id, "--task", "build", "--follow").stdout
    assert "asks permission: Edit a.txt" in transcript
    assert "permission unanswered (timeout)" in transcript  # nobody watched: the question timed out
    assert "permission denied: Edit a.txt (nobody answered within 0.2 s)" in transcript
    assert "p1: no" in transcript  # what the agent was told
