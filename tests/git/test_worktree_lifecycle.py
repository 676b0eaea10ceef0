"""Worktree lifecycle under faults (issue #11, points 6 and 13): hostile names are refused before anything
exists; kill -9 of `worktree create`, `remove --archive` and `restore` at every git-call boundary loses no byte,
leaves nothing half-made that the next command trips on, and keeps `git fsck` clean; a full disk is a clear
error with nothing left behind."""

from __future__ import annotations

import itertools
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from adw.errors import InvalidNameError, WorktreeError
from adw.git.refs import ARCHIVE_NS
from adw.git.worktrees import Worktrees
from tests.conftest import MakeRepo, run_git
from tests.faults import FaultRun, FaultyGit

FILES = {"README.md": "# demo\n", "src/app.py": "def main():\n    return 1\n", "src/util.py": "X = 1\n"}
HOSTILE = ["@", "@main", "a..b", "-x", "a.lock", ".hidden", "a b", "x/", "a/b", "tab\there", "bell\x07",
           "del\x7f", "a~1", "c:d", "q?", "st*r", "br[ack", "back\\slash", "at@{1}", "end.", "x" * 300, ""]


@pytest.fixture
def repo(make_repo: MakeRepo) -> Path:
    return make_repo(FILES)


def fsck(repo: Path) -> None:
    assert run_git(repo, "fsck", "--strict", "--no-dangling", "--no-progress") == ""


def branches(repo: Path) -> list[str]:
    return run_git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads").split()


def ok(run: FaultRun, what: str) -> FaultRun:
    assert run.returncode == 0, f"{what}: {run.stderr}"
    assert "Traceback" not in run.stderr
    return run


def sweep(faulty_git: FaultyGit, cwd: Path, *args: str) -> Iterator[tuple[int, FaultRun]]:
    """Run `adw ARGS` killed at git call 1, 2, ... until a run finishes; yields each killed run."""
    for kill_at in itertools.count(1):
        run = faulty_git.run(cwd, *args, kill_at=kill_at)
        if not run.killed:
            ok(run, f"{' '.join(args)} with no kill left")
            return
        yield kill_at, run


# ---------------------------------------------------------------- names


@pytest.mark.parametrize("name", HOSTILE, ids=repr)
async def test_hostile_names_are_refused_before_anything_is_created(repo: Path, name: str) -> None:
    wts = await Worktrees.open(repo)
    refs_before = run_git(repo, "for-each-ref")
    with pytest.raises(InvalidNameError) as info:
        await wts.create(name)
    assert info.value.message.startswith(f"invalid worktree name {name!r}: ")
    assert info.value.hint
    assert run_git(repo, "for-each-ref") == refs_before
    assert run_git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert not wts.root.exists()


@pytest.mark.parametrize("branch", ["@", "HEAD", "-b", "a..b", "x/", "/x", "a//b", "x.lock/y", "a/.b", "s p"])
async def test_hostile_branch_names_are_refused(repo: Path, branch: str) -> None:
    wts = await Worktrees.open(repo)
    with pytest.raises(InvalidNameError, match="invalid branch name"):
        await wts.create("fine", branch=branch)
    assert branches(repo) == ["main"] and not wts.root.exists()


def test_the_cli_refuses_at_sign_with_one_clear_error(repo: Path, faulty_git: FaultyGit) -> None:
    run = faulty_git.run(repo, "worktree", "create", "@")
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert run.stderr.startswith("adw: invalid worktree name '@': it cannot start with '-', '.' or '@'")
    assert len(run.calls) == 1  # finding the repository: the name is refused before any git call that creates
    assert branches(repo) == ["main"]


async def test_names_git_accepts_still_work(repo: Path) -> None:
    wts = await Worktrees.open(repo)
    for name in ("fix-login", "v1.2", "naïve_ünïcode", "a@b", "x" * 200):
        assert (await wts.create(name)).worktree.path.name == name


# ---------------------------------------------------------------- create


@pytest.mark.faults
def test_create_killed_at_every_git_call_is_all_or_nothing(repo: Path, faulty_git: FaultyGit) -> None:
    root = repo.parent / "repo.worktrees"
    kills = 0
    for kill_at, _ in sweep(faulty_git, repo, "worktree", "create", "x", "--json"):
        kills += 1
        fsck(repo)
        listed = json.loads(ok(faulty_git.run(repo, "worktree", "list", "--json"), "list").stdout)
        assert all(w["complete"] is False for w in listed if w["name"] == "x"), f"kill at {kill_at}: {listed}"

        if kill_at % 2:  # the rerun completes the create
            created = json.loads(ok(faulty_git.run(repo, "worktree", "create", "x", "--json"), "rerun").stdout)
            path = Path(created["worktree"]["path"])
            assert {p: (path / p).read_text() for p in FILES} == FILES
            assert run_git(path, "status", "--porcelain") == ""
            ok(faulty_git.run(repo, "worktree", "remove", "x"), f"remove after the rerun (kill at {kill_at})")
        else:  # or a plain remove (when anything was made yet) or prune takes it back
            made = any(w["name"] == "x" for w in listed) or (root / "x").exists()
            verb = ["remove", "x"] if made and kill_at % 4 == 0 else ["prune"]
            ok(faulty_git.run(repo, "worktree", *verb), f"{verb} after kill at {kill_at}")

        pruned = json.loads(ok(faulty_git.run(repo, "worktree", "prune", "--json"), "prune").stdout)
        assert pruned["orphan_folders"] == [] and pruned["half_made"] == []
        assert branches(repo) == ["main"], f"kill at {kill_at}"
        assert run_git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
        assert [p.name for p in root.iterdir() if not p.name.startswith(".")] == []
        fsck(repo)
    # A create spawns git 3 times since it reads the base, its commit and the new branch's absence in-process.
    assert kills >= 3, "the sweep must have interrupted every git call of the create"


def test_a_create_killed_mid_checkout_is_removed_by_plain_remove(repo: Path, faulty_git: FaultyGit) -> None:
    calls = ok(faulty_git.run(repo, "worktree", "create", "probe"), "probe").calls
    ok(faulty_git.run(repo, "worktree", "remove", "probe"), "remove probe")
    reset_at = next(i for i, call in enumerate(calls, 1) if "reset" in call)
    killed = faulty_git.run(repo, "worktree", "create", "x", kill_at=reset_at)
    assert killed.killed
    half = repo.parent / "repo.worktrees" / "x"
    assert (half / ".git").is_file() and not (half / "README.md").exists()  # registered, nothing checked out
    removed = ok(faulty_git.run(repo, "worktree", "remove", "x"), "plain remove")
    assert "half-made" in removed.stdout
    assert not half.exists() and branches(repo) == ["main"]


def test_a_full_disk_during_create_is_a_clear_error_and_leaves_nothing(
    repo: Path, tmp_path: Path, faulty_git: FaultyGit
) -> None:
    small = tmp_path / "small"
    small.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(small)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        (repo / "big.bin").write_bytes(b"\x01" * 400_000)  # does not fit in the 256 KiB file system
        run_git(repo, "add", "big.bin")
        run_git(repo, "commit", "-q", "-m", "big")
        (repo / ".adw.toml").write_text(f'[worktree]\nroot = "{small}"\n', encoding="utf-8")
        failed = faulty_git.run(repo, "worktree", "create", "x")
        assert failed.returncode == 2 and "Traceback" not in failed.stderr, failed.stderr
        assert failed.stderr.startswith("adw: could not create worktree x:")
        assert "nothing was left behind" in failed.stderr and "free some disk space" in failed.stderr
        assert [p.name for p in small.iterdir() if not p.name.startswith(".")] == []
        assert branches(repo) == ["main"]
        assert run_git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
        fsck(repo)
    finally:
        subprocess.run(["umount", "-l", str(small)], check=True)


# ---------------------------------------------------------------- remove --archive / restore

WORK = {"src/app.py": "uncommitted edit\n", "notes.txt": "untracked notes\n", "src/new.py": "committed on the branch\n"}


def give_work(path: Path) -> None:
    (path / "src/new.py").write_text(WORK["src/new.py"], encoding="utf-8")
    run_git(path, "add", "src/new.py")
    run_git(path, "commit", "-q", "-m", "branch work")
    (path / "src/app.py").write_text(WORK["src/app.py"], encoding="utf-8")
    (path / "notes.txt").write_text(WORK["notes.txt"], encoding="utf-8")


def has_work(path: Path) -> bool:
    return all((path / p).is_file() and (path / p).read_text() == text for p, text in WORK.items())


def archived_work(repo: Path) -> bool:
    refs = run_git(repo, "for-each-ref", "--format=%(refname)", f"{ARCHIVE_NS}/w/").split()
    return any(all(run_git(repo, "show", f"{ref}:{p}") == text for p, text in WORK.items()) for ref in refs)


@pytest.mark.faults
async def test_remove_archive_killed_at_every_git_call_loses_nothing(repo: Path, faulty_git: FaultyGit) -> None:
    wts = await Worktrees.open(repo)
    path = (await wts.create("w")).worktree.path
    give_work(path)
    kills = 0
    for kill_at, _ in sweep(faulty_git, repo, "worktree", "remove", "w", "--archive"):
        kills += 1
        fsck(repo)
        assert has_work(path) or archived_work(repo), f"kill at {kill_at}: the work is neither in place nor archived"
        wts = await Worktrees.open(repo)  # the next commands, in-process: the same code without the wrapper's cost
        if path.exists():
            await wts.remove("w", archive=True)
        await wts.restore("w")
        assert has_work(path), f"kill at {kill_at}"
        fsck(repo)
    assert not path.exists() and archived_work(repo)
    assert kills >= 6


@pytest.mark.faults
async def test_restore_killed_at_every_git_call_loses_nothing(repo: Path, faulty_git: FaultyGit) -> None:
    wts = await Worktrees.open(repo)
    path = (await wts.create("w")).worktree.path
    give_work(path)
    await wts.remove("w", archive=True)
    kills = 0
    for kill_at, _ in sweep(faulty_git, repo, "worktree", "restore", "w"):
        kills += 1
        fsck(repo)
        assert archived_work(repo)
        wts = await Worktrees.open(repo)
        await wts.restore("w")
        assert has_work(path), f"kill at {kill_at}"
        await wts.remove("w", archive=True)
    assert has_work(path)
    assert kills >= 4


async def test_a_second_restore_never_overwrites_the_restored_worktree(repo: Path) -> None:
    wts = await Worktrees.open(repo)
    path = (await wts.create("w")).worktree.path
    give_work(path)
    await wts.remove("w", archive=True)
    await wts.restore("w")
    (path / "notes.txt").write_text("edited after the restore\n", encoding="utf-8")
    with pytest.raises(WorktreeError, match="already exists"):
        await wts.restore("w")
    assert (path / "notes.txt").read_text() == "edited after the restore\n"


async def test_the_caller_that_made_a_worktree_adopts_it_and_nobody_else_does(repo: Path) -> None:
    wts = await Worktrees.open(repo)
    made = await wts.create("w", created_for="wf-1")  # then the run died before recording the step's success
    (made.worktree.path / "work.txt").write_text("written by a later step\n", encoding="utf-8")
    again = await wts.create("w", created_for="wf-1")
    assert again.worktree.path == made.worktree.path and again.worktree.head == made.worktree.head
    assert again.env == made.env and "made earlier by this run" in again.message
    assert (made.worktree.path / "work.txt").read_text() == "written by a later step\n"
    for other in ("wf-2", None):
        with pytest.raises(WorktreeError, match="already exists"):
            await wts.create("w", created_for=other)
