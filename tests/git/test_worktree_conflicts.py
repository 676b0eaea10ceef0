"""Conflicts between parallel worktrees, previewed pairwise before anyone merges (`adw worktree conflicts`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adw.cli import main
from adw.git.checkpoints import Checkpoints
from adw.git.conflicts import ConflictChecker, ConflictReport, PairResult
from adw.git.refs import CONFLICTS_DIR
from adw.git.worktrees import Worktrees
from tests.conftest import MakeRepo, run_git

FILES = {"README.md": "# demo\n", "src/app.py": "def main():\n    return 1\n", "src/util.py": "X = 1\n"}


def commit_file(cwd: Path, rel: str, content: str) -> None:
    (cwd / rel).parent.mkdir(parents=True, exist_ok=True)
    (cwd / rel).write_text(content)
    run_git(cwd, "add", "-A")
    run_git(cwd, "commit", "-q", "-m", f"change {rel}")


def pair(report: ConflictReport, a: str, b: str) -> PairResult:
    found = [p for p in report.pairs if {p.a.name, p.b.name} == {a, b}]
    assert len(found) == 1, [(p.a.name, p.b.name) for p in report.pairs]
    return found[0]


@pytest.fixture
async def three(make_repo: MakeRepo) -> tuple[Path, dict[str, Path]]:
    """Worktrees a and b change the same line of src/app.py; c changes another file."""
    repo = make_repo(FILES)
    wts = await Worktrees.open(repo)
    paths = {name: (await wts.create(name)).worktree.path for name in ("a", "b", "c")}
    commit_file(paths["a"], "src/app.py", "def main():\n    return 2\n")
    commit_file(paths["b"], "src/app.py", "def main():\n    return 3\n")
    commit_file(paths["c"], "src/util.py", "X = 2\n")
    return repo, paths


async def test_every_pair_and_each_base_is_previewed(three: tuple[Path, dict[str, Path]]) -> None:
    repo, paths = three
    report = await ConflictChecker(await Worktrees.open(repo)).check()
    assert sorted(report.worktrees) == ["a", "b", "c"]
    assert len(report.pairs) == 3 + 3  # three pairs, three bases
    ab = pair(report, "a", "b")
    assert not ab.clean and not ab.base
    assert [(f.path, f.kind) for f in ab.files] == [("src/app.py", "content")]
    assert {ab.a.path, ab.b.path} == {paths["a"], paths["b"]}
    assert pair(report, "a", "c").clean and pair(report, "b", "c").clean
    bases = [p for p in report.pairs if p.base]
    assert {p.a.name for p in bases} == {"a", "b", "c"} and all(p.b.name == "main" and p.clean for p in bases)
    assert [(p.a.name, p.b.name) for p in report.involving("b")] == [("b", "a")]
    assert report.involving("c") == []
    assert (report.computed, report.cached) == (6, 0)


async def test_only_the_pairs_of_a_moved_branch_are_merged_again(three: tuple[Path, dict[str, Path]]) -> None:
    repo, paths = three
    await ConflictChecker(await Worktrees.open(repo)).check()
    cache = repo / ".git" / "adw" / CONFLICTS_DIR
    assert len(list(cache.glob("*.json"))) == 6
    commit_file(paths["c"], "src/app.py", "def main():\n    return 4\n")
    # a fresh checker (another process) reads the other results from disk
    report = await ConflictChecker(await Worktrees.open(repo)).check()
    assert (report.computed, report.cached) == (3, 3)  # c with a, with b, with main
    assert [f.path for f in pair(report, "a", "c").files] == ["src/app.py"]
    assert not pair(report, "b", "c").clean
    assert pair(report, "c", "main").clean
    assert len(list(cache.glob("*.json"))) == 6  # the results of c's old tip are gone


async def test_uncommitted_work_counts_once_it_is_checkpointed(three: tuple[Path, dict[str, Path]]) -> None:
    repo, paths = three
    checker = ConflictChecker(await Worktrees.open(repo))
    assert pair(await checker.check(), "a", "c").clean
    (paths["c"] / "src" / "app.py").write_text("def main():\n    return 5\n")
    assert pair(await checker.check(), "a", "c").clean  # not checkpointed: not seen
    await (await Checkpoints.open(paths["c"])).checkpoint("agent step")
    report = await checker.check()
    ac = pair(report, "a", "c")
    assert not ac.clean and [f.path for f in ac.files] == ["src/app.py"]
    side = ac.a if ac.a.name == "c" else ac.b
    assert side.checkpoint == 1
    commit_file(paths["c"], "src/util.py", "X = 3\n")  # a commit after the checkpoint: the checkpoint is old
    side = next(p.a for p in (await checker.check()).pairs if p.base and p.a.name == "c")
    assert side.checkpoint is None and side.tip == run_git(paths["c"], "rev-parse", "HEAD").strip()


async def test_modify_delete_and_unrelated_histories(make_repo: MakeRepo) -> None:
    repo = make_repo(FILES)
    wts = await Worktrees.open(repo)
    a = (await wts.create("a")).worktree.path
    b = (await wts.create("b")).worktree.path
    orphan = (await wts.create("orphan")).worktree.path
    commit_file(a, "src/util.py", "X = 9\n")
    run_git(b, "rm", "-q", "src/util.py")
    run_git(b, "commit", "-q", "-m", "drop util")
    run_git(orphan, "checkout", "-q", "--orphan", "lonely")
    commit_file(orphan, "other.txt", "x\n")
    report = await ConflictChecker(wts).check()
    assert [(f.path, f.kind) for f in pair(report, "a", "b").files] == [("src/util.py", "modify/delete")]
    lonely = pair(report, "a", "orphan")
    assert not lonely.clean and lonely.error is not None and "unrelated" in lonely.error
    assert pair(report, "b", "main").clean  # the pairs after the one git refused were still merged


async def test_a_torn_cache_file_is_merged_again(three: tuple[Path, dict[str, Path]]) -> None:
    repo, _ = three
    await ConflictChecker(await Worktrees.open(repo)).check()
    for file in (repo / ".git" / "adw" / CONFLICTS_DIR).glob("*.json"):
        file.write_text('{"clean": tr')
    report = await ConflictChecker(await Worktrees.open(repo)).check()
    assert report.computed == 6 and not pair(report, "a", "b").clean


def test_the_cli_lists_conflicts_and_exits_1(three: tuple[Path, dict[str, Path]],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    repo, _ = three
    assert main(["-C", str(repo), "worktree", "conflicts"]) == 1
    out = capsys.readouterr().out
    assert "a <-> b: src/app.py (content)" in out
    assert "1 of 6 pair(s) conflict (3 active worktree(s)" in out
    assert main(["-C", str(repo), "worktree", "conflicts", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["cached"] == 6 and sum(not p["clean"] for p in data["pairs"]) == 1


def test_the_cli_says_so_when_nothing_conflicts(make_repo: MakeRepo, capsys: pytest.CaptureFixture[str]) -> None:
    repo = make_repo(FILES)
    assert main(["-C", str(repo), "worktree", "conflicts"]) == 0
    assert "no conflicts among 0 pair(s) (0 active worktree(s)" in capsys.readouterr().out


def test_the_merge_preview_warns_of_conflicts_with_other_worktrees(
    three: tuple[Path, dict[str, Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    repo, _ = three
    assert main(["-C", str(repo), "worktree", "merge", "a", "--preview"]) == 0  # clean into main
    out = capsys.readouterr().out
    assert "warning: a also conflicts with 1 other active worktree(s):\n  b: src/app.py (content)" in out
    assert main(["-C", str(repo), "worktree", "merge", "c", "--preview"]) == 0
    assert "warning" not in capsys.readouterr().out
