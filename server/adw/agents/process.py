"""Running an agent's process: its own process group, line-by-line output, resource samples, graceful stop.

Stopping sends SIGINT (Claude Code then writes its final result with the cost), then SIGTERM, then SIGKILL,
each after a grace period, and returns only when no live process of the group is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psutil

from adw.agents.base import CancelToken
from adw.workflow.events import TaskEvents
from adw.workflow.models import TaskState

Stream = Literal["stdout", "stderr"]
LineHandler = Callable[[str, Stream], None]

_CHUNK = 64 * 1024
# Longer lines are cut: a JSON event this big is a file's content echoed back, not something we parse.
MAX_LINE = 1024 * 1024
_POLL = 0.02


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
    """Run `argv` until it ends, or `cancel` (the engine's) or `stop` (the adapter's own) fires. Going over
    the memory limit cancels `cancel` with the reason. Raises FileNotFoundError for a missing program.

    `stdin` is written to the process and then closed (a prompt: no argument-size limit, no option parsing);
    without it the process reads an empty stdin, so no CLI waits for input."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env={**os.environ, **env},
        stdin=asyncio.subprocess.DEVNULL if stdin is None else asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # its own process group (pgid == pid), so a stop reaches every descendant
    )
    pgid = proc.pid
    try:
        create_time = psutil.Process(proc.pid).create_time()
    except psutil.NoSuchProcess:
        create_time = time.time()
    events.process_started(proc.pid, create_time)
    assert proc.stdout is not None and proc.stderr is not None
    feeding = [_feed(proc.stdin, stdin)] if proc.stdin is not None and stdin is not None else []
    pumps = asyncio.gather(
        *feeding, _pump(proc.stdout, "stdout", on_line), _pump(proc.stderr, "stderr", on_line)
    )
    monitor = asyncio.create_task(_monitor(proc.pid, events, cancel, limits))
    exited = asyncio.create_task(proc.wait())
    requests = [asyncio.create_task(token.wait()) for token in (cancel, stop) if token is not None]
    stopped = False
    try:
        await asyncio.wait({exited, *requests}, return_when=asyncio.FIRST_COMPLETED)
        if not exited.done():
            stopped = True
            await stop_group(pgid, proc, limits.grace)
        elif group_alive(pgid):  # the agent is done but left children behind
            await stop_group(pgid, proc, limits.grace, (signal.SIGTERM, signal.SIGKILL))
        # A grandchild that moved to another group may still hold a pipe open; do not wait for it forever.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(pumps), limits.grace)
    finally:
        for helper in (monitor, exited, *requests):
            helper.cancel()
        pumps.cancel()
        await asyncio.gather(pumps, return_exceptions=True)  # retrieved: a cancelled pump must not log a traceback
        if proc.returncode is None or group_alive(pgid):
            signal_group(pgid, signal.SIGKILL)
            await proc.wait()
        events.process_exited(proc.pid)
    assert proc.returncode is not None
    return ProcessOutcome(proc.returncode, stopped)


def signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def group_alive(pgid: int) -> bool:
    """True while a live process is in the group; zombies still answer kill(0), so look closer."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, PermissionError):
            continue
    return False


async def stop_group(
    pgid: int,
    proc: asyncio.subprocess.Process | None,
    grace: float,
    signals: Sequence[signal.Signals] = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL),
) -> None:
    """Escalate through `signals`, `grace` seconds apart, until no process of the group is left."""
    for sig in signals:
        signal_group(pgid, sig)
        deadline = time.monotonic() + (grace if sig != signal.SIGKILL else max(grace, 5.0))
        while time.monotonic() < deadline:
            leader_done = proc is None or proc.returncode is not None
            if leader_done and not group_alive(pgid):
                return
            await asyncio.sleep(_POLL)


async def _feed(writer: asyncio.StreamWriter, data: bytes) -> None:
    """Write `data` beside the pumps (a large prompt fills the pipe until the process reads), then close."""
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # it exited without reading it all
        writer.write(data)
        await writer.drain()
        writer.close()
        await writer.wait_closed()


async def _pump(stream: asyncio.StreamReader, name: Stream, on_line: LineHandler) -> None:
    buffer = b""
    discarding = False  # inside a line longer than MAX_LINE, after its first MAX_LINE bytes were delivered
    while chunk := await stream.read(_CHUNK):
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for index, line in enumerate(lines):
            if not (discarding and index == 0):
                on_line(_decode(line), name)
            discarding = False
        if len(buffer) > MAX_LINE:
            if not discarding:
                on_line(_decode(buffer[:MAX_LINE]) + " …[cut]", name)
            discarding, buffer = True, b""
    if buffer and not discarding:
        on_line(_decode(buffer), name)


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "replace").rstrip("\r")


async def _monitor(pid: int, events: TaskEvents, cancel: CancelToken, limits: ProcessLimits) -> None:
    """Sample CPU and memory of the whole process tree; stop it past the memory cap."""
    known: dict[int, psutil.Process] = {}  # kept so cpu_percent measures since the previous sample
    try:
        leader = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    while True:
        await asyncio.sleep(limits.sample_interval)
        try:
            tree = [leader, *leader.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        cpu, rss, alive = 0.0, 0, 0
        for proc in tree:
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
