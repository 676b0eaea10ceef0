"""Checkpoints: a time machine inside one worktree.

A checkpoint is a commit whose tree is every tracked and untracked, non-ignored file of the worktree; its
parents are HEAD, a commit of the user's index (so a restore can put the index back) and whatever redo history
it replaced. Snapshots are built in a private shadow index (`GIT_INDEX_FILE`), so the user's index, stash,
branch and files are never touched. The undo stack lives under `refs/adw/checkpoints/<worktree>/<n>`, the redo
stack under `refs/adw/redo/<worktree>/<n>`; both survive restarts and `git gc`, and every ref change is one
atomic `update-ref --stdin` transaction with old-value checks.

The last snapshot's trees are kept from `git gc` under `refs/adw/snapshot/<worktree>/`: its files' (`last`: the next
snapshot is built on it and the shadow index names its objects) and its index's (`index`: cached while the index
file is unchanged), though no checkpoint may hold them yet (a diff against the files).

Numbers only grow, and every checkpoint on the undo stack is older than everything on the redo stack, so the
top of the undo stack is its highest number and the next redo is the redo stack's lowest.

Undo and redo are journaled: the commits they will reference are pinned under `refs/adw/journal/<worktree>/`
and their intent written to `<private dir>/journal.json` before any file changes; files are then restored one
by one (each verified against the snapshot first, so a file saved meanwhile is kept), and the ref moves come
last in one transaction that also drops the journal. Any later checkpoint command finishes an interrupted one.
A branch tip an undo moves away from is kept under `refs/adw/tips/<worktree>/<n>/` until the redo of entry n
puts it back (or a checkpoint folds it into its parents).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import stat
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel

from adw.config import AdwConfig, load_config
from adw.errors import CheckpointError, GitError, GitLockError
from adw.git.changes import ChangedFile, changed_files
from adw.git.locks import repo_lock
from adw.git.refs import (
    CHECKPOINT_JOURNAL,
    CHECKPOINTS_LOCK,
    INDEX_COPY,
    INDEX_TREE_CACHE,
    JOURNAL_NS,
    REDO_NS,
    SHADOW_INDEX,
    SHADOW_LAG,
    SNAPSHOT_NS,
    TIPS_NS,
    UNDO_NS,
    list_refs,
    read_head,
    resolve_ref,
)
from adw.git.repo import Repo
from adw.git.runner import git
from adw.git.trees import (
    GITLINK,
    TREE,
    Entry,
    NotPlain,
    TreeCache,
    commit_body,
    object_id,
    parent_of,
    write_loose,
)

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
# Checkpoints are ADW's own bookkeeping; a fixed identity works on machines with no git identity configured.
ADW_IDENTITY = {
    "GIT_AUTHOR_NAME": "ADW",
    "GIT_AUTHOR_EMAIL": "adw@localhost",
    "GIT_COMMITTER_NAME": "ADW",
    "GIT_COMMITTER_EMAIL": "adw@localhost",
}
ADW_IDENT = "ADW <adw@localhost>"  # ADW_IDENTITY as a commit names it
_BLOB_MODES = ("100644", "100755", "120000")
_NO_MODE = "000000"
# Failures that no other path would escape: stop with the journal kept rather than skip every file.
_RESOURCE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO)
_PAIR_HEADER = re.compile(r"([0-9a-f]{40,64}) ([0-9a-f]{40,64})\n")

Kind = Literal["checkpoint", "state"]
# Beyond this many changed paths a full `add -A` is as cheap as naming them.
MAX_INCREMENTAL_PATHS = 1000
# Settings that change how git stores objects (loose trees are then left to `mktree`) and how it hashes files.
_SETUP_KEYS = (r"^(core\.(filemode|symlinks|ignorecase|autocrlf|sharedrepository|fsync|fsyncobjectfiles|fsyncmethod)"
               r"|extensions\.objectformat|i18n\.commitencoding)$")
# The files these name are part of the configuration too: their stat joins the cache key of `_plain_git`.
_INCLUDE_KEYS = r"|^include\.path$|^includeif\..+\.path$"
_OBJECT_ENV = ("GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_QUARANTINE_PATH")
_MAX_LINKS = 16  # symlinks a snapshot built without the index hashes (one `hash-object` each)


class ChangeTracker(Protocol):
    """What changed in a worktree since the last call (a long-lived watch, e.g. adw.scouts.watch.Watch with
    `paths=True`): paths relative to the worktree, or None when something may have been missed."""

    def changed_paths(self) -> list[str] | None: ...

    def close(self) -> None: ...


class Checkpoint(BaseModel):
    number: int
    commit: str
    tree: str
    message: str
    created: datetime
    kind: Kind
    head: str | None
    branch: str | None
    index_tree: str
    redo: bool = False


class CheckpointResult(BaseModel):
    created: bool
    checkpoint: Checkpoint | None
    skipped: list[str]
    message: str


class RestoreResult(BaseModel):
    restored: Checkpoint
    saved: Checkpoint | None
    skipped: list[str]
    # Files left as they were because they changed while the restore ran (or could not be replaced).
    kept: list[str] = []
    message: str


class FileUndoResult(BaseModel):
    path: str
    restored_from: Checkpoint
    deleted: bool
    saved: Checkpoint | None
    kept: list[str] = []
    message: str


class _Intent(BaseModel):
    """What an undo or redo is about to do, written before it changes anything, so it can be finished later."""

    source: str  # the tree of the files as the operation found them
    target: str  # the tree they become
    index_tree: str | None  # the user's index becomes this tree (None: left alone)
    branch: str | None  # HEAD becomes this symbolic ref before the ref transaction (None: left alone)
    detach: str | None  # or HEAD is detached at this commit
    refs: list[str]  # `update-ref --stdin` lines, the journal's own refs dropped among them
    adopt: list[str]  # ignored files already equal to the target's version: taken into the shadow index


@dataclass(frozen=True, slots=True)
class State:
    """What a checkpoint compares and restores: files, index, HEAD and its branch."""

    tree: str
    index_tree: str
    head: str | None
    branch: str | None

    def same_as(self, checkpoint: Checkpoint) -> bool:
        return (self.tree, self.index_tree, self.head, self.branch) == (
            checkpoint.tree,
            checkpoint.index_tree,
            checkpoint.head,
            checkpoint.branch,
        )


@dataclass(frozen=True, slots=True)
class _Setup:
    plain: bool  # files are hashed without the index (Checkpoints._plain_git)
    objects: Path | None  # where new trees are written from this process; None: by `mktree`
    commits: bool  # commits may be written there too (no i18n.commitEncoding)


@dataclass(frozen=True, slots=True)
class _Tip:
    """A branch tip an undo moved away from, kept until the redo of `entry` puts it back."""

    ref: str
    commit: str  # ADW's commit whose parent is the tip
    entry: str  # the redo entry whose redo puts it back (numbers are reused by a later worktree of this id)
    branch: str
    tip: str
    moved_to: str  # where the undo left the branch


@dataclass(slots=True)
class _Refs:
    undo: list[Checkpoint] = field(default_factory=list)
    redo: list[Checkpoint] = field(default_factory=list)
    tips: list[_Tip] = field(default_factory=list)
    journal: dict[str, str] = field(default_factory=dict)  # refs pinned by an undo that never started

    def folded(self) -> list[str]:
        """What a new commit that clears the redo history lists as parents, so nothing becomes unreachable."""
        return [c.commit for c in self.redo] + [t.commit for t in self.tips] + list(self.journal.values())


@dataclass(frozen=True, slots=True)
class _Plan:
    """What a restore from one tree to another writes: the paths that differ, and the target's blobs."""

    changes: list[_Change]
    contents: dict[str, bytes]


@dataclass(frozen=True, slots=True)
class _Change:
    """One path that differs between two trees (a mode of 000000: absent on that side)."""

    path: str
    old_mode: str
    old_oid: str
    new_mode: str
    new_oid: str


def ref_id(worktree_id: str) -> str:
    """A worktree id made safe for a ref component (git ids may hold spaces or unicode)."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "-_.@") else f"%{ord(c):02X}" for c in worktree_id)


class Checkpoints:
    """The checkpoint stack of one worktree. Create with `await Checkpoints.open(path)`."""

    def __init__(self, repo: Repo, config: AdwConfig) -> None:
        self.repo = repo
        self.config = config
        ident = ref_id(repo.worktree_id)
        self._undo_ns = f"{UNDO_NS}/{ident}/"
        self._redo_ns = f"{REDO_NS}/{ident}/"
        self._tips_ns = f"{TIPS_NS}/{ident}/"
        self._journal_ns = f"{JOURNAL_NS}/{ident}/"
        self._pin_ref = f"{SNAPSHOT_NS}/{ident}/last"
        self._index_pin_ref = f"{SNAPSHOT_NS}/{ident}/index"
        self.shadow_index = repo.private_dir / SHADOW_INDEX
        # Split index: a write of the shadow index stores only the entries that changed since its shared part (a
        # `sharedindex.*` file in the git dir, expired by git), not all of them: at 50,000 files that is 80 KB
        # instead of 5 MB per write, twice per snapshot (docs/PERFORMANCE.md, incremental checkpoints).
        self.shadow_env = {
            "GIT_INDEX_FILE": str(self.shadow_index),
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "core.splitIndex",
            "GIT_CONFIG_VALUE_0": "true",
        }
        self.journal = repo.private_dir / CHECKPOINT_JOURNAL
        # The caches are keyed by immutable object ids, so they never go stale.
        self._changed_cache: dict[tuple[str, str], frozenset[str]] = {}
        self._tree_cache: dict[str, str] = {}
        self._records: dict[str, tuple[str, str, str, str]] = {}  # commit -> (tree, date, parent, message)
        # With a tracker, a snapshot adds only the paths it reports, once a full one made the shadow index whole.
        self.tracker: ChangeTracker | None = None
        self._whole = False  # the shadow index holds every change up to the tracker's last report
        self._skipped: set[str] = set()  # what the last snapshot left out
        # The last snapshot's tree while the tracker's next report names every change since and the shadow index
        # (with the lag file applied) holds it: the next snapshot can be built from it without the index.
        self._base: str | None = None
        self.shadow_lag = repo.private_dir / SHADOW_LAG
        self._shadow_stat: tuple[int, int, int] | None = None  # the shadow index as this store last left it
        self._known_trees = TreeCache()  # trees read or written, for snapshots built without the index
        self._plain: tuple[tuple[object, ...], _Setup] | None = None  # (git config files' stat, _plain_git's answer)
        self._included: tuple[Path, ...] = ()  # the files the git configuration includes, as last read

    @classmethod
    async def open(cls, path: str | os.PathLike[str] = ".") -> Checkpoints:
        repo = await Repo.discover(path)
        return cls(repo, load_config(repo.main_root, repo.config_cache))

    @contextlib.asynccontextmanager
    async def _locked(self) -> AsyncIterator[list[str] | None]:
        """One checkpoint command per worktree at a time (flock: a killed holder releases it), after finishing
        whatever an interrupted undo or redo left in the journal; yields the files that kept (None: nothing was
        left to finish)."""
        async with repo_lock(self.repo.private_dir / CHECKPOINTS_LOCK):
            finished = None
            if self.journal.exists():
                finished = await self._roll_forward(_Intent.model_validate_json(self.journal.read_bytes()))
            yield finished

    async def _finished(self, kept: list[str]) -> RestoreResult:
        """The result of an undo or redo run again after it was interrupted: finishing it is what was asked."""
        undo, _ = await self.stacks()
        return RestoreResult(
            restored=undo[-1], saved=None, skipped=[], kept=kept,
            message=f"finished the interrupted undo/redo: at checkpoint {undo[-1].number}" + _kept(kept),
        )

    # ---------------------------------------------------------------- reading

    async def history(self, file: str | None = None, include_redo: bool = False) -> list[Checkpoint]:
        """The undo stack, oldest first (plus the redo stack when asked); with `file`, only checkpoints that
        changed that file compared with the checkpoint before them."""
        async with self._locked():
            undo, redo = await self.stacks()
        entries = undo + (redo if include_redo else [])
        if file is None:
            return entries
        _, rel = self._path(file)
        changed = await self.changed_paths(entries)
        return [c for c in entries if rel in changed[c.commit]]

    async def get(self, number: int) -> Checkpoint:
        undo, redo = await self.stacks()
        for checkpoint in undo + redo:
            if checkpoint.number == number:
                return checkpoint
        raise CheckpointError(
            f"there is no checkpoint {number}", "list them with `adw checkpoints`", "pick one in the Checkpoints view"
        )

    async def diff(self, a: int, b: int | None = None, stat: bool = False) -> str:
        """Patch from checkpoint `a` to checkpoint `b`, or to the current files when `b` is None."""
        old, new = await self._trees(a, b)
        args = ["diff", "--no-color", "--no-ext-diff", "-M", *(["--stat"] if stat else []), old, new]
        return (await git(*args, cwd=self.repo.root)).stdout

    async def changes(self, a: int, b: int | None = None) -> list[ChangedFile]:
        """The files that differ from checkpoint `a` to checkpoint `b` (or to the current files when `b` is None),
        with their line counts."""
        return (await changed_files(self.repo.root, *await self._trees(a, b)))[0]

    async def file_at(self, number: int, file: str) -> bytes | None:
        """The content of `file` (inside the worktree) at checkpoint `number`; None when it was not there."""
        tree = (await self.get(number)).tree
        _, rel = self._path(str(self.repo.root / file))
        out = (await git("ls-tree", "-z", tree, "--", rel, cwd=self.repo.root)).stdout
        entry = out.split("\0", 1)[0]
        meta, _, path = entry.partition("\t")
        if path != rel or meta.split(" ")[1] != "blob":
            return None
        oid = meta.split(" ")[2]
        return (await self._contents({oid}))[oid]

    async def _trees(self, a: int, b: int | None) -> tuple[str, str]:
        """The trees of checkpoint `a` and of checkpoint `b`, or of the current files when `b` is None."""
        old = (await self.get(a)).tree
        if b is not None:
            return old, (await self.get(b)).tree
        async with self._locked():
            return old, (await self.snapshot())[0].tree

    # ---------------------------------------------------------------- writing

    async def checkpoint(self, message: str = "") -> CheckpointResult:
        async with self._locked():
            return await self._checkpoint(message)

    async def _checkpoint(self, message: str) -> CheckpointResult:
        refs, (state, skipped) = await asyncio.gather(self._refs(), self.snapshot(pin=False))
        undo, redo = refs.undo, refs.redo
        if undo and state.same_as(undo[-1]):
            await self._transaction(self._pin(state))
            return CheckpointResult(
                created=False,
                checkpoint=undo[-1],
                skipped=skipped,
                message=f"nothing changed since checkpoint {undo[-1].number}; no checkpoint made",
            )
        number = self._next_number(undo, redo)
        folded = refs.folded()
        commit = await self.commit_state(state, message or f"checkpoint {number}", "checkpoint", folded=folded)
        create: _RefOp = ("create", self._undo_ns + f"{number:06d}", commit, None)
        await self._transaction([create, *self._clear(refs), *self._pin(state)])
        made = _describe(number, commit, state, message or f"checkpoint {number}", "checkpoint", redo=False)
        return CheckpointResult(created=True, checkpoint=made, skipped=skipped, message=f"checkpoint {number} made")

    async def undo(self, to: int | None = None) -> RestoreResult:
        """Return to the latest checkpoint if the worktree differs from it, else to the one before;
        `to` picks any checkpoint on the undo stack. The current state is saved first so `redo` returns to it."""
        async with self._locked() as finished:
            return await (self._finished(finished) if finished is not None else self._undo(to))

    async def _undo(self, to: int | None) -> RestoreResult:
        refs, (state, skipped) = await asyncio.gather(self._refs(), self.snapshot(pin=False))
        undo, redo = refs.undo, refs.redo
        if not undo:
            raise CheckpointError(
                "there is no checkpoint to undo to", "make one first with `adw checkpoint`",
                "make one first: ADW: Checkpoint",
            )
        ops: list[_RefOp] = []
        saved: Checkpoint | None = None
        if not state.same_as(undo[-1]):
            # Unsaved changes: they become the newest redo entry; the redo history they replace stays reachable.
            number = self._next_number(undo, redo)
            folded = refs.folded()
            commit = await self.commit_state(state, "state before undo", "state", folded=folded)
            ops += [*self._clear(refs), ("create", self._redo_ns + f"{number:06d}", commit, None)]
            saved = _describe(number, commit, state, "state before undo", "state", redo=True)
            default_target = undo[-1].number
        else:
            if len(undo) < 2 and to is None:
                raise CheckpointError(
                    f"already at the oldest checkpoint ({undo[0].number})", "nothing earlier to undo to"
                )
            default_target = undo[-2].number if len(undo) >= 2 else undo[0].number
        target_number = default_target if to is None else to
        target = next((c for c in undo if c.number == target_number), None)
        if target is None:
            raise CheckpointError(
                f"checkpoint {target_number} is not on the undo stack",
                "pick one listed by `adw checkpoints` (use `adw redo` for undone ones)",
                "pick one in the Checkpoints view (undone ones come back with Redo)",
            )
        later = [c for c in undo if c.number > target.number]
        if saved is None and not later:  # `to` named the checkpoint the files already equal
            await self._transaction(self._pin(state))
            return RestoreResult(
                restored=target, saved=None, skipped=skipped,
                message=f"the files already equal checkpoint {target.number}; nothing to undo",
            )
        for checkpoint in later:
            ops += [("delete", self._undo_ns + f"{checkpoint.number:06d}", None, checkpoint.commit),
                    ("create", self._redo_ns + f"{checkpoint.number:06d}", checkpoint.commit, None)]
        # A branch tip this undo moves away from is put back by the redo of the last entry it creates.
        top = saved or (later[-1] if later else target)
        kept = await self._restore(state, target, ops, [saved.commit] if saved else [], refs, top, undoing=True)
        message = f"restored checkpoint {target.number}" + (" (current state saved for redo)" if saved else "")
        return RestoreResult(restored=target, saved=saved, skipped=skipped, kept=kept, message=message + _kept(kept))

    async def redo(self) -> RestoreResult:
        async with self._locked() as finished:
            return await (self._finished(finished) if finished is not None else self._redo())

    async def _redo(self) -> RestoreResult:
        async def refs_and_plan() -> tuple[_Refs, _Plan | None]:
            # A redo starts from the top of the undo stack (or is refused), so what it will write is known before
            # the snapshot ends: read it meanwhile.
            refs = await self._refs()
            return refs, await self._plan(refs.undo[-1].tree, refs.redo[0].tree) if refs.undo and refs.redo else None

        (refs, plan), (state, skipped) = await asyncio.gather(refs_and_plan(), self.snapshot(pin=False))
        undo, redo = refs.undo, refs.redo
        if not redo:
            raise CheckpointError("there is nothing to redo", "redo follows an `adw undo`", "redo follows an undo")
        if undo and not state.same_as(undo[-1]):
            raise CheckpointError(
                f"files changed since checkpoint {undo[-1].number} was restored, so redo would overwrite them",
                "keep them with `adw checkpoint` (this ends the redo history) or set them aside with `adw undo`",
                "keep them with ADW: Checkpoint (this ends the redo history) or set them aside with ADW: Undo",
            )
        target = redo[0]
        ops: list[_RefOp] = [
            ("delete", self._redo_ns + f"{target.number:06d}", None, target.commit),
            ("create", self._undo_ns + f"{target.number:06d}", target.commit, None),
        ]
        kept = await self._restore(state, target, ops, [], refs, target, undoing=False, plan=plan)
        return RestoreResult(
            restored=target, saved=None, skipped=skipped, kept=kept, message=f"redid to {target.number}" + _kept(kept)
        )

    async def undo_file(self, file: str, to: int | None = None) -> FileUndoResult:
        """Restore one path to its content at a checkpoint (default: the latest one where it differs).
        The state before is checkpointed, so a plain `undo` brings the file back."""
        async with self._locked():
            return await self._undo_file(file, to)

    async def _undo_file(self, file: str, to: int | None) -> FileUndoResult:
        _, rel = self._path(file)
        made = await self._checkpoint(f"before undo of {rel}")
        saved = made.checkpoint if made.created else None
        undo, _ = await self.stacks()
        versions = await self._versions_at(rel, undo)
        current = versions[undo[-1].commit]
        if to is not None:
            target = next((c for c in undo if c.number == to), None)
            if target is None:
                raise CheckpointError(
                    f"checkpoint {to} is not on the undo stack", "see `adw checkpoints`",
                    "pick one in the Checkpoints view",
                )
        else:
            target = next((c for c in reversed(undo) if versions[c.commit] != current), None)
            if target is None:
                raise CheckpointError(f"no checkpoint has a different version of {rel}", "nothing to undo")
        deleted = not versions[target.commit]
        # The checkpoint above holds the current version, so one file at a time needs no journal: each write
        # replaces a verified file in one rename.
        plan = await self._plan(undo[-1].tree, target.tree, [rel])
        kept = await self._apply(plan)
        await self._update_shadow(plan.changes, [], kept)
        verb = "deleted" if deleted else "restored"
        return FileUndoResult(
            path=rel, restored_from=target, deleted=deleted, saved=saved, kept=kept,
            message=f"{verb} {rel} as of checkpoint {target.number}" + _kept(kept),
        )

    # ---------------------------------------------------------------- internals

    def _path(self, file: str) -> tuple[Path, str]:
        """A user-given path inside the worktree, absolute and relative; a final symlink is the path itself,
        not its target (per-file undo restores the link)."""
        candidate = Path(file)
        if candidate.name in ("", ".", ".."):
            full = self.repo.inside(file)
        else:
            full = self.repo.inside(str(candidate.parent)) / candidate.name
        return full, full.relative_to(self.repo.root).as_posix()

    async def stacks(self) -> tuple[list[Checkpoint], list[Checkpoint]]:
        refs = await self._refs()
        return refs.undo, refs.redo

    async def _refs(self) -> _Refs:
        namespaces = (self._undo_ns, self._redo_ns, self._tips_ns, self._journal_ns)
        # The refs are read in-process; git is asked only about commits this instance has not parsed yet.
        found = {ref: commit for ns in namespaces for ref, commit in list_refs(self.repo.common_dir, ns).items()}
        if any(commit not in self._records for commit in found.values()):
            fmt = "%(refname)%00%(objectname)%00%(tree)%00%(committerdate:iso-strict)%00%(parent)%00%(contents)%01"
            out = (await git("for-each-ref", f"--format={fmt}", *namespaces, cwd=self.repo.root)).stdout
            found = {}  # git's answer is the truth, should a ref have moved since the read above
            for record in out.split("\x01"):
                if record := record.lstrip("\n"):
                    refname, commit, tree, date, parent, contents = record.split("\x00", 5)
                    found[refname] = commit
                    self._records[commit] = (tree, date, parent, contents)
        refs = _Refs()
        for refname, commit in found.items():
            tree, date, parent, contents = self._records[commit]
            if refname.startswith(self._journal_ns):
                refs.journal[refname] = commit
            elif refname.startswith(self._tips_ns):
                _, fields = trailers(contents)
                refs.tips.append(_Tip(refname, commit, fields["adw-entry"], fields["adw-branch"], parent,
                                      fields["adw-moved-to"]))
            elif refname.startswith(self._redo_ns):
                refs.redo.append(_parse(refname, commit, tree, date, contents).model_copy(update={"redo": True}))
            else:
                refs.undo.append(_parse(refname, commit, tree, date, contents))
        refs.undo.sort(key=lambda c: c.number)
        refs.redo.sort(key=lambda c: c.number)
        return refs

    @staticmethod
    def _next_number(undo: list[Checkpoint], redo: list[Checkpoint]) -> int:
        return max((c.number for c in undo + redo), default=0) + 1

    def _clear(self, refs: _Refs) -> list[_RefOp]:
        """Drop the redo stack and the branch tips kept for it (the caller's new commit lists them as parents, so
        nothing becomes unreachable), and refs pinned by an undo that was killed before it began."""
        return [
            *(("delete", self._redo_ns + f"{c.number:06d}", None, c.commit) for c in refs.redo),
            *(("delete", t.ref, None, t.commit) for t in refs.tips),
            *(("delete", ref, None, commit) for ref, commit in refs.journal.items()),
        ]

    async def snapshot(self, pin: bool = True) -> tuple[State, list[str]]:
        """Write the worktree's files into the shadow index and return the state with the paths left out. The tree
        is kept from `git gc` by the snapshot ref, moved here, or with `pin=False` by the caller's own transaction
        (`_pin`)."""
        # The tracker's report is taken first: a change made while this snapshot runs is in the next one.
        changed = self.tracker.changed_paths() if self.tracker is not None else None
        whole, self._whole = self._whole, False  # a snapshot that fails leaves the next one to start over
        base, self._base = self._base, None
        incremental = changed is not None and whole and len(changed) <= MAX_INCREMENTAL_PATHS
        built = None
        # Only while the shadow index is as this store left it (another process's undo may have adopted a file into
        # it that the base lacks) and the base is still the one kept from `gc` (another store moved the ref).
        if (incremental and base is not None and self._shadow_stat == _stat_key(self.shadow_index)
                and self._pinned(self._pin_ref) == base):
            # A file replaced meanwhile, an object not writable from here: the index path, where git says why.
            with contextlib.suppress(GitError, NotPlain, ValueError, OSError):
                built = await self._from_base(base, changed or [])
        if built is not None:
            tree, skipped = built
        else:
            try:
                tree, skipped = await self._through_index(changed if incremental else None)
            except GitLockError:
                raise
            except GitError:
                # The shadow index names objects `git gc` pruned (no ref kept them: one deleted by hand, a command
                # killed before its ref moved) or cannot be read: it starts over from the user's index.
                self.shadow_index.unlink(missing_ok=True)
                self.shadow_lag.unlink(missing_ok=True)
                tree, skipped = await self._through_index(None)
            self._shadow_stat = _stat_key(self.shadow_index)
        self._skipped, self._whole = set(skipped), self.tracker is not None
        self._base = tree if self._whole else None
        head, branch = read_head(self.repo.git_dir, self.repo.common_dir)
        state = State(tree, await self._index_tree(), head, branch)
        if pin:
            await self._transaction(self._pin(state))
        return state, skipped

    async def _through_index(self, changed: list[str] | None) -> tuple[str, list[str]]:
        """The snapshot's tree written through the shadow index: `add -A` of only the `changed` paths while the
        index holds everything else, else of the whole worktree; with the paths left out."""
        root = self.repo.root
        env = self.shadow_env
        if not self.shadow_index.exists():
            # Seeding from the real index gives the stat data, so only files changed since are hashed. Its mtime is
            # kept: git compares whole seconds, and an entry written in the index's own second is "racily clean",
            # checked by content; a copy dated now would make an edit within that second look unchanged.
            self.shadow_index.parent.mkdir(parents=True, exist_ok=True)
            real = self.repo.git_dir / "index"
            if real.exists():
                shutil.copy2(real, self.shadow_index)
        if await self._sync_shadow() and changed is not None:
            skipped = await self._add_changed(changed, env)
        else:
            new_untracked = (await git("ls-files", "-z", "-o", "--exclude-standard", cwd=root, env=env)).stdout
            skipped = await self._too_big_or_nested([p for p in new_untracked.split("\0") if p])
            excludes = [f":(exclude,literal){p.rstrip('/')}" for p in skipped]
            await git("add", "-A", "--", ".", *excludes, cwd=root, env=env)
        return (await git("write-tree", cwd=root, env=env)).stdout.strip(), skipped

    def _pinned(self, ref: str) -> str | None:
        return resolve_ref(self.repo.git_dir, self.repo.common_dir, ref)

    def _pin(self, state: State) -> list[_RefOp]:
        """What keeps the last snapshot's trees from `git gc`: its files' and its index's (staged work no commit
        holds yet is in that one alone); nothing for a ref that has its tree already."""
        wanted = {self._pin_ref: state.tree, self._index_pin_ref: state.index_tree}
        return [("update", ref, tree, None) for ref, tree in wanted.items()
                if tree != EMPTY_TREE and self._pinned(ref) != tree]

    async def _from_base(self, base: str, paths: list[str]) -> tuple[str, list[str]] | None:
        """The snapshot as the tree `base` (the last one) with `paths` (what changed since) as they are on disk, built
        without reading the shadow index: the same tree an `add -A` would give, or None when a path is not a plain
        case (a folder, a file where a folder was, a submodule, a nested repository, a file git might convert
        by what the index holds, an unusual git configuration), which the index path handles.

        A path the base holds is updated or removed whether or not it is ignored now (as `add -A` keeps tracked
        files); a new one is added unless `check-ignore` ignores it or it is over the untracked size cap and not in
        the user's index (`_too_big_or_nested`). The shadow index is brought to the new tree later, by the lag file
        (`_sync_shadow`), before anything reads it."""
        root = self.repo.root
        skipped = {p for p in self._skipped if not any(_under(p, changed) for changed in paths)}
        if not paths:
            return base, sorted(skipped)
        setup = await self._plain_git()
        if len(base) != 40 or not setup.plain:
            return None
        disk = await asyncio.to_thread(_inspect, root, paths)
        if disk is None:
            return None
        names = {os.fsencode(p): p for p in paths}
        folders = await self._known_trees.folders(root, base, list(names))
        edits: dict[bytes, Entry | None] = {}
        update: list[str] = []
        new: list[str] = []
        for raw, rel in names.items():
            folder, name = parent_of(raw)
            parent = folders[folder]
            entry = self._known_trees.trees[parent].get(name) if parent is not None else None
            if entry is not None and (entry[0] == GITLINK or (entry[0] == TREE and disk[rel] is not None)):
                return None
            if disk[rel] is None:
                if entry is not None:
                    edits[raw] = None  # a file, or a folder gone with everything in it
            else:
                (update if entry is not None else new).append(rel)
        if new:
            listed = os.fsencode("\0".join(new)) + b"\0"
            check = await git("check-ignore", "--no-index", "-z", "--stdin", cwd=root, ok_codes=(0, 1), input=listed)
            ignored = set(check.stdout.split("\0"))
            new = [p for p in new if p not in ignored]
            left_out = await self._too_big_or_nested(new)
            skipped.update(left_out)
            update += [p for p in new if p not in left_out]
        if sum((found := disk[p]) is not None and found[1] is not None for p in update) > _MAX_LINKS:
            return None
        for rel, oid in (await self._hash(update, disk)).items():
            found = disk[rel]
            assert found is not None
            edits[os.fsencode(rel)] = (found[0].encode(), oid)
        tree = await self._known_trees.rebuild(root, folders, edits, setup.objects)
        if not tree:
            return None  # nothing left: the empty tree is the index path's to write
        held = self.shadow_lag.read_text().split()[0] if self.shadow_lag.exists() else base
        # Always 82 bytes, written in place in one write: a rename per snapshot cost milliseconds on a busy disk,
        # and a file torn by a crash reads as no lag (the shadow index then only misses what `add -A` corrects).
        fd = os.open(self.shadow_lag, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{held} {tree}\n".encode())
        finally:
            os.close(fd)
        return tree, sorted(skipped)

    async def _hash(self, paths: list[str], disk: dict[str, _Found | None]) -> dict[str, str]:
        """Write the blobs of files and symlinks (`disk`: from `_inspect`); their ids by path. Files go through
        git's filters as `add` runs them; a symlink's blob is its target."""
        root = self.repo.root
        files = [p for p in paths if (found := disk[p]) is not None and found[1] is None]
        links = [p for p in paths if p not in files]

        async def link(rel: str) -> str:
            found = disk[rel]
            assert found is not None and found[1] is not None
            return (await git("hash-object", "-w", "--no-filters", "--stdin", cwd=root, input=found[1])).stdout.strip()

        async def regular() -> list[str]:
            if not files:
                return []
            feed = b"".join(os.fsencode(p) + b"\n" for p in files)
            return (await git("hash-object", "-w", "--stdin-paths", cwd=root, input=feed)).stdout.split()

        hashed, linked = await asyncio.gather(regular(), asyncio.gather(*(link(p) for p in links)))
        if len(hashed) != len(files):
            raise ValueError(f"hash-object gave {len(hashed)} ids for {len(files)} files")
        return dict(zip([*files, *links], [*hashed, *linked], strict=True))

    async def _plain_git(self) -> _Setup:
        """Whether git stores a file just as lstat sees it and hashes it without the index (core.fileMode and
        core.symlinks on, core.ignoreCase and core.autocrlf off), and the objects folder new trees may be written
        into from this process (`write_loose`): only for sha1 objects in the repository's own folder with git's
        default permissions and syncing, no alternates; None sends them through `mktree`. Cached by the stat of
        the config files (the included ones too) and alternates file and the GIT_* environment."""
        home = Path.home()
        objects = self.repo.common_dir / "objects"
        alternates = _stat_key(objects / "info" / "alternates")
        files = (
            self.repo.common_dir / "config", self.repo.git_dir / "config.worktree", home / ".gitconfig",
            Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config") / "git" / "config", Path("/etc/gitconfig"),
        )
        environment = sorted(i for i in os.environ.items() if i[0].startswith("GIT"))

        def signature(included: tuple[Path, ...]) -> tuple[object, ...]:
            return (*(_stat_key(f) for f in (*files, *included)), alternates, *environment)

        if self._plain is None or self._plain[0] != signature(self._included):
            out = await git("config", "-z", "--show-origin", "--get-regexp", _SETUP_KEYS + _INCLUDE_KEYS,
                            cwd=self.repo.root, ok_codes=(0, 1))
            tokens = out.stdout.split("\0")
            values: dict[str, str] = {}
            included: list[Path] = []
            for origin, item in zip(tokens[0::2], tokens[1::2], strict=False):
                key, _, value = item.partition("\n")
                if not key.startswith("include"):
                    values[key] = value.lower()
                elif origin.startswith("file:"):  # relative to the file that includes it, whatever its condition
                    included.append((self.repo.root / origin[5:]).parent / Path(value).expanduser())
            on = ("true", "yes", "on", "1", "")
            plain = (values.get("core.filemode", "true") in on and values.get("core.symlinks", "true") in on
                     and values.get("core.ignorecase", "false") not in on
                     and values.get("core.autocrlf", "false") not in (*on, "input"))
            own = not any(key.startswith(("core.fsync", "core.sharedrepository")) for key in values)
            own = own and values.get("extensions.objectformat", "sha1") == "sha1" and alternates is None
            own = own and not any(name in os.environ for name in _OBJECT_ENV)
            self._included = tuple(included)
            setup = _Setup(plain, objects if own else None, "i18n.commitencoding" not in values)
            self._plain = (signature(self._included), setup)
        return self._plain[1]

    async def _sync_shadow(self) -> bool:
        """Give the shadow index the tree the snapshots built without it (the lag file), before anything reads it:
        the entries that differ, without stat data, so the next `add -A` hashes those files again. False when that
        could not be done (a tree pruned by `gc`, a torn lag file): only an `add -A` of everything corrects it."""
        try:
            held, wanted = self.shadow_lag.read_text().split()
        except FileNotFoundError:
            return True
        except ValueError:
            held = wanted = ""
        try:
            changes = await self._changes(held, wanted) if held else None
        except GitError:
            changes = None
        if changes is not None:
            await self._index_info(changes)
        else:
            self._whole = False  # the next snapshot adds everything
        self.shadow_lag.unlink()
        return changes is not None

    async def _index_info(self, changes: list[_Change]) -> None:
        """Set the shadow index's entries of `changes` to their new side (removals first, so a file can take the
        place of a folder), without stat data."""
        lines = [f"0 {c.new_oid}\t{c.path}" for c in changes if c.new_mode == _NO_MODE]
        lines += [f"{c.new_mode} {c.new_oid}\t{c.path}" for c in changes if c.new_mode != _NO_MODE]
        if lines:
            await git("update-index", "-z", "--index-info", cwd=self.repo.root, env=self.shadow_env,
                      input="\0".join(lines) + "\0")

    async def _add_changed(self, paths: list[str], env: dict[str, str]) -> list[str]:
        """`add -A` of only `paths` (files or folders): what the shadow index tracks under them is updated or
        removed, and their untracked files not ignored are added unless too big or nested repositories; the
        same index a full `add -A` would give, when nothing else changed."""
        skipped = {p for p in self._skipped if not any(_under(p, changed) for changed in paths)}
        if not paths:
            return sorted(skipped)
        root = self.repo.root
        listed = await git("ls-files", "-z", "-t", "--cached", "--others", "--exclude-standard", "--",
                           *(f":(literal){p}" for p in paths), cwd=root, env=env)
        tracked: list[str] = []
        untracked: list[str] = []
        for entry in filter(None, listed.stdout.split("\0")):
            (untracked if entry.startswith("? ") else tracked).append(entry[2:])
        left_out = await self._too_big_or_nested(untracked)
        skipped.update(left_out)
        update = list(dict.fromkeys([*tracked, *(p for p in untracked if p not in left_out)]))
        if update:
            # --replace: a file where a tracked folder was (or the reverse) takes its place, as with add -A.
            await git("update-index", "--add", "--remove", "--replace", "-z", "--stdin", cwd=root, env=env,
                      input="\0".join(update) + "\0")
        return sorted(skipped)

    async def _too_big_or_nested(self, paths: list[str]) -> list[str]:
        """Nested repositories, and files over the size cap that the user's index does not track (the cap is for
        build output and downloads; a committed file is always checkpointed)."""
        cap = self.config.checkpoint.max_untracked_size
        nested = [rel for rel in paths if rel.endswith("/")]  # git lists a nested repository as one folder
        big = []
        for rel in paths:
            with contextlib.suppress(OSError):
                if not rel.endswith("/") and os.lstat(self.repo.root / rel).st_size > cap:
                    big.append(rel)
        if big:
            listed = await git("ls-files", "-z", "--", *(f":(literal){p}" for p in big), cwd=self.repo.root)
            tracked = set(listed.stdout.split("\0"))
            big = [p for p in big if p not in tracked]
        return nested + big

    async def _index_tree(self) -> str:
        """The tree of the user's index, written from a copy so the real one is never locked or rewritten.
        Cached by the index file's identity: the index rarely changes between checkpoints."""
        real = self.repo.git_dir / "index"
        try:
            st = real.stat()
        except FileNotFoundError:
            return EMPTY_TREE
        signature = [st.st_mtime_ns, st.st_size, st.st_ino]
        cache = self.repo.private_dir / INDEX_TREE_CACHE
        with contextlib.suppress(OSError, ValueError):
            cached = json.loads(cache.read_text())
            # Only while the ref keeps the tree from `git gc`: else it may be gone, and is written again.
            if cached["signature"] == signature and self._pinned(self._index_pin_ref) == cached["tree"]:
                return str(cached["tree"])
        copy = self.repo.private_dir / INDEX_COPY
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(real, copy)
        try:
            tree = (await git("write-tree", cwd=self.repo.root, env={"GIT_INDEX_FILE": str(copy)})).stdout.strip()
        except GitError as exc:
            raise CheckpointError(
                "the index has unresolved merge conflicts, so it cannot be checkpointed",
                "resolve them (`git status` lists them) and add the files, then checkpoint",
            ) from exc
        cache.write_text(json.dumps({"signature": signature, "tree": tree}))
        return tree

    async def commit_state(self, state: State, message: str, kind: Kind, folded: Iterable[Checkpoint | str]) -> str:
        """Commit `state`; `folded` (checkpoints or commit ids) become parents, so they stay reachable."""
        parents = [state.head] if state.head else []
        head_tree = await self._tree_of(state.head) if state.head else EMPTY_TREE
        if state.index_tree != head_tree:
            parents.append(await self._write_commit(state.index_tree, parents[:1], "adw index\n", _git_date(_now())))
        parents += [c if isinstance(c, str) else c.commit for c in folded]
        trailer = (
            f"\n\nadw-kind: {kind}\nadw-branch: {state.branch or '-'}\n"
            f"adw-head: {state.head or '-'}\nadw-index-tree: {state.index_tree}\n"
        )
        return await self._commit(state.tree, list(dict.fromkeys(parents)), message + trailer)

    async def _commit(self, tree: str, parents: list[str], message: str) -> str:
        """A commit with ADW's identity at a date chosen here, so this instance knows what `_refs` would read
        about it without asking git again."""
        now = _now()
        commit = await self._write_commit(tree, parents, message, _git_date(now))
        self._records[commit] = (tree, now.isoformat(), " ".join(parents), message)
        return commit

    async def _write_commit(self, tree: str, parents: list[str], message: str, date: str) -> str:
        """The id of the commit `git commit-tree` writes for these (author and committer ADW at `date`), written
        from this process where it writes trees (the same bytes, one spawn less; commit-tree ignores
        commit.gpgSign) unless an i18n.commitEncoding or a NUL in the message makes git's rules apply."""
        setup = await self._plain_git()
        if setup.objects is not None and setup.commits and "\0" not in message:
            body = commit_body(tree, parents, ADW_IDENT, date, message)
            commit = object_id(b"commit", body)
            with contextlib.suppress(OSError):  # not writable from here: git writes it, or says why it cannot
                await asyncio.to_thread(write_loose, setup.objects, commit, b"commit", body)
                return commit
        env = {**ADW_IDENTITY, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
        args = ["commit-tree", tree, *(arg for p in parents for arg in ("-p", p))]
        return (await git(*args, cwd=self.repo.root, env=env, input=message)).stdout.strip()

    async def _tree_of(self, commit: str) -> str:
        if commit not in self._tree_cache:
            self._tree_cache[commit] = (await git("rev-parse", f"{commit}^{{tree}}", cwd=self.repo.root)).stdout.strip()
        return self._tree_cache[commit]

    async def _transaction(self, ops: list[_RefOp] | list[str], own_locks_since: int | None = None) -> None:
        if not ops:  # e.g. undo to the checkpoint the worktree is already at; update-ref rejects empty input
            return
        lines = [op if isinstance(op, str) else _ref_line(op) for op in ops]
        try:
            await git("update-ref", "--stdin", cwd=self.repo.root, input="\n".join(lines) + "\n",
                      own_locks_since=own_locks_since)
        except GitLockError:
            raise  # names the lock and its holder already
        except GitError as exc:
            raise CheckpointError(
                "the checkpoints or a branch changed while this ran (another git command or checkout?)",
                "run the command again: it starts from the refs as they are now",
            ) from exc

    async def _restore(
        self, current: State, target: Checkpoint, ops: list[_RefOp], pinned: list[str], refs: _Refs, top: Checkpoint,
        undoing: bool, plan: _Plan | None = None,
    ) -> list[str]:
        """Journal the whole move (refs to pin, intent), then files, index, HEAD and refs; returns kept files.
        `plan`: the move from `current.tree` to the target's, when the caller read it already."""
        root = self.repo.root
        plan = plan or await self._plan(current.tree, target.tree)
        changes = plan.changes
        # A path the target has and the snapshot lacks exists on disk only if ignored or skipped (a folder there
        # is replaced, as its files are in the snapshot): never overwrite such a file.
        present = [
            c.path for c in changes
            if c.old_mode == _NO_MODE and os.path.lexists(root / c.path) and not _is_dir(root / c.path)
        ]
        blocking = await self._differing(target.tree, present)
        if blocking:
            raise CheckpointError(
                "restoring would overwrite files that no checkpoint holds (ignored or too big): "
                + ", ".join(blocking[:10]),
                "move them aside, or checkpoint them (`git add -f` is not needed: rename them), then undo again",
            )
        head_ops, tips = await self._head_ops(current, target, refs, top, undoing)
        pinned = pinned + [commit for commit, _ in tips]
        journal_refs = {f"{self._journal_ns}{n}": commit for n, commit in enumerate(pinned)}
        lines: list[str] = []
        moves: list[_RefOp] = [*ops, *head_ops, *(("create", ref, commit, None) for commit, ref in tips)]
        for op in [*moves, *(("delete", ref, None, commit) for ref, commit in journal_refs.items())]:
            lines.append(_ref_line(op))
        intent = _Intent(
            source=current.tree,
            target=target.tree,
            index_tree=target.index_tree if target.index_tree != current.index_tree else None,
            branch=target.branch if target.branch and target.branch != current.branch else None,
            detach=target.head if target.branch is None and (current.branch, current.head) != (None, target.head)
            else None,
            refs=lines,
            adopt=present,
        )
        # Intent first: pin what the refs will reference, then the journal file; until it exists nothing changed.
        pins: list[_RefOp] = [("delete", ref, None, commit) for ref, commit in refs.journal.items()
                              if ref not in journal_refs]
        pins += [("update", ref, commit, None) for ref, commit in journal_refs.items()]
        await self._transaction([*pins, *self._pin(current)])
        _write_atomic(self.journal, intent.model_dump_json().encode())
        return await self._roll_forward(intent, plan)

    async def _roll_forward(self, intent: _Intent, plan: _Plan | None = None) -> list[str]:
        """Carry out a journaled undo or redo; safe to repeat from any point, as every step checks what is done."""
        plan = plan or await self._plan(intent.source, intent.target)
        kept = await self._apply(plan)
        # The shadow index is ADW's own file: it is brought up to date beside the user's index and refs.
        shadow = asyncio.ensure_future(self._update_shadow(plan.changes, intent.adopt, kept))
        root = self.repo.root
        # A lock made since the journal that nobody holds is this move's own, left by a kill: not a reason to stop.
        since = self.journal.stat().st_mtime_ns
        try:
            if intent.index_tree:
                await git("read-tree", "--reset", intent.index_tree, cwd=root, own_locks_since=since)
            # HEAD's own moves go first: a transaction cannot move HEAD and the branch it names together.
            if intent.branch:
                await git("symbolic-ref", "HEAD", intent.branch, cwd=root, own_locks_since=since)
            if intent.detach:
                await git("update-ref", "--no-deref", "HEAD", intent.detach, cwd=root, own_locks_since=since)
            await self._transaction(intent.refs, own_locks_since=since)
        except GitLockError as exc:
            raise _paused(exc) from exc
        except CheckpointError:
            # Refs already where the journal wants them were moved by this move: killed after its transaction, or
            # inside it (git renames a transaction's ref locks one by one). Only the others are moved now.
            left = await self._refs_left(intent.refs)
            if left and len(left) < len(intent.refs):
                try:
                    await self._transaction(left, own_locks_since=since)
                    left = []
                except GitLockError as exc:
                    raise _paused(exc) from exc
                except CheckpointError:
                    pass
            if left:
                # Refs moved by someone else: the journal's pins keep the state before reachable until a new
                # checkpoint folds them into its parents; retrying could never succeed.
                self.journal.unlink()
                raise
        finally:
            await shadow
        self.journal.unlink()
        return kept

    async def _refs_left(self, lines: list[str]) -> list[str]:
        """The lines of an `update-ref --stdin` transaction whose ref does not have the value it sets yet."""
        wanted: dict[str, tuple[str, str | None]] = {}  # ref -> (its line, the value it sets; None: deleted)
        for line in lines:
            verb, ref, *values = line.split(" ")
            wanted[ref] = (line, values[0] if verb in ("create", "update") else None)
        out = await git("for-each-ref", "--format=%(refname) %(objectname)", *wanted, cwd=self.repo.root)
        found = dict(line.split(" ", 1) for line in out.stdout.splitlines())
        return [line for ref, (line, value) in wanted.items() if found.get(ref) != value]

    async def _changes(self, source: str, target: str, paths: Iterable[str] = ()) -> list[_Change]:
        spec = [f":(literal){p}" for p in paths]
        out = (await git("diff-tree", "-r", "-z", "--no-renames", source, target, "--", *spec, cwd=self.repo.root))
        tokens = out.stdout.split("\0")
        changes = []
        for meta, path in zip(tokens[0::2], tokens[1::2], strict=False):
            old_mode, new_mode, old_oid, new_oid, _ = meta.lstrip(":").split(" ")
            changes.append(_Change(path, old_mode, old_oid, new_mode, new_oid))
        return changes

    async def _plan(self, source: str, target: str, paths: Iterable[str] = ()) -> _Plan:
        changes = await self._changes(source, target, paths)
        return _Plan(changes, await self._contents({c.new_oid for c in changes if c.new_mode in _BLOB_MODES}))

    async def _apply(self, plan: _Plan) -> list[str]:
        """Make the files that differ between two trees (`plan.changes`) those of the second. A file is replaced or
        deleted only while it still is the first tree's version; one that is neither version (saved meanwhile) or
        cannot be replaced is kept and returned. Already-target files are left, so a rerun finishes a killed one."""
        root = self.repo.root
        changes, contents = plan.changes, plan.contents
        writes = [c for c in changes if c.new_mode in _BLOB_MODES]
        gone = [c for c in changes if c.new_mode == _NO_MODE and c.old_mode in _BLOB_MODES]
        kept: list[str] = []
        # Type changes: a file where a target folder goes, or files in a folder where a target file goes.
        written = {c.path for c in writes}
        folders = {parent.as_posix() for path in written for parent in Path(path).parents}
        first = [c for c in gone if c.path in folders or _parent_in(c.path, written)]
        later = [c for c in gone if c not in first]

        def remove_then_write() -> None:
            for change in first:
                _remove(root, change, kept)
            for change in writes:
                _place(root, change, contents[change.new_oid], kept)

        # File work (hashing, writing) runs in a thread: the language server's event loop never waits on it.
        await asyncio.to_thread(remove_then_write)
        ignored: set[str] = set()
        if later:
            # Only paths the target's own ignore rules do not ignore are proven created after it (a changed
            # .gitignore proves nothing); the others stay, now ignored.
            check = await git("check-ignore", "--no-index", "-z", "--stdin", cwd=root, ok_codes=(0, 1),
                              input="\0".join(c.path for c in later))
            ignored = set(check.stdout.split("\0"))

        def remove_later() -> None:
            for change in later:
                if change.path not in ignored:
                    _remove(root, change, kept)

        await asyncio.to_thread(remove_later)
        return sorted(set(kept))

    async def _contents(self, oids: set[str]) -> dict[str, bytes]:
        if not oids:
            return {}
        out = (await git("cat-file", "--batch", cwd=self.repo.root, input="".join(f"{o}\n" for o in oids))).stdout
        data = out.encode("utf-8", "surrogateescape")  # the runner decodes losslessly; blobs are bytes
        found: dict[str, bytes] = {}
        offset = 0
        while offset < len(data):
            end = data.index(b"\n", offset)
            oid, _, size = data[offset:end].decode().split(" ")
            found[oid] = data[end + 1 : end + 1 + int(size)]
            offset = end + 2 + int(size)
        return found

    async def _update_shadow(self, changes: list[_Change], adopt: list[str], kept: list[str]) -> None:
        """The shadow index takes the target's entries (without stat data, so the next snapshot rehashes those
        files and sees any that were kept); removed entries of files kept on disk are re-added by it too.
        When every change rewrote a file the shadow index holds, it is left as it is: each such file was
        replaced by a rename (a new inode), so its entry no longer matches and the next snapshot rehashes it."""
        if not adopt and all(c.old_mode in _BLOB_MODES and c.new_mode in _BLOB_MODES for c in changes):
            return
        # The index now differs from the snapshot's tree (adopted files): the next snapshot reads it again.
        self._base = None
        await self._sync_shadow()
        # A kept file's entry stays as the snapshot saw it: no event of a watch would bring it back in line.
        await self._index_info([c for c in changes if c.new_mode != "160000" and c.path not in kept])
        if adopt:
            await git("add", "-f", "--", *(f":(literal){p}" for p in adopt), cwd=self.repo.root, env=self.shadow_env)
        self._shadow_stat = _stat_key(self.shadow_index)

    async def _differing(self, tree: str, paths: list[str]) -> list[str]:
        """The paths whose file on disk is not exactly (content and mode) the version in `tree`."""
        if not paths:
            return []
        listed = await git("ls-tree", "-z", tree, "--", *(f":(literal){p}" for p in paths), cwd=self.repo.root)
        wanted = {}
        for entry in listed.stdout.split("\0"):
            if entry:
                meta, _, path = entry.partition("\t")
                mode, _, oid = meta.split(" ")
                wanted[path] = (mode, oid)
        return [p for p in paths if p not in wanted or not _matches(self.repo.root / p, *wanted[p])]

    async def _head_ops(
        self, current: State, target: Checkpoint, refs: _Refs, top: Checkpoint, undoing: bool
    ) -> tuple[list[_RefOp], list[tuple[str, str]]]:
        """Ref moves that give HEAD and its branch the target's, plus (commit, ref) of branch tips to keep: the
        tip of another branch an undo rewinds (the redo of entry `top` puts it back), and on redo a tip no
        checkpoint holds. A redo of `top` also returns the tips its undo kept."""
        root = self.repo.root
        known = {c.head for c in refs.undo + refs.redo} | {current.head}
        ops: list[_RefOp] = []
        keep: list[tuple[str, str]] = []
        branches: dict[str, tuple[str | None, str | None]] = {}  # branch -> (where it is, where it goes)
        if target.branch is None:
            pass  # HEAD is detached at the target's commit by the journal (no branch moves)
        elif target.branch == current.branch:
            branches[target.branch] = (current.head, target.head)
        else:
            old = await _rev_parse(root, target.branch)
            branches[target.branch] = (old, target.head)
            if old and old != target.head and (undoing or old not in known):
                commit = await self._keep_tip(target.branch, old, target.head, top.commit)
                keep.append((commit, f"{self._tips_ns}{top.number:06d}/{commit}"))
        for tip in (t for t in refs.tips if t.entry == target.commit and t.branch != target.branch):
            if undoing:
                break
            now = branches[tip.branch] if tip.branch in branches else (await _rev_parse(root, tip.branch),) * 2
            if now[1] in (tip.tip, tip.moved_to) or now[1] in known:
                # Where the branch is now is held by a checkpoint (or is the tip itself): nothing is lost.
                branches[tip.branch] = (now[0], tip.tip)
                ops.append(("delete", tip.ref, None, tip.commit))
        ops += [_move(branch, old, new) for branch, (old, new) in branches.items() if old != new]
        return ops, keep

    async def _keep_tip(self, branch: str, tip: str, moved_to: str | None, entry: str) -> str:
        message = f"adw branch tip\n\nadw-branch: {branch}\nadw-moved-to: {moved_to or '-'}\nadw-entry: {entry}\n"
        # The tip's own tree: an existing object (git knows the empty tree without storing it; fsck does not).
        return await self._commit(await self._tree_of(tip), [tip], message)

    async def changed_paths(self, entries: list[Checkpoint]) -> dict[str, frozenset[str]]:
        """Paths each checkpoint changed against the one before it (its HEAD for the first); cached per pair."""
        pairs = []
        previous: str | None = None
        for checkpoint in entries:
            # Trees on both sides: diff-tree --stdin reads "<commit> <tree>" as a commit and its parents.
            base = previous or (await self._tree_of(checkpoint.head) if checkpoint.head else EMPTY_TREE)
            pairs.append((checkpoint.commit, base, checkpoint.tree))
            previous = checkpoint.tree
        missing = [(c, b, t) for c, b, t in pairs if (t, b) not in self._changed_cache]
        if missing:
            groups = await self._diff_pairs([(b, t) for _, b, t in missing])
            for _, base, tree in missing:
                self._changed_cache[(tree, base)] = frozenset(c.path for c in groups.get((base, tree), ()))
        return {c: self._changed_cache[(t, b)] for c, b, t in pairs}

    async def _diff_pairs(
        self, pairs: list[tuple[str, str]], path: str | None = None
    ) -> dict[tuple[str, str], list[_Change]]:
        # Each pair once: records of a repeated pair would land in its one group twice.
        feed = "".join(f"{b} {t}\n" for b, t in dict.fromkeys(pairs))
        spec = ["--", f":(literal){path}"] if path is not None else []
        out = await git("diff-tree", "--stdin", "-r", "-z", "--no-renames", *spec, cwd=self.repo.root, input=feed)
        return _split_diff_tree(out.stdout)

    async def _versions_at(self, rel: str, entries: list[Checkpoint]) -> dict[str, tuple[tuple[str, str, str], ...]]:
        """What each checkpoint holds at `rel` (a file, or every file under a folder): empty when nothing."""
        groups = await self._diff_pairs([(EMPTY_TREE, c.tree) for c in entries], rel)
        return {
            c.commit: tuple((x.path, x.new_mode, x.new_oid) for x in groups.get((EMPTY_TREE, c.tree), []))
            for c in entries
        }


_RefOp = tuple[Literal["create", "delete", "update"], str, str | None, str | None]


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _git_date(when: datetime) -> str:
    return f"{int(when.timestamp())} +0000"


class CheckpointStores:
    """One long-lived store per worktree, for a process that serves many commands (the language server, the
    resident ADW): it keeps the checkpoints it has read, and the change tracker `track` gives it (an inotify watch)
    so that a snapshot looks only at what changed. Each `get` finds the worktree again and reloads the
    configuration (both reuse their answer while the files that decide it are unchanged), so a store never serves
    a worktree that was removed, moved or recreated (a removed one's tracker is released at the next `get`), nor
    an old configuration; a process of its own uses the same path with no tracker (`get` on a new instance)."""

    def __init__(self, track: Callable[[Repo], ChangeTracker | None] | None = None) -> None:
        self._track = track
        self._stores: dict[Path, Checkpoints] = {}
        self._lock = asyncio.Lock()

    async def get(self, worktree: str | os.PathLike[str]) -> Checkpoints:
        """The store of the worktree containing `worktree` (raises as `Checkpoints.open` does)."""
        repo = await Repo.discover(worktree)
        config = load_config(repo.main_root, repo.config_cache)
        async with self._lock:
            for root in [root for root in self._stores if not root.is_dir()]:  # removed worktrees: free their watches
                self._drop(root)
            store = self._stores.get(repo.root)
            if store is None or store.repo != repo:
                self._drop(repo.root)
                store = Checkpoints(repo, config)
                if self._track is not None:
                    store.tracker = await asyncio.to_thread(self._track, repo)
                self._stores[repo.root] = store
            store.config = config
            return store

    def close(self) -> None:
        """Release every store's tracker (a watch's file descriptor and kernel watches)."""
        for root in list(self._stores):
            self._drop(root)

    def _drop(self, root: Path) -> None:
        store = self._stores.pop(root, None)
        if store is not None and store.tracker is not None:
            store.tracker.close()


def _ref_line(op: _RefOp) -> str:
    verb, ref, new, old = op
    if verb == "create":
        return f"create {ref} {new}"
    if verb == "delete":
        return f"delete {ref} {old}"
    return f"update {ref} {new} {old or ''}".rstrip()


def _move(branch: str, old: str | None, new: str | None) -> _RefOp:
    if new is None:
        return ("delete", branch, None, old)
    return ("update", branch, new, old) if old else ("create", branch, new, None)


async def _rev_parse(root: Path, ref: str) -> str | None:
    found = await git("rev-parse", "-q", "--verify", f"{ref}^{{commit}}", cwd=root, ok_codes=(0, 1))
    return found.stdout.strip() or None


def _kept(kept: list[str]) -> str:
    if not kept:
        return ""
    return (f"; kept {len(kept)} file(s) as they are, because they changed while this ran or could not be "
            f"replaced: " + ", ".join(kept[:10]))


def _paused(exc: GitLockError) -> CheckpointError:
    return CheckpointError(
        f"{exc.message}; the undo/redo is paused with nothing lost",
        f"{exc.hint} (any checkpoint command, `adw checkpoints` too, finishes the paused undo/redo)",
    )


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


_Found = tuple[str, bytes | None]  # (mode, a symlink's target) of a file on disk


def _stat_key(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


def _inspect(root: Path, paths: list[str]) -> dict[str, _Found | None] | None:
    """What each path is on disk (None: absent), or None when one is not a plain file or symlink in folders of
    this repository (a folder, a path under a file, a nested repository) or may hold a carriage return (git's
    end-of-line conversion of a file depends on the version in the index)."""
    found: dict[str, _Found | None] = {}
    nested: dict[str, bool] = {}
    for rel in paths:
        if "\n" in rel or rel.startswith('"') or ".git" in rel.split("/"):  # hash-object reads lines, unquoted
            return None
        folder = os.path.dirname(rel)
        while folder:
            if folder not in nested:
                nested[folder] = os.path.lexists(root / folder / ".git")
            if nested[folder]:
                return None
            folder = os.path.dirname(folder)
        path = root / rel
        try:
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                found[rel] = ("120000", os.readlink(os.fsencode(path)))
            elif stat.S_ISREG(st.st_mode) and not _has_cr(path):
                found[rel] = ("100755" if st.st_mode & stat.S_IXUSR else "100644", None)
            else:
                return None
        except FileNotFoundError:
            found[rel] = None
        except OSError:
            return None  # e.g. a file where a folder on the path was
    return found


def _has_cr(path: Path) -> bool:
    with open(path, "rb") as handle:
        return any(b"\r" in chunk for chunk in iter(lambda: handle.read(1 << 20), b""))


def _is_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def _under(path: str, top: str) -> bool:
    """Whether `path` is `top` or inside the folder `top` (either may end with "/")."""
    path, top = path.rstrip("/"), top.rstrip("/")
    return path == top or path.startswith(top + "/")


def _parent_in(path: str, paths: set[str]) -> bool:
    return any(parent.as_posix() in paths for parent in Path(path).parents)


def _blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def _on_disk(path: Path) -> tuple[str, str] | None:
    """(mode, blob id) of a file or symlink as a tree would hold it; (000000, "") when absent; None otherwise."""
    try:
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            return "120000", _blob_id(os.readlink(os.fsencode(path)))
        if stat.S_ISREG(st.st_mode):
            return "100755" if st.st_mode & stat.S_IXUSR else "100644", _blob_id(path.read_bytes())
    except (FileNotFoundError, NotADirectoryError):
        return _NO_MODE, ""
    except OSError:
        pass
    return None


def _is(found: tuple[str, str] | None, mode: str, oid: str) -> bool:
    return found is not None and found[0] == mode and (mode == _NO_MODE or found[1] == oid)


def _matches(path: Path, mode: str, oid: str) -> bool:
    """Whether `path` on disk is exactly that tree entry (mode 000000: absent)."""
    return _is(_on_disk(path), mode, oid)


def _check_resource(exc: OSError, rel: str) -> None:
    if exc.errno in _RESOURCE_ERRORS:
        raise CheckpointError(
            f"could not write {rel}: {exc.strerror}; the undo/redo is paused with nothing lost",
            "free space (or make the disk writable), then run `adw checkpoints` to complete it",
        ) from exc


def _remove(root: Path, change: _Change, kept: list[str]) -> None:
    """Delete a file or symlink still at its source version, then the folders it emptied."""
    path = root / change.path
    if not _matches(path, change.old_mode, change.old_oid):
        if os.path.lexists(path):
            kept.append(change.path)
        return
    try:
        path.unlink()
    except OSError as exc:
        _check_resource(exc, change.path)
        kept.append(change.path)
        return
    for parent in path.parents:
        if parent == root or root not in parent.parents:
            break
        try:
            parent.rmdir()
        except OSError:
            break


def _place(root: Path, change: _Change, data: bytes, kept: list[str]) -> None:
    """Write the target version of a file still at its source version (or absent when the source lacks it) in
    one rename, so a kill leaves either version and never half a file."""
    path = root / change.path
    found = _on_disk(path)  # hashed once, compared with both versions
    if _is(found, change.new_mode, change.new_oid):
        return
    # A folder where the source had no file held the source's files, removed before this.
    if not (_is(found, change.old_mode, change.old_oid) or (change.old_mode == _NO_MODE and _is_dir(path))):
        kept.append(change.path)
        return
    tmp = path.with_name(f".{path.name}.adw-{os.getpid()}")
    try:
        parent = path.parent
        if parent != root and not _is_dir(parent):
            parent.mkdir(parents=True, exist_ok=True)  # fails where a kept file stands in the way
        if _is_dir(path):
            path.rmdir()  # emptied by the removals before; a folder with other files in it is kept
        tmp.unlink(missing_ok=True)
        if change.new_mode == "120000":
            os.symlink(data, tmp)
        else:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                         0o777 if change.new_mode == "100755" else 0o666)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        _check_resource(exc, change.path)
        kept.append(change.path)


def _split_diff_tree(out: str) -> dict[tuple[str, str], list[_Change]]:
    """`diff-tree --stdin -r -z` prints "<old> <new>\\n" before the records of each pair, also of a pair of equal
    trees (no records then), so one token can hold several headers before a record's ":modes oids status";
    the path is the token after it (a path may hold newlines)."""
    groups: dict[tuple[str, str], list[_Change]] = {}
    current: list[_Change] = []
    tokens = iter(out.split("\0"))
    for token in tokens:
        while header := _PAIR_HEADER.match(token):
            current = groups.setdefault((header.group(1), header.group(2)), [])
            token = token[header.end() :]
        if token.startswith(":"):
            old_mode, new_mode, old_oid, new_oid, _ = token[1:].split(" ")
            current.append(_Change(next(tokens), old_mode, old_oid, new_mode, new_oid))
    return groups


def trailers(contents: str) -> tuple[str, dict[str, str]]:
    """Split a commit message into the free text and its trailing `adw-*: value` paragraphs."""
    paragraphs = contents.rstrip("\n").split("\n\n")
    fields: dict[str, str] = {}
    while len(paragraphs) > 1 and all(line.startswith("adw-") and ": " in line for line in paragraphs[-1].splitlines()):
        fields = dict(line.split(": ", 1) for line in paragraphs.pop().splitlines()) | fields
    return "\n\n".join(paragraphs).strip(), fields


def _parse(refname: str, commit: str, tree: str, date: str, contents: str) -> Checkpoint:
    message, fields = trailers(contents)
    return Checkpoint(
        number=int(refname.rsplit("/", 1)[1]),
        commit=commit,
        tree=tree,
        message=message,
        created=datetime.fromisoformat(date) if date else datetime.now(UTC),
        kind="state" if fields.get("adw-kind") == "state" else "checkpoint",
        head=None if fields.get("adw-head", "-") == "-" else fields["adw-head"],
        branch=None if fields.get("adw-branch", "-") == "-" else fields["adw-branch"],
        index_tree=fields.get("adw-index-tree", EMPTY_TREE),
    )


def _describe(number: int, commit: str, state: State, message: str, kind: Kind, redo: bool) -> Checkpoint:
    return Checkpoint(
        number=number, commit=commit, tree=state.tree, message=message, created=datetime.now(UTC), kind=kind,
        head=state.head, branch=state.branch, index_tree=state.index_tree, redo=redo,
    )
