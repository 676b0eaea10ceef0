"""The watcher of a cluster worker's phases (adw.workflow.orphans), without Ray: one watcher serves every phase a
worker runs, and a worker's death kills the agent of the phase it was running and nothing of the phases it ended.
(tests/cluster/test_ray_node_death.py kills a real node.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil

from adw.process import TASK_VARIABLE
from adw.workflow.orphans import DONE, WATCH, line, still_watched

# A stand-in for a Ray worker: it runs phase `ended` to its end, then starts phase `running`, and waits to die.
_WORKER = """
import sys
from adw.workflow.orphans import Watcher

ended, running = sys.argv[1:]
watcher = Watcher()
with watcher.watching(ended):
    pass
with watcher.watching(running):
    print("running", flush=True)
    sys.stdin.read()
"""


def test_the_markers_still_watched_are_those_not_done_and_a_cut_off_line_is_none() -> None:
    orders = [line(WATCH, "w1/build"), line(WATCH, "w1/test"), line(DONE, "w1/build"), line(WATCH, "w2/x")[:-1]]
    assert still_watched(orders) == {"w1/test"}
    assert still_watched([line(WATCH, "w/a b"), line(DONE, "w/a b")]) == set()  # a marker may hold a space


def _agent(marker: str) -> subprocess.Popen[bytes]:
    """A process carrying a phase's marker, as an agent's does, in a session of its own (not the worker's child
    for the watcher: found by its marker alone)."""
    return subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)"],
        env={**os.environ, TASK_VARIABLE: marker}, start_new_session=True,
    )


def _gone(process: subprocess.Popen[bytes]) -> bool:
    for _ in range(300):
        if process.poll() is not None:
            return True
        time.sleep(0.1)
    return False


def test_a_dead_workers_watcher_kills_the_running_phases_agent_and_spares_an_ended_ones() -> None:
    ended_agent, running_agent = _agent("wf/ended"), _agent("wf/running")
    worker = subprocess.Popen(
        [sys.executable, "-c", _WORKER, "wf/ended", "wf/running"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert worker.stdout is not None
        assert worker.stdout.readline() == b"running\n"
        watchers = [child for child in psutil.process_iter(["cmdline"])
                    if (child.info["cmdline"] or [])[-2:] == ["-m", "adw.workflow.orphans"]]
        assert watchers, "a watcher runs beside the worker"
        assert ended_agent.poll() is None and running_agent.poll() is None
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        assert _gone(running_agent)
        assert running_agent.returncode == -signal.SIGKILL
        time.sleep(0.5)
        assert ended_agent.poll() is None  # its phase ended: not the watcher's any more
    finally:
        for process in (worker, ended_agent, running_agent):
            process.kill()
            process.wait()
