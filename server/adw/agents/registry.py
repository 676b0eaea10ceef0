"""Agent kinds by name, as `[tool.adw.phases.<phase>] agent = "…"` names them."""

from __future__ import annotations

from adw.agents.aider import AiderAgent
from adw.agents.checks import PytestAgent, RuffAgent
from adw.agents.claude import ClaudeAgent
from adw.agents.codex import CodexAgent
from adw.agents.command import CommandAgent
from adw.agents.spec_apply import SpecApplyAgent
from adw.agents.summary import SummaryAgent
from adw.config import AgentsConfig
from adw.workflow.agent import Agent, AgentFactory
from adw.workflow.models import Workflow


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
        "acp": _acp_agent,
    }


def _acp_agent(workflow: Workflow, settings: AgentsConfig) -> Agent:
    """The ACP agent, imported when a phase first uses it: the ACP SDK defines ~340 pydantic models, a second or
    more of start-up that every `adw` command and the language server would otherwise pay."""
    from adw.agents.acp_agent import AcpAgent

    return AcpAgent(workflow, settings)
