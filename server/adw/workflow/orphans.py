"""Run on a cluster node beside a Ray worker: when the worker dies (its node killed, the worker SIGKILLed) it
cannot stop the agent of the phase it was running, so this does. One watcher serves a worker for its life,
started with its first phase in a session of its own, a pipe on its stdin: the worker writes a line
`watch MARKER` before a phase's agent starts and `done MARKER` once the phase ended and its agent stopped. End of
file means the worker died: every process carrying a marker still watched is killed, so nothing of an agent
outlives its phase (Ray kills a dead worker's children, but not what they started). It leaves the worker's
children at once, or it would be killed with them. Started once, not per phase: an interpreter's start is most
of what a phase on a node would otherwise cost beyond Ray's own round trip.

    python -m adw.workflow.orphans
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator
from typing import IO

from adw.process import AgentTree, stop_tree

WATCH, DONE = "watch", "done"


def line(verb: str, marker: str) -> bytes:
    """One order to the watcher: short enough to be one atomic pipe write, so a dying worker leaves no half."""
    return f"{verb} {marker}\n".encode()


def still_watched(lines: Iterable[bytes]) -> set[str]:
    """The markers watched and not done when `lines` ended; a line cut off by the worker's death is not one."""
    watched: set[str] = set()
    for order in lines:
        verb, _, marker = order.decode(errors="replace").partition(" ")
        if not marker.endswith("\n"):
            break
        if verb == WATCH:
            watched.add(marker[:-1])
        elif verb == DONE:
            watched.discard(marker[:-1])
    return watched


class Watcher:
    """A worker's side: the watcher is started with the first phase watched, and again if it died."""

    def __init__(self) -> None:
        self._pipe: IO[bytes] | None = None
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def watching(self, marker: str) -> Iterator[None]:
        """Watched while inside: leave only once the agent stopped."""
        self._tell(line(WATCH, marker), start=True)
        try:
            yield
        finally:
            self._tell(line(DONE, marker), start=False)

    def _tell(self, order: bytes, start: bool) -> None:
        with self._lock:
            for _ in range(2):
                if self._pipe is None:
                    if not start:
                        return  # a watcher that died watches nothing: nothing to tell it
                    self._pipe = _start()
                try:
                    self._pipe.write(order)
                    return
                except BrokenPipeError:
                    self._pipe = None


_THIS_WORKERS = Watcher()


def watching(marker: str) -> contextlib.AbstractContextManager[None]:
    """This worker's watcher, watching `marker` while inside. (A function, not the instance: Ray sends a remote
    function to its workers by value, with the objects it names, and a lock does not travel.)"""
    return _THIS_WORKERS.watching(marker)


def _start() -> IO[bytes]:
    # Fixed argv: this interpreter, ADW's module. Unbuffered: every order reaches the pipe at once.
    watcher = subprocess.Popen(
        [sys.executable, "-m", "adw.workflow.orphans"], stdin=subprocess.PIPE, bufsize=0, start_new_session=True
    )
    watcher.wait()  # it forked the watcher off and left
    assert watcher.stdin is not None
    return watcher.stdin


async def _stop(markers: set[str]) -> None:
    # No leader is known here (pid 0 is nobody's): each tree is found by its marker alone.
    await asyncio.gather(*(stop_tree(AgentTree(0, 0.0, marker), 0.0, (signal.SIGKILL,)) for marker in markers))


def main() -> int:
    if os.fork():  # the worker's child exits; this one, now init's, carries on
        return 0
    if markers := still_watched(sys.stdin.buffer):
        asyncio.run(_stop(markers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
