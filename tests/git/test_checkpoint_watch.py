"""Incremental checkpoints (issue 14, point 4): with an inotify watch as its tracker, a long-lived checkpoint store
(the language server's) adds only the paths the watch reports, and falls back to a full `add -A` whenever the
watch may have missed something. tests/test_checkpoint_property.py proves on random walks that the incremental
result equals the full one; these tests pin down when each path is taken."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from adw.config import AdwConfig, CheckpointConfig
from adw.errors import GitError
from adw.git import runner, trees
from adw.git.checkpoints import Checkpoints, CheckpointStores
from adw.git.refs import SHADOW_INDEX
from adw.scouts.watch import Watch
from tests.git.test_checkpoint_property import WatchedCheckpoints, full_add_tree
from tests.git.test_checkpoints import git_out

Calls = list[list[str]]


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[Calls]:
    """The git subcommands (with their first option) each operation runs."""
    made: Calls = []
    spawn = runner._spawn

    async def counting(argv: list[str], *rest: object) -> tuple[int, str, str]:
        made.append(argv[1:3])
        return await spawn(argv, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(runner, "_spawn", counting)
    yield made


@pytest.fixture
def on_shadow(monkeypatch: pytest.MonkeyPatch) -> Iterator[Calls]:
    """The git subcommands run on a shadow index (not on the user's index or a copy of it)."""
    made: Calls = []
    spawn = runner._spawn

    async def counting(argv: list[str], cwd: Path, env: dict[str, str], *rest: object) -> tuple[int, str, str]:
        if env.get("GIT_INDEX_FILE", "").endswith(SHADOW_INDEX):
            made.append(argv[1:3])
        return await spawn(argv, cwd, env, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(runner, "_spawn", counting)
    yield made


async def watched(root: Path) -> Checkpoints:
    store = await Checkpoints.open(root)
    store.tracker = Watch.open(root, (store.repo.git_dir,), paths=True)
    if store.tracker is None:
        pytest.skip("no inotify here")
    return store


def full(calls: Calls) -> bool:
    return ["add", "-A"] in calls


async def test_after_one_full_snapshot_only_the_changed_paths_are_added(repo: Path, calls: Calls) -> None:
    store = await watched(repo)
    await store.checkpoint()
    assert full(calls), "a new process starts with a full add -A: the watch saw nothing before it"
    calls.clear()
    (repo / "src/app.py").write_text("edited\n")
    (repo / "new").mkdir()
    (repo / "new/file.txt").write_text("in a new folder\n")
    (repo / "README.md").unlink()
    made = await store.checkpoint()
    assert not full(calls) and ["update-index", "--add"] in calls
    assert made.checkpoint is not None
    assert git_out(repo, "ls-tree", "-r", "--name-only", made.checkpoint.tree).split() == ["new/file.txt", "src/app.py"]
    calls.clear()
    assert not (await store.checkpoint()).created  # nothing changed: nothing listed or added
    assert ["ls-files", "-z"] not in calls and not full(calls)


async def test_a_changed_ignore_rule_falls_back_to_a_full_add(repo: Path, calls: Calls) -> None:
    store = await watched(repo)
    await store.checkpoint()
    (repo / "build.log").write_text("output\n")
    (repo / ".gitignore").write_text("*.log\n")
    calls.clear()
    made = await store.checkpoint()
    assert full(calls)
    assert made.checkpoint is not None
    assert "build.log" not in git_out(repo, "ls-tree", "-r", "--name-only", made.checkpoint.tree).split()


async def test_a_watch_that_overflowed_falls_back_to_a_full_add(repo: Path, calls: Calls) -> None:
    store = await watched(repo)
    await store.checkpoint()
    assert isinstance(store.tracker, Watch)
    store.tracker.close()  # its events are lost, as in a queue overflow: reading them fails
    (repo / "src/app.py").write_text("unseen\n")
    calls.clear()
    made = await store.checkpoint()
    assert full(calls) and made.checkpoint is not None
    assert git_out(repo, "show", f"{made.checkpoint.commit}:src/app.py") == "unseen"


async def test_a_failed_snapshot_makes_the_next_one_full(
    repo: Path, calls: Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await watched(repo)
    await store.checkpoint()
    (repo / "src/app.py").write_text("edited\n")

    async def fails(*args: object) -> list[str]:
        raise GitError(["git", "update-index"], 128, "fatal: disk on fire", "")

    with monkeypatch.context() as patch:
        # The snapshot built without the index fails, then the index path, and again when it starts over.
        patch.setattr(store, "_hash", fails)
        patch.setattr(store, "_through_index", fails)
        with pytest.raises(GitError):
            await store.checkpoint()
    calls.clear()
    made = await store.checkpoint()
    assert full(calls), "the paths the failed snapshot took from the watch are in no index"
    assert made.checkpoint is not None
    assert git_out(repo, "show", f"{made.checkpoint.commit}:src/app.py") == "edited"


async def test_a_file_an_undo_kept_leaves_the_shadow_index_as_the_disk_is(repo: Path, calls: Calls) -> None:
    """`undo --file` of src/app.py while a file `src` stands where its folder must go: the file is kept, and the
    next incremental snapshot (no event: nothing changed on disk) must not find the undone version in the index."""
    store = await watched(repo)
    await store.checkpoint()
    (repo / "src/app.py").unlink()
    (repo / "src").rmdir()
    (repo / "src").write_text("a file now\n")
    await store.checkpoint()
    undone = await store.undo_file("src/app.py")
    assert undone.kept == ["src/app.py"]
    calls.clear()
    made = await store.checkpoint()
    assert not full(calls)
    assert made.checkpoint is not None
    assert git_out(repo, "ls-tree", "-r", "--name-only", made.checkpoint.tree).split() == ["README.md", "src"]


async def test_a_same_second_same_size_edit_is_seen_by_the_snapshot_and_by_the_models_full_add(
    repo: Path, tmp_path: Path
) -> None:
    """An edit that keeps a file's size and mtime second after a snapshot recorded it, in the second that snapshot
    wrote the shadow index: git finds it only because the entry is "racily clean" (not older than the index file),
    so the model's full `add -A` must start from a copy of the shadow index that keeps its mtime (a copy dated now
    trusted the stat data and kept the old blob: the soak's "incremental and full add -A differ" inside a redo).
    Times are set, not waited for; `core.checkStat minimal` leaves out ctime, which cannot be set."""
    git_out(repo, "config", "core.checkStat", "minimal")
    store = await WatchedCheckpoints.watched(repo)
    try:
        await store.snapshot()  # full: from now on the watch's paths are enough
        readme = repo / "README.md"
        second = int(time.time()) - 10
        readme.write_text("# one\n")
        os.utime(readme, (second, second))
        await store.snapshot()  # records README.md's size and mtime
        os.utime(store.shadow_index, (second, second))  # as if that snapshot ran in the same second
        readme.write_text("# two\n")  # same size
        os.utime(readme, (second, second))
        counted = WatchedCheckpoints.incremental
        state, _ = await store.snapshot()
        assert WatchedCheckpoints.incremental == counted + 1, "the watch's paths were added, compared with add -A"
        assert state.tree == full_add_tree(repo, tmp_path / "fresh-index")
        assert git_out(repo, "cat-file", "-p", f"{state.tree}:README.md") == "# two"
    finally:
        store.close()


async def test_the_shadow_index_is_split_and_keeps_its_cache_tree(repo: Path) -> None:
    """A snapshot writes only the changed entries (the split part links a shared index in the git dir), and the
    cache-tree stays, so `write-tree` recomputes only the changed folders (docs/PERFORMANCE.md)."""
    store = await watched(repo)
    await store.checkpoint()
    (repo / "src/app.py").write_text("edited\n")
    await store.checkpoint()
    data = store.shadow_index.read_bytes()
    assert data[:4] == b"DIRC" and b"link" in data and b"TREE" in data
    assert list(store.repo.git_dir.glob("sharedindex.*")), "the shared part lives in the worktree's git dir"


def built_without_index(calls: Calls, on_shadow: Calls) -> bool:
    """The snapshot never touched the shadow index and wrote its trees from this process (no `mktree`)."""
    return not on_shadow and not any(call[0] == "mktree" for call in calls)


def tree_of(repo: Path, tree: str) -> dict[str, str]:
    """{path: mode} of every file of a tree."""
    listed = git_out(repo, "ls-tree", "-r", tree).splitlines()
    return {line.split("\t", 1)[1]: line.split()[0] for line in listed}


async def test_edits_are_checkpointed_from_the_last_tree_without_reading_the_index(
    repo: Path, calls: Calls, on_shadow: Calls
) -> None:
    store = await watched(repo)
    await store.checkpoint()
    (repo / "src/app.py").write_text("edited\n")
    (repo / "README.md").write_text("# edited\n")
    calls.clear()
    on_shadow.clear()
    made = await store.checkpoint()
    assert built_without_index(calls, on_shadow), on_shadow
    assert made.checkpoint is not None
    assert git_out(repo, "show", f"{made.checkpoint.tree}:src/app.py") == "edited"
    assert git_out(repo, "show", f"{made.checkpoint.tree}:README.md") == "# edited"
    assert made.checkpoint.tree == full_add_tree(repo, repo.parent / "fresh-index")


async def test_a_new_file_is_added_unless_ignored_or_over_the_cap(
    repo: Path, calls: Calls, on_shadow: Calls
) -> None:
    (repo / ".gitignore").write_text("*.log\nbuild/\n")
    store = await watched(repo)
    store.config = AdwConfig(checkpoint=CheckpointConfig(max_untracked_size=100))
    (repo / "src/deep").mkdir()
    await store.checkpoint()  # full; the folder is known from now on
    (repo / "src/deep/new.py").write_text("new\n")
    (repo / "debug.log").write_text("ignored\n")
    (repo / "src/big.bin").write_bytes(b"x" * 101)
    calls.clear()
    on_shadow.clear()
    made = await store.checkpoint()
    assert built_without_index(calls, on_shadow), on_shadow
    assert made.checkpoint is not None
    files = tree_of(repo, made.checkpoint.tree)
    assert "src/deep/new.py" in files and "debug.log" not in files and "src/big.bin" not in files
    assert made.skipped == ["src/big.bin"]
    git_out(repo, "add", "src/big.bin")  # the user tracks it: the cap is for untracked files only
    (repo / "src/big.bin").write_bytes(b"y" * 101)
    calls.clear()
    on_shadow.clear()
    made = await store.checkpoint()
    assert built_without_index(calls, on_shadow), on_shadow
    assert made.checkpoint is not None and "src/big.bin" in tree_of(repo, made.checkpoint.tree)
    assert made.skipped == []


async def test_an_exec_bit_a_symlink_and_a_deletion_are_checkpointed_without_the_index(
    repo: Path, calls: Calls, on_shadow: Calls
) -> None:
    store = await watched(repo)
    await store.checkpoint()
    (repo / "src/app.py").chmod(0o755)
    (repo / "link").symlink_to("src/app.py")
    (repo / "README.md").unlink()
    calls.clear()
    on_shadow.clear()
    made = await store.checkpoint()
    assert built_without_index(calls, on_shadow), on_shadow
    assert made.checkpoint is not None
    assert tree_of(repo, made.checkpoint.tree) == {"link": "120000", "src/app.py": "100755"}
    assert git_out(repo, "cat-file", "-p", f"{made.checkpoint.tree}:link") == "src/app.py"
    (repo / "src/app.py").unlink()  # its folder empties: no tree holds an empty folder
    made = await store.checkpoint()
    assert made.checkpoint is not None and tree_of(repo, made.checkpoint.tree) == {"link": "120000"}


async def test_a_file_inside_a_nested_repository_is_left_out(repo: Path) -> None:
    store = await watched(repo)
    (repo / "vendor").mkdir()
    git_out(repo / "vendor", "init", "-q")
    await store.checkpoint()
    (repo / "vendor/lib.py").write_text("theirs\n")
    made = await store.checkpoint()
    assert made.checkpoint is not None
    assert sorted(tree_of(repo, made.checkpoint.tree)) == ["README.md", "src/app.py"]
    assert "vendor/" in made.skipped


async def test_the_shadow_index_catches_up_before_a_full_snapshot_reads_it(
    repo: Path, calls: Calls, on_shadow: Calls
) -> None:
    """A file a snapshot built without the index took in stays in checkpoints after it is ignored, as a file the
    shadow index tracks does under `add -A`: the next store (a restart) brings the shadow index up to the last
    tree (the lag file) before its full snapshot."""
    store = await watched(repo)
    await store.checkpoint()
    (repo / "notes.txt").write_text("mine\n")
    calls.clear()
    on_shadow.clear()
    await store.checkpoint()
    assert built_without_index(calls, on_shadow)
    assert store.shadow_lag.exists()
    assert isinstance(store.tracker, Watch)
    store.tracker.close()
    (repo / ".gitignore").write_text("notes.txt\n")
    again = await watched(repo)
    calls.clear()
    on_shadow.clear()
    made = await again.checkpoint()
    assert full(calls) and not again.shadow_lag.exists()
    assert made.checkpoint is not None and "notes.txt" in tree_of(repo, made.checkpoint.tree)


def fsck(repo: Path) -> str:
    return git_out(repo, "fsck", "--strict", "--no-dangling", "--no-progress")


@pytest.mark.parametrize("setup", ["alternates", "shared", "fsync"])
async def test_trees_go_through_mktree_where_this_process_may_not_write_objects(
    repo: Path, tmp_path: Path, calls: Calls, on_shadow: Calls, setup: str
) -> None:
    """Objects borrowed from another store, group-writable objects or synced object files: git writes the new
    trees (its own rules for those), and the snapshot is still built without the index."""
    if setup == "alternates":
        other = tmp_path / "other.git"
        git_out(tmp_path, "init", "-q", "--bare", str(other))
        (repo / ".git/objects/info/alternates").write_text(f"{other / 'objects'}\n")
    else:
        git_out(repo, "config", *(("core.sharedRepository", "group") if setup == "shared" else ("core.fsync", "all")))
    store = await watched(repo)
    await store.checkpoint()
    (repo / "src/app.py").write_text("edited\n")
    calls.clear()
    on_shadow.clear()
    made = await store.checkpoint()
    assert ["mktree", "-z"] in calls and not on_shadow
    assert made.checkpoint is not None and made.checkpoint.tree == full_add_tree(repo, tmp_path / "fresh-index")
    assert fsck(repo) == ""


_KILLED_WRITER = """
import asyncio, os, sys, time
from pathlib import Path
from adw.git import trees
from adw.git.checkpoints import Checkpoints
from adw.scouts.watch import Watch

root, at = Path(sys.argv[1]), sys.argv[2]

class Stalling:
    '''os for adw.git.trees, stopping for the kill in the middle of an object's write or before its link.'''
    def __getattr__(self, name):
        return getattr(os, name)

    def write(self, fd, data):
        if at == "write":
            os.write(fd, bytes(data[: len(data) // 2]))
            self.stall()
        return os.write(fd, data)

    def link(self, source, target):
        if at == "link":
            self.stall()
        os.link(source, target)

    def stall(self):
        print("stalled", flush=True)
        time.sleep(120)

async def main():
    store = await Checkpoints.open(root)
    store.tracker = Watch.open(root, (store.repo.git_dir,), paths=True)
    await store.checkpoint()
    (root / "src/app.py").write_text("edited\\n")
    (root / "src/new.py").write_text("new\\n")
    trees.os = Stalling()
    await store.checkpoint()

asyncio.run(main())
"""


@pytest.mark.parametrize("at", ["write", "link"])
async def test_a_writer_killed_mid_object_leaves_a_temporary_file_at_most(
    repo: Path, tmp_path: Path, calls: Calls, on_shadow: Calls, at: str
) -> None:
    """kill -9 of a checkpoint halfway through writing a tree object, or after writing it and before linking it
    under its id: no object is corrupt (`fsck --strict`, which passes over git's `tmp_obj_*` names), and the next
    checkpoint writes the same trees whole and succeeds."""
    child = await asyncio.create_subprocess_exec(sys.executable, "-c", _KILLED_WRITER, str(repo), at,
                                                 stdout=asyncio.subprocess.PIPE)
    assert child.stdout is not None
    stalled = await asyncio.wait_for(child.stdout.readline(), 60)
    child.kill()  # SIGKILL
    await child.wait()
    assert stalled == b"stalled\n", "the child never reached the object write"
    objects = repo / ".git/objects"
    assert [p.parent.name for p in objects.glob("??/tmp_obj_*")], "the killed write left its temporary file"
    assert fsck(repo) == ""
    edited = {name: (repo / name).read_text() for name in ("src/app.py", "src/new.py")}
    (repo / "src/app.py").write_text("def main():\n    return 1\n")
    (repo / "src/new.py").unlink()
    store = await watched(repo)
    await store.checkpoint()
    for name, text in edited.items():
        (repo / name).write_text(text)
    calls.clear()
    on_shadow.clear()
    made = await store.checkpoint()
    assert built_without_index(calls, on_shadow)
    assert made.checkpoint is not None and made.checkpoint.tree == full_add_tree(repo, tmp_path / "fresh-index")
    assert git_out(repo, "show", f"{made.checkpoint.tree}:src/new.py") == "new"
    assert fsck(repo) == ""


async def test_objects_this_process_cannot_write_are_left_to_git(
    repo: Path, tmp_path: Path, calls: Calls, on_shadow: Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tree that cannot be written from here sends the snapshot to the index path, a commit to `commit-tree`."""
    store = await watched(repo)
    await store.checkpoint()
    (repo / "src/app.py").write_text("edited\n")

    def refused(*args: object, **kwargs: object) -> tuple[int, str]:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(trees.tempfile, "mkstemp", refused)
    calls.clear()
    on_shadow.clear()
    made = await store.checkpoint()
    assert ["write-tree"] in on_shadow and any(call[0] == "commit-tree" for call in calls)
    assert made.checkpoint is not None and made.checkpoint.tree == full_add_tree(repo, tmp_path / "fresh-index")


class _Tracker:
    """A change tracker that only records whether it was released."""

    def __init__(self) -> None:
        self.closed = False

    def changed_paths(self) -> list[str] | None:
        return None

    def close(self) -> None:
        self.closed = True


async def test_long_lived_stores_follow_their_worktrees_and_release_the_trackers_of_gone_ones(
    repo: Path, tmp_path: Path
) -> None:
    """One store per worktree, found from any folder in it; a worktree recreated at the same path gets a new store
    (its old tracker released), and the tracker of a removed worktree is released at the next use."""
    trackers: list[_Tracker] = []

    def track(_: object) -> _Tracker:
        trackers.append(_Tracker())
        return trackers[-1]

    stores = CheckpointStores(track)
    main = await stores.get(repo / "src")
    assert await stores.get(repo) is main and len(trackers) == 1
    linked = tmp_path / "linked"
    git_out(repo, "worktree", "add", "-q", "-b", "linked", str(linked))
    first = await stores.get(linked)
    git_out(repo, "worktree", "move", str(linked), str(tmp_path / "moved"))
    git_out(repo, "worktree", "add", "-q", "-b", "again", str(linked))
    again = await stores.get(linked)
    assert again is not first and again.repo.git_dir != first.repo.git_dir
    assert trackers[1].closed and not trackers[2].closed
    git_out(repo, "worktree", "remove", str(linked))
    assert await stores.get(repo) is main
    assert trackers[2].closed and not trackers[0].closed
    stores.close()
    assert trackers[0].closed


async def test_a_setting_changed_in_an_included_config_file_is_seen(repo: Path, tmp_path: Path) -> None:
    included = tmp_path / "shared.gitconfig"
    included.write_text("")
    git_out(repo, "config", "include.path", str(included))
    store = await Checkpoints.open(repo)
    assert (await store._plain_git()).objects is not None
    git_out(repo, "config", "-f", str(included), "core.sharedRepository", "group")
    assert (await store._plain_git()).objects is None  # git's rules for a shared repository: mktree writes trees
