"""Workflow engine speed: orchestration overhead per task, and parallel against sequential speedups.

    .venv/bin/python benchmarks/parallel.py [--phase-seconds 0.5] [--tasks 300] [--json]

1. Overhead: a chain of no-op in-process agents (each task depends on the previous one, so nothing overlaps),
   with every state change persisted to a SQLite store as in a real run; wall time divided by tasks.
2. Five SDLC workflows (the real 8-task graph of `adw sdlc`) whose agent phases each wait a fixed time
   (simulated I/O-bound agents; the git steps and checkpoints are left out), all at once against one after
   another, with the agent cap at its maximum of 8 and at 15 (enough for all 15 test/review/document tasks).
3. Six independent tasks of the same fixed wait, all at once against one at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from adw.config import AdwConfig, AgentsConfig, PhaseConfig
from adw.sdlc.pipeline import sdlc_workflow
from adw.workflow.agent import CancelToken
from adw.workflow.engine import Engine
from adw.workflow.events import TaskEvents
from adw.workflow.models import AgentResult, Task, TaskState, Workflow
from adw.workflow.store import Store


class Wait:
    """An agent that waits `seconds` without using the CPU, like an agent waiting on its API."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self, workflow: Workflow, settings: AgentsConfig) -> Wait:
        return self

    async def run(self, task: Task, worktree: Path, events: TaskEvents, cancel: CancelToken) -> AgentResult:
        if self.seconds:
            await asyncio.sleep(self.seconds)
        return AgentResult(status="succeeded", summary="waited")


def engine(store_dir: Path, seconds: float, max_agents: int) -> Engine:
    agents = dict.fromkeys(("spec-apply", "pytest", "ruff", "summary", "sim"), Wait(seconds))
    agents.update(dict.fromkeys(("worktree", "commit", "merge-preview"), Wait(0)))
    store = Store(store_dir / f"state-{time.monotonic_ns()}.db")
    return Engine(store, AdwConfig(), max_agents=max_agents, agents=agents)


def sim_task(task_id: str, deps: list[str] | None = None) -> Task:
    return Task(id=task_id, phase=task_id, agent="sim", deps=deps or [], config=PhaseConfig(agent="command"))


def flat_workflow(root: Path, tasks: list[Task], name: str) -> Workflow:
    return Workflow(id=name, name=name, repo=str(root), cwd=str(root), tasks=tasks)


async def overhead(root: Path, count: int) -> float:
    tasks = [sim_task(f"t{i}", [f"t{i - 1}"] if i else []) for i in range(count)]
    runner = engine(root, 0, 1)
    started = time.perf_counter()
    result = await runner.run(flat_workflow(root, tasks, "chain"))
    elapsed = time.perf_counter() - started
    assert result.state is TaskState.SUCCEEDED
    return elapsed / count


async def timed(runner: Engine, workflows: list[Workflow], together: bool) -> float:
    started = time.perf_counter()
    if together:
        results = await runner.run_all(workflows)
    else:
        results = [await runner.run(wf) for wf in workflows]
    assert all(wf.state is TaskState.SUCCEEDED for wf in results)
    return time.perf_counter() - started


async def sdlc_speedup(root: Path, seconds: float, max_agents: int) -> tuple[float, float]:
    def five() -> list[Workflow]:
        workflows = [sdlc_workflow(root, root / f"spec{i}.md", AdwConfig()) for i in range(5)]
        for task in (task for wf in workflows for task in wf.tasks):
            task.checkpoint = False  # git work, measured with the git core; here only orchestration counts
        return workflows

    sequential = await timed(engine(root, seconds, max_agents), five(), together=False)
    parallel = await timed(engine(root, seconds, max_agents), five(), together=True)
    return sequential, parallel


async def independent_speedup(root: Path, seconds: float) -> tuple[float, float]:
    def six(name: str) -> list[Workflow]:
        return [flat_workflow(root, [sim_task(f"t{i}") for i in range(6)], name)]

    sequential = await timed(engine(root, seconds, 1), six("one-at-a-time"), together=True)
    parallel = await timed(engine(root, seconds, 6), six("all-at-once"), together=True)
    return sequential, parallel


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--phase-seconds", type=float, default=0.5, help="fixed wait of each simulated phase")
    parser.add_argument("--tasks", type=int, default=300, help="tasks in the overhead chain")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="adw-bench-") as folder:
        root = Path(folder)
        per_task = await overhead(root, args.tasks)
        rows = {"overhead_ms_per_task": round(per_task * 1000, 3)}
        for cap in (8, 15):
            sequential, parallel = await sdlc_speedup(root, args.phase_seconds, cap)
            rows[f"sdlc5_max_agents_{cap}"] = {
                "sequential_s": round(sequential, 3),
                "parallel_s": round(parallel, 3),
                "speedup": round(sequential / parallel, 2),
            }
        sequential, parallel = await independent_speedup(root, args.phase_seconds)
        rows["independent6"] = {
            "sequential_s": round(sequential, 3),
            "parallel_s": round(parallel, 3),
            "speedup": round(sequential / parallel, 2),
        }
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(
        f"orchestration overhead: {rows['overhead_ms_per_task']} ms per task "
        f"({args.tasks} no-op tasks, persisted to SQLite)"
    )
    for key, value in rows.items():
        if isinstance(value, dict):
            print(
                f"{key:<22} sequential {value['sequential_s']:6.2f} s   parallel {value['parallel_s']:6.2f} s"
                f"   speedup {value['speedup']:.2f}x"
            )


if __name__ == "__main__":
    asyncio.run(main())
