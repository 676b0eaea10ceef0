"""The timeline of a run (the workflows started together): who ran when, as `adw timeline` and the editor draw it.

Computed from the workflows alone (the store's or the engine's live ones), so a finished run and one still going
look alike: a lane per workflow, a bar per task attempt and per wait for an agent slot, checkpoints as ticks, the
measured critical path, and the speedup over running the same attempts one after another.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from enum import StrEnum

from pydantic import BaseModel

from adw.workflow.models import Attempt, Task, TaskState, Usage, Workflow


class BarState(StrEnum):
    QUEUED = "queued"  # ready, waiting for an agent slot
    RUNNING = "running"
    RETRIED = "retried"  # failed, and another attempt followed
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"
    SUCCEEDED = "succeeded"


class Bar(BaseModel):
    """One span of a task on its lane; times are seconds since the run started."""

    workflow_id: str
    task_id: str
    phase: str
    agent: str
    attempt: int  # the attempt it ran or waited for
    state: BarState
    start: float
    end: float
    critical: bool = False
    reason: str = ""
    usage: Usage = Usage()

    @property
    def duration(self) -> float:
        return self.end - self.start


class Tick(BaseModel):
    """A checkpoint taken around a task (`adw undo --to number` goes back to it)."""

    task_id: str
    number: int
    when: str  # "before" or "after" the task
    at: float


class Lane(BaseModel):
    workflow_id: str
    name: str
    state: TaskState
    repo: str  # where `adw logs` finds its tasks' logs
    worktree: str | None = None
    bars: list[Bar]
    ticks: list[Tick]
    usage: Usage


class Timeline(BaseModel):
    """`wall` runs from the first task ready to the last one ended (or now); `sequential` is the sum of every
    attempt's running time, what the same attempts take one after another; `speedup` is their ratio.
    `slot_wait` sums the time tasks waited for an agent slot; `critical_path` names the tasks
    (`workflow/task`) each of which the next one waited for, ending with the task that ended last."""

    run_id: str
    started_at: float  # epoch seconds: what the bars' times count from
    live: bool
    wall: float
    sequential: float
    speedup: float | None
    slot_wait: float
    critical_path: list[str]
    usage: Usage
    lanes: list[Lane]


_ATTEMPT_STATES = {
    TaskState.RUNNING: BarState.RUNNING,
    TaskState.FAILED: BarState.FAILED,
    TaskState.CANCELLED: BarState.CANCELLED,
    TaskState.INTERRUPTED: BarState.INTERRUPTED,
    TaskState.SUCCEEDED: BarState.SUCCEEDED,
}


def timeline(workflows: Sequence[Workflow], now: float | None = None) -> Timeline:
    """The timeline of `workflows` (one run); what still runs ends at `now` (default: the clock)."""
    if not workflows:
        raise ValueError("a timeline needs at least one workflow")
    now = time.time() if now is None else now
    live = any(wf.state in (TaskState.RUNNING, TaskState.PENDING) and wf.started_at for wf in workflows)
    starts = [t for wf in workflows for task in wf.tasks for t in _task_starts(task)]
    origin = min(starts, default=min(wf.started_at or wf.created_at for wf in workflows))
    lanes = [_lane(wf, origin, now) for wf in workflows]
    bars = [bar for lane in lanes for bar in lane.bars]
    ran = [bar for bar in bars if bar.state is not BarState.QUEUED]
    wall = max((bar.end for bar in bars), default=0.0)
    sequential = sum(bar.duration for bar in ran)
    path = _critical_path(workflows, ran)
    for bar in ran:
        bar.critical = f"{bar.workflow_id}/{bar.task_id}" in path
    usage = Usage()
    for lane in lanes:
        usage = usage + lane.usage
    return Timeline(
        run_id=workflows[0].run_id or workflows[0].id,
        started_at=origin,
        live=live,
        wall=wall,
        sequential=sequential,
        speedup=sequential / wall if wall > 0 else None,
        slot_wait=sum(bar.duration for bar in bars if bar.state is BarState.QUEUED),
        critical_path=path,
        usage=usage,
        lanes=lanes,
    )


def _task_starts(task: Task) -> list[float]:
    found = [a.queued_at if a.queued_at is not None else a.started_at for a in task.attempts]
    return found + ([task.queued_at] if task.queued_at is not None else [])


def _lane(workflow: Workflow, origin: float, now: float) -> Lane:
    bars: list[Bar] = []
    ticks: list[Tick] = []
    for task in workflow.tasks:
        bars += _bars(workflow, task, origin, now)
        ticks += _ticks(task, origin, now)
    return Lane(
        workflow_id=workflow.id,
        name=workflow.name,
        state=workflow.state,
        repo=workflow.repo,
        worktree=workflow.worktree,
        bars=bars,
        ticks=ticks,
        usage=workflow.usage,
    )


def _bars(workflow: Workflow, task: Task, origin: float, now: float) -> list[Bar]:
    def bar(attempt: int, state: BarState, start: float, end: float, **more: object) -> Bar:
        return Bar.model_validate(
            {
                "workflow_id": workflow.id,
                "task_id": task.id,
                "phase": task.phase,
                "agent": task.agent,
                "attempt": attempt,
                "state": state,
                "start": start - origin,
                "end": max(end, start) - origin,
                **more,
            }
        )

    bars = []
    for attempt in task.attempts:
        if attempt.queued_at is not None and attempt.started_at > attempt.queued_at:
            bars.append(bar(attempt.number, BarState.QUEUED, attempt.queued_at, attempt.started_at))
        bars.append(
            bar(
                attempt.number,
                _attempt_state(task, attempt),
                attempt.started_at,
                attempt.finished_at or _end_of_running(task, now),
                reason=attempt.reason,
                usage=attempt.usage,
            )
        )
    if task.queued_at is not None:  # waiting for a slot now, or cancelled while it waited
        waited_until = task.finished_at if task.state.done and task.finished_at else now
        bars.append(bar(len(task.attempts) + 1, BarState.QUEUED, task.queued_at, waited_until, reason=task.reason))
    return bars


def _end_of_running(task: Task, now: float) -> float:
    # An attempt without an end runs now, unless its task ended (a crash marked it interrupted).
    return task.finished_at if task.state.done and task.finished_at else now


def _attempt_state(task: Task, attempt: Attempt) -> BarState:
    if attempt.state is TaskState.FAILED and attempt.number < len(task.attempts):
        return BarState.RETRIED
    if attempt.state is TaskState.FAILED and attempt.retryable and task.state is TaskState.RUNNING:
        return BarState.RETRIED  # its retry waits out the backoff
    return _ATTEMPT_STATES.get(attempt.state, BarState.FAILED)


def _ticks(task: Task, origin: float, now: float) -> list[Tick]:
    """The checkpoints of a task's last attempt: taken as it starts and just before it ends."""
    numbers = task.outputs.get("checkpoints", {})
    if not task.attempts or not isinstance(numbers, dict):
        return []
    last = task.attempts[-1]
    at = {"before": last.started_at, "after": last.finished_at or _end_of_running(task, now)}
    return [
        Tick(task_id=task.id, number=number, when=when, at=at[when] - origin)
        for when, number in numbers.items()
        if when in at and isinstance(number, int)
    ]


def _critical_path(workflows: Sequence[Workflow], ran: list[Bar]) -> list[str]:
    """From the task that ended last, back through the dependency that ended last before it started: the
    chain that decided when the run ended."""
    ends: dict[str, float] = {}
    for bar in ran:
        key = f"{bar.workflow_id}/{bar.task_id}"
        ends[key] = max(ends.get(key, bar.end), bar.end)
    if not ends:
        return []
    deps = {f"{wf.id}/{task.id}": [f"{wf.id}/{dep}" for dep in task.deps] for wf in workflows for task in wf.tasks}
    path = [max(ends, key=lambda key: ends[key])]
    while True:
        before = [dep for dep in deps.get(path[-1], []) if dep in ends]
        if not before:
            return path[::-1]
        path.append(max(before, key=lambda dep: ends[dep]))
