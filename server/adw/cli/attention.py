"""The person at the terminal while `adw sdlc | resume | demo` runs: agents' permission questions are asked there
(one at a time, while stdin is a terminal), and a question, a finished or a failed workflow rings the bell and
shows a desktop notification (`notify-send`, where installed), as `[tool.adw.notify]` says."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
from collections import deque
from typing import TextIO

from adw.config import NotifyConfig, NotifyEvent
from adw.workflow.engine import Engine
from adw.workflow.events import (
    BaseEvent,
    PermissionAnswered,
    PermissionAsked,
    PermissionChoice,
    WorkflowFinished,
    shown,
)
from adw.workflow.models import TaskState, Workflow

ANSWERED_BY = "the terminal"
_ANSWERS: dict[str, PermissionChoice] = {
    "o": "allow_once", "once": "allow_once", "y": "allow_once", "yes": "allow_once",
    "a": "allow_always", "always": "allow_always",
    "d": "deny", "deny": "deny", "n": "deny", "no": "deny",
}


class Attention:
    def __init__(
        self, engine: Engine, workflows: list[Workflow], config: NotifyConfig,
        stdin: TextIO | None = None, out: TextIO | None = None,
    ) -> None:
        self.engine = engine
        self.names = {wf.id: wf.name for wf in workflows}
        self.config = config
        # Looked up now, not when the module was imported: a test's captured stream may be closed since.
        stdin = stdin or sys.stdin
        self.stdin = stdin
        self.out = out or sys.stderr
        self.interactive = stdin.isatty()
        self.unanswerable = "stdin is not a terminal"  # why questions are not asked here, when they are not
        self.waiting: deque[PermissionAsked] = deque()
        self.current: PermissionAsked | None = None
        self.lines: asyncio.Queue[str] = asyncio.Queue()
        self._notifiers: set[asyncio.Task[None]] = set()
        # Subscribed now, before the workflows run, so no question is published before anyone listens.
        self.events = engine.subscribe(types=[PermissionAsked, PermissionAnswered, WorkflowFinished])

    async def run(self) -> None:
        """Until `stop()`: take questions, answers typed at the terminal and ends of workflows as they come."""
        loop = asyncio.get_running_loop()
        if self.interactive:
            loop.add_reader(self.stdin.fileno(), self._read)
        next_event = asyncio.ensure_future(anext(self.events))
        next_line = asyncio.ensure_future(self.lines.get())
        try:
            while True:
                await asyncio.wait({next_event, next_line}, return_when=asyncio.FIRST_COMPLETED)
                if next_event.done():
                    if isinstance(next_event.exception(), StopAsyncIteration):
                        break  # stopped, and every event before it taken
                    self._event(next_event.result())
                    next_event = asyncio.ensure_future(anext(self.events))
                if next_line.done():
                    self._typed(next_line.result())
                    next_line = asyncio.ensure_future(self.lines.get())
        finally:
            next_event.cancel()
            next_line.cancel()
            if self.interactive:
                loop.remove_reader(self.stdin.fileno())
            if self._notifiers:  # a notify-send still starting is let finish, so none is left a zombie
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(5):
                        await asyncio.gather(*self._notifiers, return_exceptions=True)

    def stop(self) -> None:
        """End `run()` once it has taken the events published so far."""
        self.events.close()

    def _event(self, event: BaseEvent) -> None:
        name = self.names.get(event.workflow_id)
        if name is None:
            return
        match event:
            case PermissionAsked():
                self._notify("needs-input", f"{name} needs you", f"{event.task_id} asks to {shown(event.tool)}")
                if not self.interactive:
                    self._say(f"{self._who(event)} asks to {shown(event.tool)}; {self.unanswerable}, so it is "
                              f"denied in {event.timeout:g} s (set the phase's permissions to allow it)")
                    return
                self.waiting.append(event)
                if self.current is None:
                    self._next()
            case PermissionAnswered() if self.current and event.request_id == self.current.request_id:
                if event.by != ANSWERED_BY:
                    ended = "timed out: denied" if event.by == "timeout" else f"ended ({event.by})"
                    self._say(f"{event.task_id}: {ended}")
                self._next()
            case PermissionAnswered():
                self.waiting = deque(q for q in self.waiting if q.request_id != event.request_id)
            case WorkflowFinished():
                failed = event.state is not TaskState.SUCCEEDED
                detail = f"{event.state.value}" + (f": {event.reason}" if event.reason else "")
                self._notify("failed" if failed else "finished", f"{name} {event.state.value}", detail)

    def _read(self) -> None:
        line = self.stdin.readline()
        if not line:  # the end of input (Ctrl-D, the terminal closed) stays readable: stop watching it
            asyncio.get_running_loop().remove_reader(self.stdin.fileno())
            self.interactive = False
            self.unanswerable = "the terminal's input ended"
        self.lines.put_nowait(line)

    def _typed(self, line: str) -> None:
        if not line:
            self._say(f"{self.unanswerable}: questions are denied when their time runs out")
            self.waiting.clear()
            self.current = None
            return
        if self.current is None:
            return
        choice = _ANSWERS.get(line.strip().lower())
        if choice is None:
            self._prompt()
            return
        self.engine.answer_permission(self.current.request_id, choice, ANSWERED_BY)

    def _next(self) -> None:
        self.current = self.waiting.popleft() if self.waiting else None
        if self.current is not None:
            self._say(f"{self._who(self.current)} asks to {self.current.described()}")
            self._prompt()

    def _prompt(self) -> None:
        assert self.current is not None
        self.out.write(f"     allow [o]nce, [a]lways for this task, or [d]eny? "
                       f"(denied in {self.current.timeout:g} s) ")
        self.out.flush()

    def _who(self, event: BaseEvent) -> str:
        return f"{self.names[event.workflow_id]} · {event.task_id}"

    def _say(self, text: str) -> None:
        print(f"adw: {text}", file=self.out, flush=True)

    def _notify(self, kind: NotifyEvent, title: str, body: str) -> None:
        if kind not in self.config.on:
            return
        if self.config.bell and self.out.isatty():
            self.out.write("\a")
            self.out.flush()
        program = shutil.which("notify-send") if self.config.desktop else None
        if program is not None:
            notifier = asyncio.create_task(_desktop(program, f"ADW: {title}", body))
            self._notifiers.add(notifier)
            notifier.add_done_callback(self._notifiers.discard)


async def _desktop(program: str, title: str, body: str) -> None:
    """`notify-send` with the texts as arguments (never a shell), waited for so no zombie is left."""
    with contextlib.suppress(OSError):
        process = await asyncio.create_subprocess_exec(
            program, "--app-name=ADW", title, body,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )
        await process.wait()
