"""The resident ADW attacked as a user, another user and `kill -9` would: a reader that goes away, a socket in a
folder others may enter, Ctrl-C, concurrent clients, stray requests, setups that read the environment or stdin,
paths with spaces and accents, and a kill at every git call of an `undo` it runs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from adw.cli.forward import socket_path
from tests.cli.test_cli_resident import adw, common_dir, served
from tests.cli.test_cli_smoke import ADW
from tests.conftest import MakeRepo, run_git
from tests.faults import FaultRun, FaultyGit
from tests.git.test_faults_checkpoint import sweep, user_work

LOCAL = {"ADW_TEST_LOCAL": "1"}  # another environment: the resident ADW refuses it and the command runs here


def start(repo: Path, env: dict[str, str] | None = None) -> int:
    """Start `repo`'s resident ADW (in its own session: a fault kill takes its group) and return its pid."""
    done = subprocess.run([str(ADW), "-C", str(repo), "daemon", "start", "--idle", "5"], capture_output=True,
                          text=True, timeout=60, env=env, start_new_session=True)
    assert done.returncode == 0, done.stderr
    return int(json.loads(adw(repo, "daemon", "status", "--json", env=env).stdout)["pid"])


def stop(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    while _alive(pid):
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed child of no one of ours is reaped by init; one still a zombie is gone all the same.
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def resident(repo: Path, runtime: Path) -> Iterator[int]:
    pid = start(repo)
    yield pid
    stop(pid)


def both(repo: Path, *args: str, cwd: Path | None = None) -> tuple[tuple[int, str, str], tuple[int, str, str]]:
    """`adw ARGS` answered by the resident ADW, then run in a process of its own."""
    answers = []
    for extra in ({}, LOCAL):
        done = subprocess.run([str(ADW), *args], cwd=cwd or repo, capture_output=True, text=True, timeout=60,
                              env={**os.environ, **extra})
        answers.append((done.returncode, done.stdout, done.stderr))
    return answers[0], answers[1]


def test_a_reader_that_goes_away_ends_the_command_quietly_as_a_process_would(repo: Path, resident: int) -> None:
    """`adw worktree list | head -0`: no traceback, exit status 0, as in a process of its own."""
    before = served(repo)
    for extra in ({}, LOCAL):
        reader, writer = os.pipe()
        os.close(reader)  # the reader is gone before the first byte
        done = subprocess.run([str(ADW), "-C", str(repo), "worktree", "list"], stdout=writer, stderr=subprocess.PIPE,
                              text=True, timeout=60, env={**os.environ, **extra})
        os.close(writer)
        assert (done.returncode, done.stderr) == (0, ""), extra
    assert served(repo) == before + 1  # the first was the resident ADW's


def test_a_socket_in_a_folder_others_may_enter_is_never_used(repo: Path, runtime: Path) -> None:
    """Anyone may have made /tmp/adw-<uid> first: a socket there could read the command and forge its answer."""
    path = Path(socket_path(common_dir(repo)))
    path.parent.mkdir(mode=0o777)
    path.parent.chmod(0o777)
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.listen()
    asked: list[bytes] = []

    def forge() -> None:
        try:
            connection, _ = listener.accept()
        except OSError:  # shut down below: nobody came
            return
        asked.append(connection.recv(1 << 20))
        connection.sendall(json.dumps({"code": 0, "stdout": "forged\n", "stderr": ""}).encode())
        connection.close()

    with listener:
        thread = threading.Thread(target=forge)
        thread.start()
        done = adw(repo, "checkpoints")
        listener.shutdown(socket.SHUT_RDWR)
        thread.join()
    assert (done.returncode, done.stdout) == (0, "no checkpoints\n"), done.stderr
    assert asked == []  # not even the command and its environment were sent


def slow_resident(repo: Path, faulty: FaultyGit, slow: dict[str, float]) -> tuple[int, dict[str, str]]:
    env = {**faulty.env(slow=slow), "XDG_RUNTIME_DIR": os.environ["XDG_RUNTIME_DIR"]}
    return start(repo, env), env


def wait_for_call(faulty: FaultyGit, subcommand: str) -> None:
    deadline = time.monotonic() + 60
    while not any(subcommand in call for call in faulty.calls_so_far()):
        assert time.monotonic() < deadline, f"no git {subcommand} came"
        time.sleep(0.02)


@pytest.mark.slow
def test_ctrl_c_of_the_client_says_the_resident_may_finish_the_command(
    repo: Path, runtime: Path, tmp_path: Path
) -> None:
    faulty = FaultyGit(tmp_path / "faulty")
    pid, env = slow_resident(repo, faulty, {"write-tree": 2})
    try:
        (repo / "src/app.py").write_text("to keep\n", encoding="utf-8")
        client = subprocess.Popen([str(ADW), "-C", str(repo), "checkpoint"], env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_for_call(faulty, "write-tree")
        client.send_signal(signal.SIGINT)
        out, err = client.communicate(timeout=60)
        assert client.returncode == 130 and out == "", err
        assert err.startswith("adw: interrupted; the resident ADW may still finish `adw -C ") and "Traceback" not in err
        listed = adw(repo, "checkpoints", "--json", env=env)  # waits for the resident ADW's checkpoint
        assert [c["number"] for c in json.loads(listed.stdout)] == [1]
    finally:
        stop(pid)


@pytest.mark.slow
def test_a_stray_request_during_a_command_stays_out_of_its_output(
    repo: Path, runtime: Path, tmp_path: Path
) -> None:
    faulty = FaultyGit(tmp_path / "faulty")
    pid, env = slow_resident(repo, faulty, {"write-tree": 2})
    try:
        (repo / "src/app.py").write_text("to keep\n", encoding="utf-8")
        client = subprocess.Popen([str(ADW), "-C", str(repo), "checkpoint", "--json"], env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_for_call(faulty, "write-tree")
        with socket.socket(socket.AF_UNIX) as stray:
            stray.connect(socket_path(common_dir(repo)))
            stray.sendall(b"not json\n")
            stray.shutdown(socket.SHUT_WR)
            assert stray.recv(1 << 16) == b""
        out, err = client.communicate(timeout=60)
        assert client.returncode == 0, err
        assert json.loads(out)["checkpoint"]["number"] == 1  # one JSON object, nothing else
    finally:
        stop(pid)


def test_ten_checkpoints_at_once_are_neither_lost_nor_doubled(repo: Path, resident: int) -> None:
    def edit_and_checkpoint(number: int) -> subprocess.CompletedProcess[str]:
        (repo / f"file{number}.txt").write_text(f"{number}\n", encoding="utf-8")
        return adw(repo, "checkpoint", "-m", f"after {number}", "--json")

    results: list[subprocess.CompletedProcess[str]] = []
    threads = [threading.Thread(target=lambda n=n: results.append(edit_and_checkpoint(n))) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.returncode for r in results] == [0] * 10, [r.stderr for r in results]
    answers = [json.loads(r.stdout) for r in results]  # each output one whole JSON object
    made = sorted(a["checkpoint"]["number"] for a in answers if a["created"])
    assert made == list(range(1, len(made) + 1))  # none doubled, none skipped
    assert served(repo) == 10
    listed = json.loads(adw(repo, "checkpoints", "--json").stdout)
    assert [c["number"] for c in listed] == made
    last = run_git(repo, "ls-tree", "--name-only", listed[-1]["commit"]).split()
    assert {f"file{n}.txt" for n in range(10)} <= set(last)  # every edit is in a checkpoint
    assert run_git(repo, "fsck", "--strict", "--no-dangling", "--no-progress") == ""


@pytest.mark.slow
def test_a_setup_sees_the_commands_environment_and_no_stdin_as_a_process_of_its_own(
    repo: Path, runtime: Path
) -> None:
    (repo / ".adw.toml").write_text(
        '[worktree]\nsetup = ["sh", "-c", "read -r typed; echo \\"var=$SETUP_VAR typed=$typed\\""]\n', encoding="utf-8")
    pid = start(repo, {**os.environ, "SETUP_VAR": "when the resident ADW started"})
    try:
        outputs = []
        for name, extra in (("remote", {}), ("local", LOCAL)):
            done = subprocess.run([str(ADW), "-C", str(repo), "worktree", "create", name, "--no-pool", "--json"],
                                  input="typed at the terminal\n", capture_output=True, text=True, timeout=120,
                                  env={**os.environ, "SETUP_VAR": "now", **extra})
            assert done.returncode == 0, done.stderr
            outputs.append(json.loads(done.stdout)["setup"]["output"])
        assert served(repo) == 1
        assert outputs == ["var=now typed=\n"] * 2
    finally:
        stop(pid)


@pytest.mark.slow
def test_linked_worktrees_subfolders_relative_paths_and_json_answer_as_locally(
    make_repo: MakeRepo, runtime: Path
) -> None:
    repo = make_repo({"README.md": "# demo\n", "src/deep/app.py": "v1\n"}, name="my répo")
    pid = start(repo)
    try:
        assert adw(repo, "worktree", "create", "feat", "--no-pool").returncode == 0
        linked = Path(json.loads(adw(repo, "worktree", "open", "feat", "--json").stdout)["path"])
        (linked / "src/deep/app.py").write_text("v2 in the linked worktree\n", encoding="utf-8")
        before = served(repo)
        remote, local = both(repo, "checkpoint", "-m", "from deep", "--json", cwd=linked / "src/deep")
        assert remote[0] == local[0] == 0 and json.loads(remote[1])["created"]
        assert not json.loads(local[1])["created"]  # the same files: the local one had nothing new to save
        for args, cwd in (
            (["checkpoints", "--json"], linked / "src/deep"),
            (["-C", "..", "checkpoints", "--file", "src/deep/app.py"], linked / "src"),
            (["checkpoints", "--worktree", "feat", "--json"], repo / "src"),
            (["-C", "src", "checkpoints", "--worktree", "../../" + linked.name], linked.parent / linked.name),
            (["worktree", "list", "--json"], linked / "src/deep"),
            (["worktree", "open", "feat"], repo / "src/deep"),
            (["status", "--json"], linked),
            (["undo", "--file", "nowhere/../../../outside"], linked / "src"),
        ):
            remote, local = both(repo, *args, cwd=cwd)
            assert remote == local, args
        assert served(repo) == before + 9
    finally:
        stop(pid)


@pytest.mark.faults
def test_a_resident_killed_at_every_git_call_of_an_undo_is_reported_and_all_or_nothing(
    tmp_path: Path, make_repo: MakeRepo, runtime: Path
) -> None:
    """Each kill takes the resident ADW (its whole process group) at one git call of the `undo` it runs: the
    command says it may or may not have run, and the time machine is wholly before or after, as with a kill of
    a process of its own (tests/git/test_faults_checkpoint.py's sweep)."""
    faulty = FaultyGit(tmp_path / "faulty")
    reports: list[str] = []

    def undo_in_a_resident(repo: Path, *args: str, kill_at: int | None = None) -> FaultRun:
        if kill_at is None:
            return faulty.run(repo, *args)
        env = {**faulty.env(kill_at=kill_at), "XDG_RUNTIME_DIR": os.environ["XDG_RUNTIME_DIR"]}
        (faulty.state / "count").write_text("-1000000\n", encoding="utf-8")  # its own start is not counted
        pid = start(repo, env)
        faulty.reset()
        done = subprocess.run([str(ADW), *args], cwd=repo, env=env, capture_output=True, text=True, timeout=120,
                              start_new_session=True)
        killed = not _alive(pid)
        stop(pid)
        if killed:
            assert done.returncode == 1 and "whether it ran is unknown" in done.stderr, done.stderr
            reports.append(done.stderr)
        else:
            assert done.returncode == 0, done.stderr
        return FaultRun(-signal.SIGKILL if killed else done.returncode, done.stdout, done.stderr,
                        faulty.calls_so_far())

    template = user_work(make_repo)
    assert sweep(template, tmp_path, faulty, ["undo"], ["redo"], run=undo_in_a_resident) >= 8
    assert len(reports) >= 8


@pytest.mark.slow
def test_a_command_given_up_while_waiting_for_its_turn_is_not_run_later(
    repo: Path, runtime: Path, tmp_path: Path
) -> None:
    """Ctrl-C of an `undo` queued behind a slow command: nobody waits for it any more, so it must not undo the
    files minutes later, behind the person's back."""
    faulty = FaultyGit(tmp_path / "faulty")
    # Time to queue and give up on an undo; hash-object, since the resident ADW's second checkpoint is built by
    # its watch with only hash-object and update-ref (its trees and commit are written in-process).
    pid, env = slow_resident(repo, faulty, {"hash-object": 4})
    try:
        app = repo / "src/app.py"
        app.write_text("one\n", encoding="utf-8")
        assert adw(repo, "checkpoint", env=env).returncode == 0
        app.write_text("two\n", encoding="utf-8")
        faulty.reset()  # a hash-object of the checkpoint above is not the one to wait for
        first = subprocess.Popen([str(ADW), "-C", str(repo), "checkpoint"], env=env, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_for_call(faulty, "hash-object")
        queued = subprocess.Popen([str(ADW), "-C", str(repo), "undo"], env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(1)  # its request is in, well before the checkpoint ends (not an assert: the Ctrl-C's moment)
        queued.send_signal(signal.SIGINT)
        assert queued.communicate(timeout=60)[1].startswith("adw: interrupted; the resident ADW may still finish")
        assert first.wait(timeout=60) == 0
        listed = adw(repo, "checkpoints", "--all", "--json", env=env)  # after the queue: the undo's turn is over
        assert [(c["number"], c["redo"]) for c in json.loads(listed.stdout)] == [(1, False), (2, False)]
        assert app.read_text(encoding="utf-8") == "two\n"
        assert int(json.loads(adw(repo, "daemon", "status", "--json", env=env).stdout)["served"]) == 3
    finally:
        stop(pid)


def test_a_resident_killed_as_it_writes_its_answer_is_reported_not_a_traceback(repo: Path, runtime: Path) -> None:
    """Half an answer (a kill -9 in the middle of a large reply) reads as a resident ADW that went away."""
    path = Path(socket_path(common_dir(repo)))
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.listen()

    def answer_half() -> None:
        connection, _ = listener.accept()
        connection.recv(1 << 20)
        connection.sendall(json.dumps({"code": 0, "stdout": "x" * 100_000, "stderr": ""}).encode()[:70_000])
        connection.close()

    with listener:
        thread = threading.Thread(target=answer_half)
        thread.start()
        done = adw(repo, "worktree", "list")
        thread.join()
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("adw: the resident ADW stopped while running `adw -C "), done.stderr
    assert "whether it ran is unknown" in done.stderr


@pytest.mark.slow
def test_daemon_stop_lets_the_command_it_runs_finish(repo: Path, runtime: Path, tmp_path: Path) -> None:
    faulty = FaultyGit(tmp_path / "faulty")
    pid, env = slow_resident(repo, faulty, {"write-tree": 2})
    try:
        (repo / "src/app.py").write_text("to keep\n", encoding="utf-8")
        client = subprocess.Popen([str(ADW), "-C", str(repo), "checkpoint"], env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_for_call(faulty, "write-tree")
        assert "stopped the resident ADW" in adw(repo, "daemon", "stop", env=env).stdout
        out, err = client.communicate(timeout=60)
        assert (client.returncode, out) == (0, "checkpoint 1 made\n"), err
    finally:
        stop(pid)


def test_a_long_request_is_read_whole(repo: Path, resident: int) -> None:
    """A request bigger than one read of the socket (a long message, a large environment) is served."""
    (repo / "src/app.py").write_text("changed\n", encoding="utf-8")
    large = {f"LARGE{n}": "b" * 100_000 for n in range(8)}
    done = subprocess.run([str(ADW), "-C", str(repo), "checkpoint", "-m", "m" * 100_000, "--json"],
                          capture_output=True, text=True, timeout=60, env={**os.environ, **large})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["checkpoint"]["message"] == "m" * 100_000
    assert served(repo) == 1


def test_daemon_start_in_a_folder_others_may_enter_says_why_and_how(repo: Path, runtime: Path) -> None:
    folder = Path(socket_path(common_dir(repo))).parent
    folder.mkdir()
    folder.chmod(0o755)
    done = adw(repo, "daemon", "start")
    assert done.returncode == 2
    assert f"adw: the resident ADW could not start: {folder} is not private to this user" in done.stderr
    assert f"chmod 700 {folder}" in done.stderr
    assert "running" in adw(repo, "daemon", "status", "--json").stdout and served(repo) == -1


def test_daemon_start_twice_at_once_starts_one(repo: Path, runtime: Path) -> None:
    starts = [subprocess.Popen([str(ADW), "-C", str(repo), "daemon", "start", "--json"], text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    answers = [start.communicate(timeout=60) for start in starts]
    assert [start.returncode for start in starts] == [0, 0], answers
    pids = {json.loads(out)["pid"] for out, _ in answers}
    running = residents_of(repo)
    for pid in running | pids:
        stop(pid)
    assert len(pids) == 1
    assert running == pids  # neither start left a second one starting behind it, to run on after `daemon stop`


def residents_of(repo: Path) -> set[int]:
    return {process.pid for process in psutil.process_iter(["cmdline"])
            if (words := process.info["cmdline"] or []) and str(repo) in words and "--foreground" in words}


def test_a_closed_stdout_is_no_traceback_as_in_a_process_of_its_own(repo: Path, resident: int) -> None:
    """`adw worktree list >&-`: Python has no sys.stdout then; the text is dropped, as `print` drops it."""
    answers = []
    for extra in ({}, LOCAL):
        done = subprocess.run(["bash", "-c", 'exec "$0" "$@" >&-', str(ADW), "-C", str(repo), "worktree", "list"],
                              stderr=subprocess.PIPE, text=True, timeout=60, env={**os.environ, **extra})
        answers.append((done.returncode, done.stderr))
    assert answers == [(0, "")] * 2
    assert served(repo) == 1


def test_a_deleted_working_folder_does_not_break_commands_given_their_folder(
    repo: Path, runtime: Path, tmp_path: Path
) -> None:
    """The fast path asks the working folder before anything: one deleted under the shell must not make every
    quick command a traceback, with or without a resident ADW."""
    gone = tmp_path / "gone"

    def checkpoints_from_a_deleted_folder() -> subprocess.CompletedProcess[str]:
        gone.mkdir()
        return subprocess.run(["bash", "-c", 'cd "$1" && rmdir "$1" && shift && exec "$@"', "-", str(gone),
                               str(ADW), "-C", str(repo), "checkpoints"], capture_output=True, text=True, timeout=60)

    without = checkpoints_from_a_deleted_folder()
    pid = start(repo)
    try:
        with_one = checkpoints_from_a_deleted_folder()
    finally:
        stop(pid)
    for done in (without, with_one):
        assert (done.returncode, done.stdout) == (0, "no checkpoints\n"), done.stderr
