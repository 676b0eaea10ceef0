"""Configuration: `[tool.adw]` in the repository's pyproject.toml, or `.adw.toml` beside it.

Every model forbids unknown keys, so a typo is an error naming the key path and the file, not a silent default.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from adw.errors import ConfigError

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
    model_config = ConfigDict(extra="forbid", frozen=True)


class PortsConfig(_Strict):
    base: int = Field(default=41000, ge=1024, le=65535)
    size: int = Field(default=10, ge=1, le=1000)


class WorktreeConfig(_Strict):
    root: str = Field(
        default="../{repo}.worktrees",
        description="Folder for new worktrees, relative to the main worktree; {repo} is the repository's name.",
    )
    branch_prefix: str = "adw/"
    setup: list[str] = Field(default_factory=list, description="Command run in each new worktree, as an argv list.")
    setup_timeout: float = Field(default=600.0, gt=0)
    ports: PortsConfig = PortsConfig()


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


class LspConfig(_Strict):
    spec_glob: str = "specs/**/*.md"


class AdwConfig(_Strict):
    worktree: WorktreeConfig = WorktreeConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()
    scout: ScoutConfig = ScoutConfig()
    agents: AgentsConfig = AgentsConfig()
    phases: dict[PhaseName, PhaseConfig] = Field(default_factory=_default_phases)
    lsp: LspConfig = LspConfig()
    forge: ForgeConfig = ForgeConfig()


def phase_configs(config: AdwConfig) -> dict[str, PhaseConfig]:
    """Configured phases over the defaults: configuring one phase keeps the built-in agents for the rest."""
    return {name: phase for name, phase in (_default_phases() | config.phases).items()}


def load_config(root: Path) -> AdwConfig:
    """Read `.adw.toml` (preferred) or `[tool.adw]` of pyproject.toml under `root`; defaults when neither exists."""
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
