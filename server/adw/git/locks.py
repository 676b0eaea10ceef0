"""A repository-wide lock for the few git operations that are unsafe to run concurrently (`worktree add` reads
the admin folders of worktrees being created). Holds within the process (asyncio) and across processes (flock)."""

from __future__ import annotations

import asyncio
import fcntl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

_local_locks: dict[Path, asyncio.Lock] = {}
_POLL_S = 0.005


@asynccontextmanager
async def repo_lock(path: Path) -> AsyncIterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    local = _local_locks.setdefault(path, asyncio.Lock())
    async with local:
        with open(path, "a") as handle:
            # Poll a non-blocking flock rather than parking a thread on a blocking one.
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    await asyncio.sleep(_POLL_S)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
