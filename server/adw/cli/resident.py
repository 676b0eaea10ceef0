"""`adw daemon start|stop|status`: a resident ADW for one repository. It keeps the core imported and serves the
quick commands a new `adw` process hands over (`adw.cli.forward`), so they cost a Python start and a socket
round trip instead of importing asyncio, pydantic and the core each time (docs/PERFORMANCE.md).

It runs each command exactly as the process that asked would have: the same parser, the same handler, the same
errors, one command at a time, its output captured and sent back. Between commands it keeps what a new process
would rebuild, each checked against the files it depends on before use (never stale): the parsers, the
repository's discovery and configuration, and each worktree's checkpoint store with an inotify watch, so that a
checkpoint hashes only what changed (`adw.git.checkpoints.CheckpointStores`, as the language server does).

It serves only its own user (the socket's folder is private and the peer's uid is checked), only its own
repository, version of ADW and environment, and exits when its code changes on disk, when asked, or after `--idle`
minutes without a command.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import io
import json
import os
import select
import socket
import struct
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import adw
from adw import __version__
from adw.cli import command_of
from adw.cli.forward import REPLY_LIMIT, handed_over, private_folder, request_environment, socket_path
from adw.cli.output import add_json_flag, emit, run_command
from adw.cli.parser import build_parser
from adw.errors import AdwError
from adw.git.checkpoints import CheckpointStores
from adw.git.refs import DAEMON_LOG
from adw.git.repo import Repo
from adw.scouts.watch import watch_checkpoints

_START_WAIT_S = 15.0
_REQUEST_WAIT_S = 10.0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("daemon")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    start = verbs.add_parser("start", help="start this repository's resident ADW (quick commands answer faster)")
    start.add_argument("--idle", type=_minutes, default=30.0, metavar="MINUTES",
                       help="exit after this many minutes without a command (default 30)")
    start.add_argument("--foreground", action="store_true", help="serve in this process until stopped")
    start.set_defaults(handler=_start)
    stop = verbs.add_parser("stop", help="stop this repository's resident ADW")
    stop.set_defaults(handler=_stop)
    status = verbs.add_parser("status", help="whether this repository's resident ADW runs, and what it served")
    status.set_defaults(handler=_status)
    for sub in (start, stop, status):
        add_json_flag(sub)


def _minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 7 * 24 * 60:
        raise argparse.ArgumentTypeError(f"expected minutes between 0 and 10080, got {text!r}")
    return value


async def _start(args: argparse.Namespace) -> int:
    repo = await Repo.discover(args.cwd)
    path = Path(socket_path(repo.common_dir))
    running = await _ask(path, {"ping": True})
    if running is not None:
        emit(args, running, f"the resident ADW already runs (pid {running['pid']}): {path}")
        return 0
    if args.foreground:
        return await Resident(repo, path, args.idle * 60).serve()
    log = repo.adw_dir / DAEMON_LOG
    log.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "adw", "-C", str(repo.main_root), "daemon", "start", "--foreground",
            "--idle", str(args.idle)]
    with log.open("ab") as output:
        said_from = output.tell()
        # A new session: it outlives this command and its terminal. Started from a thread: Popen forks and execs.
        child = await asyncio.to_thread(
            subprocess.Popen,
            argv, cwd="/", stdin=subprocess.DEVNULL, stdout=output, stderr=output, start_new_session=True,
        )
    deadline = time.monotonic() + _START_WAIT_S
    while (answer := await _ask(path, {"ping": True})) is None:
        if child.poll() is not None and not _held(path.with_suffix(".lock")):  # it refused to start: say why
            with log.open("rb") as said:
                said.seek(said_from)
                why = said.read().decode(errors="replace").strip().removeprefix("adw: ")
            raise AdwError(f"the resident ADW could not start: {why}", f"see {log}")
        if time.monotonic() > deadline:
            raise AdwError(f"the resident ADW did not start within {_START_WAIT_S:g} s", f"see {log}")
        await asyncio.sleep(0.05)
    if answer["pid"] != child.pid:  # one started at the same time answered: ours finds it and exits, let it
        with contextlib.suppress(subprocess.TimeoutExpired):  # not start later, after a `daemon stop`
            await asyncio.to_thread(child.wait, _START_WAIT_S)
    emit(args, answer, f"the resident ADW runs (pid {answer['pid']}, exits after {args.idle:g} min idle): {path}")
    return 0


async def _stop(args: argparse.Namespace) -> int:
    repo = await Repo.discover(args.cwd)
    answer = await _ask(Path(socket_path(repo.common_dir)), {"stop": True})
    emit(args, {"stopped": answer is not None},
         f"stopped the resident ADW (pid {answer['pid']})" if answer else "no resident ADW runs here")
    return 0


async def _status(args: argparse.Namespace) -> int:
    repo = await Repo.discover(args.cwd)
    path = Path(socket_path(repo.common_dir))
    answer = await _ask(path, {"ping": True})
    if answer is None:
        emit(args, {"running": False}, "no resident ADW runs here (`adw daemon start` starts one)")
        return 0
    emit(args, {"running": True, **answer},
         f"the resident ADW runs (pid {answer['pid']}) at {path}; it served {answer['served']} command(s)")
    return 0


async def _ask(path: Path, request: dict[str, object]) -> dict[str, Any] | None:
    """A control request's answer, or None when nobody listens."""
    try:
        reader, writer = await asyncio.open_unix_connection(str(path))
    except OSError:
        return None
    try:
        writer.write(json.dumps(request).encode() + b"\n")
        writer.write_eof()
        data = await reader.read()
    except OSError:
        return None
    finally:
        writer.close()
    answer: dict[str, Any] | None = json.loads(data) if data else None
    return answer


class Resident:
    def __init__(self, repo: Repo, path: Path, idle: float) -> None:
        self.repo = repo
        self.path = path
        self.idle = idle
        self.served = 0
        self.started = time.time()
        self.last = time.monotonic()
        self.code_stamp = _code_stamp()
        self.environment = request_environment()
        self.one_at_a_time = asyncio.Lock()
        self.stopping = asyncio.Event()
        self.closing = False
        self.answering: set[asyncio.Task[None]] = set()
        self.parsers: dict[str | None, argparse.ArgumentParser] = {}
        self.stores = CheckpointStores(watch_checkpoints)

    async def serve(self) -> int:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not private_folder(self.path.parent):
            raise AdwError(f"{self.path.parent} is not private to this user; the resident ADW will not listen there",
                           f"remove it or make it yours with mode 700: chmod 700 {self.path.parent}")
        with self.path.with_suffix(".lock").open("a") as held:
            try:
                fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise AdwError("another resident ADW is starting for this repository", "`adw daemon status`") from None
            self.path.unlink(missing_ok=True)  # a socket left by one that was killed
            server = await asyncio.start_unix_server(self._serve_one, path=str(self.path), limit=REPLY_LIMIT)
            self.path.chmod(0o600)
            print(f"resident ADW {__version__} (pid {os.getpid()}) for {self.repo.main_root} on {self.path}",
                  flush=True)
            try:
                while not self.stopping.is_set():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(max(self.last + self.idle - time.monotonic(), 0.01)):
                            await self.stopping.wait()
                    if not self.one_at_a_time.locked() and time.monotonic() - self.last >= self.idle:
                        break
            finally:
                server.close()
                self.path.unlink(missing_ok=True)
                self.stores.close()
                # A command begun finishes and is answered; one still waiting for its turn is refused, so its
                # command line runs it itself. Stopping half-way would leave it "whether it ran is unknown".
                self.closing = True
                await asyncio.gather(*self.answering, return_exceptions=True)
                await server.wait_closed()
        return 0

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        this = asyncio.current_task()
        assert this is not None
        self.answering.add(this)
        try:
            if _peer_uid(writer) != os.getuid():
                return
            async with asyncio.timeout(_REQUEST_WAIT_S):  # the command line sends it at once: none holds a stop
                request = json.loads(await reader.readline())  # whole: one read may hold only its start
            reply = await self._answer(request, lambda: _hung_up(writer))
            writer.write(json.dumps(reply).encode())
            await writer.drain()
        except (OSError, ValueError) as exc:  # to the log, not into the output of a command being run
            print(f"a request failed: {exc!r}", file=sys.__stdout__, flush=True)
        finally:
            writer.close()
            self.answering.discard(this)

    async def _answer(self, request: dict[str, Any], gone: Callable[[], bool] = lambda: False) -> dict[str, object]:
        if request.get("ping") or request.get("stop"):
            if request.get("stop"):
                self.stopping.set()
            return {"pid": os.getpid(), "version": __version__, "started": self.started, "served": self.served}
        if _code_stamp() != self.code_stamp:
            self.stopping.set()
            return {"refused": "ADW changed on disk since the resident ADW started; it is stopping"}
        if request.get("version") != __version__ or request.get("env") != self.environment:
            return {"refused": "another version of ADW, or another environment"}
        if request.get("common") != str(self.repo.common_dir):  # two repositories whose socket names collide
            return {"refused": "a command of another repository"}
        argv = [str(word) for word in request.get("argv", [])]
        if not handed_over(argv, command_of(argv)):
            return {"refused": "not a command the resident ADW serves"}
        async with self.one_at_a_time:
            if self.closing:
                return {"refused": "the resident ADW is stopping"}
            if gone():  # it gave up waiting for its turn (Ctrl-C): nobody expects the command to run any more
                return {"refused": "the command line went away before its turn"}
            self.last = time.monotonic()
            with _environment(request.get("environ") or dict(os.environ)):
                code, out, err = await self.run_captured(argv, str(request["cwd"]))
            self.served += 1
            self.last = time.monotonic()
        return {"code": code, "stdout": out, "stderr": err}

    async def run_captured(self, argv: Sequence[str], cwd: str) -> tuple[int, str, str]:
        """Run `argv` as `adw` started in `cwd` would, its output captured: exit status, stdout, stderr."""
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            command = command_of(argv)
            if command not in self.parsers:
                self.parsers[command] = build_parser(command)
            parser = self.parsers[command]
            try:
                args = parser.parse_args(argv)
            except SystemExit as exc:  # argparse's usage error, already written to stderr
                return int(exc.code or 0), out.getvalue(), err.getvalue()
            args.cwd = os.path.join(cwd, args.cwd)
            args.stores = self.stores
            try:
                code = await run_command(args)
            except Exception:  # what the process would have printed before exiting 1
                traceback.print_exc()
                code = 1
        return code, out.getvalue(), err.getvalue()


@contextlib.contextmanager
def _environment(variables: dict[str, str]) -> Iterator[None]:
    """The command's own environment (its setup command and git calls read it) while it runs, one at a time."""
    own = dict(os.environ)
    os.environ.clear()
    os.environ.update(variables)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(own)


def _held(lock: Path) -> bool:
    """Whether a resident ADW holds `lock` (it runs, or is starting: one started at the same time waits for it)."""
    try:
        with lock.open("rb") as handle:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


def _hung_up(writer: asyncio.StreamWriter) -> bool:
    """Whether the peer closed its end (it only shut its writing half once its request was sent)."""
    poller = select.poll()
    poller.register(writer.get_extra_info("socket").fileno(), select.POLLHUP)
    return any(events & select.POLLHUP for _, events in poller.poll(0))


def _peer_uid(writer: asyncio.StreamWriter) -> int:
    connection: socket.socket = writer.get_extra_info("socket")
    credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", credentials)[1])


def _code_stamp(folder: str = os.path.dirname(adw.__file__)) -> int:
    """The newest modification time among ADW's sources: an upgrade or an edit makes the resident ADW stale. Read
    before every command, so with `scandir` (~1 ms) rather than `Path.rglob` (~6)."""
    newest = 0
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False) and entry.name != "__pycache__":
                newest = max(newest, _code_stamp(entry.path))
            elif entry.name.endswith(".py"):
                newest = max(newest, entry.stat().st_mtime_ns)
    return newest

