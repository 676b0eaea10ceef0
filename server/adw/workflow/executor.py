"""Where an agent phase runs. The engine schedules, checkpoints and judges; an executor only runs one phase's
agent in its worktree and reports through the task's events. `local` runs it in this process (the default);
`ray` runs it as a task on a Ray cluster (adw.workflow.ray_executor, imported only when asked for)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel

from adw.config import AdwConfig, AgentsConfig
from adw.errors import AdwError
from adw.workflow.agent import AgentFactory, CancelToken
from adw.workflow.events import TaskEvents
from adw.workflow.models import AgentResult, Task, Workflow

RAY_INSTALL = "pip install 'adw[ray]'"


@dataclass(frozen=True)
class Phase:
    """One agent phase to run: the agent's factory and what it is made from, the task, and its worktree."""

    factory: AgentFactory
    workflow: Workflow
    settings: AgentsConfig
    task: Task
    worktree: Path


@dataclass(frozen=True)
class AgentSlotCount:
    """The agent slots of the machines an executor runs phases on: `where` names them ("the Ray cluster at …")."""

    where: str
    total: int
    free: int


class Executor(Protocol):
    async def run(self, phase: Phase, events: TaskEvents, cancel: CancelToken) -> AgentResult:
        """Run the phase's agent until it ends or `cancel` fires, leaving its worktree as the agent left it.
        Failures are returned as a failed result, as `Agent.run` does."""
        ...

    async def agent_slots(self) -> AgentSlotCount | None:
        """The agent slots of the executor's cluster; None when phases run on this machine (capped by it)."""
        ...

    def close(self) -> None:
        """Let go of what the executor holds (a cluster connection); running phases have ended."""
        ...


class LocalExecutor:
    """The agent runs in this process's event loop, in the worktree itself."""

    async def run(self, phase: Phase, events: TaskEvents, cancel: CancelToken) -> AgentResult:
        agent = phase.factory(phase.workflow, phase.settings)
        return await agent.run(phase.task, phase.worktree, events, cancel)

    async def agent_slots(self) -> AgentSlotCount | None:
        return None

    def close(self) -> None:
        pass


class RayMissingError(AdwError):
    pass


class ClusterNode(BaseModel):
    node_id: str
    address: str
    alive: bool
    agent_slots: int
    cpus: float


class RunningPhase(BaseModel):
    """A phase ADW started on the cluster, as its node recorded it (in ADW's record on the cluster)."""

    workflow_id: str
    workflow: str  # its name
    task_id: str
    phase: str
    agent: str
    node_id: str
    host: str
    since: float  # when it started on its node (seconds since the epoch)


class ClusterStatus(BaseModel):
    """A Ray cluster as `adw cluster status` shows it. Phases running = agent slots taken (each takes one);
    `phases` names those ADW started, on the nodes alive, oldest first."""

    address: str
    nodes: list[ClusterNode]
    agent_slots: int
    free_agent_slots: int
    phases: list[RunningPhase] = []

    @property
    def running_phases(self) -> int:
        return self.agent_slots - self.free_agent_slots


def open_executor(config: AdwConfig) -> Executor:
    """The executor `config` asks for. Ray is imported in this module only, when asked for."""
    if config.executor == "local":
        return LocalExecutor()
    with _needs_ray():
        from adw.workflow.ray_executor import RayExecutor
    return RayExecutor(config.address, config.secrets)


async def cluster_status(address: str) -> ClusterStatus:
    """The nodes of the Ray cluster at `address` and its agent slots."""
    with _needs_ray():
        from adw.workflow.ray_executor import read_cluster
    return await read_cluster(address)


@contextlib.contextmanager
def _needs_ray() -> Iterator[None]:
    try:
        yield
    except ModuleNotFoundError as exc:
        if exc.name != "ray" and not (exc.name or "").startswith("ray."):
            raise
        raise RayMissingError(
            "the ray executor needs Ray, which is not installed in ADW's environment",
            f"install it with `{RAY_INSTALL}`, or run with `--executor local`",
            f"install it with `{RAY_INSTALL}` in the Python that runs ADW, or set executor = \"local\"",
        ) from None
