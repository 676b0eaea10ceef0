"""Configuration reload: the server checks `.adw.toml` and `pyproject.toml` when the client starts, when it
reports them changed (`workspace/didChangeWatchedFiles`, registered with clients that allow it, as VS Code
does), when any file is saved (lenses.py), and before every command (clients that report nothing)."""

from __future__ import annotations

import logging

from lsprotocol import types

from adw.lsp.server import CONFIG_FILES, AdwServer

log = logging.getLogger(__name__)

_WATCH_ID = "adw-configuration"


def register(server: AdwServer) -> None:
    @server.feature(types.INITIALIZED)
    async def initialized(ls: AdwServer, params: types.InitializedParams) -> None:
        await ls.check_config()  # an invalid configuration is shown as soon as the editor opens the folder
        for start in ls.on_initialized:
            start()
        if ls.supports("workspace.did_change_watched_files.dynamic_registration"):
            watchers = [types.FileSystemWatcher(glob_pattern=f"**/{name}") for name in CONFIG_FILES]
            registration = types.Registration(
                id=_WATCH_ID,
                method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                register_options=types.DidChangeWatchedFilesRegistrationOptions(watchers=watchers),
            )
            try:
                await ls.client_register_capability_async(types.RegistrationParams(registrations=[registration]))
            except Exception as exc:  # the client refused: saves and commands still reload
                log.warning("could not watch the configuration files: %s", exc)

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    async def watched_files_changed(ls: AdwServer, params: types.DidChangeWatchedFilesParams) -> None:
        await ls.check_config()
