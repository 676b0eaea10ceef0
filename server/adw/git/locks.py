"""Locks, and who holds them.

ADW's own locks are `flock`s (`repo_lock`): the kernel frees them when their process dies, so a killed ADW
never leaves a lock that blocks the next command. Work that must outlive a lock (a half-made worktree) records
its `Owner` (PID and start time), so a later command can tell a live owner from a dead one.

Git's lock files (`index.lock`, `packed-refs.lock`) are not `flock`s: a git killed mid-write leaves one behind.
`lock_holders` finds the processes that hold such a file open, so an error can say who holds it, or that
nobody does and the file is stale.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

_local_locks: dict[Path, asyncio.Lock] = {}
_POLL_S = 0.005


@asynccontextmanager
async def repo_lock(path: Path) -> AsyncIterator[None]:
    """Exclusive within the process (asyncio) and across processes (flock) for as long as the block runs."""
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


@dataclass(frozen=True, slots=True)
class Owner:
    """A process, told apart from a later one that reuses its PID by its start time."""

    pid: int
    started: float

    @classmethod
    def me(cls) -> Owner:
        return cls(os.getpid(), psutil.Process().create_time())

    def alive(self) -> bool:
        return process_matches(self.pid, self.started)


def find_process(pid: int, create_time: float) -> psutil.Process | None:
    """The process `pid` while it is still the one that started at `create_time` (PIDs are reused) and has
    not exited: a zombie (dead, only not yet reaped by its parent) counts as exited."""
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - create_time) < 0.01 and proc.status() != psutil.STATUS_ZOMBIE:
            return proc
    except (psutil.Error, ValueError):
        pass
    return None


def process_matches(pid: int, create_time: float) -> bool:
    return find_process(pid, create_time) is not None


@dataclass(frozen=True, slots=True)
class Holder:
    pid: int
    command: str


def lock_holders(lock: Path, repo: Path) -> list[Holder]:
    """Processes that have `lock` open, else live git processes working in any worktree of `repo`'s repository
    (git keeps some locks with their file closed, e.g. `packed-refs.lock` for a whole transaction, and the refs'
    locks are shared by every worktree), or whose folder cannot be looked into (another user's: one of them may be
    the holder). Empty: nobody holds it, it is stale."""
    holding: list[Holder] = []
    gits: list[Holder] = []
    wanted = str(lock)
    roots = _worktree_roots(repo)
    for process in psutil.process_iter(["pid", "name", "cmdline", "cwd"]):
        if process.pid == os.getpid():
            continue
        command = " ".join(process.info.get("cmdline") or []) or (process.info.get("name") or "?")
        try:
            if any(f.path == wanted for f in process.open_files()):
                holding.append(Holder(process.pid, command))
                continue
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        except psutil.AccessDenied:
            pass  # its files are hidden from us: whether it is a git at work here decides below
        if process.info.get("name") != "git":
            continue
        cwd = process.info.get("cwd")
        if cwd is None or any(Path(cwd).is_relative_to(root) for root in roots):
            gits.append(Holder(process.pid, command))
    return holding or gits


def _worktree_roots(folder: Path) -> list[Path]:
    """The main worktree and the linked ones of the repository `folder` is the worktree of (read from the git
    folders' files, no git process); just `folder` when it is not a worktree's top folder."""
    dotgit = folder / ".git"
    try:
        if dotgit.is_file():
            git_dir = folder / dotgit.read_text(encoding="utf-8").removeprefix("gitdir:").strip()
            common = (git_dir / (git_dir / "commondir").read_text(encoding="utf-8").strip()).resolve()
        elif dotgit.is_dir():
            common = dotgit
        else:
            return [folder]
        linked = [Path(f.read_text(encoding="utf-8").strip()).parent for f in common.glob("worktrees/*/gitdir")]
    except OSError:
        return [folder]
    return [common.parent, *linked]


def remove_if_stale(lock: Path, repo: Path) -> bool:
    """Delete `lock` when no process holds it and it is still the same file as before the (slow) search, so
    a lock a new git took meanwhile is never deleted. True when it is gone."""
    try:
        before = lock.stat()
    except FileNotFoundError:
        return True
    if lock_holders(lock, repo):
        return False
    try:
        after = lock.stat()
    except FileNotFoundError:
        return True
    if (after.st_ino, after.st_ctime_ns) != (before.st_ino, before.st_ctime_ns):
        return False
    lock.unlink(missing_ok=True)
    return True
