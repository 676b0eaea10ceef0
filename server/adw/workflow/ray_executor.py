"""The `ray` executor: each agent phase runs as a task of a Ray cluster, on a node with a free agent slot.

No filesystem is shared. The driver ships the worktree as its HEAD and a commit of its current files (tracked
and untracked, not ignored): HEAD's history through the object store, once per commit, fetched only by a node
whose cache lacks it; the commit of the files as a pack of what it adds (adw.workflow.shipping). The node runs
the agent in a worktree of its cache, streams its events back (a generator task: each event reaches the driver
while the agent runs), and returns a pack of what the agent added. The driver stores those objects and writes the
files the agent changed into its own worktree (and moves its branch if the agent committed), so the engine's
checkpoints, undo, commit and merge preview see what a local phase would have left.

Only adw.workflow.executor imports this module, and only when `executor = "ray"`: ADW without Ray never
imports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import socket
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import ray
from ray.exceptions import RayError, TaskCancelledError

from adw.errors import AdwError
from adw.git.runner import run
from adw.process import AgentTree, stop_tree, task_marker
from adw.workflow.agent import CancelToken
from adw.workflow.events import BaseEvent, EventBus, TaskEvents
from adw.workflow.executor import ClusterNode, ClusterStatus, Phase
from adw.workflow.judge import JUDGED_AGENTS
from adw.workflow.models import AgentResult
from adw.workflow.shipping import Bases, NodeCache, Shipment, land, pack_back, ship

AGENT_RESOURCE = "agent"  # one unit per agent slot of a node: `ray start --resources='{"agent": 4}'`
_CHECK_RETRIES = 2  # a check (tests, lint) costs nothing to run again when its node dies; an LLM agent does
_POLL = 0.1
_BATCH = 500


@dataclass(frozen=True)
class Returned:
    """The last item of a phase task: the agent's result and `state`, a commit of the files it left, on `head`
    (the node's HEAD then: the shipped one unless the agent committed); `pack` holds their objects beyond the
    shipment's (empty when the agent changed nothing)."""

    result: AgentResult
    pack: bytes
    head: str
    state: str


class RayExecutor:
    def __init__(self, address: str, secrets: list[str]) -> None:
        self.address = address
        self.secrets = secrets
        self._connected = False
        self._connecting = asyncio.Lock()
        self._bases = Bases(ray.put)  # its handles live as long as this connection

    async def run(self, phase: Phase, events: TaskEvents, cancel: CancelToken) -> AgentResult:
        await self._connect()
        shipment = await ship(phase.worktree, self._bases)
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
        stream = _phase_task.options(**options).remote(phase, shipment, secrets)
        returned = await _follow(stream, events, cancel)
        if not isinstance(returned, Returned):
            return returned or AgentResult.failed(cancel.reason or "the phase ended on the cluster without a result")
        await land(phase.worktree, shipment, returned.pack, returned.head, returned.state)
        return returned.result

    def close(self) -> None:
        if self._connected:
            ray.shutdown()
            self._connected = False
            self._bases = Bases(ray.put)

    async def _connect(self) -> None:
        async with self._connecting:
            if self._connected:
                return
            await _init(self.address)
            self._connected = True
            if not ray.cluster_resources().get(AGENT_RESOURCE, 0):  # type: ignore[no-untyped-call,unused-ignore]
                raise AdwError(
                    f"the Ray cluster at {self.address} has no agent slots",
                    "start its nodes with `ray start … --resources='{\"agent\": N}'`",
                )


async def _init(address: str) -> None:
    """Connect this process to the cluster (off the event loop: it takes seconds)."""
    try:
        await asyncio.to_thread(ray.init, address=address, log_to_driver=False, logging_level=logging.ERROR)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise AdwError(
            f"no Ray cluster at {address}: {exc}",
            "start one with `ray start --head --resources='{\"agent\": 4}'`, or pass its --address",
            "start one with `ray start --head --resources='{\"agent\": 4}'`, or set [tool.adw] address",
        ) from None


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
    finally:
        ray.shutdown()
    return ClusterStatus(address=address, nodes=nodes, agent_slots=int(total), free_agent_slots=int(free))


async def _follow(
    stream: ray.ObjectRefGenerator, events: TaskEvents, cancel: CancelToken
) -> Returned | AgentResult | None:
    """Relay the task's events until it returns (its last item: not waiting for the stream's end saves a round
    trip); a cancel reaches the agent on its node through ray.cancel. None when cancelled or the task ended
    without a result; a failed result when the task failed on the cluster."""
    stopping = asyncio.ensure_future(cancel.wait())
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
                return None
            except TaskCancelledError:
                return None
            except RayError as exc:
                return AgentResult.failed(f"the phase failed on the cluster: {exc}")
            if isinstance(item, Returned):
                return item
            for event in item:
                events.relay(event)
    finally:
        stopping.cancel()


@ray.remote  # type: ignore[untyped-decorator,unused-ignore]  # (untyped where Ray is not installed)
def _phase_task(
    phase: Phase, shipment: Shipment, secrets: dict[str, str]
) -> Iterator[list[BaseEvent] | Returned]:
    with tempfile.TemporaryDirectory(prefix="adw-phase-") as tmp:
        runner = _AgentThread(phase, shipment, secrets, Path(tmp))
        runner.start()
        try:
            ended = False
            while not ended:
                with contextlib.suppress(queue.Empty):
                    batch, ended = _batch(runner.events)
                    if batch:
                        yield batch
        finally:  # ray.cancel raises KeyboardInterrupt here: the agent goes through its signals, then its tree
            runner.stop()
        if runner.returned is None:
            raise RuntimeError(runner.error or "the agent ended without a result")
        yield runner.returned


def _batch(events: queue.Queue[BaseEvent | None]) -> tuple[list[BaseEvent], bool]:
    """The next event, waited for, and every one already queued behind it: one object for a burst of output
    (each yielded item is an object the driver owns), without holding back an event to fill a batch; and whether
    the agent's thread has ended (its last item, None, taken). The wait is short, so that ray.cancel's interrupt
    gets its turn, and ends as soon as the agent does."""
    batch: list[BaseEvent] = []
    item = events.get(timeout=_POLL)
    while item is not None:
        batch.append(item)
        if len(batch) == _BATCH:
            return batch, False
        try:
            item = events.get_nowait()
        except queue.Empty:
            return batch, False
    return batch, True


class _AgentThread(threading.Thread):
    """The agent's own event loop, beside the task's thread that yields its events."""

    def __init__(self, phase: Phase, shipment: Shipment, secrets: dict[str, str], scratch: Path) -> None:
        super().__init__(name="adw-agent", daemon=True)
        self.phase = phase
        self.shipment = shipment
        self.secrets = secrets
        self.scratch = scratch
        self.events: queue.Queue[BaseEvent | None] = queue.Queue()
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
            self.events.put(None)

    async def _main(self) -> None:
        phase = self.phase
        self._loop, self._token = asyncio.get_running_loop(), CancelToken()
        self._ready.set()
        bus = EventBus()
        bus.add_sink(self.events.put)
        events = TaskEvents(
            bus, phase.workflow.id, phase.task.id,
            on_process=self._processes.__setitem__, on_process_exit=self._exited,
        )
        context = ray.get_runtime_context()
        node = context.get_node_id()
        cache = NodeCache(Path(context.get_temp_dir()) / "adw-cache" / node[:16] / self.shipment.repository)
        fetched = await cache.ensure(self.shipment.base, _fetch)
        held = f"fetched its history, {fetched} bytes" if fetched else "its history from the node's cache"
        events.progress(f"running on node {node[:12]} ({socket.gethostname()}): {self.shipment.head[:12]}, {held}")
        root = await cache.checkout(self.shipment, self.scratch)
        # The secrets go into this copy's environment only, which every agent passes to its process (not into
        # the worker's own environment: the worker runs other phases after this one).
        workflow = phase.workflow.model_copy(update={"cwd": str(root), "env": {**phase.workflow.env, **self.secrets}})
        agent = phase.factory(workflow, phase.settings)
        result = await agent.run(phase.task, root, events, self._token)
        if not self._token.requested:
            self.returned = Returned(result, *await pack_back(root, self.shipment, self.scratch))

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


def _fetch(pack: object) -> bytes:
    fetched: bytes = ray.get(pack)  # type: ignore[call-overload,unused-ignore]  # a handle Bases put
    return fetched


async def _stop_all(trees: list[AgentTree], grace: float) -> None:
    await asyncio.gather(*(stop_tree(tree, grace) for tree in trees))
