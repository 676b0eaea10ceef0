"""Conflicts between active worktrees in the editor: kept fresh as branches move (commits made outside the
server, checkpoints made through it), shown as diagnostics naming the other worktree, in the Worktrees view
and in the merge preview the merge dialog warns with."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.conftest import GIT_ENV, run_git
from tests.lsp.conftest import commit_all, eventually, fails, run, uri
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


async def test_best_of_candidates_compared_and_picked_from_the_editor(minimal: LanguageClient, workspace: Path) -> None:
    """`compare` and `pick` (the editor's Compare Candidates): two candidates of the workspace's spec, made by
    `adw sdlc --best-of 2`; the second picked, the first archived and its diagnostics cleared."""
    client = minimal
    made = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "adw", "sdlc", "specs/mul.md", "--best-of", "2", "--json"],
        cwd=workspace, env={**os.environ, **GIT_ENV}, capture_output=True, text=True,
    )
    assert made.returncode == 0, made.stderr
    group = run_git(workspace, "for-each-ref", "--format=%(refname:lstrip=2)", "refs/heads/adw/").split()
    assert group == ["adw/mul-1", "adw/mul-2"]
    [first] = [wf for wf in await run(client, "status") if wf["worktree"] == "mul-1"]
    compared = await run(client, "compare", first["id"])
    assert [(c["rank"], c["number"]) for c in compared["candidates"]] == [(1, 1), (2, 2)]  # equal: by number
    assert compared["candidates"][1]["reasons"][-1] == "tied with #1; listed by number"

    wrong = await fails(client, "pick", compared["group"])
    assert wrong.code == types.ErrorCodes.InvalidParams and "needs `number`" in str(wrong)
    picked = await run(client, "pick", compared["group"], 2)
    assert picked["merge"]["merged"] is True and [a["worktree"] for a in picked["archived"]] == ["mul-1"]
    assert (workspace / "src/calc/mul.py").is_file()
    assert "mul-1" not in run_git(workspace, "worktree", "list")
