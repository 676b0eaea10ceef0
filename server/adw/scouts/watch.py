"""Cheap proof that a worktree has not changed since the last `git status`: Linux inotify.

Proving a 20,000-file tree unchanged with `git status` costs one `lstat` per file (~80 ms of CPU here). A
long-lived process (the language server) can instead watch every directory of the worktree plus the git
dirs: any event (a file written, created, deleted, moved, chmod'ed; a ref, HEAD or the index rewritten)
marks the tree *dirty*, and only then is `git status` run again. Watches are set up *before* that status
runs, so a change made while it runs is seen by the next query.

Exact for everything that reaches the kernel through this machine's VFS. Blind spots, each falling back to
`git status` where it can be detected: no inotify (not Linux, or no watch left: `fs.inotify.max_user_watches`)
-> `Watch.open` returns None; a queue overflow -> dirty; changes on a network file system made by another
machine, and writes through a shared `mmap`, produce no event; so does a change of git configuration outside
the git dirs (a global excludes file). Paths under `scout_outputs/` are ours and ignored.

With `paths=True` a watch also names what changed (`changed_paths`), for incremental checkpoints: a folder
created or moved in is watched at once and named itself, so whatever was written in it before its watch
existed is covered by its path.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import struct
import sys
import threading
from pathlib import Path

from adw.git.refs import ADW_DIR, SCOUT_OUTPUTS
from adw.git.repo import Repo

_IN_MODIFY = 0x002
_IN_ATTRIB = 0x004
_IN_CLOSE_WRITE = 0x008
_IN_MOVED_FROM = 0x040
_IN_MOVED_TO = 0x080
_IN_CREATE = 0x100
_IN_DELETE = 0x200
_IN_DELETE_SELF = 0x400
_IN_MOVE_SELF = 0x800
_IN_Q_OVERFLOW = 0x4000
_IN_ONLYDIR = 0x01000000
_IN_DONT_FOLLOW = 0x02000000
_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = os.O_CLOEXEC
_MASK = (
    _IN_MODIFY | _IN_ATTRIB | _IN_CLOSE_WRITE | _IN_MOVED_FROM | _IN_MOVED_TO | _IN_CREATE | _IN_DELETE
    | _IN_DELETE_SELF | _IN_MOVE_SELF | _IN_ONLYDIR | _IN_DONT_FOLLOW
)  # fmt: skip
_HEADER = struct.Struct("iIII")
MAX_WATCHES = 50_000  # beyond this, `git status` per query is the cheaper and kinder option
_OURS = SCOUT_OUTPUTS.encode()  # our own output folder at the worktree root
_ADW = ADW_DIR.encode()  # our own caches in the git common dir


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None


_LIBC = _libc()


class Watch:
    """inotify watches on every folder of one worktree and on its git dirs; `changed()` drains the events."""

    def __init__(self, fd: int, root: Path, git_dirs: tuple[Path, ...], paths: bool = False) -> None:
        self._fd = fd
        self._root = root
        self._git_dirs = git_dirs
        self._root_wd = -1
        self._git_wds: set[int] = set()
        self._count = 0
        self._lock = threading.Lock()
        # With `paths`: each worktree folder's path relative to the root, by watch descriptor, and what changed.
        self._folders: dict[int, bytes] | None = {} if paths else None
        self._touched: set[bytes] = set()
        self._missed = True  # until the first `changed_paths`, nothing is known to be complete

    @classmethod
    def open(cls, root: Path, git_dirs: tuple[Path, ...], paths: bool = False) -> Watch | None:
        """A watch on `root` and the git dirs, or None where inotify is missing or the tree is too big."""
        if _LIBC is None:
            return None
        fd = _LIBC.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            return None
        watch = cls(fd, root, git_dirs, paths)
        if not watch.rescan():
            watch.close()
            return None
        return watch

    def _add(self, path: bytes) -> int:
        assert _LIBC is not None
        wd = int(_LIBC.inotify_add_watch(self._fd, path, _MASK))
        if wd >= 0:
            self._count += 1
        return wd

    def _watch_below(self, top: bytes) -> int:
        """Watch `top` (a folder of the worktree) and every folder below it; `top`'s descriptor, or -1 when a
        watch failed (limit reached, tree too big)."""
        root = os.fsencode(self._root)
        folders = [top]
        top_wd = -1
        while folders:
            folder = folders.pop()
            wd = self._add(folder)
            if wd < 0 or self._count > MAX_WATCHES:
                return -1
            top_wd = wd if folder == top else top_wd
            if self._folders is not None:
                self._folders[wd] = os.path.relpath(folder, root) if folder != root else b""
            try:
                entries = os.scandir(folder)
            except OSError:
                continue  # gone or unreadable: git cannot see into it either
            with entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False) and not (folder == root and entry.name in (b".git", _OURS)):
                        folders.append(entry.path)
        return top_wd

    def rescan(self) -> bool:
        """(Re)watch every folder; False when a watch could not be added (limit reached, tree too big)."""
        with self._lock:
            self._count = 0
            if self._folders is not None:
                self._folders.clear()
            self._root_wd = self._watch_below(os.fsencode(self._root))
            if self._root_wd < 0:
                return False
            self._git_wds.clear()
            for git_dir in self._git_dirs:
                refs = [Path(path) for path, _, _ in os.walk(git_dir / "refs")]
                for meta in (git_dir, git_dir / "info", *refs):  # HEAD, index, packed-refs, excludes, refs
                    if meta.is_dir() and (wd := self._add(os.fsencode(meta))) >= 0:
                        self._git_wds.add(wd)
            return True

    def changed_paths(self) -> list[str] | None:
        """The worktree paths (files or folders, relative to the root) changed since the last call, or None when
        a change may have been missed (the first call, a queue overflow, a folder that could not be watched, an
        ignore rule changed); after None the watch is complete again, so the caller scans everything once."""
        changed, rescan = self.changed()
        with self._lock:
            touched, self._touched = self._touched, set()
            missed, self._missed = self._missed, False
        if rescan and not self.rescan():
            with self._lock:
                self._missed = True  # some folder is not watched: try again next time
        if missed or rescan:
            return None
        return sorted(os.fsdecode(path) for path in touched) if changed else []

    def changed(self) -> tuple[bool, bool]:
        """(anything changed since the last call, a folder was created or moved in so `rescan` is needed; with
        `paths`, such a folder is watched at once, and a rescan is asked for only when a change may be lost)."""
        changed = rescan = False
        with self._lock:
            while True:
                try:
                    data = os.read(self._fd, 65536)
                except BlockingIOError:
                    break
                except OSError:
                    return True, True
                if not data:
                    break
                at = 0
                while at < len(data):
                    wd, mask, _cookie, length = _HEADER.unpack_from(data, at)
                    name = data[at + _HEADER.size : at + _HEADER.size + length].rstrip(b"\0")
                    at += _HEADER.size + length
                    if mask & _IN_Q_OVERFLOW:
                        return True, True
                    if wd == self._root_wd and name == _OURS:
                        continue
                    if wd in self._git_wds and name in (_ADW, b"index.lock"):
                        continue  # our caches; a lock file alone changes nothing until `index` is replaced
                    changed = True
                    new_folder = mask & (_IN_CREATE | _IN_MOVED_TO) and mask & 0x40000000  # IN_ISDIR
                    if self._folders is None:
                        if new_folder or mask & (_IN_DELETE_SELF | _IN_MOVE_SELF):
                            rescan = True
                        continue
                    if wd in self._git_wds:
                        rescan = rescan or name == b"exclude"  # info/exclude: what is ignored changed
                        continue
                    folder = self._folders.get(wd)
                    if folder is None or name in (b".gitignore", b".git"):
                        rescan = True  # an unknown folder, or what git ignores or sees as a repository changed
                        continue
                    if mask & (_IN_DELETE_SELF | _IN_MOVE_SELF):
                        rescan = rescan or wd == self._root_wd  # the worktree itself went; else its parent names it
                        continue
                    path = os.path.join(folder, name) if folder else name
                    self._touched.add(path)
                    if new_folder and self._watch_below(os.path.join(os.fsencode(self._root), path)) < 0:
                        rescan = True
        return changed, rescan

    def close(self) -> None:
        """Release the descriptor; a closed watch reports a possible miss (never reads a reused descriptor)."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)


def watch_checkpoints(repo: Repo) -> Watch | None:
    """The change tracker of a worktree's long-lived checkpoint store (`adw.git.checkpoints.CheckpointStores`):
    its folders, naming what changed, and its git dirs (HEAD, the index, refs)."""
    return Watch.open(repo.root, tuple(dict.fromkeys((repo.git_dir, repo.common_dir))), paths=True)
