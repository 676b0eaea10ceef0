"""Locks after a crash (issue #11, point 5): ADW's own locks never block the next command; a git lock file that
stays in the way is named, with the process holding it or the fact that nobody does, and what to do."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from adw.errors import GitLockError
from adw.git import runner
from adw.git.locks import lock_holders, repo_lock
from adw.git.runner import git
from tests.conftest import run_git
from tests.faults import FaultyGit


@pytest.fixture
def few_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "_LOCK_RETRIES", 1)


def holding(lock: Path) -> subprocess.Popen[str]:
    """A live process that holds `lock` open, as a git between taking and committing its lock does."""
    script = "import sys, time; f = open(sys.argv[1], 'a'); print('ready', flush=True); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", script, str(lock)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    return proc


def test_a_shadow_index_lock_left_by_a_killed_git_does_not_block_checkpoints(repo: Path, faulty_git: FaultyGit) -> None:
    assert faulty_git.run(repo, "checkpoint", "--json").returncode == 0
    shadow = repo / ".git" / "adw" / "shadow-index"
    assert shadow.exists()
    Path(f"{shadow}.lock").write_text("")  # what a git killed while writing the shadow index leaves
    (repo / "src/app.py").write_text("after the crash\n", encoding="utf-8")

    after = faulty_git.run(repo, "checkpoint", "--json")
    assert after.returncode == 0, after.stderr
    commit = json.loads(after.stdout)["checkpoint"]["commit"]
    assert run_git(repo, "show", f"{commit}:src/app.py") == "after the crash\n"
    assert not Path(f"{shadow}.lock").exists()


async def test_a_shadow_index_lock_held_by_a_live_process_is_not_taken(repo: Path, few_retries: None) -> None:
    shadow = repo / ".git" / "adw" / "shadow-index"
    shadow.parent.mkdir(parents=True)
    lock = Path(f"{shadow}.lock")
    proc = holding(lock)
    try:
        with pytest.raises(GitLockError) as info:
            await git("add", "-A", cwd=repo, env={"GIT_INDEX_FILE": str(shadow)})
        assert f"held by process {proc.pid}" in info.value.message
        assert lock.exists()
    finally:
        proc.kill()
        proc.wait()


async def test_a_held_index_lock_names_the_file_and_the_process(repo: Path, few_retries: None) -> None:
    lock = repo / ".git" / "index.lock"
    proc = holding(lock)
    try:
        assert [h.pid for h in lock_holders(lock, repo)] == [proc.pid]
        with pytest.raises(GitLockError) as info:
            await git("add", "-A", cwd=repo)
        assert info.value.message.startswith(f"{lock} is held by process {proc.pid} ({sys.executable} -c import sys")
        assert f"kill {proc.pid}" in info.value.hint and "run again" not in str(info.value)
    finally:
        proc.kill()
        proc.wait()


async def test_a_stale_index_lock_says_nobody_holds_it_and_how_to_remove_it(repo: Path, few_retries: None) -> None:
    lock = repo / ".git" / "index.lock"
    lock.write_text("")
    with pytest.raises(GitLockError) as info:
        await git("add", "-A", cwd=repo)
    assert info.value.message == f"{lock} was left behind by a git process that stopped mid-write; no process holds it"
    assert info.value.hint == f"nothing will remove it by itself: delete it (`rm '{lock}'`), then try again"
    assert lock.exists()  # the user's repository: ADW says what to do, it does not delete git's lock itself


def test_adw_own_lock_dies_with_its_process(tmp_path: Path) -> None:
    lock = tmp_path / "worktrees.lock"
    script = (
        "import asyncio, sys\nfrom pathlib import Path\nfrom adw.git.locks import repo_lock\n"
        "async def main():\n    async with repo_lock(Path(sys.argv[1])):\n"
        "        print('locked', flush=True)\n        await asyncio.sleep(60)\nasyncio.run(main())\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(lock)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "locked\n"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    async def take() -> bool:
        async with repo_lock(lock):
            return True

    assert asyncio.run(asyncio.wait_for(take(), 30))  # a lock left by the dead process would spin until the guard
