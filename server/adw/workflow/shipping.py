"""How a worktree travels to a cluster node and back: the half of the ray executor that needs no Ray.

A phase's worktree is its HEAD (`head`) plus a commit of its current files on it (`state`). The history of a
head travels once: the driver packs it once per commit (`Bases`), as only what it adds to a head shipped before
when there is one, and puts that pack into the object store; a node fetches it only if its cache of the
repository (`NodeCache`: a bare repository per repository, on each node) lacks that commit. What travels with
every phase is the pack of `state` beyond `head`, empty when the worktree is clean. On the node the phase runs
in a repository of its own that borrows the cache's objects (an alternate), so phases on one node share the
history and nothing else, and a phase killed mid-way leaves the cache as it was or with objects more. Back
comes the pack of what the agent added beyond the shipped commits, nothing when it changed nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from adw.errors import GitError
from adw.git.refs import read_head
from adw.git.runner import git
from adw.workflow.scope import restore

_IDENTITY = {
    "GIT_AUTHOR_NAME": "adw", "GIT_AUTHOR_EMAIL": "adw@localhost",
    "GIT_COMMITTER_NAME": "adw", "GIT_COMMITTER_EMAIL": "adw@localhost",
}
_UNPACK_LIMIT = 100  # git's transfer.unpackLimit: a smaller pack is stored as loose objects, a larger one kept
_MAX_CHAIN = 16  # a base built on more than this many earlier ones is packed on their root: a new node fetches few
_ANCESTRY = 1000  # how far back a new head's history is searched for one shipped before

Fetch = Callable[[object], bytes]  # a pack's handle in the object store -> the pack (ray.get on a node)


@dataclass(frozen=True)
class Base:
    """The history of `head` as it travels: `pack` is a handle to the object store's copy (`size` bytes) of
    what `head` has beyond `after.head`, or of all of it when `after` is None."""

    head: str
    pack: object
    size: int
    after: Base | None
    depth: int

    @property
    def root(self) -> Base:
        """The whole history this one's chain starts from."""
        return self.after.root if self.after else self


@dataclass(frozen=True)
class Shipment:
    """A worktree as it travels: the history of its HEAD, `state` (a commit of its files on that HEAD, or HEAD
    itself when they are HEAD's) and `pack`, the objects of `state` beyond HEAD."""

    repository: str  # a node keeps one cache per repository: a digest of the driver's host and git folder
    base: Base
    state: str
    state_tree: str
    pack: bytes
    branch: str | None  # refs/heads/…, None when HEAD is detached

    @property
    def head(self) -> str:
        return self.base.head


# -- on the driver -------------------------------------------------------------------------------------------


class Bases:
    """Each head's history packed and put into the object store once, by repository and commit; a head
    shipped after another of its ancestors packs only what it adds to the nearest one. Past `_MAX_CHAIN` such
    packs, what it adds to their root: a node holding the chain fetches that one pack and a new node two. Once
    that has grown larger than the root, the head goes whole: what each new head ships stays bounded however
    long the driver lives (a language server, all day), and the whole history travels again only after as much
    again has been added to it."""

    def __init__(self, put: Callable[[bytes], object]) -> None:
        self._put = put
        self._built: dict[tuple[str, str], asyncio.Future[Base]] = {}

    async def of(self, worktree: Path, repository: str, head: str) -> Base:
        key = (repository, head)
        building = self._built.get(key)
        if building is None or (building.done() and (building.cancelled() or building.exception())):
            building = self._built[key] = asyncio.ensure_future(self._build(worktree, repository, head))
        return await asyncio.shield(building)  # a phase cancelled meanwhile leaves the pack to the others

    async def _build(self, worktree: Path, repository: str, head: str) -> Base:
        shipped = {
            built.result().head: built.result() for (repo, _), built in self._built.items()
            if repo == repository and built.done() and not built.cancelled() and built.exception() is None
        }
        after = None
        if shipped:
            ancestry = await git("rev-list", f"--max-count={_ANCESTRY}", head, cwd=worktree)
            after = next((shipped[c] for c in ancestry.lines if c in shipped), None)
        if after is not None and after.depth >= _MAX_CHAIN:  # what it adds to the root, unless that outgrew it
            after = after.root
            pack = await pack_objects(worktree, [head, f"^{after.head}"])
            if len(pack) > after.size:
                after, pack = None, await pack_objects(worktree, [head])
        else:
            pack = await pack_objects(worktree, [head, *([f"^{after.head}"] if after else [])])
        handle = await asyncio.to_thread(self._put, pack)
        return Base(head, handle, len(pack), after, after.depth + 1 if after else 0)


async def ship(worktree: Path, bases: Bases) -> Shipment:
    """The worktree as it travels. Only objects are written into the user's repository (those of `state`):
    neither its refs nor its index change."""
    found = (await git("rev-parse", "HEAD", "HEAD^{tree}", "--symbolic-full-name", "HEAD",
                       "--path-format=absolute", "--git-common-dir", "--git-path", "index", cwd=worktree)).lines
    head, head_tree, branch, common_dir, index = found
    repository = hashlib.sha256(f"{socket.gethostname()}\0{common_dir}".encode()).hexdigest()[:24]

    async def files() -> tuple[str, str, bytes]:
        tree = await files_tree(worktree, Path(index), head)
        if tree == head_tree:
            return head, tree, b""
        state = await _commit(worktree, tree, head, "adw: the worktree shipped to a cluster node")
        return state, tree, await pack_objects(worktree, [state, f"^{head}"])

    (state, state_tree, pack), base = await asyncio.gather(files(), bases.of(worktree, repository, head))
    return Shipment(repository, base, state, state_tree, pack, branch if branch.startswith("refs/heads/") else None)


async def land(worktree: Path, shipment: Shipment, pack: bytes, head: str, state: str) -> None:
    """Make the worktree what the agent left on the node (`head`, `state`, and `pack`, their objects beyond the
    shipment's): its commits on the branch, the files it changed."""
    if state == shipment.state:
        return  # the agent changed nothing
    await store_pack(worktree, pack)
    if head != shipment.head:
        await git("update-ref", "-m", "adw: commits of a phase run on a cluster node", "HEAD", head,
                  shipment.head, cwd=worktree)
        await git("read-tree", head, cwd=worktree)  # as after the agent's own `git commit`
    changed = await git("diff", "--name-only", "-z", "--no-renames", shipment.state, state, cwd=worktree)
    paths = [path for path in changed.stdout.split("\0") if path]
    if paths:
        await restore(worktree, state, paths)


# -- on a node -----------------------------------------------------------------------------------------------


class NodeCache:
    """A node's copy of one repository's shipped history, under `root`: `repo` (bare, no refs: gc is off, so
    nothing in it is pruned), `config` (that of a repository `git init` made here, which probed this file
    system: each phase's repository starts with it), and `have/<commit>` for each head whose whole history `repo`
    holds, written once its pack is stored."""

    def __init__(self, root: Path) -> None:
        self.root = root

    async def ensure(self, base: Base, fetch: Fetch) -> int:
        """Make the cache hold `base.head`'s history; the bytes fetched (0 when it held it already). Fetches
        are serialized by a lock the kernel lets go when its holder dies."""
        if self._has(base.head):
            return 0
        await self._create()
        async with self._locked():
            return await self._fetch(base, fetch)

    async def checkout(self, shipment: Shipment, scratch: Path) -> NodeWorktree:
        """A worktree of the shipment in `scratch`, in a repository of its own that borrows the cache's objects:
        HEAD on the shipped branch name, the files as shipped, the index at HEAD (untracked files stay so)."""
        root = scratch / "worktree"
        dot = root / ".git"
        branch = shipment.branch or "refs/heads/adw-phase"

        def make() -> None:  # what `git init` writes that git needs, without its process
            for folder in ("objects/info", "objects/pack", "refs/tags", Path(branch).parent):
                (dot / folder).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.root / "config", dot / "config")
            (dot / "objects/info/alternates").write_text(f"{self.root / 'repo/objects'}\n", encoding="utf-8")
            (dot / branch).write_text(f"{shipment.head}\n", encoding="utf-8")
            (dot / "HEAD").write_text(f"ref: {branch}\n", encoding="utf-8")

        await asyncio.to_thread(make)
        await git("read-tree", "-u", "--reset", shipment.head, cwd=root)
        files_index = scratch / "files-index"
        await asyncio.to_thread(shutil.copy2, dot / "index", files_index)  # its mtime kept: its stat data trusted
        if shipment.state != shipment.head:
            # The files' changes on top through that index, so that only the changed files are written and the
            # worktree's index stays at HEAD: changed files read as modified, new ones as untracked.
            await store_pack(root, shipment.pack)
            await git("read-tree", "-u", "-m", shipment.head, shipment.state, cwd=root,
                      env={"GIT_INDEX_FILE": str(files_index)})
        return NodeWorktree(root, files_index, _identity(dot / "index"))

    def _has(self, commit: str) -> bool:
        return (self.root / "have" / commit).exists()

    async def _fetch(self, base: Base, fetch: Fetch) -> int:
        if self._has(base.head):  # fetched by another phase while this one waited for the lock
            return 0
        fetched = await self._fetch(base.after, fetch) if base.after else 0
        pack = await asyncio.to_thread(fetch, base.pack)
        await store_pack(self.root / "repo", pack, keep=True)
        (self.root / "have" / base.head).touch()
        return fetched + len(pack)

    async def _create(self) -> None:
        """The cache's repositories, made aside and moved into place whole: a phase killed on the way leaves
        a folder nobody uses, never half a cache."""
        if (self.root / "have").is_dir():
            return
        self.root.parent.mkdir(parents=True, exist_ok=True)
        making = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix=".making-", dir=self.root.parent))
        try:
            await git("init", "-q", "--bare", making / "repo", cwd=making)
            await git("config", "gc.auto", "0", cwd=making / "repo")
            await git("init", "-q", making / "probe", cwd=making)
            os.rename(making / "probe/.git/config", making / "config")
            await asyncio.to_thread(shutil.rmtree, making / "probe")
            (making / "have").mkdir()
            with contextlib.suppress(OSError):  # another phase made it first: its cache is as good
                os.rename(making, self.root)
        finally:
            await asyncio.to_thread(shutil.rmtree, making, True)

    @contextlib.asynccontextmanager
    async def _locked(self) -> AsyncIterator[None]:
        with open(self.root / "lock", "a+b") as lock:
            await asyncio.to_thread(fcntl.flock, lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


@dataclass(frozen=True)
class NodeWorktree:
    """A phase's worktree on a node as `NodeCache.checkout` left it: `files_index` indexes the files shipped (a
    file the user force-added past .gitignore included), `index_id` identifies the worktree's own index then."""

    root: Path
    files_index: Path
    index_id: tuple[int, int, int]

    def index_touched(self) -> bool:
        """Whether the agent rewrote the worktree's index (staged, committed): git replaces the file."""
        return _identity(self.root / ".git/index") != self.index_id

    async def files_changed(self) -> bool:
        """Whether a shipped file changed or a file git does not ignore appeared, in one `git status` against
        the files' index; its staged entries are the shipment's own, only the worktree's side counts."""
        status = await git("status", "--porcelain", "-z", "--no-renames", cwd=self.root,
                           env={"GIT_INDEX_FILE": str(self.files_index), "GIT_OPTIONAL_LOCKS": "0"})
        return any(entry[1] != " " for entry in status.stdout.split("\0") if entry)


async def pack_back(node: NodeWorktree, shipment: Shipment, scratch: Path) -> tuple[bytes, str, str]:
    """What the agent left in the node's worktree: the pack of its objects beyond the shipment's (empty when it
    changed nothing), its HEAD, and the commit of its files on it. The files are the shipped ones as the agent
    left them, plus what git does not ignore and what the agent staged: a shipped file is never left out, or
    landing it would delete it on the driver."""
    dot = node.root / ".git"  # the node's own repository (not a linked worktree): its git dir is its common dir
    head, _ = await asyncio.to_thread(read_head, dot, dot)
    head = head or (await git("rev-parse", "HEAD", cwd=node.root)).stdout.strip()
    touched = node.index_touched()
    if head == shipment.head and not touched and not await node.files_changed():
        return b"", head, shipment.state  # the common case of a check: one git process
    tree = await files_tree(node.root, node.files_index, head, scratch, staged=dot / "index" if touched else None)
    if head == shipment.head and tree == shipment.state_tree:
        return b"", head, shipment.state
    state = await _commit(node.root, tree, head, "adw: the worktree a cluster node returned")
    return await pack_objects(node.root, [state, f"^{shipment.head}", f"^{shipment.state}"]), head, state


def _identity(path: Path) -> tuple[int, int, int]:
    found = path.stat()
    return found.st_ino, found.st_size, found.st_mtime_ns


# -- both ends -----------------------------------------------------------------------------------------------


async def files_tree(
    root: Path, index: Path, head: str, scratch: Path | None = None, staged: Path | None = None
) -> str:
    """The tree of every tracked and untracked, not ignored, file of `root`, built in a private index so that
    the worktree's own is neither locked nor changed. The private index starts as a copy of `index` (its mtime
    kept, so git trusts only the stat data it may: docs/RELIABILITY.md), so only changed files are hashed; where
    that copy is unusable (a split index, none yet), it starts from `head`'s tree. The paths `staged` (another
    index) holds beyond it are added too, ignored or not."""
    with tempfile.TemporaryDirectory(prefix="adw-index-", dir=scratch) as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        try:
            await asyncio.to_thread(shutil.copy2, index, env["GIT_INDEX_FILE"])
            await git("add", "-A", cwd=root, env=env)
        except (OSError, GitError):
            await git("read-tree", head, cwd=root, env=env)
            await git("add", "-A", cwd=root, env=env)
        if staged is not None:
            await _add_staged(root, env, staged)
        return (await git("write-tree", cwd=root, env=env)).stdout.strip()


async def _add_staged(root: Path, env: dict[str, str], staged: Path) -> None:
    """Add to the index in `env` the files `staged` holds beyond it and that are still there, ignored or not (an
    agent's `git add -f`)."""
    held = (await git("ls-files", "-z", cwd=root, env=env)).stdout.split("\0")
    listed = (await git("ls-files", "-z", cwd=root, env={"GIT_INDEX_FILE": str(staged)})).stdout.split("\0")
    extra = sorted(path for path in set(listed) - set(held) if path and os.path.lexists(root / path))
    if extra:
        await git("--literal-pathspecs", "add", "-f", "--pathspec-from-file=-", "--pathspec-file-nul",
                  cwd=root, env=env, input="\0".join(extra))


async def _commit(root: Path, tree: str, parent: str, message: str) -> str:
    return (await git("commit-tree", tree, "-p", parent, "-m", message, cwd=root, env=_IDENTITY)).stdout.strip()


async def pack_objects(root: Path, revisions: list[str]) -> bytes:
    """A pack of the objects `revisions` reach (`^commit`: less those `commit` reaches), whole (not thin)."""
    feed = "".join(f"{revision}\n" for revision in revisions)
    packed = await git("pack-objects", "--revs", "--stdout", "-q", "--delta-base-offset", cwd=root, input=feed)
    return packed.stdout.encode("utf-8", "surrogateescape")  # the runner decodes so; this gives the bytes back


async def store_pack(root: Path, pack: bytes, keep: bool = False) -> None:
    """Store a pack's objects in the repository of `root`: kept as a pack when asked or large, else loose."""
    objects = int.from_bytes(pack[8:12], "big")  # "PACK", version, object count
    if keep or objects >= _UNPACK_LIMIT:
        await git("index-pack", "--stdin", cwd=root, input=pack)
    else:
        await git("unpack-objects", "-q", cwd=root, input=pack)
