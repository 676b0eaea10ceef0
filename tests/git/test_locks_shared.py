"""A lock that a live git holds is never removed as stale: one held from another worktree of the repository (ref
and packed-refs locks are shared), one held by another user's git (its open files hidden from us)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from adw.errors import GitError, GitLockError
from adw.git.locks import lock_holders
from adw.git.runner import git
from tests.conftest import run_git

# Holds every ref transaction it is told to (HOLD set) in its "prepared" state: git has then written and closed
# the lock files (refs, packed-refs) and keeps them until the hook returns.
_HOOK = """#!/bin/sh
[ "$1" = prepared ] && [ -n "$HOLD" ] || exit 0
cat >/dev/null
touch "$HOLD.ready"
while [ ! -e "$HOLD.release" ]; do sleep 0.05; done
"""


@pytest.mark.slow
async def test_own_locks_since_spares_packed_refs_lock_held_by_a_git_in_another_worktree(repo: Path,
                                                                                        tmp_path: Path) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "reference-transaction").write_text(_HOOK)
    (hooks / "reference-transaction").chmod(0o755)
    run_git(repo, "config", "core.hooksPath", str(hooks))
    run_git(repo, "update-ref", "refs/review/theirs", "HEAD")
    run_git(repo, "update-ref", "refs/review/ours", "HEAD")
    run_git(repo, "pack-refs", "--all")
    linked = tmp_path / "linked"
    run_git(repo, "worktree", "add", "-q", "--detach", str(linked))
    since = time.time_ns() - 1_000_000_000  # e.g. a journal written just before
    hold = tmp_path / "hold"
    # Someone deletes a packed ref from the main worktree (a `git branch -d`, a `fetch --prune`): git holds
    # packed-refs.lock, its descriptor closed, for as long as the transaction lasts.
    holder = await asyncio.create_subprocess_exec("git", "update-ref", "-d", "refs/review/theirs", cwd=repo,
                                                  env={**os.environ, "HOLD": str(hold)})
    lock = repo / ".git" / "packed-refs.lock"
    try:
        while not Path(f"{hold}.ready").exists():
            assert holder.returncode is None
            await asyncio.sleep(0.02)
        assert lock.exists()
        with pytest.raises(GitError) as raised:
            await git("update-ref", "-d", "refs/review/ours", cwd=linked, own_locks_since=since)
        assert lock.exists(), "the live transaction's packed-refs.lock was deleted"
        assert isinstance(raised.value, GitLockError)
    finally:
        Path(f"{hold}.release").touch()
        await asyncio.wait_for(holder.wait(), 30)


async def test_a_git_of_another_user_counts_as_a_possible_holder(repo: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "reference-transaction").write_text(_HOOK)
    (hooks / "reference-transaction").chmod(0o755)
    run_git(repo, "config", "core.hooksPath", str(hooks))
    hold = tmp_path / "hold"
    holder = await asyncio.create_subprocess_exec("git", "update-ref", "refs/review/theirs", "HEAD", cwd=repo,
                                                  env={**os.environ, "HOLD": str(hold)})
    lock = repo / ".git" / "refs" / "review" / "theirs.lock"
    real = psutil.Process.open_files

    def as_another_user(process: psutil.Process) -> list[Any]:
        if process.pid == holder.pid:
            raise psutil.AccessDenied(process.pid)  # what psutil says of another user's process
        return real(process)

    try:
        while not Path(f"{hold}.ready").exists():
            assert holder.returncode is None
            await asyncio.sleep(0.02)
        assert lock.exists()
        monkeypatch.setattr(psutil.Process, "open_files", as_another_user)
        assert lock_holders(lock, repo) != []
    finally:
        Path(f"{hold}.release").touch()
        await asyncio.wait_for(holder.wait(), 30)
