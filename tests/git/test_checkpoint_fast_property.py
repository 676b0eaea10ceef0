"""Snapshots built without the index (issue 14, point 4) on random walks over every kind of change a worktree sees:
files edited, created in new folders, deleted with their folder, made executable or not, replaced by symlinks
and back, ignored or re-included by .gitignore, over the untracked size cap (and staged, which lifts the cap),
inside a nested repository; with undos and redos between, restarts of the store, and an editor saving while a
snapshot runs. Every snapshot of the watched store is compared with a full snapshot (WatchedCheckpoints); a save
during one must be in the next, which is compared. After each walk `git fsck --strict` is clean."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test

from adw.config import AdwConfig, CheckpointConfig
from adw.errors import CheckpointError
from adw.git.checkpoints import Checkpoints
from adw.git.repo import Repo
from tests.git.test_checkpoint_property import WatchedCheckpoints, run_git

T = TypeVar("T")
CAP = 64  # bytes: the untracked size cap of these walks
FILES = ["a.txt", "run.sh", "d/c.txt", "d/e/f.txt", "new/g.txt", "x.log", "keep.log", "build/out.txt", "big.bin",
         "sub/inner.txt"]
LINKS = ["link", "d/link2", "run.sh"]
FOLDERS = ["d", "new", "build", "d/e"]
CONTENT = st.sampled_from([b"one\n", b"two\n", b"", b"x" * (CAP + 1), b"three\n"])
IGNORES = st.sampled_from([b"*.log\n!keep.log\nbuild/\n", b"*.txt\n", b"", b"d/\nbig.bin\n"])
RARELY = st.integers(min_value=0, max_value=3).map(lambda n: n == 0)
EXAMPLES = int(os.environ.get("ADW_FAST_EXAMPLES", "8"))
STEPS = 16


class FastMachine(RuleBasedStateMachine):
    template: ClassVar[Path]
    base: ClassVar[Path]
    outcomes: ClassVar[Counter[str]] = Counter()

    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(dir=self.base)) / "repo"
        shutil.copytree(self.template, self.root, symlinks=True)
        self.loop = asyncio.new_event_loop()
        self.store = self.run(self.open())
        self.run(self.store.checkpoint())  # full: the watch names what follows

    async def open(self) -> WatchedCheckpoints:
        store = await WatchedCheckpoints.watched(self.root)
        store.config = AdwConfig(checkpoint=CheckpointConfig(max_untracked_size=CAP))
        return store

    def teardown(self) -> None:
        """Every object the walk's snapshots wrote (trees from this process, blobs by git) is sound."""
        self.store.close()
        self.loop.close()
        try:
            assert run_git(self.root, "fsck", "--strict", "--no-dangling", "--no-progress") == ""
        finally:
            shutil.rmtree(self.root.parent, ignore_errors=True)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def clear(self, path: Path) -> None:
        """Make room for a file at `path`: a file or symlink on the way, or a folder there, goes."""
        for parent in reversed(path.relative_to(self.root).parents):
            if parent != Path(".") and ((self.root / parent).is_symlink() or (self.root / parent).is_file()):
                (self.root / parent).unlink()
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.is_symlink() or path.exists():
            path.unlink()
        path.parent.mkdir(parents=True, exist_ok=True)

    def snap(self, then: bool) -> None:
        if then:
            self.run(self.store.checkpoint())
            self.outcomes["checkpoint"] += 1

    def put(self, path: str, content: bytes) -> None:
        target = self.root / path
        if target.is_symlink() or not target.is_file():
            self.clear(target)
        target.write_bytes(content)

    @rule(path=st.sampled_from(FILES), content=CONTENT, then=st.booleans())
    def write(self, path: str, content: bytes, then: bool) -> None:
        self.put(path, content)
        self.snap(then)

    @rule(path=st.sampled_from(FILES + LINKS + FOLDERS), then=st.booleans())
    def delete(self, path: str, then: bool) -> None:
        target = self.root / path
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.is_symlink() or target.exists():
            target.unlink()
        self.snap(then)

    @rule(path=st.sampled_from(FILES), then=st.booleans())
    def toggle_exec(self, path: str, then: bool) -> None:
        target = self.root / path
        if target.is_file() and not target.is_symlink():
            target.chmod(target.stat().st_mode ^ 0o100)
        self.snap(then)

    @rule(path=st.sampled_from(LINKS), to=st.sampled_from(["a.txt", "d", "nowhere", "../outside"]))
    def symlink(self, path: str, to: str) -> None:
        target = self.root / path
        self.clear(target)
        target.symlink_to(to)
        self.snap(True)

    @rule(ignores=IGNORES, now=RARELY)
    def ignore(self, ignores: bytes, now: bool) -> None:
        """Change what is ignored (the watch then asks for a full snapshot, so it happens rarely)."""
        if now:
            (self.root / ".gitignore").write_bytes(ignores)

    @rule(now=RARELY)
    def nested_repository(self, now: bool) -> None:
        if now and not (self.root / "sub" / ".git").exists():
            self.clear(self.root / "sub" / "inner.txt")
            run_git(self.root / "sub", "init", "-q")

    @rule(path=st.sampled_from(["big.bin", "a.txt", "x.log"]))
    def stage(self, path: str) -> None:
        """`git add -f`: the user's index tracks the file, so the size cap no longer applies to it."""
        if (self.root / path).is_file():
            run_git(self.root, "add", "-f", "--", path)

    @rule(editor=st.none() | st.tuples(st.sampled_from(FILES), st.sampled_from(["before", "after"])))
    def checkpoint(self, editor: tuple[str, str] | None) -> None:
        """A checkpoint, maybe with an editor saving a file while its blobs are written (before or after)."""
        if editor is not None:
            path, when = editor
            target = self.root / path
            hash_files = self.store._hash

            async def saving(*args: Any) -> Any:
                if when == "before":
                    self.put(path, b"saved by the editor\n")
                hashed = await hash_files(*args)
                if when == "after":
                    self.put(path, b"saved later\n")
                return hashed

            self.store._hash = saving  # type: ignore[method-assign]
            self.store.unchecked = True  # the save lands inside this snapshot: the next one must hold it
            try:
                self.run(self.store.checkpoint())
            finally:
                vars(self.store).pop("_hash", None)
            self.outcomes["editor save"] += target.exists()
        self.run(self.store.checkpoint())
        self.outcomes["checkpoint"] += 1

    @rule(then_redo=st.booleans())
    def undo(self, then_redo: bool) -> None:
        for step in (self.store.undo, self.store.redo)[: 1 + then_redo]:
            try:
                self.run(step())
                self.outcomes[f"{step.__name__}: done"] += 1
            except CheckpointError:
                self.outcomes[f"{step.__name__}: refused"] += 1

    @rule(now=RARELY)
    def restart(self, now: bool) -> None:
        if now:
            self.store.close()
            self.store = self.run(self.open())


def run_walks(tmp_path: Path, examples: int) -> None:
    template = tmp_path / "template"
    template.mkdir()
    (template / "a.txt").write_bytes(b"one\n")
    (template / "d").mkdir()
    (template / "d/c.txt").write_bytes(b"two\n")
    (template / ".gitignore").write_bytes(b"*.log\n!keep.log\nbuild/\n")
    run_git(template, "init", "-q", "-b", "main")
    run_git(template, "add", "-A")
    run_git(template, "commit", "-q", "-m", "initial")
    asyncio.run(Checkpoints(Repo(template, template / ".git", template / ".git"), AdwConfig()).checkpoint())
    FastMachine.template, FastMachine.base = template, tmp_path
    FastMachine.outcomes.clear()
    WatchedCheckpoints.incremental = WatchedCheckpoints.without_index = 0
    run_state_machine_as_test(
        FastMachine,
        settings=settings(max_examples=examples, stateful_step_count=STEPS, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]),
    )
    print(f"{WatchedCheckpoints.incremental} incremental snapshots, {WatchedCheckpoints.without_index} without "
          f"the index:", dict(sorted(FastMachine.outcomes.items())))
    assert WatchedCheckpoints.without_index, "no snapshot was built without the index"


@pytest.mark.slow
def test_snapshots_built_without_the_index_equal_full_ones(tmp_path: Path) -> None:
    run_walks(tmp_path, EXAMPLES)


@pytest.mark.faults
def test_snapshots_built_without_the_index_equal_full_ones_on_many_walks(tmp_path: Path) -> None:
    run_walks(tmp_path, 150)
