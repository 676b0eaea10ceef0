"""The one way ADW runs git: argument lists, captured output, typed errors, timeouts, lock retries.

Every call is an asyncio subprocess so no git work ever blocks an event loop (the language server's included).
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from adw.errors import GitError, GitLockError, GitTimeoutError
from adw.git.locks import lock_holders, remove_if_stale

T = TypeVar("T")

DEFAULT_TIMEOUT = 120.0
# git fails at once rather than waiting when another process holds one of these; they clear in milliseconds.
_TRANSIENT_LOCK = re.compile(r"(index|packed-refs|config|HEAD|\.git/refs/.*)\.lock", re.IGNORECASE)
_LOCK_PATH = re.compile(r"Unable to create '([^']+\.lock)'")
_LOCK_RETRIES = 8
_LOCK_BACKOFF_S = 0.02

# Pin a predictable environment: no pager, no prompts, untranslated messages that we can parse.
_BASE_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_PAGER": "cat",
    "PAGER": "cat",
    "LC_ALL": "C",
    "LANGUAGE": "C",
    "GIT_OPTIONAL_LOCKS": "0",
}


@dataclass(frozen=True, slots=True)
class GitResult:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()


async def git(
    *args: str | os.PathLike[str],
    cwd: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    input: str | bytes | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    ok_codes: Sequence[int] = (0,),
    own_locks_since: int | None = None,
) -> GitResult:
    """Run `git ARGS` in `cwd`. Raises GitError unless the exit status is in `ok_codes`.

    `own_locks_since` (ns, as `st_ctime_ns`): the caller resumes work of its own that was interrupted then, so a
    lock file made since, that no process holds, was left by its own killed git and is removed, not waited on."""
    argv = ["git", *(os.fspath(arg) for arg in args)]
    full_env = {**os.environ, **_BASE_ENV, **(env or {})}
    data = input.encode() if isinstance(input, str) else input
    # An index ADW passes in GIT_INDEX_FILE is its own (a shadow or a copy): only a git killed mid-write can
    # have left a lock on it that no process holds, so such a lock is removed instead of blocking for good.
    own_index_lock = Path(f"{env['GIT_INDEX_FILE']}.lock") if env and "GIT_INDEX_FILE" in env else None
    for attempt in range(_LOCK_RETRIES + 1):
        returncode, out, err = await _spawn(argv, Path(cwd), full_env, data, timeout)
        if returncode in ok_codes:
            return GitResult(argv, returncode, out, err)
        if not _TRANSIENT_LOCK.search(err):
            raise GitError(argv, returncode, err, out)
        found = _LOCK_PATH.search(err)
        lock = Path(found[1]) if found else None
        if lock is not None and (lock == own_index_lock or _made_since(lock, own_locks_since)) and \
                await asyncio.to_thread(remove_if_stale, lock, Path(cwd)):
            continue
        if attempt < _LOCK_RETRIES:
            await asyncio.sleep(_LOCK_BACKOFF_S * 2**attempt)
            continue
        if lock is None:
            raise GitError(argv, returncode, err, out)
        raise GitLockError(argv, returncode, err, lock, await asyncio.to_thread(lock_holders, lock, Path(cwd)))
    raise AssertionError("unreachable")


def _made_since(lock: Path, since: int | None) -> bool:
    try:
        return since is not None and lock.lstat().st_ctime_ns >= since
    except FileNotFoundError:
        return True  # gone already: retrying is right


async def _spawn(
    argv: list[str], cwd: Path, env: dict[str, str], data: bytes | None, timeout: float
) -> tuple[int, str, str]:
    starting = asyncio.ensure_future(asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.PIPE if data is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    ))
    _STARTING.add(starting)
    starting.add_done_callback(_STARTING.discard)
    try:
        proc = await asyncio.shield(starting)
    except asyncio.CancelledError:
        # A start cancelled half-way never ends on Python 3.11 when its pipes were not connected yet: let it
        # finish, then stop git as any cancelled call does.
        await _kill(await starting)
        raise
    try:
        # asyncio.timeout, not wait_for: 3.11's wait_for drops a cancel that arrives as git finishes.
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate(data)
    except TimeoutError:
        await _kill(proc)
        raise GitTimeoutError(argv, -9, f"timed out after {timeout:.0f}s") from None
    except asyncio.CancelledError:
        await _kill(proc)
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode("utf-8", "surrogateescape"), err.decode("utf-8", "surrogateescape")


# Starts of git processes under way, and the asyncio task that connects a new process's pipes: `run` lets them
# finish rather than cancel them.
_STARTING: set[asyncio.Future[asyncio.subprocess.Process]] = set()
_PIPES_TASK = "BaseSubprocessTransport._connect_pipes"


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` for a command: once `main` is done, the tasks it left running are cancelled and waited for
    before the loop's own teardown. That teardown cancels every task at once, a git start under way included,
    which Python 3.11 then waits for forever (seen under load as a process that never exits)."""

    async def to_the_end() -> T:
        try:
            return await main
        finally:
            await _stop_pending()

    return asyncio.run(to_the_end())


async def _stop_pending() -> None:
    me = asyncio.current_task()
    pending = [task for task in asyncio.all_tasks() if task is not me and task not in _STARTING
               and getattr(task.get_coro(), "__qualname__", "") != _PIPES_TASK]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


async def _kill(proc: asyncio.subprocess.Process) -> None:
    """Kill git and drain its pipes: with a full pipe the transport stops reading, never sees the end of the
    output, and a bare `wait()` never returns."""
    if proc.returncode is None:
        proc.kill()
    await proc.communicate()
