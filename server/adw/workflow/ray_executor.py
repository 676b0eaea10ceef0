"""The `ray` executor: each agent phase runs as a task of a Ray cluster, on a node with a free agent slot.

No filesystem is shared. The driver ships the worktree as its HEAD and a commit of its current files (tracked
and untracked, not ignored): HEAD's history through the object store, once per commit, fetched only by a node
whose cache lacks it; the commit of the files as a pack of what it adds (adw.workflow.shipping). The node runs
the agent in a worktree of its cache, sends its events back while the agent runs (in batches, through ADW's record
on the cluster, which the driver long-polls: unlike a generator task's items, this works through Ray Client, a
`ray://` address, too), and returns a pack of what the agent added. The driver stores those objects and writes the
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
import shutil
import socket
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
from ray._private import auto_init_hook
from ray.actor import ActorHandle
from ray.exceptions import NodeDiedError, RayError, RayTaskError, TaskCancelledError, WorkerCrashedError

from adw.errors import AdwError
from adw.git.runner import run
from adw.process import AgentTree, stop_tree, task_marker
from adw.workflow.agent import CancelToken
from adw.workflow.events import BaseEvent, EventBus, PermissionAsked, PermissionChoice, TaskEvents
from adw.workflow.executor import AgentSlotCount, ClusterNode, ClusterStatus, Phase, RunningPhase
from adw.workflow.judge import JUDGED_AGENTS
from adw.workflow.models import AgentResult
from adw.workflow.orphans import watching
from adw.workflow.shipping import Bases, NodeCache, Shipment, land, pack_back, ship

# A Ray call after the connection is gone (Ray Client's dropped, or closed) fails instead of starting a Ray
# instance on this machine, which would also leave a token in ~/.ray that every later `ray start` here demands.
auto_init_hook.enable_auto_connect = False

AGENT_RESOURCE = "agent"  # one unit per agent slot of a node: `ray start --resources='{"agent": 4}'`
_CHECK_RETRIES = 2  # a check (tests, lint) costs nothing to run again when its node dies; an LLM agent does
_POLL = 0.1
_LAST_WORD = 30.0  # how long a driver waits for the rest of a phase's events once the phase returned
_REACH_TIMEOUT = 10.0
_BATCH = 500
# The record's name says its protocol: a cluster may still hold the record of an older ADW (its `push` without `last`).
_NAMESPACE, _RECORD = "adw", "adw-record-3"
_RECORD_CALLS = 10_000  # at once: a running phase holds one (its driver's long poll), a permission question two
_HEAD = "node:__internal_head__"  # a resource only the head node offers
_GONE_KEPT = 10_000  # phases whose drivers left, remembered so that a node starting one late records nothing
_LOST_AGAIN = "an LLM agent's phase is not run again by itself, it costs money; a check is, twice"
_ANSWER_MARGIN = 10.0  # a node waits this much longer than the driver for an answer: "nobody answered" comes back
Answer = tuple[PermissionChoice, str] | None  # a permission question's answer and who gave it; None: nobody did


@dataclass(frozen=True)
class Returned:
    """What a phase task returns: the agent's result and `state`, a commit of the files it left, on `head`
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
        self._record: ActorHandle[Any] | None = None

    async def run(self, phase: Phase, events: TaskEvents, cancel: CancelToken) -> AgentResult:
        try:
            await self._connect()
        except AdwError as exc:  # no cluster there: the phase fails saying so, as any agent failure
            return AgentResult.failed(exc.message)
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
        record, key = self._connected_record(), uuid.uuid4().hex
        task = _phase_task.options(**options).remote(phase, shipment, secrets, record, key)
        returned = await _follow(task, key, events, cancel, record)
        if not isinstance(returned, Returned):
            return returned or AgentResult.failed(cancel.reason or "the phase ended on the cluster without a result")
        await land(phase.worktree, shipment, returned.pack, returned.head, returned.state)
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
            self._bases = Bases(ray.put)

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
        raise _no_cluster(address, _without_traceback(str(exc))) from None


def _without_traceback(why: str) -> str:
    """Ray's reason, without the traceback Ray Client's server sends along: what it says before and its last line
    (seen: "Initialization failure from server:" and a traceback ending in psutil's ZombieProcess)."""
    before, traceback, rest = why.partition("Traceback (most recent call last):")
    if not traceback:
        return why
    last = next((line.strip() for line in reversed(rest.splitlines()) if line.strip()), "")
    return f"{before.strip()} {last}".strip()


async def _answers(address: str) -> None:
    """A [ray://]HOST:PORT where nothing listens fails now: `ray.init` would wait minutes for a head node there."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if "://" in host or not host or not port.isdigit():
        return  # `auto`: Ray finds or fails it itself
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


@dataclass
class _Events:
    """A phase's events on their way from its node to its driver."""

    batches: list[list[BaseEvent]] = field(default_factory=list)
    closed: bool = False  # the task sent its last
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class PhaseRecord:
    """ADW's record on the cluster, one detached actor shared by every driver: the phases running (what `adw
    cluster status` names), their events on their way to the drivers, and the answers to their agents'
    permission questions, on their way to the nodes. Keyed by a phase's key, which its driver drew. A phase is
    forgotten once its driver took its last word, or said it `ended` without it."""

    def __init__(self) -> None:
        self._phases: dict[str, RunningPhase] = {}
        self._events: dict[str, _Events] = {}
        self._gone: dict[str, None] = {}  # oldest first
        self._answers: dict[str, asyncio.Future[Answer]] = {}

    async def started(self, key: str, phase: RunningPhase) -> None:
        """The node's first word; when its driver has already left (cancelled), the phase is recorded nowhere."""
        if key not in self._gone:
            self._phases[key] = phase
            self._events.setdefault(key, _Events())

    async def push(self, key: str, batch: list[BaseEvent], last: bool) -> None:
        """The node's events; `last`: its last word (the phase no longer runs), with its last events."""
        if last:
            self._phases.pop(key, None)
        if (events := self._events.get(key)) is not None:
            events.batches.append(batch)
            events.closed = events.closed or last
            events.changed.set()

    async def take(self, key: str) -> tuple[list[BaseEvent], bool]:
        """The driver's long poll: the phase's events sent since the last take, once there are any or the task
        sent its last (and whether it did)."""
        if key in self._gone:
            return [], False
        events = self._events.setdefault(key, _Events())
        while not (events.batches or events.closed) and key in self._events:
            events.changed.clear()
            await events.changed.wait()
        batches, events.batches = events.batches, []
        if events.closed:  # the driver has every event: it need not say `ended`
            self._forget(key)
        return [event for batch in batches for event in batch], events.closed

    async def ended(self, key: str) -> None:
        """The driver's last word when it did not take the node's: cancelled, or its node died."""
        self._phases.pop(key, None)
        if (events := self._events.get(key)) is not None:
            events.changed.set()  # a take still waiting ends
        self._forget(key)

    def _forget(self, key: str) -> None:
        self._events.pop(key, None)
        self._gone[key] = None
        if len(self._gone) > _GONE_KEPT:
            del self._gone[next(iter(self._gone))]

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


_Record = ray.remote(num_cpus=0)(PhaseRecord)


def _open_record() -> ActorHandle[Any]:
    """ADW's record on the cluster, made on first use, on the head node: the cluster's own lifeline, where a
    worker node's death does not take every phase's events with it (the driver's node is not it when the
    driver attached to a worker node, or comes through Ray Client). The head's resource, as Ray Train places its
    state actor."""
    return _Record.options(  # type: ignore[no-any-return,return-value,unused-ignore]
        name=_RECORD, namespace=_NAMESPACE, lifetime="detached", get_if_exists=True, max_concurrency=_RECORD_CALLS,
        resources={_HEAD: 0.001},
    ).remote()


async def _follow(
    task: ray.ObjectRef[Returned | AgentResult], key: str, events: TaskEvents, cancel: CancelToken,
    record: ActorHandle[Any],
) -> Returned | AgentResult | None:
    """Relay the task's events (long-polled from `record`, where its node sends them) until it returns; a cancel
    reaches the agent on its node through ray.cancel, and its agent's permission questions are asked here, their
    answers sent back through `record`. None when cancelled; a failed result when the task failed on the
    cluster. Unless it took the node's last word, it tells `record` the phase `ended` (its node may have died
    before it could say so itself)."""
    stopping = asyncio.ensure_future(cancel.wait())
    ending: asyncio.Future[Returned | AgentResult] = asyncio.ensure_future(task)
    watching: set[asyncio.Future[Any]] = {stopping, ending}
    polling: asyncio.Future[tuple[list[BaseEvent], bool]] | None = None
    asking: set[asyncio.Task[None]] = set()
    closed = False
    try:
        while True:
            polling = polling or asyncio.ensure_future(record.take.remote(key))
            waited = None if ending in watching else _LAST_WORD
            done, _ = await asyncio.wait({polling, *watching}, timeout=waited, return_when=asyncio.FIRST_COMPLETED)
            if not done:  # it returned, but its last word never reached the record: its node died right after
                return _outcome(ending)
            if stopping.done():
                ray.cancel(task)
                await asyncio.gather(ending, return_exceptions=True)
                return None
            if ending in watching and ending.done():
                if ending.exception() is not None:  # its node died, or it did not get to its end
                    return _outcome(ending)
                watching.discard(ending)  # it sent its last events before it returned: take them
            if not polling.done():
                continue
            try:
                batch, closed = polling.result()
            except RayError as exc:  # the record is gone (the head with it, as a rule): so are the events
                ray.cancel(task)
                return AgentResult.failed(f"the phase's events were lost on the cluster: {exc}")
            polling = None
            for event in batch:
                if isinstance(event, PermissionAsked):
                    asking.add(asyncio.create_task(_ask_here(event, events, record)))
                else:
                    events.relay(event)
            if closed:  # it returns right after; the record forgot the phase
                await asyncio.wait({ending})
                return _outcome(ending)
    finally:
        stopping.cancel()
        if not closed:
            record.ended.remote(key)
        for call in (ending, polling):  # a take still waiting returns once the driver says it `ended`
            if call is not None:
                _let_go(call)
        for question in asking:  # the turn ended: its questions end with it, as locally
            question.cancel()
        await asyncio.gather(*asking, return_exceptions=True)


def _let_go(call: asyncio.Future[Any]) -> None:
    """Leave a Ray call to end by itself, unheard. Not cancelled: Ray Client fails, in a thread of its own, to
    answer a call whose future was cancelled."""
    call.add_done_callback(lambda done: done.cancelled() or done.exception())


def _outcome(ending: asyncio.Future[Returned | AgentResult]) -> Returned | AgentResult | None:
    """What the task returned, or why it did not: None when it was cancelled."""
    exc = ending.exception()
    if exc is None:
        return ending.result()
    # Through Ray Client the failure of an awaited task comes as a bare RayTaskError: its cause says which.
    cause = exc.cause if isinstance(exc, RayTaskError) else exc
    if isinstance(exc, TaskCancelledError) or isinstance(cause, TaskCancelledError):
        return None
    if isinstance(cause, NodeDiedError | WorkerCrashedError):
        which = "cluster node" if isinstance(cause, NodeDiedError) else "Ray worker"
        return AgentResult.failed(f"the {which} running the phase died ({_LOST_AGAIN}): `adw resume` runs it again")
    if isinstance(exc, RayError):
        return AgentResult.failed(f"the phase failed on the cluster: {exc}")
    raise exc


async def _ask_here(question: PermissionAsked, events: TaskEvents, record: ActorHandle[Any]) -> None:
    """Ask the task's watchers (the editor, the CLI, a policy) a question its agent asked on a node, and send
    the answer back, nobody's included."""
    answer = await events.ask(question)
    record.answer.remote(question.request_id, answer)


@ray.remote  # type: ignore[untyped-decorator,unused-ignore]  # (untyped where Ray is not installed)
def _phase_task(
    phase: Phase, shipment: Shipment, secrets: dict[str, str], record: ActorHandle[Any], key: str
) -> Returned | AgentResult:
    # The node's first word; each push waits for the call before it, so the record hears them in order.
    sending: list[ray.ObjectRef[None]] = [record.started.remote(key, RunningPhase(
        workflow_id=phase.workflow.id, workflow=phase.workflow.name, task_id=phase.task.id, phase=phase.task.phase,
        agent=phase.task.agent, node_id=ray.get_runtime_context().get_node_id(), host=socket.gethostname(),
        since=time.time(),
    ))]
    marker = task_marker(phase.workflow.id, phase.task.id)
    scratch = Path(tempfile.mkdtemp(prefix="adw-phase-"))
    # The watcher stops the agent if this worker dies (its node with it) before the agent stopped.
    with watching(marker):
        runner = _AgentThread(phase, shipment, secrets, scratch, _AskTheDriver(record))
        runner.start()
        # The last word comes with the last events: the driver takes every event before it returns the result.
        # It is not waited for (its driver waits for it a while, then goes on without it), nor is the worktree's
        # removal: a phase ends when its agent's work is on its way.
        said_last = False
        try:
            while not said_last:
                with contextlib.suppress(queue.Empty):
                    batch, ended = _batch(runner.events)
                    if batch or ended:
                        ray.get(sending)  # meanwhile the next batch gathers
                        sending = [record.push.remote(key, batch, ended)]
                        said_last = ended
        finally:  # ray.cancel raises KeyboardInterrupt here: the agent goes through its signals, then its tree
            runner.stop()
            if not said_last:
                ray.get(sending)
                record.push.remote(key, [], True)
            threading.Thread(target=shutil.rmtree, args=(scratch, True), name="adw-scratch", daemon=True).start()
    return runner.returned or AgentResult.failed(runner.error or "the agent ended without a result")


def _batch(events: queue.Queue[BaseEvent | None]) -> tuple[list[BaseEvent], bool]:
    """The next event, waited for, and every one already queued behind it: one push for a burst of output,
    without holding back an event to fill a batch; and whether the agent's thread has ended (its last item, None,
    taken). The wait is short, so that ray.cancel's interrupt gets its turn, and ends as soon as the agent does."""
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


class _AskTheDriver(EventBus):
    """The events of a phase on its node. A permission question its agent asks goes to the driver with them,
    where the task's watchers answer it as they would a local one; the answer comes back through ADW's record
    on the cluster. The question names paths as the driver's worktree has them."""

    def __init__(self, record: ActorHandle[Any]) -> None:
        super().__init__()
        self.record = record
        self.roots: tuple[Path, Path] | None = None  # (the worktree here, the worktree it stands for there)

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
    """The agent's own event loop, beside the task's thread that sends its events."""

    def __init__(
        self, phase: Phase, shipment: Shipment, secrets: dict[str, str], scratch: Path, bus: _AskTheDriver
    ) -> None:
        super().__init__(name="adw-agent", daemon=True)
        self.phase = phase
        self.shipment = shipment
        self.secrets = secrets
        self.scratch = scratch
        self.bus = bus
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
        bus = self.bus
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
        events.placed(node, socket.gethostname())
        events.progress(f"running on node {node[:12]} ({socket.gethostname()}): {self.shipment.head[:12]}, {held}")
        checkout = await cache.checkout(self.shipment, self.scratch)
        root = checkout.root
        bus.roots = (root, phase.worktree)
        # The secrets go into this copy's environment only, which every agent passes to its process (not into
        # the worker's own environment: the worker runs other phases after this one).
        workflow = phase.workflow.model_copy(update={"cwd": str(root), "env": {**phase.workflow.env, **self.secrets}})
        agent = phase.factory(workflow, phase.settings)
        result = await agent.run(phase.task, root, events, self._token)
        if not self._token.requested:
            self.returned = Returned(result, *await pack_back(checkout, self.shipment, self.scratch))

    def _exited(self, pid: int) -> None:
        self._processes.pop(pid, None)

    def stop(self) -> None:
        """Ask the agent to stop if it still runs, wait for it, then stop whatever of its tree is left."""
        self._ready.wait()
        if self.is_alive() and self._loop is not None and self._token is not None:
            with contextlib.suppress(RuntimeError):  # its loop closed since: the agent ended, the thread is ending
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
