"""The ADW language server: a thin pygls 2 adapter over the core. Each feature module registers itself.

All git and agent work is awaited on asyncio subprocesses (never `ls.thread_pool`, whose starvation stops the
server reading stdin), so requests are answered while agents and checkpoints run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.capabilities import get_capability
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from adw import __version__
from adw.errors import AdwError, ConfigError, InvalidNameError, PathOutsideError

log = logging.getLogger(__name__)

COMMAND_PREFIX = "adw.server."
CHANGED = "adw/changed"
_INPUT_ERRORS = (InvalidNameError, PathOutsideError, ConfigError)
Handler = Callable[..., Awaitable[Any]]


class AdwServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("adw", __version__)
        self._root: Path | None = None
        self._engine: Any = None
        self._engine_lock = asyncio.Lock()
        self._background: set[asyncio.Task[Any]] = set()
        self.on_change: list[Callable[[str], None]] = []
        self.engine_listeners: list[Callable[[Any], None]] = []
        # producer key -> uri -> diagnostics; a producer's next report replaces its last (see diagnostics.py)
        self.lens_cache: Any = None
        self.diagnostics: dict[str, dict[str, list[types.Diagnostic]]] = {}

    # ---------------------------------------------------------------- workspace

    @property
    def root(self) -> Path:
        """The workspace folder ADW works in: the first folder the client opened, else the current directory."""
        if self._root is None:
            folders = list(self.workspace.folders.values())
            uri = folders[0].uri if folders else self.workspace.root_uri
            path = to_fs_path(uri) if uri else None
            self._root = Path(path) if path else Path.cwd()
        return self._root

    async def engine(self) -> Any:
        """The workflow engine, opened on first use (it recovers crashed runs when it opens)."""
        async with self._engine_lock:
            if self._engine is None:
                from adw.workflow.engine import Engine

                self._engine = await Engine.open(self.root)
                for start in self.engine_listeners:
                    start(self._engine)
        return self._engine

    def engine_if_open(self) -> Any:
        """The engine if something already opened it; lenses must not open it as a side effect."""
        return self._engine

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

    def adw_command(self, name: str) -> Callable[[Handler], Handler]:
        """Register `adw.server.<name>`: errors become a JSON-RPC error plus a message saying what to do."""

        def decorate(handler: Handler) -> Handler:
            async def run(ls: AdwServer, *args: Any) -> Any:
                try:
                    return await handler(ls, *args)
                except AdwError as exc:
                    text = f"ADW: {exc.message}" + (f" — {exc.hint}" if exc.hint else "")
                    ls.show_error(text)
                    error = JsonRpcInvalidParams if isinstance(exc, (ArgumentError, *_INPUT_ERRORS)) else _Failed
                    raise error(text, data=exc.to_dict()) from None
                except JsonRpcException:
                    raise
                except Exception as exc:  # a bug, not bad input: still say so in the editor, and serve on
                    log.exception("adw.server.%s failed", name)
                    ls.show_error(f"ADW: {name} failed: {type(exc).__name__}: {exc} — see the language server's log")
                    raise

            run.__name__ = handler.__name__
            self.command(COMMAND_PREFIX + name)(run)
            return handler

        return decorate


class _Failed(JsonRpcException):
    """The request was valid but the operation was refused or failed (LSP's RequestFailed)."""

    CODE = -32803


class ArgumentError(AdwError):
    pass


class Args:
    """Positional command arguments by name, with clear errors for a missing or mistyped one."""

    def __init__(self, command: str, values: tuple[Any, ...], names: list[str]) -> None:
        if len(values) > len(names):
            raise ArgumentError(
                f"{command} takes at most {len(names)} argument(s) ({', '.join(names)}), got {len(values)}",
                "see docs/PROTOCOL.md",
            )
        self.command = command
        self.values = dict(zip(names, values, strict=False))

    def text(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise ArgumentError(f"{self.command}: `{name}` must be a string, got {type(value).__name__}",
                                "see docs/PROTOCOL.md")
        return value

    def required(self, name: str) -> str:
        value = self.text(name)
        if value is None:
            raise ArgumentError(f"{self.command} needs `{name}`", "see docs/PROTOCOL.md for its arguments")
        return value

    def number(self, name: str) -> int | None:
        value = self.values.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
            raise ArgumentError(f"{self.command}: `{name}` must be a whole number", "see docs/PROTOCOL.md")
        return int(value)

    def flag(self, name: str) -> bool:
        return bool(self.values.get(name))

    def texts(self, name: str) -> list[str]:
        value = self.values.get(name)
        if isinstance(value, str):
            value = [value]
        if not value or not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ArgumentError(f"{self.command} needs `{name}`: a list of paths or URIs", "see docs/PROTOCOL.md")
        return value

    def options(self, name: str) -> dict[str, Any]:
        value = self.values.get(name) or {}
        if not isinstance(value, dict):
            raise ArgumentError(f"{self.command}: `{name}` must be an object", "see docs/PROTOCOL.md")
        return value


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
