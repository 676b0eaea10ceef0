"""Real local Ray clusters (separate processes) in temporary directories: one of two nodes (one agent slot and one
CPU each), started once for the cluster tests, and, for a test that kills a node, one of its own whose only agent
slots are on worker nodes. Each is always stopped afterwards, and only its own processes (`ray stop` would stop
every cluster of the machine, other people's included)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import psutil
import pytest

RAY = Path(sys.executable).with_name("ray")
# A dead node is noticed within seconds (Ray's default takes about half a minute).
_QUICK_HEALTH_CHECKS = {"RAY_health_check_period_ms": "500", "RAY_health_check_failure_threshold": "3",
                        "RAY_health_check_timeout_ms": "500"}


@pytest.fixture(scope="session", autouse=True)
def _no_token_authentication() -> Iterator[None]:
    """The clusters are the tests' own: a token in the user's home (~/.ray/auth_token, left by any Ray use with token
    authentication) makes Ray 2.60 turn it on for a new head node, and a second node started without the token is
    then refused. Off for the nodes, the drivers and every `adw` the tests start."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_AUTH_MODE", "disabled")
        yield


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ray(*args: str, env: dict[str, str]) -> None:
    done = subprocess.run([str(RAY), *args], env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, (args, done.stdout[-3000:], done.stderr[-3000:])


class Cluster(NamedTuple):
    address: str  # the head's GCS, HOST:PORT
    client_address: str  # its Ray Client server, ray://HOST:PORT
    temp: Path  # every file the cluster writes: sessions, logs, spilled objects

    def add_worker(self, agents: int = 1) -> None:
        """Start one more node offering `agents` agent slots."""
        _ray("start", f"--address={self.address}", "--node-ip-address=127.0.0.1", "--num-cpus=1",
             f'--resources={{"agent": {agents}}}', env=_env())


def _env() -> dict[str, str]:
    return {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **_QUICK_HEALTH_CHECKS}


def _start(temp: Path, head_agents: int) -> Cluster:
    port, client_port = _free_port(), _free_port()
    _ray("start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", f"--ray-client-server-port={client_port}",
         "--num-cpus=1", f'--resources={{"agent": {head_agents}}}', "--include-dashboard=false",
         f"--temp-dir={temp / 's'}", "--disable-usage-stats", env=_env())
    wait_listening(client_port)
    return Cluster(f"127.0.0.1:{port}", f"ray://127.0.0.1:{client_port}", temp)


def wait_listening(port: int, timeout: float = 60.0) -> None:
    """Wait for the head's Ray Client server, which `ray start` leaves starting: ADW fails at once an address
    where nothing listens yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"nothing listens on port {port} after {timeout:.0f} s"
            time.sleep(0.2)


@contextlib.contextmanager
def _cluster(tmp_path_factory: pytest.TempPathFactory, name: str, head_agents: int) -> Iterator[Cluster]:
    """A head node offering `head_agents` agent slots and a worker node offering one, stopped afterwards."""
    pytest.importorskip("ray", reason="the cluster tests need `pip install '.[ray]'`")
    temp = tmp_path_factory.mktemp(name)  # short: a socket path of its session must fit in 107 bytes
    try:
        cluster = _start(temp, head_agents)
        cluster.add_worker()
        yield cluster
    finally:
        stop_cluster(temp)


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A head node and a second worker node, each offering {"agent": 1}."""
    with _cluster(tmp_path_factory, "ray", head_agents=1) as cluster:
        yield cluster


@pytest.fixture
def lone_worker_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A head node without agent slots and one worker node with one: every agent phase runs on the worker,
    which a test may kill; `add_worker` starts another."""
    with _cluster(tmp_path_factory, "rl", head_agents=0) as cluster:
        yield cluster


def stop_cluster(temp: Path) -> None:
    """Stop the cluster whose nodes keep their files under `temp` (each node's processes name it), and their
    workers; other clusters of this machine (other people's) keep running, which `ray stop` would stop too."""
    me = psutil.Process()
    spared = {me.pid, *(parent.pid for parent in me.parents())}
    folder = os.path.join(temp, "")  # with its separator: not a sibling whose name starts alike
    mine: set[psutil.Process] = set()
    everyone = [(process, process.info["cmdline"] or []) for process in psutil.process_iter(["cmdline"])]
    for process, argv in everyone:
        if process.pid not in spared and any(folder in arg for arg in argv):
            with contextlib.suppress(psutil.Error):
                mine.update([process, *process.children(recursive=True)])
    # The head's Ray Client server names none of the node's folders, and init adopts it: found by the head's
    # GCS port (its --address), which the head's GCS server names.
    ports = {arg.removeprefix("--gcs_server_port=") for process, argv in everyone if process in mine
             for arg in argv if arg.startswith("--gcs_server_port=")}
    mine.update(process for process, argv in everyone if "ray.util.client.server" in argv
                and any(arg.startswith("--address=") and arg.rpartition(":")[2] in ports for arg in argv))
    for process in mine:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    _, alive = psutil.wait_procs(mine, timeout=15)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(alive, timeout=15)
