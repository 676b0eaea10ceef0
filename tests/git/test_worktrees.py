"""Worktrees: create (names, include files, setup, ports), list, merge preview and strategies, safe removal,
archive and restore, prune, concurrency."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from adw.errors import InvalidNameError, NotARepositoryError, UnsafeOperationError, WorktreeError
from adw.git.checkpoints import Checkpoints
from adw.git.refs import ARCHIVE_NS, TRASH_DIR
from adw.git.worktrees import Strategy, Worktrees
from tests.conftest import MakeRepo, run_git


def rev(cwd: Path, ref: str = "HEAD") -> str:
    return run_git(cwd, "rev-parse", ref).strip()


def commit_file(cwd: Path, rel: str, content: str, message: str = "change") -> str:
    (cwd / rel).parent.mkdir(parents=True, exist_ok=True)
    (cwd / rel).write_text(content)
    run_git(cwd, "add", rel)
    run_git(cwd, "commit", "-q", "-m", message)
    return rev(cwd)


@pytest.fixture
async def wts(repo: Path) -> Worktrees:
    return await Worktrees.open(repo)


# ---------------------------------------------------------------- create


async def test_create_defaults_to_a_sibling_folder_and_an_adw_branch(repo: Path, wts: Worktrees) -> None:
    result = await wts.create("feature")
    info = result.worktree
    expected = repo.parent / "repo.worktrees" / "feature"
    assert info.path == expected
    assert info.branch == "adw/feature"
    assert info.head == rev(repo) == rev(expected)
    assert info.base == "main"
    assert run_git(expected, "symbolic-ref", "HEAD").strip() == "refs/heads/adw/feature"
    assert (expected / "src" / "app.py").read_text() == "def main():\n    return 1\n"
    assert run_git(expected, "status", "--porcelain") == ""
    assert str(expected) in run_git(repo, "worktree", "list")
    assert result.env["ADW_WORKTREE"] == "feature"
    assert result.env["ADW_WORKTREE_PATH"] == str(expected)
    assert result.included == [] and result.setup is None


async def test_create_with_a_base_and_a_branch(repo: Path, wts: Worktrees) -> None:
    first = rev(repo)
    commit_file(repo, "later.txt", "later\n")
    result = await wts.create("old", base=first, branch="topic/old")
    assert result.worktree.branch == "topic/old"
    assert rev(result.worktree.path) == first
    assert not (result.worktree.path / "later.txt").exists()
    with pytest.raises(WorktreeError, match="not a commit"):
        await wts.create("other", base="no-such-ref")


async def test_an_existing_branch_is_checked_out_as_is(repo: Path, wts: Worktrees) -> None:
    run_git(repo, "branch", "existing")
    commit_file(repo, "main-only.txt", "x\n")
    result = await wts.create("ex", branch="existing")
    assert rev(result.worktree.path) == rev(repo, "existing") != rev(repo)


@pytest.mark.parametrize("name", ["", "-rf", ".hidden", "a/b", "with space", "a..b", "x.lock", "a~1", "c:d", "q?"])
async def test_invalid_names_are_rejected(wts: Worktrees, name: str) -> None:
    with pytest.raises(InvalidNameError) as info:
        await wts.create(name)
    assert info.value.hint
    assert not (wts.root / name).exists() or name in ("", ".hidden")


async def test_invalid_branch_names_are_rejected(wts: Worktrees) -> None:
    for branch in ("-x", "bad branch", "a..b"):
        with pytest.raises(InvalidNameError):
            await wts.create("ok", branch=branch)
    assert await wts.all() == [await wts.get("@main")]


async def test_a_taken_name_or_branch_is_an_error(wts: Worktrees) -> None:
    await wts.create("one")
    with pytest.raises(WorktreeError, match="already exists"):
        await wts.create("one")
    with pytest.raises(WorktreeError) as info:
        await wts.create("two", branch="adw/one")  # checked out in worktree one
    assert "another worktree" in info.value.hint


async def test_unicode_names_and_a_repository_path_with_spaces_and_unicode(make_repo: MakeRepo) -> None:
    root = make_repo({"f.txt": "x\n"}, name="my répo ✓")
    wts = await Worktrees.open(root)
    result = await wts.create("café")
    assert result.worktree.path == root.parent / "my répo ✓.worktrees" / "café"
    assert (result.worktree.path / "f.txt").read_text() == "x\n"
    assert [i.name for i in await wts.all()] == ["@main", "café"]
    assert (await wts.remove("café")).branch_deleted
    assert not result.worktree.path.exists()


async def test_worktreeinclude_files_are_copied_and_reported(repo: Path, wts: Worktrees) -> None:
    (repo / ".gitignore").write_text(".env\nconfig/*.local.json\n*.log\n")
    (repo / ".worktreeinclude").write_text(".env\nconfig/*.local.json\n")
    (repo / ".env").write_text("SECRET=1\n")
    (repo / "config").mkdir()
    (repo / "config" / "db.local.json").write_text("{}\n")
    (repo / "debug.log").write_text("not listed\n")
    result = await wts.create("inc")
    path = result.worktree.path
    assert sorted(result.included) == [".env", "config/db.local.json"]
    assert (path / ".env").read_text() == "SECRET=1\n"
    assert (path / "config" / "db.local.json").read_text() == "{}\n"
    assert not (path / "debug.log").exists()
    assert "copied 2 file(s)" in result.message


async def test_setup_from_pyproject_runs_inside_the_worktree(repo: Path) -> None:
    (repo / "pyproject.toml").write_text(
        '[tool.adw.worktree]\nsetup = ["sh", "-c", "echo port=$ADW_PORT_BASE; pwd; touch made-by-setup; exit 3"]\n'
    )
    wts = await Worktrees.open(repo)
    result = await wts.create("s")
    assert result.setup is not None
    assert result.setup.returncode == 3
    assert f"port={result.env['ADW_PORT_BASE']}" in result.setup.output
    assert str(result.worktree.path) in result.setup.output
    assert (result.worktree.path / "made-by-setup").exists()
    assert "setup exited with 3" in result.message


async def test_setup_from_adw_toml_and_a_missing_program(repo: Path) -> None:
    (repo / ".adw.toml").write_text('[worktree]\nsetup = ["definitely-not-a-program-adw"]\n')
    result = await (await Worktrees.open(repo)).create("s")
    assert result.setup is not None and result.setup.returncode == 127
    assert "could not start setup" in result.setup.output


async def test_each_worktree_gets_a_distinct_deterministic_port_block(wts: Worktrees) -> None:
    a = (await wts.create("a")).worktree
    b = (await wts.create("b")).worktree
    assert a.ports == list(range(41000, 41010))
    assert b.ports == list(range(41010, 41020))
    assert (await wts.get("a")).ports == a.ports  # the same on every read
    assert wts.env_for(b)["ADW_PORT_BASE"] == "41010" and wts.env_for(b)["ADW_PORT_COUNT"] == "10"
    await wts.remove("a")
    c = (await wts.create("c")).worktree
    assert c.ports == a.ports  # the freed block is reused
    assert set(c.ports).isdisjoint(b.ports)


async def test_sixteen_concurrent_creates_all_succeed(wts: Worktrees) -> None:
    names = [f"w{i:02d}" for i in range(16)]
    results = await asyncio.gather(*(wts.create(name) for name in names))
    assert [r.worktree.name for r in results] == names
    blocks = [r.worktree.ports[0] for r in results]
    assert len(set(blocks)) == 16
    listed = await wts.all()
    assert sorted(i.name for i in listed if not i.is_main) == names
    for result in results:
        assert (result.worktree.path / "README.md").read_text() == "# demo\n"


# ---------------------------------------------------------------- list / get


async def test_list_reports_status_ahead_behind_and_disk(repo: Path, wts: Worktrees) -> None:
    path = (await wts.create("st")).worktree.path
    commit_file(path, "one.txt", "1\n")
    commit_file(path, "two.txt", "2\n")
    commit_file(repo, "main.txt", "m\n")
    infos = {i.name: i for i in await wts.all(status=True, disk=True)}
    main, st = infos["@main"], infos["st"]
    assert main.is_main and main.branch == "main" and main.path == repo
    assert (st.ahead, st.behind, st.dirty) == (2, 1, False)
    assert st.disk_bytes is not None and st.disk_bytes > 0
    (path / "README.md").write_text("dirty\n")
    assert (await wts.all(status=True))[1].dirty is True
    assert (await wts.all())[1].dirty is None  # status only when asked


async def test_get_by_name_branch_or_path(wts: Worktrees) -> None:
    info = (await wts.create("g")).worktree
    for key in ("g", "adw/g", str(info.path)):
        assert (await wts.get(key)).path == info.path
    with pytest.raises(WorktreeError, match="no worktree named"):
        await wts.get("missing")


async def test_checkpoint_counts_are_listed(wts: Worktrees) -> None:
    path = (await wts.create("cp")).worktree.path
    cps = await Checkpoints.open(path)
    await cps.checkpoint()
    (path / "x").write_text("x")
    await cps.checkpoint()
    assert (await wts.get("cp")).checkpoints == 2
    assert (await wts.get("@main")).checkpoints == 0


# ---------------------------------------------------------------- merge


async def test_merge_preview_is_clean_or_lists_conflicts_and_changes_nothing(repo: Path, wts: Worktrees) -> None:
    path = (await wts.create("p")).worktree.path
    commit_file(path, "new.txt", "new\n")
    preview = await wts.merge_preview("p")
    assert preview.clean and preview.conflicts == [] and (preview.source, preview.target) == ("adw/p", "main")
    commit_file(path, "README.md", "branch\n")
    commit_file(repo, "README.md", "main\n")
    main_head, branch_head = rev(repo), rev(path)
    preview = await wts.merge_preview("p")
    assert not preview.clean and preview.conflicts == ["README.md"]
    assert (rev(repo), rev(path)) == (main_head, branch_head)
    assert run_git(repo, "status", "--porcelain") == "" and run_git(path, "status", "--porcelain") == ""
    result = await wts.merge("p")
    assert not result.merged and "nothing changed" in result.message
    assert rev(repo) == main_head


async def test_merge_preview_of_a_detached_worktree_is_a_clear_error(wts: Worktrees) -> None:
    path = (await wts.create("det")).worktree.path
    run_git(path, "checkout", "-q", "--detach")
    with pytest.raises(WorktreeError, match="detached HEAD") as info:
        await wts.merge_preview(str(path))
    assert "switch -c" in info.value.hint


@pytest.mark.parametrize("strategy", ["merge", "squash", "rebase"])
async def test_merge_strategies(repo: Path, wts: Worktrees, strategy: Strategy) -> None:
    path = (await wts.create("m")).worktree.path
    commit_file(path, "feature.txt", "f\n")
    branch_commit = commit_file(path, "feature2.txt", "g\n")
    old_main = commit_file(repo, "main.txt", "m\n")
    result = await wts.merge("m", strategy=strategy)
    assert result.merged and result.commit == rev(repo)
    # main is checked out in the main worktree: its files follow.
    assert (repo / "feature2.txt").read_text() == "g\n" and (repo / "main.txt").read_text() == "m\n"
    assert run_git(repo, "status", "--porcelain") == ""
    parents = run_git(repo, "log", "-1", "--format=%P").split()
    if strategy == "merge":
        assert parents == [old_main, branch_commit]
    elif strategy == "squash":
        assert parents == [old_main]
        assert run_git(repo, "rev-list", "--count", f"{old_main}..main").strip() == "1"
    else:
        assert run_git(repo, "rev-list", "--count", f"{old_main}..main").strip() == "2"
        assert rev(path) == rev(repo)  # the worktree's branch was rebased
    # Merged in any way, the worktree can be removed without --force.
    assert (await wts.remove("m")).branch_deleted


async def test_merge_into_a_branch_not_checked_out_moves_only_the_ref(repo: Path, wts: Worktrees) -> None:
    run_git(repo, "branch", "release")
    path = (await wts.create("r", base="release")).worktree.path
    commit_file(path, "fix.txt", "fix\n")
    main_head = rev(repo)
    result = await wts.merge("r")
    assert result.merged and rev(repo, "release") == result.commit
    assert rev(repo) == main_head and not (repo / "fix.txt").exists()


async def test_never_merges_into_a_dirty_target(repo: Path, wts: Worktrees) -> None:
    path = (await wts.create("d")).worktree.path
    commit_file(path, "feature.txt", "f\n")
    (repo / "README.md").write_text("uncommitted\n")
    main_head = rev(repo)
    with pytest.raises(UnsafeOperationError) as info:
        await wts.merge("d")
    assert "never merges into a dirty worktree" in info.value.hint
    assert rev(repo) == main_head and (repo / "README.md").read_text() == "uncommitted\n"
    assert not (repo / "feature.txt").exists()


# ---------------------------------------------------------------- remove


async def test_removal_is_immediate_and_deletes_in_the_background(repo: Path, wts: Worktrees) -> None:
    info = (await wts.create("gone")).worktree
    result = await wts.remove("gone")
    assert not info.path.exists()
    assert result.branch_deleted and result.archive_ref is None
    assert run_git(repo, "branch", "--list", "adw/gone") == ""
    assert str(info.path) not in run_git(repo, "worktree", "list")
    trash = info.path.parent / TRASH_DIR
    for _ in range(200):
        if not any(trash.iterdir()):
            break
        await asyncio.sleep(0.05)
    assert not any(trash.iterdir())


@pytest.mark.parametrize(
    ("make_work", "problem"),
    [
        (lambda p: (p / "README.md").write_text("edited\n"), "uncommitted changes"),
        (lambda p: (p / "new.txt").write_text("new\n"), "untracked files"),
        (lambda p: commit_file(p, "c.txt", "c\n"), "commits on adw/w not merged"),
    ],
)
async def test_remove_refuses_unsaved_work_with_a_hint(
    wts: Worktrees, make_work: Callable[[Path], object], problem: str
) -> None:
    path = (await wts.create("w")).worktree.path
    make_work(path)
    with pytest.raises(UnsafeOperationError) as info:
        await wts.remove("w")
    assert problem in info.value.message
    assert "--archive" in info.value.hint and "--force" in info.value.hint
    assert path.exists()


async def test_force_discards_work(repo: Path, wts: Worktrees) -> None:
    path = (await wts.create("f")).worktree.path
    (path / "README.md").write_text("edited\n")
    commit_file(path, "c.txt", "c\n")
    result = await wts.remove("f", force=True)
    assert not path.exists() and result.archive_ref is None
    assert run_git(repo, "for-each-ref", "refs/adw/") == ""


async def test_a_squash_merged_branch_counts_as_merged(repo: Path, wts: Worktrees) -> None:
    path = (await wts.create("sq")).worktree.path
    commit_file(path, "a.txt", "a\n")
    commit_file(path, "b.txt", "b\n")
    run_git(repo, "merge", "-q", "--squash", "adw/sq")
    run_git(repo, "commit", "-q", "-m", "squashed by hand")
    assert (await wts.remove("sq")).branch_deleted
    assert not path.exists()


async def test_a_locked_worktree_is_refused_unless_forced(repo: Path, wts: Worktrees) -> None:
    path = (await wts.create("lk")).worktree.path
    run_git(repo, "worktree", "lock", "--reason", "on a usb disk", str(path))
    info = await wts.get("lk")
    assert info.locked and info.lock_reason == "on a usb disk"
    with pytest.raises(UnsafeOperationError, match="locked") as err:
        await wts.remove("lk")
    assert "unlock" in err.value.hint
    assert path.exists()
    await wts.remove("lk", force=True)
    assert not path.exists()
    assert all(i.name != "lk" for i in await wts.all())


async def test_the_main_worktree_cannot_be_removed(wts: Worktrees) -> None:
    with pytest.raises(UnsafeOperationError):
        await wts.remove("@main", force=True)


async def test_remove_drops_the_worktrees_checkpoints(repo: Path, wts: Worktrees) -> None:
    path = (await wts.create("c")).worktree.path
    await (await Checkpoints.open(path)).checkpoint()
    await (await Checkpoints.open(repo)).checkpoint()
    await wts.remove("c")
    assert run_git(repo, "for-each-ref", "--format=%(refname)", "refs/adw/").split() == [
        "refs/adw/checkpoints/@main/000001", "refs/adw/snapshot/@main/index", "refs/adw/snapshot/@main/last"
    ]


async def undo_that_keeps_a_branch_tip(path: Path) -> str:
    """In worktree `path`: a checkpoint on branch `side`, a commit S1 on it, back to the worktree's branch, then an
    undo that rewinds `side` to the checkpoint, so S1 is held only by the tip ref the undo keeps. Returns S1."""
    branch = run_git(path, "symbolic-ref", "--short", "HEAD").strip()
    run_git(path, "switch", "-q", "-c", "side")
    cps = await Checkpoints.open(path)
    await cps.checkpoint("on side")
    s1 = commit_file(path, "side.txt", "side work\n", "S1")
    run_git(path, "switch", "-q", branch)
    await cps.undo()
    assert rev(path, "side") != s1
    assert run_git(path, "for-each-ref", "refs/adw/tips/") != ""
    return s1


def pin_in_journal(repo: Path, ident: str, content: str) -> str:
    """A commit pinned under refs/adw/journal/IDENT/ and held by nothing else, as an undo killed after pinning
    the state it saved leaves it."""
    tree = run_git(repo, "rev-parse", "HEAD^{tree}").strip()
    commit = subprocess.run(["git", "commit-tree", tree, "-p", "HEAD", "-m", content], cwd=repo, check=True,
                            capture_output=True, text=True).stdout.strip()
    run_git(repo, "update-ref", f"refs/adw/journal/{ident}/0", commit)
    return commit


def held(repo: Path, commit: str) -> bool:
    """Whether a ref (not a reflog) reaches `commit`, also after `git gc --prune=now`."""
    run_git(repo, "gc", "-q", "--prune=now")
    return run_git(repo, "for-each-ref", "--contains", commit) != ""


async def test_archive_holds_what_kept_branch_tips_and_journal_pins_held(repo: Path, wts: Worktrees) -> None:
    path = (await wts.create("tp")).worktree.path
    s1 = await undo_that_keeps_a_branch_tip(path)
    pinned = pin_in_journal(repo, "tp", "state an interrupted undo saved")
    removed = await wts.remove("tp", archive=True)
    assert run_git(repo, "for-each-ref", "refs/adw/tips/", "refs/adw/journal/", "refs/adw/checkpoints/",
                   "refs/adw/redo/") == ""
    assert removed.archive_ref is not None
    for commit in (s1, pinned):
        assert held(repo, commit)
        run_git(repo, "merge-base", "--is-ancestor", commit, removed.archive_ref)  # fails unless it is


async def test_remove_drops_kept_tips_and_pins_only_when_other_refs_hold_their_commits(
    repo: Path, wts: Worktrees
) -> None:
    path = (await wts.create("tp")).worktree.path
    s1 = await undo_that_keeps_a_branch_tip(path)
    merged = pin_in_journal(repo, "tp", "a state some branch holds")
    run_git(repo, "branch", "holds-it", merged)
    removed = await wts.remove("tp")  # merged: `side` is back at main's commit after the undo
    assert run_git(repo, "branch", "--list", "side") == ""  # the worktree's branch then, so removed with it
    assert run_git(repo, "for-each-ref", "refs/adw/journal/") == ""
    kept = run_git(repo, "for-each-ref", "--format=%(refname)", "refs/adw/tips/").split()
    assert len(kept) == 1 and kept[0].startswith("refs/adw/tips/tp/")
    assert held(repo, s1), "S1 is held by no branch: its tip ref must stay"
    assert "refs/adw/tips/tp/" in removed.message

    # Once a branch holds S1, the next worktree of that id drops the tip with its own removal.
    run_git(repo, "branch", "keeps-s1", s1)
    path = (await wts.create("tp")).worktree.path
    await wts.remove("tp")
    assert run_git(repo, "for-each-ref", "refs/adw/tips/") == ""


# ---------------------------------------------------------------- archive / restore


async def test_archive_then_restore_brings_everything_back(repo: Path, wts: Worktrees) -> None:
    path = (await wts.create("arch")).worktree.path
    committed = commit_file(path, "committed.txt", "c\n")
    (path / "staged.txt").write_text("staged\n")
    run_git(path, "add", "staged.txt")
    (path / "staged.txt").write_text("staged, then edited\n")
    (path / "README.md").write_text("modified\n")
    (path / "untracked.txt").write_text("untracked\n")
    cps = await Checkpoints.open(path)
    await cps.checkpoint()
    index_before = run_git(path, "ls-files", "-s")

    removed = await wts.remove("arch", archive=True)
    assert removed.archive_ref is not None and removed.archive_ref.startswith(f"{ARCHIVE_NS}/arch/")
    assert not path.exists()
    assert run_git(repo, "branch", "--list", "adw/arch") == ""
    assert run_git(repo, "for-each-ref", "refs/adw/checkpoints/") == ""
    run_git(repo, "gc", "-q", "--prune=now")

    restored = await wts.restore("arch")
    new_path = restored.worktree.path
    assert new_path == path
    assert rev(new_path) == committed
    assert run_git(new_path, "symbolic-ref", "HEAD").strip() == "refs/heads/adw/arch"
    assert (new_path / "committed.txt").read_text() == "c\n"
    assert (new_path / "staged.txt").read_text() == "staged, then edited\n"
    assert (new_path / "README.md").read_text() == "modified\n"
    assert (new_path / "untracked.txt").read_text() == "untracked\n"
    assert run_git(new_path, "ls-files", "-s") == index_before
    assert run_git(new_path, "ls-files", "--others", "--exclude-standard") == "untracked.txt\n"


async def test_restore_without_an_archive_is_an_error(wts: Worktrees) -> None:
    with pytest.raises(WorktreeError, match="no archive"):
        await wts.restore("never")


# ---------------------------------------------------------------- prune and errors


async def test_prune_reports_stale_entries_and_orphan_folders(repo: Path, wts: Worktrees) -> None:
    stale = (await wts.create("stale")).worktree.path
    await wts.create("kept")
    shutil.rmtree(stale)
    orphan = wts.root / "orphan"
    orphan.mkdir()
    (orphan / "file").write_text("mine\n")
    result = await wts.prune()
    assert result.pruned_entries == [str(stale)]
    assert result.orphan_folders == [orphan]
    assert (orphan / "file").read_text() == "mine\n"
    assert str(stale) not in run_git(repo, "worktree", "list")
    assert [i.name for i in await wts.all()] == ["@main", "kept"]


async def test_not_a_repository_and_bare_repositories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(NotARepositoryError):
        await Worktrees.open(plain)
    run_git(tmp_path, "init", "-q", "--bare", "bare.git")
    with pytest.raises(NotARepositoryError) as info:
        await Worktrees.open(tmp_path / "bare.git")
    assert info.value.hint


async def test_worktrees_open_from_a_linked_worktree_sees_the_same_repository(repo: Path, wts: Worktrees) -> None:
    path = (await wts.create("inner")).worktree.path
    from_inside = await Worktrees.open(path)
    assert from_inside.main_root == repo
    assert from_inside.root == wts.root
    assert [i.name for i in await from_inside.all()] == ["@main", "inner"]
