"""Ctrl-C on `adw sdlc`, `adw resume` and `adw status --watch`, as a terminal sends it: SIGINT to the whole
foreground process group of `adw`. The agents stop, the tasks end `interrupted` (resumable), the exit status is
130 and there is no traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from adw.workflow.store import Store
from tests.conftest import MakeRepo

ROOT = Path(__file__).resolve().parents[2]
MARKER = "86317"  # the slow agent is `sleep 86317`: found by its command line
SLOW_BUILD = """
[tool.adw.agents]
stop_grace = {grace}

[tool.adw.phases.build]
agent = "command"
command = {command}
"""
# Stopped only by SIGKILL: Ctrl-C waits the grace periods for it, a second Ctrl-C does not.
STUBBORN = (
    "import signal, time\n"
    "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    f"time.sleep({MARKER})"
)


def _env() -> dict[str, str]:
    paths = [str(ROOT / "server"), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


def _agents() -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        if proc.info["status"] != psutil.STATUS_ZOMBIE and MARKER in " ".join(proc.info["cmdline"] or []):
            found.append(proc)
    return found


def _wait_for(predicate: Callable[[], bool], limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def _has_open(pid: int, name: str) -> bool:
    return any(Path(file.path).name == name for file in psutil.Process(pid).open_files())


def _adw(project: Path, *args: str) -> subprocess.Popen[str]:
    """`adw` in a session of its own, like a job in a terminal: Ctrl-C reaches its whole process group."""
    return subprocess.Popen(
        [sys.executable, "-m", "adw", "-C", str(project), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        start_new_session=True,
    )


def _ctrl_c(proc: subprocess.Popen[str]) -> None:
    os.killpg(proc.pid, signal.SIGINT)


def _project(make_repo: MakeRepo, command: list[str], grace: float = 0.3) -> Path:
    config = SLOW_BUILD.format(grace=grace, command=json.dumps(command))
    return make_repo({"pyproject.toml": config, "specs/slow.md": "# Slow\n```text path=a.txt\na\n```\n"})


def _build_state(project: Path) -> tuple[str, str, str, str]:
    store = Store.for_common_dir(project / ".git")
    try:
        [workflow] = store.recent()
        build = workflow.task("build")
        return workflow.id, workflow.state.value, build.state.value, build.reason
    finally:
        store.close()


@pytest.fixture(autouse=True)
def _no_agent_left() -> None:
    assert not _agents(), "an agent of an earlier test is still running"


def test_ctrl_c_stops_the_agents_and_exits_130_then_resume_and_watch_do_too(make_repo: MakeRepo) -> None:
    project = _project(make_repo, ["sleep", MARKER])
    runner = _adw(project, "sdlc", "specs/slow.md")
    _wait_for(lambda: bool(_agents()))
    _ctrl_c(runner)
    out, err = runner.communicate(timeout=60)
    assert runner.returncode == 130, err
    assert "Traceback" not in err and "Traceback" not in out
    assert "adw: stopping the agents" in err
    workflow_id, state, build, reason = _build_state(project)
    assert (state, build, reason) == ("interrupted", "interrupted", "interrupted by Ctrl-C")
    assert f"`adw resume {workflow_id}` continues" in err
    assert not _agents()

    resumed = _adw(project, "resume", workflow_id)
    _wait_for(lambda: bool(_agents()))
    watcher = _adw(project, "status", workflow_id, "--watch")
    _wait_for(lambda: _has_open(watcher.pid, "state.db"))  # past startup: it reads the store
    _ctrl_c(watcher)
    _, watch_err = watcher.communicate(timeout=30)
    assert watcher.returncode == 130 and "Traceback" not in watch_err
    assert _agents()  # watching is reading: stopping it leaves the workflow running

    _ctrl_c(resumed)
    _, err = resumed.communicate(timeout=60)
    assert resumed.returncode == 130 and "Traceback" not in err
    assert _build_state(project)[1:3] == ("interrupted", "interrupted")
    assert not _agents()


def test_a_second_ctrl_c_kills_agents_that_ignore_the_first(make_repo: MakeRepo) -> None:
    project = _project(make_repo, [sys.executable, "-c", STUBBORN], grace=30)
    runner = _adw(project, "sdlc", "specs/slow.md")
    _wait_for(lambda: bool(_agents()))
    _ctrl_c(runner)
    assert runner.stderr is not None
    _wait_for(lambda: "stopping the agents" in runner.stderr.readline())
    _ctrl_c(runner)
    _, err = runner.communicate(timeout=60)
    assert runner.returncode == 130 and "Traceback" not in err
    _, state, build, reason = _build_state(project)
    assert (state, build, reason) == ("interrupted", "interrupted", "the ADW process stopped")
    assert not _agents()
