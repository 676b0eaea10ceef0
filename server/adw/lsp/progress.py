"""Agents in the editor: one work-done progress per running task (fresh token each time, cancellable: a cancel
stops that task only), log lines for clients without progress, diagnostics from each task's findings, and
`adw/changed` whenever a workflow or task changes state.

A client that lists the tasks itself (the extension's Workflows view, each row with its cancel button) asks for
one aggregated progress instead (initializationOptions `{"progress": "aggregate"}`): "4/6 agents, 2 waiting"
while any agent runs or waits for a slot; cancelling it cancels every workflow running."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from pathlib import Path

from lsprotocol import types

from adw.lsp.diagnostics import publish_findings
from adw.lsp.server import AdwServer
from adw.workflow.engine import Engine
from adw.workflow.events import (
    BaseEvent,
    OutputLine,
    Placed,
    Progress,
    TaskFinished,
    TaskStarted,
    ToolUse,
    WorkflowFinished,
    WorkflowStarted,
)

_OUTPUT_EVERY_S = 0.2  # output lines can come by the thousand; the client needs a few per second at most
# A percentage is known when the agent prints one at the end of a line, as pytest does ("....  [ 40%]").
_PERCENT = re.compile(r"(\d{1,3})%\]?\s*$")


class _TaskProgress:
    """One task's progress (or the aggregated one). Messages queue until the client has accepted the token, then
    flow in order."""

    def __init__(self, ls: AdwServer, token: str, title: str) -> None:
        self.ls = ls
        self.token = token
        self.queue: asyncio.Queue[types.WorkDoneProgressReport | types.WorkDoneProgressEnd] = asyncio.Queue()
        self.last_output = 0.0
        ls.spawn(self._run(title))

    async def _run(self, title: str) -> None:
        try:
            await self.ls.work_done_progress.create_async(self.token)
        except Exception:  # a client may refuse; the task runs on regardless
            return
        self.ls.work_done_progress.begin(
            self.token, types.WorkDoneProgressBegin(title=title, cancellable=True, message="starting")
        )
        while True:
            item = await self.queue.get()
            if isinstance(item, types.WorkDoneProgressEnd):
                self.ls.work_done_progress.end(self.token, item)
                return
            self.ls.work_done_progress.report(self.token, item)


def agents_text(running: int, waiting: int) -> str:
    """The aggregated progress's message: `4/6 agents, 2 waiting`."""
    return f"{running}/{running + waiting} agents" + (f", {waiting} waiting" if waiting else "")


class _Aggregate:
    """The one progress of an aggregating client: begun when an agent runs or waits, ended when none does.
    Counts are read a moment after an event, once the engine has started the tasks that event made ready."""

    def __init__(self, ls: AdwServer) -> None:
        self.ls = ls
        self.progress: _TaskProgress | None = None
        self.message = ""
        self.pending = False

    def touch(self, engine: Engine) -> None:
        if not self.pending:
            self.pending = True
            asyncio.get_running_loop().call_later(_OUTPUT_EVERY_S, self._update, engine)

    def _update(self, engine: Engine) -> None:
        self.pending = False
        running, waiting = engine.agent_load()
        if not running and not waiting:
            if self.progress is not None:
                self.progress.queue.put_nowait(types.WorkDoneProgressEnd(message="no agent running"))
                self.progress = None
            return
        message = agents_text(running, waiting)
        if self.progress is None:
            self.progress, self.message = _TaskProgress(self.ls, f"adw-{uuid.uuid4()}", "ADW"), ""
        if message != self.message:
            self.message = message
            self.progress.queue.put_nowait(types.WorkDoneProgressReport(message=message))

    def cancel(self, engine: Engine, token: str) -> bool:
        if self.progress is None or self.progress.token != token:
            return False
        running = [wf.id for wf in engine.workflows() if not wf.state.done]
        return any([engine.cancel(wf, reason="cancelled from the editor") for wf in running])


class AgentView:
    def __init__(self, ls: AdwServer) -> None:
        self.ls = ls
        self.by_task: dict[tuple[str, str], _TaskProgress] = {}
        self.by_token: dict[str, tuple[str, str]] = {}
        self.aggregate = _Aggregate(ls)

    def aggregating(self) -> bool:
        """Whether the client asked for one aggregated progress (and can show progress at all)."""
        return self.ls.options.get("progress") == "aggregate" and self.ls.supports("window.work_done_progress")

    def handle(self, engine: Engine, event: BaseEvent) -> None:
        key = (event.workflow_id, event.task_id or "")
        aggregating = self.aggregating()
        match event:
            case WorkflowStarted() | WorkflowFinished():
                self.ls.changed("workflows")
            case TaskStarted():
                self._started(engine, event, key, aggregating)
            case TaskFinished():
                self._finished(engine, event, key)
            case ToolUse() if not aggregating:
                self._message(f"{event.tool} {event.detail}".strip(), key, event)
            case Progress() if not aggregating:
                self._message(event.message, key, event)
            case Placed():  # the Workflows view shows the node
                self.ls.changed("workflows")
            case OutputLine() if not aggregating:
                self._message(event.text.strip()[:120], key, event)
        if aggregating and isinstance(event, TaskStarted | TaskFinished | WorkflowStarted | WorkflowFinished):
            self.aggregate.touch(engine)

    def _started(self, engine: Engine, event: TaskStarted, key: tuple[str, str], aggregating: bool) -> None:
        workflow = engine.get(event.workflow_id)
        title = f"ADW {workflow.name}: {event.phase} ({event.agent})"
        # An aggregating client gets neither: the aggregated progress counts the task, its view shows it.
        if self.ls.supports("window.work_done_progress") and not aggregating:
            token = f"adw-{uuid.uuid4()}"  # never reused: pygls refuses a token it has seen
            self.by_task[key] = _TaskProgress(self.ls, token, title)
            self.by_token[token] = key
        elif not aggregating:
            self.ls.log(f"{title}: started")
        self.ls.changed("workflows")

    def _message(self, text: str, key: tuple[str, str], event: ToolUse | Progress | OutputLine) -> None:
        output = isinstance(event, OutputLine)
        progress = self.by_task.get(key)
        if progress is None:
            if not output:
                self.ls.log(f"ADW {event.workflow_id}/{event.task_id}: {text}")
            return
        now = time.monotonic()
        if output:
            if now - progress.last_output < _OUTPUT_EVERY_S:
                return
            progress.last_output = now
        found = _PERCENT.search(text)
        percentage = min(int(found.group(1)), 100) if found else None
        progress.queue.put_nowait(types.WorkDoneProgressReport(message=text, percentage=percentage))

    def _finished(self, engine: Engine, event: TaskFinished, key: tuple[str, str]) -> None:
        verdict = str(event.state) + (f": {event.reason}" if event.reason else "")
        progress = self.by_task.pop(key, None)
        if progress is not None:
            self.by_token.pop(progress.token, None)
            progress.queue.put_nowait(types.WorkDoneProgressEnd(message=verdict))
        elif not self.aggregating():
            self.ls.log(f"ADW {event.workflow_id}/{event.task_id}: {verdict}")
        if event.retry_in is None and event.task_id:
            workflow = engine.get(event.workflow_id)
            task = workflow.task(event.task_id)
            # Keyed by worktree and phase: the next run's findings of the same phase replace these.
            publish_findings(self.ls, f"findings:{workflow.cwd}:{task.phase}", Path(workflow.cwd), task.findings)
        self.ls.changed("workflows")

    def cancel(self, engine: Engine, token: str) -> bool:
        if self.aggregate.cancel(engine, token):
            return True
        key = self.by_token.get(token)
        if key is None:
            return False
        return bool(engine.cancel(key[0], key[1], reason="cancelled from the editor"))


def register(server: AdwServer) -> None:
    view = AgentView(server)

    async def pump(engine: Engine) -> None:
        async with engine.subscribe() as events:
            async for event in events:
                view.handle(engine, event)

    def start(engine: Engine) -> None:
        server.spawn(pump(engine))

    server.engine_listeners.append(start)

    @server.feature(types.WINDOW_WORK_DONE_PROGRESS_CANCEL)
    async def cancel_progress(ls: AdwServer, params: types.WorkDoneProgressCancelParams) -> None:
        for engine in ls.open_engines():
            if view.cancel(engine, str(params.token)):
                return
