"""Checkpoints: a time machine inside one worktree.

A checkpoint is a commit whose tree is every tracked and untracked, non-ignored file of the worktree; its
parents are HEAD, a commit of the user's index (so a restore can put the index back) and whatever redo history
it replaced. Snapshots are built in a private shadow index (`GIT_INDEX_FILE`), so the user's index, stash,
branch and files are never touched. The undo stack lives under `refs/adw/checkpoints/<worktree>/<n>`, the redo
stack under `refs/adw/redo/<worktree>/<n>`; both survive restarts and `git gc`, and every ref change is one
atomic `update-ref --stdin` transaction with old-value checks.

Numbers only grow, and every checkpoint on the undo stack is older than everything on the redo stack, so the
top of the undo stack is its highest number and the next redo is the redo stack's lowest.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from adw.config import AdwConfig, load_config
from adw.errors import CheckpointError, GitError
from adw.git.refs import read_head
from adw.git.repo import Repo
from adw.git.runner import git

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
UNDO_NS = "refs/adw/checkpoints"
REDO_NS = "refs/adw/redo"
# Checkpoints are ADW's own bookkeeping; a fixed identity works on machines with no git identity configured.
ADW_IDENTITY = {
    "GIT_AUTHOR_NAME": "ADW",
    "GIT_AUTHOR_EMAIL": "adw@localhost",
    "GIT_COMMITTER_NAME": "ADW",
    "GIT_COMMITTER_EMAIL": "adw@localhost",
}

Kind = Literal["checkpoint", "state"]


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
    message: str


class FileUndoResult(BaseModel):
    path: str
    restored_from: Checkpoint
    deleted: bool
    saved: Checkpoint | None
    message: str


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
        self.shadow_index = repo.private_dir / "shadow-index"
        # Both caches are keyed by immutable object ids, so they never go stale.
        self._changed_cache: dict[tuple[str, str], frozenset[str]] = {}
        self._tree_cache: dict[str, str] = {}

    @classmethod
    async def open(cls, path: str | os.PathLike[str] = ".") -> Checkpoints:
        repo = await Repo.discover(path)
        return cls(repo, load_config(repo.main_root))

    # ---------------------------------------------------------------- reading

    async def history(self, file: str | None = None, include_redo: bool = False) -> list[Checkpoint]:
        """The undo stack, oldest first (plus the redo stack when asked); with `file`, only checkpoints that
        changed that file compared with the checkpoint before them."""
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
        raise CheckpointError(f"there is no checkpoint {number}", "list them with `adw checkpoints`")

    async def diff(self, a: int, b: int | None = None, stat: bool = False) -> str:
        """Patch from checkpoint `a` to checkpoint `b`, or to the current files when `b` is None."""
        old = (await self.get(a)).tree
        new = (await self.get(b)).tree if b is not None else (await self.snapshot())[0].tree
        args = ["diff", "--no-color", "--no-ext-diff", "-M", *(["--stat"] if stat else []), old, new]
        return (await git(*args, cwd=self.repo.root)).stdout

    # ---------------------------------------------------------------- writing

    async def checkpoint(self, message: str = "") -> CheckpointResult:
        (undo, redo), (state, skipped) = await asyncio.gather(self.stacks(), self.snapshot())
        if undo and state.same_as(undo[-1]):
            return CheckpointResult(
                created=False,
                checkpoint=undo[-1],
                skipped=skipped,
                message=f"nothing changed since checkpoint {undo[-1].number}; no checkpoint made",
            )
        number = self._next_number(undo, redo)
        commit = await self.commit_state(state, message or f"checkpoint {number}", "checkpoint", folded=redo)
        create: _RefOp = ("create", self._undo_ns + f"{number:06d}", commit, None)
        await self._transaction([create, *self._clear(redo)])
        made = _describe(number, commit, state, message or f"checkpoint {number}", "checkpoint", redo=False)
        return CheckpointResult(created=True, checkpoint=made, skipped=skipped, message=f"checkpoint {number} made")

    async def undo(self, to: int | None = None) -> RestoreResult:
        """Return to the latest checkpoint if the worktree differs from it, else to the one before;
        `to` picks any checkpoint on the undo stack. The current state is saved first so `redo` returns to it."""
        (undo, redo), (state, skipped) = await asyncio.gather(self.stacks(), self.snapshot())
        if not undo:
            raise CheckpointError("there is no checkpoint to undo to", "make one first with `adw checkpoint`")
        ops: list[_RefOp] = []
        saved: Checkpoint | None = None
        if not state.same_as(undo[-1]):
            # Unsaved changes: they become the newest redo entry; the redo history they replace stays reachable.
            number = self._next_number(undo, redo)
            commit = await self.commit_state(state, "state before undo", "state", folded=redo)
            ops += [*self._clear(redo), ("create", self._redo_ns + f"{number:06d}", commit, None)]
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
            )
        for later in (c for c in undo if c.number > target.number):
            ops += [("delete", self._undo_ns + f"{later.number:06d}", None, later.commit),
                    ("create", self._redo_ns + f"{later.number:06d}", later.commit, None)]
        await self._restore(state, target, ops)
        return RestoreResult(
            restored=target,
            saved=saved,
            skipped=skipped,
            message=f"restored checkpoint {target.number}" + (" (current state saved for redo)" if saved else ""),
        )

    async def redo(self) -> RestoreResult:
        (undo, redo), (state, skipped) = await asyncio.gather(self.stacks(), self.snapshot())
        if not redo:
            raise CheckpointError("there is nothing to redo", "redo follows an `adw undo`")
        if undo and not state.same_as(undo[-1]):
            raise CheckpointError(
                f"files changed since checkpoint {undo[-1].number} was restored, so redo would overwrite them",
                "keep them with `adw checkpoint` (this ends the redo history) or set them aside with `adw undo`",
            )
        target = redo[0]
        ops: list[_RefOp] = [
            ("delete", self._redo_ns + f"{target.number:06d}", None, target.commit),
            ("create", self._undo_ns + f"{target.number:06d}", target.commit, None),
        ]
        await self._restore(state, target, ops)
        return RestoreResult(restored=target, saved=None, skipped=skipped, message=f"redid to {target.number}")

    async def undo_file(self, file: str, to: int | None = None) -> FileUndoResult:
        """Restore one path to its content at a checkpoint (default: the latest one where it differs).
        The state before is checkpointed, so a plain `undo` brings the file back."""
        full, rel = self._path(file)
        made = await self.checkpoint(f"before undo of {rel}")
        saved = made.checkpoint if made.created else None
        undo, _ = await self.stacks()
        blobs = await self._blobs_at(rel, undo)
        current = blobs[undo[-1].commit]
        if to is not None:
            target = next((c for c in undo if c.number == to), None)
            if target is None:
                raise CheckpointError(f"checkpoint {to} is not on the undo stack", "see `adw checkpoints`")
        else:
            target = next((c for c in reversed(undo) if blobs[c.commit] != current), None)
            if target is None:
                raise CheckpointError(f"no checkpoint has a different version of {rel}", "nothing to undo")
        deleted = blobs[target.commit] is None
        env = {"GIT_INDEX_FILE": str(self.shadow_index)}
        if deleted:
            # The target proves the file did not exist then; its current content is in the checkpoint above.
            if full.is_symlink() or full.is_file():
                full.unlink()
            await git("rm", "-q", "--cached", "--ignore-unmatch", "--", f":(literal){rel}", cwd=self.repo.root, env=env)
        else:
            await git("checkout", target.commit, "--", f":(literal){rel}", cwd=self.repo.root, env=env)
        verb = "deleted" if deleted else "restored"
        return FileUndoResult(
            path=rel, restored_from=target, deleted=deleted, saved=saved,
            message=f"{verb} {rel} as of checkpoint {target.number}",
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
        fmt = "%(refname)%00%(objectname)%00%(tree)%00%(committerdate:iso-strict)%00%(contents)%01"
        out = (await git("for-each-ref", f"--format={fmt}", self._undo_ns, self._redo_ns, cwd=self.repo.root)).stdout
        undo: list[Checkpoint] = []
        redo: list[Checkpoint] = []
        for record in out.split("\x01"):
            record = record.lstrip("\n")
            if not record:
                continue
            refname, commit, tree, date, contents = record.split("\x00", 4)
            checkpoint = _parse(refname, commit, tree, date, contents)
            if refname.startswith(self._redo_ns):
                redo.append(checkpoint.model_copy(update={"redo": True}))
            else:
                undo.append(checkpoint)
        undo.sort(key=lambda c: c.number)
        redo.sort(key=lambda c: c.number)
        return undo, redo

    @staticmethod
    def _next_number(undo: list[Checkpoint], redo: list[Checkpoint]) -> int:
        return max((c.number for c in undo + redo), default=0) + 1

    def _clear(self, redo: list[Checkpoint]) -> list[_RefOp]:
        """Drop the redo stack; the caller's new commit lists these as parents, so nothing becomes unreachable."""
        return [("delete", self._redo_ns + f"{c.number:06d}", None, c.commit) for c in redo]

    async def snapshot(self) -> tuple[State, list[str]]:
        """Write the worktree's files into the shadow index and return the state with the paths left out."""
        root = self.repo.root
        env = {"GIT_INDEX_FILE": str(self.shadow_index)}
        if not self.shadow_index.exists():
            # Seeding from the real index gives the stat data, so only files changed since are hashed.
            self.shadow_index.parent.mkdir(parents=True, exist_ok=True)
            real = self.repo.git_dir / "index"
            if real.exists():
                shutil.copyfile(real, self.shadow_index)
        new_untracked = (await git("ls-files", "-z", "-o", "--exclude-standard", cwd=root, env=env)).stdout
        skipped = list(self._too_big_or_nested(p for p in new_untracked.split("\0") if p))
        excludes = [f":(exclude,literal){p.rstrip('/')}" for p in skipped]
        await git("add", "-A", "--", ".", *excludes, cwd=root, env=env)
        tree = (await git("write-tree", cwd=root, env=env)).stdout.strip()
        head, branch = read_head(self.repo.git_dir, self.repo.common_dir)
        return State(tree, await self._index_tree(), head, branch), skipped

    def _too_big_or_nested(self, paths: Iterable[str]) -> Iterable[str]:
        cap = self.config.checkpoint.max_untracked_size
        for rel in paths:
            if rel.endswith("/"):
                yield rel  # git lists a nested repository as one folder; it is left exactly as it is
                continue
            with contextlib.suppress(OSError):
                if os.lstat(self.repo.root / rel).st_size > cap:
                    yield rel

    async def _index_tree(self) -> str:
        """The tree of the user's index, written from a copy so the real one is never locked or rewritten.
        Cached by the index file's identity: the index rarely changes between checkpoints."""
        real = self.repo.git_dir / "index"
        try:
            st = real.stat()
        except FileNotFoundError:
            return EMPTY_TREE
        signature = [st.st_mtime_ns, st.st_size, st.st_ino]
        cache = self.repo.private_dir / "index-tree.json"
        with contextlib.suppress(OSError, ValueError):
            cached = json.loads(cache.read_text())
            if cached["signature"] == signature:
                return str(cached["tree"])
        copy = self.repo.private_dir / "index-copy"
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

    async def commit_state(self, state: State, message: str, kind: Kind, folded: list[Checkpoint]) -> str:
        root = self.repo.root
        parents = [state.head] if state.head else []
        head_tree = await self._tree_of(state.head) if state.head else EMPTY_TREE
        if state.index_tree != head_tree:
            index_parent = ["-p", state.head] if state.head else []
            index_commit = await git(
                "commit-tree", state.index_tree, *index_parent, "-m", "adw index", cwd=root, env=ADW_IDENTITY
            )
            parents.append(index_commit.stdout.strip())
        parents += [c.commit for c in folded]
        trailer = (
            f"\n\nadw-kind: {kind}\nadw-branch: {state.branch or '-'}\n"
            f"adw-head: {state.head or '-'}\nadw-index-tree: {state.index_tree}\n"
        )
        args = ["commit-tree", state.tree, *(arg for p in dict.fromkeys(parents) for arg in ("-p", p))]
        result = await git(*args, cwd=root, env=ADW_IDENTITY, input=message + trailer)
        return result.stdout.strip()

    async def _tree_of(self, commit: str) -> str:
        if commit not in self._tree_cache:
            self._tree_cache[commit] = (await git("rev-parse", f"{commit}^{{tree}}", cwd=self.repo.root)).stdout.strip()
        return self._tree_cache[commit]

    async def _transaction(self, ops: list[_RefOp]) -> None:
        if not ops:  # e.g. undo to the checkpoint the worktree is already at; update-ref rejects empty input
            return
        lines = []
        for verb, ref, new, old in ops:
            if verb == "create":
                lines.append(f"create {ref} {new}")
            elif verb == "delete":
                lines.append(f"delete {ref} {old}")
            else:
                lines.append(f"update {ref} {new} {old or ''}".rstrip())
        try:
            await git("update-ref", "--stdin", cwd=self.repo.root, input="\n".join(lines) + "\n")
        except GitError as exc:
            raise CheckpointError(
                "the checkpoints changed while this ran (another undo or checkpoint?)", "run the command again"
            ) from exc

    async def _restore(self, current: State, target: Checkpoint, ops: list[_RefOp]) -> None:
        """Save the ref moves (and the redo point) first, then files, index and HEAD."""
        root = self.repo.root
        env = {"GIT_INDEX_FILE": str(self.shadow_index)}
        # One pass over the differences: "D" = the target has it, the snapshot lacks it; "A" = the reverse.
        listed = (await git("diff-index", "--cached", "--name-status", "-z", "--diff-filter=AD", target.tree,
                            cwd=root, env=env)).stdout.split("\0")
        by_status: dict[str, list[str]] = {"A": [], "D": []}
        for status, path in zip(listed[0::2], listed[1::2], strict=False):
            by_status[status].append(path)
        # Files the target has but the snapshot lacks exist on disk only if ignored or skipped: never overwrite them.
        present = [p for p in by_status["D"] if os.path.lexists(root / p)]
        blocking = await self._differing(target.tree, present)
        if blocking:
            raise CheckpointError(
                "restoring would overwrite files that no checkpoint holds (ignored or too big): "
                + ", ".join(blocking[:10]),
                "move them aside, or checkpoint them (`git add -f` is not needed: rename them), then undo again",
            )
        if target.head != current.head or target.branch != current.branch:
            ops = ops + await self._head_ops(current, target)
        await self._transaction(ops)
        if present:  # identical to the target's version (e.g. ignored since): adopt them as they are
            await git("add", "-f", "--", *(f":(literal){p}" for p in present), cwd=root, env=env)
        # Paths the target lacks are taken out of the index so read-tree leaves them; only those the target's
        # own ignore rules do not ignore are proven created after it (a changed .gitignore proves nothing).
        gone = by_status["A"]
        if gone:
            await git("update-index", "-z", "--force-remove", "--stdin", cwd=root, env=env, input="\0".join(gone))
        await git("read-tree", "-u", "-m", target.tree, cwd=root, env=env)
        if gone:
            check = await git("check-ignore", "-z", "--stdin", cwd=root, env=env, input="\0".join(gone),
                              ok_codes=(0, 1))
            ignored = set(check.stdout.split("\0"))
            _delete(root, [p for p in gone if p not in ignored])
        if target.index_tree != current.index_tree:
            await git("read-tree", "--reset", target.index_tree, cwd=root)

    async def _differing(self, tree: str, paths: list[str]) -> list[str]:
        """The paths whose file on disk is not exactly (content and mode) the version in `tree`."""
        if not paths:
            return []
        listed = await git("ls-tree", "-z", tree, "--", *paths, cwd=self.repo.root)
        wanted = {}
        for entry in listed.stdout.split("\0"):
            if entry:
                meta, _, path = entry.partition("\t")
                mode, _, oid = meta.split(" ")
                wanted[path] = (mode, oid)
        files = [p for p in paths if not os.path.islink(self.repo.root / p) and os.path.isfile(self.repo.root / p)]
        oids = (await git("hash-object", "--", *files, cwd=self.repo.root)).lines if files else []
        on_disk = {
            p: ("100755" if os.access(self.repo.root / p, os.X_OK) else "100644", oid)
            for p, oid in zip(files, oids, strict=True)
        }
        return [p for p in paths if on_disk.get(p) is None or on_disk[p] != wanted.get(p)]

    async def _head_ops(self, current: State, target: Checkpoint) -> list[_RefOp]:
        if target.branch != current.branch:
            # Moving between branches: point HEAD at the checkpoint's branch before moving that branch.
            if target.branch:
                await git("symbolic-ref", "HEAD", target.branch, cwd=self.repo.root)
            else:
                await git("update-ref", "--no-deref", "HEAD", target.head or "", cwd=self.repo.root)
                return []
            old = (await git("rev-parse", "-q", "--verify", target.branch, cwd=self.repo.root, ok_codes=(0, 1)))
            old_id = old.stdout.strip() or None
        else:
            old_id = current.head
        ref = target.branch or "HEAD"
        if target.head is None:
            return [("delete", ref, None, old_id)] if old_id else []
        if old_id is None:
            return [("create", ref, target.head, None)]
        return [("update", ref, target.head, old_id)]

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
            feed = "".join(f"{b} {t}\n" for _, b, t in missing)
            out = (await git("diff-tree", "--stdin", "-r", "--name-only", "-z", cwd=self.repo.root, input=feed)).stdout
            groups = _split_diff_tree(out)
            for _, base, tree in missing:
                self._changed_cache[(tree, base)] = frozenset(groups.get((base, tree), ()))
        return {c: self._changed_cache[(t, b)] for c, b, t in pairs}

    async def _blobs_at(self, rel: str, entries: list[Checkpoint]) -> dict[str, str | None]:
        feed = "".join(f"{c.commit}:{rel}\n" for c in entries)
        out = (await git("cat-file", "--batch-check=%(objectname) %(objecttype)", cwd=self.repo.root, input=feed))
        blobs: dict[str, str | None] = {}
        for checkpoint, line in zip(entries, out.stdout.splitlines(), strict=True):
            oid, _, kind = line.partition(" ")
            blobs[checkpoint.commit] = oid if kind in ("blob", "commit") else None
        return blobs


_RefOp = tuple[Literal["create", "delete", "update"], str, str | None, str | None]


def _delete(root: Path, paths: list[str]) -> None:
    """Delete files and symlinks (never folders: a submodule or nested repository stays), then emptied folders."""
    for rel in paths:
        path = root / rel
        if path.is_symlink() or path.is_file():
            path.unlink()
        for parent in path.parents:
            if parent == root or root not in parent.parents:
                break
            try:
                parent.rmdir()
            except OSError:
                break


def _split_diff_tree(out: str) -> dict[tuple[str, str], list[str]]:
    """`diff-tree --stdin -z` prints "<old> <new>\n" before the paths of each pair, also of a pair of equal trees
    (no paths then), so one token can hold several headers before its path."""
    groups: dict[tuple[str, str], list[str]] = {}
    current: list[str] = []
    for token in out.split("\0"):
        *headers, path = token.split("\n")
        for header in headers:
            old, _, new = header.partition(" ")
            current = groups.setdefault((old, new), [])
        if path:
            current.append(path)
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
