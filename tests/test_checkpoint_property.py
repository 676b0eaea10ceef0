"""Property test of checkpoints: random edits, commits, checkpoints, undos, redos and per-file undos on a tiny
repository, checked after every step against a model of the undo/redo stacks.

The model (snapshots are (files, index, HEAD)):
- checkpoint: nothing when the state equals the top of the undo stack; else push it and clear the redo stack;
- undo: error without checkpoints; when the state differs from the top, the redo stack becomes [state] and the
  top is restored; otherwise the top moves onto the redo stack and the one before is restored (error if none);
  undo(to=N) also moves every checkpoint above N onto the redo stack;
- redo: error when the redo stack is empty or the state differs from the top; else its top moves back;
- undo_file: a checkpoint first (as above), then one file takes its content at the chosen checkpoint (default:
  the latest one where it differs, error if none); the index and HEAD are untouched.
Every checkpoint and commit ever made must stay reachable from refs, also after `git gc --prune=now`.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import struct
import subprocess
import tempfile
from collections import Counter
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from adw.config import AdwConfig
from adw.errors import CheckpointError
from adw.git.checkpoints import Checkpoints
from adw.git.refs import list_refs, read_head
from adw.git.repo import Repo

T = TypeVar("T")
PATHS = ["a.txt", "b.txt", "d/c.txt", "d/e.txt"]
INITIAL = {"a.txt": b"one\n", "d/c.txt": b"two\n"}
CONTENTS = st.sampled_from([b"one\n", b"two\n", b"three\n", b""])
# CI runs 200 short walks (about a minute); raise both for a deeper local search.
EXAMPLES = int(os.environ.get("ADW_PROPERTY_EXAMPLES", "200"))
STEPS = int(os.environ.get("ADW_PROPERTY_STEPS", "6"))

Files = dict[str, bytes]
Snapshot = tuple[frozenset[tuple[str, bytes]], frozenset[tuple[str, bytes]], str]


def run_git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def blob_id(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def read_index(path: Path) -> dict[str, tuple[str, int]]:
    """{path: (blob id, stage)} from a version 2/3 index file, without spawning git."""
    data = path.read_bytes()
    signature, version, count = struct.unpack(">4sII", data[:12])
    assert signature == b"DIRC" and version in (2, 3)
    entries: dict[str, tuple[str, int]] = {}
    offset = 12
    for _ in range(count):
        sha = data[offset + 40 : offset + 60].hex()
        (flags,) = struct.unpack(">H", data[offset + 60 : offset + 62])
        start = offset + 62 + (2 if flags & 0x4000 else 0)
        end = data.index(b"\0", start)
        entries[data[start:end].decode()] = (sha, (flags >> 12) & 3)
        offset += (end - offset + 8) // 8 * 8
    return entries


def files_on_disk(root: Path) -> Files:
    found: Files = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath) == root:
            dirnames.remove(".git")
        for name in filenames:
            path = Path(dirpath) / name
            found[path.relative_to(root).as_posix()] = path.read_bytes()
    return found


class CheckpointMachine(RuleBasedStateMachine):
    base: ClassVar[Path]
    template: ClassVar[Path]
    template_head: ClassVar[str]
    template_checkpoint: ClassVar[str]
    examples: ClassVar[int] = 0
    outcomes: ClassVar[Counter[str]] = Counter()

    def __init__(self) -> None:
        super().__init__()
        type(self).examples += 1
        # A copy of a repository made once per test: an example starts without spawning git.
        self.root = Path(tempfile.mkdtemp(dir=self.base)) / "repo"
        shutil.copytree(self.template, self.root, symlinks=True)
        self.files: Files = dict(INITIAL)
        self.index: Files = dict(INITIAL)
        self.head = self.template_head
        # The template holds checkpoint 1 of its initial state.
        self.undo_stack: list[Snapshot] = [self.state()]
        self.redo_stack: list[Snapshot] = []  # next redo last
        self.numbers: list[int] = [1]  # checkpoint numbers of the undo stack, for undo(to=) and undo_file(to=)
        self.redo_numbers: list[int] = []
        self.made: list[str] = [self.template_checkpoint]  # every checkpoint, saved state and commit id created
        self.loop = asyncio.new_event_loop()
        git_dir = self.root / ".git"
        self.cps = Checkpoints(Repo(root=self.root, git_dir=git_dir, common_dir=git_dir), AdwConfig())

    def teardown(self) -> None:
        try:
            if self.examples % 20 == 0:  # now and then: objects survive gc, and read_index agrees with git
                run_git(self.root, "gc", "-q", "--prune=now")
                listed = run_git(self.root, "ls-files", "-s").splitlines()
                staged = {line.split("\t")[1]: line.split()[1] for line in listed}
                assert staged == {p: sha for p, (sha, _) in read_index(self.root / ".git" / "index").items()}
            reachable = set(run_git(self.root, "rev-list", "--all").split())
            assert not set(self.made) - reachable, "a checkpoint or commit became unreachable"
        finally:
            self.loop.close()
            shutil.rmtree(self.root.parent, ignore_errors=True)

    # ---------------------------------------------------------------- helpers

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def attempt(self, coro: Coroutine[Any, Any, T], error_expected: bool) -> T | None:
        name = coro.__qualname__.rsplit(".", 1)[-1]
        try:
            result = self.run(coro)
        except CheckpointError as exc:
            assert error_expected, f"unexpected CheckpointError: {exc}"
            event(f"{name}: refused")
            self.outcomes[f"{name}: refused"] += 1
            return None
        assert not error_expected, "expected a CheckpointError"
        event(f"{name}: done")
        self.outcomes[f"{name}: done"] += 1
        return result

    def state(self) -> Snapshot:
        return frozenset(self.files.items()), frozenset(self.index.items()), self.head

    def set_state(self, snapshot: Snapshot) -> None:
        self.files, self.index, self.head = dict(snapshot[0]), dict(snapshot[1]), snapshot[2]

    def next_number(self) -> int:
        return max(self.numbers + self.redo_numbers, default=0) + 1

    def model_checkpoint(self) -> bool:
        if self.undo_stack and self.state() == self.undo_stack[-1]:
            return False
        self.numbers.append(self.next_number())
        self.undo_stack.append(self.state())
        self.redo_stack, self.redo_numbers = [], []
        return True

    # ---------------------------------------------------------------- the user's operations

    @rule(kind=st.sampled_from(["write", "write", "delete", "rename"]), data=st.data())
    def change(self, kind: str, data: st.DataObject) -> None:
        """Edit or create, delete or rename a file (no git involved)."""
        absent = sorted(set(PATHS) - set(self.files))
        if kind == "delete" and self.files:
            path = data.draw(st.sampled_from(sorted(self.files)))
            (self.root / path).unlink()
            del self.files[path]
        elif kind == "rename" and self.files and absent:
            source = data.draw(st.sampled_from(sorted(self.files)))
            target = data.draw(st.sampled_from(absent))
            (self.root / target).parent.mkdir(parents=True, exist_ok=True)
            (self.root / source).rename(self.root / target)
            self.files[target] = self.files.pop(source)
        else:
            path = data.draw(st.sampled_from(PATHS))
            content = data.draw(CONTENTS)
            (self.root / path).parent.mkdir(parents=True, exist_ok=True)
            (self.root / path).write_bytes(content)
            self.files[path] = content

    @rule(path=st.none() | st.sampled_from(PATHS))
    def commit_or_stage(self, path: str | None) -> None:
        """`git add -A && git commit` (path None), or stage one path."""
        if path is None:
            run_git(self.root, "add", "-A")
            run_git(self.root, "commit", "-q", "--allow-empty", "-m", "step")
            self.index = dict(self.files)
            self.head = run_git(self.root, "rev-parse", "HEAD").strip()
            self.made.append(self.head)
        elif path in self.files or path in self.index:  # git refuses a pathspec that matches nothing
            run_git(self.root, "add", "-A", "--", path)
            if path in self.files:
                self.index[path] = self.files[path]
            else:
                del self.index[path]

    @rule(restart=st.booleans())
    def checkpoint(self, restart: bool) -> None:
        if restart:  # a new process reads the stacks from refs only
            self.cps = self.run(Checkpoints.open(self.root))
        result = self.run(self.cps.checkpoint())
        created = self.model_checkpoint()
        assert result.created == created
        assert result.checkpoint is not None and result.checkpoint.number == self.numbers[-1]
        self.made.append(result.checkpoint.commit)

    @precondition(lambda self: self.undo_stack)  # "no checkpoint" is covered by test_checkpoints.py
    @rule(
        to=st.none() | st.integers(min_value=0, max_value=7),
        then=st.sampled_from(["redo", "stop", "edit and redo"]),  # the simplest first
        content=CONTENTS,
    )
    def undo(self, to: int | None, then: str, content: bytes) -> None:
        """Undo, then maybe redo at once (a random walk rarely makes undo-redo chains)."""
        self.undo_only(to)
        if then == "stop" or not self.redo_stack:
            return
        self.matches_the_model()
        if then == "edit and redo":  # refused unless the edit happens to change nothing
            (self.root / "a.txt").write_bytes(content)
            self.files["a.txt"] = content
        self.redo()

    def undo_only(self, to: int | None) -> None:
        changed = bool(self.undo_stack) and self.state() != self.undo_stack[-1]
        if not self.undo_stack:
            error = True
        elif to is not None:
            error = False
        else:
            error = not changed and len(self.undo_stack) < 2
        number = self.numbers[to % len(self.numbers)] if to is not None and self.numbers else None
        result = self.attempt(self.cps.undo(to=number), error)
        if result is None:
            return
        position = self.numbers.index(number) if number is not None else len(self.numbers) - (1 if changed else 2)
        if changed:
            assert result.saved is not None
            self.made.append(result.saved.commit)
            self.redo_stack, self.redo_numbers = [self.state()], [result.saved.number]
        else:
            assert result.saved is None
        # Checkpoints above the target move onto the redo stack, the lowest becoming the next redo.
        self.redo_stack += reversed(self.undo_stack[position + 1 :])
        self.redo_numbers += reversed(self.numbers[position + 1 :])
        del self.undo_stack[position + 1 :], self.numbers[position + 1 :]
        assert result.restored.number == self.numbers[-1]
        self.set_state(self.undo_stack[-1])

    @precondition(lambda self: self.redo_stack)  # "nothing to redo" is covered by test_checkpoints.py
    @rule()
    def redo(self) -> None:
        error = not self.redo_stack or self.state() != self.undo_stack[-1]
        result = self.attempt(self.cps.redo(), error)
        if result is None:
            return
        assert result.restored.number == self.redo_numbers[-1]
        self.undo_stack.append(self.redo_stack.pop())
        self.numbers.append(self.redo_numbers.pop())
        self.set_state(self.undo_stack[-1])

    @rule(path=st.sampled_from(PATHS), to=st.none() | st.integers(min_value=0, max_value=7))
    def undo_file(self, path: str, to: int | None) -> None:
        created = self.model_checkpoint()
        versions = [dict(snapshot[0]).get(path) for snapshot in self.undo_stack]
        if to is not None:
            position: int | None = to % len(self.undo_stack)
        else:
            position = next((i for i in reversed(range(len(versions))) if versions[i] != versions[-1]), None)
        number = self.numbers[position % len(self.numbers)] if to is not None else None
        result = self.attempt(self.cps.undo_file(path, to=number), position is None)
        if result is not None:
            assert position is not None
            assert result.restored_from.number == self.numbers[position]
            assert result.deleted == (versions[position] is None)
            content = versions[position]
            if content is None:
                self.files.pop(path, None)
            else:
                self.files[path] = content
        # The checkpoint before the per-file undo is made even when the undo itself fails.
        if created:
            top = self.run(self.cps.stacks())[0][-1]
            assert top.number == self.numbers[-1]
            self.made.append(top.commit)

    # ---------------------------------------------------------------- checks after every step

    @invariant()
    def matches_the_model(self) -> None:
        assert files_on_disk(self.root) == self.files
        index = read_index(self.root / ".git" / "index")
        assert index == {p: (blob_id(c), 0) for p, c in self.index.items()}
        assert read_head(self.root / ".git", self.root / ".git") == (self.head, "refs/heads/main")
        undo_refs = list_refs(self.root / ".git", "refs/adw/checkpoints/@main/")
        redo_refs = list_refs(self.root / ".git", "refs/adw/redo/@main/")
        assert sorted(int(r.rsplit("/", 1)[1]) for r in undo_refs) == self.numbers
        assert sorted(int(r.rsplit("/", 1)[1]) for r in redo_refs) == sorted(self.redo_numbers)


def test_checkpoints_follow_the_model(tmp_path: Path) -> None:
    template = tmp_path / "template"
    for rel, content in INITIAL.items():
        (template / rel).parent.mkdir(parents=True, exist_ok=True)
        (template / rel).write_bytes(content)
    run_git(template, "init", "-q", "-b", "main")
    run_git(template, "add", "-A")
    run_git(template, "commit", "-q", "-m", "initial")
    CheckpointMachine.template = template
    CheckpointMachine.template_head = run_git(template, "rev-parse", "HEAD").strip()
    made = asyncio.run(Checkpoints(Repo(template, template / ".git", template / ".git"), AdwConfig()).checkpoint())
    assert made.checkpoint is not None
    CheckpointMachine.template_checkpoint = made.checkpoint.commit
    CheckpointMachine.base = tmp_path
    CheckpointMachine.examples = 0
    CheckpointMachine.outcomes.clear()
    run_state_machine_as_test(
        CheckpointMachine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    outcomes = CheckpointMachine.outcomes
    print(dict(sorted(outcomes.items())))
    # The random walks must reach the successful paths of every operation and the refusals of most.
    assert all(outcomes[name] for name in ("undo: done", "redo: done", "undo_file: done")), outcomes
    assert outcomes["undo: refused"] and outcomes["undo_file: refused"], outcomes
