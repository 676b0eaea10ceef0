"""Typed events and the one way to receive them: `EventBus.subscribe()`.

The CLI, the store and the language server are all just subscribers. A slow subscriber never slows the
engine: past a backlog it loses output lines and resource samples (counted in `dropped`), never a state
change.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Collection
from types import TracebackType
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from adw.workflow.models import Finding, TaskState, Usage


class BaseEvent(BaseModel):
    type: str
    seq: int = 0
    time: float = Field(default_factory=time.time)
    workflow_id: str
    task_id: str | None = None


class WorkflowStarted(BaseEvent):
    type: Literal["workflow_started"] = "workflow_started"
    name: str


class WorkflowFinished(BaseEvent):
    type: Literal["workflow_finished"] = "workflow_finished"
    state: TaskState
    reason: str = ""


class TaskStarted(BaseEvent):
    type: Literal["task_started"] = "task_started"
    attempt: int
    agent: str
    phase: str


class OutputLine(BaseEvent):
    type: Literal["output"] = "output"
    stream: Literal["stdout", "stderr"] = "stdout"
    text: str


class ToolUse(BaseEvent):
    type: Literal["tool_use"] = "tool_use"
    tool: str
    detail: str = ""


class Progress(BaseEvent):
    type: Literal["progress"] = "progress"
    message: str


class Placed(BaseEvent):
    """Where a task's attempt runs, when not in ADW's own process: a cluster node."""

    type: Literal["placed"] = "placed"
    node_id: str
    host: str

    @property
    def node(self) -> str:
        """The node as a person is shown it: its host and the start of its id."""
        return f"{self.host} ({self.node_id[:12]})"


class FindingReported(BaseEvent):
    type: Literal["finding"] = "finding"
    finding: Finding


class CostReported(BaseEvent):
    type: Literal["cost"] = "cost"
    usage: Usage


class ResourceSample(BaseEvent):
    type: Literal["resources"] = "resources"
    cpu_percent: float
    rss: int
    processes: int


PermissionChoice = Literal["allow_once", "allow_always", "deny"]


class PermissionAsked(BaseEvent):
    """An agent asks before a tool call; whoever watches (the editor, the CLI on a terminal) may answer with
    `Engine.answer_permission` before `timeout` seconds, after which the question is denied."""

    type: Literal["permission_asked"] = "permission_asked"
    request_id: str
    tool: str
    kind: str
    paths: list[str] = []
    timeout: float


    def described(self) -> str:
        """What the agent asks, as a person is shown it: "TOOL (PATH, …)", the agent's words made safe to show."""
        paths = [shown(path) for path in self.paths[:_SHOWN_PATHS]]
        if len(self.paths) > _SHOWN_PATHS:
            paths.append(f"and {len(self.paths) - _SHOWN_PATHS} more")
        return shown(self.tool) + (f" ({', '.join(paths)})" if paths else "")


_SHOWN_PATHS = 5


def shown(text: str, limit: int = 300) -> str:
    """An agent's text as it may be shown on a terminal or in a notification: control characters escaped (none
    moves the cursor or forges a line of its own), at most `limit` characters."""
    safe = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
    return safe if len(safe) <= limit else safe[: limit - 1] + "…"


class PermissionAnswered(BaseEvent):
    """The end of a question: answered (`by` names who), timed out, or dropped because the turn ended."""

    type: Literal["permission_answered"] = "permission_answered"
    request_id: str
    choice: PermissionChoice | None
    by: str


class TaskFinished(BaseEvent):
    type: Literal["task_finished"] = "task_finished"
    state: TaskState
    attempt: int | None = None
    reason: str = ""
    summary: str = ""
    retry_in: float | None = Field(
        default=None, description="Set when the attempt failed and another follows."
    )


Event = Annotated[
    WorkflowStarted
    | WorkflowFinished
    | TaskStarted
    | OutputLine
    | ToolUse
    | Progress
    | Placed
    | FindingReported
    | CostReported
    | ResourceSample
    | PermissionAsked
    | PermissionAnswered
    | TaskFinished,
    Field(discriminator="type"),
]
EventType = type[BaseEvent]

# Only these may be dropped for a subscriber that lags; everything else is a state change someone relies on.
LOSSY: tuple[EventType, ...] = (OutputLine, ResourceSample)


class Subscription:
    """Async iterator of events: `async with bus.subscribe() as events: async for event in events`."""

    def __init__(
        self, bus: EventBus, workflow_id: str | None, types: Collection[EventType] | None, max_backlog: int
    ) -> None:
        self._bus = bus
        self._workflow_id = workflow_id
        self._types = tuple(types) if types else None
        self._max_backlog = max_backlog
        self._queue: deque[BaseEvent] = deque()
        self._ready = asyncio.Event()
        self._closed = False
        self.dropped = 0

    def wants(self, event: BaseEvent) -> bool:
        if self._workflow_id is not None and event.workflow_id != self._workflow_id:
            return False
        return self._types is None or isinstance(event, self._types)

    def push(self, event: BaseEvent) -> None:
        if len(self._queue) >= self._max_backlog and isinstance(event, LOSSY):
            self.dropped += 1
            return
        self._queue.append(event)
        self._ready.set()

    def close(self) -> None:
        self._closed = True
        self._bus.unsubscribe(self)
        self._ready.set()

    def __aiter__(self) -> AsyncIterator[BaseEvent]:
        return self

    async def __anext__(self) -> BaseEvent:
        while not self._queue:
            if self._closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        return self._queue.popleft()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class EventBus:
    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()
        self._sinks: list[Callable[[BaseEvent], None]] = []
        self._seq = 0
        self._questions: dict[str, asyncio.Future[tuple[PermissionChoice, str]]] = {}

    def subscribe(
        self,
        workflow_id: str | None = None,
        types: Collection[EventType] | None = None,
        max_backlog: int = 10_000,
    ) -> Subscription:
        """Events published from now on, optionally of one workflow and of some types only."""
        subscription = Subscription(self, workflow_id, types, max_backlog)
        self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    def add_sink(self, sink: Callable[[BaseEvent], None]) -> None:
        """A synchronous receiver of every event (the store), called before any subscriber sees it."""
        self._sinks.append(sink)

    async def ask(self, question: PermissionAsked) -> tuple[PermissionChoice, str] | None:
        """Publish the question and wait for `answer()`: the choice and who made it, or None once its time
        is up. A cancelled wait (the turn ended) leaves no question behind."""
        future: asyncio.Future[tuple[PermissionChoice, str]] = asyncio.get_running_loop().create_future()
        self._questions[question.request_id] = future
        answer: tuple[PermissionChoice, str] | None = None
        ended = "timeout"
        try:
            self.publish(question)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(question.timeout):
                    await future
            # An answer given in the turn the time ran out still counts: `answer()` told its giver it did.
            answer = future.result() if future.done() and not future.cancelled() else None
            return answer
        except asyncio.CancelledError:  # the turn ended: whatever was answered, the agent never hears it
            ended = "cancelled"
            raise
        finally:
            self._questions.pop(question.request_id, None)
            choice, by = answer or (None, ended)
            self.publish(PermissionAnswered(workflow_id=question.workflow_id, task_id=question.task_id,
                                            request_id=question.request_id, choice=choice, by=by))

    def answer(self, request_id: str, choice: PermissionChoice, by: str) -> bool:
        """Answer a pending question; False when it is not pending (answered, timed out or never asked)."""
        future = self._questions.get(request_id)
        if future is None or future.done():
            return False
        future.set_result((choice, by))
        return True

    def publish(self, event: BaseEvent) -> None:
        self._seq += 1
        event.seq = self._seq
        for sink in self._sinks:
            sink(event)
        for subscription in list(self._subscriptions):
            if subscription.wants(event):
                subscription.push(event)


class TaskEvents:
    """The events of one running task, as an agent sees them. Every report but a resource sample counts as
    activity for the inactivity timeout; an adapter passes `activity=False` for noise such as reconnect
    chatter."""

    def __init__(
        self,
        bus: EventBus,
        workflow_id: str,
        task_id: str,
        on_process: Callable[[int, float], None] | None = None,
        on_process_exit: Callable[[int], None] | None = None,
        on_placed: Callable[[Placed], None] | None = None,
    ) -> None:
        self._bus = bus
        self.workflow_id = workflow_id
        self.task_id = task_id
        self._last_activity = time.monotonic()
        self._asking = 0  # questions waiting for a person: no inactivity while one is open
        self.usage = Usage()
        self._on_process = on_process
        self._on_process_exit = on_process_exit
        self._on_placed = on_placed
        # While a list, findings wait here instead of being published: the engine judges them first.
        self.held: list[Finding] | None = None

    @property
    def last_activity(self) -> float:
        return time.monotonic() if self._asking else self._last_activity

    def _emit(self, event: BaseEvent, activity: bool = True) -> None:
        if activity:
            self._last_activity = time.monotonic()
        self._bus.publish(event)

    def output(
        self, text: str, stream: Literal["stdout", "stderr"] = "stdout", activity: bool = True
    ) -> None:
        self._emit(
            OutputLine(workflow_id=self.workflow_id, task_id=self.task_id, stream=stream, text=text), activity
        )

    def tool(self, tool: str, detail: str = "") -> None:
        self._emit(ToolUse(workflow_id=self.workflow_id, task_id=self.task_id, tool=tool, detail=detail))

    def progress(self, message: str, activity: bool = True) -> None:
        self._emit(Progress(workflow_id=self.workflow_id, task_id=self.task_id, message=message), activity)

    def placed(self, node_id: str, host: str) -> None:
        self.relay(Placed(workflow_id=self.workflow_id, task_id=self.task_id, node_id=node_id, host=host))

    def finding(self, finding: Finding) -> None:
        if self.held is not None:
            self.held.append(finding)
            self._last_activity = time.monotonic()
            return
        self._emit(FindingReported(workflow_id=self.workflow_id, task_id=self.task_id, finding=finding))

    def cost(self, usage: Usage) -> None:
        self.usage = usage
        self._emit(CostReported(workflow_id=self.workflow_id, task_id=self.task_id, usage=usage))

    def resources(self, cpu_percent: float, rss: int, processes: int) -> None:
        event = ResourceSample(
            workflow_id=self.workflow_id,
            task_id=self.task_id,
            cpu_percent=cpu_percent,
            rss=rss,
            processes=processes,
        )
        self._emit(event, activity=False)

    def relay(self, event: BaseEvent) -> None:
        """An event this task's agent reported somewhere else (a cluster node), taken as if reported here."""
        match event:
            case FindingReported():
                self.finding(event.finding)
            case CostReported():
                self.cost(event.usage)
            case Placed():
                if self._on_placed:  # before anyone hears of it, so what they read has it
                    self._on_placed(event)
                self._emit(event)
            case _:
                self._emit(event, activity=not isinstance(event, ResourceSample))

    async def ask_permission(
        self, tool: str, kind: str, paths: list[str], timeout: float
    ) -> tuple[PermissionChoice, str] | None:
        """Ask whoever watches this task; None when nobody answered within `timeout` seconds."""
        question = PermissionAsked(workflow_id=self.workflow_id, task_id=self.task_id,
                                   request_id=uuid.uuid4().hex[:12], tool=tool, kind=kind, paths=paths,
                                   timeout=timeout)
        return await self.ask(question)

    async def ask(self, question: PermissionAsked) -> tuple[PermissionChoice, str] | None:
        """Ask whoever watches this task a question already made (one its agent asked on a cluster node)."""
        self._asking += 1
        try:
            return await self._bus.ask(question)
        finally:
            self._asking -= 1
            self._last_activity = time.monotonic()

    def process_started(self, pid: int, create_time: float) -> None:
        if self._on_process:
            self._on_process(pid, create_time)

    def process_exited(self, pid: int) -> None:
        if self._on_process_exit:
            self._on_process_exit(pid)
