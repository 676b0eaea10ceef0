"""The time machine never loses work: branch tips an undo moves, files saved while it runs, type changes, edge file
names, a held git lock, a full disk and files that cannot be replaced."""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from adw.errors import CheckpointError
from adw.git import checkpoints as checkpoints_module
from adw.git.checkpoints import Checkpoints
from tests.conftest import MakeRepo, run_git
from tests.faults import FaultyGit
from tests.git.test_checkpoints import files_of, git_out, reachable


def adw(cwd: Path, *args: str, limit_file_size: int | None = None) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        if limit_file_size is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_file_size, limit_file_size))

    return subprocess.run([sys.executable, "-m", "adw", *args], cwd=cwd, capture_output=True, text=True,
                          preexec_fn=limit)


# ---------------------------------------------------------------- branch tips (issue 11 point 1)


async def test_undo_across_a_branch_switch_keeps_the_commit_and_redo_brings_it_back(repo: Path) -> None:
    run_git(repo, "switch", "-q", "-c", "feature")
    cps = await Checkpoints.open(repo)
    assert (await cps.checkpoint("on feature")).created
    (repo / "src/app.py").write_text("feature work\n")
    run_git(repo, "commit", "-q", "-am", "F1")
    f1 = git_out(repo, "rev-parse", "HEAD")
    run_git(repo, "switch", "-q", "main")
    main_tip = git_out(repo, "rev-parse", "HEAD")

    undone = await cps.undo()
    assert git_out(repo, "symbolic-ref", "HEAD") == "refs/heads/feature"
    assert git_out(repo, "rev-parse", "feature") != f1  # the undo rewound feature to its checkpoint
    assert reachable(repo, f1), "F1 must stay reachable from a ref, not only from the reflog"
    run_git(repo, "gc", "-q", "--prune=now")
    assert reachable(repo, f1)

    redone = await cps.redo()
    assert redone.restored.number == undone.saved.number if undone.saved else False
    assert git_out(repo, "symbolic-ref", "HEAD") == "refs/heads/main"
    assert git_out(repo, "rev-parse", "main") == main_tip
    assert git_out(repo, "rev-parse", "feature") == f1, "redo returns every branch to where it was"
    assert git_out(repo, "for-each-ref", "refs/adw/tips/") == ""


async def test_undo_from_a_detached_head_to_a_branch_and_back(repo: Path) -> None:
    cps = await Checkpoints.open(repo)
    await cps.checkpoint("on main")
    (repo / "README.md").write_text("main moved on\n")
    run_git(repo, "commit", "-q", "-am", "M1")
    m1 = git_out(repo, "rev-parse", "HEAD")
    run_git(repo, "switch", "-q", "--detach", "HEAD~1")
    (repo / "scratch.txt").write_text("detached work\n")

    await cps.undo()
    assert git_out(repo, "symbolic-ref", "HEAD") == "refs/heads/main"
    assert reachable(repo, m1)
    await cps.redo()
    assert git_out(repo, "symbolic-ref", "-q", "HEAD") == ""  # detached again
    assert git_out(repo, "rev-parse", "main") == m1
    assert (repo / "scratch.txt").read_text() == "detached work\n"


# ---------------------------------------------------------------- files saved during an undo (point 3)


def test_a_file_saved_while_undo_runs_is_kept_and_reported(repo: Path, faulty_git: FaultyGit) -> None:
    assert adw(repo, "checkpoint").returncode == 0
    (repo / "src/app.py").write_text("edited\n")
    (repo / "new.txt").write_text("created after the checkpoint\n")
    result: list[subprocess.CompletedProcess[str]] = []

    def run_undo() -> None:
        # Slow blob reads widen the window between the snapshot and the restore, where an editor saves.
        done = faulty_git.run(repo, "undo", "--json", slow={"cat-file": 3.0})
        result.append(subprocess.CompletedProcess([], done.returncode, done.stdout, done.stderr))

    undo = threading.Thread(target=run_undo)
    undo.start()
    while undo.is_alive() and not any(call[:1] == ["cat-file"] for call in faulty_git.calls_so_far()):
        threading.Event().wait(0.01)
    (repo / "new.txt").write_text("saved by the editor during the undo\n")
    (repo / "src/app.py").write_text("also saved during the undo\n")
    undo.join()

    assert result[0].returncode == 0, result[0].stderr
    assert sorted(json.loads(result[0].stdout)["kept"]) == ["new.txt", "src/app.py"]
    assert (repo / "new.txt").read_text() == "saved by the editor during the undo\n"
    assert (repo / "src/app.py").read_text() == "also saved during the undo\n"


async def test_undo_file_keeps_a_file_that_changed_after_its_checkpoint(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cps = await Checkpoints.open(repo)
    await cps.checkpoint()
    (repo / "src/app.py").write_text("v2\n")
    real_apply = Checkpoints._apply

    async def editor_saves_first(self: Checkpoints, plan: Any) -> list[str]:
        (repo / "src/app.py").write_text("saved by the editor\n")
        return await real_apply(self, plan)

    monkeypatch.setattr(Checkpoints, "_apply", editor_saves_first)
    result = await cps.undo_file("src/app.py")
    assert result.kept == ["src/app.py"]
    assert (repo / "src/app.py").read_text() == "saved by the editor\n"


# ---------------------------------------------------------------- type changes and edge files (point 4)


async def test_a_file_replaced_by_a_folder_and_back(repo: Path) -> None:
    cps = await Checkpoints.open(repo)
    await cps.checkpoint()
    (repo / "README.md").unlink()
    (repo / "README.md").mkdir()
    (repo / "README.md" / "inner.txt").write_text("a folder now\n")
    (repo / "src/app.py").unlink()
    (repo / "src").rmdir()
    (repo / "src").write_text("a file now\n")
    before = files_of(repo)

    result = await cps.undo()
    assert result.kept == []
    assert (repo / "README.md").read_text() == "# demo\n"
    assert (repo / "src/app.py").read_text() == "def main():\n    return 1\n"
    await cps.redo()
    assert files_of(repo) == before


async def test_a_committed_file_over_the_size_cap_is_checkpointed(repo: Path) -> None:
    (repo / ".adw.toml").write_text("[checkpoint]\nmax_untracked_size = 100\n")
    run_git(repo, "add", ".adw.toml")
    run_git(repo, "commit", "-q", "-m", "cap")
    cps = await Checkpoints.open(repo)
    await cps.checkpoint()
    (repo / "data.bin").write_bytes(b"x" * 1000)
    run_git(repo, "add", "data.bin")
    run_git(repo, "commit", "-q", "-m", "big committed file")
    (repo / "untracked.bin").write_bytes(b"y" * 1000)
    made = await cps.checkpoint()
    assert made.skipped == ["untracked.bin"]
    assert made.checkpoint is not None
    assert run_git(repo, "cat-file", "-s", f"{made.checkpoint.commit}:data.bin").strip() == "1000"

    (repo / "data.bin").write_bytes(b"z" * 1000)
    await cps.undo()
    assert (repo / "data.bin").read_bytes() == b"x" * 1000


async def test_a_file_name_with_a_newline(repo: Path) -> None:
    name = "odd\nname.txt"
    cps = await Checkpoints.open(repo)
    (repo / name).write_text("one\n")
    await cps.checkpoint()
    (repo / name).write_text("two\n")
    await cps.checkpoint()

    assert [c.number for c in await cps.history(file=name)] == [1, 2]
    result = await cps.undo_file(name)
    assert result.restored_from.number == 1
    assert (repo / name).read_text() == "one\n"


# ---------------------------------------------------------------- locks and resources (point 2)


def _restorable(repo: Path) -> None:
    """Checkpoint 1, then an unsaved edit, a new file and a staged change that an undo rewrites."""
    assert adw(repo, "checkpoint").returncode == 0
    (repo / "src/app.py").write_text("unsaved edit\n")
    (repo / "big.txt").write_text("b" * 200_000)
    run_git(repo, "add", "big.txt")


def test_a_held_index_lock_pauses_the_undo_with_what_to_do_and_nothing_lost(repo: Path) -> None:
    _restorable(repo)
    lock = repo / ".git" / "index.lock"
    lock.write_text("")
    paused = adw(repo, "undo")
    assert paused.returncode != 0
    assert str(lock) in paused.stderr and "no process holds it" in paused.stderr
    assert f"rm '{lock}'" in paused.stderr and "adw checkpoints" in paused.stderr and "run again" not in paused.stderr
    assert "Traceback" not in paused.stderr

    lock.unlink()
    listing = adw(repo, "checkpoints", "--all", "--json")  # finishes the paused undo first
    assert listing.returncode == 0, listing.stderr
    assert (repo / "src/app.py").read_text() == "def main():\n    return 1\n"
    assert git_out(repo, "diff", "--cached", "--name-only") == ""
    redo = adw(repo, "redo")
    assert redo.returncode == 0, redo.stderr
    assert (repo / "src/app.py").read_text() == "unsaved edit\n"
    assert git_out(repo, "diff", "--cached", "--name-only") == "big.txt"


def _undo_killed_before_its_read_tree(repo: Path, faulty_git: FaultyGit) -> list[str]:
    """`_restorable`, then an undo killed after its journal, before it writes the user's index: the journal's ref
    transaction lines (a copy of the repository is undone first, to count the git calls)."""
    _restorable(repo)
    clean = repo.parent / "clean"
    shutil.copytree(repo, clean, symlinks=True)
    calls = faulty_git.run(clean, "undo").calls
    read_tree = next(n for n, call in enumerate(calls, 1) if call[:2] == ["read-tree", "--reset"])
    assert faulty_git.run(repo, "undo", kill_at=read_tree).killed
    lines: list[str] = json.loads((repo / ".git/adw/journal.json").read_text())["refs"]  # paused half-way
    return lines


@pytest.mark.parametrize("left", ["index", "ref"])
def test_a_lock_left_by_the_undos_own_killed_git_does_not_pause_it_for_good(
    repo: Path, faulty_git: FaultyGit, left: str
) -> None:
    """kill -9 while the undo's `read-tree` writes the user's index (or its transaction a ref) leaves a `.lock`
    behind. A lock made after the undo's journal that no process holds is that git's: the next command removes it
    and finishes the undo (one older than the journal is somebody else's, and is only reported: the test above)."""
    ref = _undo_killed_before_its_read_tree(repo, faulty_git)[0].split(" ")[1]
    lock = repo / ".git" / ("index.lock" if left == "index" else f"{ref}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_bytes(b"half of what the killed git was writing")

    listing = adw(repo, "checkpoints", "--all", "--json")
    assert listing.returncode == 0, listing.stderr
    assert not lock.exists()
    assert (repo / "src/app.py").read_text() == "def main():\n    return 1\n"
    assert git_out(repo, "diff", "--cached", "--name-only") == ""
    assert adw(repo, "redo").returncode == 0
    assert git_out(repo, "diff", "--cached", "--name-only") == "big.txt"


def test_a_ref_transaction_cut_half_way_by_a_kill_is_finished_by_the_next_command(
    repo: Path, faulty_git: FaultyGit
) -> None:
    """git's files backend renames a transaction's ref locks one by one: a kill between two leaves some refs moved
    and others not. The resumed undo moves only the refs that are not where the journal wants them yet, instead of
    refusing the whole transaction because the moved ones no longer hold their old values."""
    lines = _undo_killed_before_its_read_tree(repo, faulty_git)
    assert len(lines) >= 2
    verb, ref, *values = lines[0].split(" ")  # the first rename happened, the others did not
    run_git(repo, "update-ref", *(["-d", ref] if verb == "delete" else [ref, values[0]]))

    listing = adw(repo, "checkpoints", "--all", "--json")
    assert listing.returncode == 0, listing.stderr
    assert not (repo / ".git/adw/journal.json").exists()
    assert (repo / "src/app.py").read_text() == "def main():\n    return 1\n"
    assert adw(repo, "redo").returncode == 0
    assert (repo / "src/app.py").read_text() == "unsaved edit\n"
    assert git_out(repo, "diff", "--cached", "--name-only") == "big.txt"


def test_a_full_disk_pauses_the_undo_and_the_next_command_finishes_it(repo: Path) -> None:
    assert adw(repo, "checkpoint").returncode == 0
    (repo / "big.txt").write_text("b" * 200_000)
    assert adw(repo, "checkpoint").returncode == 0
    (repo / "big.txt").unlink()
    (repo / "src/app.py").write_text("unsaved edit\n")

    # Writes past 64 KiB fail (EFBIG) as on a full disk: restoring big.txt cannot finish.
    full = adw(repo, "undo", limit_file_size=64_000)
    assert full.returncode != 0
    assert "big.txt" in full.stderr and "adw checkpoints" in full.stderr and "Traceback" not in full.stderr
    assert run_git(repo, "fsck", "--strict", "--no-dangling", "--no-progress") == ""

    again = adw(repo, "undo")  # run again, it finishes the paused undo instead of undoing twice
    assert again.returncode == 0 and "finished the interrupted undo/redo: at checkpoint 2" in again.stdout
    assert (repo / "big.txt").read_text() == "b" * 200_000
    assert adw(repo, "redo").returncode == 0
    assert (repo / "src/app.py").read_text() == "unsaved edit\n" and not (repo / "big.txt").exists()


def test_a_folder_in_the_way_and_an_immutable_file_are_kept_and_reported(repo: Path) -> None:
    assert adw(repo, "checkpoint").returncode == 0
    (repo / "README.md").write_text("edited\n")
    (repo / "src/app.py").write_text("edited too\n")
    assert adw(repo, "checkpoint").returncode == 0
    immutable = subprocess.run(["chattr", "+i", str(repo / "README.md")], capture_output=True).returncode == 0
    # A folder where the undo must write a file, holding an ignored file (an editor's backup, say).
    (repo / ".git/info/exclude").write_text("*.bak\n")
    (repo / "src/app.py").unlink()
    (repo / "src/app.py").mkdir()
    (repo / "src/app.py/app.py.bak").write_text("not in any checkpoint\n")
    try:
        done = adw(repo, "undo", "--to", "1", "--json")
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(repo / "README.md")], check=True)
    assert done.returncode == 0, done.stderr
    kept = json.loads(done.stdout)["kept"]
    assert "src/app.py" in kept
    assert (repo / "src/app.py/app.py.bak").read_text() == "not in any checkpoint\n"
    if immutable:
        assert "README.md" in kept and (repo / "README.md").read_text() == "edited\n"
    else:
        assert (repo / "README.md").read_text() == "# demo\n"
    assert adw(repo, "checkpoints").returncode == 0


async def test_undo_file_with_two_checkpoints_of_the_same_files(repo: Path) -> None:
    """A commit between checkpoints makes two with the same tree; the file's history must not count one twice."""
    cps = await Checkpoints.open(repo)
    await cps.checkpoint()
    (repo / "notes.txt").write_text("one\n")
    await cps.checkpoint()
    run_git(repo, "add", "-A")
    run_git(repo, "commit", "-q", "-m", "notes")
    with pytest.raises(CheckpointError, match=r"no checkpoint has a different version of README\.md"):
        await cps.undo_file("README.md")


async def test_an_undo_killed_after_its_refs_moved_is_finished_by_the_next_command(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cps = await Checkpoints.open(repo)
    await cps.checkpoint()
    (repo / "README.md").write_text("unsaved\n")
    written: list[bytes] = []
    real_write = checkpoints_module._write_atomic

    def keep_a_copy(path: Path, data: bytes) -> None:
        written.append(data)
        real_write(path, data)

    monkeypatch.setattr(checkpoints_module, "_write_atomic", keep_a_copy)
    await cps.undo()
    cps.journal.write_bytes(written[0])  # as if killed after the ref transaction, before the journal's removal

    assert [c.number for c in await cps.history(include_redo=True)] == [1, 2]
    assert not cps.journal.exists()
    await cps.redo()
    assert (repo / "README.md").read_text() == "unsaved\n"


# ---------------------------------------------------------------- content filters (a documented limit)


async def test_content_filters_are_not_applied_so_a_converted_file_is_kept_and_reported(make_repo: MakeRepo) -> None:
    """docs/RELIABILITY.md, Limits: the restore compares and writes blobs as stored, without `eol`/`text`/`filter`
    conversion. A file whose working copy is converted (CRLF on disk, LF in the blob) is never the snapshot's
    version byte for byte, so an undo keeps it as it is and reports it, and restores the other files; the state
    before stays listed as a redo entry holding every file, and redo, which would overwrite the kept file, is
    refused with what to do."""
    repo = make_repo({".gitattributes": "*.crlf eol=crlf\n", "a.crlf": "one\n", "b.txt": "one\n"})
    (repo / "a.crlf").unlink()
    run_git(repo, "checkout", "--", "a.crlf")  # checked out again with its attributes: CRLF on disk
    assert (repo / "a.crlf").read_bytes() == b"one\r\n"
    cps = await Checkpoints.open(repo)
    await cps.checkpoint()
    (repo / "a.crlf").write_bytes(b"two\r\n")
    (repo / "b.txt").write_text("two\n")

    undone = await cps.undo()
    assert undone.kept == ["a.crlf"] and "a.crlf" in undone.message
    assert (repo / "a.crlf").read_bytes() == b"two\r\n"  # kept as it was, never half converted
    assert (repo / "b.txt").read_text() == "one\n"  # restored
    assert undone.saved is not None
    [entry] = [c for c in await cps.history(include_redo=True) if c.redo]
    assert entry.commit == undone.saved.commit
    assert run_git(repo, "show", f"{entry.commit}:a.crlf") == "two\n"  # nothing lost
    assert run_git(repo, "show", f"{entry.commit}:b.txt") == "two\n"
    with pytest.raises(CheckpointError, match="redo would overwrite them"):
        await cps.redo()
