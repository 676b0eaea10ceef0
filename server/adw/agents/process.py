"""Running an agent's process: line-by-line output, resource samples, graceful stop, and every process it
started stopped with it.

Stopping (SIGINT, SIGTERM, SIGKILL, each after a grace period) is `adw.process.stop_tree`, which returns only
when no live process of the agent's tree is left.

The task ends when the agent's leader exits, not when its output pipes close: a background child (`cmd &`)
holds them open. What the leader left behind is then stopped; see `AgentTree` for how it is found.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psutil

from adw.process import TASK_VARIABLE, AgentTree, kill_now, stop_tree, task_marker
from adw.workflow.agent import CancelToken
from adw.workflow.events import TaskEvents
from adw.workflow.models import TaskState

Stream = Literal["stdout", "stderr"]
LineHandler = Callable[[str, Stream], None]

# Longer lines are cut: a JSON event this big is a file's content echoed back, not something we parse.
MAX_LINE = 1024 * 1024
_DRAIN = 0.2  # once the leader exited, how long its output may take to reach end of file on its own
_PR_SET_CHILD_SUBREAPER = 36


@dataclass(frozen=True, slots=True)
class ProcessOutcome:
    returncode: int
    stopped: bool  # ended by our signals after a cancel request


@dataclass(frozen=True, slots=True)
class ProcessLimits:
    grace: float
    sample_interval: float
    memory_limit: int | None = None


async def run_process(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    events: TaskEvents,
    cancel: CancelToken,
    on_line: LineHandler,
    limits: ProcessLimits,
    stop: CancelToken | None = None,
    stdin: bytes | None = None,
) -> ProcessOutcome:
    """Run `argv` until its leader exits, or `cancel` (the engine's) or `stop` (the adapter's own) fires;
    either way no process it started is left when this returns. Going over the memory limit cancels `cancel`
    with the reason. Raises FileNotFoundError for a missing program.

    `stdin` is written to the process and then closed (a prompt: no argument-size limit, no option parsing);
    without it the process reads an empty stdin, so no CLI waits for input."""
    loop = asyncio.get_running_loop()
    marker = task_marker(events.workflow_id, events.task_id)
    transport, protocol = await loop.subprocess_exec(
        lambda: _AgentProtocol(loop, on_line),
        *argv,
        cwd=cwd,
        env={**os.environ, **env, TASK_VARIABLE: marker},
        stdin=asyncio.subprocess.DEVNULL if stdin is None else asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # its own session and process group (both ids == pid)
        preexec_fn=_become_subreaper,
    )
    pid = transport.get_pid()
    if stdin is not None:
        _feed(transport.get_pipe_transport(0), stdin)
    try:
        create_time = psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        create_time = time.time()
    tree = AgentTree(pid, create_time, marker)
    events.process_started(pid, create_time)
    monitor = asyncio.create_task(_monitor(tree, events, cancel, limits))
    requests = [asyncio.create_task(token.wait()) for token in (cancel, stop) if token is not None]
    stopped = settled = False
    try:
        await asyncio.wait({protocol.exited, *requests}, return_when=asyncio.FIRST_COMPLETED)
        if not protocol.exited.done():
            stopped = True
            await stop_tree(tree, limits.grace)
        else:
            # The leader is done; what it left behind (`cmd &`, a `setsid` daemon) must not hold the task.
            # Its last output is read first: it is in the pipes already, unless a leftover holds them open.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_DRAIN):
                    await asyncio.shield(protocol.closed)
            await stop_tree(tree, limits.grace, (signal.SIGTERM, signal.SIGKILL))
        # A process that escaped the tree (a new session and a scrubbed environment, started after the last
        # resource sample) may still hold a pipe; do not wait for it forever.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(limits.grace):
                await asyncio.shield(protocol.closed)
        settled = protocol.exited.done()
    finally:
        for helper in (monitor, *requests):
            helper.cancel()
        if not settled:  # ADW itself is stopping (Ctrl-C) mid-way, or the leader outlived every signal
            kill_now(tree)
            await protocol.exited
        protocol.finish()
        transport.close()
        events.process_exited(pid)
    if protocol.error is not None:
        raise protocol.error
    returncode = transport.get_returncode()
    assert returncode is not None
    return ProcessOutcome(returncode, stopped)


@dataclass(frozen=True, slots=True)
class AgentProcess:
    """A running agent talked to over its stdio (an ACP agent): the pipes are the caller's to use."""

    process: asyncio.subprocess.Process
    tree: AgentTree


@contextlib.asynccontextmanager
async def agent_process(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    events: TaskEvents,
    cancel: CancelToken,
    limits: ProcessLimits,
    stream_limit: int = MAX_LINE,
) -> AsyncIterator[AgentProcess]:
    """Start `argv` with pipes on stdin, stdout and stderr, in its own session and marked like every agent, with
    resource samples and the memory cap. On leaving, stdin is closed (a stdio server exits on end of file),
    the leader gets `limits.grace` to exit, then whatever is left of its tree is stopped; nothing it started
    outlives the block. Raises FileNotFoundError for a missing program."""
    marker = task_marker(events.workflow_id, events.task_id)
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env={**os.environ, **env, TASK_VARIABLE: marker},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
        preexec_fn=_become_subreaper,
        limit=stream_limit,
    )
    try:
        create_time = psutil.Process(proc.pid).create_time()
    except psutil.NoSuchProcess:
        create_time = time.time()
    tree = AgentTree(proc.pid, create_time, marker)
    events.process_started(proc.pid, create_time)
    monitor = asyncio.create_task(_monitor(tree, events, cancel, limits))
    settled = False
    try:
        yield AgentProcess(proc, tree)
        assert proc.stdin is not None
        proc.stdin.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(limits.grace):
                await proc.wait()
        await stop_tree(tree, limits.grace, (signal.SIGTERM, signal.SIGKILL))
        settled = True
    finally:
        monitor.cancel()
        if not settled:  # an error or ADW stopping mid-way: no grace
            kill_now(tree)
        with contextlib.suppress(ProcessLookupError):
            await proc.wait()
        events.process_exited(proc.pid)


def _feed(pipe: asyncio.BaseTransport | None, data: bytes) -> None:
    """Hand `data` to the stdin pipe, which writes it as the process reads (a large prompt fills the pipe)
    and closes once all is written; a process that exits without reading it all only ends the writing."""
    assert isinstance(pipe, asyncio.WriteTransport)
    pipe.write(data)
    pipe.close()


def _subreaper_call() -> Callable[[], None] | None:
    """On Linux, what makes the agent's leader a child subreaper between fork and exec, so an orphan below it
    is re-parented to it rather than to init: it stays in its tree. (ADW itself is not made one: it would
    then inherit every orphan, git's detached `gc` included, and reaping those could steal the exit status
    its own subprocess waiters expect.)"""
    if sys.platform != "linux":
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int

    def become_subreaper() -> None:
        # Runs in the forked child: only this one libc call, resolved above, so no lock or import is needed.
        prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)

    return become_subreaper


_become_subreaper = _subreaper_call()


class _AgentProtocol(asyncio.SubprocessProtocol):
    """Hands each output line to `on_line` as it arrives, and tells the leader's exit (`exited`) apart from
    the end of its output (`closed`, when every pipe reached end of file and the leader exited)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_line: LineHandler) -> None:
        self.exited: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.error: Exception | None = None  # raised by `on_line`: an adapter bug, raised again by run_process
        self._lines = {1: _Lines("stdout", on_line), 2: _Lines("stderr", on_line)}

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        self._deliver(self._lines[fd].feed, data)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd in self._lines:  # not stdin
            self._deliver(self._lines[fd].end)

    def process_exited(self) -> None:
        _settle(self.exited)

    def connection_lost(self, exc: Exception | None) -> None:  # the leader exited and every pipe closed
        _settle(self.closed)

    def finish(self) -> None:
        """Deliver what is left of each stream and ignore anything after: the result is being judged."""
        for lines in self._lines.values():
            self._deliver(lines.end)

    def _deliver(self, step: Callable[..., None], *args: bytes) -> None:
        """The transport would swallow the handler's exception (it logs it and closes the pipe)."""
        if self.error is None:
            try:
                step(*args)
            except Exception as exc:
                self.error = exc


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _Lines:
    """Splits one stream into lines."""

    def __init__(self, name: Stream, on_line: LineHandler) -> None:
        self._name = name
        self._on_line = on_line
        self._buffer = b""
        self._discarding = False  # inside a line longer than MAX_LINE, after its first MAX_LINE bytes went out
        self._ended = False

    def feed(self, data: bytes) -> None:
        if self._ended:
            return
        *lines, self._buffer = (self._buffer + data).split(b"\n")
        for index, line in enumerate(lines):
            if not (self._discarding and index == 0):
                self._on_line(_decode(line), self._name)
            self._discarding = False
        if len(self._buffer) > MAX_LINE:
            if not self._discarding:
                self._on_line(_decode(self._buffer[:MAX_LINE]) + " …[cut]", self._name)
            self._discarding, self._buffer = True, b""

    def end(self) -> None:
        if not self._ended and self._buffer and not self._discarding:
            self._on_line(_decode(self._buffer), self._name)
        self._ended, self._buffer = True, b""


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "replace").rstrip("\r")


async def _monitor(tree: AgentTree, events: TaskEvents, cancel: CancelToken, limits: ProcessLimits) -> None:
    """Sample CPU and memory of the whole process tree; stop it past the memory cap."""
    known = tree.sampled  # also kept so cpu_percent measures since the previous sample
    try:
        leader = psutil.Process(tree.pid)
    except psutil.NoSuchProcess:
        return
    while True:
        await asyncio.sleep(limits.sample_interval)
        try:
            processes = [leader, *leader.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        for gone in known.keys() - {proc.pid for proc in processes}:
            del known[gone]  # exited: below a subreaper, a process leaves the tree no other way
        cpu, rss, alive = 0.0, 0, 0
        for proc in processes:
            proc = known.setdefault(proc.pid, proc)
            try:
                cpu += proc.cpu_percent(None)
                rss += proc.memory_info().rss
                alive += 1
            except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
                known.pop(proc.pid, None)
        events.resources(cpu, rss, alive)
        if limits.memory_limit is not None and rss > limits.memory_limit:
            cancel.cancel(
                f"memory limit exceeded: {rss / 1e6:.0f} MB used, limit {limits.memory_limit / 1e6:.0f} MB",
                TaskState.FAILED,
            )
            return
