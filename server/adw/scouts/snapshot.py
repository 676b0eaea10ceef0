"""What the worktree holds right now: its files, a content signature per file, and one id for the whole tree.

`git rev-parse HEAD^{tree}` ignores uncommitted work, and hashing every file would cost a full read. Instead:

* `git status --porcelain=v2 --branch` names the HEAD commit, every staged change (with its index blob id),
  every modified, deleted and untracked file. Together with the size and mtime of the files it lists as
  changed in the worktree, that identifies the content of the whole tree: that is `tree_id`, and computing
  it is one git call plus a few `stat`s, cheap enough to validate a cached answer on every query.
* `git ls-files -s` gives the blob id of every tracked file; a file whose worktree copy is clean is
  signed by its blob id (so signatures survive commits, branch switches and other worktrees), a changed or
  untracked file by its size and mtime.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from adw.git.refs import SCOUT_OUTPUTS
from adw.git.runner import git

_STATUS = ("status", "--porcelain=v2", "-z", "--branch", "--untracked-files=all", "--no-renames")
_REGULAR_MODES = ("100644", "100755")
# Our own output file lives in the worktree; counting it would make every run invalidate the next one's cache.
IGNORED_PREFIX = SCOUT_OUTPUTS + "/"


@dataclass(frozen=True, slots=True)
class Status:
    tree_id: str
    head: str  # the commit checked out, "(initial)" before the first one
    changed: dict[str, str]  # path -> signature of its worktree copy ("" when deleted there)


@dataclass(frozen=True, slots=True)
class Snapshot:
    tree_id: str
    head: str
    files: dict[str, str] = field(repr=False)  # path relative to the root -> content signature


async def read_status(root: Path) -> Status:
    """The tree id and the paths whose worktree copy differs from the index (or is untracked)."""
    out = (await git(*_STATUS, cwd=root)).stdout
    changed: dict[str, str] = {}
    kept: list[str] = []  # the `# branch.oid` header names HEAD; staged changes carry their index blob ids
    head = ""
    for record in out.split("\0"):
        if record.startswith("# branch.oid "):
            head = record.removeprefix("# branch.oid ")
        path, worktree_state = _parse(record)
        if path is None:
            if record:
                kept.append(record)
            continue
        if path.startswith(IGNORED_PREFIX):
            continue
        kept.append(record)
        if worktree_state == "D":
            changed[path] = ""
        elif worktree_state != ".":
            changed[path] = _stat_signature(root, path)
    digest = hashlib.sha1("\0".join(kept).encode("utf-8", "surrogateescape"), usedforsecurity=False)
    for path in sorted(changed):
        digest.update(f"\0{path}\0{changed[path]}".encode("utf-8", "surrogateescape"))
    return Status(tree_id=digest.hexdigest(), head=head, changed=changed)


def _parse(record: str) -> tuple[str | None, str]:
    """(path, worktree state) of a porcelain v2 record; "?" for untracked; (None, "") for headers."""
    kind = record[:1]
    if kind == "?":
        return record[2:], "?"
    if kind in ("1", "u"):
        fields = record.split(" ", 8 if kind == "1" else 10)
        return fields[-1], fields[1][1]
    return None, ""


IndexStamp = tuple[int, int, int]  # inode, size, mtime of the index file: git replaces it on every change


@dataclass(frozen=True, slots=True)
class Listing:
    """The index's regular files with their blob ids, valid while the index file keeps its `stamp`."""

    files: dict[str, str] = field(repr=False)
    stamp: IndexStamp | None  # None: never reused


def index_stamp(index_file: Path) -> IndexStamp | None:
    if "GIT_INDEX_FILE" in os.environ:
        return None  # git may read another index than `index_file`
    try:
        info = os.stat(index_file)
    except OSError:
        return None
    return info.st_ino, info.st_size, info.st_mtime_ns


async def list_files(root: Path, index_file: Path) -> Listing:
    """`git ls-files -s`, parsed (20,000 records take ~30 ms, in a thread)."""
    stamp = index_stamp(index_file)  # taken first: a change while git reads leaves a newer stamp behind
    out = (await git("ls-files", "-s", "-z", cwd=root)).stdout
    return Listing(await asyncio.to_thread(_parse_listing, out), stamp)


def _parse_listing(out: str) -> dict[str, str]:
    files: dict[str, str] = {}
    for record in out.split("\0"):
        if not record:
            continue
        meta, _, path = record.partition("\t")
        mode, blob, _stage = meta.split(" ")
        # Symlinks and submodules are not files of this tree.
        if mode in _REGULAR_MODES and not path.startswith(IGNORED_PREFIX):
            files[path] = blob
    return files


def snapshot(listing: Listing, status: Status) -> Snapshot:
    """Every regular file of the worktree (tracked or untracked, not ignored) with its signature."""
    files = dict(listing.files)
    for path, signature in status.changed.items():
        if signature:
            files[path] = signature
        else:
            files.pop(path, None)
    return Snapshot(tree_id=status.tree_id, head=status.head, files=files)


def _stat_signature(root: Path, path: str) -> str:
    """Size and mtime of a changed file; "" for one that is gone or is not a regular file (symlink, fifo)."""
    try:
        info = os.lstat(root / path)
    except OSError:
        return ""
    if not stat.S_ISREG(info.st_mode):
        return ""
    return f"w:{info.st_size}:{info.st_mtime_ns}"
