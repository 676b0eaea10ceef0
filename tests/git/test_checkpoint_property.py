"""Property test of checkpoints: random edits, type changes, commits, branch switches (also to a detached HEAD),
checkpoints, undos (some with an editor saving a file while they run), redos and per-file undos on a tiny
repository, checked after every step against a model of the undo/redo stacks and of every branch.

The model (snapshots are (files, index, HEAD, its branch)):
- checkpoint: nothing when the state equals the top of the undo stack; else push it and clear the redo stack;
- undo: error without checkpoints; when the state differs from the top, the redo stack becomes [state] and the
  top is restored; otherwise the top moves onto the redo stack and the one before is restored (error if none);
  undo(to=N) also moves every checkpoint above N onto the redo stack;
- redo: error when the redo stack is empty or the state differs from the top; else its top moves back;
- undo_file: a checkpoint first (as above), then one file takes its content at the chosen checkpoint (default:
  the latest one where it differs, error if none); the index and HEAD are untouched.
- branches: an undo or redo gives HEAD the target's branch and moves that branch to the target's commit; when
  an undo moves another branch than the current one away from its tip, the redo of the last entry the undo
  created puts it back (if the branch is still where a checkpoint holds it); a checkpoint drops such records;
- an editor save during an undo is kept: the file has the saved content afterwards, and is reported as kept
  when the undo wanted to change it.
After undo and an immediate redo every branch and HEAD are where they were. Every checkpoint and commit ever
made must stay reachable from refs (not reflogs) after every step, also after `git gc --prune=now`, and
`git fsck --strict` stays clean.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import struct
import subprocess
import tempfile
import zlib
from collections import Counter
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from adw.config import AdwConfig
from adw.errors import CheckpointError
from adw.git.checkpoints import Checkpoints, State
from adw.git.refs import list_refs, read_head
from adw.git.repo import Repo
from adw.scouts.watch import Watch

T = TypeVar("T")
PATHS = ["a.txt", "b.txt", "d/c.txt", "d/e.txt"]
EDITED = ["a.txt", "b.txt"]  # what the editor saves during an undo (never a folder in any snapshot)
INITIAL = {"a.txt": b"one\n", "d/c.txt": b"two\n"}
CONTENTS = st.sampled_from([b"one\n", b"two\n", b"three\n", b""])
# The default suite runs 170 walks of up to 14 steps (at least 2,000 steps); tests/soak runs 20,000 and more.
EXAMPLES = int(os.environ.get("ADW_PROPERTY_EXAMPLES", "170"))
STEPS = int(os.environ.get("ADW_PROPERTY_STEPS", "14"))
MIN_STEPS = int(os.environ.get("ADW_PROPERTY_MIN_STEPS", "2000"))

Files = dict[str, bytes]
Snapshot = tuple[frozenset[tuple[str, bytes]], frozenset[tuple[str, bytes]], str, str | None]
TipRecord = tuple[int, str, str, str]  # (redo entry that restores it, branch, tip, where the undo left it)


def run_git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def run_git_env(cwd: Path, env: dict[str, str], *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env={**os.environ, **env}, check=True, capture_output=True,
                          text=True).stdout


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


def full_add_tree(root: Path, index: Path) -> str:
    env = {**os.environ, "GIT_INDEX_FILE": str(index)}
    subprocess.run(["git", "add", "-A"], cwd=root, env=env, check=True)
    return subprocess.run(["git", "write-tree"], cwd=root, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


async def full_snapshot_tree(store: Checkpoints, index: Path) -> str:
    """The tree of a full snapshot (`add -A`, leaving out nested repositories and untracked files over the size
    cap) through `index` instead of the store's shadow index."""
    full = Checkpoints(store.repo, store.config)
    full.shadow_index = index
    full.shadow_env = {**store.shadow_env, "GIT_INDEX_FILE": str(index)}
    full.shadow_lag = index.with_name("no-lag")
    state, _ = await full.snapshot()
    return state.tree


class WatchedCheckpoints(Checkpoints):
    """Checkpoints with an inotify watch as their tracker, as in the language server, whose every snapshot is
    compared with a full snapshot from where the last one left git's view of the worktree: from the last
    snapshot's tree when the next may be built from it without the index (an index read from that tree has no
    stat data, so every file is hashed), else from a copy of the shadow index as it was before. Same tree."""

    incremental: ClassVar[int] = 0  # snapshots that added only what the watch reported
    without_index: ClassVar[int] = 0  # of those, the ones built from the last tree without the shadow index
    unchecked: bool = False  # the next snapshot is not compared (an editor saves while it runs)

    @classmethod
    async def watched(cls, root: Path) -> WatchedCheckpoints:
        made = await cls.open(root)
        made.tracker = Watch.open(root, (made.repo.git_dir,), paths=True)
        assert made.tracker is not None, "inotify is needed for this test"
        return made

    async def snapshot(self, pin: bool = True) -> tuple[State, list[str]]:
        before = self.shadow_index.with_name("shadow-before")
        whole = self._whole and self.shadow_index.exists()
        checked, self.unchecked = not self.unchecked, False
        if whole and self._base is not None:
            before.unlink(missing_ok=True)
            run_git_env(self.repo.root, {"GIT_INDEX_FILE": str(before)}, "read-tree", self._base)
        elif whole:
            # copy2 keeps the index file's mtime: an entry as new as it is "racily clean", checked by content; a
            # copy dated now would trust the stat data of a same-second, same-size edit (test_checkpoint_watch.py).
            shutil.copy2(self.shadow_index, before)
        state, skipped = await super().snapshot(pin)
        if whole:
            type(self).incremental += 1
            if checked:
                assert state.tree == await full_snapshot_tree(self, before), "incremental and full snapshot differ"
        return state, skipped

    async def _from_base(self, base: str, paths: list[str]) -> tuple[str, list[str]] | None:
        built = await super()._from_base(base, paths)
        type(self).without_index += built is not None and bool(paths)
        return built

    def close(self) -> None:
        if isinstance(self.tracker, Watch):
            self.tracker.close()


class CheckpointMachine(RuleBasedStateMachine):
    base: ClassVar[Path]
    template: ClassVar[Path]
    template_head: ClassVar[str]
    template_checkpoint: ClassVar[str]
    examples: ClassVar[int] = 0
    steps: ClassVar[int] = 0
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
        self.branch: str | None = "refs/heads/main"
        self.branches: dict[str, str] = {"refs/heads/main": self.head}
        self.trees: dict[str, Files] = {self.head: dict(INITIAL)}  # the files of every commit, for switching
        self.tip_records: list[TipRecord] = []
        # The template holds checkpoint 1 of its initial state.
        self.undo_stack: list[Snapshot] = [self.state()]
        self.redo_stack: list[Snapshot] = []  # next redo last
        self.numbers: list[int] = [1]  # checkpoint numbers of the undo stack, for undo(to=) and undo_file(to=)
        self.redo_numbers: list[int] = []
        self.made: list[str] = [self.template_checkpoint]  # every checkpoint, saved state and commit id created
        self.trace: list[str] = []  # the steps so far, for a failure's message
        self.loop = asyncio.new_event_loop()
        self.cps = self.run(WatchedCheckpoints.watched(self.root))

    def teardown(self) -> None:
        try:
            # One walk in seven, picked by a hash of its steps: steady whatever lengths the walks cluster at, and
            # decided by the walk itself, so a failing walk replays. Objects survive gc, fsck is clean, and
            # read_index agrees with git.
            if zlib.crc32("\n".join(self.trace).encode()) % 7 == 0:
                self.outcomes["gc and fsck"] += 1
                run_git(self.root, "gc", "-q", "--prune=now")
                assert run_git(self.root, "fsck", "--strict", "--no-dangling", "--no-progress") == ""
                listed = run_git(self.root, "ls-files", "-s").splitlines()
                staged = {line.split("\t")[1]: line.split()[1] for line in listed}
                assert staged == {p: sha for p, (sha, _) in read_index(self.root / ".git" / "index").items()}
                self.all_reachable()
        finally:
            self.cps.close()
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
        return frozenset(self.files.items()), frozenset(self.index.items()), self.head, self.branch

    def write(self, path: str, content: bytes) -> None:
        """Write a file as an editor would, replacing a file that stands where its folder must go."""
        if path.startswith("d/") and "d" in self.files:
            (self.root / "d").unlink()
            del self.files["d"]
        (self.root / path).parent.mkdir(parents=True, exist_ok=True)
        (self.root / path).write_bytes(content)
        self.files[path] = content

    def next_number(self) -> int:
        return max(self.numbers + self.redo_numbers, default=0) + 1

    def model_checkpoint(self) -> bool:
        if self.undo_stack and self.state() == self.undo_stack[-1]:
            return False
        self.numbers.append(self.next_number())
        self.undo_stack.append(self.state())
        self.redo_stack, self.redo_numbers = [], []
        self.tip_records = []  # folded into the new checkpoint's parents
        return True

    def known_heads(self) -> set[str]:
        return {snapshot[2] for snapshot in self.undo_stack + self.redo_stack} | {self.head}

    def model_restore(self, target: Snapshot, top: int, undoing: bool) -> None:
        """HEAD, its branch and the branch tips an undo (or a redo of entry `top`) leaves; then the target state."""
        known = self.known_heads()
        moves: dict[str, str] = {}
        branch, head = target[3], target[2]
        records = list(self.tip_records)
        if branch is not None:
            old = self.branches.get(branch)
            moves[branch] = head
            if branch != self.branch and old and old != head and (undoing or old not in known):
                self.tip_records.append((top, branch, old, head))
        if not undoing:
            for record in records:
                number, name, tip, moved_to = record
                if number != top or name == branch:
                    continue
                now = moves.get(name, self.branches.get(name))
                if now in (tip, moved_to) or now in known:
                    moves[name] = tip
                    self.tip_records.remove(record)
        self.branches.update(moves)
        self.files, self.index, self.head, self.branch = dict(target[0]), dict(target[1]), head, branch

    # ---------------------------------------------------------------- the user's operations

    @rule(kind=st.sampled_from(["write", "write", "delete", "rename", "retype"]), data=st.data())
    def change(self, kind: str, data: st.DataObject) -> None:
        """Edit or create, delete or rename a file, or turn folder `d` into a file or back (no git involved)."""
        self.trace.append(f"change({kind!r})")
        absent = sorted(set(PATHS) - set(self.files))
        if kind == "delete" and self.files:
            path = data.draw(st.sampled_from(sorted(self.files)))
            (self.root / path).unlink()
            del self.files[path]
        elif kind == "rename" and self.files and absent:
            source = data.draw(st.sampled_from(sorted(self.files)))
            target = data.draw(st.sampled_from(absent))
            content = self.files.pop(source)
            (self.root / source).unlink()
            self.write(target, content)
        elif kind == "retype":
            inside = [p for p in self.files if p.startswith("d/")]
            if inside:  # the folder becomes a file
                for path in inside:
                    (self.root / path).unlink()
                    del self.files[path]
                (self.root / "d").rmdir()
                (self.root / "d").write_bytes(b"d is a file now\n")
                self.files["d"] = b"d is a file now\n"
            else:  # the file (if any) becomes a folder
                self.write("d/c.txt", data.draw(CONTENTS))
        else:
            self.write(data.draw(st.sampled_from(PATHS)), data.draw(CONTENTS))

    @rule(stage=st.none() | st.sampled_from(EDITED))
    def commit_or_stage(self, stage: str | None) -> None:
        """`git add -A && git commit` (stage None), or stage one file."""
        self.trace.append(f"commit_or_stage({stage!r})")
        if stage is None:
            self.commit()
        elif stage in self.files or stage in self.index:  # git refuses a pathspec that matches nothing
            run_git(self.root, "add", "-A", "--", stage)
            if stage in self.files:
                self.index[stage] = self.files[stage]
            else:
                del self.index[stage]

    def commit(self) -> None:
        run_git(self.root, "add", "-A")
        run_git(self.root, "commit", "-q", "--allow-empty", "-m", "step")
        self.index = dict(self.files)
        self.head = run_git(self.root, "rev-parse", "HEAD").strip()
        self.trees[self.head] = dict(self.files)
        if self.branch:
            self.branches[self.branch] = self.head
            self.made.append(self.head)  # (a detached commit is dropped by the user's own `git switch`)

    @rule(to=st.sampled_from(["main", "feature", "detach"]), which=st.integers(min_value=0, max_value=15))
    def switch(self, to: str, which: int) -> None:
        """Commit everything, then `git switch` to a branch (creating `feature` at HEAD) or detach at a commit."""
        self.trace.append(f"switch({to!r}, {which!r})")
        self.commit()
        if to == "detach":
            self.head = list(self.trees)[which % len(self.trees)]  # commit ids vary by run; their order does not
            run_git(self.root, "switch", "-q", "--detach", self.head)
            self.branch = None
        elif f"refs/heads/{to}" not in self.branches:
            run_git(self.root, "switch", "-q", "-c", to)
            self.branch = f"refs/heads/{to}"
            self.branches[self.branch] = self.head
        else:
            run_git(self.root, "switch", "-q", to)
            self.branch = f"refs/heads/{to}"
            self.head = self.branches[self.branch]
        self.files, self.index = dict(self.trees[self.head]), dict(self.trees[self.head])

    @rule(restart=st.booleans())
    def checkpoint(self, restart: bool) -> None:
        self.trace.append(f"checkpoint({restart!r})")
        if restart:  # a new process reads the stacks from refs only, and its watch starts with a full snapshot
            self.cps.close()
            self.cps = self.run(WatchedCheckpoints.watched(self.root))
        result = self.run(self.cps.checkpoint())
        created = self.model_checkpoint()
        assert result.created == created
        assert result.checkpoint is not None and result.checkpoint.number == self.numbers[-1]
        self.made.append(result.checkpoint.commit)

    @rule()
    def prune(self) -> None:
        """`git gc --prune=now` between two commands (`prune` alone, which is the part that deletes): a long-lived
        store must not build its next snapshot on objects that went."""
        self.trace.append("prune")
        self.outcomes["prune"] += 1
        run_git(self.root, "prune", "--expire=now")

    @rule()
    def diff_with_the_files(self) -> None:
        """A snapshot no checkpoint commits (the Checkpoints view's diff against the files)."""
        self.trace.append("diff_with_the_files")
        self.run(self.cps.diff(self.numbers[-1]))

    @precondition(lambda self: self.undo_stack)  # "no checkpoint" is covered by test_checkpoints.py
    @rule(
        to=st.none() | st.integers(min_value=0, max_value=7),
        then=st.sampled_from(["redo", "stop", "edit and redo"]),  # the simplest first
        content=CONTENTS,
        editor=st.none() | st.tuples(st.sampled_from(EDITED), st.sampled_from([b"saved by the editor\n", b"one\n"])),
    )
    def undo(self, to: int | None, then: str, content: bytes, editor: tuple[str, bytes] | None) -> None:
        """Undo (maybe with an editor saving a file while it runs), then maybe redo at once."""
        self.trace.append(f"undo({to!r}, {then!r}, {content!r}, {editor!r})")
        before = (dict(self.branches), self.head, self.branch)
        saved = self.undo_only(to, editor)
        if then == "stop" or not self.redo_stack:
            return
        self.matches_the_model()
        if then == "edit and redo":  # refused unless the edit happens to change nothing
            self.write("a.txt", content)
        if self.redo_step() and to is None and saved is not None:
            # Back at the state the undo saved: every branch and HEAD are where they were.
            assert (self.branches, self.head, self.branch) == before

    def undo_only(self, to: int | None, editor: tuple[str, bytes] | None) -> int | None:
        changed = bool(self.undo_stack) and self.state() != self.undo_stack[-1]
        if not self.undo_stack:
            error = True
        elif to is not None:
            error = False
        else:
            error = not changed and len(self.undo_stack) < 2
        number = self.numbers[to % len(self.numbers)] if to is not None and self.numbers else None
        if editor is not None:
            self.cps._apply = self.editor_saves(*editor)  # type: ignore[method-assign]
        try:
            result = self.attempt(self.cps.undo(to=number), error)
        finally:
            vars(self.cps).pop("_apply", None)
        if result is None:
            if editor is not None:
                self.files[editor[0]] = editor[1]  # refused before the restore: the save happened anyway
                (self.root / editor[0]).write_bytes(editor[1])
            return None
        position = self.numbers.index(number) if number is not None else len(self.numbers) - (1 if changed else 2)
        if not changed and position == len(self.numbers) - 1:
            # The files already equal the target: the undo changes nothing (so no restore runs for an editor to
            # save during).
            assert result.saved is None and result.kept == [] and result.restored.number == self.numbers[-1]
            assert "nothing to undo" in result.message
            return None
        source = dict(self.files)
        if changed:
            assert result.saved is not None
            self.made.append(result.saved.commit)
            self.redo_stack, self.redo_numbers = [self.state()], [result.saved.number]
            self.tip_records = []
        else:
            assert result.saved is None
        # Checkpoints above the target move onto the redo stack, the lowest becoming the next redo.
        moved = self.numbers[position + 1 :]
        self.redo_stack += reversed(self.undo_stack[position + 1 :])
        self.redo_numbers += reversed(self.numbers[position + 1 :])
        del self.undo_stack[position + 1 :], self.numbers[position + 1 :]
        assert result.restored.number == self.numbers[-1]
        # The redo of the last entry this undo makes puts back a branch tip it moved.
        top = result.saved.number if result.saved else max(moved, default=result.restored.number)
        self.model_restore(self.undo_stack[-1], top, undoing=True)
        expected_kept: list[str] = []
        if editor is not None:
            path, content = editor
            wanted = self.files.get(path)
            if source.get(path) != wanted and content not in (source.get(path), wanted):
                expected_kept = [path]
            if content != source.get(path) or source.get(path) == wanted:
                self.files[path] = content
        assert result.kept == expected_kept
        return result.saved.number if result.saved else None

    def editor_saves(self, path: str, content: bytes) -> Callable[..., Coroutine[Any, Any, Any]]:
        """The restore step, preceded by an editor save after the undo took its snapshot."""
        apply = self.cps._apply

        async def save_then_apply(*args: Any) -> Any:
            (self.root / path).write_bytes(content)
            return await apply(*args)

        return save_then_apply

    @precondition(lambda self: self.redo_stack)  # "nothing to redo" is covered by test_checkpoints.py
    @rule()
    def redo(self) -> None:
        self.redo_step()

    def redo_step(self) -> bool:
        self.trace.append("redo")
        error = not self.redo_stack or self.state() != self.undo_stack[-1]
        result = self.attempt(self.cps.redo(), error)
        if result is None:
            return False
        assert result.restored.number == self.redo_numbers[-1]
        self.model_restore(self.redo_stack[-1], self.redo_numbers[-1], undoing=False)
        self.undo_stack.append(self.redo_stack.pop())
        self.numbers.append(self.redo_numbers.pop())
        assert result.kept == []
        return True

    @rule(path=st.sampled_from([*EDITED, "d/c.txt"]), to=st.none() | st.integers(min_value=0, max_value=7))
    def undo_file(self, path: str, to: int | None) -> None:
        self.trace.append(f"undo_file({path!r}, {to!r})")
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
            blocked = path.startswith("d/") and "d" in self.files and content is not None
            assert result.kept == (["d/c.txt"] if blocked else [])  # a file `d` stands where its folder goes
            if blocked:
                pass
            elif content is None:
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
        type(self).steps += 1
        assert files_on_disk(self.root) == self.files
        index = read_index(self.root / ".git" / "index")
        assert index == {p: (blob_id(c), 0) for p, c in self.index.items()}
        assert read_head(self.root / ".git", self.root / ".git") == (self.head, self.branch)
        assert list_refs(self.root / ".git", "refs/heads/") == self.branches
        undo_refs = list_refs(self.root / ".git", "refs/adw/checkpoints/@main/")
        redo_refs = list_refs(self.root / ".git", "refs/adw/redo/@main/")
        assert sorted(int(r.rsplit("/", 1)[1]) for r in undo_refs) == self.numbers
        assert sorted(int(r.rsplit("/", 1)[1]) for r in redo_refs) == sorted(self.redo_numbers)
        assert not (self.root / ".git" / "adw" / "journal.json").exists()
        self.all_reachable()

    def all_reachable(self) -> None:
        reachable = set(run_git(self.root, "rev-list", "--all").split())
        assert not set(self.made) - reachable, f"a checkpoint or commit became unreachable: {self.trace}"


def run_model(tmp_path: Path, examples: int, steps: int, min_steps: int) -> None:
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
    CheckpointMachine.steps = 0
    CheckpointMachine.outcomes.clear()
    WatchedCheckpoints.incremental = WatchedCheckpoints.without_index = 0
    run_state_machine_as_test(
        CheckpointMachine,
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    outcomes = CheckpointMachine.outcomes
    steps = CheckpointMachine.steps - CheckpointMachine.examples  # the invariant also runs before the first step
    incremental, without_index = WatchedCheckpoints.incremental, WatchedCheckpoints.without_index
    print(f"{steps} steps in {CheckpointMachine.examples} walks, {incremental} incremental snapshots "
          f"({without_index} without the index):", dict(sorted(outcomes.items())))
    assert incremental and without_index, "no snapshot added only what the watch reported"
    # The random walks must reach the successful paths of every operation and the refusals of most.
    assert all(outcomes[name] for name in ("undo: done", "redo: done", "undo_file: done")), outcomes
    assert outcomes["undo: refused"] and outcomes["undo_file: refused"], outcomes
    assert steps >= min_steps, f"only {steps} steps ran"


@pytest.mark.faults
def test_checkpoints_follow_the_model(tmp_path: Path) -> None:
    run_model(tmp_path, EXAMPLES, STEPS, MIN_STEPS)
