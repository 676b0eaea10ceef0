"""Checkpoints survive `git gc --prune=now` between any two commands: what a long-lived store builds on (its last
snapshot, the shadow index's objects) is kept by a ref, and a shadow index that names pruned objects anyway is
started over from the user's index instead of failing."""

from __future__ import annotations

from pathlib import Path

import pytest

from adw.git.checkpoints import Checkpoints
from tests.conftest import age, run_git


class _Told:
    """A change tracker that reports what the test says changed."""

    def __init__(self) -> None:
        self.next: list[str] | None = None

    def changed_paths(self) -> list[str] | None:
        return self.next

    def close(self) -> None:
        pass


def _files(repo: Path, tree: str) -> dict[str, str]:
    listed = run_git(repo, "ls-tree", "-r", tree).splitlines()
    return {line.split("\t")[1]: run_git(repo, "cat-file", "blob", line.split()[2]) for line in listed}


@pytest.mark.parametrize("objects", ["written here", "through mktree"])
async def test_a_snapshot_never_names_an_object_that_prune_removed(repo: Path, objects: str) -> None:
    if objects == "through mktree":
        run_git(repo, "config", "core.fsync", "all")  # new trees then go through `git mktree`, which checks
    store = await Checkpoints.open(repo)
    tracker = _Told()
    store.tracker = tracker
    await store.snapshot()  # the whole worktree once
    (repo / "fresh").mkdir()
    (repo / "fresh" / "notes.txt").write_text("user work\n")
    tracker.next = ["fresh/notes.txt"]
    await store.snapshot()  # built from the last one: a new tree for fresh/, committed by no checkpoint
    run_git(repo, "prune", "--expire=now")  # what `git gc --prune=now` does to unreferenced objects
    (repo / "README.md").write_text("# edited\n")
    tracker.next = ["README.md"]
    state, _ = await store.snapshot()
    wanted = {**_files(repo, "HEAD"), "fresh/notes.txt": "user work\n", "README.md": "# edited\n"}
    assert _files(repo, state.tree) == wanted
    made = await store.checkpoint()
    assert made.checkpoint is not None and made.checkpoint.tree == state.tree
    run_git(repo, "fsck", "--connectivity-only", "--no-dangling")


async def test_a_shadow_index_naming_pruned_objects_is_started_over(repo: Path) -> None:
    (repo / "draft.txt").write_text("not committed anywhere\n")
    age(repo)  # the shadow index's entries are then trusted by their stat, not re-read
    first = await Checkpoints.open(repo)
    await first.snapshot()
    # Whatever kept the snapshot's objects is gone (a ref deleted by hand, a command killed before its ref moved).
    for ref in run_git(repo, "for-each-ref", "--format=%(refname)", "refs/adw/").split():
        run_git(repo, "update-ref", "-d", ref)
    run_git(repo, "prune", "--expire=now")
    state, _ = await (await Checkpoints.open(repo)).snapshot()
    assert _files(repo, state.tree)["draft.txt"] == "not committed anywhere\n"
    made = await (await Checkpoints.open(repo)).checkpoint()
    assert made.created
    run_git(repo, "fsck", "--connectivity-only", "--no-dangling")


@pytest.mark.parametrize("refs", ["kept", "deleted by hand"])
async def test_the_tree_of_the_users_index_survives_prune(repo: Path, refs: str) -> None:
    """A snapshot records the tree of the user's index (what a restore puts back in it), cached while the index file
    is unchanged; staged work no commit holds yet is in that tree alone."""
    (repo / "README.md").write_text("# staged\n")
    run_git(repo, "add", "README.md")
    (repo / "README.md").write_text("# staged, then edited\n")
    age(repo)
    store = await Checkpoints.open(repo)
    await store.snapshot()  # as for a diff against the files: no checkpoint commits it
    if refs == "deleted by hand":
        for ref in run_git(repo, "for-each-ref", "--format=%(refname)", "refs/adw/").split():
            run_git(repo, "update-ref", "-d", ref)
    run_git(repo, "prune", "--expire=now")
    made = await (await Checkpoints.open(repo)).checkpoint()
    assert made.checkpoint is not None
    assert _files(repo, made.checkpoint.index_tree)["README.md"] == "# staged\n"
    run_git(repo, "fsck", "--connectivity-only", "--no-dangling")
