"""The resident ADW (`adw daemon start`) and the command line's fast path to it (adw.cli.forward): the commands it
serves answer exactly as a new process would, and anything unusual (no resident ADW, a killed one, another
environment, a stale one) runs in the process as before, never twice."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from adw.cli import resident
from adw.cli.forward import socket_path
from adw.cli.resident import Resident
from adw.git.repo import Repo
from tests.cli.test_cli_smoke import ADW


def adw(repo: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ADW), "-C", str(repo), *args], capture_output=True, text=True, timeout=120,
                          env=env)


def served(repo: Path) -> int:
    status = json.loads(adw(repo, "daemon", "status", "--json").stdout)
    return int(status["served"]) if status["running"] else -1


@pytest.fixture
def started(repo: Path, runtime: Path) -> Iterator[int]:
    """A resident ADW for `repo`; its pid. Stopped (killed if need be) at the end."""
    done = adw(repo, "daemon", "start", "--idle", "5")
    assert done.returncode == 0, done.stderr
    pid = int(json.loads(adw(repo, "daemon", "status", "--json").stdout)["pid"])
    yield pid
    adw(repo, "daemon", "stop")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def test_served_commands_answer_as_a_new_process_would(repo: Path, started: int) -> None:
    app = repo / "src/app.py"
    app.write_text("def main():\n    return 2\n", encoding="utf-8")
    made = adw(repo, "checkpoint", "-m", "two", "--json")
    assert made.returncode == 0 and json.loads(made.stdout)["checkpoint"]["number"] == 1
    app.write_text("def main():\n    return 3\n", encoding="utf-8")
    assert adw(repo, "undo").returncode == 0
    assert app.read_text(encoding="utf-8") == "def main():\n    return 2\n"
    assert adw(repo, "redo").returncode == 0
    assert app.read_text(encoding="utf-8") == "def main():\n    return 3\n"
    listed = json.loads(adw(repo, "worktree", "list", "--json").stdout)
    assert [w["name"] for w in listed] == ["@main"]
    assert listed[0]["checkpoints"] == 2  # the checkpoint, and the state the undo saved before restoring
    assert served(repo) == 4  # checkpoint, undo, redo and list: all answered by the resident ADW

    # An error and a usage error read the same from the resident ADW and from a process of its own.
    for args in (["undo", "--to", "99"], ["checkpoints", "--bogus"], ["worktree", "open", "nope"]):
        remote = adw(repo, *args)
        local = adw(repo, *args, env={**os.environ, "ADW_TEST_LOCAL": "1"})  # another environment: run here
        assert (remote.returncode, remote.stdout, remote.stderr) == (local.returncode, local.stdout, local.stderr)
        assert remote.returncode == 2 and remote.stderr.startswith(("adw: ", "usage: adw")), remote.stderr
    assert served(repo) == 7  # and the three errors; the local runs were not served


def test_a_killed_resident_leaves_every_command_working(repo: Path, started: int, runtime: Path) -> None:
    os.kill(started, signal.SIGKILL)
    time.sleep(0.2)
    assert Path(socket_path(common_dir(repo))).exists()  # the socket file is left behind
    assert adw(repo, "checkpoint").returncode == 0  # nobody answers: it runs here
    assert "no resident ADW runs here" in adw(repo, "daemon", "status").stdout
    again = adw(repo, "daemon", "start", "--idle", "1")
    assert again.returncode == 0 and "the resident ADW runs" in again.stdout, again.stderr
    assert served(repo) == 0


def test_it_exits_once_idle(repo: Path, runtime: Path) -> None:
    assert adw(repo, "daemon", "start", "--idle", "0.02").returncode == 0  # 1.2 s
    deadline = time.monotonic() + 30
    while served(repo) >= 0:
        assert time.monotonic() < deadline, "the idle resident ADW did not exit"
        time.sleep(0.3)
    assert not Path(socket_path(common_dir(repo))).exists()


def test_a_resident_that_stops_during_a_command_is_reported_and_not_run_twice(repo: Path, runtime: Path) -> None:
    """It may have run the undo already: running it here again would undo twice, so the command says so."""
    app = repo / "src/app.py"
    assert adw(repo, "checkpoint").returncode == 0
    app.write_text("edited after the checkpoint\n", encoding="utf-8")
    path = Path(socket_path(common_dir(repo)))
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.listen()

    def take_and_drop() -> None:  # a resident ADW killed as it takes the command
        connection, _ = listener.accept()
        connection.recv(1 << 16)
        connection.close()

    thread = threading.Thread(target=take_and_drop)
    thread.start()
    done = adw(repo, "undo")
    thread.join(10)
    listener.close()
    assert done.returncode == 1
    assert "the resident ADW stopped while running `adw -C" in done.stderr
    assert "whether it ran is unknown" in done.stderr
    assert app.read_text(encoding="utf-8") == "edited after the checkpoint\n"  # not undone here as well


async def test_a_resident_whose_code_changed_refuses_and_stops(
    repo: Path, runtime: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon = Resident(await Repo.discover(repo), Path(socket_path(common_dir(repo))), idle=60)
    request = {"argv": ["checkpoints"], "cwd": str(repo), "common": str(common_dir(repo)),
               "version": resident.__version__, "env": daemon.environment}
    assert "code" in await daemon._answer(request)
    monkeypatch.setattr(resident, "_code_stamp", lambda: daemon.code_stamp + 1)
    answer = await daemon._answer(request)
    assert answer == {"refused": "ADW changed on disk since the resident ADW started; it is stopping"}
    assert daemon.stopping.is_set()
    other = await Resident(await Repo.discover(repo), daemon.path, idle=60)._answer({**request, "env": {}})
    assert "refused" in other


def common_dir(repo: Path) -> Path:
    return (repo / ".git").resolve()
