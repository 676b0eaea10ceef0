"""The pool of prewarmed worktrees (issue #14, point 3): taken by `create` when its environment matches, moved
forward to a newer base with a checkout of the changed files, its paths rewritten where the setup wrote them;
invisible unless asked for; cleaned by `prune`; refilled in the background; and a kill -9 at any git call of a
take or a fill leaves nothing that blocks the next command or loses work."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest

from adw.config import AgentsConfig, load_config
from adw.errors import WorktreeError
from adw.git.pool import POOL_FOLDER
from adw.git.runner import GitResult, git
from adw.git.worktrees import Worktrees
from adw.sdlc.pipeline import sdlc_workflow
from adw.sdlc.steps import CreateWorktreeStep
from adw.workflow.agent import CancelToken
from adw.workflow.events import EventBus, TaskEvents
from tests.conftest import MakeRepo, run_git
from tests.faults import FaultRun, FaultyGit

# A setup like `uv sync`: it writes files that hold the worktree's absolute path (a script's shebang, a link)
# and counts its runs in a file outside the worktree.
SETUP = (
    "import os, pathlib, sys; here = os.getcwd(); venv = pathlib.Path('.venv/bin'); venv.mkdir(parents=True);"
    "(venv / 'tool').write_text('#!' + here + '/.venv/bin/python\\n');"
    "os.symlink(here + '/README.md', '.venv/readme');"
    "open(sys.argv[1], 'a').write(here + '\\n')"
)
FILES = {"README.md": "# demo\n", "src/app.py": "X = 1\n", "uv.lock": "lock 1\n", ".gitignore": ".venv/\n"}


@pytest.fixture
def repo(make_repo: MakeRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("ADW_POOL")
    root = make_repo(FILES)
    runs = tmp_path / "setup-runs"
    (root / ".adw.toml").write_text(f"[worktree]\nsetup = {json.dumps([sys.executable, '-c', SETUP, str(runs)])}\n")
    return root


def setup_runs(repo: Path) -> list[str]:
    runs = repo.parent / "setup-runs"
    return runs.read_text().splitlines() if runs.exists() else []


def commit(repo: Path, files: dict[str, str | None], message: str = "change") -> str:
    for rel, content in files.items():
        if content is None:
            (repo / rel).unlink()
        else:
            (repo / rel).write_text(content)
    run_git(repo, "add", "-A", *files)
    run_git(repo, "commit", "-q", "-m", message)
    return run_git(repo, "rev-parse", "HEAD").strip()


def registered(repo: Path) -> list[str]:
    return [line[9:] for line in run_git(repo, "worktree", "list", "--porcelain").splitlines()
            if line.startswith("worktree ")]


def assert_pool_consistent(wts: Worktrees) -> None:
    """Every record has its folder, registered with git; every folder and git entry in the pool has a record."""
    entries = wts.pool.entries()
    folders = sorted(wts.pool.folder.iterdir()) if wts.pool.folder.exists() else []
    assert sorted(e.path for e in entries) == folders
    assert all(e.ready for e in entries)
    in_pool = sorted(Path(p) for p in registered(wts.main_root) if Path(p).parent == wts.pool.folder)
    assert in_pool == folders


@pytest.fixture
def no_refill(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """In-process tests fill the pool themselves: the background refill is recorded, not started."""
    started: list[Path] = []
    monkeypatch.setattr("adw.git.pool.Pool.refill_in_background", lambda pool: started.append(pool.folder))
    return started


async def test_a_create_takes_a_ready_worktree_with_its_environment(repo: Path, no_refill: list[Path]) -> None:
    wts = await Worktrees.open(repo)
    made = await wts.pool.fill()
    assert len(made) == 2 and len(setup_runs(repo)) == 2
    taken_from = {e.path for e in made}

    created = await wts.create("one")

    path = created.worktree.path
    assert "taken from the pool" in created.message and path == wts.root / "one"
    assert len(setup_runs(repo)) == 2, "the setup ran ahead, not again"
    assert created.setup is not None and created.setup.returncode == 0
    assert run_git(path, "symbolic-ref", "HEAD").strip() == "refs/heads/adw/one"
    assert run_git(path, "rev-parse", "HEAD") == run_git(repo, "rev-parse", "main")
    assert run_git(path, "status", "--porcelain") == ""
    assert {rel: (path / rel).read_text() for rel in FILES} == FILES
    # what the setup wrote with the pool folder's path now names the worktree's own
    assert (path / ".venv/bin/tool").read_text() == f"#!{path}/.venv/bin/python\n"
    assert os.readlink(path / ".venv/readme") == f"{path}/README.md"
    assert len(wts.pool.entries()) == 1 and next(e.path for e in wts.pool.entries()) in taken_from
    assert not any(p.exists() for p in taken_from - {e.path for e in wts.pool.entries()})
    assert (await wts.get("one")).path == path and no_refill == [wts.pool.folder]
    assert_pool_consistent(wts)


async def test_a_take_at_the_pool_base_runs_git_only_to_move_and_branch_it(
        repo: Path, no_refill: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """The take's own cost: the base, the new branch's absence and the pool key are read in-process (the key
    from the lock files the entry recorded when it was filled), so git runs only to move it and branch it, and
    the branch is made without `git switch`, whose comparison of the whole index grows with the repository."""
    wts = await Worktrees.open(repo)
    await wts.pool.fill()
    calls: list[str] = []

    async def counted(*args: str, **kwargs: Any) -> GitResult:
        calls.append(args[0])
        return await git(*args, **kwargs)

    monkeypatch.setattr("adw.git.worktrees.git", counted)
    monkeypatch.setattr("adw.git.pool.git", counted)

    assert "taken from the pool" in (await wts.create("one")).message
    assert calls == ["worktree", "update-ref", "symbolic-ref"]
    path = wts.root / "one"
    assert run_git(path, "symbolic-ref", "HEAD").strip() == "refs/heads/adw/one"
    assert run_git(path, "rev-parse", "HEAD") == run_git(repo, "rev-parse", "main")
    assert run_git(path, "status", "--porcelain") == ""


async def test_a_pool_worktree_behind_is_moved_forward_to_the_base(repo: Path, no_refill: list[Path]) -> None:
    wts = await Worktrees.open(repo)
    await wts.pool.fill()
    new = commit(repo, {"src/app.py": "X = 2\n", "src/new.py": "Y = 1\n", "README.md": None})

    created = await wts.create("two")

    path = created.worktree.path
    assert "moved from" in created.message and len(setup_runs(repo)) == 2
    assert run_git(path, "rev-parse", "HEAD").strip() == new
    assert run_git(path, "status", "--porcelain") == ""
    assert (path / "src/app.py").read_text() == "X = 2\n" and (path / "src/new.py").exists()
    assert not (path / "README.md").exists()
    assert (path / ".venv/bin/tool").read_text() == f"#!{path}/.venv/bin/python\n"


async def test_fill_moves_ready_worktrees_forward_to_the_main_branch(repo: Path, no_refill: list[Path]) -> None:
    wts = await Worktrees.open(repo)
    await wts.pool.fill()
    new = commit(repo, {"src/app.py": "X = 3\n"})
    moved = await wts.pool.fill()
    assert len(moved) == 2 and all(e.base_commit == new for e in wts.pool.entries())
    assert all((e.path / "src/app.py").read_text() == "X = 3\n" for e in wts.pool.entries())
    assert len(setup_runs(repo)) == 2
    assert "moved from" not in (await wts.create("three")).message


async def test_other_lock_files_or_setup_never_match(repo: Path, no_refill: list[Path]) -> None:
    wts = await Worktrees.open(repo)
    await wts.pool.fill()
    commit(repo, {"uv.lock": "lock 2\n"})
    created = await wts.create("locked")
    assert "pool" not in created.message and len(setup_runs(repo)) == 3, "a fresh setup for the new lock file"
    assert len(wts.pool.entries()) == 2

    (repo / ".adw.toml").write_text((repo / ".adw.toml").read_text().replace("'.venv/bin'", "'.venv/bin' "))
    other_setup = await Worktrees.open(repo)
    commit(repo, {"uv.lock": "lock 1\n"})  # the lock files match again, the setup command does not
    assert "pool" not in (await other_setup.create("setup")).message


async def test_the_sdlc_worktree_step_takes_from_the_pool(repo: Path, no_refill: list[Path]) -> None:
    wts = await Worktrees.open(repo)
    await wts.pool.fill()
    spec = repo / "specs/add-numbers.md"
    spec.parent.mkdir()
    spec.write_text("# Add numbers\n")
    workflow = sdlc_workflow(repo, spec, load_config(repo))
    step = CreateWorktreeStep(workflow, AgentsConfig())
    result = await step.run(workflow.task("worktree"), repo, TaskEvents(EventBus(), workflow.id, "worktree"),
                            CancelToken())
    assert result.status == "succeeded" and "taken from the pool" in result.summary
    assert workflow.cwd == str(wts.root / "add-numbers") and len(setup_runs(repo)) == 2


async def test_an_existing_branch_or_no_pool_is_a_plain_create(repo: Path, no_refill: list[Path]) -> None:
    wts = await Worktrees.open(repo)
    await wts.pool.fill()
    run_git(repo, "branch", "feature")
    assert "pool" not in (await wts.create("f", branch="feature")).message
    assert len(no_refill) == 1
    assert "pool" not in (await wts.create("g", pool=False)).message
    assert len(wts.pool.entries()) == 2 and len(no_refill) == 1, "no pool: no refill either"


async def test_pool_worktrees_are_invisible_unless_asked_for(repo: Path, no_refill: list[Path]) -> None:
    wts = await Worktrees.open(repo)
    made = await wts.pool.fill()
    assert [i.name for i in await wts.all()] == ["@main"]
    listed = await wts.all(pool=True)
    assert sorted(i.path for i in listed if i.pool) == sorted(e.path for e in made)
    with pytest.raises(WorktreeError, match="no worktree named"):
        await wts.remove(made[0].path.name, force=True)
    with pytest.raises(WorktreeError, match="no worktree named"):
        await wts.get(str(made[0].path))
    pruned = await wts.prune()
    assert pruned.orphan_folders == [] and pruned.pool_discarded == [], "matching pool worktrees are kept"


def test_the_cli_lists_pool_worktrees_only_with_pool(repo: Path) -> None:
    def adw(*args: str) -> list[dict[str, object]]:
        done = subprocess.run([sys.executable, "-m", "adw", *args, "--json"], cwd=repo, capture_output=True,
                              text=True, check=True, env={**os.environ, "ADW_POOL": "1"})
        listed: list[dict[str, object]] = json.loads(done.stdout)
        return listed

    assert len(adw("worktree", "pool")) == 2
    assert [w["name"] for w in adw("worktree", "list")] == ["@main"]
    assert [w["pool"] for w in adw("worktree", "list", "--pool")] == [False, True, True]


async def test_prune_discards_pool_worktrees_that_no_longer_fit(repo: Path, no_refill: list[Path]) -> None:
    wts = await Worktrees.open(repo)
    made = await wts.pool.fill()
    commit(repo, {"uv.lock": "lock 2\n"})
    pruned = await wts.prune()
    assert sorted(pruned.pool_discarded) == sorted(e.path for e in made)
    assert wts.pool.entries() == [] and registered(repo) == [str(repo)]
    assert not any(e.path.exists() for e in made)

    await wts.pool.fill()
    (repo / ".adw.toml").write_text((repo / ".adw.toml").read_text() + "[worktree.pool]\nsize = 0\n")
    assert len((await (await Worktrees.open(repo)).prune()).pool_discarded) == 2
    assert registered(repo) == [str(repo)]


async def test_fill_keeps_to_the_size_and_the_disk_budget(repo: Path, no_refill: list[Path]) -> None:
    config = (repo / ".adw.toml").read_text()
    (repo / ".adw.toml").write_text(config + "[worktree.pool]\nsize = 1\n")
    wts = await Worktrees.open(repo)
    assert len(await wts.pool.fill()) == 1 and await wts.pool.fill() == []
    assert len(wts.pool.entries()) == 1

    (repo / ".adw.toml").write_text(config + "[worktree.pool]\nmax_disk = '4kb'\n")
    tight = await Worktrees.open(repo)
    assert len((await tight.prune()).pool_discarded) == 1
    assert await tight.pool.fill() == [] and tight.pool.entries() == []
    assert registered(repo) == [str(repo)]
    assert len(setup_runs(repo)) == 1, "the size learnt from the first one stops the next fill at once"


async def test_a_failing_setup_is_not_retried_by_every_fill(repo: Path, no_refill: list[Path]) -> None:
    failing = json.dumps([sys.executable, "-c", "raise SystemExit(3)"])
    (repo / ".adw.toml").write_text(f"[worktree]\nsetup = {failing}\n")
    wts = await Worktrees.open(repo)
    assert await wts.pool.fill() == [] and await wts.pool.fill() == []
    assert wts.pool.entries() == [] and registered(repo) == [str(repo)]
    created = await wts.create("plain")
    assert created.setup is not None and created.setup.returncode == 3


async def test_an_orphan_or_abandoned_pool_worktree_is_discarded(repo: Path, no_refill: list[Path]) -> None:
    wts = await Worktrees.open(repo)
    made = await wts.pool.fill()
    (wts.pool.records / f"{made[0].id}.json").unlink()  # as if a take was killed right after claiming it
    abandoned = made[1].model_copy(update={"ready": False, "owner_pid": 2**22 + 7})
    (wts.pool.records / f"{made[1].id}.json").write_text(abandoned.model_dump_json())
    assert "pool" not in (await wts.create("x")).message
    gone = await wts.pool.reconcile(await wts.pool.key(await wts.default_base()))
    assert sorted(gone) == sorted(e.path for e in made)
    assert registered(repo) == [str(repo), str(wts.root / "x")]
    assert_pool_consistent(wts)


async def test_a_create_refills_the_pool_in_a_background_process(repo: Path) -> None:
    wts = await Worktrees.open(repo)
    await wts.create("first")  # nothing to take yet: a plain create, then a refill in the background
    assert await ready_soon(wts, 2)
    assert "taken from the pool" in (await wts.create("second")).message
    assert await ready_soon(wts, 2)
    assert (wts.pool.records / "fill.log").read_text() == ""
    assert_pool_consistent(wts)


async def ready_soon(wts: Worktrees, count: int) -> bool:
    """Whether `count` pool worktrees are ready within two minutes (the refill runs at low priority)."""
    for _ in range(600):
        if len([e for e in wts.pool.entries() if e.ready]) == count:
            return True
        await asyncio.sleep(0.2)
    return False


# ---------------------------------------------------------------- kill -9


@pytest.fixture
def faulty_git(tmp_path_factory: pytest.TempPathFactory) -> FaultyGit:
    faulty = FaultyGit(tmp_path_factory.mktemp("faults"))
    # No background refill while calls are counted: `nice` first on PATH does nothing.
    (faulty.bin / "nice").write_text("#!/bin/sh\nexit 0\n")
    (faulty.bin / "nice").chmod(0o755)
    return faulty


def ok(run: FaultRun, what: str) -> FaultRun:
    assert run.returncode == 0 and "Traceback" not in run.stderr, f"{what}: {run.stderr}"
    return run


@pytest.mark.faults
@pytest.mark.parametrize("behind", [True, False], ids=["pool-behind", "pool-at-base"])
def test_a_take_killed_at_every_git_call_blocks_nothing(repo: Path, faulty_git: FaultyGit, behind: bool) -> None:
    """Behind: the pool lags one commit, so the take also moves it forward (`switch -c`). At the base: the take
    makes the branch with `update-ref` then points HEAD at it with `symbolic-ref`."""
    commit(repo, {"src/app.py": "X = 2\n"})
    kills = 0
    for kill_at in itertools.count(1):
        run_git(repo, "checkout", "-q", "HEAD~1" if behind else "main")
        ok(faulty_git.run(repo, "worktree", "pool"), "fill")
        run_git(repo, "checkout", "-q", "main")
        run = faulty_git.run(repo, "worktree", "create", "x", "--json", kill_at=kill_at)
        if not run.killed:
            assert "taken from the pool" in json.loads(run.stdout)["message"]
            break
        kills += 1
        again = json.loads(ok(faulty_git.run(repo, "worktree", "create", "x", "--json"), f"rerun {kill_at}").stdout)
        path = Path(again["worktree"]["path"])
        assert (path / "src/app.py").read_text() == "X = 2\n", f"kill at {kill_at}"
        assert run_git(path, "status", "--porcelain") == "" and run_git(path, "symbolic-ref", "HEAD") == (
            "refs/heads/adw/x\n")
        ok(faulty_git.run(repo, "worktree", "remove", "x"), f"remove after kill at {kill_at}")
        pruned = json.loads(ok(faulty_git.run(repo, "worktree", "prune", "--json"), "prune").stdout)
        assert pruned["orphan_folders"] == [] and pruned["half_made"] == []
        assert run_git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads").split() == ["main"]
        assert registered(repo)[0] == str(repo) and all(POOL_FOLDER in p for p in registered(repo)[1:])
    assert kills >= 4, "the sweep must have interrupted several git calls"


@pytest.mark.faults
async def test_a_fill_killed_at_every_git_call_blocks_nothing(repo: Path, faulty_git: FaultyGit) -> None:
    wts = await Worktrees.open(repo)
    kills = 0
    for kill_at in itertools.count(1):
        if not faulty_git.run(repo, "worktree", "pool", kill_at=kill_at).killed:
            break
        kills += 1
        ok(faulty_git.run(repo, "worktree", "pool"), f"fill after kill at {kill_at}")
        assert_pool_consistent(wts)
        assert len(wts.pool.entries()) == 2
        created = json.loads(ok(faulty_git.run(repo, "worktree", "create", "x", "--json"), "create").stdout)
        assert "taken from the pool" in created["message"]
        ok(faulty_git.run(repo, "worktree", "remove", "x"), "remove")
        await wts.prune()
        for entry in wts.pool.entries():  # start the next kill from an empty pool
            await wts.pool.discard(entry)
    assert kills >= 4, "the sweep must have interrupted several git calls"


async def test_creates_leave_no_zombie_refill_in_a_long_lived_process(repo: Path) -> None:
    """The language server creates worktrees for hours: each refill a create starts is reaped once it ends."""
    wts = await Worktrees.open(repo)
    before = {child.pid for child in psutil.Process().children()}
    await wts.create("one")
    await wts.create("two")
    assert await ready_soon(wts, 2), "the creates started a refill"
    assert await children_gone_soon(before), "a finished refill is still in the process table (a zombie)"


async def children_gone_soon(before: set[int]) -> bool:
    """Whether every child process not in `before` leaves the process table (ended and reaped) within two
    minutes; a zombie never does."""
    for _ in range(600):
        if not [child for child in psutil.Process().children() if child.pid not in before]:
            return True
        await asyncio.sleep(0.2)
    return False
