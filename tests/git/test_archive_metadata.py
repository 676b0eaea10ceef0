"""An archive keeps what `restore` needs: the branch, HEAD, index and the worktree's base."""

from __future__ import annotations

from pathlib import Path

from adw.git.checkpoints import trailers
from adw.git.worktrees import Worktrees
from tests.conftest import run_git


def test_trailers_read_every_trailing_adw_paragraph() -> None:
    message = "archive of worktree x\n\nnote: kept\n\nadw-archive-base: dev\n\nadw-kind: state\nadw-head: abc\n"
    text, fields = trailers(message)
    assert text == "archive of worktree x\n\nnote: kept"
    assert fields == {"adw-archive-base": "dev", "adw-kind": "state", "adw-head": "abc"}


async def test_restore_keeps_the_base_it_was_created_from(repo: Path) -> None:
    run_git(repo, "branch", "dev")
    manager = await Worktrees.open(repo)
    created = await manager.create("x", base="dev")
    (created.worktree.path / "new.txt").write_text("work\n")
    await manager.remove("x", archive=True)

    restored = await manager.restore("x")

    assert restored.worktree.base == "dev"
    assert (restored.worktree.path / "new.txt").read_text() == "work\n"
