"""The `acp` adapter against the real ACP adapters of Claude Code and Codex, offline and without credentials.

tests/agents_real/install.sh installs them (pinned) next to the other CLIs; these tests skip only when they are
not there. Each runs with an empty HOME and no key: `initialize` must be answered (the agent introduces itself
and its login methods), and the prompt must fail at once with a message that says how to log in.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from adw.config import AdwConfig
from adw.sdlc.engine import agent_factories
from adw.workflow.engine import Engine
from adw.workflow.events import BaseEvent, Progress
from adw.workflow.models import AgentSession, FollowUp, Task, TaskState, Workflow
from tests.agents_real.test_real_clis import FAST, INSTALL, NPM_BIN, cli_env, home, phase, project
from tests.fakes import workflow

pytestmark = pytest.mark.real  # .ci/run installs the program and runs these in a step of their own

__all__ = ["home", "project"]  # fixtures

needs_acp = pytest.mark.skipif(
    not ((NPM_BIN / "claude-code-acp").is_file() and (NPM_BIN / "codex-acp").is_file()),
    reason=f"claude-code-acp/codex-acp missing: {INSTALL}",
)


async def run_acp(project: Path, home: Path, program: str) -> tuple[Workflow, list[BaseEvent]]:
    config = phase("acp", cli_env(home), command=[program], prompt="Say hello.")
    task = Task(id="build", phase="build", agent="acp", config=config)
    engine = Engine(config=AdwConfig(agents=FAST), agents=agent_factories())
    events: list[BaseEvent] = []
    engine.bus.add_sink(events.append)
    return await engine.run(workflow(project, [task])), events


@needs_acp
@pytest.mark.parametrize(
    ("program", "introduced", "reason"),
    [
        (
            "claude-code-acp",
            "@zed-industries/claude-code-acp 0.16.2 speaks ACP 1",
            # As root (as CI runs) it refuses `session/new` before it looks at the login.
            "@zed-industries/claude-code-acp refuses to run as root (its --dangerously-skip-permissions mode is not "
            "allowed for root): run ADW as a normal user"
            if os.geteuid() == 0
            else "@zed-industries/claude-code-acp is not logged in (Authentication required): log in the agent's own "
            "way, then run the phase again: Log in with Claude Code (Run `claude /login` in the terminal)",
        ),
        (
            "codex-acp",
            "codex-acp 0.16.0 speaks ACP 1",
            "codex-acp is not logged in (Authentication required): log in the agent's own way, then run the phase "
            "again: Login with ChatGPT (Use your ChatGPT login with Codex CLI (requires a paid ChatGPT "
            "subscription)); or Use CODEX_API_KEY (Requires setting the `CODEX_API_KEY` environment variable.); or "
            "Use OPENAI_API_KEY (Requires setting the `OPENAI_API_KEY` environment variable.)",
        ),
    ],
)
async def test_real_acp_agents_initialize_and_say_how_to_log_in(
    project: Path, home: Path, program: str, introduced: str, reason: str
) -> None:
    result, events = await run_acp(project, home, program)
    task = result.task("build")
    assert introduced in [e.message for e in events if isinstance(e, Progress)]
    assert task.state is TaskState.FAILED
    assert task.reason == reason
    assert task.attempts[-1].retryable is False


@needs_acp
@pytest.mark.parametrize("program", ["codex-acp", "claude-code-acp"])
async def test_a_follow_up_asks_the_real_acp_agent_to_resume_its_session(
    project: Path, home: Path, program: str
) -> None:
    """Both adapters offer to continue a session, so a follow-up asks them to (instead of failing with "cannot
    continue"); offline and without a login the agent refuses, with its login message (claude-code-acp as root:
    its root message)."""
    config = phase("acp", cli_env(home), command=[program], prompt="Say hello.")
    session = AgentSession(agent="acp", id="0199a213-81c0-7800-8aa1-bbab2a035a53")
    follow_up = FollowUp(message="And now say goodbye.")
    task = Task(id="build", phase="build", agent="acp", config=config, session=session, follow_up=follow_up)
    engine = Engine(config=AdwConfig(agents=FAST), agents=agent_factories())
    events: list[BaseEvent] = []
    engine.bus.add_sink(events.append)
    result = await engine.run(workflow(project, [task]))
    done = result.task("build")
    assert done.state is TaskState.FAILED
    assert "cannot continue" not in done.reason
    assert "is not logged in (Authentication required)" in done.reason or "refuses to run as root" in done.reason
    assert not any(e.message.startswith("ACP session") for e in events if isinstance(e, Progress))  # no new one
