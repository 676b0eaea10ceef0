"""Configuration: `[tool.adw]` in the repository's pyproject.toml, or `.adw.toml` beside it.

Every model forbids unknown keys, so a typo is an error naming the key path and the file, not a silent default.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import time
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from adw.errors import ConfigError
from adw.fsutil import write_inside

_UNITS = {"": 1, "b": 1, "kb": 1000, "k": 1000, "mb": 1000**2, "m": 1000**2, "gb": 1000**3, "g": 1000**3}


def _parse_size(value: Any) -> Any:
    """Accept 10485760, "10MB" or "500 kb"."""
    if isinstance(value, str):
        number = value.strip().lower().rstrip("ib")
        digits = number.rstrip("kmgb ").strip()
        unit = number[len(digits) :].strip()
        if not digits.replace(".", "", 1).isdigit() or unit not in _UNITS:
            raise ValueError(f"not a size: {value!r} (use bytes or e.g. '10MB')")
        return int(float(digits) * _UNITS[unit])
    return value


ByteSize = Annotated[int, BeforeValidator(_parse_size), Field(ge=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class PortsConfig(_Strict):
    base: int = Field(default=41000, ge=1024, le=65535)
    size: int = Field(default=10, ge=1, le=1000)


class PoolConfig(_Strict):
    size: int = Field(default=2, ge=0, le=16, description="Prewarmed worktrees kept ready (0: no pool).")
    max_disk: ByteSize = Field(default=2 * 1000**3, description="Most disk the pool's worktrees may use together.")
    lock_files: list[str] = Field(
        default_factory=lambda: ["uv.lock", "poetry.lock", "package-lock.json", "requirements*.txt"],
        description="Globs (from the repository root) of the files the setup command reads: a pool worktree "
        "is used only when these files and the setup command are those it was set up with.",
    )


class WorktreeConfig(_Strict):
    root: str = Field(
        default="../{repo}.worktrees",
        description="Folder for new worktrees, relative to the main worktree; {repo} is the repository's name.",
    )
    branch_prefix: str = "adw/"
    setup: list[str] = Field(default_factory=list, description="Command run in each new worktree, as an argv list.")
    setup_timeout: float = Field(default=600.0, gt=0)
    ports: PortsConfig = Field(default_factory=PortsConfig)
    pool: PoolConfig = Field(default_factory=PoolConfig)


class CheckpointConfig(_Strict):
    max_untracked_size: ByteSize = 10 * 1000**2


class ScoutConfig(_Strict):
    top: int = Field(default=10, ge=1, le=200)


AgentKind = Literal["spec-apply", "pytest", "ruff", "summary", "claude", "codex", "aider", "command", "acp"]
# How an `acp` phase answers the agent's permission requests: ask whoever watches (denied after
# `permission_timeout` when nobody answers), allow reads and edits inside the worktree, allow everything, or
# deny everything.
PermissionPolicy = Literal["ask", "allow-edits", "allow-all", "deny"]


class PhaseConfig(_Strict):
    agent: AgentKind
    prompt: str = Field(
        default="",
        description="Prompt template for LLM agents: {spec}, {spec_text}, {worktree}, {task}, {phase}.",
    )
    command: list[str] = Field(
        default_factory=list,
        description="argv template for the `command` agent; the ACP agent's argv for `acp` "
        '(e.g. ["claude-code-acp"], ["gemini", "--experimental-acp"]).',
    )
    permissions: PermissionPolicy = Field(
        default="allow-edits",
        description="`acp` agents: how their permission requests are answered (ask, allow-edits, allow-all, deny).",
    )
    permission_timeout: float = Field(
        default=60.0,
        gt=0,
        description='`acp` agents with permissions = "ask": seconds until an unanswered request is denied.',
    )
    model: str = Field(
        default="",
        description="Model of the phase's agent: claude/codex/aider `--model`, {model} in a command template. "
        "Empty: the CLI's own default (aider has none: it needs one).",
    )
    timeout: float = Field(default=1800.0, gt=0, description="Wall-clock limit of one attempt, in seconds.")
    inactivity_timeout: float = Field(default=300.0, gt=0, description="Stop an agent silent for this long.")
    retries: int = Field(default=2, ge=0, le=10, description="Extra attempts after a retryable failure.")
    retry_backoff: float = Field(default=2.0, ge=0, description="First retry delay (s); doubles.")
    memory_limit: ByteSize | None = None
    env: dict[str, str] = Field(default_factory=dict)
    writes: list[str] | None = Field(
        default=None,
        description="Globs of the files the phase may change (`**` any depth; no `/` = any folder); writes "
        "elsewhere are undone. Default by phase: plan, test, review nothing; document docs; others everything.",
    )
    baseline: bool | None = Field(
        default=None,
        description="Judge findings against a run on the base commit (default: test and review phases run "
        "by pytest, ruff or command).",
    )
    block_on: Literal["new", "any"] = Field(
        default="new", description="Which failures fail the phase: only new ones, or pre-existing ones too."
    )


# The SDLC's agent phases, in order; `[tool.adw.phases.<phase>]` configures one of them.
PhaseName = Literal["plan", "build", "test", "review", "document"]
PHASES: tuple[PhaseName, ...] = get_args(PhaseName)


def _default_phases() -> dict[PhaseName, PhaseConfig]:
    return {
        "plan": PhaseConfig(agent="spec-apply"),
        "build": PhaseConfig(agent="spec-apply"),
        "test": PhaseConfig(agent="pytest"),
        "review": PhaseConfig(agent="ruff"),
        "document": PhaseConfig(agent="summary"),
    }


# Agent APIs rate-limit well before a machine runs out of cores: the most agents ADW runs at once.
MAX_AGENTS = 8


class AgentsConfig(_Strict):
    claude_permission_mode: str = "acceptEdits"
    claude_allowed_tools: list[str] = Field(default_factory=lambda: ["Read", "Edit", "Write", "Bash", "Glob", "Grep"])
    claude_max_retries: int = Field(
        default=2, ge=0, description="CLAUDE_CODE_MAX_RETRIES; its default, 10, fails after ~3 min."
    )
    test_command: list[str] | None = Field(
        default=None,
        min_length=1,
        description="argv of the `pytest` agent; a leading `python` means the interpreter running ADW. Unset, the"
        " test phase discovers the project's own environment (adw/agents/environment.py).",
    )
    max_agents: int | None = Field(default=None, ge=1, le=MAX_AGENTS)
    stop_grace: float = Field(default=5.0, gt=0, description="Seconds between SIGINT, SIGTERM and SIGKILL.")
    sample_interval: float = Field(default=1.0, gt=0, description="Seconds between CPU/memory samples.")


ForgeKind = Literal["github", "gitlab", "bitbucket"]


class ForgeConfig(_Strict):
    remote: str = Field(default="origin", description="The git remote whose host is the forge.")
    host: str | None = Field(
        default=None, description="Host name of a self-hosted forge (GitHub Enterprise, GitLab), e.g. git.corp.example."
    )
    kind: ForgeKind | None = Field(default=None, description="What `host` runs: github, gitlab or bitbucket.")
    api_url: str | None = Field(
        default=None,
        description="Base URL of its REST API when not the usual one (https://HOST/api/v3 for GitHub Enterprise, "
        "https://HOST/api/v4 for GitLab).",
    )
    prompts: dict[str, dict[PhaseName, str]] = Field(
        default_factory=dict,
        description="Per issue kind (bug, feature, chore), prompt templates of phases, over the built-in ones.",
    )


NotifyEvent = Literal["needs-input", "finished", "failed"]


class NotifyConfig(_Strict):
    """How `adw sdlc` on a terminal tells you, while you look elsewhere, that an agent needs you or a workflow
    ended (the editor has its own setting, `adw.notifications`)."""

    on: list[NotifyEvent] = Field(
        default=["needs-input", "finished", "failed"], description="What is worth a notification."
    )
    bell: bool = Field(default=True, description="Ring the terminal's bell.")
    desktop: bool = Field(default=True, description="A desktop notification through `notify-send`, where installed.")


class LspConfig(_Strict):
    spec_glob: str = "specs/**/*.md"


ExecutorKind = Literal["local", "ray"]


class AdwConfig(_Strict):
    executor: ExecutorKind = Field(
        default="local",
        description="Where agent phases run: `local`, in ADW's own process; `ray`, as tasks of a Ray cluster "
        "(needs `pip install 'adw[ray]'`).",
    )
    address: str = Field(
        default="auto",
        min_length=1,
        description='With executor = "ray": the cluster, `auto` (the one started on this machine, or RAY_ADDRESS) '
        "`HOST:6379` (its head node's GCS port, from a machine of the cluster) or `ray://HOST:10001` (Ray Client).",
    )
    secrets: list[str] = Field(
        default_factory=lambda: ["ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "OPENAI_API_KEY", "GEMINI_API_KEY"],
        description='With executor = "ray": the environment variables each agent phase gets from ADW\'s own '
        "environment (API keys), passed by name with its task, never written to a pack or a log.",
    )
    worktree: WorktreeConfig = Field(default_factory=WorktreeConfig)
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    scout: ScoutConfig = Field(default_factory=ScoutConfig)
    agents: AgentsConfig = Field(default_factory=AgentsConfig)
    phases: dict[PhaseName, PhaseConfig] = Field(default_factory=_default_phases)
    lsp: LspConfig = Field(default_factory=LspConfig)
    forge: ForgeConfig = Field(default_factory=ForgeConfig)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)


def phase_configs(config: AdwConfig) -> dict[str, PhaseConfig]:
    """Configured phases over the defaults: configuring one phase keeps the built-in agents for the rest."""
    return {name: phase for name, phase in (_default_phases() | config.phases).items()}


# Validated configurations by main worktree, with the stamp of the files they came from.
_memo: dict[Path, tuple[tuple[object, ...], AdwConfig]] = {}
# A file changed less than this before it was read may change again within the same timestamp: not reused.
_RACY_S = 2.0


def load_config(root: Path, cache: Path | None = None) -> AdwConfig:
    """Read `.adw.toml` (preferred) or `[tool.adw]` of pyproject.toml under `root`; defaults when neither exists.

    The validated result is reused while the files' stat is unchanged: in this process, and across processes
    through `cache` (a pickle in the git dir, where only this repository's own tools write)."""
    stamp = _stamp(root)
    memo = _memo.get(root)
    if memo is not None and memo[0] == stamp:
        return memo[1]
    config = _cached(cache, stamp) if cache is not None else None
    if config is None:
        config = _read(root)
        if not _racy(stamp) and cache is not None:
            with contextlib.suppress(OSError):
                write_inside(cache.parent, cache.name, pickle.dumps((stamp, config)))
    if not _racy(stamp):
        _memo[root] = (stamp, config)
    return config


def _stamp(root: Path) -> tuple[object, ...]:
    """What identifies the configuration's sources: each file's inode, size and times, and ADW's own code."""
    parts: list[object] = [Path(__file__).stat().st_mtime_ns]
    for name in (".adw.toml", "pyproject.toml"):
        try:
            found = os.stat(root / name)
        except OSError:
            parts.append(None)
            continue
        parts.append((found.st_ino, found.st_size, found.st_mtime_ns, found.st_ctime_ns))
    return tuple(parts)


def _racy(stamp: tuple[object, ...]) -> bool:
    newest = max((part[2] for part in stamp[1:] if isinstance(part, tuple)), default=0)
    return isinstance(newest, int) and time.time_ns() - newest < _RACY_S * 1e9


def _cached(cache: Path, stamp: tuple[object, ...]) -> AdwConfig | None:
    try:
        stored, config = pickle.loads(cache.read_bytes())  # ADW's own file in the git dir, like its hooks
    except (OSError, ValueError, EOFError, TypeError, AttributeError, ImportError, pickle.UnpicklingError):
        return None
    return config if stored == stamp and isinstance(config, AdwConfig) else None


def _read(root: Path) -> AdwConfig:
    for name, table_path in ((".adw.toml", ()), ("pyproject.toml", ("tool", "adw"))):
        file = root / name
        if not file.is_file():
            continue
        try:
            data: Any = tomllib.loads(file.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"{file} is not valid TOML: {exc}", "fix the syntax error at the position shown"
            ) from None
        for key in table_path:
            data = data.get(key) if isinstance(data, dict) else None
        if data is None:
            continue
        prefix = ".".join(table_path)
        try:
            return AdwConfig.model_validate(data)
        except ValidationError as exc:
            hint = f"see docs/CONFIGURATION.md for the keys of {prefix or 'the file'}"
            raise ConfigError(_describe(exc, file, prefix), hint) from None
    return AdwConfig()


def _describe(exc: ValidationError, file: Path, prefix: str) -> str:
    problems = []
    for error in exc.errors():
        loc = error["loc"]
        # pydantic reports a bad dict key as `<key>.[key]`: the only dict keyed by a Literal is `phases`
        bad_phase = loc[-1:] == ("[key]",)
        key = ".".join(str(part) for part in (*([prefix] if prefix else []), *(loc[:-1] if bad_phase else loc)))
        if bad_phase:
            reason = f"unknown phase; the phases are {', '.join(PHASES)}"
        else:
            reason = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
        problems.append(f"{key}: {reason}")
    return f"invalid ADW configuration in {file}: " + "; ".join(problems)
