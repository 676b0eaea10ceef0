"""Files ADW itself writes inside a worktree (or its git folder), opened so that nothing can escape it.

Every path component is opened relative to the folder before it (`dir_fd`) with `O_NOFOLLOW`, so a committed
`docs -> /elsewhere`, or a link an agent plants while ADW writes, is refused instead of followed. Each file is
written to a temporary file in its own folder and renamed over the target, so a reader never sees half a file;
`write_all_inside` writes every temporary file before renaming any, so a batch fails before touching a target.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path, PurePosixPath

from adw.errors import PathOutsideError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def write_inside(root: Path, relpath: str, data: str | bytes) -> Path:
    """Write `data` (str as UTF-8) to `root/relpath` without following any symlink below `root`."""
    write_all_inside(root, {relpath: data})
    return root / relpath


def write_all_inside(root: Path, files: Mapping[str, str | bytes]) -> None:
    """Write every file or none: all are staged as temporary files next to their targets, then renamed."""
    folders: list[int] = []
    staged: list[tuple[int, str, str]] = []  # (folder fd, temporary name, final name)
    renamed = 0
    try:
        for relpath, data in files.items():
            *parents, name = _components(relpath)
            folder = _open_folder(root, parents, relpath, create=True)
            folders.append(folder)
            mode = _replaceable_mode(folder, name, relpath)
            temporary = f".{name[:200]}.adw-{secrets.token_hex(4)}.tmp"
            fd = os.open(temporary, _NEW_FILE_FLAGS, mode, dir_fd=folder)
            staged.append((folder, temporary, name))
            with os.fdopen(fd, "wb") as out:
                out.write(data.encode("utf-8") if isinstance(data, str) else data)
        for folder, temporary, name in staged:
            os.replace(temporary, name, src_dir_fd=folder, dst_dir_fd=folder)
            renamed += 1
    finally:
        for folder, temporary, _name in staged[renamed:]:
            with contextlib.suppress(OSError):
                os.unlink(temporary, dir_fd=folder)
        for folder in folders:
            os.close(folder)


def read_inside(root: Path, relpath: str) -> bytes | None:
    """The content of `root/relpath`, read without following symlinks; None when it does not exist."""
    *folders, name = _components(relpath)
    try:
        folder = _open_folder(root, folders, relpath, create=False)
    except FileNotFoundError:
        return None
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=folder)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _refused(relpath, name, exc) from None
    finally:
        os.close(folder)
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def check_inside(root: Path, relpath: str) -> None:
    """Raise PathOutsideError when writing `root/relpath` would be refused: a symlink or a file where a folder
    is needed, or a symlink or folder where the file goes. Creates nothing."""
    *folders, name = _components(relpath)
    try:
        folder = _open_folder(root, folders, relpath, create=False)
    except FileNotFoundError:
        return  # the missing folders will be created, and nothing in them can be a link yet
    try:
        _replaceable_mode(folder, name, relpath)
    finally:
        os.close(folder)


def retarget_link_inside(root: Path, relpath: str, rewrite: Callable[[str], str]) -> None:
    """Point the symlink `root/relpath` at `rewrite(its target)`, in one rename; its folders are opened without
    following links. Nothing happens when it is gone or no longer a link."""
    *folders, name = _components(relpath)
    folder = _open_folder(root, folders, relpath, create=False)
    try:
        try:
            target = os.readlink(name, dir_fd=folder)
        except (FileNotFoundError, OSError):
            return
        temporary = f".{name[:200]}.adw-{secrets.token_hex(4)}.tmp"
        os.symlink(rewrite(target), temporary, dir_fd=folder)
        os.replace(temporary, name, src_dir_fd=folder, dst_dir_fd=folder)
    finally:
        os.close(folder)


def disk_usage(path: Path) -> int:
    """Bytes the files under `path` take on disk (links not followed)."""
    total = 0
    for dirpath, _dirnames, filenames in os.walk(path):
        for filename in filenames:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, filename)).st_blocks * 512
    return total


def _components(relpath: str) -> list[str]:
    path = PurePosixPath(relpath)
    if path.is_absolute() or not path.parts or ".." in path.parts:
        raise PathOutsideError(f"{relpath}: not a path inside the worktree", "give a relative path without '..'")
    return list(path.parts)


def _open_folder(root: Path, folders: list[str], relpath: str, create: bool) -> int:
    """An fd of `root/folders...`, each opened from the one before without following links. `root` itself is
    opened normally: it is the folder the user chose, links and all."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for name in folders:
            try:
                child = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                with contextlib.suppress(FileExistsError):  # made meanwhile by someone else: opened below
                    os.mkdir(name, 0o777, dir_fd=fd)
                child = _open_child(fd, name, relpath)
            except OSError as exc:
                raise _refused(relpath, name, exc) from None
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_child(fd: int, name: str, relpath: str) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=fd)
    except OSError as exc:
        raise _refused(relpath, name, exc) from None


def _replaceable_mode(folder: int, name: str, relpath: str) -> int:
    """The mode the new file gets (an existing file keeps its own); refuses a link or folder in its place."""
    try:
        found = os.stat(name, dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:
        return 0o666  # less the umask, as open() would
    if stat.S_ISLNK(found.st_mode):
        raise PathOutsideError(
            f"{relpath} is a symbolic link; ADW does not write through links",
            "replace the link with a regular file, or remove it",
        )
    if not stat.S_ISREG(found.st_mode):
        raise PathOutsideError(f"{relpath} exists and is not a regular file", "move it away, then try again")
    return stat.S_IMODE(found.st_mode)


def _refused(relpath: str, name: str, exc: OSError) -> PathOutsideError:
    return PathOutsideError(
        f"{relpath}: {name!r} is a symbolic link or not a folder; ADW does not write through links ({exc.strerror})",
        "replace the link with a real folder, or write somewhere else",
    )


def iter_parents(relpath: str) -> Iterator[str]:
    """`a/b/c` → `a`, `a/b`: the folders a file at `relpath` needs."""
    parts = PurePosixPath(relpath).parts
    for end in range(1, len(parts)):
        yield PurePosixPath(*parts[:end]).as_posix()
