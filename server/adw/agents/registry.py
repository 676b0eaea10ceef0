"""Agent kinds by name, as `[tool.adw.phases.<phase>] agent = "…"` names them."""

from __future__ import annotations

from collections.abc import Callable

from adw.agents.aider import AiderAgent
from adw.agents.base import Agent
from adw.agents.checks import PytestAgent, RuffAgent
from adw.agents.claude import ClaudeAgent
from adw.agents.codex import CodexAgent
from adw.agents.command import CommandAgent
from adw.agents.spec_apply import SpecApplyAgent
from adw.agents.summary import SummaryAgent
from adw.config import AgentsConfig
from adw.workflow.models import Workflow


def builtin_agents() -> dict[str, Callable[[Workflow, AgentsConfig], Agent]]:
    return {
        "spec-apply": SpecApplyAgent,
        "pytest": PytestAgent,
        "ruff": RuffAgent,
        "summary": SummaryAgent,
        "claude": ClaudeAgent,
        "codex": CodexAgent,
        "aider": AiderAgent,
        "command": CommandAgent,
    }
