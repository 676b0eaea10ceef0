"""The background process that fills a repository's worktree pool: `python -m adw.git.refill MAIN_ROOT`.

Started detached and at low priority by `Pool.refill_in_background` after a create; see adw.git.pool.
"""

from __future__ import annotations

import sys

from adw.git.runner import run
from adw.git.worktrees import Worktrees


async def _fill(root: str) -> None:
    await (await Worktrees.open(root)).pool.fill()


if __name__ == "__main__":
    run(_fill(sys.argv[1]))
