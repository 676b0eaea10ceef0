"""A real local Ray cluster of two nodes (separate processes, one agent slot and one CPU each), started once for
the cluster tests in a temporary directory and always stopped afterwards."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import psutil
import pytest

RAY = Path(sys.executable).with_name("ray")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ray(*args: str, env: dict[str, str]) -> None:
    subprocess.run([str(RAY), *args], env=env, check=True, capture_output=True, text=True, timeout=180)


class Cluster(NamedTuple):
    address: str
    temp: Path  # every file the cluster writes: sessions, logs, spilled objects


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A head node and a second worker node, each offering {"agent": 1}."""
    pytest.importorskip("ray", reason="the cluster tests need `pip install '.[ray]'`")
    temp = tmp_path_factory.mktemp("ray")
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    address = f"127.0.0.1:{_free_port()}"
    try:
        _ray("start", "--head", "--node-ip-address=127.0.0.1", f"--port={address.split(':')[1]}",
             "--num-cpus=1", '--resources={"agent": 1}', "--include-dashboard=false",
             f"--temp-dir={temp / 'session'}", "--disable-usage-stats", env=env)
        _ray("start", f"--address={address}", "--node-ip-address=127.0.0.1", "--num-cpus=1",
             '--resources={"agent": 1}', env=env)
        yield Cluster(address, temp)
    finally:
        stop_cluster(temp)


def stop_cluster(temp: Path) -> None:
    """Stop the cluster whose nodes keep their files under `temp` (each node's processes name it), and their
    workers; other clusters of this machine (other people's) keep running, which `ray stop` would stop too."""
    me = psutil.Process()
    spared = {me.pid, *(parent.pid for parent in me.parents())}
    folder = os.path.join(temp, "")  # with its separator: not a sibling whose name starts alike
    mine: set[psutil.Process] = set()
    for process in psutil.process_iter(["cmdline"]):
        if process.pid not in spared and any(folder in arg for arg in process.info["cmdline"] or []):
            with contextlib.suppress(psutil.Error):
                mine.update([process, *process.children(recursive=True)])
    for process in mine:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    _, alive = psutil.wait_procs(mine, timeout=15)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(alive, timeout=15)
