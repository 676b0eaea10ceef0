"""kill -9 of `adw checkpoint` at every git-call boundary: nothing lost, no lock left, the next command works."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from tests.conftest import MakeRepo, run_git
from tests.faults import FaultyGit


@pytest.fixture
def faulty_git(tmp_path_factory: pytest.TempPathFactory) -> FaultyGit:
    return FaultyGit(tmp_path_factory.mktemp("faults"))


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
