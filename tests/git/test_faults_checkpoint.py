"""kill -9 of `adw checkpoint` at every git-call boundary: nothing lost, no lock left, the next command works."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Protocol

import pytest

from tests.conftest import MakeRepo, run_git
from tests.faults import FaultRun, FaultyGit


class Run(Protocol):
    def __call__(self, cwd: Path, *args: str, kill_at: int | None = None) -> FaultRun: ...


def test_the_wrapper_counts_calls_and_kills_the_whole_group(repo: Path, faulty_git: FaultyGit) -> None:
    (repo / "new.txt").write_text("unsaved\n", encoding="utf-8")
    clean = faulty_git.run(repo, "checkpoint", "--json")
    assert clean.returncode == 0, clean.stderr
    assert len(clean.calls) >= 2

    killed = faulty_git.run(repo, "checkpoint", "--json", kill_at=1)
    assert killed.killed
    assert len(killed.calls) == 1


def test_checkpoint_killed_at_every_git_call_loses_nothing(make_repo: MakeRepo, faulty_git: FaultyGit) -> None:
    repo = make_repo({"README.md": "# demo\n", "src/app.py": "v1\n"})
    (repo / "src/app.py").write_text("edited, never committed\n", encoding="utf-8")
    (repo / "notes.txt").write_text("untracked work\n", encoding="utf-8")
    assert faulty_git.run(repo, "checkpoint", "--json").returncode == 0  # later rounds are not the first one

    for kill_at in itertools.count(1):
        (repo / "src/app.py").write_text(f"edited before kill {kill_at}\n", encoding="utf-8")
        if not faulty_git.run(repo, "checkpoint", "--json", kill_at=kill_at).killed:
            break  # it made fewer git calls than kill_at: every boundary was covered
        assert run_git(repo, "fsck", "--strict", "--no-dangling", "--no-progress") == ""

        after = faulty_git.run(repo, "checkpoint", "--json")  # no lock left behind blocks the next command
        assert after.returncode == 0, f"kill at git call {kill_at}: {after.stderr}"
        commit = json.loads(after.stdout)["checkpoint"]["commit"]
        assert run_git(repo, "show", f"{commit}:src/app.py") == f"edited before kill {kill_at}\n"
        assert run_git(repo, "show", f"{commit}:notes.txt") == "untracked work\n"
        assert (repo / "src/app.py").read_text(encoding="utf-8") == f"edited before kill {kill_at}\n"
    assert kill_at > 3, "the sweep must have interrupted several git calls"
    print(f"adw checkpoint: killed at each of {kill_at - 1} git calls, nothing lost")


# ---------------------------------------------------------------- undo, redo, undo --file: journaled


def observed(repo: Path) -> tuple[str, ...]:
    """Everything an undo or redo changes: the files (as a tree), the index, HEAD and every branch tip."""
    scratch = repo / ".git" / "observed-index"
    env = {**os.environ, "GIT_INDEX_FILE": str(scratch)}
    scratch.unlink(missing_ok=True)
    subprocess.run(["git", "add", "-A"], cwd=repo, env=env, check=True, capture_output=True)
    files = subprocess.run(["git", "write-tree"], cwd=repo, env=env, check=True, capture_output=True, text=True)
    scratch.unlink()
    return (
        files.stdout.strip(),
        run_git(repo, "write-tree").strip(),
        subprocess.run(["git", "symbolic-ref", "-q", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip(),
        run_git(repo, "rev-parse", "HEAD").strip(),
        run_git(repo, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads/"),
    )


def user_work(make_repo: MakeRepo) -> Path:
    """Checkpoint 1 on `feature`, a commit F1 there, then `main` with unsaved, untracked and staged work."""
    repo = make_repo({"README.md": "# demo\n", "src/app.py": "v1\n", "src/util.py": "u1\n"})
    run_git(repo, "switch", "-q", "-c", "feature")
    (repo / "src/app.py").write_text("feature checkpoint\n", encoding="utf-8")
    assert adw_ok(repo, "checkpoint")
    (repo / "src/app.py").write_text("F1\n", encoding="utf-8")
    run_git(repo, "commit", "-q", "-am", "F1")
    run_git(repo, "switch", "-q", "main")
    (repo / "src/app.py").write_text("unsaved on main\n", encoding="utf-8")
    (repo / "notes.txt").write_text("untracked work\n", encoding="utf-8")
    (repo / "src/util.py").unlink()
    (repo / "staged.txt").write_text("staged\n", encoding="utf-8")
    run_git(repo, "add", "staged.txt")
    return repo


def adw_ok(repo: Path, *args: str) -> bool:
    done = subprocess.run([sys.executable, "-m", "adw", *args], cwd=repo, capture_output=True, text=True)
    assert done.returncode == 0, f"adw {' '.join(args)}: {done.stderr}"
    return True


def sweep(template: Path, tmp: Path, faulty_git: FaultyGit, args: list[str], undo_args: list[str],
          run: Run | None = None) -> int:
    """Kill `adw ARGS` at every git call of a copy of `template`; after each, the next command finishes or drops
    it: the state is wholly before or wholly after, fsck is clean, the state before is reachable through
    `adw checkpoints --all` (or on disk) and `undo_args` / redo move between the two. `run` runs the command
    that is killed (default: `faulty_git.run`, a process of its own)."""
    run = run or faulty_git.run
    before = observed(template)
    clean = tmp / "clean"
    shutil.copytree(template, clean, symlinks=True)
    assert faulty_git.run(clean, *args).returncode == 0
    after = observed(clean)
    assert after != before
    for kill_at in itertools.count(1):
        repo = tmp / f"kill-{kill_at}"
        shutil.copytree(template, repo, symlinks=True)
        if not run(repo, *args, kill_at=kill_at).killed:
            shutil.rmtree(repo)
            print(f"adw {' '.join(args)}: killed at each of {kill_at - 1} git calls, nothing lost")
            return kill_at - 1
        assert run_git(repo, "fsck", "--strict", "--no-dangling", "--no-progress") == ""
        listing = faulty_git.run(repo, "checkpoints", "--all", "--json")  # no lock blocks it; it finishes the rest
        assert listing.returncode == 0, f"kill at git call {kill_at}: {listing.stderr}"
        now = observed(repo)
        assert now in (before, after), f"kill at git call {kill_at} left a half-done state"
        trees = {entry["tree"] for entry in json.loads(listing.stdout)}
        assert before[0] in trees | {now[0]}, f"kill at git call {kill_at}: the files before are unreachable"
        follow = faulty_git.run(repo, *(undo_args if now == after else args))
        assert follow.returncode == 0, f"kill at git call {kill_at}: {follow.stderr}"
        assert observed(repo) == (before if now == after else after)
        shutil.rmtree(repo)
    raise AssertionError("unreachable")


@pytest.mark.faults
def test_undo_killed_at_every_git_call_is_all_or_nothing(
    tmp_path: Path, make_repo: MakeRepo, faulty_git: FaultyGit
) -> None:
    repo = user_work(make_repo)
    f1 = run_git(repo, "rev-parse", "feature").strip()
    calls = sweep(repo, tmp_path, faulty_git, ["undo"], ["redo"])
    assert calls >= 8, "the sweep must have interrupted every git call of the undo"
    assert run_git(repo, "rev-parse", "feature").strip() == f1


@pytest.mark.faults
def test_redo_killed_at_every_git_call_is_all_or_nothing(
    tmp_path: Path, make_repo: MakeRepo, faulty_git: FaultyGit
) -> None:
    repo = user_work(make_repo)
    assert adw_ok(repo, "undo")
    assert sweep(repo, tmp_path, faulty_git, ["redo"], ["undo"]) >= 6


@pytest.mark.faults
def test_undo_file_killed_at_every_git_call_is_all_or_nothing(
    tmp_path: Path, make_repo: MakeRepo, faulty_git: FaultyGit
) -> None:
    repo = make_repo({"README.md": "# demo\n", "src/app.py": "v1\n"})
    assert adw_ok(repo, "checkpoint")
    (repo / "src/app.py").write_text("edited, never committed\n", encoding="utf-8")
    # The follow-up is a second per-file undo: it returns to the edit (the checkpoint made before the first).
    assert sweep(repo, tmp_path, faulty_git, ["undo", "--file", "src/app.py"], ["undo", "--file", "src/app.py"]) >= 5
