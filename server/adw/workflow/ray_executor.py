"""The `ray` executor: each agent phase runs as a task of a Ray cluster, on a node with a free agent slot.

No filesystem is shared. The driver ships the worktree as a git bundle of its HEAD and a commit of its current
files (tracked and untracked, not ignored); the node clones it into a fresh worktree, runs the agent there,
streams its events back (a generator task: each event reaches the driver while the agent runs), and returns a
bundle of a commit of the files the agent left. The driver fetches that commit and writes the files the agent
changed into its own worktree (and moves its branch if the agent committed), so the engine's checkpoints, undo,
commit and merge preview see what a local phase would have left.

Only adw.workflow.executor imports this module, and only when `executor = "ray"`: ADW without Ray never
imports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray.actor import ActorHandle
from ray.exceptions import NodeDiedError, RayError, TaskCancelledError, WorkerCrashedError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from adw.errors import AdwError, GitError
from adw.git.runner import git, run
from adw.process import AgentTree, stop_tree, task_marker
from adw.workflow.agent import CancelToken
from adw.workflow.events import BaseEvent, EventBus, PermissionAsked, PermissionChoice, TaskEvents
from adw.workflow.executor import AgentSlotCount, ClusterNode, ClusterStatus, Phase, RunningPhase
from adw.workflow.judge import JUDGED_AGENTS
from adw.workflow.models import AgentResult
from adw.workflow.orphans import DONE
from adw.workflow.scope import restore

AGENT_RESOURCE = "agent"  # one unit per agent slot of a node: `ray start --resources='{"agent": 4}'`
_CHECK_RETRIES = 2  # a check (tests, lint) costs nothing to run again when its node dies; an LLM agent does
_IDENTITY = {
    "GIT_AUTHOR_NAME": "adw", "GIT_AUTHOR_EMAIL": "adw@localhost",
    "GIT_COMMITTER_NAME": "adw", "GIT_COMMITTER_EMAIL": "adw@localhost",
}
_HEAD_REF, _STATE_REF, _RESULT_REF = "refs/heads/adw-head", "refs/heads/adw-state", "refs/heads/adw-result"
_POLL = 0.1
_REACH_TIMEOUT = 10.0
_BATCH = 500
_NAMESPACE, _RECORD = "adw", "adw-record"
_LOST_AGAIN = "an LLM agent's phase is not run again by itself, it costs money; a check is, twice"
_ANSWER_MARGIN = 10.0  # a node waits this much longer than the driver for an answer: "nobody answered" comes back
Answer = tuple[PermissionChoice, str] | None  # a permission question's answer and who gave it; None: nobody did


@dataclass(frozen=True)
class Shipment:
    """A worktree as it travels: `bundle` holds `head` (its HEAD) and `state` (a commit of its files on it)."""

    bundle: bytes
    head: str
    state: str
    branch: str | None


@dataclass(frozen=True)
class Returned:
    """The last item of a phase task: the agent's result and a bundle of `state`, the files it left, on `head`
    (the node's HEAD then: the shipped one unless the agent committed). The bundle needs the shipped commits."""

    result: AgentResult
    bundle: bytes
    head: str
    state: str


class RayExecutor:
    def __init__(self, address: str, secrets: list[str]) -> None:
        self.address = address
        self.secrets = secrets
        self._connected = False
        self._connecting = asyncio.Lock()
        self._record: ActorHandle[Any] | None = None

    async def run(self, phase: Phase, events: TaskEvents, cancel: CancelToken) -> AgentResult:
        try:
            await self._connect()
        except AdwError as exc:  # no cluster there: the phase fails saying so, as any agent failure
            return AgentResult.failed(exc.message)
        shipment = await ship(phase.worktree)
        secrets = {name: os.environ[name] for name in self.secrets if name in os.environ}
        check = phase.task.agent in JUDGED_AGENTS
        memory = phase.task.config.memory_limit if phase.task.config else None
        options: dict[str, object] = {
            "resources": {AGENT_RESOURCE: 1},
            "num_cpus": 1 if check else 0,
            "max_retries": _CHECK_RETRIES if check else 0,
        }
        if memory:
            options["memory"] = memory
        record, key = self._connected_record(), uuid.uuid4().hex
        stream = _phase_task.options(**options).remote(phase, shipment, secrets, record, key)
        try:
            returned = await _follow(stream, events, cancel, record)
        finally:  # also when its node died before it could say so itself
            record.ended.remote(key)
        if not isinstance(returned, Returned):
            return returned or AgentResult.failed(cancel.reason or "the phase ended on the cluster without a result")
        await land(phase.worktree, shipment, returned)
        return returned.result

    async def agent_slots(self) -> AgentSlotCount:
        await self._connect()
        total = await asyncio.to_thread(ray.cluster_resources)
        free = await asyncio.to_thread(ray.available_resources)
        where = f"the Ray cluster at {self.address}"
        return AgentSlotCount(where, int(total.get(AGENT_RESOURCE, 0)), int(free.get(AGENT_RESOURCE, 0)))

    def close(self) -> None:
        if self._connected:
            ray.shutdown()
            self._connected = False

    def _connected_record(self) -> ActorHandle[Any]:
        assert self._record is not None, "connected first"
        return self._record

    async def _connect(self) -> None:
        async with self._connecting:
            if self._connected:
                return
            await _init(self.address)
            self._connected = True
            self._record = await asyncio.to_thread(_open_record)
            if not ray.cluster_resources().get(AGENT_RESOURCE, 0):  # type: ignore[no-untyped-call,unused-ignore]
                raise AdwError(
                    f"the Ray cluster at {self.address} has no agent slots",
                    "start its nodes with `ray start … --resources='{\"agent\": N}'`",
                )


async def _init(address: str) -> None:
    """Connect this process to the cluster (off the event loop: it takes seconds)."""
    await _answers(address)
    try:
        await asyncio.to_thread(ray.init, address=address, log_to_driver=False, logging_level=logging.ERROR)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise _no_cluster(address, str(exc)) from None


async def _answers(address: str) -> None:
    """A HOST:PORT where nothing listens fails now: `ray.init` would wait minutes for a head node there."""
    host, _, port = address.rpartition(":")
    if "://" in address or not host or not port.isdigit():
        return  # `auto`, `ray://…`: Ray finds or fails those itself
    try:
        async with asyncio.timeout(_REACH_TIMEOUT):
            _, writer = await asyncio.open_connection(host, int(port))
    except (OSError, TimeoutError) as exc:
        raise _no_cluster(address, f"nothing answers there ({exc or 'no answer in time'})") from None
    writer.close()


def _no_cluster(address: str, why: str) -> AdwError:
    return AdwError(
        f"no Ray cluster at {address}: {why}",
        "start one with `ray start --head --resources='{\"agent\": 4}'`, or pass its --address",
        "start one with `ray start --head --resources='{\"agent\": 4}'`, or set [tool.adw] address",
    )


async def read_cluster(address: str) -> ClusterStatus:
    await _init(address)
    try:
        nodes = [
            ClusterNode(
                node_id=node["NodeID"],
                address=node["NodeManagerAddress"],
                alive=node["Alive"],
                agent_slots=int(node["Resources"].get(AGENT_RESOURCE, 0)),
                cpus=node["Resources"].get("CPU", 0.0),
            )
            for node in ray.nodes()  # type: ignore[no-untyped-call,unused-ignore]
        ]
        total = ray.cluster_resources().get(AGENT_RESOURCE, 0)  # type: ignore[no-untyped-call,unused-ignore]
        free = ray.available_resources().get(AGENT_RESOURCE, 0)  # type: ignore[no-untyped-call,unused-ignore]
        try:
            record = ray.get_actor(_RECORD, namespace=_NAMESPACE)
            phases: list[RunningPhase] = ray.get(record.running.remote())
        except ValueError:  # no ADW phase ever ran on this cluster
            phases = []
    finally:
        ray.shutdown()
    alive = {node.node_id for node in nodes if node.alive}  # a dead node's phases are failing on their drivers
    return ClusterStatus(address=address, nodes=nodes, agent_slots=int(total), free_agent_slots=int(free),
                         phases=[phase for phase in phases if phase.node_id in alive])


@ray.remote(num_cpus=0)  # type: ignore[untyped-decorator,unused-ignore]
class _Record:
    """ADW's record on the cluster, one detached actor shared by every driver: the phases running (what `adw
    cluster status` names) and the answers to their agents' permission questions, on their way to the nodes."""

    def __init__(self) -> None:
        self._phases: dict[str, RunningPhase] = {}
        self._answers: dict[str, asyncio.Future[Answer]] = {}

    async def started(self, key: str, phase: RunningPhase) -> None:
        self._phases[key] = phase

    async def ended(self, key: str) -> None:
        self._phases.pop(key, None)

    async def running(self) -> list[RunningPhase]:
        return sorted(self._phases.values(), key=lambda phase: phase.since)

    async def answer(self, request_id: str, answer: Answer) -> None:
        future = self._answer(request_id)
        if not future.done():
            future.set_result(answer)

    async def wait_answer(self, request_id: str, timeout: float) -> Answer:
        try:
            async with asyncio.timeout(timeout):
                return await self._answer(request_id)
        except TimeoutError:
            return None
        finally:
            self._answers.pop(request_id, None)

    def _answer(self, request_id: str) -> asyncio.Future[Answer]:
        # Whichever comes first, the node's wait or the driver's answer, makes it.
        return self._answers.setdefault(request_id, asyncio.get_running_loop().create_future())


def _open_record() -> ActorHandle[Any]:
    """ADW's record on the cluster, made on first use on the driver's node (the head, as a rule)."""
    here = ray.get_runtime_context().get_node_id()
    return _Record.options(  # type: ignore[attr-defined,no-any-return,unused-ignore]
        name=_RECORD, namespace=_NAMESPACE, lifetime="detached", get_if_exists=True,
        scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=True),
    ).remote()


async def _follow(
    stream: ray.ObjectRefGenerator, events: TaskEvents, cancel: CancelToken, record: ActorHandle[Any]
) -> Returned | AgentResult | None:
    """Relay the task's events until it returns; a cancel reaches the agent on its node through ray.cancel, and
    its agent's permission questions are asked here, their answers sent back through `record`.
    None when cancelled; a failed result when the task failed on the cluster."""
    stopping = asyncio.ensure_future(cancel.wait())
    returned: Returned | None = None
    asking: set[asyncio.Task[None]] = set()
    try:
        iterator = stream.__aiter__()
        while True:
            step = asyncio.ensure_future(iterator.__anext__())
            await asyncio.wait({step, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not step.done():
                ray.cancel(stream)
                await asyncio.gather(step, return_exceptions=True)
                return None
            try:
                ref = step.result()
                item = await ref
            except StopAsyncIteration:
                return returned
            except TaskCancelledError:
                return None
            except (NodeDiedError, WorkerCrashedError) as exc:
                which = "cluster node" if isinstance(exc, NodeDiedError) else "Ray worker"
                return AgentResult.failed(
                    f"the {which} running the phase died ({_LOST_AGAIN}): `adw resume` runs it again"
                )
            except RayError as exc:
                return AgentResult.failed(f"the phase failed on the cluster: {exc}")
            if isinstance(item, Returned):
                returned = item
                continue
            for event in item:
                if isinstance(event, PermissionAsked):
                    asking.add(asyncio.create_task(_ask_here(event, events, record)))
                else:
                    events.relay(event)
    finally:
        stopping.cancel()
        for question in asking:  # the turn ended: its questions end with it, as locally
            question.cancel()
        await asyncio.gather(*asking, return_exceptions=True)


async def _ask_here(question: PermissionAsked, events: TaskEvents, record: ActorHandle[Any]) -> None:
    """Ask the task's watchers (the editor, the CLI, a policy) a question its agent asked on a node, and send
    the answer back, nobody's included."""
    answer = await events.ask(question)
    record.answer.remote(question.request_id, answer)


async def _commit_files(root: Path, head: str, message: str, scratch: Path) -> str:
    """A commit on `head` of every tracked and untracked, not ignored, file of `root`, built in a private index
    so that the worktree's own is neither locked nor changed. The private index starts as a copy of the
    worktree's (its mtime kept, so git trusts only the stat data it may: docs/RELIABILITY.md), so only changed
    files are hashed; where that copy is unusable (a split index), it starts from `head`'s tree."""
    index = {"GIT_INDEX_FILE": str(scratch / "index"), **_IDENTITY}
    own = Path((await git("rev-parse", "--path-format=absolute", "--git-path", "index", cwd=root)).stdout.strip())
    try:
        await asyncio.to_thread(shutil.copy2, own, scratch / "index")
        await git("add", "-A", cwd=root, env=index)
    except (OSError, GitError):
        await git("read-tree", head, cwd=root, env=index)
        await git("add", "-A", cwd=root, env=index)
    tree = (await git("write-tree", cwd=root, env=index)).stdout.strip()
    return (await git("commit-tree", tree, "-p", head, "-m", message, cwd=root, env=index)).stdout.strip()


async def ship(worktree: Path) -> Shipment:
    """The worktree as a bundle. Built in a scratch repository that borrows the worktree's objects, so no ref
    of the user's repository is written."""
    head = (await git("rev-parse", "HEAD", cwd=worktree)).stdout.strip()
    named = await git("symbolic-ref", "-q", "--short", "HEAD", cwd=worktree, ok_codes=(0, 1))
    objects = (await git("rev-parse", "--path-format=absolute", "--git-common-dir", cwd=worktree)).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="adw-ship-") as tmp:
        scratch = Path(tmp)
        state = await _commit_files(worktree, head, "adw: the worktree shipped to a cluster node", scratch)
        bare = scratch / "ship.git"
        await git("init", "-q", "--bare", bare, cwd=scratch)
        (bare / "objects/info/alternates").write_text(f"{objects}/objects\n", encoding="utf-8")
        await git("update-ref", _HEAD_REF, head, cwd=bare)
        await git("update-ref", _STATE_REF, state, cwd=bare)
        await git("bundle", "create", "-q", scratch / "ship.bundle", _HEAD_REF, _STATE_REF, cwd=bare)
        bundle = await asyncio.to_thread((scratch / "ship.bundle").read_bytes)  # a large repository's: off the loop
    return Shipment(bundle, head, state, named.stdout.strip() or None)


async def land(worktree: Path, shipment: Shipment, returned: Returned) -> None:
    """Make the worktree what the agent left on the node: its commits on the branch, the files it changed."""
    with tempfile.TemporaryDirectory(prefix="adw-land-") as tmp:
        bundle = Path(tmp) / "result.bundle"
        await asyncio.to_thread(bundle.write_bytes, returned.bundle)
        await git("bundle", "unbundle", bundle, cwd=worktree)  # only the objects: no ref changes
    if returned.head != shipment.head:
        await git("update-ref", "-m", "adw: commits of a phase run on a cluster node", "HEAD", returned.head,
                  shipment.head, cwd=worktree)
        await git("read-tree", returned.head, cwd=worktree)  # as after the agent's own `git commit`
    changed = await git("diff", "--name-only", "-z", "--no-renames", shipment.state, returned.state, cwd=worktree)
    paths = [path for path in changed.stdout.split("\0") if path]
    if paths:
        await restore(worktree, returned.state, paths)


# -- on the node ---------------------------------------------------------------------------------------------


async def _unpack(shipment: Shipment, scratch: Path) -> Path:
    """A fresh worktree of the shipment: HEAD (on the same branch name) as shipped, the files as shipped."""
    bundle = scratch / "ship.bundle"
    bundle.write_bytes(shipment.bundle)
    root = scratch / "worktree"
    await git("clone", "-q", "--no-checkout", bundle, root, cwd=scratch)
    await git("checkout", "-q", "-B", shipment.branch or "adw-phase", shipment.head, cwd=root)
    await git("read-tree", "-u", "--reset", shipment.state, cwd=root)
    await git("reset", "-q", cwd=root)  # the index back at HEAD: the shipped untracked files stay untracked
    return root


async def _pack(root: Path, shipment: Shipment, scratch: Path) -> tuple[bytes, str, str]:
    """The bundle of what the agent left (without what the driver has), its HEAD, and the commit of its files."""
    head = (await git("rev-parse", "HEAD", cwd=root)).stdout.strip()
    state = await _commit_files(root, head, "adw: the worktree a cluster node returned", scratch)
    await git("update-ref", _RESULT_REF, state, cwd=root)
    bundle = scratch / "result.bundle"
    await git("bundle", "create", "-q", bundle, _RESULT_REF, f"^{shipment.head}", f"^{shipment.state}", cwd=root)
    return bundle.read_bytes(), head, state


@ray.remote  # type: ignore[untyped-decorator,unused-ignore]  # (untyped where Ray is not installed)
def _phase_task(
    phase: Phase, shipment: Shipment, secrets: dict[str, str], record: ActorHandle[Any], key: str
) -> Iterator[list[BaseEvent] | Returned]:
    record.started.remote(key, RunningPhase(
        workflow_id=phase.workflow.id, workflow=phase.workflow.name, task_id=phase.task.id, phase=phase.task.phase,
        agent=phase.task.agent, node_id=ray.get_runtime_context().get_node_id(), host=socket.gethostname(),
        since=time.time(),
    ))
    marker = task_marker(phase.workflow.id, phase.task.id)
    # Stops the agent if this worker dies (its node with it) before it can. Fixed argv: this interpreter, ADW's module.
    orphans = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "adw.workflow.orphans", marker], stdin=subprocess.PIPE, start_new_session=True
    )
    orphans.wait()  # it forked the watcher off and left
    with tempfile.TemporaryDirectory(prefix="adw-phase-") as tmp:
        runner = _AgentThread(phase, shipment, secrets, Path(tmp), _AskTheDriver(record))
        runner.start()
        try:
            while runner.is_alive() or not runner.events.empty():
                with contextlib.suppress(queue.Empty):
                    yield _batch(runner.events)
        finally:  # ray.cancel raises KeyboardInterrupt here: the agent goes through its signals, then its tree
            runner.stop()
            orphans.communicate(DONE)
            record.ended.remote(key)
        if runner.returned is None:
            raise RuntimeError(runner.error or "the agent ended without a result")
        yield runner.returned


def _batch(events: queue.Queue[BaseEvent]) -> list[BaseEvent]:
    """The next event, waited for, and every one already queued behind it: one object for a burst of output
    (each yielded item is an object the driver owns), without holding back an event to fill a batch."""
    batch = [events.get(timeout=_POLL)]
    with contextlib.suppress(queue.Empty):
        while len(batch) < _BATCH:
            batch.append(events.get_nowait())
    return batch


class _AskTheDriver(EventBus):
    """The events of a phase on its node. A permission question its agent asks goes to the driver with them,
    where the task's watchers answer it as they would a local one; the answer comes back through ADW's record
    on the cluster. The question names paths as the driver's worktree has them."""

    def __init__(self, record: ActorHandle[Any]) -> None:
        super().__init__()
        self.record = record
        self.roots: tuple[Path, Path] | None = None  # (the fresh clone here, the worktree it stands for there)

    async def ask(self, question: PermissionAsked) -> Answer:
        if self.roots is not None:
            question = question.model_copy(update={"paths": [self._there(path) for path in question.paths]})
        self.publish(question)
        answer: Answer = await self.record.wait_answer.remote(question.request_id, question.timeout + _ANSWER_MARGIN)
        return answer

    def _there(self, path: str) -> str:
        assert self.roots is not None
        here, there = self.roots
        return str(there / Path(path).relative_to(here)) if Path(path).is_relative_to(here) else path


class _AgentThread(threading.Thread):
    """The agent's own event loop, beside the task's thread that yields its events."""

    def __init__(
        self, phase: Phase, shipment: Shipment, secrets: dict[str, str], scratch: Path, bus: _AskTheDriver
    ) -> None:
        super().__init__(name="adw-agent", daemon=True)
        self.phase = phase
        self.shipment = shipment
        self.secrets = secrets
        self.scratch = scratch
        self.bus = bus
        self.events: queue.Queue[BaseEvent] = queue.Queue()
        self.returned: Returned | None = None
        self.error = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._token: CancelToken | None = None
        self._ready = threading.Event()
        self._processes: dict[int, float] = {}

    def run(self) -> None:
        try:
            run(self._main())
        except Exception as exc:  # an adapter bug fails the phase, as it would locally
            self.error = f"agent {self.phase.task.agent} crashed: {type(exc).__name__}: {exc}"
        finally:
            self._ready.set()

    async def _main(self) -> None:
        phase = self.phase
        self._loop, self._token = asyncio.get_running_loop(), CancelToken()
        self._ready.set()
        bus = self.bus
        bus.add_sink(self.events.put)
        events = TaskEvents(
            bus, phase.workflow.id, phase.task.id,
            on_process=self._processes.__setitem__, on_process_exit=self._exited,
        )
        events.placed(ray.get_runtime_context().get_node_id(), socket.gethostname())
        root = await _unpack(self.shipment, self.scratch)
        bus.roots = (root, phase.worktree)
        # The secrets go into this copy's environment only, which every agent passes to its process (not into
        # the worker's own environment: the worker runs other phases after this one).
        workflow = phase.workflow.model_copy(update={"cwd": str(root), "env": {**phase.workflow.env, **self.secrets}})
        agent = phase.factory(workflow, phase.settings)
        result = await agent.run(phase.task, root, events, self._token)
        if not self._token.requested:
            bundle, head, state = await _pack(root, self.shipment, self.scratch)
            self.returned = Returned(result, bundle, head, state)

    def _exited(self, pid: int) -> None:
        self._processes.pop(pid, None)

    def stop(self) -> None:
        """Ask the agent to stop if it still runs, wait for it, then stop whatever of its tree is left."""
        self._ready.wait()
        if self.is_alive() and self._loop is not None and self._token is not None:
            self._loop.call_soon_threadsafe(self._token.cancel, "cancelled on the cluster")
            self.join(self.phase.settings.stop_grace * 3 + 5)
        marker = task_marker(self.phase.workflow.id, self.phase.task.id)
        trees = [AgentTree(pid, created, marker) for pid, created in self._processes.items()]
        if trees:
            run(_stop_all(trees, self.phase.settings.stop_grace))


async def _stop_all(trees: list[AgentTree], grace: float) -> None:
    await asyncio.gather(*(stop_tree(tree, grace) for tree in trees))
