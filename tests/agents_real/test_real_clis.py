"""The adapters and the preflight against the real agent CLIs, offline and without credentials.

tests/agents_real/install.sh installs the pinned CLIs into a cache folder; these tests skip only when they are
not there. Every CLI runs with an empty HOME and no key from our environment, so what it says is what a new
user without a login gets. They prove that the real CLIs accept ADW's flags and its prompt on stdin (a 200 KB
prompt starting with `-`), and that their offline failures end the task with the real reason.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from adw.agents.claude import ClaudeAgent
from adw.agents.codex import CodexAgent
from adw.agents.preflight import preflight
from adw.config import AdwConfig, AgentsConfig, PhaseConfig
from adw.errors import AdwError
from adw.sdlc.engine import agent_factories
from adw.workflow.engine import Engine
from adw.workflow.models import AgentSession, FollowUp, Task, TaskState, Workflow
from tests.conftest import MakeRepo, run_git
from tests.fakes import workflow

pytestmark = pytest.mark.real  # .ci/run installs the program and runs these in a step of their own

CLIS = Path(os.environ.get("ADW_AGENT_CLIS") or Path.home() / ".cache/adw-agent-clis")
NPM_BIN = CLIS / "node_modules/.bin"
AIDER_BIN = CLIS / "aider/bin"
INSTALL = "run tests/agents_real/install.sh to install the pinned agent CLIs"
needs_npm_clis = pytest.mark.skipif(
    not ((NPM_BIN / "claude").is_file() and (NPM_BIN / "codex").is_file()), reason=f"claude/codex missing: {INSTALL}"
)
needs_aider = pytest.mark.skipif(not (AIDER_BIN / "aider").is_file(), reason=f"aider missing: {INSTALL}")
# Everything a CLI could log in with, from the environment running the tests.
CREDENTIALS = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_BASE_URL",
    "CLAUDE_CODE_OAUTH_TOKEN",
    "CODEX_API_KEY",
    "CODEX_HOME",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
)
BIG_PROMPT = "- starts like an option\n" + "Add hello() to src/hello.py; it returns 'hi'.\n" * 4500
FAST = AgentsConfig(stop_grace=0.5, sample_interval=0.2)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in CREDENTIALS:
        monkeypatch.delenv(name, raising=False)
    folder = tmp_path / "home"
    folder.mkdir()
    monkeypatch.setenv("HOME", str(folder))
    return folder


def cli_env(home: Path, bin_dir: Path = NPM_BIN, **extra: str) -> dict[str, str]:
    node = Path(shutil.which("node") or "/usr/bin/node").parent  # codex's launcher is a node script
    return {"PATH": os.pathsep.join([str(bin_dir), str(node), "/usr/bin", "/bin"]), "HOME": str(home), **extra}


def phase(agent: str, env: dict[str, str], **fields: object) -> PhaseConfig:
    return PhaseConfig.model_validate({"agent": agent, "env": env, "retries": 0, **fields})


async def run_task(project: Path, config: PhaseConfig, settings: AgentsConfig = FAST) -> Workflow:
    task = Task(id="build", phase="build", agent=config.agent, config=config)
    engine = Engine(config=AdwConfig(agents=settings), agents=agent_factories())
    return await engine.run(workflow(project, [task]))


@pytest.fixture
def project(make_repo: MakeRepo) -> Path:
    return make_repo({"README.md": "# demo\n", ".gitignore": "build/\n"})


@needs_npm_clis
async def test_preflight_of_the_real_clis_says_how_to_log_in(home: Path) -> None:
    env = cli_env(home)
    with pytest.raises(AdwError) as raised:
        await preflight({"plan": phase("claude", env), "build": phase("codex", env)})
    assert raised.value.message.splitlines()[1:] == [
        "- phases.plan (claude): Claude Code is not logged in: run `claude auth login`, or set ANTHROPIC_API_KEY",
        "- phases.build (codex): Codex is not logged in: run `codex login`, or set CODEX_API_KEY",
    ]


@needs_npm_clis
async def test_preflight_accepts_the_real_clis_versions_and_keys(home: Path) -> None:
    env = cli_env(home, ANTHROPIC_API_KEY="sk-ant-placeholder", CODEX_API_KEY="sk-placeholder")
    await preflight({"plan": phase("claude", env), "build": phase("codex", env)})


def _help(program: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(NPM_BIN / program), *argv, "--help"], capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False
    )


@needs_npm_clis
def test_the_real_codex_accepts_the_adapters_argv(project: Path, home: Path) -> None:
    config = phase("codex", cli_env(home), model="gpt-5-codex")
    argv = CodexAgent(workflow(project, []), FAST).argv(
        Task(id="build", phase="build", agent="codex", config=config), project
    )
    assert argv[0] == "codex" and argv[-1] == "-"
    accepted = _help(*argv)  # clap checks every argument before it prints help
    assert accepted.returncode == 0, accepted.stderr
    refused = _help(*argv[:-1], "--full-auto")
    assert refused.returncode == 2 and "unexpected argument '--full-auto'" in refused.stderr


THREAD = "0199a213-81c0-7800-8aa1-bbab2a035a53"


def _follow_up(agent: str, config: PhaseConfig) -> Task:
    return Task(id="build", phase="build", agent=agent, config=config, session=AgentSession(agent=agent, id=THREAD),
                follow_up=FollowUp(message="Now add a test."))


@needs_npm_clis
def test_the_real_codex_accepts_the_follow_up_argv(project: Path, home: Path) -> None:
    config = phase("codex", cli_env(home), model="gpt-5-codex")
    argv = CodexAgent(workflow(project, []), FAST).argv(_follow_up("codex", config), project)
    assert argv[-3:] == ["resume", THREAD, "-"]
    accepted = _help(*argv)  # `exec resume`'s help, once clap accepted exec's options before it
    assert accepted.returncode == 0 and "Resume a previous session" in accepted.stdout, accepted.stderr
    # `resume` has no --sandbox of its own: exec's must come first, as the adapter puts it.
    refused = _help(argv[0], "exec", "resume", "--sandbox", "workspace-write", THREAD, "-")
    assert refused.returncode == 2 and "unexpected argument '--sandbox'" in refused.stderr


@needs_npm_clis
async def test_a_follow_up_to_a_thread_the_real_codex_does_not_have_fails_with_its_message(
    project: Path, home: Path
) -> None:
    task = _follow_up("codex", phase("codex", cli_env(home, CODEX_API_KEY="sk-placeholder")))
    engine = Engine(config=AdwConfig(agents=FAST), agents=agent_factories())
    done = (await engine.run(workflow(project, [task]))).task("build")
    assert done.state is TaskState.FAILED
    assert done.reason.startswith(
        f"codex failed: thread/resume: thread/resume failed: no rollout found for thread id {THREAD}"
    )


@needs_npm_clis
def test_the_real_claude_knows_the_adapters_flags(project: Path, home: Path) -> None:
    config = phase("claude", cli_env(home), model="sonnet")
    task = Task(id="build", phase="build", agent="claude", config=config)
    argv = ClaudeAgent(workflow(project, []), FAST).argv(task, project)
    # Its `--help` prints help whatever else is given, so check each flag against the help text instead; the
    # offline run below proves that the whole argv parses.
    text = _help("claude").stdout
    flags = {part.split("=")[0] for part in argv[1:] if part.startswith("-")}
    assert flags == {
        "-p",
        "--output-format",
        "--verbose",
        "--permission-mode",
        "--allowedTools",
        "--disallowedTools",
        "--model",
    }
    for flag in flags:
        assert f"{flag} " in text or f"{flag}," in text, flag
    assert "acceptEdits" in text
    resume = ClaudeAgent(workflow(project, []), FAST).argv(_follow_up("claude", config), project)
    assert resume[-1] == f"--resume={THREAD}" and "-r, --resume [value]" in text


@needs_npm_clis
async def test_real_claude_without_login_fails_at_once_on_a_200_kb_prompt_starting_with_a_dash(
    project: Path, home: Path
) -> None:
    config = phase("claude", cli_env(home), prompt=BIG_PROMPT, retries=2)
    done = (await run_task(project, config)).task("build")
    # Not "unknown option" (the prompt was not taken for a flag), not E2BIG, not "Input must be provided".
    assert done.state is TaskState.FAILED
    assert done.reason.startswith("Claude Code is not logged in (Not logged in")
    assert len(done.attempts) == 1


@needs_npm_clis
async def test_real_claude_with_a_key_but_no_api_gives_up_with_the_reason(project: Path, home: Path) -> None:
    closed = _closed_port()
    env = cli_env(home, ANTHROPIC_API_KEY="sk-ant-placeholder", ANTHROPIC_BASE_URL=f"http://127.0.0.1:{closed}")
    config = phase("claude", env, retries=1, retry_backoff=0.1)
    done = (await run_task(project, config, FAST.model_copy(update={"claude_max_retries": 0}))).task("build")
    assert done.state is TaskState.FAILED
    assert done.reason.startswith("gave up after 2 attempts: network or API failure: API Error:")
    assert "ECONNREFUSED" in done.reason
    assert [a.retryable for a in done.attempts] == [True, True]


@pytest.mark.slow  # ~11 s: codex reconnects five times before it says it is waiting for the network
@needs_npm_clis
async def test_real_codex_offline_is_stopped_as_a_network_failure(project: Path, home: Path) -> None:
    config = phase("codex", cli_env(home), prompt=BIG_PROMPT)
    done = (await run_task(project, config)).task("build")
    assert done.state is TaskState.FAILED
    assert done.reason.startswith("codex cannot reach its API (waiting for network)")
    assert done.attempts[0].retryable


@pytest.mark.slow  # ~5–15 s: aider's start-up
@needs_aider
async def test_real_aider_exiting_0_after_an_authentication_error_fails_and_leaves_the_worktree_alone(
    project: Path, home: Path
) -> None:
    with _answering(401) as port:
        env = cli_env(home, AIDER_BIN, OPENAI_API_KEY="sk-placeholder", OPENAI_API_BASE=f"http://127.0.0.1:{port}/v1")
        config = phase("aider", env, model="gpt-4o")
        done = (await run_task(project, config)).task("build")
    assert done.state is TaskState.FAILED
    assert done.reason.startswith("aider's API request failed (AuthenticationError:")
    assert "although it exited 0" in done.reason and "phases.build.model" in done.reason
    assert run_git(project, "status", "--porcelain", "--ignored") == ""  # no .gitignore edit, history or cache
    # aider keeps an id there whatever the flags; --analytics-disable would also have turned the user's analytics
    # off for good, a choice that is not ADW's to make.
    analytics = home / ".aider" / "analytics.json"
    assert not analytics.exists() or json.loads(analytics.read_text())["permanently_disable"] is not True


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # nothing listens there once the probe is closed


@contextlib.contextmanager
def _answering(status: int) -> Iterator[int]:
    """An API endpoint on localhost that answers every request with `status`; yields its port."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = json.dumps({"error": {"message": "Incorrect API key provided", "code": "invalid_api_key"}})
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
