"""How a worktree travels to a cluster node and back (adw.workflow.shipping), without Ray: the object store is a
folder of pack files here, and the node a cache folder of the test's."""

from __future__ import annotations

import os
import pickle
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from adw.workflow import shipping
from adw.workflow.shipping import Base, Bases, NodeCache, Shipment, land, pack_back, ship
from tests.conftest import MakeRepo, run_git
from tests.faults import FaultyGit

# The same identity and dates on both ends: equal content makes equal commits.
_FIXED = {"GIT_AUTHOR_DATE": "2026-01-02T03:04:05Z", "GIT_COMMITTER_DATE": "2026-01-02T03:04:05Z"}
# What an agent does: commits one file, then deletes a tracked one and changes a shipped untracked one.
_AGENT = [
    "import pathlib, subprocess",
    "pathlib.Path('made.txt').write_text('committed\\n')",
    "subprocess.run(['git', 'add', 'made.txt'], check=True)",
    "subprocess.run(['git', 'commit', '-q', '-m', 'agent: made.txt'], check=True)",
    "pathlib.Path('README.md').unlink()",
    "pathlib.Path('notes.txt').write_text('changed on the node\\n')",
]


class Store:
    """The object store: each pack put is a file; `fetched` lists the handles nodes fetched."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir()
        self.fetched: list[object] = []

    def put(self, pack: bytes) -> object:
        path = self.folder / f"{len(list(self.folder.iterdir()))}.pack"
        path.write_bytes(pack)
        return str(path)

    def fetch(self, handle: object) -> bytes:
        self.fetched.append(handle)
        return Path(str(handle)).read_bytes()


def _agent(root: Path) -> None:
    subprocess.run([sys.executable, "-c", "; ".join(_AGENT)], cwd=root, check=True, env=_env())


def _env() -> dict[str, str]:
    return {**os.environ, **_FIXED}


async def _on_node(cache: NodeCache, shipment: Shipment, store: Store, scratch: Path) -> tuple[bytes, str, str]:
    await cache.ensure(shipment.base, store.fetch)
    node = await cache.checkout(shipment, scratch)
    _agent(node.root)
    return await pack_back(node, shipment, scratch)


def _dirty(repo: Path) -> None:
    (repo / "src/app.py").write_text("def main():\n    return 2\n")
    (repo / "notes.txt").write_text("untracked on the driver\n")


async def test_a_phase_shipped_and_landed_leaves_what_the_agent_leaves_in_place(
    make_repo: MakeRepo, tmp_path: Path
) -> None:
    files = {"README.md": "# demo\n", "src/app.py": "def main():\n    return 1\n"}
    here, there = make_repo(files, name="here"), make_repo(files, name="there")
    for repo in (here, there):
        _dirty(repo)
    _agent(here)  # the local executor's phase

    store = Store(tmp_path / "store")
    shipment = await ship(there, Bases(store.put))
    returned = await _on_node(NodeCache(tmp_path / "node/cache"), shipment, store, tmp_path / "phase")
    await land(there, shipment, *returned)

    for args in (["rev-parse", "HEAD", "HEAD^", "main"], ["status", "--porcelain", "-uall"], ["diff"]):
        assert run_git(here, *args) == run_git(there, *args)
    assert (there / "notes.txt").read_text() == "changed on the node\n"
    assert run_git(there, "status", "--porcelain", "-uall") == " D README.md\n M src/app.py\n?? notes.txt\n"


async def test_a_second_phase_of_the_same_commit_ships_and_fetches_no_history_again(
    repo: Path, tmp_path: Path
) -> None:
    store = Store(tmp_path / "store")
    bases, cache = Bases(store.put), NodeCache(tmp_path / "node/cache")
    first = await ship(repo, bases)
    assert await cache.ensure(first.base, store.fetch) == first.base.size > 0
    _dirty(repo)
    (repo / "README.md").unlink()
    second = await ship(repo, bases)

    assert second.base is first.base  # put into the store once
    assert second.state != second.head and second.pack  # only the changed files travel with the phase
    assert await cache.ensure(second.base, store.fetch) == 0
    assert store.fetched == [first.base.pack]
    root = (await cache.checkout(second, tmp_path / "phase")).root
    assert (root / "src/app.py").read_text() == "def main():\n    return 2\n"
    assert run_git(root, "status", "--porcelain", "-uall") == " D README.md\n M src/app.py\n?? notes.txt\n"


async def test_when_the_drivers_head_moves_a_node_fetches_only_what_the_new_commits_add(
    make_repo: MakeRepo, tmp_path: Path
) -> None:
    repo = make_repo({f"src/m{i // 10}/f{i}.py": f"VALUE = {i}\n" + "# filler\n" * 50 for i in range(200)})
    store = Store(tmp_path / "store")
    bases, cache = Bases(store.put), NodeCache(tmp_path / "node/cache")
    first = await ship(repo, bases)
    await cache.ensure(first.base, store.fetch)
    (repo / "src/m0/f7.py").write_text("VALUE = 'moved'\n")
    run_git(repo, "commit", "-q", "-am", "a new commit on the driver")
    moved = await ship(repo, bases)

    assert moved.base.after is first.base and moved.base.size < first.base.size / 10
    assert await cache.ensure(moved.base, store.fetch) == moved.base.size
    assert store.fetched == [first.base.pack, moved.base.pack]
    root = (await cache.checkout(moved, tmp_path / "phase")).root
    assert run_git(root, "rev-parse", "HEAD") == run_git(repo, "rev-parse", "HEAD")
    assert (root / "src/m0/f7.py").read_text() == "VALUE = 'moved'\n"
    assert run_git(root, "status", "--porcelain", "-uall") == ""

    # A node that never saw the first head fetches both packs, oldest first.
    fresh = NodeCache(tmp_path / "other-node/cache")
    assert await fresh.ensure(moved.base, store.fetch) == first.base.size + moved.base.size
    assert store.fetched[2:] == [first.base.pack, moved.base.pack]


async def test_past_the_longest_chain_a_head_packs_what_it_adds_to_the_root_until_that_outgrows_the_root(
    make_repo: MakeRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shipping, "_MAX_CHAIN", 2)
    repo = make_repo({f"src/f{i}.py": f"VALUE = {os.urandom(1000).hex()!r}\n" for i in range(100)})
    store = Store(tmp_path / "store")
    bases, cache = Bases(store.put), NodeCache(tmp_path / "node/cache")

    async def moved(change: str, content: bytes) -> Base:
        (repo / change).write_bytes(content)
        run_git(repo, "add", change)
        run_git(repo, "commit", "-q", "-m", f"{change} changed")
        shipment = await ship(repo, bases)
        await cache.ensure(shipment.base, store.fetch)
        return shipment.base

    root = (await ship(repo, bases)).base
    await cache.ensure(root, store.fetch)
    chain = [root] + [await moved("src/f0.py", f"VALUE = {n}\n".encode()) for n in range(3)]
    assert [base.depth for base in chain] == [0, 1, 2, 1]
    rerooted = chain[3]
    assert rerooted.after is root and rerooted.size < root.size / 10  # not the whole history again
    assert store.fetched[-1] == rerooted.pack
    fresh = NodeCache(tmp_path / "other-node/cache")
    assert await fresh.ensure(rerooted, store.fetch) == root.size + rerooted.size
    checked_out = await fresh.checkout(await ship(repo, bases), tmp_path / "phase")
    assert run_git(checked_out.root, "rev-parse", "HEAD") == run_git(repo, "rev-parse", "HEAD")

    grown = await moved("big.bin", os.urandom(root.size * 2))  # depth 2: what it adds is the chain's
    whole = await moved("src/f0.py", b"VALUE = 'whole'\n")  # what it adds to the root is more than the root
    assert (grown.depth, whole.depth, whole.after) == (2, 0, None)
    assert whole.size > root.size * 2


_ROOT = Path(__file__).parents[2]
# A node's phase in a process of its own: fetch the history into the cache, check out, run the agent, pack back.
_NODE = """
import asyncio, pickle, sys
from pathlib import Path
from adw.workflow.shipping import NodeCache, pack_back
from tests.workflow.test_shipping import Store, _agent

shipment, store, cache, scratch = pickle.loads(Path(sys.argv[1]).read_bytes())

async def main():
    await NodeCache(cache).ensure(shipment.base, store.fetch)
    node = await NodeCache(cache).checkout(shipment, scratch)
    _agent(node.root)
    await pack_back(node, shipment, scratch)

asyncio.run(main())
"""


async def test_a_phase_killed_while_its_node_stores_the_history_leaves_the_cache_usable(
    make_repo: MakeRepo, tmp_path: Path, faulty_git: FaultyGit
) -> None:
    await _kill_node_phases(make_repo, tmp_path, faulty_git, lambda call: call[:2] == ["index-pack", "--stdin"])


@pytest.mark.faults
async def test_a_phase_killed_at_any_git_call_on_its_node_leaves_the_cache_usable(
    make_repo: MakeRepo, tmp_path: Path, faulty_git: FaultyGit
) -> None:
    await _kill_node_phases(make_repo, tmp_path, faulty_git, lambda call: True)


async def _kill_node_phases(
    make_repo: MakeRepo, tmp_path: Path, faulty_git: FaultyGit, chosen: Callable[[list[str]], bool]
) -> None:
    """Kill a node's phase (SIGKILL of its process group) at each `chosen` git call, each from an empty cache;
    after each, the next phase on that node leaves what a local phase leaves."""
    files = {"README.md": "# demo\n", "src/app.py": "def main():\n    return 1\n"}
    here, there = make_repo(files, name="here"), make_repo(files, name="there")
    for repo in (here, there):
        _dirty(repo)
    _agent(here)
    store = Store(tmp_path / "store")
    shipment = await ship(there, Bases(store.put))
    cache = tmp_path / "node/cache"
    job = tmp_path / "job.pickle"

    def node_phase(scratch: Path, kill_at: int | None) -> int:
        scratch.mkdir()
        faulty_git.reset()
        job.write_bytes(pickle.dumps((shipment, store, cache, scratch)))
        return subprocess.run([sys.executable, "-c", _NODE, str(job)], env=faulty_git.env(kill_at), cwd=_ROOT,
                              capture_output=True, start_new_session=True, timeout=120).returncode

    assert node_phase(tmp_path / "count", None) == 0
    calls = [number for number, call in enumerate(faulty_git.calls_so_far(), 1) if chosen(call)]
    assert calls
    for kill_at in calls:
        shutil.rmtree(cache.parent)
        assert node_phase(tmp_path / f"killed-{kill_at}", kill_at) == -signal.SIGKILL
        returned = await _on_node(NodeCache(cache), shipment, store, tmp_path / f"next-{kill_at}")
        landed = tmp_path / f"landed-{kill_at}"
        shutil.copytree(there, landed, symlinks=True)
        await land(landed, shipment, *returned)
        assert run_git(landed, "rev-parse", "HEAD") == run_git(here, "rev-parse", "HEAD")
        assert run_git(landed, "status", "--porcelain", "-uall") == run_git(here, "status", "--porcelain", "-uall")


async def test_a_large_result_lands_through_a_kept_pack(repo: Path, tmp_path: Path) -> None:
    """At least 100 objects come back as a pack kept whole (git's transfer.unpackLimit), not as loose objects."""
    store = Store(tmp_path / "store")
    shipment = await ship(repo, Bases(store.put))
    cache = NodeCache(tmp_path / "node/cache")
    await cache.ensure(shipment.base, store.fetch)
    node = await cache.checkout(shipment, tmp_path / "phase")
    for i in range(150):
        (node.root / f"made/f{i}.txt").parent.mkdir(exist_ok=True)
        (node.root / f"made/f{i}.txt").write_text(f"{i}\n")
    packs_before = set((repo / ".git/objects/pack").glob("*.pack"))
    await land(repo, shipment, *await pack_back(node, shipment, tmp_path / "phase"))
    assert len(set((repo / ".git/objects/pack").glob("*.pack")) - packs_before) == 1
    assert sorted(path.name for path in (repo / "made").iterdir()) == sorted(f"f{i}.txt" for i in range(150))
    assert run_git(repo, "status", "--porcelain").splitlines() == ["?? made/"]


async def test_a_file_the_user_force_added_past_gitignore_comes_back_from_a_phase_that_left_it(
    make_repo: MakeRepo, tmp_path: Path
) -> None:
    """Staged with `git add -f` on the driver: the shipped files hold it although .gitignore names it, and a
    phase that did not touch it must not return a worktree without it (land would delete the user's file)."""
    repo = make_repo({".gitignore": "*.log\n", "README.md": "# demo\n"})
    (repo / "kept.log").write_text("the user's, staged on purpose\n")
    run_git(repo, "add", "-f", "kept.log")
    store = Store(tmp_path / "store")
    shipment = await ship(repo, Bases(store.put))
    cache = NodeCache(tmp_path / "node/cache")
    await cache.ensure(shipment.base, store.fetch)
    node = await cache.checkout(shipment, tmp_path / "phase")
    (node.root / "new.txt").write_text("the agent's\n")

    pack, head, state = await pack_back(node, shipment, tmp_path / "phase")
    await land(repo, shipment, pack, head, state)
    assert (repo / "kept.log").read_text() == "the user's, staged on purpose\n"
    assert (repo / "new.txt").read_text() == "the agent's\n"
    assert run_git(repo, "status", "--porcelain").splitlines() == ["A  kept.log", "?? new.txt"]


async def test_an_ignored_file_the_agent_staged_comes_back_and_an_untouched_worktree_sends_nothing(
    make_repo: MakeRepo, tmp_path: Path
) -> None:
    repo = make_repo({".gitignore": "*.log\n", "src/app.py": "def main():\n    return 1\n"})
    _dirty(repo)
    store = Store(tmp_path / "store")
    shipment = await ship(repo, Bases(store.put))
    cache = NodeCache(tmp_path / "node/cache")
    await cache.ensure(shipment.base, store.fetch)

    untouched = await cache.checkout(shipment, tmp_path / "untouched")
    assert await pack_back(untouched, shipment, tmp_path / "untouched") == (b"", shipment.head, shipment.state)

    node = await cache.checkout(shipment, tmp_path / "phase")
    (node.root / "build.log").write_text("staged by the agent past .gitignore\n")
    run_git(node.root, "add", "-f", "build.log")
    (node.root / "other.log").write_text("ignored, not staged: stays on the node\n")
    await land(repo, shipment, *await pack_back(node, shipment, tmp_path / "phase"))
    assert (repo / "build.log").read_text() == "staged by the agent past .gitignore\n"
    assert not (repo / "other.log").exists()
    assert (repo / "notes.txt").read_text() == "untracked on the driver\n"
