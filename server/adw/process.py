"""An agent's process tree: every process it started, found also after ADW itself was killed, and stopped.

Stopping sends SIGINT (Claude Code then writes its final result with the cost), then SIGTERM, then SIGKILL,
each after a grace period, and returns only when no live process of the tree is left. Neutral ground: the
engine stops the trees a crashed run left behind, the agents stop their own; neither imports the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import psutil

from adw.git.locks import find_process

# Set in every agent's environment, so inherited by everything it starts; its value is `task_marker(…)`.
TASK_VARIABLE = "ADW_TASK_ID"
_POLL = 0.02
_RESCAN = 0.25  # a tree scan reads every process's environment: a few per second, not one per poll


def task_marker(workflow_id: str, task_id: str) -> str:
    return f"{workflow_id}/{task_id}"


@dataclass(frozen=True, slots=True)
class AgentTree:
    """Every process an agent started, found from what the store keeps, so also after ADW itself was killed.

    The leader starts a session of its own (its pid is its session and process group id) with `TASK_VARIABLE`
    set to `marker`. Its processes are: the leader's descendants (on Linux the leader is a child subreaper, so
    an orphan stays its descendant while it runs, even one that left the session and the environment); every
    process carrying the marker (found by environment after the leader is gone, even in a session of its own
    made by `setsid`); and every process in the session of either. A marked process proves its session is the
    agent's: a session can only be created, never joined, so a reused pid cannot make a stranger's look ours.
    """

    pid: int
    create_time: float
    marker: str
    # Found below the leader by the resource samples while it ran (only in the ADW process that runs it): so a
    # process that left the session and the environment is still stopped once the leader is gone.
    sampled: dict[int, psutil.Process] = field(default_factory=dict, compare=False)

    def members(self) -> list[psutil.Process]:
        """The live processes of the tree, zombies left out (they are dead, only not reaped yet)."""
        found: dict[int, psutil.Process] = dict(self.sampled)
        sessions: set[int] = set()
        leader = find_process(self.pid, self.create_time)
        if leader is not None:
            sessions.add(self.pid)
            found[leader.pid] = leader
            with contextlib.suppress(psutil.Error):
                found.update((child.pid, child) for child in leader.children(recursive=True))
        unmarked: list[tuple[int, int]] = []
        own_session = os.getsid(0)  # never ADW's, whatever a process there put in its environment
        for pid in psutil.pids():
            session = _session(pid)
            if session is None or session == own_session:
                continue
            if _carries(pid, self.marker):
                sessions.add(session)
                with contextlib.suppress(psutil.Error):
                    found.setdefault(pid, psutil.Process(pid))
            else:
                unmarked.append((pid, session))
        for pid, session in unmarked:
            if session in sessions and pid not in found:
                with contextlib.suppress(psutil.Error):
                    found[pid] = psutil.Process(pid)
        found.pop(os.getpid(), None)
        return [proc for proc in found.values() if _running(proc)]


def _carries(pid: int, marker: str) -> bool:
    """Whether the process's environment has `TASK_VARIABLE=marker`; a zombie's or a stranger's reads empty.
    On Linux /proc is read directly: twenty times faster than psutil parsing every environment into a dict."""
    if sys.platform != "linux":
        try:
            return bool(psutil.Process(pid).environ().get(TASK_VARIABLE) == marker)
        except psutil.Error:
            return False
    entry = f"{TASK_VARIABLE}={marker}\0".encode()
    try:
        with open(f"/proc/{pid}/environ", "rb") as environ:
            data = environ.read()
    except OSError:
        return False
    return data.startswith(entry) or b"\0" + entry in data


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Signal a process group that may be gone already."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


@dataclass
class _Delivery:
    """One signal sent across a tree, at most once to each process: to each process group at once where the
    group had none yet (which also reaches a child forked since the scan; a group cannot hold a stranger, as it
    lives inside a session of the tree), else to each process found since, by psutil (which checks the pid
    still names the process the scan found)."""

    sig: signal.Signals
    processes: set[psutil.Process] = field(default_factory=set)  # equal by pid and start time
    groups: set[int] = field(default_factory=set)

    def send(self, members: Iterable[psutil.Process]) -> None:
        by_group: dict[int, list[psutil.Process]] = {}
        for proc in members:
            if proc not in self.processes and (group := _group(proc.pid)) is not None:
                by_group.setdefault(group, []).append(proc)
        for group, procs in by_group.items():
            if group not in self.groups:
                self.groups.add(group)
                signal_group(group, self.sig)
            else:
                for proc in procs:
                    with contextlib.suppress(psutil.Error):
                        proc.send_signal(self.sig)
            self.processes.update(procs)


async def stop_tree(
    tree: AgentTree,
    grace: float,
    signals: Sequence[signal.Signals] = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL),
) -> bool:
    """Send each of `signals` to every process of the tree, `grace` seconds apart, until none is left; a
    process found later is sent the current one. True when none is left. Scans run off the event loop."""
    for sig in signals:
        deadline = time.monotonic() + (grace if sig != signal.SIGKILL else max(grace, 5.0))
        delivery = _Delivery(sig)
        while True:
            members = await asyncio.to_thread(tree.members)
            if not members:
                return True
            delivery.send(members)
            await _until_dead(members, min(deadline, time.monotonic() + _RESCAN))
            if time.monotonic() >= deadline:
                break
    return not await asyncio.to_thread(tree.members)


def kill_now(tree: AgentTree) -> None:
    """SIGKILL every process of the tree at once, without waiting (ADW itself is stopping)."""
    _Delivery(signal.SIGKILL).send(tree.members())


async def _until_dead(processes: list[psutil.Process], deadline: float) -> None:
    while time.monotonic() < deadline:
        if not any(_running(proc) for proc in processes):
            return
        await asyncio.sleep(_POLL)


def _running(proc: psutil.Process) -> bool:
    """Alive, and still the process found (not another one given its pid since)."""
    try:
        return proc.is_running() and bool(proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def _group(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _session(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except OSError:
        return None
