"""Trees without an index: a new tree from a base tree and the entries of a few changed paths.

A checkpoint of ten changed files in a 50,000-file worktree must not read a 50,000-entry index (docs/PERFORMANCE.md,
#14 point 4): only the folders on the changed paths are read (one `cat-file --batch`, cached by object id), changed
in memory, and written bottom-up. Tree ids are computed here (a parent names its children before they are written).
A tree has no filters, so where the repository allows it (`write_loose`'s caller decides) the new trees are written
as loose objects from this process, the way git writes them, saving `mktree`'s process and its check of every
entry; otherwise one `mktree --batch` writes them and its ids are checked against these.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
import zlib
from pathlib import Path

from adw.git.runner import git

TREE = b"40000"  # a folder's mode as a tree object stores it (ls-tree prints 040000)
GITLINK = b"160000"
_TYPES = {TREE: "tree", GITLINK: "commit"}
_HEADER = re.compile(rb"([0-9a-f]{40}) (\w+) (\d+)")
_MAX_CACHED = 20_000  # trees kept by id; a long session's cache is dropped rather than grown without end

Entry = tuple[bytes, str]  # (mode as a tree stores it, object id)
Tree = dict[bytes, Entry]  # name -> entry


class NotPlain(Exception):
    """The base has no plain tree where one is needed (a file or submodule on the way): build it another way."""


def parse_tree(body: bytes) -> Tree:
    entries: Tree = {}
    at = 0
    while at < len(body):
        space = body.index(b" ", at)
        nul = body.index(b"\0", space)
        entries[body[space + 1 : nul]] = (body[at:space], body[nul + 1 : nul + 21].hex())
        at = nul + 21
    return entries


def tree_body(tree: Tree) -> bytes:
    """The tree object's content: entries in git's order, where a folder sorts as if its name ended with "/"."""
    order = sorted(tree, key=lambda name: name + b"/" if tree[name][0] == TREE else name)
    return b"".join(tree[name][0] + b" " + name + b"\0" + bytes.fromhex(tree[name][1]) for name in order)


def tree_id(body: bytes) -> str:
    return object_id(b"tree", body)


def write_loose(objects: Path, oid: str, kind: bytes, body: bytes) -> None:
    """Store an object as git does (sha1 repositories): zlib-deflated "<kind> <len>\\0<body>" written to a
    `tmp_obj_*` file beside its final name, then hard-linked there, which never replaces an existing file, and the
    temporary name removed. A process killed on the way leaves at most the temporary file (`git gc` expires it),
    never a partial object under its id. An object already stored loose is only freshened, as git does, so `gc`
    does not prune it as unused."""
    folder = objects / oid[:2]
    final = folder / oid[2:]
    try:
        os.utime(final)
        return
    except FileNotFoundError:
        pass
    except OSError:
        return  # stored, by another user: it stays as it is
    folder.mkdir(exist_ok=True)
    data = zlib.compress(kind + b" %d\0" % len(body) + body, 1)  # core.looseCompression's default, Z_BEST_SPEED
    fd, temp = tempfile.mkstemp(prefix="tmp_obj_", dir=folder)  # a name of its own: stores write side by side
    try:
        os.fchmod(fd, 0o444)  # git's objects are read-only
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
    try:
        os.link(temp, final)
    except FileExistsError:
        pass  # written meanwhile by another process: same id, same content
    finally:
        os.unlink(temp)


def object_id(kind: bytes, body: bytes) -> str:
    return hashlib.sha1(kind + b" %d\0" % len(body) + body, usedforsecurity=False).hexdigest()


def commit_body(tree: str, parents: list[str], ident: str, date: str, message: str) -> bytes:
    """The commit `git commit-tree` writes for these, with author and committer both `ident` (name <email>) at
    `date` ("<seconds> <offset>"), when the repository sets no i18n.commitEncoding."""
    lines = [f"tree {tree}", *(f"parent {p}" for p in parents), f"author {ident} {date}", f"committer {ident} {date}"]
    return ("\n".join(lines) + "\n\n" + message).encode()


def parent_of(path: bytes) -> tuple[bytes, bytes]:
    """(folder, name) of a slash-separated path; the root folder is b""."""
    folder, _, name = path.rpartition(b"/")
    return folder, name


class TreeCache:
    """Trees read or written by this process, by id (immutable, so never stale)."""

    def __init__(self) -> None:
        self.trees: dict[str, Tree] = {}

    def keep(self, oid: str, tree: Tree) -> None:
        if len(self.trees) >= _MAX_CACHED:
            self.trees.clear()
        self.trees[oid] = tree

    async def folders(self, root: Path, base: str, paths: list[bytes]) -> dict[bytes, str | None]:
        """The base's tree id of every folder on `paths` (None: not in the base), each of those trees cached, in
        one `cat-file --batch` for those not cached yet; NotPlain when a file or submodule stands where a folder
        on the way would be."""
        wanted = {b""}
        for path in paths:
            folder = parent_of(path)[0]
            while folder not in wanted:
                wanted.add(folder)
                folder = parent_of(folder)[0]
        found: dict[bytes, str | None] = {}

        def resolve(folder: bytes) -> bool:
            """Whether the cache tells the folder's tree (into `found`)."""
            if folder in found:
                return True
            if not folder:
                found[folder] = base
                return True
            up, name = parent_of(folder)
            if not resolve(up):
                return False
            parent = found[up]
            if parent is not None and parent not in self.trees:
                return False
            entry = self.trees[parent].get(name) if parent is not None else None
            if entry is not None and entry[0] != TREE:
                raise NotPlain(folder)
            found[folder] = entry[1] if entry is not None else None
            return True

        missing = [f for f in sorted(wanted) if not resolve(f) or ((oid := found[f]) and oid not in self.trees)]
        if missing:
            feed = b"".join(base.encode() + (b":" + folder if folder else b"") + b"\n" for folder in missing)
            out = (await git("cat-file", "--batch", cwd=root, input=feed)).stdout.encode("utf-8", "surrogateescape")
            at = 0
            for _ in missing:
                end = out.index(b"\n", at)
                header = _HEADER.fullmatch(out[at:end])
                if header is None:  # "<name> missing": no such path in the base
                    at = end + 1
                    continue
                size = int(header[3])
                if header[2] == b"tree":
                    self.keep(header[1].decode(), parse_tree(out[end + 1 : end + 1 + size]))
                at = end + 2 + size
            found.clear()  # now told by the cache alone, which also finds a file on the way
            if not all(resolve(f) for f in sorted(wanted)):
                raise NotPlain(b"")  # a tree git did not give (cache dropped meanwhile)
        return {f: found[f] for f in wanted}

    async def rebuild(self, root: Path, folders: dict[bytes, str | None], edits: dict[bytes, Entry | None],
                      objects: Path | None = None) -> str:
        """The id of the root tree after the edits (path -> entry, None: removed), written to the object store
        with every changed folder; a folder left empty is removed, as no index can hold one. `folders` gives the
        base's tree of each folder on the edited paths (TreeCache.folders). The trees are written as loose objects
        into `objects` (an objects folder proven plain by the caller), or by `mktree` without it, which raises
        ValueError when git's ids differ."""
        changes: dict[bytes, dict[bytes, Entry | None]] = {}
        for path, entry in edits.items():
            folder, name = parent_of(path)
            changes.setdefault(folder, {})[name] = entry
            while folder:  # every folder up to the root is rewritten
                folder = parent_of(folder)[0]
                changes.setdefault(folder, {})
        written: list[tuple[str, Tree, bytes]] = []
        new_root = ""
        for folder in sorted(changes, key=lambda f: f.count(b"/") + bool(f), reverse=True):  # deepest first
            base = folders[folder]
            tree = dict(self.trees[base]) if base else {}
            for name, entry in changes[folder].items():
                if entry is None:
                    tree.pop(name, None)
                else:
                    tree[name] = entry
            body = tree_body(tree)
            oid = tree_id(body) if tree else None
            if oid is not None and oid != base:  # written even when cached: `gc` may have pruned an unused one
                written.append((oid, tree, body))
            if folder:
                up, name = parent_of(folder)
                changes[up][name] = (TREE, oid) if oid else None
            else:
                new_root = oid or ""
        if written and objects is not None:
            def store() -> None:
                for oid, _, body in written:
                    write_loose(objects, oid, b"tree", body)

            await asyncio.to_thread(store)
        elif written:
            feed = b"".join(
                b"".join(b"%s %s %s\t%s\0" % (mode.rjust(6, b"0"), _TYPES.get(mode, "blob").encode(), oid.encode(),
                                               name) for name, (mode, oid) in tree.items()) + b"\0"
                for _, tree, _ in written
            )
            made = (await git("mktree", "-z", "--batch", cwd=root, input=feed)).stdout.split()
            if made != [oid for oid, _, _ in written]:
                raise ValueError(f"git wrote trees {made}, expected {[oid for oid, _, _ in written]}")
        for oid, tree, _ in written:
            self.keep(oid, tree)
        return new_root
