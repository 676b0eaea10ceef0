"""The ray executor on a local cluster (issue #16): what a phase costs beyond a local one, what shipping a large
worktree costs, and the speedup from one node to two of equal agent slots.

    PYTHONPATH=. .venv/bin/python benchmarks/scale.py [--agents 100] [--seconds 1] [--slots 4] [--files 10000]
        [--chain 20] [--client] [--json FILE]

Needs `pip install -e '.[ray]'`. Starts its own cluster (`ray start` in a temporary directory, one CPU per node)
and stops it (and no other cluster) at the end. Run as a script: its simulated agent travels to the nodes by value.

1. Overhead: `--chain` phases of an agent that does nothing, one after another, on the local executor and on the
   ray executor (one node, its cache warm), each on a one-file repository; the mean per phase of each, and of
   the transfer's steps alone, in this process: `ship` on the driver (HEAD's history from the driver's cache,
   the commit of the worktree's files), the node's checkout and its pack back (the agent changed nothing, so
   the driver lands nothing). Overhead beyond ship = ray − local − ship; beyond the transfer, less the node's
   two steps too: what Ray, the events' path and the node's phase around the agent cost.
2. Transfer: a repository of `--files` files (one commit): the size of its history's pack and `ship`'s time with
   the driver's cache cold; one round trip of the do-nothing agent with the node's cache cold (it fetches the
   history), then one with one file changed and the node's cache warm: its time and the bytes that travelled
   (the pack of the worktree's files, the history the node fetched, the pack back).
3. Speedup: `--agents` phases of an agent that waits `--seconds` (I/O-bound, no CPU), all submitted at once, on
   one node of `--slots` agent slots, then on two; and on the local executor with the same number of slots.
4. Cancel: a `command` agent sleeping on the node, cancelled; the seconds until its process is gone.

With `--client` the executor connects through Ray Client (`ray://`, the head's client server) instead of the
head's GCS address, as ADW outside the cluster does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import ray
from tests.cluster.conftest import stop_cluster, wait_listening

from adw.config import AgentsConfig, PhaseConfig
from adw.sdlc.engine import agent_factories
from adw.workflow.agent import CancelToken
from adw.workflow.events import BaseEvent, EventBus, OutputLine, Progress, TaskEvents
from adw.workflow.executor import Executor, LocalExecutor, Phase
from adw.workflow.models import Task, Workflow
from adw.workflow.ray_executor import AGENT_RESOURCE, RayExecutor
from adw.workflow.shipping import Bases, NodeCache, pack_back, ship
from parallel import Wait

RAY = Path(sys.executable).with_name("ray")
_GIT_ENV = {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@b"}


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, env={**os.environ, **_GIT_ENV})


def make_repo(root: Path, files: int) -> Path:
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    for i in range(files):
        folder = root / f"src/m{i // 100:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i:05d}.py").write_text(f"VALUE_{i} = {i}\n" + "# filler line of source\n" * 20)
    (root / "README.md").write_text("# bench\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root


def phase(root: Path, seconds: float, number: int) -> Phase:
    task = Task(id=f"t{number}", phase="build", agent="sim")
    workflow = Workflow(id=f"bench-{number}", name="bench", repo=str(root), cwd=str(root), tasks=[task])
    return Phase(Wait(seconds), workflow, AgentsConfig(), task, root)


async def run_one(executor: Executor, job: Phase) -> int:
    """Run the phase; the bytes of history its node fetched (0 when its cache held them, or run locally)."""
    bus, said = EventBus(), []

    def fetched(event: BaseEvent) -> None:
        if isinstance(event, Progress) and (found := re.search(r"fetched its history, (\d+) bytes", event.message)):
            said.append(int(found[1]))

    bus.add_sink(fetched)
    result = await executor.run(job, TaskEvents(bus, job.workflow.id, job.task.id), CancelToken())
    assert result.status == "succeeded", result.reason
    return sum(said)


async def cancel_to_gone(executor: Executor, root: Path, scratch: Path) -> float:
    """Seconds from a cancel to the moment the agent's process on the node is gone: a `command` agent that
    writes its pid and sleeps."""
    pid_file = scratch / "agent.pid"
    argv = [sys.executable, "-c", f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); "
            "print('working', flush=True); time.sleep(600)"]
    task = Task(id="cancel", phase="build", agent="command", config=PhaseConfig(agent="command", command=argv))
    workflow = Workflow(id="bench-cancel", name="bench", repo=str(root), cwd=str(root), tasks=[task])
    job = Phase(agent_factories()["command"], workflow, AgentsConfig(stop_grace=0.5), task, root)
    bus, token = EventBus(), CancelToken()
    async with bus.subscribe() as events:
        running = asyncio.create_task(executor.run(job, TaskEvents(bus, workflow.id, task.id), token))
        async for event in events:
            if isinstance(event, OutputLine):
                break
    pid = int(pid_file.read_text())
    started = time.perf_counter()
    token.cancel("cancelled by the benchmark")
    await running
    await asyncio.to_thread(_wait_gone, pid)
    return time.perf_counter() - started


def _wait_gone(pid: int) -> None:
    with contextlib.suppress(psutil.NoSuchProcess):
        psutil.Process(pid).wait(timeout=60)  # not our child: psutil polls until it is gone


async def node_steps(root: Path, bases: Bases, scratch: Path, count: int) -> tuple[float, float]:
    """The node's half of the transfer, run here: the mean seconds of a checkout from a warm cache, and of the
    pack back of a worktree the agent left as it was."""
    shipment = await ship(root, bases)
    cache = NodeCache(scratch / "cache")
    await cache.ensure(shipment.base, lambda handle: ray.get(handle))  # type: ignore[call-overload]
    checkout = pack_back_s = 0.0
    for number in range(count):
        phase_scratch = scratch / f"phase-{number}"
        phase_scratch.mkdir(parents=True)
        started = time.perf_counter()
        node = await cache.checkout(shipment, phase_scratch)
        checked_out = time.perf_counter()
        await pack_back(node, shipment, phase_scratch)
        checkout, pack_back_s = checkout + checked_out - started, pack_back_s + time.perf_counter() - checked_out
    return checkout / count, pack_back_s / count


async def chain(executor: Executor, root: Path, count: int) -> float:
    started = time.perf_counter()
    for number in range(count):
        await run_one(executor, phase(root, 0, number))
    return (time.perf_counter() - started) / count


async def together(executor: Executor, root: Path, count: int, seconds: float, slots: int) -> float:
    """All at once; the local executor is held to `slots` at a time as the engine's cap would hold it."""
    gate = asyncio.Semaphore(slots)

    async def one(number: int) -> None:
        async with gate:
            await run_one(executor, phase(root, seconds, number))

    started = time.perf_counter()
    await asyncio.gather(*(one(number) for number in range(count)))
    return time.perf_counter() - started


@ray.remote(num_cpus=0, resources={AGENT_RESOURCE: 1})
def _nothing() -> int:
    return 0


async def bare_round_trip(count: int) -> float:
    """A task that returns at once, with the resources a phase's task takes: Ray's own part of a phase's cost."""
    started = time.perf_counter()
    for _ in range(count):
        await _nothing.remote()
    return (time.perf_counter() - started) / count


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_node(temp: Path, slots: int, head: str | None, client_port: int = 0) -> str:
    """A node of `slots` agent slots (the head's Ray Client server on `client_port`). Ray keeps idle workers only
    up to a node's CPU count and starts that many at a time, so a node whose slots outnumber its CPUs is told to
    keep and start one per slot (each new worker costs about a second here): docs/CONFIGURATION.md says so for
    real clusters."""
    # The simulated agent (benchmarks/parallel.py) on every node's path: through Ray Client the head's client
    # server unpickles it too, and it does not get the driver's script folder as Ray's workers do.
    path = os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "RAY_USAGE_STATS_ENABLED": "0",
           "RAY_num_workers_soft_limit": str(slots), "RAY_worker_maximum_startup_concurrency": str(slots)}
    resources = f'--resources={{"agent": {slots}}}'
    if head is None:
        port = free_port()
        argv = ["start", "--head", f"--port={port}", f"--ray-client-server-port={client_port}",
                "--include-dashboard=false", f"--temp-dir={temp}", "--disable-usage-stats"]
        head = f"127.0.0.1:{port}"
    else:
        argv = ["start", f"--address={head}"]
    argv += ["--node-ip-address=127.0.0.1", "--num-cpus=1", resources]
    subprocess.run([str(RAY), *argv], env=env, check=True, capture_output=True, timeout=300)
    if client_port:
        wait_listening(client_port)
    return head


async def measure(args: argparse.Namespace, temp: Path) -> dict[str, object]:
    small = make_repo(temp / "small", 0)
    figures: dict[str, object] = {"load": os.getloadavg(), "cpu_count": os.cpu_count()}
    cpu = time.process_time()
    client_port = free_port()
    address = await asyncio.to_thread(start_node, temp / "ray", args.slots, None, client_port)
    cluster = RayExecutor(f"ray://127.0.0.1:{client_port}" if args.client else address, [])
    local = LocalExecutor()
    try:
        await together(cluster, small, args.slots, 0.5, args.slots)  # connect, and warm each slot's worker
        figures["local_s_per_phase"] = await chain(local, small, args.chain)
        figures["ray_s_per_phase"] = await chain(cluster, small, args.chain)
        bases = Bases(ray.put)
        await ship(small, bases)  # its history put once, as the executor does
        started = time.perf_counter()
        for _ in range(args.chain):
            await ship(small, bases)
        figures["ship_small_s"] = (time.perf_counter() - started) / args.chain
        figures["node_checkout_small_s"], figures["node_pack_back_small_s"] = await node_steps(
            small, bases, temp / "node-steps", args.chain
        )
        beyond_ship = figures["ray_s_per_phase"] - figures["local_s_per_phase"] - figures["ship_small_s"]  # type: ignore[operator]
        figures["overhead_beyond_ship_ms"] = 1000 * beyond_ship
        figures["overhead_beyond_transfer_ms"] = 1000 * (
            beyond_ship - figures["node_checkout_small_s"] - figures["node_pack_back_small_s"]
        )

        # Made only now: the disk's writing back of its files would slow down the overhead's part above.
        large = await asyncio.to_thread(make_repo, temp / "large", args.files)
        started = time.perf_counter()
        shipped = await ship(large, bases)
        figures["ship_large_cold_s"] = time.perf_counter() - started
        figures["history_large_bytes"] = shipped.base.size
        started = time.perf_counter()
        figures["round_trip_large_cold_fetched_bytes"] = await run_one(cluster, phase(large, 0, -2))
        figures["round_trip_large_cold_s"] = time.perf_counter() - started
        (large / "src/m000/f00000.py").write_text("VALUE_0 = 'changed'\n")
        started = time.perf_counter()
        fetched = await run_one(cluster, phase(large, 0, -3))
        figures["round_trip_large_warm_s"] = time.perf_counter() - started
        # What travelled: the pack of the files' commit, the history fetched (none: the node has it), and the
        # pack back (none: the agent changed nothing).
        figures["round_trip_large_warm_bytes"] = len((await ship(large, bases)).pack) + fetched

        figures["ray_task_round_trip_ms"] = 1000 * await bare_round_trip(args.chain)
        figures["cancel_to_agent_gone_s"] = await cancel_to_gone(cluster, small, temp)

        figures["local_together_s"] = await together(local, small, args.agents, args.seconds, args.slots)
        figures["one_node_s"] = await together(cluster, small, args.agents, args.seconds, args.agents)
        await asyncio.to_thread(start_node, temp / "ray", args.slots, address)
        await together(cluster, small, 2 * args.slots, 0.5, 2 * args.slots)  # warm the new node's workers too
        figures["two_nodes_s"] = await together(cluster, small, args.agents, args.seconds, args.agents)
        figures["speedup_1_to_2_nodes"] = figures["one_node_s"] / figures["two_nodes_s"]  # type: ignore[operator]
        figures["floor_one_node_s"] = args.agents / args.slots * args.seconds
    finally:
        cluster.close()
        await asyncio.to_thread(stop_cluster, temp / "ray")
    figures["driver_cpu_s"] = time.process_time() - cpu
    figures["load_after"] = os.getloadavg()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--chain", type=int, default=20)
    parser.add_argument("--client", action="store_true", help="connect through Ray Client (ray://)")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    # The benchmark's clusters are its own: a token in ~/.ray (from other Ray use) would turn on token authentication
    # for their head node and refuse the second node. Off for the nodes and this driver.
    os.environ["RAY_AUTH_MODE"] = "disabled"
    with tempfile.TemporaryDirectory(prefix="adw-scale-") as tmp:
        figures = asyncio.run(measure(args, Path(tmp)))
    figures["args"] = vars(args)
    text = json.dumps(figures, indent=2, default=str)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
