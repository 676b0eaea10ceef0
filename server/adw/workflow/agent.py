"""The one interface every agent implements, the cancel token the engine hands it, and the factory that makes
an agent for a workflow. The engine runs whatever factories it is given; the agents themselves live above it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from adw.config import AgentsConfig
from adw.workflow.events import TaskEvents
from adw.workflow.models import AgentResult, Task, TaskState, Workflow


class CancelToken:
    """Asks a running agent to stop. The first request wins and says why and which state the task ends in:
    a user's cancel ends `cancelled`, a timeout or memory cap `failed`."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.reason = ""
        self.state = TaskState.CANCELLED

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def cancel(self, reason: str, state: TaskState = TaskState.CANCELLED) -> None:
        if self.requested:
            return
        self.reason, self.state = reason, state
        self._event.set()

    async def wait(self) -> None:
        await self._event.wait()


class Agent(Protocol):
    async def run(self, task: Task, worktree: Path, events: TaskEvents, cancel: CancelToken) -> AgentResult:
        """Do the task's work in `worktree`, reporting through `events`, stopping soon after `cancel` fires.

        Expected failures (tool missing, tests failing, agent error) are returned as a failed result whose
        reason says what to do; raising is for bugs.
        """
        ...


AgentFactory = Callable[[Workflow, AgentsConfig], Agent]
