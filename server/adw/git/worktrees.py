"""Worktrees: one isolated checkout and branch per agent, created, listed, merged, archived and removed safely.

Nothing here deletes work that is neither merged nor saved to a ref: `remove` refuses dirty, untracked or
unmerged work unless told to `--archive` it (saved under `refs/adw/archive/<name>/<time>`) or `--force`.
Removal answers at once: the folder is renamed into a trash folder and deleted in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import filecmp
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from adw.config import AdwConfig, load_config
from adw.errors import GitError, InvalidNameError, UnsafeOperationError, WorktreeError
from adw.fsutil import check_inside, disk_usage, write_inside
from adw.git.changes import ChangedFile, changed_files
from adw.git.checkpoints import ADW_IDENTITY, Checkpoints, ref_id, trailers
from adw.git.locks import Owner, repo_lock
from adw.git.pool import Pool, PoolEntry
from adw.git.refs import (
    ARCHIVE_NS,
    JOURNAL_NS,
    POOL_FOLDER,
    REDO_NS,
    SNAPSHOT_NS,
    TIPS_NS,
    TRASH_DIR,
    UNDO_NS,
    WORKTREE_META_DIR,
    WORKTREES_LOCK,
    count_refs,
    list_refs,
    resolve_ref,
)
from adw.git.repo import MAIN_WORKTREE_ID, Repo
from adw.git.runner import git

# A name becomes a folder name, `<name>.json` and `<name>-<time>` in the trash: keep clear of the 255-byte limit.
MAX_NAME_BYTES = 200
_REF_FORBIDDEN = frozenset(" ~^:?*[\\")
_NAME_HINT = "use letters, digits, '-', '_' and '.', e.g. `fix-login` (git's rules for branch names apply)"
Strategy = Literal["merge", "squash", "rebase"]


class SetupResult(BaseModel):
    command: list[str]
    returncode: int
    output: str


class WorktreeInfo(BaseModel):
    name: str
    path: Path
    branch: str | None
    head: str | None
    base: str | None = None
    is_main: bool = False
    managed: bool = False
    locked: bool = False
    lock_reason: str | None = None
    prunable: bool = False
    complete: bool = True  # False: a create that was interrupted; the next create or `prune` cleans it
    checkpoints: int = 0
    ports: list[int] = []
    dirty: bool | None = None
    ahead: int | None = None
    behind: int | None = None
    disk_bytes: int | None = None
    pool: bool = False  # a prewarmed worktree of the pool, not yet taken (listed only when asked for)


class CreateResult(BaseModel):
    worktree: WorktreeInfo
    env: dict[str, str]
    included: list[str]
    setup: SetupResult | None
    message: str


class MergePreview(BaseModel):
    source: str
    target: str
    clean: bool
    conflicts: list[str]
    tree: str
    files: list[ChangedFile] = []  # what the branch brings since it left the target
    insertions: int = 0
    deletions: int = 0
    diffstat: str = ""  # `git diff --stat`, for people


class MergeResult(BaseModel):
    preview: MergePreview
    merged: bool
    strategy: Strategy
    commit: str | None
    message: str


class RemoveResult(BaseModel):
    name: str
    path: Path
    archive_ref: str | None
    branch_deleted: bool
    message: str


class PruneResult(BaseModel):
    pruned_entries: list[str]
    half_made: list[Path] = []
    pool_discarded: list[Path] = []  # pool worktrees that no longer fit (adw.git.pool)
    orphan_folders: list[Path]
    trash_emptied: list[Path]
    message: str


class _Meta(BaseModel):
    """What ADW remembers of a worktree it created; lives in the shared git dir, never in the tree.

    Written before anything else exists (the create's intent) and marked complete last, so a create killed
    half-way is recognised by the next command and cleaned: a create is all or nothing."""

    name: str
    path: Path
    branch: str
    base: str
    slot: int
    created: datetime
    complete: bool = True
    owner_pid: int = 0
    owner_started: float = 0.0
    new_branch: bool = False  # the create made the branch; undoing it deletes it if it has not moved
    base_commit: str = ""
    created_for: str | None = None  # who asked (a workflow id): a rerun by the same one adopts the worktree
    pool_path: Path | None = None  # taken from the pool: where its folder was until the create completes

    def abandoned(self) -> bool:
        """A create that did not finish and whose process is gone."""
        return not self.complete and not Owner(self.owner_pid, self.owner_started).alive()


class Worktrees:
    """Worktrees of one repository. Create with `await Worktrees.open(path)` from any path inside it."""

    def __init__(self, repo: Repo, config: AdwConfig) -> None:
        self.repo = repo
        self.main_root = repo.main_root
        self.config = config
        self._meta_dir = repo.adw_dir / WORKTREE_META_DIR
        self._meta_cache: tuple[int, dict[str, _Meta]] | None = None
        self._linked_ids: dict[str, str | None] = {}
        self._linked_stamp = -1
        self.pool = Pool(self)

    @classmethod
    async def open(cls, path: str | os.PathLike[str] = ".") -> Worktrees:
        repo = await Repo.discover(path)
        return cls(repo, load_config(repo.main_root, repo.config_cache))

    @property
    def root(self) -> Path:
        configured = self.config.worktree.root.format(repo=self.main_root.name)
        return (self.main_root / configured).resolve()

    # ---------------------------------------------------------------- create

    async def create(
        self, name: str, base: str | None = None, branch: str | None = None, created_for: str | None = None,
        pool: bool = True,
    ) -> CreateResult:
        """Create worktree `name`, all or nothing. `created_for` names the caller (a workflow id): when that
        caller runs create again (a resumed workflow), the worktree it made is adopted instead of refused.
        With `pool`, a prewarmed worktree of the same environment is taken when there is one (adw.git.pool),
        and the pool is refilled in the background."""
        self._validate_name(name)
        branch = branch or self.config.worktree.branch_prefix + name
        self._validate_branch(branch)
        path = self.root / name
        base_ref = base or await self.main_branch() or "HEAD"
        base_commit = (None if base else self._branch_commit(base_ref)) or await self._resolve(
            base_ref, f"--base {base_ref}")
        pool = pool and self.pool.enabled
        ready = self.pool.ready_entries() if pool else []
        key = await self.pool.key(base_commit, ready) if ready else None
        # `worktree add` is not safe to run concurrently; registering is quick, the checkout runs outside the lock.
        async with repo_lock(self.repo.adw_dir / WORKTREES_LOCK):
            earlier = self._meta_of(name)
            if earlier is not None and earlier.complete and created_for and earlier.created_for == created_for:
                return await self._adopt(earlier)
            if earlier is not None and earlier.abandoned():
                await self._undo_create(earlier)
            elif earlier is not None and not earlier.complete:
                raise WorktreeError(f"worktree {name} is being created by process {earlier.owner_pid}",
                                    "wait for it to finish")
            if path.exists() or path.is_symlink():
                hint = f"pick another name, or remove it: `adw worktree remove {name}`"
                raise WorktreeError(f"{path} already exists", hint, "pick another name, or remove that folder")
            await self._drop_stale_entries(path)
            new_branch = self._branch_commit(branch) is None
            # Only a new branch starts where a pool worktree can be moved to (an existing one may be anywhere).
            entry = self.pool.claim(key, base_commit) if key and new_branch else None
            owner = Owner.me()
            meta = _Meta(name=name, path=path, branch=branch, base=base_ref, slot=self._free_slot(),
                         created=datetime.now(UTC), complete=False, owner_pid=owner.pid, owner_started=owner.started,
                         new_branch=new_branch, base_commit=base_commit, created_for=created_for,
                         pool_path=entry.path if entry else None)
            self._write_meta(meta)
            path.parent.mkdir(parents=True, exist_ok=True)
            if entry:
                add = ["worktree", "move", entry.path.as_posix(), path.as_posix()]
            else:
                add = ["worktree", "add", "-q", "--no-checkout"]
                add += [path.as_posix(), branch] if not meta.new_branch else ["-b", branch, path.as_posix(),
                                                                              base_commit]
            try:
                await git(*add, cwd=self.main_root)
            except GitError as exc:
                await self._undo_create(meta)
                if not entry:
                    raise WorktreeError(f"could not create worktree {name}: {exc.stderr}",
                                        _hint_for(exc.stderr)) from None
                entry = None
        if meta.pool_path and entry is None:  # the pool's worktree could not be moved: a plain create
            return await self.create(name, base, branch, created_for, pool=False)
        try:
            result = await (self._take(meta, entry) if entry else self._complete(meta))
        except BaseException as exc:
            await asyncio.shield(self._undo_create(meta))  # all or nothing, also when cancelled
            if entry and isinstance(exc, Exception):  # the pool is only a shortcut: a plain create instead
                return await self.create(name, base, branch, created_for, pool=False)
            if isinstance(exc, OSError | GitError):
                detail = exc.stderr if isinstance(exc, GitError) else f"{exc.strerror}: {exc.filename or ''}"
                raise WorktreeError(f"could not create worktree {name}: {detail}; nothing was left behind",
                                    "free some disk space if it is full, then create it again") from None
            raise
        if pool:
            self.pool.refill_in_background()
        return result

    async def default_base(self) -> str:
        """The commit new worktrees start from by default: the main worktree's branch (or HEAD)."""
        ref = await self.main_branch() or "HEAD"
        return self._branch_commit(ref) or await self._resolve(ref, ref)

    async def _complete(self, meta: _Meta) -> CreateResult:
        """Check out the files, copy the include files, run the setup; then mark the worktree complete."""
        path = meta.path
        await git("reset", "-q", "--hard", cwd=path)
        info = WorktreeInfo(name=meta.name, path=path, branch=meta.branch, head=meta.base_commit, base=meta.base,
                            managed=True, ports=self._ports(meta.slot))
        env = self.env_for(info)
        included = await asyncio.to_thread(self.copy_included, path, await self.included_files())
        setup = await self.run_setup(path, env)
        self._write_meta(meta.model_copy(update={"complete": True}))
        return _created(meta, info, env, included, setup, "")

    async def _take(self, meta: _Meta, entry: PoolEntry) -> CreateResult:
        """Finish a create from a pool worktree already moved to its folder: the new branch at the base (a
        checkout of only the files that differ from the pool worktree's base), the folder's old path rewritten
        where the setup wrote it, the include files copied again (they may have changed since). Its setup ran
        when the pool filled it."""
        path = meta.path
        if entry.base_commit == meta.base_commit:
            # Already at the base: making the branch there and pointing HEAD at it touches no file, where
            # `git switch -c` compares the whole index (a cost that grows with the repository). A kill between
            # the two leaves what a killed switch would: the new branch at the base, which the undo deletes.
            await git("update-ref", f"refs/heads/{meta.branch}", meta.base_commit, "", cwd=path)
            await git("symbolic-ref", "HEAD", f"refs/heads/{meta.branch}", cwd=path)
        else:
            await git("switch", "-q", "--no-track", "-c", meta.branch, meta.base_commit, cwd=path)
        await asyncio.to_thread(Pool.relocate, entry, path)
        info = WorktreeInfo(name=meta.name, path=path, branch=meta.branch, head=meta.base_commit, base=meta.base,
                            managed=True, ports=self._ports(meta.slot))
        included = await asyncio.to_thread(self.copy_included, path, await self.included_files())
        command = self.config.worktree.setup
        setup = SetupResult(command=command, returncode=0, output=entry.setup_output) if command else None
        self._write_meta(meta.model_copy(update={"complete": True, "pool_path": None}))
        moved = "" if entry.base_commit == meta.base_commit else f", moved from {entry.base_commit[:10]}"
        return _created(meta, info, self.env_for(info), included, setup, f"taken from the pool, set up ahead{moved}")

    async def _adopt(self, meta: _Meta) -> CreateResult:
        head = await git("rev-parse", "HEAD", cwd=meta.path)
        info = WorktreeInfo(name=meta.name, path=meta.path, branch=meta.branch, head=head.stdout.strip(),
                            base=meta.base, managed=True, ports=self._ports(meta.slot))
        return CreateResult(worktree=info, env=self.env_for(info), included=[], setup=None,
                            message=f"kept {meta.path} on {meta.branch}, made earlier by this run")

    async def _undo_create(self, meta: _Meta) -> None:
        """Take back everything an unfinished create made: the folder, git's entry, the branch if the create
        made it and it has not moved since, and the intent record last (so a kill here is retried)."""
        for folder in (meta.path, *([meta.pool_path] if meta.pool_path else [])):
            for admin in self.admin_dirs_of(folder):
                if not await self.move_to_trash(admin, trash=meta.path.parent / TRASH_DIR):
                    await asyncio.to_thread(shutil.rmtree, admin, True)
            if (folder.exists() or folder.is_symlink()) and not await self.move_to_trash(folder):
                await asyncio.to_thread(shutil.rmtree, folder, True)
        if meta.new_branch:
            await git("update-ref", "-d", f"refs/heads/{meta.branch}", meta.base_commit, cwd=self.main_root,
                      ok_codes=(0, 1, 128))
        (self._meta_dir / f"{meta.name}.json").unlink(missing_ok=True)

    async def _drop_stale_entries(self, path: Path) -> None:
        """git's entries for a folder that is gone (a removal interrupted after the folder went) are dropped,
        as `git worktree prune` would, except locked ones (a worktree on a drive that is not mounted)."""
        for admin in self.admin_dirs_of(path):
            if not (admin / "locked").exists():
                await asyncio.to_thread(shutil.rmtree, admin, True)

    def admin_dirs_of(self, path: Path) -> list[Path]:
        """git's admin folders for a worktree at `path` (`worktree add` makes one before the folder itself)."""
        admin_root = self.repo.common_dir / "worktrees"
        found = []
        with contextlib.suppress(OSError):
            for admin in admin_root.iterdir():
                with contextlib.suppress(OSError):
                    if Path((admin / "gitdir").read_text(encoding="utf-8").strip()).parent == path:
                        found.append(admin)
        return found

    def env_for(self, info: WorktreeInfo) -> dict[str, str]:
        """Environment variables given to every agent that runs in this worktree."""
        env = {"ADW_WORKTREE": info.name, "ADW_WORKTREE_PATH": str(info.path)}
        if info.ports:
            env |= {"ADW_PORT_BASE": str(info.ports[0]), "ADW_PORT_COUNT": str(len(info.ports)),
                    "PORT": str(info.ports[0])}
        return env

    @staticmethod
    def _validate_name(name: str) -> None:
        """A worktree name is a folder name and the last part of a branch name: refused before anything exists."""
        problem = (
            "it is empty" if not name
            else f"it is longer than {MAX_NAME_BYTES} bytes" if len(name.encode()) > MAX_NAME_BYTES
            else "it cannot start with '-', '.' or '@' ('@main' names the main worktree)" if name[0] in "-.@"
            else "it cannot contain '/' or '\\'" if "/" in name or "\\" in name
            else "it is ADW's trash folder" if name == TRASH_DIR
            else ref_name_problem(name)
        )
        if problem:
            raise InvalidNameError(f"invalid worktree name {name!r}: {problem}", _NAME_HINT)

    @staticmethod
    def _validate_branch(branch: str) -> None:
        problem = (
            "it cannot start with '-'" if branch.startswith("-")
            else "'HEAD' is not a branch name" if branch == "HEAD"
            else ref_name_problem(branch)
        )
        if problem:
            raise InvalidNameError(f"invalid branch name {branch!r}: {problem}", _NAME_HINT)

    async def _resolve(self, ref: str, what: str) -> str:
        result = await git("rev-parse", "-q", "--verify", f"{ref}^{{commit}}", cwd=self.main_root, ok_codes=(0, 1))
        if result.returncode != 0:
            raise WorktreeError(f"{what}: {ref!r} is not a commit in this repository", "pass a branch, tag or commit")
        return result.stdout.strip()

    async def main_branch(self) -> str | None:
        """The main worktree's branch (None when detached), read from its HEAD file like `git symbolic-ref`."""
        with contextlib.suppress(OSError):
            head = (self.repo.common_dir / "HEAD").read_text(encoding="utf-8").strip()
            if not head.startswith("ref: "):
                return None
            if head.startswith("ref: refs/heads/"):
                return head.removeprefix("ref: refs/heads/")
        out = (await git("symbolic-ref", "-q", "--short", "HEAD", cwd=self.main_root, ok_codes=(0, 1))).stdout
        return out.strip() or None

    def _branch_commit(self, branch: str) -> str | None:
        """The commit of local branch `branch`, read in-process; None when there is none (then ask git)."""
        return resolve_ref(self.repo.common_dir, self.repo.common_dir, f"refs/heads/{branch}")

    def _free_slot(self) -> int:
        """The lowest port slot no worktree uses; the caller holds the repository lock."""
        taken = {meta.slot for meta in self._all_meta().values()}
        return next(i for i in range(len(taken) + 1) if i not in taken)

    def _write_meta(self, meta: _Meta) -> None:
        write_inside(self.repo.adw_dir, f"{WORKTREE_META_DIR}/{meta.name}.json", meta.model_dump_json())

    def _meta_of(self, name: str) -> _Meta | None:
        with contextlib.suppress(OSError, ValueError):
            return _Meta.model_validate_json((self._meta_dir / f"{name}.json").read_text(encoding="utf-8"))
        return None

    def _all_meta(self) -> dict[str, _Meta]:
        # Meta files are only ever created or deleted, both of which change the folder's mtime.
        try:
            stamp = self._meta_dir.stat().st_mtime_ns
        except FileNotFoundError:
            return {}
        if self._meta_cache is not None and self._meta_cache[0] == stamp:
            return self._meta_cache[1]
        metas: dict[str, _Meta] = {}
        if self._meta_dir.is_dir():
            for file in self._meta_dir.glob("*.json"):
                with contextlib.suppress(OSError, ValueError):
                    meta = _Meta.model_validate_json(file.read_text(encoding="utf-8"))
                    metas[str(meta.path)] = meta
        self._meta_cache = (stamp, metas)
        return metas

    def _ports(self, slot: int) -> list[int]:
        ports = self.config.worktree.ports
        start = ports.base + slot * ports.size
        return list(range(start, start + ports.size))

    async def included_files(self) -> list[str]:
        if not (self.main_root / ".worktreeinclude").is_file():
            return []
        out = await git("ls-files", "-z", "--others", "--ignored", "--exclude-from=.worktreeinclude",
                        cwd=self.main_root)
        return [p for p in out.stdout.split("\0") if p and not p.endswith("/")]

    def copy_included(self, dest_root: Path, files: list[str]) -> list[str]:
        copied = []
        for rel in files:
            source, target = self.main_root / rel, dest_root / rel
            if not source.is_file():
                continue
            check_inside(dest_root, rel)  # a link committed in the branch must not carry the copy outside
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target, follow_symlinks=False)
            if not source.is_symlink() and not filecmp.cmp(source, target, shallow=False):
                raise WorktreeError(f"copy of {rel} into {dest_root} does not match the original",
                                    "check free disk space, then create the worktree again")
            copied.append(rel)
        return copied

    async def run_setup(self, path: Path, env: dict[str, str]) -> SetupResult | None:
        command = self.config.worktree.setup
        if not command:
            return None
        try:
            proc = await asyncio.create_subprocess_exec(
                *command, cwd=path, env={**os.environ, **env}, stdin=asyncio.subprocess.DEVNULL,  # as in the pool
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            )
        except OSError as exc:
            return SetupResult(command=command, returncode=127, output=f"could not start setup: {exc}")
        try:
            async with asyncio.timeout(self.config.worktree.setup_timeout):
                out, _ = await proc.communicate()
        except TimeoutError:
            proc.kill()
            out, _ = await proc.communicate()
            return SetupResult(command=command, returncode=-9, output=out.decode(errors="replace") + "\n(timed out)")
        return SetupResult(command=command, returncode=proc.returncode or 0, output=out.decode(errors="replace"))

    # ---------------------------------------------------------------- list / get

    async def all(self, status: bool = False, disk: bool = False, pool: bool = False) -> list[WorktreeInfo]:
        """Every worktree; the pool's prewarmed ones (adw.git.pool) only with `pool`."""
        out = (await git("worktree", "list", "--porcelain", "-z", cwd=self.main_root)).stdout
        metas = self._all_meta()
        counts = count_refs(self.repo.common_dir, UNDO_NS)
        records = [r for r in _porcelain_records(out) if pool or not self.pool.contains(Path(r["worktree"]))]
        self._refresh_linked_ids(records)
        infos = [self._info(record, metas, counts) for record in records]
        if status:
            await asyncio.gather(*(self._add_status(info) for info in infos if not info.prunable))
        if disk:
            sizes = await asyncio.gather(*(asyncio.to_thread(disk_usage, info.path) for info in infos))
            for info, size in zip(infos, sizes, strict=True):
                info.disk_bytes = size
        return infos

    def _refresh_linked_ids(self, records: list[dict[str, str]]) -> None:
        """Admin ids of linked worktrees, re-read only when git's worktree folder changes (an add or a prune)."""
        stamp = _mtime_ns(self.repo.common_dir / "worktrees")
        if stamp != self._linked_stamp or any(r["worktree"] not in self._linked_ids for r in records):
            self._linked_ids = {r["worktree"]: linked_id(Path(r["worktree"])) for r in records}
            self._linked_stamp = stamp

    def _info(self, record: dict[str, str], metas: dict[str, _Meta], counts: dict[str, int]) -> WorktreeInfo:
        path = Path(record["worktree"])
        is_main = path == self.main_root
        meta = metas.get(str(path))
        ident = MAIN_WORKTREE_ID if is_main else self._linked_ids.get(record["worktree"])
        branch = record.get("branch", "").removeprefix("refs/heads/") or None
        return WorktreeInfo(
            name=meta.name if meta else (MAIN_WORKTREE_ID if is_main else path.name),
            path=path, branch=branch, head=record.get("HEAD"), base=meta.base if meta else None,
            is_main=is_main, managed=meta is not None, complete=meta.complete if meta else True,
            locked="locked" in record, lock_reason=record.get("locked") or None,
            prunable="prunable" in record, checkpoints=counts.get(ref_id(ident), 0) if ident else 0,
            ports=self._ports(meta.slot) if meta else [], pool=self.pool.contains(path),
        )

    async def _add_status(self, info: WorktreeInfo) -> None:
        status = git("status", "--porcelain", "-z", "--untracked-files=normal", cwd=info.path)
        if info.base and info.branch:
            counts = git("rev-list", "--left-right", "--count", f"{info.base}...HEAD", cwd=info.path)
            status_out, counts_out = await asyncio.gather(status, counts)
            behind, ahead = (int(n) for n in counts_out.stdout.split())
            info.ahead, info.behind = ahead, behind
        else:
            status_out = await status
        info.dirty = bool(status_out.stdout)

    async def get(self, name: str) -> WorktreeInfo:
        return _find(await self.all(), name)

    # ---------------------------------------------------------------- merge

    async def merge_preview(self, name: str, into: str | None = None) -> MergePreview:
        return await self._preview(await self.get(name), into)

    async def _preview(self, info: WorktreeInfo, into: str | None) -> MergePreview:
        if not info.branch:
            raise WorktreeError(f"worktree {info.name} has a detached HEAD; there is no branch to merge",
                                f"create a branch in it first: `git -C {info.path} switch -c NAME`")
        target = into or info.base or await self.main_branch()
        if not target or target == info.branch:
            raise WorktreeError("no branch to merge into", "pass --into BRANCH", "name the branch to merge into")
        await self._resolve(target, f"--into {target}")
        result = await git("merge-tree", "--write-tree", "--name-only", "--no-messages", target, info.branch,
                           cwd=self.main_root, ok_codes=(0, 1))
        lines = result.stdout.splitlines()
        conflicts = [line for line in lines[1:] if line]
        files, stat = await changed_files(self.main_root, f"{target}...{info.branch}")
        return MergePreview(source=info.branch, target=target, clean=result.returncode == 0,
                            conflicts=conflicts, tree=lines[0] if lines else "", files=files,
                            insertions=sum(f.insertions or 0 for f in files),
                            deletions=sum(f.deletions or 0 for f in files), diffstat=stat)

    async def merge(self, name: str, into: str | None = None, strategy: Strategy = "merge") -> MergeResult:
        infos = await self.all()  # one listing serves the source, the preview and the target's worktree
        info = _find(infos, name)
        preview = await self._preview(info, into)
        if not preview.clean:
            return MergeResult(preview=preview, merged=False, strategy=strategy, commit=None,
                               message=f"not merged: {len(preview.conflicts)} conflicting file(s); nothing changed")
        target_wt = next((i.path for i in infos if i.branch == preview.target), None)
        if target_wt is not None and await _is_dirty(target_wt, untracked=False):
            raise UnsafeOperationError(
                f"{preview.target} is checked out in {target_wt} with uncommitted changes",
                "commit or stash them there first; ADW never merges into a dirty worktree",
            )
        old = await self._resolve(preview.target, preview.target)
        identity = await _commit_identity(self.main_root)
        if strategy == "rebase":
            if await _is_dirty(info.path, untracked=False):
                raise UnsafeOperationError(f"worktree {name} has uncommitted changes", "commit them, then merge")
            try:
                await git("rebase", "-q", preview.target, cwd=info.path, env=identity)
            except GitError as exc:
                await git("rebase", "--abort", cwd=info.path, ok_codes=(0, 128))
                raise WorktreeError(f"rebase of {preview.source} onto {preview.target} stopped: {exc.stderr}",
                                    "use --strategy merge, or rebase by hand") from None
            commit = await self._resolve(preview.source, preview.source)
        else:
            parents = ["-p", old] + (["-p", preview.source] if strategy == "merge" else [])
            message = (f"Merge branch '{preview.source}' into {preview.target}" if strategy == "merge"
                       else f"Squash merge of '{preview.source}' into {preview.target}")
            commit = (await git("commit-tree", preview.tree, *parents, "-m", message,
                                cwd=self.main_root, env=identity)).stdout.strip()
        if target_wt is not None:
            await git("merge", "-q", "--ff-only", commit, cwd=target_wt, env=identity)
        else:
            await git("update-ref", f"refs/heads/{preview.target}", commit, old, cwd=self.main_root)
        return MergeResult(preview=preview, merged=True, strategy=strategy, commit=commit,
                           message=f"merged {preview.source} into {preview.target} ({strategy}) as {commit[:12]}")

    # ---------------------------------------------------------------- remove / restore / prune

    async def remove(self, name: str, archive: bool = False, force: bool = False) -> RemoveResult:
        meta = self._meta_of(name)
        if meta is not None and meta.abandoned():  # an interrupted create holds no work: it is taken back
            async with repo_lock(self.repo.adw_dir / WORKTREES_LOCK):
                await self._undo_create(meta)
            return RemoveResult(name=name, path=meta.path, archive_ref=None, branch_deleted=meta.new_branch,
                                message=f"removed {meta.path}, left half-made by an interrupted create")
        info = await self.get(name)
        if info.is_main:
            raise UnsafeOperationError("the main worktree cannot be removed", "remove a linked worktree instead")
        if info.locked and not force:
            raise UnsafeOperationError(
                f"worktree {name} is locked" + (f" ({info.lock_reason})" if info.lock_reason else ""),
                f"unlock it with `git worktree unlock {info.path}`, or pass --force",
            )
        # --force discards the files without looking at them; only whether the branch is merged still matters.
        problems = await self._unsaved_work(info, look_at_files=not force or archive)
        if problems and not (archive or force):
            raise UnsafeOperationError(
                f"worktree {name} holds work that would be lost: {', '.join(problems)}",
                f"`adw worktree remove {name} --archive` saves everything under {ARCHIVE_NS}/{name}/ first "
                "(bring it back with `adw worktree restore`); --force discards it",
                "remove it again and pick Archive and Remove: its work is saved first and can be restored",
            )
        archive_ref = await self._archive(info) if archive else None
        kept = [] if archive else await self._drop_checkpoints(info, keep_unheld=True)
        if info.locked:  # forced: `worktree prune` keeps a locked entry, which would keep its branch checked out
            await git("worktree", "unlock", info.path, cwd=self.main_root)
        if not await self.move_to_trash(info.path):
            await asyncio.to_thread(shutil.rmtree, info.path)
        await self._forget(info.path)
        branch_deleted = False
        if info.branch and (archive or not problems):
            await git("branch", "-q", "-D", info.branch, cwd=self.main_root)
            branch_deleted = True
        with contextlib.suppress(FileNotFoundError):
            (self._meta_dir / f"{info.name}.json").unlink()
        saved = f"; saved as {archive_ref}" if archive_ref else ""
        if kept:
            saved += (f"; kept {', '.join(kept)}: {'they hold' if len(kept) > 1 else 'it holds'} commits no branch"
                      " holds (from an undo that moved another branch, or an interrupted undo); see them with"
                      " `git log REF`")
        return RemoveResult(name=info.name, path=info.path, archive_ref=archive_ref, branch_deleted=branch_deleted,
                            message=f"removed {info.path}{saved}")

    async def _unsaved_work(self, info: WorktreeInfo, look_at_files: bool = True) -> list[str]:
        async def files() -> list[str]:
            if not look_at_files or not info.path.exists():
                return []
            out = (await git("status", "--porcelain", "-z", "--untracked-files=normal", cwd=info.path)).stdout
            entries = [e for e in out.split("\0") if e]
            return (["uncommitted changes"] if any(not e.startswith("??") for e in entries) else []) + (
                ["untracked files"] if any(e.startswith("??") for e in entries) else []
            )

        async def commits() -> list[str]:
            if not info.branch or await self._is_merged(info):
                return []
            return [f"commits on {info.branch} not merged into {info.base or 'the main branch'}"]

        found_files, found_commits = await asyncio.gather(files(), commits())
        return found_files + found_commits

    async def _is_merged(self, info: WorktreeInfo) -> bool:
        """Merged when merging the branch would change nothing: covers ancestors, squash and patch-equivalent merges."""
        target = info.base or await self.main_branch()
        if not target or not info.branch:
            return False
        result, target_tree = await asyncio.gather(
            git("merge-tree", "--write-tree", "--name-only", "--no-messages", target, info.branch,
                cwd=self.main_root, ok_codes=(0, 1)),
            git("rev-parse", f"{target}^{{tree}}", cwd=self.main_root),
        )
        return result.returncode == 0 and result.stdout.split("\n", 1)[0] == target_tree.stdout.strip()

    async def _archive(self, info: WorktreeInfo) -> str:
        """Save commits, index, uncommitted and untracked files and the checkpoint history in one commit; the
        branch tips and journal pins the worktree's checkpoints hold become its parents too."""
        checkpoints = await Checkpoints.open(info.path)
        state, _ = await checkpoints.snapshot()
        undo, redo = await checkpoints.stacks()
        message = (f"archive of worktree {info.name}\n\nadw-archive-name: {info.name}\n"
                   f"adw-archive-path: {info.path}\nadw-archive-base: {info.base or '-'}")
        pins = [*self._checkpoint_refs(info, TIPS_NS).values(), *self._checkpoint_refs(info, JOURNAL_NS).values()]
        commit = await checkpoints.commit_state(state, message, "state", folded=[*undo, *redo, *pins])
        ref = f"{ARCHIVE_NS}/{ref_id(info.name)}/{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%fZ')}"
        await git("update-ref", ref, commit, "", cwd=self.main_root)
        await self._drop_checkpoints(info, keep_unheld=False)
        return ref

    def _checkpoint_refs(self, info: WorktreeInfo, namespace: str) -> dict[str, str]:
        return list_refs(self.repo.common_dir, f"{namespace}/{ref_id(linked_id(info.path) or info.name)}/")

    async def _drop_checkpoints(self, info: WorktreeInfo, keep_unheld: bool) -> list[str]:
        """Delete the worktree's checkpoint refs. A kept branch tip or a journal pin (an interrupted undo's saved
        state) may hold the only way to a commit; with `keep_unheld` such refs stay, and are returned."""
        drop = {ref: sha for ns in (UNDO_NS, REDO_NS, TIPS_NS, JOURNAL_NS, SNAPSHOT_NS) for ref, sha in
                self._checkpoint_refs(info, ns).items()}
        kept: list[str] = []
        if keep_unheld:
            ident = ref_id(linked_id(info.path) or info.name)
            others = [f"--exclude={ns}/{ident}/*" for ns in (UNDO_NS, REDO_NS, TIPS_NS, JOURNAL_NS, SNAPSHOT_NS)]
            for ref, sha in drop.items():
                if ref.startswith((TIPS_NS, JOURNAL_NS)):
                    # A kept tip is ADW's commit on top of the branch's old tip: what it protects is its parent.
                    protects = f"{sha}^" if ref.startswith(TIPS_NS) else sha
                    out = await git("rev-list", "-n", "1", protects, "--not", *others, "--all", cwd=self.main_root)
                    if out.stdout.strip():
                        kept.append(ref)
        for ref in kept:
            del drop[ref]
        if drop:
            feed = "".join(f"delete {ref} {sha}\n" for ref, sha in drop.items())
            await git("update-ref", "--stdin", cwd=self.main_root, input=feed)
        return kept

    async def _forget(self, path: Path) -> None:
        """Drop git's entry for a worktree whose folder is gone: its admin folder goes to the trash too (what
        `git worktree prune` would delete), so removal costs no scan of every worktree."""
        ident = self._linked_ids.get(str(path))
        admin = self.repo.common_dir / "worktrees" / ident if ident else None
        if admin is None or not await self.move_to_trash(admin, trash=path.parent / TRASH_DIR):
            await git("worktree", "prune", cwd=self.main_root)

    async def move_to_trash(self, path: Path, trash: Path | None = None) -> bool:
        """Rename into a trash folder and delete from there in the background; False when the rename is
        impossible (another file system), so the caller falls back to a slower way."""
        if not path.exists():
            return True
        trash = trash or path.parent / TRASH_DIR
        trash.mkdir(exist_ok=True)
        target = trash / f"{path.name}-{time.time_ns()}"
        try:
            path.rename(target)
        except OSError:
            return False
        _delete_in_background(target)
        return True

    async def restore(self, name: str) -> CreateResult:
        refs = sorted(list_refs(self.repo.common_dir, f"{ARCHIVE_NS}/{ref_id(name)}/"))
        if not refs:
            raise WorktreeError(
                f"no archive of worktree {name!r}", "archives are made by `adw worktree remove --archive`"
            )
        ref = refs[-1]
        body = (await git("log", "-1", "--format=%B", ref, cwd=self.main_root)).stdout
        _, fields = trailers(body)
        branch = fields.get("adw-branch", "-").removeprefix("refs/heads/")
        head = fields.get("adw-head", "-")
        if branch == "-" or head == "-":
            raise WorktreeError(f"archive {ref} has no branch to restore", "inspect it with `git show`")
        existing = await git("rev-parse", "-q", "--verify", f"refs/heads/{branch}", cwd=self.main_root, ok_codes=(0, 1))
        if existing.returncode == 0 and existing.stdout.strip() != head:
            raise WorktreeError(f"branch {branch} exists and differs from the archived one",
                                f"rename it (`git branch -m {branch} OTHER`), then restore again")
        if existing.returncode != 0:
            await git("branch", branch, head, cwd=self.main_root)
        base = None if fields.get("adw-archive-base", "-") == "-" else fields["adw-archive-base"]
        # A restore killed after the create is rerun on the worktree it made (`created_for`), until the
        # archive's files are in place; then the mark is cleared, so a later restore never overwrites work.
        created = await self.create(name, base=base, branch=branch, created_for=f"restore {ref}")
        checkpoints = await Checkpoints.open(created.worktree.path)
        state, _ = await checkpoints.snapshot()
        await git("read-tree", "-u", "-m", f"{ref}^{{tree}}", cwd=created.worktree.path,
                  env=checkpoints.shadow_env)
        index_tree = fields.get("adw-index-tree")
        if index_tree and index_tree != state.index_tree:
            await git("read-tree", "--reset", index_tree, cwd=created.worktree.path)
        meta = self._meta_of(name)
        if meta is not None:
            self._write_meta(meta.model_copy(update={"created_for": None}))
        created.message = f"restored {name} from {ref} at {created.worktree.path}"
        return created

    async def prune(self) -> PruneResult:
        infos = await self.all(pool=True)
        stale = [str(i.path) for i in infos if i.prunable]
        if stale:
            await git("worktree", "prune", cwd=self.main_root)
        known = {i.path for i in infos if not i.prunable}
        orphans: list[Path] = []
        emptied: list[Path] = []
        if self.root.is_dir():
            for child in sorted(self.root.iterdir()):
                if child.name == POOL_FOLDER:
                    continue
                if child.name == TRASH_DIR:
                    for leftover in child.iterdir():
                        _delete_in_background(leftover)
                        emptied.append(leftover)
                elif child.is_dir() and child not in known:
                    orphans.append(child)
        half_made: list[Path] = []
        async with repo_lock(self.repo.adw_dir / WORKTREES_LOCK):
            for meta in list(self._all_meta().values()):
                if meta.abandoned():
                    await self._undo_create(meta)
                    half_made.append(meta.path)
                elif meta.complete and meta.path not in known and not meta.path.exists():
                    (self._meta_dir / f"{meta.name}.json").unlink(missing_ok=True)
        orphans = [folder for folder in orphans if folder not in half_made]
        discarded = await self.pool.reconcile(await self.pool.key(await self.default_base()))
        parts = [f"pruned {len(stale)} stale entr{'y' if len(stale) == 1 else 'ies'}"]
        if half_made:
            parts.append(f"removed {len(half_made)} worktree(s) left half-made by an interrupted create")
        if discarded:
            parts.append(f"discarded {len(discarded)} pool worktree(s) that no longer fit")
        if orphans:
            parts.append(f"{len(orphans)} folder(s) in {self.root} are not worktrees; left untouched")
        return PruneResult(pruned_entries=stale, half_made=half_made, pool_discarded=discarded,
                           orphan_folders=orphans, trash_emptied=emptied, message="; ".join(parts))


async def locate(base: Path, name_or_path: str | None) -> Path:
    """The folder of a worktree given by path (relative to `base`) or by name, branch or folder name;
    `base` itself when none is given. The CLI's --worktree and the language server's `worktree` both mean this."""
    if not name_or_path:
        return base
    candidate = base / name_or_path
    if candidate.exists():
        return candidate
    return (await (await Worktrees.open(base)).get(name_or_path)).path


def ref_name_problem(name: str) -> str | None:
    """Why git would refuse `name` as (part of) a ref name, or None: the rules of `git check-ref-format`,
    checked in-process so a bad name is refused before any git call creates anything."""
    if name.startswith("/") or name.endswith("/") or "//" in name:
        return "it cannot start or end with '/' or contain '//'"
    if name == "@" or "@{" in name:
        return "it cannot be '@' or contain '@{'"
    if ".." in name:
        return "it cannot contain '..'"
    if name.endswith("."):
        return "it cannot end with '.'"
    bad = sorted({c for c in name if ord(c) < 0x20 or ord(c) == 0x7F or c in _REF_FORBIDDEN})
    if bad:
        shown = ", ".join("a space" if c == " " else repr(c) for c in bad)
        return f"it cannot contain {shown}"
    for part in name.split("/"):
        if part.startswith(".") or part.endswith(".lock"):
            return f"no part of it may start with '.' or end with '.lock' ({part!r})"
        if len(part.encode()) > MAX_NAME_BYTES:
            return f"no part of it may be longer than {MAX_NAME_BYTES} bytes"
    return None


def _find(infos: list[WorktreeInfo], name: str) -> WorktreeInfo:
    """A worktree by ADW name, else by path or branch, else by folder name; an ambiguous name is refused
    rather than guessed, since the caller may be about to remove it."""
    tiers: tuple[Callable[[WorktreeInfo], bool], ...] = (
        lambda i: (i.managed or i.is_main) and i.name == name,
        lambda i: str(i.path) == name or i.branch == name,
        lambda i: i.path.name == name,
    )
    for matches in tiers:
        found = [info for info in infos if matches(info)]
        if len(found) == 1:
            return found[0]
        if found:
            raise WorktreeError(f"{name!r} names {len(found)} worktrees", "pass the worktree's full path")
    raise WorktreeError(f"no worktree named {name!r}", "see `adw worktree list`", "pick one in the Worktrees view")


def _created(meta: _Meta, info: WorktreeInfo, env: dict[str, str], included: list[str],
             setup: SetupResult | None, how: str) -> CreateResult:
    parts = [f"created {meta.path} on {meta.branch} from {meta.base}" + (f" ({how})" if how else "")]
    if included:
        parts.append(f"copied {len(included)} file(s) listed by .worktreeinclude")
    if setup:
        parts.append(f"setup exited with {setup.returncode}")
    return CreateResult(worktree=info, env=env, included=included, setup=setup, message="; ".join(parts))


def _porcelain_records(out: str) -> list[dict[str, str]]:
    records: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for field in out.split("\0"):
        if not field:
            if current:
                records.append(current)
                current = {}
            continue
        key, _, value = field.partition(" ")
        current[key] = value
    if current:
        records.append(current)
    return records


def _mtime_ns(path: Path) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0


def linked_id(path: Path) -> str | None:
    """The admin folder name of a linked worktree, read from its `.git` file (no git spawn)."""
    with contextlib.suppress(OSError):
        text = (path / ".git").read_text(encoding="utf-8").strip()
        if text.startswith("gitdir: "):
            return Path(text[8:]).name
    return None


async def _is_dirty(path: Path, untracked: bool) -> bool:
    mode = "--untracked-files=normal" if untracked else "--untracked-files=no"
    return bool((await git("status", "--porcelain", "-z", mode, cwd=path)).stdout)


async def _commit_identity(cwd: Path) -> dict[str, str]:
    """The user's identity when configured; ADW's otherwise, so merges work on a fresh machine."""
    result = await git("var", "GIT_COMMITTER_IDENT", cwd=cwd, ok_codes=(0, 128))
    return {} if result.returncode == 0 else dict(ADW_IDENTITY)


def _delete_in_background(path: Path) -> None:
    """Deleting thousands of files takes seconds on these disks; a detached low-priority process does it."""
    script = "import shutil, sys; shutil.rmtree(sys.argv[1], ignore_errors=True)"
    subprocess.Popen(  # noqa: S603 - fixed argv; the path is ADW's own trash folder
        ["nice", "-n", "10", sys.executable, "-c", script, str(path)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )


def _hint_for(stderr: str) -> str:
    if "already checked out" in stderr or "is already used by worktree" in stderr:
        return "that branch is checked out in another worktree; pass --branch NEW"
    if "already exists" in stderr:
        return "pick another name or --branch"
    return "see git's message above"
