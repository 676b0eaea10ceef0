"""kill -9 of `adw sdlc` after `git worktree add`, during a slow setup command: `adw resume` completes the run
(issue #11, point 7)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from adw.workflow.store import Store
from tests.conftest import MakeRepo, run_git
from tests.test_workflow_sdlc import ADD, PYPROJECT


def test_sdlc_killed_during_setup_then_resume_succeeds(make_repo: MakeRepo, tmp_path: Path) -> None:
    started = tmp_path / "setup-started"
    # The first setup signals and hangs until killed; the one run by the resume finds the signal and ends at once.
    setup = f"import pathlib, time, sys; p = pathlib.Path({str(started)!r}); sys.exit(0) if p.exists() else " \
        "(p.touch(), time.sleep(600))"
    config = PYPROJECT + f'\n[tool.adw.worktree]\nsetup = ["{sys.executable}", "-c", "{setup}"]\n'
    project = make_repo({"README.md": "# calc\n", "pyproject.toml": config, "src/calc/__init__.py": "",
                         ".gitignore": "__pycache__/\n", "specs/add.md": ADD})
    sdlc = subprocess.Popen([sys.executable, "-m", "adw", "sdlc", "specs/add.md", "--json"], cwd=project,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 120  # a guard against a hang, not a timing assertion
    while not started.exists():
        assert sdlc.poll() is None, sdlc.stderr.read() if sdlc.stderr else ""
        assert time.monotonic() < deadline, "the setup command never started"
        time.sleep(0.05)
    os.killpg(sdlc.pid, signal.SIGKILL)  # ADW and its setup command, as kill -9 of the whole job would
    sdlc.wait()

    worktree = project.parent / "repo.worktrees" / "add"
    assert (worktree / ".git").is_file()  # `git worktree add` had run: the worktree exists, half made
    store = Store.for_common_dir(project / ".git")
    [workflow] = store.recent()
    store.close()

    resumed = subprocess.run([sys.executable, "-m", "adw", "resume", workflow.id, "--json"], cwd=project,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    [result] = json.loads(resumed.stdout)["workflows"]
    assert result["state"] == "succeeded"
    assert {t["id"]: t["state"] for t in result["tasks"]}["worktree"] == "succeeded"
    assert run_git(worktree, "show", "HEAD:src/calc/add.py") == "def add(a, b):\n    return a + b\n"
    assert run_git(project, "worktree", "list", "--porcelain").count("worktree ") == 2
    assert run_git(project, "fsck", "--strict", "--no-dangling", "--no-progress") == ""
