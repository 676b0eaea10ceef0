"""A small pool of prewarmed worktrees per repository: checked out and set up ahead, taken by `create`.

A pool worktree is detached at a base commit, lives in `<worktree root>/.adw-pool/<id>` and is described by
`<git common dir>/adw/pool/<id>.json`. It is *ready* once its files are checked out, the `.worktreeinclude`
files copied and the setup command has succeeded; only ready ones are taken. Its *key* is the hash of the setup
command and of the lock files the setup reads (`[worktree.pool] lock_files`) at its base: a worktree with the
same key has the same environment, so `create` may take it for any base and move it there with a checkout of the
files that differ.

Kill safety. A record is written before its folder exists and marked ready last; a record that is not ready and
whose owner is gone is abandoned, and the next fill or prune discards it (folder and git's entry to the trash,
record last). Taking deletes the record first (under the repository lock), so a worktree is never taken twice,
and a folder in the pool with no record is an orphan that the next fill or prune discards. Nobody works in a
pool worktree, so discarding one never loses work.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import fnmatch
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel

from adw.fsutil import disk_usage, read_inside, retarget_link_inside, write_inside
from adw.git.locks import Owner, repo_lock
from adw.git.refs import POOL_FOLDER, POOL_RECORDS, TRASH_DIR, WORKTREES_LOCK
from adw.git.runner import git

if TYPE_CHECKING:
    from adw.git.worktrees import Worktrees

# Files the setup wrote that mention the pool folder (a venv's scripts, an editable install's .pth) are rewritten
# when the worktree moves; bigger files are not read.
_MENTION_MAX_BYTES = 1 << 20
# The environment variable that switches the pool off for a process and its children (CI, tests).
DISABLE_ENV = "ADW_POOL"


class PoolEntry(BaseModel):
    id: str
    path: Path
    base_commit: str
    key: str
    ready: bool = False  # False while its owner fills or moves it
    owner_pid: int = 0
    owner_started: float = 0.0
    created: datetime
    setup_output: str = ""
    mentions: list[str] = []  # files (relative) whose text holds the folder's path
    links: list[str] = []  # symlinks whose target holds it
    disk_bytes: int = 0
    lock_files: list[str] = []  # the configured globs when it was made, and what they matched at its base:
    locks: list[tuple[str, str]] = []  # (path, blob id); the same at any base it is moved to (same key)

    def abandoned(self) -> bool:
        return not self.ready and not Owner(self.owner_pid, self.owner_started).alive()


class PoolState(BaseModel):
    """What the next fill should know: the size of the last worktree made, and a key whose setup failed."""

    last_disk_bytes: int = 0
    failed_key: str = ""


class Pool:
    """The pool of one repository; `Worktrees.pool`."""

    def __init__(self, worktrees: Worktrees) -> None:
        self.worktrees = worktrees
        self.config = worktrees.config.worktree.pool
        self.records = worktrees.repo.adw_dir / POOL_RECORDS
        self.folder = worktrees.root / POOL_FOLDER

    @property
    def enabled(self) -> bool:
        return self.config.size > 0 and os.environ.get(DISABLE_ENV) != "0"

    def contains(self, path: Path) -> bool:
        return path.parent == self.folder

    # ------------------------------------------------------------------ records

    def entries(self) -> list[PoolEntry]:
        found = []
        with contextlib.suppress(FileNotFoundError):
            for file in self.records.glob("*.json"):
                with contextlib.suppress(OSError, ValueError):
                    found.append(PoolEntry.model_validate_json(file.read_text(encoding="utf-8")))
        return sorted(found, key=lambda entry: entry.created)

    def _write(self, entry: PoolEntry) -> None:
        write_inside(self.worktrees.repo.adw_dir, f"{POOL_RECORDS}/{entry.id}.json", entry.model_dump_json())

    def _state(self) -> PoolState:
        with contextlib.suppress(OSError, ValueError):
            return PoolState.model_validate_json((self.records / "state").read_text(encoding="utf-8"))
        return PoolState()

    def _save_state(self, state: PoolState) -> None:
        write_inside(self.worktrees.repo.adw_dir, f"{POOL_RECORDS}/state", state.model_dump_json())

    async def key(self, commit: str, known: list[PoolEntry] | None = None) -> str:
        """Hash of the setup command and of the lock files at `commit` (their blob ids: no file is read). A
        `known` entry at `commit` holds those blob ids already: then no git call is needed."""
        patterns = self.config.lock_files
        for entry in known or []:
            if entry.base_commit == commit and entry.lock_files == patterns:
                return self._hash(entry.locks)
        return self._hash(await self._locks(commit))

    async def _locks(self, commit: str) -> list[tuple[str, str]]:
        """(path, blob id) of the lock files at `commit`."""
        patterns = self.config.lock_files
        locks: list[tuple[str, str]] = []
        for folder in sorted({pattern.rpartition("/")[0] for pattern in patterns}):
            out = await git("ls-tree", "-z", "--full-tree", commit, *([f"{folder}/"] if folder else []),
                            cwd=self.worktrees.main_root)
            for record in filter(None, out.stdout.split("\0")):
                meta, _, path = record.partition("\t")
                _mode, kind, oid = meta.split(" ")
                if kind == "blob" and any(fnmatch.fnmatchcase(path, pattern) for pattern in patterns):
                    locks.append((path, oid))
        return sorted(locks)

    def _hash(self, locks: list[tuple[str, str]]) -> str:
        text = json.dumps({"setup": self.worktrees.config.worktree.setup, "locks": [list(lock) for lock in locks]})
        return hashlib.sha256(text.encode()).hexdigest()[:20]

    def ready_entries(self) -> list[PoolEntry]:
        return [entry for entry in self.entries() if entry.ready] if self.enabled else []

    # ------------------------------------------------------------------ take

    def claim(self, key: str, commit: str) -> PoolEntry | None:
        """A ready worktree with this key (one at `commit` first), no longer in the pool: its record is gone.
        The caller holds the repository lock and moves the folder away next."""
        ready = [e for e in self.entries() if e.ready and e.key == key and self.contains(e.path) and e.path.is_dir()]
        if not ready:
            return None
        entry = max(ready, key=lambda e: (e.base_commit == commit, e.created))
        (self.records / f"{entry.id}.json").unlink()
        return entry

    @staticmethod
    def relocate(entry: PoolEntry, new: Path) -> None:
        """Rewrite the pool folder's path in the files and links the setup left mentioning it."""
        old, fresh = str(entry.path).encode(), str(new).encode()
        for rel in entry.mentions:
            data = read_inside(new, rel)
            if data is not None:
                write_inside(new, rel, data.replace(old, fresh))
        for rel in entry.links:
            retarget_link_inside(new, rel, lambda target: target.replace(str(entry.path), str(new)))

    # ------------------------------------------------------------------ fill

    def refill_in_background(self) -> None:
        """Start a detached, low-priority process that fills the pool (`fill`), off the caller's path."""
        if not self.enabled:
            return
        self.records.mkdir(parents=True, exist_ok=True)
        with open(self.records / "fill.log", "ab") as log:
            filler = subprocess.Popen(  # noqa: S603 - fixed argv: this interpreter, ADW's module, the repo's root
                ["nice", "-n", "10", sys.executable, "-m", "adw.git.refill", str(self.worktrees.main_root)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            )
        # Reaped when it ends, so a long-lived caller (the language server) keeps no zombie; a daemon thread does
        # not hold up a CLI process that exits first (the filler then belongs to init).
        threading.Thread(target=filler.wait, name="adw-pool-refill", daemon=True).start()

    async def fill(self) -> list[PoolEntry]:
        """Bring the pool to its configured size for the main branch's commit: discard what no longer fits,
        move ready worktrees forward, make new ones within the disk budget. One filler at a time: another
        process already filling makes this return at once. Returns the entries made or moved."""
        with _exclusive(self.records / "fill.lock") as mine:
            if not mine:
                return []
            commit = await self.worktrees.default_base()
            locks = await self._locks(commit)
            key = self._hash(locks)
            await self.reconcile(key)
            if not self.enabled:
                return []
            done = []
            for entry in [e for e in self.entries() if e.key == key and e.base_commit != commit]:
                moved = await self._move_forward(entry, commit)
                if moved is not None:
                    done.append(moved)
            state = self._state()
            while state.failed_key != key and len([e for e in self.entries() if e.key == key]) < self.config.size:
                entries = self.entries()
                estimate = max([state.last_disk_bytes, *(e.disk_bytes for e in entries)])
                if sum(e.disk_bytes for e in entries) + estimate > self.config.max_disk:
                    break
                made = await self._make(commit, key, locks)
                state = self._state()
                if made is None:
                    break
                done.append(made)
            return done

    async def _make(self, commit: str, key: str, locks: list[tuple[str, str]]) -> PoolEntry | None:
        owner = Owner.me()
        ident = f"p{time.time_ns():x}"
        entry = PoolEntry(id=ident, path=self.folder / ident, base_commit=commit, key=key,
                          lock_files=self.config.lock_files, locks=locks,
                          owner_pid=owner.pid, owner_started=owner.started, created=datetime.now(UTC))
        self._write(entry)  # the intent first: a kill from here on leaves an abandoned record, discarded later
        wts = self.worktrees
        self.folder.mkdir(parents=True, exist_ok=True)
        async with repo_lock(wts.repo.adw_dir / WORKTREES_LOCK):
            await git("worktree", "add", "-q", "--detach", "--no-checkout", entry.path.as_posix(), commit,
                      cwd=wts.main_root)
        try:
            await git("reset", "-q", "--hard", cwd=entry.path)
            await asyncio.to_thread(wts.copy_included, entry.path, await wts.included_files())
            setup = await wts.run_setup(entry.path, {"ADW_WORKTREE_PATH": str(entry.path), DISABLE_ENV: "0"})
            if setup is not None and setup.returncode != 0:
                await self.discard(entry)
                self._save_state(self._state().model_copy(update={"failed_key": key}))
                return None
            tracked = set((await git("ls-files", "-z", cwd=entry.path)).stdout.split("\0"))
            mentions, links = await asyncio.to_thread(_mentions, entry.path, tracked)
            size = await asyncio.to_thread(disk_usage, entry.path)
        except BaseException:
            await asyncio.shield(self.discard(entry))
            raise
        others = sum(e.disk_bytes for e in self.entries() if e.id != ident)
        self._save_state(self._state().model_copy(update={"last_disk_bytes": size}))
        if others + size > self.config.max_disk:
            await self.discard(entry)
            return None
        ready = entry.model_copy(update={"ready": True, "setup_output": setup.output if setup else "",
                                         "mentions": mentions, "links": links, "disk_bytes": size})
        self._write(ready)
        return ready

    async def _move_forward(self, entry: PoolEntry, commit: str) -> PoolEntry | None:
        """Check out `commit` in a ready worktree (only the files that differ); taken by nobody meanwhile."""
        owner = Owner.me()
        async with repo_lock(self.worktrees.repo.adw_dir / WORKTREES_LOCK):
            if not (self.records / f"{entry.id}.json").exists():
                return None  # taken meanwhile
            busy = entry.model_copy(update={"ready": False, "owner_pid": owner.pid, "owner_started": owner.started})
            self._write(busy)
        try:
            await git("checkout", "-q", "--detach", commit, cwd=entry.path)
        except BaseException:
            await asyncio.shield(self.discard(busy))
            raise
        moved = busy.model_copy(update={"ready": True, "base_commit": commit})
        self._write(moved)
        return moved

    # ------------------------------------------------------------------ clean

    async def reconcile(self, key: str | None) -> list[Path]:
        """Discard what cannot be taken: abandoned or broken entries, those of another key (None: every entry),
        the oldest beyond the configured size or disk budget, orphan folders. Returns the folders discarded."""
        gone: list[Path] = []
        async with repo_lock(self.worktrees.repo.adw_dir / WORKTREES_LOCK):
            entries = self.entries()
            keep = self.config.size if self.enabled else 0
            matching = [e for e in entries if e.ready and e.key == key and e.path.is_dir()]
            kept = matching[-keep:] if keep else []
            while kept and sum(e.disk_bytes for e in kept) > self.config.max_disk:
                kept.pop(0)  # the oldest first
            kept_ids = {e.id for e in kept}
            for entry in entries:
                if entry.id in kept_ids or not (entry.ready or entry.abandoned()):
                    continue
                await self.discard(entry)
                gone.append(entry.path)
            known = {e.path for e in self.entries()}
            with contextlib.suppress(FileNotFoundError):
                for child in sorted(self.folder.iterdir()):
                    if child not in known:
                        await self.discard_folder(child)
                        gone.append(child)
        return gone

    async def discard(self, entry: PoolEntry) -> None:
        """The folder and git's entry to the trash, the record last (a kill here is retried by the next fill)."""
        await self.discard_folder(entry.path)
        (self.records / f"{entry.id}.json").unlink(missing_ok=True)

    async def discard_folder(self, path: Path) -> None:
        wts = self.worktrees
        for admin in wts.admin_dirs_of(path):
            await wts.move_to_trash(admin, trash=self.folder.parent / TRASH_DIR)
        await wts.move_to_trash(path, trash=self.folder.parent / TRASH_DIR)


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[bool]:
    """A non-blocking flock held for the block: True when this process got it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True


def _mentions(root: Path, tracked: set[str]) -> tuple[list[str], list[str]]:
    """Untracked text files and symlinks under `root` that hold its absolute path (what a setup such as a
    virtualenv writes: script shebangs, `.pth` files), found once while filling so taking is O(those files)."""
    needle = str(root).encode()
    files: list[str] = []
    links: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        if dirpath == str(root):
            dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            if rel in tracked:
                continue
            with contextlib.suppress(OSError):
                if os.path.islink(full):
                    if str(root) in os.readlink(full):
                        links.append(rel)
                elif os.path.getsize(full) <= _MENTION_MAX_BYTES:
                    with open(full, "rb") as handle:
                        data = handle.read()
                    if needle in data and b"\0" not in data:
                        files.append(rel)
    return files, links

