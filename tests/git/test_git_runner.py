"""The git runner: captured output, typed errors, pinned environment, lock retries, timeouts and cancellation."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from adw.errors import GitError, GitTimeoutError
from adw.git.runner import git
from tests.conftest import run_git


async def test_output_is_captured_and_split_into_lines(repo: Path) -> None:
    result = await git("ls-files", cwd=repo)
    assert result.returncode == 0
    assert result.argv == ["git", "ls-files"]
    assert result.lines == ["README.md", "src/app.py"]


async def test_a_failure_raises_git_error_with_command_status_and_message(repo: Path) -> None:
    with pytest.raises(GitError) as info:
        await git("rev-parse", "--verify", "no-such-ref", cwd=repo)
    err = info.value
    assert err.returncode == 128
    assert err.argv == ["git", "rev-parse", "--verify", "no-such-ref"]
    assert "Needed a single revision" in err.stderr
    assert "git rev-parse --verify no-such-ref" in str(err)


async def test_ok_codes_accept_other_exit_statuses(repo: Path) -> None:
    result = await git("rev-parse", "-q", "--verify", "nope", cwd=repo, ok_codes=(0, 1))
    assert result.returncode == 1
    assert result.stdout == ""


async def test_input_is_fed_on_stdin_as_text_or_bytes(repo: Path) -> None:
    from_text = await git("hash-object", "--stdin", cwd=repo, input="hello\n")
    from_bytes = await git("hash-object", "--stdin", cwd=repo, input=b"hello\n")
    assert from_text.stdout.strip() == from_bytes.stdout.strip() == "ce013625030ba8dba906f756967f9e9ca394464a"


async def test_environment_is_pinned_and_extra_env_is_passed(repo: Path) -> None:
    result = await git("-c", "alias.showenv=!env", "showenv", cwd=repo, env={"ADW_PROBE": "yes"})
    env = dict(line.split("=", 1) for line in result.lines if "=" in line)
    assert env["LC_ALL"] == "C"
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    assert env["GIT_PAGER"] == "cat"
    assert env["GIT_OPTIONAL_LOCKS"] == "0"
    assert env["ADW_PROBE"] == "yes"


async def test_non_utf8_output_does_not_break_decoding(repo: Path) -> None:
    (repo / "bin.dat").write_bytes(b"\xff\xfe\x00raw")
    oid = (await git("hash-object", "-w", "bin.dat", cwd=repo)).stdout.strip()
    assert oid == run_git(repo, "hash-object", "bin.dat").strip()
    shown = await git("cat-file", "blob", oid, cwd=repo)
    assert shown.stdout.encode("utf-8", "surrogateescape") == b"\xff\xfe\x00raw"


async def test_a_transient_index_lock_is_retried(repo: Path) -> None:
    lock = repo / ".git" / "index.lock"
    lock.write_text("")
    (repo / "new.txt").write_text("x\n")

    async def release() -> None:
        await asyncio.sleep(0.15)
        lock.unlink()

    releaser = asyncio.create_task(release())
    await git("add", "new.txt", cwd=repo)
    await releaser
    assert "new.txt" in run_git(repo, "ls-files")


async def test_a_non_lock_failure_is_not_retried(repo: Path) -> None:
    started = time.monotonic()
    with pytest.raises(GitError):
        await git("checkout", "no-such-branch", cwd=repo)
    assert time.monotonic() - started < 1.0


def _blocking_fifo(repo: Path) -> Path:
    """Reading a FIFO nobody writes blocks git itself (an alias would block a grandchild instead)."""
    fifo = repo / "fifo"
    os.mkfifo(fifo)
    return fifo


async def test_a_command_past_its_timeout_is_killed(repo: Path) -> None:
    fifo = _blocking_fifo(repo)
    started = time.monotonic()
    with pytest.raises(GitTimeoutError) as info:
        await git("hash-object", fifo, cwd=repo, timeout=0.3)
    assert time.monotonic() - started < 2.0
    assert info.value.returncode == -9
    assert "timed out" in str(info.value)


async def test_cancelling_the_caller_kills_git(repo: Path) -> None:
    task = asyncio.create_task(git("hash-object", _blocking_fifo(repo), cwd=repo))
    await asyncio.sleep(0.2)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 1.0


# A command that returns while a git call of its own still runs, through the runner the command line uses.
_EXIT_WITH_GIT_RUNNING = """
import asyncio, sys
from adw.git.runner import git, run

async def main() -> None:
    asyncio.ensure_future(git("cat-file", "blob", "HEAD:big.txt", cwd=sys.argv[1]))
    await asyncio.sleep(float(sys.argv[2]))

run(main())
"""


def test_a_process_exiting_while_git_writes_a_lot_does_not_hang(repo: Path) -> None:
    """A git call still pending when a command returns is cancelled at exit. Two ways it hung: with git's pipes
    full, waiting for the killed git without draining them (about one exit in two, seen as `adw scout` never
    returning); and with git still starting (exit after 0 s; under load after 10 ms), asyncio.run's teardown
    cancelled the start too, which Python 3.11 waits for forever."""
    (repo / "big.txt").write_bytes(os.urandom(6_000_000).hex().encode())
    run_git(repo, "add", "big.txt")
    run_git(repo, "commit", "-qm", "big")
    for run, delay in enumerate(["0", "0.05"] * 4):
        try:
            subprocess.run([sys.executable, "-c", _EXIT_WITH_GIT_RUNNING, str(repo), delay], timeout=30, check=True)
        except subprocess.TimeoutExpired:
            pytest.fail(f"run {run + 1} (exit after {delay} s): the process never exited")


class _FinishingGit:
    """A git process whose output the test hands over: the test decides the exact loop turn git finishes in."""

    def __init__(self) -> None:
        self.output: asyncio.Future[tuple[bytes, bytes]] = asyncio.get_running_loop().create_future()
        self.running = asyncio.Event()
        self.returncode: int | None = None

    async def communicate(self, data: bytes | None = None) -> tuple[bytes, bytes]:
        self.running.set()
        out = await self.output
        self.returncode = 0
        return out

    def kill(self) -> None:
        self.returncode = -9


async def test_a_cancel_that_arrives_as_git_finishes_is_not_lost(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Python 3.11's asyncio.wait_for returns the result when its inner call completes in the same turn as a
    # cancel, and the cancel is gone: a stopped conflict watch went back to waiting and the server never exited.
    proc = _FinishingGit()

    async def spawn(*argv: str, **kwargs: object) -> _FinishingGit:
        return proc

    monkeypatch.setattr(asyncio, "create_subprocess_exec", spawn)
    task = asyncio.ensure_future(git("status", cwd=repo))
    await proc.running.wait()
    proc.output.set_result((b"", b""))
    task.cancel()
    await asyncio.wait([task])
    assert task.cancelled()
