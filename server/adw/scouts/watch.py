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

    def __init__(self, fd: int, root: Path, git_dirs: tuple[Path, ...]) -> None:
        self._fd = fd
        self._root = root
        self._git_dirs = git_dirs
        self._root_wd = -1
        self._git_wds: set[int] = set()
        self._count = 0
        self._lock = threading.Lock()

    @classmethod
    def open(cls, root: Path, git_dirs: tuple[Path, ...]) -> Watch | None:
        """A watch on `root` and the git dirs, or None where inotify is missing or the tree is too big."""
        if _LIBC is None:
            return None
        fd = _LIBC.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            return None
        watch = cls(fd, root, git_dirs)
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

    def rescan(self) -> bool:
        """(Re)watch every folder; False when a watch could not be added (limit reached, tree too big)."""
        with self._lock:
            self._count = 0
            root = os.fsencode(self._root)
            self._root_wd = self._add(root)
            if self._root_wd < 0:
                return False
            folders = [root]
            while folders:
                folder = folders.pop()
                try:
                    entries = os.scandir(folder)
                except OSError:
                    continue  # gone or unreadable: git cannot see into it either
                with entries:
                    for entry in entries:
                        if not entry.is_dir(follow_symlinks=False):
                            continue
                        if folder == root and entry.name in (b".git", _OURS):
                            continue
                        if self._add(entry.path) < 0 or self._count > MAX_WATCHES:
                            return False
                        folders.append(entry.path)
            self._git_wds.clear()
            for git_dir in self._git_dirs:
                refs = [Path(path) for path, _, _ in os.walk(git_dir / "refs")]
                for meta in (git_dir, git_dir / "info", *refs):  # HEAD, index, packed-refs, excludes, refs
                    if meta.is_dir() and (wd := self._add(os.fsencode(meta))) >= 0:
                        self._git_wds.add(wd)
            return True

    def changed(self) -> tuple[bool, bool]:
        """(anything changed since the last call, a folder was created or moved in so `rescan` is needed)."""
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
                    if mask & (_IN_CREATE | _IN_MOVED_TO | _IN_DELETE_SELF | _IN_MOVE_SELF) and (
                        mask & 0x40000000 or mask & (_IN_DELETE_SELF | _IN_MOVE_SELF)  # IN_ISDIR
                    ):
                        rescan = True
        return changed, rescan

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)
