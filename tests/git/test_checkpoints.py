"""Checkpoints: snapshots that leave the user's index, stash, branch and files alone; undo/redo; per-file undo."""

from __future__ import annotations

import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

from adw.errors import CheckpointError, PathOutsideError
from adw.git.checkpoints import Checkpoints
from tests.conftest import MakeRepo, run_git

FileState = dict[str, tuple[str, bytes | str, bool]]


def files_of(root: Path) -> FileState:
    """Every file under root but .git: (kind, content or link target, executable); nested .git folders included."""
    found: FileState = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if here == root and ".git" in dirnames:
            dirnames.remove(".git")
        for name in [*dirnames, *filenames]:
            path = here / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                found[rel] = ("link", os.readlink(path), False)
            elif path.is_file():
                found[rel] = ("file", path.read_bytes(), bool(path.stat().st_mode & stat.S_IXUSR))
    return found


def git_out(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True).stdout.strip()


def full_state(root: Path) -> tuple[FileState, str, str, str]:
    """Files, index entries (mode, blob, stage, path), HEAD and its branch."""
    return files_of(root), git_out(root, "ls-files", "-s"), git_out(root, "rev-parse", "HEAD"), git_out(
        root, "symbolic-ref", "-q", "HEAD"
    )


def reachable(root: Path, *oids: str) -> bool:
    """Reachable from refs (not only from reflogs)."""
    listed = set(git_out(root, "rev-list", "--all").split())
    return all(oid in listed for oid in oids)


def checkpoint_refs(root: Path) -> list[str]:
    return git_out(root, "for-each-ref", "--format=%(refname)", "refs/adw/").splitlines()


# ---------------------------------------------------------------- capture


def _next_second() -> None:
    time.sleep(1.01 - time.time() % 1)


async def test_the_first_checkpoint_sees_an_edit_made_in_the_second_the_index_was_written(make_repo: MakeRepo) -> None:
    """git compares file times in whole seconds and checks by content an entry written in its index's own second
    ("racily clean"). The first checkpoint seeds its shadow index from the user's index: a copy dated later made a
    same-size edit within that second look unchanged, and the checkpoint kept the committed content."""
    for attempt in range(5):  # the repository and the edit must fall in one second; a stalled machine retries
        _next_second()
        repo = make_repo({"app.py": "return 1\n"}, name=f"repo{attempt}")
        (repo / "app.py").write_text("return 2\n", encoding="utf-8")
        if int((repo / ".git/index").stat().st_mtime) == int((repo / "app.py").stat().st_ctime):
            break
    _next_second()
    result = await (await Checkpoints.open(repo)).checkpoint("edit")
    assert result.checkpoint is not None
    assert run_git(repo, "show", f"{result.checkpoint.commit}:app.py") == "return 2\n"


async def test_a_checkpoint_captures_everything_and_touches_nothing(repo: Path) -> None:
    (repo / ".gitignore").write_text("*.log\n")
    (repo / "README.md").write_text("# staged\n")
    run_git(repo, "add", "README.md")
    (repo / "README.md").write_text("# staged then edited\n")
    (repo / "notes.txt").write_text("untracked\n")
    (repo / "debug.log").write_text("ignored\n")
    index_bytes = (repo / ".git" / "index").read_bytes()
    before = files_of(repo)

    cps = await Checkpoints.open(repo)
    result = await cps.checkpoint("first")

    assert result.created and result.checkpoint is not None
    cp = result.checkpoint
    assert (repo / ".git" / "index").read_bytes() == index_bytes
    assert files_of(repo) == before
    assert git_out(repo, "stash", "list") == ""
    assert git_out(repo, "symbolic-ref", "HEAD") == "refs/heads/main"
    assert cp.head == git_out(repo, "rev-parse", "HEAD")
    assert cp.branch == "refs/heads/main"
    assert cp.message == "first"
    tree = git_out(repo, "ls-tree", "-r", "--name-only", cp.commit).splitlines()
    assert sorted(tree) == [".gitignore", "README.md", "notes.txt", "src/app.py"]
    assert git_out(repo, "show", f"{cp.commit}:README.md") == "# staged then edited"
    # The index tree holds the staged version, not the edited one.
    assert git_out(repo, "show", f"{cp.index_tree}:README.md") == "# staged"
    # Beside the checkpoint, its trees are kept as the last snapshot's (the next one is built on them).
    assert checkpoint_refs(repo) == [
        "refs/adw/checkpoints/@main/000001", "refs/adw/snapshot/@main/index", "refs/adw/snapshot/@main/last"
    ]
    assert git_out(repo, "rev-parse", "refs/adw/snapshot/@main/last") == cp.tree
    assert git_out(repo, "rev-parse", "refs/adw/snapshot/@main/index") == cp.index_tree


async def test_nothing_changed_means_no_new_checkpoint(repo: Path) -> None:
    cps = await Checkpoints.open(repo)
    first = await cps.checkpoint()
    again = await cps.checkpoint()
    assert first.created and not again.created
    assert again.checkpoint is not None and again.checkpoint.number == 1
    assert "nothing changed" in again.message
    assert len(await cps.history()) == 1
    run_git(repo, "add", "README.md")  # re-adding an unchanged file changes nothing either
    assert not (await cps.checkpoint()).created
    (repo / "src" / "app.py").write_text("changed\n")
    assert (await cps.checkpoint()).created
    assert [c.number for c in await cps.history()] == [1, 2]


async def test_a_staging_change_alone_is_a_change(repo: Path) -> None:
    cps = await Checkpoints.open(repo)
    (repo / "new.txt").write_text("x\n")
    await cps.checkpoint()
    run_git(repo, "add", "new.txt")
    assert (await cps.checkpoint()).created


async def test_checkpoints_survive_restarts_and_gc(repo: Path) -> None:
    cps = await Checkpoints.open(repo)
    (repo / "scratch.txt").write_text("only in a checkpoint\n")
    made = await cps.checkpoint("keep me")
    assert made.checkpoint is not None
    (repo / "scratch.txt").unlink()
    run_git(repo, "gc", "-q", "--prune=now")
    listed = await (await Checkpoints.open(repo)).history()
    assert [(c.number, c.commit, c.message) for c in listed] == [(1, made.checkpoint.commit, "keep me")]
    assert git_out(repo, "show", f"{made.checkpoint.commit}:scratch.txt") == "only in a checkpoint"


# ---------------------------------------------------------------- undo / redo


async def test_undo_with_changes_returns_to_the_latest_then_redo_comes_back(repo: Path) -> None:
    cps = await Checkpoints.open(repo)
    await cps.checkpoint()
    at_checkpoint = full_state(repo)
    (repo / "README.md").write_text("edited\n")
    (repo / "created.txt").write_text("new\n")
    (repo / "src" / "app.py").unlink()
    run_git(repo, "add", "created.txt")
    changed = full_state(repo)

    undone = await cps.undo()
    assert undone.restored.number == 1
    assert undone.saved is not None and undone.saved.redo
    assert full_state(repo) == at_checkpoint

    # A new instance (a restart) sees the redo stack.
    redone = await (await Checkpoints.open(repo)).redo()
    assert redone.restored.number == undone.saved.number
    assert full_state(repo) == changed
    assert git_out(repo, "stash", "list") == ""


async def test_undo_without_changes_goes_to_the_one_before(repo: Path) -> None:
    cps = await Checkpoints.open(repo)
    await cps.checkpoint()
    first = full_state(repo)
    (repo / "README.md").write_text("second\n")
    await cps.checkpoint()
    second = full_state(repo)

    result = await cps.undo()
    assert result.restored.number == 1 and result.saved is None
    assert full_state(repo) == first
    undo, redo = await cps.stacks()
    assert [c.number for c in undo] == [1] and [c.number for c in redo] == [2]
    with pytest.raises(CheckpointError, match="oldest"):
        await cps.undo()
    await cps.redo()
    assert full_state(repo) == second
    with pytest.raises(CheckpointError, match="nothing to redo"):
        await cps.redo()


async def test_undo_to_the_checkpoint_the_files_equal_says_it_changed_nothing(repo: Path) -> None:
    cps = await Checkpoints.open(repo)
    await cps.checkpoint()
    (repo / "README.md").write_text("second\n")
    await cps.checkpoint()
    before, stacks = full_state(repo), await cps.stacks()
    result = await cps.undo(to=2)
    assert result.message == "the files already equal checkpoint 2; nothing to undo"
    assert full_state(repo) == before and await cps.stacks() == stacks


async def test_undo_with_no_checkpoint_is_an_error(repo: Path) -> None:
    with pytest.raises(CheckpointError) as info:
        await (await Checkpoints.open(repo)).undo()
    assert info.value.hint


async def test_undo_to_a_numbered_checkpoint_and_redo_step_by_step(repo: Path) -> None:
    cps = await Checkpoints.open(repo)
    states = []
    for text in ("one", "two", "three"):
        (repo / "README.md").write_text(text)
        await cps.checkpoint()
        states.append(full_state(repo))
    await cps.undo(to=1)
    assert full_state(repo) == states[0]
    await cps.redo()
    assert full_state(repo) == states[1]
    await cps.redo()
    assert full_state(repo) == states[2]
    with pytest.raises(CheckpointError, match="not on the undo stack"):
        await cps.undo(to=99)


async def test_undo_to_the_current_checkpoint_without_changes_is_a_no_op(repo: Path) -> None:
    cps = await Checkpoints.open(repo)
    await cps.checkpoint()
    start = full_state(repo)
    result = await cps.undo(to=1)
    assert result.restored.number == 1 and result.saved is None
    assert full_state(repo) == start
    assert [c.number for c in (await cps.stacks())[0]] == [1]


async def test_redo_refuses_when_files_changed_since_the_undo(repo: Path) -> None:
    cps = await Checkpoints.open(repo)
    await cps.checkpoint()
    (repo / "README.md").write_text("later\n")
    await cps.undo()
    (repo / "README.md").write_text("edited after undo\n")
    with pytest.raises(CheckpointError, match="changed since") as info:
        await cps.redo()
    assert info.value.hint
    assert (repo / "README.md").read_text() == "edited after undo\n"


async def test_a_new_checkpoint_ends_the_redo_history_but_keeps_it_reachable(repo: Path) -> None:
    cps = await Checkpoints.open(repo)
    await cps.checkpoint()
    (repo / "README.md").write_text("undone work\n")
    undone = await cps.undo()
    assert undone.saved is not None
    (repo / "other.txt").write_text("x\n")
    await cps.checkpoint()
    with pytest.raises(CheckpointError, match="nothing to redo"):
        await cps.redo()
    run_git(repo, "gc", "-q", "--prune=now")
    assert reachable(repo, undone.saved.commit)
    assert git_out(repo, "show", f"{undone.saved.commit}:README.md") == "undone work"


async def test_undo_deletes_only_files_created_after_the_target_never_ignored_ones(repo: Path) -> None:
    (repo / ".gitignore").write_text("*.log\nbuild/\n")
    cps = await Checkpoints.open(repo)
    await cps.checkpoint()
    (repo / "created.txt").write_text("new\n")
    (repo / "later.log").write_text("ignored\n")
    (repo / "build").mkdir()
    (repo / "build" / "out.bin").write_bytes(b"\x00\x01")
    await cps.undo()
    assert not (repo / "created.txt").exists()
    assert (repo / "later.log").read_text() == "ignored\n"
    assert (repo / "build" / "out.bin").read_bytes() == b"\x00\x01"
    await cps.redo()
    assert (repo / "created.txt").read_text() == "new\n"


async def test_undo_refuses_to_overwrite_an_ignored_file_in_the_way(repo: Path) -> None:
    cps = await Checkpoints.open(repo)
    (repo / "cache.txt").write_text("checkpointed\n")
    await cps.checkpoint()
    (repo / "cache.txt").unlink()
    (repo / ".gitignore").write_text("cache.txt\n")
    await cps.checkpoint()
    (repo / "cache.txt").write_text("ignored, precious\n")
    with pytest.raises(CheckpointError, match=r"cache\.txt"):
        await cps.undo()  # checkpoint 1 has cache.txt, which would overwrite the ignored file
    assert (repo / "cache.txt").read_text() == "ignored, precious\n"
    assert (repo / ".gitignore").exists()
    assert [c.number for c in (await cps.stacks())[0]] == [1, 2]


async def test_commits_between_checkpoints_stay_reachable(repo: Path) -> None:
    cps = await Checkpoints.open(repo)
    first = await cps.checkpoint()
    (repo / "feature.py").write_text("x = 1\n")
    run_git(repo, "add", "feature.py")
    run_git(repo, "commit", "-q", "-m", "feature")
    committed = git_out(repo, "rev-parse", "HEAD")
    await cps.checkpoint()
    after_commit = full_state(repo)

    await cps.undo()
    assert first.checkpoint is not None
    assert git_out(repo, "rev-parse", "HEAD") == first.checkpoint.head
    assert git_out(repo, "symbolic-ref", "HEAD") == "refs/heads/main"
    assert not (repo / "feature.py").exists()
    run_git(repo, "gc", "-q", "--prune=now")
    assert reachable(repo, committed)
    await cps.redo()
    assert full_state(repo) == after_commit


async def test_undo_across_a_branch_switch_restores_the_branch(repo: Path) -> None:
    cps = await Checkpoints.open(repo)
    await cps.checkpoint()
    on_main = full_state(repo)
    run_git(repo, "switch", "-q", "-c", "feature")
    (repo / "f.txt").write_text("f\n")
    run_git(repo, "add", "f.txt")
    run_git(repo, "commit", "-q", "-m", "f")
    on_feature = full_state(repo)
    await cps.undo()
    assert full_state(repo) == on_main
    await cps.redo()
    assert full_state(repo) == on_feature


async def test_modes_symlinks_binaries_renames_and_deletions_round_trip(repo: Path) -> None:
    (repo / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (repo / "blob.bin").write_bytes(bytes(range(256)) * 4)
    cps = await Checkpoints.open(repo)
    await cps.checkpoint()
    start = full_state(repo)
    (repo / "run.sh").chmod(0o755)
    (repo / "blob.bin").write_bytes(b"\x00\xff" * 100)
    (repo / "src" / "app.py").rename(repo / "src" / "main.py")
    (repo / "README.md").unlink()
    (repo / "link").symlink_to("src/main.py")
    (repo / "dangling").symlink_to("nowhere")
    changed = full_state(repo)
    await cps.undo()
    assert full_state(repo) == start
    assert not os.access(repo / "run.sh", os.X_OK)
    await cps.redo()
    assert full_state(repo) == changed
    assert os.access(repo / "run.sh", os.X_OK)
    assert os.readlink(repo / "link") == "src/main.py"


async def test_a_symlink_becoming_a_file_and_back(repo: Path) -> None:
    (repo / "link").symlink_to("README.md")
    cps = await Checkpoints.open(repo)
    await cps.checkpoint()
    (repo / "link").unlink()
    (repo / "link").write_text("now a file\n")
    await cps.undo()
    assert (repo / "link").is_symlink() and os.readlink(repo / "link") == "README.md"
    await cps.redo()
    assert not (repo / "link").is_symlink() and (repo / "link").read_text() == "now a file\n"


async def test_gitignore_changed_between_checkpoints(repo: Path) -> None:
    (repo / ".gitignore").write_text("*.tmp\n")
    (repo / "a.tmp").write_text("ignored at first\n")
    cps = await Checkpoints.open(repo)
    first = await cps.checkpoint()
    assert first.checkpoint is not None
    assert "a.tmp" not in git_out(repo, "ls-tree", "-r", "--name-only", first.checkpoint.commit)
    (repo / ".gitignore").write_text("*.cache\n")
    second = await cps.checkpoint()
    assert second.checkpoint is not None
    assert "a.tmp" in git_out(repo, "ls-tree", "-r", "--name-only", second.checkpoint.commit).splitlines()
    changed = full_state(repo)
    await cps.undo()
    assert (repo / ".gitignore").read_text() == "*.tmp\n"
    # a.tmp existed at checkpoint 1, ignored then: checkpoint 1 proves nothing about it, so undo keeps it.
    assert (repo / "a.tmp").read_text() == "ignored at first\n"
    await cps.redo()
    assert full_state(repo) == changed


async def test_a_file_ignored_only_by_a_newer_gitignore_is_left_alone_by_undo(repo: Path) -> None:
    cps = await Checkpoints.open(repo)
    await cps.checkpoint()
    (repo / ".gitignore").write_text("*.cache\n")
    (repo / "b.cache").write_text("ignored now\n")
    await cps.checkpoint()
    await cps.undo()
    assert not (repo / ".gitignore").exists()
    assert (repo / "b.cache").read_text() == "ignored now\n"


# ---------------------------------------------------------------- per-file undo and listing


async def test_undo_file_restores_one_path_and_is_itself_undoable(repo: Path) -> None:
    cps = await Checkpoints.open(repo)
    await cps.checkpoint()
    (repo / "README.md").write_text("v2\n")
    (repo / "src" / "app.py").write_text("keep me\n")
    await cps.checkpoint()
    (repo / "README.md").write_text("v3\n")
    index_bytes = (repo / ".git" / "index").read_bytes()

    result = await cps.undo_file("README.md", to=1)
    assert result.path == "README.md" and result.restored_from.number == 1 and not result.deleted
    assert result.saved is not None  # v3 was checkpointed first
    assert (repo / "README.md").read_text() == "# demo\n"
    assert (repo / "src" / "app.py").read_text() == "keep me\n"
    assert (repo / ".git" / "index").read_bytes() == index_bytes

    await cps.undo()
    assert (repo / "README.md").read_text() == "v3\n"


async def test_undo_file_defaults_to_the_latest_different_version(repo: Path) -> None:
    cps = await Checkpoints.open(repo)
    (repo / "README.md").write_text("v1\n")
    await cps.checkpoint()
    (repo / "src" / "app.py").write_text("other\n")
    await cps.checkpoint()
    (repo / "README.md").write_text("v2\n")
    result = await cps.undo_file(str(repo / "README.md"))
    assert result.restored_from.number == 2
    assert (repo / "README.md").read_text() == "v1\n"
    with pytest.raises(CheckpointError, match="different version"):
        await cps.undo_file("never-existed.txt")


async def test_undo_file_of_a_file_created_after_the_checkpoint_deletes_it(repo: Path) -> None:
    cps = await Checkpoints.open(repo)
    await cps.checkpoint()
    (repo / "new.txt").write_text("created\n")
    result = await cps.undo_file("new.txt")
    assert result.deleted and not (repo / "new.txt").exists()
    await cps.undo()
    assert (repo / "new.txt").read_text() == "created\n"


async def test_undo_file_of_a_symlink_restores_the_link_itself(repo: Path) -> None:
    (repo / "link").symlink_to("README.md")
    cps = await Checkpoints.open(repo)
    await cps.checkpoint()
    (repo / "link").unlink()
    (repo / "link").symlink_to("src/app.py")
    (repo / "README.md").write_text("edited target\n")
    result = await cps.undo_file("link")
    assert result.path == "link"
    assert os.readlink(repo / "link") == "README.md"
    assert (repo / "README.md").read_text() == "edited target\n"


async def test_list_by_file_names_the_checkpoints_that_changed_it(repo: Path) -> None:
    cps = await Checkpoints.open(repo)
    await cps.checkpoint()  # 1: nothing changed against HEAD
    (repo / "README.md").write_text("a\n")
    await cps.checkpoint()  # 2
    (repo / "src" / "app.py").write_text("b\n")
    await cps.checkpoint()  # 3
    (repo / "README.md").write_text("c\n")
    await cps.checkpoint()  # 4
    assert [c.number for c in await cps.history(file="README.md")] == [2, 4]
    assert [c.number for c in await cps.history(file="src/app.py")] == [3]
    assert [c.number for c in await cps.history(file="missing.txt")] == []
    await cps.undo()
    assert [c.number for c in await cps.history(file="README.md")] == [2]
    assert [c.number for c in await cps.history(file="README.md", include_redo=True)] == [2, 4]


async def test_paths_outside_the_worktree_are_refused(repo: Path, tmp_path: Path) -> None:
    cps = await Checkpoints.open(repo)
    await cps.checkpoint()
    (tmp_path / "outside.txt").write_text("x\n")
    for bad in ("../outside.txt", str(tmp_path / "outside.txt")):
        with pytest.raises(PathOutsideError):
            await cps.undo_file(bad)
        with pytest.raises(PathOutsideError):
            await cps.history(file=bad)
    assert (tmp_path / "outside.txt").read_text() == "x\n"


# ---------------------------------------------------------------- skipped content


async def test_untracked_files_over_the_size_cap_are_skipped_and_left_alone(repo: Path) -> None:
    (repo / ".adw.toml").write_text("[checkpoint]\nmax_untracked_size = 100\n")
    cps = await Checkpoints.open(repo)
    await cps.checkpoint()
    (repo / "big.dat").write_bytes(b"x" * 101)
    (repo / "small.dat").write_bytes(b"x" * 100)
    made = await cps.checkpoint()
    assert made.skipped == ["big.dat"]
    assert made.checkpoint is not None
    names = git_out(repo, "ls-tree", "-r", "--name-only", made.checkpoint.commit).splitlines()
    assert "small.dat" in names and "big.dat" not in names
    await cps.undo()  # back before both files existed
    assert not (repo / "small.dat").exists()
    assert (repo / "big.dat").read_bytes() == b"x" * 101


async def test_the_default_cap_is_ten_megabytes(repo: Path) -> None:
    cps = await Checkpoints.open(repo)
    assert cps.config.checkpoint.max_untracked_size == 10_000_000


@pytest.mark.parametrize("with_commit", [True, False])
async def test_a_nested_repository_is_skipped_and_never_touched(repo: Path, with_commit: bool) -> None:
    cps = await Checkpoints.open(repo)
    await cps.checkpoint()  # before the nested repository exists
    nested = repo / "vendor" / "nested"
    nested.mkdir(parents=True)
    run_git(nested, "init", "-q", "-b", "main")
    (nested / "inner.txt").write_text("inner\n")
    if with_commit:
        run_git(nested, "add", "inner.txt")
        run_git(nested, "commit", "-q", "-m", "inner")
    (nested / "dirty.txt").write_text("uncommitted\n")
    (repo / "vendor" / "plain.txt").write_text("beside it\n")
    made = await cps.checkpoint()
    assert made.created and made.skipped == ["vendor/nested/"]
    before = files_of(nested)
    nested_git = files_of(nested / ".git")

    (repo / "README.md").write_text("edit\n")
    await cps.checkpoint()
    await cps.undo()
    await cps.undo()  # back to before the nested repository: vendor/plain.txt goes, the repository stays
    assert not (repo / "vendor" / "plain.txt").exists()
    assert files_of(nested) == before
    assert files_of(nested / ".git") == nested_git
    await cps.redo()
    await cps.redo()
    assert (repo / "vendor" / "plain.txt").read_text() == "beside it\n"
    assert files_of(nested) == before
    assert (repo / "README.md").read_text() == "edit\n"


async def test_a_submodule_survives_checkpoint_and_undo(make_repo: MakeRepo, tmp_path: Path) -> None:
    lib = make_repo({"lib.txt": "library\n"}, name="lib")
    main = make_repo({"README.md": "main\n"}, name="main")
    run_git(main, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(lib), "lib")
    run_git(main, "commit", "-q", "-m", "add submodule")
    cps = await Checkpoints.open(main)
    await cps.checkpoint()
    start = full_state(main)
    (main / "README.md").write_text("changed\n")
    (main / "new.txt").write_text("n\n")
    await cps.checkpoint()
    await cps.undo()
    assert full_state(main) == start
    assert (main / "lib" / "lib.txt").read_text() == "library\n"
    assert git_out(main / "lib", "rev-parse", "--show-toplevel") == str(main / "lib")
    assert run_git(main, "submodule", "status").startswith(" ")  # clean, checked out at the recorded commit
    await cps.redo()
    assert (main / "new.txt").read_text() == "n\n"


# ---------------------------------------------------------------- HEAD states, worktrees, conflicts


async def test_detached_head_checkpoint_and_undo(repo: Path) -> None:
    (repo / "README.md").write_text("second\n")
    run_git(repo, "commit", "-q", "-am", "second")
    run_git(repo, "checkout", "-q", "--detach", "HEAD~1")
    cps = await Checkpoints.open(repo)
    made = await cps.checkpoint()
    assert made.checkpoint is not None and made.checkpoint.branch is None
    start = full_state(repo)
    (repo / "x.txt").write_text("x\n")
    run_git(repo, "add", "x.txt")
    run_git(repo, "commit", "-q", "-m", "on detached head")
    detached_commit = git_out(repo, "rev-parse", "HEAD")
    await cps.undo()
    assert full_state(repo) == start
    assert git_out(repo, "symbolic-ref", "-q", "HEAD") == ""
    assert git_out(repo, "rev-parse", "main") != start[2]  # main never moved
    assert reachable(repo, detached_commit)
    await cps.redo()
    assert git_out(repo, "rev-parse", "HEAD") == detached_commit


async def test_linked_worktrees_have_separate_stacks(repo: Path, tmp_path: Path) -> None:
    other = tmp_path / "other wt ✓"
    run_git(repo, "worktree", "add", "-q", "-b", "side", str(other))
    main_cps = await Checkpoints.open(repo)
    side_cps = await Checkpoints.open(other)
    await main_cps.checkpoint()
    (other / "side.txt").write_text("side\n")
    await side_cps.checkpoint()
    await side_cps.checkpoint()
    assert len(await main_cps.history()) == 1 and len(await side_cps.history()) == 1
    refs = checkpoint_refs(repo)
    assert "refs/adw/checkpoints/@main/000001" in refs
    assert any(r.startswith("refs/adw/checkpoints/other") and r != "refs/adw/checkpoints/@main/000001" for r in refs)
    (other / "side.txt").write_text("edited\n")
    await side_cps.undo()
    assert (other / "side.txt").read_text() == "side\n"
    assert git_out(repo, "symbolic-ref", "HEAD") == "refs/heads/main"


async def test_unresolved_conflicts_cannot_be_checkpointed(repo: Path) -> None:
    run_git(repo, "switch", "-q", "-c", "other")
    (repo / "README.md").write_text("other\n")
    run_git(repo, "commit", "-q", "-am", "other")
    run_git(repo, "switch", "-q", "main")
    (repo / "README.md").write_text("main\n")
    run_git(repo, "commit", "-q", "-am", "main")
    git_out(repo, "merge", "-q", "other")  # stops with a conflict
    with pytest.raises(CheckpointError, match="conflicts") as info:
        await (await Checkpoints.open(repo)).checkpoint()
    assert "resolve" in info.value.hint


async def test_an_unborn_branch_can_be_checkpointed_and_undone(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    run_git(root, "init", "-q", "-b", "main")
    (root / "a.txt").write_text("a\n")
    cps = await Checkpoints.open(root)
    made = await cps.checkpoint()
    assert made.checkpoint is not None and made.checkpoint.head is None
    (root / "b.txt").write_text("b\n")
    await cps.undo()
    assert sorted(files_of(root)) == ["a.txt"]
