"""The language server adapter. `create_server()` builds a server with every feature module registered."""

from __future__ import annotations

from adw.lsp.server import AdwServer

FEATURES = ("commands", "lenses", "progress", "links", "views")


def create_server() -> AdwServer:
    import importlib

    server = AdwServer()
    for name in FEATURES:
        importlib.import_module(f"adw.lsp.{name}").register(server)
    return server
