"""Run on a cluster node beside a phase: when the Ray worker running the phase dies (its node killed, the worker
SIGKILLed) it cannot stop its agent, so this does. The worker starts it in a session of its own with a pipe on its
stdin, and writes `done` there once the phase ended and its agent stopped; end of file without `done` means the
worker died, and every process carrying the task's marker is killed: nothing of an agent outlives its phase (Ray
kills a dead worker's children, but not what they started). It leaves the worker's children at once, or it would
be killed with them.

    python -m adw.workflow.orphans MARKER
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from adw.process import AgentTree, stop_tree

DONE = b"done"


def main(argv: list[str]) -> int:
    [marker] = argv
    if os.fork():  # the worker's child exits; this one, now init's, carries on
        return 0
    if sys.stdin.buffer.read() == DONE:
        return 0
    # No leader is known here (pid 0 is nobody's): the tree is found by its marker alone.
    asyncio.run(stop_tree(AgentTree(0, 0.0, marker), 0.0, (signal.SIGKILL,)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
