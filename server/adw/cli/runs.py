"""`adw status | cancel | logs | timeline`: readers of the workflow store.

They open the engine without agent factories: reading, cancelling (the owning process stops the agents) and
listing events run no agent, so these commands load none of the agents, SDLC steps, scouts or forge clients
that `adw sdlc` needs (issue #14: `adw status` answers near the git it drives).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, NoReturn

from adw.cli.output import add_json_flag, emit
from adw.errors import AdwError
from adw.workflow.engine import Engine
from adw.workflow.events import (
    BaseEvent,
    CostReported,
    FindingReported,
    OutputLine,
    PermissionAnswered,
    PermissionAsked,
    Placed,
    Progress,
    ResourceSample,
    TaskFinished,
    TaskStarted,
    ToolUse,
)
from adw.workflow.models import Workflow
from adw.workflow.timeline import timeline
from adw.workflow.timeline_render import html, svg, text

_WATCH_INTERVAL = 0.5


def register(subparsers: Any) -> None:
    status = subparsers.add_parser("status")
    status.add_argument("id", nargs="?", help="a workflow id (a unique prefix will do)")
    status.add_argument("--watch", action="store_true", help="refresh live until the workflows end")
    add_json_flag(status)
    status.set_defaults(handler=_status)

    cancel = subparsers.add_parser("cancel")
    cancel.add_argument("id", help="a workflow id")
    cancel.add_argument("--task", metavar="T", help="only this task (and so what depends on it)")
    add_json_flag(cancel)
    cancel.set_defaults(handler=_cancel)

    logs = subparsers.add_parser("logs")
    logs.add_argument("id", help="a workflow id")
    logs.add_argument("--task", metavar="T", help="only this task")
    logs.add_argument(
        "--follow", action="store_true", help="keep printing the transcript as the agent works, until the run ends"
    )
    add_json_flag(logs)
    logs.set_defaults(handler=_logs)

    drawn = subparsers.add_parser(
        "timeline",
        description="Who ran when in a run (the workflows started together): a lane per workflow, a bar per task "
        "attempt and per wait for an agent slot, the critical path, and the speedup over one task after another.",
    )
    drawn.add_argument(
        "id", nargs="?", help="a run id, or the id (or a unique prefix) of any workflow of the run; default: the newest"
    )
    drawn.add_argument("--html", metavar="FILE", help="also write a self-contained page (opens in any browser)")
    drawn.add_argument("--svg", metavar="FILE", help="also write the picture as an SVG file")
    add_json_flag(drawn)
    drawn.set_defaults(handler=_timeline)


@contextlib.asynccontextmanager
async def _store(cwd: str | Path) -> AsyncIterator[Engine]:
    """The engine as a window on the repository's store: no agents, since nothing here runs one."""
    engine = await Engine.open(cwd, agents={})
    try:
        yield engine
    finally:
        engine.close()


async def _status(args: argparse.Namespace) -> int:
    async with _store(args.cwd) as engine:
        if args.watch and not args.json:
            await _watch(engine, args.id)
            return 0
        if args.id:
            workflow = engine.get(args.id)
            emit(args, workflow, "")
            if not args.json:
                print(_tasks_table(workflow))
            return 0
        workflows = engine.store.recent() if engine.store else []
        emit(
            args,
            {"workflows": workflows},
            "" if workflows else "no workflows yet: start one with `adw sdlc SPEC`",
        )
        if workflows and not args.json:
            print(_workflows_table(workflows))
        return 0


async def _cancel(args: argparse.Namespace) -> int:
    async with _store(args.cwd) as engine:
        workflow = _workflow_of(engine, args)
        if workflow.state.done:
            raise AdwError(
                f"workflow {workflow.id} already ended: {workflow.state.value}", "nothing to cancel"
            )
        assert engine.store is not None
        owner = engine.store.owner_of(workflow.id)
        if owner is not None and owner.alive():
            engine.store.request_cancel(workflow.id, args.task)
            workflow = await _await_cancel(engine, workflow.id, args.task)
        emit(
            args,
            workflow,
            f"{workflow.id}: {workflow.state.value}" + (f" ({workflow.reason})" if workflow.reason else ""),
        )
        return 0


async def _logs(args: argparse.Namespace) -> int:
    async with _store(args.cwd) as engine:
        workflow = _workflow_of(engine, args)
        if args.follow:
            if args.json:
                raise AdwError("--follow prints lines as they come, not one JSON object", "drop --json or --follow")
            await _follow(engine, workflow.id, args.task)
            return 0
        events = engine.store.events(workflow.id, args.task) if engine.store else []
        emit(args, {"workflow": workflow.id, "events": events}, "\n".join(_event_line(e) for e in events))
        return 0


async def _follow(engine: Engine, workflow_id: str, task_id: str | None) -> None:
    """The transcript from the store, which the process running the agent writes to: what is there, then what
    comes, until the workflow is no longer running (a run another process starts meanwhile is followed too)."""
    assert engine.store is not None
    seen = 0
    while True:
        running = not engine.get(workflow_id).state.done
        for event in engine.store.events(workflow_id, task_id, after=seen):
            seen = event.seq
            if not isinstance(event, ResourceSample):
                print(_event_line(event), flush=True)
        if not running:
            return
        await asyncio.sleep(_WATCH_INTERVAL)


async def print_transcript(engine: Engine, workflow_id: str, task_id: str) -> None:
    """A running task's transcript as `adw logs --follow` prints it, from the engine's own events."""
    async with engine.subscribe(workflow_id) as events:
        async for event in events:
            if event.task_id == task_id and not isinstance(event, ResourceSample):
                print(_event_line(event), flush=True)


async def _timeline(args: argparse.Namespace) -> int:
    async with _store(args.cwd) as engine:
        newest = engine.store.recent(1) if engine.store and not args.id else []
        if not args.id and not newest:
            raise AdwError("no workflows yet, so no run to draw", "start one with `adw sdlc SPEC` or `adw demo`")
        drawn = timeline(await engine.run_of(args.id or newest[0].id))
    written = [
        _write(Path(args.cwd, name), render(drawn), flag)
        for name, render, flag in ((args.html, html, "--html"), (args.svg, svg, "--svg"))
        if name
    ]
    emit(args, drawn, "\n".join([text(drawn), *(f"wrote {path}" for path in written)]))
    return 0


def _write(path: Path, content: str, flag: str) -> Path:
    try:
        path.write_text(content, encoding="utf-8")
    except OSError as exc:
        hint = f"give {flag} a file in a folder you can write to"
        raise AdwError(f"cannot write {path}: {exc.strerror}", hint) from None
    return path


def _workflow_of(engine: Engine, args: argparse.Namespace) -> Workflow:
    """The workflow `args.id` names, checking that it has the task `--task` names."""
    workflow = engine.get(args.id)
    if args.task and not any(t.id == args.task for t in workflow.tasks):
        _no_task(workflow, args.task)
    return workflow


def _no_task(workflow: Workflow, task_id: str) -> NoReturn:
    raise AdwError(
        f"workflow {workflow.id} has no task {task_id!r}",
        f"its tasks: {', '.join(t.id for t in workflow.tasks)}",
    )


async def _await_cancel(engine: Engine, workflow_id: str, task_id: str | None) -> Workflow:
    """The owning process polls for requests and stops the agents; wait until the store shows it."""
    assert engine.store is not None
    deadline = time.monotonic() + engine.settings.stop_grace * 3 + 10
    while True:
        workflow = engine.get(workflow_id)
        target = workflow.task(task_id).state if task_id else workflow.state
        if target.done or time.monotonic() > deadline:
            return workflow
        await asyncio.sleep(0.1)


def _elapsed(start: float | None, end: float | None) -> str:
    if start is None:
        return ""
    return f"{(end or time.time()) - start:.1f}s"


def _cost(value: float | None) -> str:
    return f"${value:.4f}" if value is not None else "—"


def _workflows_table(workflows: list[Workflow]) -> str:
    rows = []
    for wf in workflows:
        phase = wf.current_phase
        agents = ", ".join(sorted({t.agent for t in wf.tasks if t.phase in phase.split("‖")})) if phase else ""
        rows.append(
            [wf.name, wf.id, phase, agents, wf.state.value, _elapsed(wf.started_at, wf.finished_at),
             _cost(wf.usage.cost_usd)]
        )
    return _table("workflows", ["workflow", "id", "phase", "agent", "state", "elapsed", "cost"], rows)


def _tasks_table(workflow: Workflow) -> str:
    rows = [
        [task.id, task.agent, task.state.value, str(len(task.attempts)), _elapsed(task.started_at, task.finished_at),
         _cost(task.usage.cost_usd), str(len(task.findings)), task.summary or task.reason]
        for task in workflow.tasks
    ]
    header = ["task", "agent", "state", "attempts", "elapsed", "cost", "findings", "summary"]
    return _table(f"{workflow.name} [{workflow.id}] — {workflow.state.value}", header, rows)


def _table(title: str, header: list[str], rows: list[list[str]]) -> str:
    """Plain aligned columns under a title, like `adw worktree list` (a table library would cost more to import
    than the whole answer)."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in [header, *rows]]
    return "\n".join([title, *lines])


async def _watch(engine: Engine, workflow_id: str | None) -> None:
    """Redraw from the store, which every ADW process of the repository writes to, until nothing runs. On a
    terminal each frame replaces the last; into a pipe or file only the final one is written."""

    def render() -> tuple[str, bool]:
        if workflow_id:
            workflow = engine.get(workflow_id)
            return _tasks_table(workflow), workflow.state.done
        workflows = engine.store.recent() if engine.store else []
        return _workflows_table(workflows), all(wf.state.done for wf in workflows)

    terminal = sys.stdout.isatty()
    while True:
        table, done = render()
        if terminal or done:
            sys.stdout.write(("\x1b[H\x1b[2J" if terminal else "") + table + "\n")  # home, clear screen
            sys.stdout.flush()
        if done:
            return
        await asyncio.sleep(_WATCH_INTERVAL)


def _event_line(event: BaseEvent) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime(event.time))
    head = f"{stamp}  {event.task_id or '-':<13}"
    if isinstance(event, OutputLine):
        return f"{head} {'!' if event.stream == 'stderr' else '|'} {event.text}"
    if isinstance(event, ToolUse):
        return f"{head} tool {event.tool} {event.detail}"
    if isinstance(event, Progress):
        return f"{head} … {event.message}"
    if isinstance(event, Placed):
        return f"{head} … placed on node {event.node}"
    if isinstance(event, FindingReported):
        f = event.finding
        return f"{head} {f.severity.value} {f.path}:{f.line or ''} {f.message}"
    if isinstance(event, CostReported):
        usage = event.usage
        return f"{head} cost {_cost(usage.cost_usd)} tokens {usage.input_tokens}/{usage.output_tokens}"
    if isinstance(event, ResourceSample):
        return (
            f"{head} cpu {event.cpu_percent:.0f}% rss {event.rss / 1e6:.0f} MB ({event.processes} processes)"
        )
    if isinstance(event, TaskStarted):
        return f"{head} started {event.agent} (attempt {event.attempt})"
    if isinstance(event, TaskFinished):
        return f"{head} {event.state.value} {event.summary or event.reason}"
    if isinstance(event, PermissionAsked):
        return f"{head} asks permission: {event.tool} {' '.join(event.paths)}".rstrip()
    if isinstance(event, PermissionAnswered):
        return f"{head} permission {(event.choice or 'unanswered').replace('_', ' ')} ({event.by})"
    return f"{head} {event.type}"
