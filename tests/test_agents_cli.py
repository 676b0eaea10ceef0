"""The claude, codex, aider and command adapters against fake CLIs that emit the documented streams."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from adw.config import PhaseConfig
from adw.workflow.engine import Engine
from adw.workflow.events import BaseEvent, Progress, TaskStarted, ToolUse
from adw.workflow.models import Task, TaskState, Workflow

try:  # pytest puts either tests/ (no tests/__init__.py) or its parent on sys.path
    from tests.fakes import FAST, install_fakes, python, workflow
except ModuleNotFoundError:
    from fakes import FAST, install_fakes, python, workflow


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    return install_fakes(tmp_path / "bin", "claude", "codex", "aider")


def agent_task(agent: str, bin_dir: Path, phase: str = "build", **config: object) -> Task:
    env = {"PATH": str(bin_dir), **config.pop("env", {})}  # type: ignore[dict-item]
    return Task(
        id=phase,
        phase=phase,
        agent=agent,
        config=PhaseConfig.model_validate({"agent": agent, "env": env, "retries": 0, **config}),
    )


async def run_one(tmp_path: Path, task: Task) -> tuple[Workflow, list[BaseEvent]]:
    engine = Engine(config=FAST)
    spec = tmp_path / "spec.md"
    spec.write_text("# Greeting\nAdd hello().\n", encoding="utf-8")
    (tmp_path / "work").mkdir(exist_ok=True)
    wf = workflow(tmp_path / "work", [task], spec=str(spec))
    async with engine.subscribe() as subscription:
        result = await engine.run(wf)
        subscription.close()
        events = [event async for event in subscription]
    return result, events


async def test_claude_success_reports_tools_cost_and_changed_files(tmp_path: Path, bin_dir: Path) -> None:
    record = tmp_path / "argv.json"
    task = agent_task("claude", bin_dir, env={"FAKE_RECORD": str(record)})
    result, events = await run_one(tmp_path, task)
    done = result.task("build")
    assert done.state is TaskState.SUCCEEDED, done.reason
    assert done.summary == "Added hello() in src/hello.py."
    assert done.files_changed == ["src/hello.py"]
    assert done.usage.cost_usd == 0.0123
    assert done.usage.input_tokens == 150 and done.usage.output_tokens == 45 and done.usage.turns == 2
    tools = [(e.tool, e.detail) for e in events if isinstance(e, ToolUse)]
    assert tools == [("Edit", "src/hello.py"), ("Bash", "pytest -q")]
    called = json.loads(record.read_text())
    assert called["argv"][:2] == ["-p", called["argv"][1]] and "Add hello()" in called["argv"][1]
    assert called["argv"][2:5] == ["--output-format", "stream-json", "--verbose"]
    assert called["argv"][5:] == [
        "--permission-mode",
        "acceptEdits",
        "--allowedTools",
        "Read,Edit,Write,Bash,Glob,Grep",
    ]
    assert called["max_retries"] == "2"


async def test_claude_not_logged_in_fails_at_once_saying_what_to_do(tmp_path: Path, bin_dir: Path) -> None:
    task = agent_task("claude", bin_dir, env={"FAKE_CLAUDE": "not-logged-in"}, retries=2)
    started = time.monotonic()
    result, _ = await run_one(tmp_path, task)
    done = result.task("build")
    assert time.monotonic() - started < 5
    assert done.state is TaskState.FAILED
    assert "not logged in" in done.reason and "/login" in done.reason and "ANTHROPIC_API_KEY" in done.reason
    assert len(done.attempts) == 1  # a login problem is not worth a retry


async def test_claude_offline_retries_are_bounded_and_marked_retryable(tmp_path: Path, bin_dir: Path) -> None:
    task = agent_task("claude", bin_dir, env={"FAKE_CLAUDE": "offline"}, retries=1, retry_backoff=0.01)
    started = time.monotonic()
    result, events = await run_one(tmp_path, task)
    done = result.task("build")
    assert time.monotonic() - started < 5
    assert done.state is TaskState.FAILED
    assert "network or API failure" in done.reason and "Unable to connect" in done.reason
    assert [a.retryable for a in done.attempts] == [True, True]
    api_retries = [e for e in events if isinstance(e, Progress) and e.message.startswith("API retry")]
    assert len(api_retries) == 4  # CLAUDE_CODE_MAX_RETRIES=2 per attempt, not claude's default of 10


async def test_claude_rate_limit_is_retryable(tmp_path: Path, bin_dir: Path) -> None:
    task = agent_task("claude", bin_dir, env={"FAKE_CLAUDE": "rate-limit"}, retries=1, retry_backoff=0.01)
    result, _ = await run_one(tmp_path, task)
    done = result.task("build")
    assert done.reason.startswith("rate limited") and len(done.attempts) == 2


async def test_cancelling_claude_sends_sigint_first_and_keeps_its_final_cost(tmp_path: Path, bin_dir: Path) -> None:
    engine = Engine(config=FAST)
    (tmp_path / "work").mkdir()
    wf = workflow(tmp_path / "work", [agent_task("claude", bin_dir, env={"FAKE_CLAUDE": "hang"})])
    async with engine.subscribe(types=[Progress]) as events:
        run = asyncio.create_task(engine.run(wf))
        await anext(events)  # the init event: claude is up
    engine.cancel(wf.id, "build")
    result = await run
    done = result.task("build")
    assert done.state is TaskState.CANCELLED
    assert done.attempts[0].usage.cost_usd == 0.5  # the result written on SIGINT was parsed


async def test_a_missing_cli_fails_within_seconds_with_an_install_hint(tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    for agent, hint in (
        ("claude", "@anthropic-ai/claude-code"),
        ("codex", "@openai/codex"),
        ("aider", "aider-chat"),
    ):
        started = time.monotonic()
        result, _ = await run_one(tmp_path, agent_task(agent, empty, retries=2))
        done = result.task("build")
        assert time.monotonic() - started < 3
        assert done.state is TaskState.FAILED
        assert f"`{agent}` is not installed or not on PATH" in done.reason and hint in done.reason
        assert len(done.attempts) == 1


async def test_codex_success_reports_commands_edits_and_tokens(tmp_path: Path, bin_dir: Path) -> None:
    result, events = await run_one(tmp_path, agent_task("codex", bin_dir))
    done = result.task("build")
    assert done.state is TaskState.SUCCEEDED, done.reason
    assert done.summary == "Updated src/app.py."
    assert done.files_changed == ["src/app.py"]
    assert done.usage.input_tokens == 1000 and done.usage.output_tokens == 50 and done.usage.cost_usd is None
    assert [(e.tool, e.detail) for e in events if isinstance(e, ToolUse)] == [
        ("Bash", "ls"),
        ("Edit", "src/app.py"),
    ]


async def test_codex_offline_never_exits_but_is_stopped_as_a_network_failure(tmp_path: Path, bin_dir: Path) -> None:
    task = agent_task("codex", bin_dir, env={"FAKE_CODEX": "offline"})
    started = time.monotonic()
    result, _ = await run_one(tmp_path, task)
    done = result.task("build")
    assert time.monotonic() - started < 5
    assert done.state is TaskState.FAILED
    assert "cannot reach its API" in done.reason and done.attempts[0].retryable


async def test_codex_reconnect_chatter_does_not_hold_off_the_inactivity_timeout(tmp_path: Path, bin_dir: Path) -> None:
    task = agent_task("codex", bin_dir, env={"FAKE_CODEX": "reconnecting"}, inactivity_timeout=0.5)
    started = time.monotonic()
    result, _ = await run_one(tmp_path, task)
    assert time.monotonic() - started < 5
    assert result.task("build").reason == "no output for 0.5s"


async def test_codex_turn_failed_is_reported(tmp_path: Path, bin_dir: Path) -> None:
    result, _ = await run_one(tmp_path, agent_task("codex", bin_dir, env={"FAKE_CODEX": "failed"}))
    assert result.task("build").reason == "codex failed: model refused"


async def test_aider_cost_and_edits_are_parsed_from_its_text(tmp_path: Path, bin_dir: Path) -> None:
    result, events = await run_one(tmp_path, agent_task("aider", bin_dir))
    done = result.task("build")
    assert done.state is TaskState.SUCCEEDED, done.reason
    assert done.files_changed == ["src/calc.py"]
    assert done.usage.cost_usd == 0.0084  # the session total
    assert done.usage.input_tokens == 5500 and done.usage.output_tokens == 52
    assert any(isinstance(e, TaskStarted) for e in events)


async def test_command_agent_fills_its_argv_template(tmp_path: Path) -> None:
    out = tmp_path / "args.json"
    code = f"import json, sys; json.dump(sys.argv[1:], open({str(out)!r}, 'w')); print('made it')"
    task = Task(
        id="build",
        phase="build",
        agent="command",
        config=PhaseConfig(
            agent="command",
            prompt="do {task} of {spec}",
            command=[*python(code), "{prompt}", "{worktree}", "{task}", "{unknown}"],
        ),
    )
    result, _ = await run_one(tmp_path, task)
    assert result.task("build").state is TaskState.SUCCEEDED
    assert result.task("build").summary == "made it"
    prompt, worktree, task_id, unknown = json.loads(out.read_text())
    assert prompt == f"do build of {tmp_path / 'spec.md'}"
    assert (worktree, task_id, unknown) == (str(tmp_path / "work"), "build", "{unknown}")
