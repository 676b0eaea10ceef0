"""The language server's checkpoint stores snapshot incrementally (issue 14, point 4): each worktree's store
carries an inotify watch, so after its first snapshot only the changed paths are added."""

from __future__ import annotations

from pathlib import Path

import pytest

from adw.lsp import create_server
from adw.scouts.watch import Watch
from tests.git.test_checkpoint_property import full_add_tree
from tests.git.test_checkpoint_watch import Calls, calls, full
from tests.git.test_checkpoints import git_out

__all__ = ["calls"]  # the fixture, imported to be used here


@pytest.mark.parametrize("linked", [False, True], ids=["main worktree", "linked worktree"])
async def test_the_language_servers_stores_snapshot_incrementally(
    repo: Path, tmp_path: Path, calls: Calls, linked: bool
) -> None:
    """The server's long-lived store of each worktree carries a watch: after its first snapshot, an edit, a new
    file and a deletion are added by path, into the same tree a full `add -A` gives."""
    root = repo
    if linked:
        root = tmp_path / "linked"
        git_out(repo, "worktree", "add", "-q", "-b", "linked", str(root))
    server = create_server()
    store = await server.checkpoints(root)
    assert isinstance(store.tracker, Watch)
    await store.checkpoint("first")
    calls.clear()
    (root / "src/app.py").write_text("edited\n")
    (root / "notes.txt").write_text("untracked\n")
    (root / "README.md").unlink()
    made = await store.checkpoint("second")
    assert not full(calls) and ["update-index", "--add"] in calls
    assert made.checkpoint is not None
    assert made.checkpoint.tree == full_add_tree(root, tmp_path / "fresh-index")
    assert await server.checkpoints(root) is store  # one store (and one watch) per worktree
