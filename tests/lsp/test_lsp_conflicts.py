"""Conflicts between active worktrees in the editor: kept fresh as branches move (commits made outside the
server, checkpoints made through it), shown as diagnostics naming the other worktree, in the Worktrees view
and in the merge preview the merge dialog warns with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.conftest import run_git
from tests.lsp.conftest import commit_all, eventually, run, uri
from tests.lsp.test_lsp_links_views import request


def _messages(client: LanguageClient, path: Path) -> list[str]:
    return [d.message for d in client.diagnostics.get(uri(path), []) if d.code == "worktree-conflict"]


async def test_conflicts_between_worktrees_follow_the_branches(minimal: LanguageClient, workspace: Path) -> None:
    client = minimal
    a = Path((await run(client, "createWorktree", "a"))["worktree"]["path"])
    b = Path((await run(client, "createWorktree", "b"))["worktree"]["path"])
    ops = "src/calc/ops.py"
    (a / ops).write_text("def add(a, b):\n    return b + a\n")
    commit_all(a, "a: swap")  # outside the server: seen by its watch on the refs
    (b / ops).write_text("def add(a, b):\n    return a + b + 0\n")
    commit_all(b, "b: add zero")

    await eventually(lambda: _messages(client, a / ops) and _messages(client, b / ops), 20, "conflict diagnostics")
    [on_a] = _messages(client, a / ops)
    [on_b] = _messages(client, b / ops)
    assert "worktree b (adw/b)" in on_a and "worktree a (adw/a)" in on_b and "(content)" in on_a
    [diagnostic] = [d for d in client.diagnostics[uri(a / ops)] if d.code == "worktree-conflict"]
    assert diagnostic.source == "adw" and diagnostic.severity == types.DiagnosticSeverity.Warning

    infos = {info["name"]: info for info in await request(client, "adw/worktrees")}
    [conflict] = infos["a"]["conflicts"]
    assert conflict["worktree"] == "b" and conflict["branch"] == "adw/b"
    assert conflict["files"] == [{"path": ops, "kind": "content"}]
    assert infos["@main"]["conflicts"] == []

    # The merge dialog's preview: a merges cleanly into main but conflicts with b, still active.
    preview: dict[str, Any] = await run(client, "mergePreview", "a")
    assert preview["clean"] is True
    assert [(c["worktree"], [f["path"] for f in c["files"]]) for c in preview["activeConflicts"]] == [("b", [ops])]

    # b takes a's version: the conflict clears in both worktrees.
    run_git(b, "checkout", "adw/a", "--", ops)
    commit_all(b, "b: take a's version")
    await eventually(lambda: not _messages(client, a / ops) and not _messages(client, b / ops), 20, "them to clear")

    # Work not committed yet counts once it is checkpointed (here through the server's command).
    (b / ops).write_text("def add(a, b):\n    return 2 * a + b\n")
    assert not _messages(client, a / ops)
    await run(client, "checkpoint", "b", "agent step")
    await eventually(lambda: _messages(client, a / ops), 20, "the checkpointed work's conflict")

    # Removing a worktree clears its conflicts in the other one.
    await run(client, "removeWorktree", "b", False, True)
    await eventually(lambda: not _messages(client, a / ops), 20, "the conflict to clear on remove")
