"""The language server's checkpoint stores snapshot incrementally (issue 14, point 4): each worktree's store
carries an inotify watch, so after its first snapshot only the changed paths are hashed, into a tree built from
the last one without reading the shadow index."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_lsp
from pytest_lsp import ClientServerConfig, LanguageClient

from adw.lsp import create_server
from adw.scouts.watch import Watch
from tests.git.test_checkpoint_property import full_add_tree
from tests.git.test_checkpoint_watch import Calls, calls
from tests.git.test_checkpoints import git_out
from tests.lsp.conftest import MINIMAL, SERVER, Recorder, run, server_env, start

__all__ = ["calls"]  # the fixture, imported to be used here

# Every git command the server runs is logged here (GIT_TRACE), so the test sees which path a snapshot took.
TRACE = Path(tempfile.gettempdir()) / f"adw-lsp-checkpoint-trace-{os.getpid()}.log"


@pytest_lsp.fixture(
    config=ClientServerConfig(server_command=SERVER, server_env={**server_env(), "GIT_TRACE": str(TRACE)})
)
async def traced(lsp_client: LanguageClient, workspace: Path, recorder: Recorder) -> AsyncIterator[None]:
    """The minimal client, with the server's git commands traced to TRACE."""
    await start(lsp_client, workspace, MINIMAL, recorder)
    yield
    await lsp_client.shutdown_session()


@pytest.mark.parametrize("linked", [False, True], ids=["main worktree", "linked worktree"])
async def test_the_language_servers_stores_snapshot_incrementally(
    repo: Path, tmp_path: Path, calls: Calls, linked: bool
) -> None:
    """The server's long-lived store of each worktree carries a watch: after its first snapshot, an edit, a new
    file and a deletion are taken by path into a tree built without the shadow index (no `add`, `update-index`,
    `write-tree` or `mktree`), the same tree a full `add -A` gives."""
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
    assert ["hash-object", "-w"] in calls
    assert not any(c[0] in ("add", "update-index", "write-tree", "mktree") for c in calls)
    assert made.checkpoint is not None
    assert made.checkpoint.tree == full_add_tree(root, tmp_path / "fresh-index")
    assert await server.checkpoints(root) is store  # one store (and one watch) per worktree


async def test_a_checkpoint_through_the_server_adds_only_what_changed(
    traced: LanguageClient, workspace: Path, tmp_path: Path
) -> None:
    """`adw.server.checkpoint` over stdio after an edit, a new untracked file and a deletion: the server's second
    snapshot reads no index (its watch named the paths; the tree is built from the first one) and its tree is
    the one a full `add -A` gives."""
    client = traced
    first = await run(client, "checkpoint", None, "first")
    assert first["created"] is True
    assert "git add -A" in TRACE.read_text(), "a new server starts with a full add -A"
    TRACE.write_text("")
    (workspace / "src/calc/ops.py").write_text("def add(a, b):\n    return b + a\n")
    (workspace / "notes.txt").write_text("untracked\n")
    (workspace / "README.md").unlink()
    second = await run(client, "checkpoint", None, "second")
    trace = TRACE.read_text()
    assert "git hash-object" in trace
    assert not any(f"git {command}" in trace for command in ("add", "update-index", "write-tree", "ls-files", "mktree"))
    assert second["checkpoint"]["tree"] == full_add_tree(workspace, tmp_path / "fresh-index")
    names = git_out(workspace, "ls-tree", "-r", "--name-only", second["checkpoint"]["tree"]).split()
    assert "notes.txt" in names and "README.md" not in names


async def test_shutdown_closes_every_checkpoint_watch(repo: Path) -> None:
    server = create_server()
    store = await server.checkpoints(repo)
    assert isinstance(store.tracker, Watch)
    server.shutdown()
    assert store.tracker.changed_paths() is None, "a closed watch reports that it may have missed something"
