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

import pytest

from adw.workflow.store import Store
from tests.conftest import MakeRepo, run_git
from tests.faults import FaultyGit
from tests.sdlc.test_workflow_sdlc import ADD, PYPROJECT


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


def sdlc_project(make_repo: MakeRepo, name: str = "repo") -> Path:
    return make_repo({"README.md": "# calc\n", "pyproject.toml": PYPROJECT, "src/calc/__init__.py": "",
                      ".gitignore": "__pycache__/\n", "specs/add.md": ADD}, name=name)


@pytest.mark.slow
def test_sdlc_killed_at_each_git_call_of_its_worktree_and_commit_steps_resumes_to_one_commit(
    make_repo: MakeRepo, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The calls of the checkpoints between are swept by test_faults_checkpoint; these are the steps' own."""
    probe = sdlc_project(make_repo)
    faulty_git = FaultyGit(tmp_path_factory.mktemp("faults"))
    calls = faulty_git.run(probe, "sdlc", "specs/add.md", "--json").calls
    first = next(i for i, call in enumerate(calls, 1) if call[:2] == ["worktree", "add"]) - 2
    committed = next(i for i, call in enumerate(calls, 1) if call[:2] == ["commit", "-q"])
    boundaries = [*range(first, first + 4), committed - 3, committed, committed + 1, committed + 2]
    for number, kill_at in enumerate(boundaries):
        project = sdlc_project(make_repo, f"repo{number}")
        assert faulty_git.run(project, "sdlc", "specs/add.md", "--json", kill_at=kill_at).killed
        store = Store.for_common_dir(project / ".git")
        [workflow] = store.recent()
        store.close()
        resumed = faulty_git.run(project, "resume", workflow.id, "--json")
        assert resumed.returncode == 0, f"kill at {kill_at} {calls[kill_at - 1]}: {resumed.stderr}{resumed.stdout}"
        [result] = json.loads(resumed.stdout)["workflows"]
        worktree = Path(result["cwd"])
        assert result["state"] == "succeeded"
        commit = {t["id"]: t for t in result["tasks"]}["commit"]["outputs"]["commit"]
        assert run_git(worktree, "rev-parse", "HEAD").strip() == commit
        log = run_git(worktree, "log", "--format=%s", "main..HEAD").splitlines()
        assert log == ["adw: add"], f"kill at {kill_at}: {log}"  # exactly one commit, never two
        assert run_git(project, "fsck", "--strict", "--no-dangling", "--no-progress") == ""
