"""The ADW language server: a thin pygls 2 adapter over the core. Each feature module registers itself.

All git and agent work is awaited on asyncio subprocesses (never `ls.thread_pool`, whose starvation stops the
server reading stdin), so requests are answered while agents and checkpoints run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from lsprotocol import types
from pygls.capabilities import get_capability
from pygls.exceptions import JsonRpcException, JsonRpcInternalError, JsonRpcInvalidParams
from pygls.io_ import StdoutWriter
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from adw import __version__
from adw.config import load_config
from adw.errors import AdwError, ConfigError, InvalidNameError, PathOutsideError
from adw.git.checkpoints import Checkpoints, CheckpointStores
from adw.git.repo import Repo
from adw.git.runner import run
from adw.lsp import transport
from adw.lsp.params import ArgumentError, P
from adw.scouts.watch import watch_checkpoints
from adw.sdlc.engine import open_engine
from adw.workflow.engine import Engine

if TYPE_CHECKING:
    from adw.forge.status import ReviewWatch
    from adw.lsp.conflicts import ConflictWatch
    from adw.lsp.lenses import LensCache

log = logging.getLogger(__name__)

COMMAND_PREFIX = "adw.server."
CHANGED = "adw/changed"
CONFIGURATION = "adw/configuration"
CONFIG_FILES = (".adw.toml", "pyproject.toml")
_INPUT_ERRORS = (ArgumentError, InvalidNameError, PathOutsideError, ConfigError)
Handler = Callable[["AdwServer", P], Awaitable[object]]
RequestHandler = Callable[["AdwServer", object], Awaitable[object]]


class AdwServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("adw", __version__)
        # One engine per repository (by git common dir): several workspace folders may be one repository's worktrees.
        self._engines: dict[Path, Engine] = {}
        self._folder_commons: dict[Path, Path | None] = {}
        self._folder_mains: dict[Path, Path | None] = {}
        self._engine_lock = asyncio.Lock()
        self._background: set[asyncio.Task[Any]] = set()
        self.engine_listeners: list[Callable[[Engine], None]] = []
        self.on_change: list[Callable[[str], None]] = []  # told what `changed` says (the conflict watch)
        self.on_initialized: list[Callable[[], None]] = []  # run once the client has said `initialized`
        self.conflicts: ConflictWatch | None = None
        self.lens_cache: LensCache | None = None
        # Each repository's (by main folder) branches' pull requests the Worktrees view polls
        self.reviews: dict[Path, ReviewWatch] = {}
        # Each repository's (by main folder) invalid configuration; any refuses every command until fixed
        self.config_errors: dict[Path, ConfigError] = {}
        # The client's initializationOptions: `codicons` (lens titles), `progress: "aggregate"` (adw.lsp.progress)
        self.options: dict[str, object] = {}
        self._config_stamps: dict[Path, tuple[tuple[int, int], ...]] = {}
        self._config_lock = asyncio.Lock()
        # producer key -> uri -> diagnostics; a producer's next report replaces its last (see diagnostics.py)
        self.diagnostics: dict[str, dict[str, list[types.Diagnostic]]] = {}
        self._checkpoint_stores = CheckpointStores(watch_checkpoints)

    def start_io(self, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> None:
        """Serve over stdio with ADW's hardened reader (adw/lsp/transport.py) instead of pygls's."""
        self._stop_event = stop = threading.Event()
        self.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))
        reader = transport.StdinReader(stdin or sys.stdin.buffer, self.thread_pool)
        try:
            run(transport.serve(stop, reader, self.protocol, transport.answer_with(self.protocol)))
        except BrokenPipeError:
            log.error("the client closed the connection; stopping")
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            self.shutdown()

    def start_tcp(self, host: str, port: int) -> None:
        """Serve one client at a time on a TCP socket with the same hardened reader as stdio."""
        self._stop_event = stop = threading.Event()

        async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.protocol.set_writer(writer)
            answer = transport.answer_with(self.protocol)
            await transport.serve(stop, transport.StreamReader(reader), self.protocol, answer)
            self.shutdown()  # closes the listening socket too

        async def listen() -> None:
            self._server = server = await asyncio.start_server(connection, host, port)
            async with server:
                await server.serve_forever()

        with contextlib.suppress(asyncio.CancelledError, KeyboardInterrupt):
            run(listen())

    # ---------------------------------------------------------------- workspace

    @property
    def roots(self) -> list[Path]:
        """Every workspace folder in the client's order (initialize's workspaceFolders, then added or removed by
        workspace/didChangeWorkspaceFolders), else the root URI, else the current directory."""
        uris = [folder.uri for folder in self.workspace.folders.values()] or [self.workspace.root_uri]
        paths = [Path(fs) for uri in uris if uri and (fs := to_fs_path(uri))]
        return paths or [Path.cwd()]

    @property
    def root(self) -> Path:
        """The folder a command without a worktree, file or spec acts on: the first workspace folder."""
        return self.roots[0]

    async def common_dir(self, folder: Path) -> Path | None:
        """The git common dir of a workspace folder (None: not in a repository), asked once per folder."""
        await self._discover(folder)
        return self._folder_commons[folder]

    async def main_root(self, folder: Path) -> Path | None:
        """The main worktree of a workspace folder's repository (None: not in a repository), asked once per folder."""
        await self._discover(folder)
        return self._folder_mains[folder]

    async def _discover(self, folder: Path) -> None:
        if folder not in self._folder_commons:
            try:
                repo = await Repo.discover(folder)
                self._folder_commons[folder], self._folder_mains[folder] = repo.common_dir, repo.main_root
            except AdwError:
                self._folder_commons[folder] = self._folder_mains[folder] = None

    async def repositories(self) -> list[Path]:
        """One workspace folder per repository, in the client's order: where repository-wide views read."""
        seen: dict[Path, Path] = {}
        for folder in self.roots:
            common = await self.common_dir(folder)
            seen.setdefault(common or folder, folder)
        return list(seen.values())

    async def folder_of(self, path: Path) -> Path:
        """The workspace folder whose repository holds `path` (a worktree, file or spec of it, in any worktree)."""
        try:
            common: Path | None = (await Repo.discover(path if path.is_dir() else path.parent)).common_dir
        except AdwError:
            common = None
        for folder in self.roots:
            if common is not None and await self.common_dir(folder) == common:
                return folder
        raise ArgumentError(
            f"{path} is not in a repository of the workspace's folders",
            "pass a worktree, file or spec of an open folder's repository, or add its folder to the workspace",
        )

    async def folder(self, repository: str | None) -> Path:
        """The workspace folder of a command's `repository` argument (a path or file URI of a folder, worktree or
        file of it); default: the first folder."""
        return await self.folder_of(path_of(repository, self.root)) if repository else self.root

    async def engine(self, folder: Path | None = None) -> Engine:
        """The workflow engine of a folder's repository (default: the first folder's), opened on first use (it
        recovers crashed runs when it opens)."""
        folder = folder or self.root
        if (error := self.config_errors.get(await self.main_root(folder) or folder)) is not None:
            raise error  # an engine would run with the configuration of before
        key = await self.common_dir(folder) or folder.resolve()
        async with self._engine_lock:
            engine = self._engines.get(key)
            if engine is None:
                self._engines[key] = engine = await open_engine(folder)
                for start in self.engine_listeners:
                    start(engine)
            return engine

    async def engine_of(self, workflow_id: str) -> Engine:
        """The engine of the repository whose workflow this is (live here, or stored by any ADW process)."""
        engines = [await self.engine(folder) for folder in await self.repositories()]
        for engine in engines[1:]:
            if workflow_id in {wf.id for wf in engine.workflows()} or (
                engine.store is not None and await asyncio.to_thread(engine.store.load, workflow_id) is not None
            ):
                return engine
        return engines[0]  # its own, or its "no workflow" error naming what to do

    def open_engines(self) -> list[Engine]:
        """The engines something already opened; lenses and views must not open one as a side effect."""
        return list(self._engines.values())

    @property
    def config_error(self) -> ConfigError | None:
        """The first invalid configuration among the workspace's repositories (in the folders' order)."""
        return next(iter(self.config_errors.values()), None)

    async def check_config(self) -> None:
        """Reload the configuration of each workspace folder's repository when its main worktree's `.adw.toml` or
        `pyproject.toml` changed (a stat of each, so every command can afford it). An invalid one is shown at once,
        sent as `adw/configuration` (the first invalid one, or none), and refuses the commands on its repository
        with its message until it is fixed (the others' repositories are served); a valid one reaches its
        repository's engine."""
        async with self._config_lock:
            mains = {main: folder for folder in await self.repositories() if (main := await self.main_root(folder))}
            reloaded = False
            for main, folder in mains.items():
                stamp = tuple(_stat(main / name) for name in CONFIG_FILES)
                if stamp == self._config_stamps.get(main):
                    continue
                self._config_stamps[main] = stamp
                reloaded = True
                try:
                    config = await asyncio.to_thread(load_config, main)
                except ConfigError as exc:
                    self.config_errors[main] = exc
                    self.show_error(f"ADW: {exc.message} — {exc.hint}")
                    continue
                self.config_errors.pop(main, None)
                engine = self._engines.get(await self.common_dir(folder) or folder.resolve())
                if engine is not None:
                    try:
                        engine.reconfigure(config)
                    except AdwError as exc:  # executor = "ray" without Ray: the engine keeps the executor it had
                        self.show_error(f"ADW: {exc.message} — {exc.editor_hint}")
            for gone in set(self._config_stamps) - set(mains):  # a folder removed from the workspace
                del self._config_stamps[gone]
                reloaded = self.config_errors.pop(gone, None) is not None or reloaded
            # in the folders' order, so that the first invalid one is the one reported
            self.config_errors = {main: self.config_errors[main] for main in mains if main in self.config_errors}
            if reloaded:
                error = self.config_error
                self.protocol.notify(CONFIGURATION, {"error": error.message if error else None,
                                                     "hint": error.hint if error else None})

    async def checkpoints(self, worktree: Path) -> Checkpoints:
        """One long-lived checkpoint store per worktree (it remembers the checkpoints it has read), with an inotify
        watch as its tracker so that a snapshot adds only what changed (docs/PERFORMANCE.md, incremental
        checkpoints); without inotify, or when the watch may have missed something, a snapshot scans everything."""
        return await self._checkpoint_stores.get(worktree)

    def shutdown(self) -> None:
        """Stop serving and release each checkpoint store's inotify watch (its file descriptor and kernel watches)."""
        self._checkpoint_stores.close()
        super().shutdown()  # type: ignore[no-untyped-call]  # pygls leaves it unannotated

    def supports(self, capability: str) -> bool:
        return bool(get_capability(self.client_capabilities, capability, False))

    # ---------------------------------------------------------------- helpers

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run in the background with a strong reference, logging failures instead of losing them."""
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("background task failed", exc_info=exc)
            self.window_log_message(types.LogMessageParams(type=types.MessageType.Error, message=f"ADW: {exc}"))

    def changed(self, what: str) -> None:
        """Tell the client's views and lenses that worktrees, workflows or checkpoints changed."""
        self.protocol.notify(CHANGED, {"what": what})
        for listener in self.on_change:
            listener(what)
        if self.supports("workspace.code_lens.refresh_support"):
            self.spawn(self.workspace_code_lens_refresh_async(None))

    def show_error(self, message: str) -> None:
        self.window_show_message(types.ShowMessageParams(type=types.MessageType.Error, message=message))

    def log(self, message: str) -> None:
        self.window_log_message(types.LogMessageParams(type=types.MessageType.Info, message=message))

    def adw_command(self, model: type[P], handler: Handler[P]) -> None:
        """Register `adw.server.<model.command>`: its arguments are parsed into `model`, errors are answered
        as `answer` says."""

        async def run(ls: AdwServer, *values: object) -> object:
            return await ls.answer(model.command, lambda: handler(ls, model.from_wire(values)))

        run.__name__ = handler.__name__
        self.command(COMMAND_PREFIX + model.command)(run)

    def adw_request(self, method: str) -> Callable[[RequestHandler], RequestHandler]:
        """Register a custom request (`adw/…`) whose errors are answered as `answer` says."""

        def decorate(handler: RequestHandler) -> RequestHandler:
            async def run(ls: AdwServer, params: object) -> object:
                return await ls.answer(method, lambda: handler(ls, params))

            run.__name__ = handler.__name__
            self.feature(method)(run)
            return handler

        return decorate

    async def answer(self, name: str, call: Callable[[], Awaitable[object]]) -> object:
        """Bad input becomes InvalidParams, a refusal RequestFailed, each with a message saying what to do; a bug
        is an InternalError pointing at the log (never a traceback sent to the client), and the server serves on.
        The error response is the only report: the client shows it once."""
        try:
            await self.check_config()
            return await call()
        except AdwError as exc:
            # One answer per failure, no showMessage besides: clients show a failed request themselves, and a
            # second toast for the same failure is noise. Worded for the editor (no CLI flags).
            text = exc.message + (f" — {exc.editor_hint}" if exc.editor_hint else "")
            error = JsonRpcInvalidParams if isinstance(exc, _INPUT_ERRORS) else RequestFailed
            actions = [action.model_dump() for action in exc.actions]  # the buttons of the editor's one toast
            raise error(text, data={**exc.to_dict(), "hint": exc.editor_hint, "actions": actions}) from None
        except JsonRpcException:
            raise
        except Exception as exc:
            log.exception("%s failed", name)
            text = f"{name} failed: {type(exc).__name__}: {exc} — see the language server's log"
            raise JsonRpcInternalError(text) from None


class RequestFailed(JsonRpcException):
    """The request was valid but the operation was refused or failed (LSP's RequestFailed)."""

    CODE = -32803


def _stat(path: Path) -> tuple[int, int]:
    try:
        info = path.stat()
    except OSError:
        return (0, -1)
    return (info.st_mtime_ns, info.st_size)


def uri_of(path: Path) -> str:
    return from_fs_path(str(path)) or path.as_uri()


def path_of(value: str, root: Path) -> Path:
    """A path or file URI from the client, resolved against the workspace root."""
    if value.startswith("file:"):
        fs = to_fs_path(value)
        if fs is None:
            raise ArgumentError(f"{value} is not a file URI", "pass a path or a file:// URI")
        return Path(fs)
    return (root / value).resolve()
