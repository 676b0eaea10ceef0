"""Which checkpoints changed a file: the question every open editor asks."""

from __future__ import annotations

from pathlib import Path

from adw.git.checkpoints import Checkpoints


async def test_first_checkpoint_counts_changes_against_head(repo: Path) -> None:
    app = repo / "src/app.py"
    app.write_text("def main():\n    return 2\n")
    store = await Checkpoints.open(repo)
    await store.checkpoint("first")
    (repo / "README.md").write_text("# changed\n")
    await store.checkpoint("second")

    assert [c.number for c in await store.history(file=str(app))] == [1]
    assert [c.number for c in await store.history(file="README.md")] == [2]
    assert await store.history(file="missing.txt") == []
