"""Agent kinds by name, as `[tool.adw.phases.<phase>] agent = "…"` names them."""

from __future__ import annotations

from adw.agents.acp_agent import AcpAgent
from adw.agents.aider import AiderAgent
from adw.agents.checks import PytestAgent, RuffAgent
from adw.agents.claude import ClaudeAgent
from adw.agents.codex import CodexAgent
from adw.agents.command import CommandAgent
from adw.agents.spec_apply import SpecApplyAgent
from adw.agents.summary import SummaryAgent
from adw.workflow.agent import AgentFactory


def builtin_agents() -> dict[str, AgentFactory]:
    return {
        "spec-apply": SpecApplyAgent,
        "pytest": PytestAgent,
        "ruff": RuffAgent,
        "summary": SummaryAgent,
        "claude": ClaudeAgent,
        "codex": CodexAgent,
        "aider": AiderAgent,
        "command": CommandAgent,
        "acp": AcpAgent,
    }
