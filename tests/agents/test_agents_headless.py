"""The claude, codex, aider and command adapters against fake CLIs that emit the documented streams."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from adw.config import PhaseConfig
from adw.sdlc.engine import agent_factories
from adw.workflow.engine import Engine
from adw.workflow.events import BaseEvent, FindingReported, Progress, TaskStarted, ToolUse
from adw.workflow.models import Task, TaskState, Workflow
from tests.fakes import FAST, install_fakes, python, workflow


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


async def run_one(
    tmp_path: Path, task: Task, spec_text: str = "# Greeting\nAdd hello().\n"
) -> tuple[Workflow, list[BaseEvent]]:
    engine = Engine(config=FAST, agents=agent_factories())
    spec = tmp_path / "spec.md"
    spec.write_text(spec_text, encoding="utf-8")
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
    assert "Add hello()" in called["prompt"]  # on stdin, not in argv
    assert called["argv"] == [
        "-p",
        "--output-format",
        "stream-json",
        "--verbose",
        "--permission-mode",
        "acceptEdits",
        "--allowedTools=Read,Edit,Write,Bash,Glob,Grep",
        "--disallowedTools=EnterWorktree,ExitWorktree",
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
    assert done.reason.startswith("gave up after 2 attempts: network or API failure")
    assert "Unable to connect" in done.reason and "retrying" not in done.reason
    assert [a.retryable for a in done.attempts] == [True, True]
    api_retries = [e for e in events if isinstance(e, Progress) and e.message.startswith("API retry")]
    assert len(api_retries) == 4  # CLAUDE_CODE_MAX_RETRIES=2 per attempt, not claude's default of 10


async def test_claude_rate_limit_is_retryable(tmp_path: Path, bin_dir: Path) -> None:
    task = agent_task("claude", bin_dir, env={"FAKE_CLAUDE": "rate-limit"}, retries=1, retry_backoff=0.01)
    result, _ = await run_one(tmp_path, task)
    done = result.task("build")
    assert done.reason.startswith("gave up after 2 attempts: rate limited") and len(done.attempts) == 2
    assert [a.reason.startswith("rate limited") for a in done.attempts] == [True, True]


async def test_cancelling_claude_sends_sigint_first_and_keeps_its_final_cost(tmp_path: Path, bin_dir: Path) -> None:
    engine = Engine(config=FAST, agents=agent_factories())
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


# -- prompts, models and outcomes judged beyond the exit status --------------------------------------------------

BIG_SPEC = "- starts like an option\n" + "Add hello() to src/hello.py; it returns 'hi'.\n" * 4500  # ~200 KB


@pytest.mark.parametrize("agent", ["claude", "codex", "aider"])
async def test_a_prompt_starting_with_a_dash_and_larger_than_an_argument_reaches_the_agent_whole(
    tmp_path: Path, bin_dir: Path, agent: str
) -> None:
    assert len(BIG_SPEC.encode()) > 128 * 1024  # Linux refuses a single argument this long (E2BIG)
    record = tmp_path / "record.json"
    task = agent_task(agent, bin_dir, env={"FAKE_RECORD": str(record)}, prompt="{spec_text}")
    result, _ = await run_one(tmp_path, task, spec_text=BIG_SPEC)
    done = result.task("build")
    assert done.state is TaskState.SUCCEEDED, done.reason
    called = json.loads(record.read_text())
    assert called["prompt"] == BIG_SPEC
    assert not any(BIG_SPEC[:20] in arg for arg in called["argv"])


@pytest.mark.parametrize(
    ("agent", "flag"),
    [("claude", ["--model", "opus-x"]), ("codex", ["--model", "opus-x"]), ("aider", ["--model", "opus-x"])],
)
async def test_the_phase_model_is_passed_to_the_agent(
    tmp_path: Path, bin_dir: Path, agent: str, flag: list[str]
) -> None:
    record = tmp_path / "record.json"
    result, _ = await run_one(tmp_path, agent_task(agent, bin_dir, env={"FAKE_RECORD": str(record)}, model="opus-x"))
    assert result.task("build").state is TaskState.SUCCEEDED
    argv = json.loads(record.read_text())["argv"]
    assert any(argv[i : i + 2] == flag for i in range(len(argv)))


async def test_the_command_agent_gets_the_phase_model_as_a_placeholder(tmp_path: Path) -> None:
    out = tmp_path / "model.txt"
    code = f"import sys; open({str(out)!r}, 'w').write(sys.argv[1])"
    task = Task(
        id="build",
        phase="build",
        agent="command",
        config=PhaseConfig(agent="command", model="local-7b", command=[*python(code), "{model}"]),
    )
    result, _ = await run_one(tmp_path, task)
    assert result.task("build").state is TaskState.SUCCEEDED
    assert out.read_text() == "local-7b"


async def test_aider_runs_headless_without_touching_gitignore_or_the_home_folder(tmp_path: Path, bin_dir: Path) -> None:
    record = tmp_path / "record.json"
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / ".gitignore").write_text("build/\n")
    result, _ = await run_one(tmp_path, agent_task("aider", bin_dir, env={"FAKE_RECORD": str(record)}, model="sonnet"))
    assert result.task("build").state is TaskState.SUCCEEDED
    argv = json.loads(record.read_text())["argv"]
    assert {"--no-gitignore", "--no-analytics", "--no-auto-commits", "--yes-always"} <= set(argv)
    assert "--analytics-disable" not in argv  # it writes a permanent opt-out into the home folder
    assert argv[argv.index("--model") + 1] == "sonnet"
    assert (tmp_path / "work" / ".gitignore").read_text() == "build/\n"
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == [".gitignore", "src"]  # no history, no cache


async def test_aider_exiting_0_after_an_api_error_fails_with_its_reason(tmp_path: Path, bin_dir: Path) -> None:
    task = agent_task("aider", bin_dir, env={"FAKE_AIDER": "api-error"}, retries=2, model="gpt-4o")
    result, _ = await run_one(tmp_path, task)
    done = result.task("build")
    assert done.state is TaskState.FAILED
    assert "AuthenticationError" in done.reason and "Incorrect API key provided" in done.reason
    assert "phases.build.model" in done.reason and "API key" in done.reason
    assert len(done.attempts) == 1  # a bad key is not worth a retry
    assert done.files_changed == []


async def test_aider_recovering_from_an_api_error_by_itself_succeeds(tmp_path: Path, bin_dir: Path) -> None:
    result, _ = await run_one(tmp_path, agent_task("aider", bin_dir, env={"FAKE_AIDER": "retried"}))
    done = result.task("build")
    assert done.state is TaskState.SUCCEEDED, done.reason
    assert done.files_changed == ["src/calc.py"]


async def test_claude_exiting_0_after_an_api_error_fails_and_gives_up_honestly(tmp_path: Path, bin_dir: Path) -> None:
    task = agent_task("claude", bin_dir, env={"FAKE_CLAUDE": "api-error-exit-0"}, retries=2, retry_backoff=0.01)
    result, _ = await run_one(tmp_path, task)
    done = result.task("build")
    assert done.state is TaskState.FAILED
    assert done.reason.startswith("gave up after 3 attempts: network or API failure: API Error")
    assert "ENOTFOUND" in done.reason and "retrying" not in done.reason
    assert [a.state for a in done.attempts] == [TaskState.FAILED] * 3


async def test_claude_denied_and_failed_tool_calls_become_findings(tmp_path: Path, bin_dir: Path) -> None:
    result, events = await run_one(tmp_path, agent_task("claude", bin_dir, env={"FAKE_CLAUDE": "denied"}))
    done = result.task("build")
    assert done.state is TaskState.SUCCEEDED, done.reason
    assert done.files_changed == []  # the Write was denied: nothing was changed
    # One finding per problem: the denied Write's failed result is part of its denial.
    assert sorted((f.path, f.message) for f in done.findings) == [
        (".", "Bash pytest -q failed: Exit code 127"),
        (
            "src/hello.py",
            "permission denied: Write src/hello.py "
            "(allow it in agents.claude_allowed_tools or agents.claude_permission_mode)",
        ),
    ]
    assert "2 tool problem(s)" in done.summary
    assert len([e for e in events if isinstance(e, FindingReported)]) == 2


async def test_codex_exiting_0_after_an_error_without_finishing_its_turn_fails(tmp_path: Path, bin_dir: Path) -> None:
    result, _ = await run_one(tmp_path, agent_task("codex", bin_dir, env={"FAKE_CODEX": "error-exit-0"}))
    done = result.task("build")
    assert done.state is TaskState.FAILED
    assert "401 Unauthorized" in done.reason


async def test_codex_failed_changes_and_declined_commands_are_not_reported_as_done(
    tmp_path: Path, bin_dir: Path
) -> None:
    result, _ = await run_one(tmp_path, agent_task("codex", bin_dir, env={"FAKE_CODEX": "partial"}))
    done = result.task("build")
    assert done.state is TaskState.SUCCEEDED, done.reason
    assert done.files_changed == ["README.md"]
    assert sorted((f.path, f.message) for f in done.findings) == [
        (".", "command declined, not run: rm -rf build"),
        ("src/app.py", "file change failed, not applied: src/app.py"),
    ]
    assert "2 change(s) or command(s) not done" in done.summary
