"""Preflight: before a workflow starts, each agent CLI its phases name is installed, a supported version, and
logged in where the CLI can tell, so that a missing login fails in a second with what to do instead of after
an agent's retries (Claude ~20 s to 3 min, Codex never, aider a minute and then "success").

Checks run concurrently with the environment the agent will get (ours plus the phase's `env`), each bounded by
a timeout; every problem found is listed in one AdwError. What a CLI cannot tell cheaply is not guessed at: an
aider model of an unknown provider, or a key that may sit in a `.env` or `.aider.conf.yml`, passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from adw.agents.aider import AiderAgent
from adw.agents.claude import ClaudeAgent
from adw.agents.codex import CodexAgent
from adw.agents.headless import first_line
from adw.config import PhaseConfig
from adw.errors import AdwError
from adw.process import signal_group
from adw.workflow.models import TaskState, Workflow

# Each `--version` / login check answers in 0.05–1 s, aider's in 1–3 s on a loaded machine; a false "did not
# answer" would block a working setup, so the bound is generous.
CHECK_TIMEOUT = 10.0
_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")

Version = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class _Cli:
    program: str
    title: str
    minimum: Version  # the oldest release whose flags and stream ADW's adapter was checked against
    install_hint: str
    upgrade: str


_CLIS = {
    "claude": _Cli("claude", "Claude Code", (2, 1, 0), ClaudeAgent.install_hint, "claude update"),
    "codex": _Cli("codex", "Codex CLI", (0, 147, 0), CodexAgent.install_hint, "npm install -g @openai/codex@latest"),
    "aider": _Cli("aider", "aider", (0, 86, 0), AiderAgent.install_hint, "pip install -U aider-chat"),
}

# aider's model name → the variable holding its provider's key (aider/litellm conventions). Local providers
# need none; an unknown provider is not checked.
_LOCAL_PROVIDERS = ("ollama/", "ollama_chat/", "lm_studio/", "openai-compat/")
_MODEL_KEYS = (
    (re.compile(r"^(anthropic/|claude|sonnet|opus|haiku)"), "ANTHROPIC_API_KEY"),
    (re.compile(r"^(openai/|gpt|o\d|4o|4-turbo|4$|3$|35turbo)"), "OPENAI_API_KEY"),
    (re.compile(r"^(gemini/|gemini|flash)"), "GEMINI_API_KEY"),
    (re.compile(r"^(deepseek|r1$)"), "DEEPSEEK_API_KEY"),
    (re.compile(r"^openrouter/"), "OPENROUTER_API_KEY"),
    (re.compile(r"^groq/"), "GROQ_API_KEY"),
    (re.compile(r"^mistral/"), "MISTRAL_API_KEY"),
    (re.compile(r"^(xai/|grok)"), "XAI_API_KEY"),
)


@dataclass(frozen=True, slots=True)
class _Target:
    """One CLI in one environment; several phases may share it."""

    agent: str
    env: tuple[tuple[str, str], ...]  # the phase's own variables
    model: str


async def preflight(phases: Mapping[str, PhaseConfig], root: Path | None = None) -> None:
    """Raise AdwError listing every problem with the agents of `phases` (phase name → configuration).
    `root` is the repository, where aider may find a `.env`."""
    targets: dict[_Target, list[str]] = {}
    problems: list[str] = []
    for name, config in phases.items():
        if config.agent in ("command", "acp"):
            problems += _command_problems(name, config)
        elif config.agent in _CLIS:
            model = config.model if config.agent == "aider" else ""
            targets.setdefault(_Target(config.agent, tuple(sorted(config.env.items())), model), []).append(name)
    found = await asyncio.gather(*(_check(target, names, root) for target, names in targets.items()))
    problems += [problem for problems_of_one in found for problem in problems_of_one]
    if problems:
        raise AdwError(
            f"cannot start: {len(problems)} problem(s) with the configured agents:\n"
            + "\n".join(f"- {problem}" for problem in problems),
            "fix them, or choose other agents in the phases' configuration (see docs/AGENTS.md)",
        )


async def preflight_workflows(workflows: Sequence[Workflow]) -> None:
    """`preflight` for the agent tasks of `workflows` (of one repository) that are about to run: a resumed workflow's
    or a follow-up's tasks that already ran are not run again, so their agents need not be there."""
    phases = {
        task.phase: task.config
        for workflow in workflows
        for task in workflow.tasks
        if task.config and task.state is TaskState.PENDING
    }
    await preflight(phases, Path(workflows[0].repo) if workflows else None)


def _command_problems(name: str, config: PhaseConfig) -> list[str]:
    if not config.command:
        example = '["claude-code-acp"]' if config.agent == "acp" else '["make", "build"]'
        return [f"phases.{name}.command is empty: the `{config.agent}` agent needs an argv list, e.g. {example}"]
    program = config.command[0]
    if "{" in program:
        return []  # filled in per task
    path = {**os.environ, **config.env}.get("PATH")
    if shutil.which(program, path=path) is None:
        return [f"phases.{name}.command: `{program}` is not installed or not on PATH"]
    return []


async def _check(target: _Target, names: list[str], root: Path | None) -> list[str]:
    cli = _CLIS[target.agent]
    where = f"{', '.join(f'phases.{name}' for name in names)} ({target.agent})"
    env = {**os.environ, **dict(target.env)}
    program = shutil.which(cli.program, path=env.get("PATH"))
    if program is None:
        return [f"{where}: `{cli.program}` is not installed or not on PATH: {cli.install_hint}"]
    checks: list[Awaitable[str | None]]
    if target.agent == "aider":
        # Its configuration is checked on the spot; its slow start (`--version` takes seconds) only after.
        problems = _aider_problems(target.model, names, env, root)
        checks = [] if problems else [_version(cli, program, env)]
    else:
        problems, checks = [], [_version(cli, program, env), _LOGINS[target.agent](program, env)]
    problems += [problem for problem in await asyncio.gather(*checks) if problem]
    return [f"{where}: {problem}" for problem in problems]


async def _version(cli: _Cli, program: str, env: dict[str, str]) -> str | None:
    code, output = await _run([program, "--version"], env)
    if code is None:
        return f"`{cli.program} --version` did not answer within {CHECK_TIMEOUT:g} s"
    found = _VERSION.search(output)
    if code != 0 or found is None:
        return f"`{cli.program} --version` failed: {first_line(output) or f'exit status {code}'}"
    version = (int(found[1]), int(found[2]), int(found[3]))
    if version < cli.minimum:
        minimum = ".".join(map(str, cli.minimum))
        return f"{cli.title} {found[0]} is older than {minimum}, the oldest ADW supports: run `{cli.upgrade}`"
    return None


async def _claude_login(program: str, env: dict[str, str]) -> str | None:
    _, output = await _run([program, "auth", "status"], env)
    with contextlib.suppress(ValueError):
        status = json.loads(output)
        if isinstance(status, dict) and status.get("loggedIn") is False:
            return "Claude Code is not logged in: run `claude auth login`, or set ANTHROPIC_API_KEY"
    return None  # an older CLI without `auth status`, or no answer: it cannot tell, so neither can we


async def _codex_login(program: str, env: dict[str, str]) -> str | None:
    if env.get("CODEX_API_KEY"):
        return None  # `codex exec` authenticates with it; `login status` does not look at it
    code, output = await _run([program, "login", "status"], env)
    if code not in (None, 0) and "not logged in" in output.lower():
        return "Codex is not logged in: run `codex login`, or set CODEX_API_KEY"
    return None


_LOGINS: dict[str, Callable[[str, dict[str, str]], Awaitable[str | None]]] = {
    "claude": _claude_login,
    "codex": _codex_login,
}


def _aider_problems(model: str, names: list[str], env: dict[str, str], root: Path | None) -> list[str]:
    if not model:
        keys = " and ".join(f"phases.{name}.model" for name in names)
        return [f"aider needs a model: set {keys} (e.g. \"sonnet\" or \"gpt-4o\")"]
    if model.startswith(_LOCAL_PROVIDERS):
        return []
    key = next((key for pattern, key in _MODEL_KEYS if pattern.match(model.lower())), None)
    if key is None or env.get(key):
        return []
    # aider also reads keys from these files; their content is the user's, so their presence is enough.
    files = [root / ".env", root / ".aider.conf.yml"] if root else []
    if env.get("HOME"):
        files.append(Path(env["HOME"]) / ".aider.conf.yml")
    if any(file.is_file() for file in files):
        return []
    where = " or ".join(f"phases.{name}.env" for name in names)
    return [f"model {model!r} needs {key}: set it in the environment or in {where}"]


async def _run(argv: list[str], env: dict[str, str]) -> tuple[int | None, str]:
    """Exit status (None on timeout) and combined output of a quick check."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            output, _ = await proc.communicate()
    except TimeoutError:
        signal_group(proc.pid, signal.SIGKILL)
        await proc.wait()
        return None, ""
    return proc.returncode, output.decode("utf-8", "replace")
