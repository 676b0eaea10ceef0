"""kill -9 of `adw sdlc` after `git worktree add`, during a slow setup command: `adw resume` completes the run
(issue #11, point 7)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from adw.workflow.store import Store
from tests.conftest import MakeRepo, run_git
from tests.faults import FaultRun, FaultyGit
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


FAST_PYPROJECT = PYPROJECT.replace('"-m", "pytest", "-q"', '"-c", "pass"')  # the sweep is about git, not pytest


@dataclass
class SdlcSweep:
    """A template project (copied per kill) and what an uninterrupted `adw sdlc` + its git calls look like."""

    template: Path
    faulty_git: FaultyGit
    calls: list[list[str]]  # the git calls of an uninterrupted `adw sdlc`
    tree: str  # the tree of its commit
    scratch: Path
    kills: int = 0  # how many runs of `adw sdlc` were killed, for the figures in docs/RELIABILITY.md
    resume_kills: int = 0  # and how many of the resumes that followed
    # The git calls of the runs a kill did not reach: how many a run makes varies with timing (the order of
    # concurrent calls, a discovery reused or not), so a sweep's coverage is judged against the shortest of them.
    uncut: list[int] = field(default_factory=list)
    resume_uncut: list[int] = field(default_factory=list)

    @classmethod
    def make(cls, make_repo: MakeRepo, scratch: Path) -> SdlcSweep:
        template = make_repo({"README.md": "# calc\n", "pyproject.toml": FAST_PYPROJECT, "src/calc/__init__.py": "",
                              ".gitignore": "__pycache__/\n", "specs/add.md": ADD}, name="template")
        faulty_git = FaultyGit(scratch / "faults")
        probe = cls.copy(template, scratch / "probe")
        run = faulty_git.run(probe, "sdlc", "specs/add.md", "--json")
        assert run.returncode == 0, run.stderr + run.stdout
        return cls(template, faulty_git, run.calls, _commit_tree(run.stdout), scratch)

    @staticmethod
    def copy(template: Path, project: Path) -> Path:
        shutil.copytree(template, project, symlinks=True)
        return project

    def project(self, name: str) -> Path:
        return self.copy(self.template, self.scratch / name)

    def kill_sdlc(self, project: Path, kill_at: int) -> tuple[FaultRun, str | None]:
        """`adw sdlc` killed at its `kill_at`-th git call (if it makes that many: their number varies by one or
        two with the order of concurrent calls) and the workflow's id (None: killed before it was stored)."""
        run = self.faulty_git.run(project, "sdlc", "specs/add.md", "--json", kill_at=kill_at)
        if not run.killed:
            self.uncut.append(len(run.calls))
            return run, None
        self.kills += 1
        self.assert_intact(project, f"sdlc killed at call {kill_at}")
        store = Store.for_common_dir(project / ".git")
        try:
            workflows = store.recent()
        finally:
            store.close()
        return run, workflows[0].id if workflows else None

    def finish(self, project: Path, workflow: str | None, what: str, kill_at: int | None = None) -> FaultRun:
        """The next command after a kill: `adw resume` of the stored workflow, or `adw sdlc` again if none was."""
        args = ["resume", workflow, "--json"] if workflow else ["sdlc", "specs/add.md", "--json"]
        run = self.faulty_git.run(project, *args, kill_at=kill_at)
        if kill_at is None or not run.killed:
            assert run.returncode == 0, f"{what}: {run.stderr}{run.stdout}"
        return run

    def assert_intact(self, project: Path, what: str) -> None:
        """fsck clean, and the user's own files and branch untouched (ADW works in its worktree)."""
        assert run_git(project, "fsck", "--strict", "--no-dangling", "--no-progress") == "", what
        assert run_git(project, "status", "--porcelain") == "", what
        assert run_git(project, "rev-parse", "main") == run_git(self.template, "rev-parse", "main"), what

    def assert_like_uninterrupted(self, project: Path, run: FaultRun, what: str) -> None:
        """The run succeeded with exactly one commit on the worktree's branch, with the uninterrupted run's files."""
        [result] = json.loads(run.stdout)["workflows"]
        assert result["state"] == "succeeded", what
        worktree = Path(result["cwd"])
        commit = {t["id"]: t for t in result["tasks"]}["commit"]["outputs"]["commit"]
        assert run_git(worktree, "rev-parse", "HEAD").strip() == commit, what
        assert run_git(worktree, "log", "--format=%s", "main..HEAD").splitlines() == ["adw: add"], what
        assert _commit_tree(run.stdout) == self.tree, f"{what}: the commit's files differ from an uninterrupted run"
        assert run_git(project, "worktree", "list", "--porcelain").count("worktree ") == 2, what
        self.assert_intact(project, what)

    def sdlc_then_resume(self, kill_at: int) -> None:
        project = self.project(f"sdlc-{kill_at}")
        what = f"sdlc killed at call {kill_at} {self.calls[min(kill_at, len(self.calls)) - 1][:3]}"
        run, workflow = self.kill_sdlc(project, kill_at)
        self.assert_like_uninterrupted(project, self.finish(project, workflow, what) if run.killed else run, what)

    def resume_calls(self, sdlc_kill_at: int) -> list[list[str]]:
        """The git calls of the `adw resume` (or rerun) that follows a kill of `adw sdlc` at `sdlc_kill_at`."""
        project = self.project(f"resume-probe-{sdlc_kill_at}")
        _, workflow = self.kill_sdlc(project, sdlc_kill_at)
        return self.finish(project, workflow, f"resume after a kill at {sdlc_kill_at}").calls

    def resume_killed(self, sdlc_kill_at: int, kill_at: int) -> None:
        """sdlc killed at `sdlc_kill_at`, its resume killed at `kill_at`, then a second resume finishes the run."""
        project = self.project(f"resume-{sdlc_kill_at}-{kill_at}")
        what = f"sdlc killed at call {sdlc_kill_at}, its resume at call {kill_at}"
        _, workflow = self.kill_sdlc(project, sdlc_kill_at)
        run = self.finish(project, workflow, what, kill_at=kill_at)
        if not run.killed:
            self.resume_uncut.append(len(run.calls))
        else:
            self.resume_kills += 1
            self.assert_intact(project, what)
            if workflow is None:  # the rerun of `adw sdlc` may have stored the workflow before its kill
                store = Store.for_common_dir(project / ".git")
                try:
                    workflow = next((w.id for w in store.recent()), None)
                finally:
                    store.close()
            run = self.finish(project, workflow, what)
        self.assert_like_uninterrupted(project, run, what)


def first_of_each_kind(calls: list[list[str]]) -> list[int]:
    """The 1-based number of the first call of each git subcommand, in order."""
    first: dict[str, int] = {}
    for number, call in enumerate(calls, 1):
        first.setdefault(call[0], number)
    return sorted(first.values())


def after_worktree_add(calls: list[list[str]]) -> int:
    """The call after `git worktree add`: a kill there leaves the most for the resume to do (and redo)."""
    return next(i for i, call in enumerate(calls, 1) if call[:2] == ["worktree", "add"]) + 1


def _commit_tree(stdout: str) -> str:
    [result] = json.loads(stdout)["workflows"]
    commit = {t["id"]: t for t in result["tasks"]}["commit"]["outputs"]["commit"]
    return run_git(Path(result["cwd"]), "rev-parse", f"{commit}^{{tree}}").strip()


@pytest.fixture
def sweep(make_repo: MakeRepo, tmp_path: Path) -> SdlcSweep:
    return SdlcSweep.make(make_repo, tmp_path)


@pytest.mark.faults
def test_sdlc_killed_at_the_first_git_call_of_each_kind_resumes_to_the_same_commit(sweep: SdlcSweep) -> None:
    """A sample of the full sweep of tests/soak/test_sdlc_kill_sweep.py: the first call of every git subcommand
    `adw sdlc` runs is a kill point once (worktree add, checkout, the checkpoints' update-ref, commit, ...)."""
    points = first_of_each_kind(sweep.calls)
    assert {"worktree", "reset", "update-ref", "checkout-index", "commit", "merge-tree"} <= {
        sweep.calls[k - 1][0] for k in points
    }
    for kill_at in points:
        sweep.sdlc_then_resume(kill_at)


@pytest.mark.faults
def test_resume_killed_in_its_checkpoint_and_its_commit_then_resumed_again(sweep: SdlcSweep) -> None:
    """`adw sdlc` killed just after its worktree exists, then its resume killed at its first checkpoint's ref
    update and at its commit: the next resume finishes with the uninterrupted run's commit."""
    sdlc_kill = after_worktree_add(sweep.calls)
    calls = sweep.resume_calls(sdlc_kill)
    points = [next(i for i, call in enumerate(calls, 1) if call[0] == kind) for kind in ("update-ref", "commit")]
    for kill_at in points:
        sweep.resume_killed(sdlc_kill, kill_at)
