"""The engine the adapters open: the workflow engine given every built-in agent and SDLC step by name. This is
the one place that knows them all; the engine itself runs whatever factories it is handed."""

from __future__ import annotations

import os

from adw.agents.registry import builtin_agents
from adw.config import ExecutorKind
from adw.sdlc.steps import STEP_AGENTS
from adw.workflow.agent import AgentFactory
from adw.workflow.engine import Engine


def agent_factories() -> dict[str, AgentFactory]:
    """Every kind of agent a phase or step may name: the built-in agents, then the SDLC's steps."""
    return {**builtin_agents(), **STEP_AGENTS}


async def open_engine(
    path: str | os.PathLike[str] = ".",
    *,
    max_agents: int | None = None,
    executor: ExecutorKind | None = None,
    address: str | None = None,
) -> Engine:
    """`Engine.open` on the repository containing `path`, with `agent_factories()`."""
    return await Engine.open(
        path, agents=agent_factories(), max_agents=max_agents, executor=executor, address=address
    )
