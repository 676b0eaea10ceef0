"""The language server adapter. `create_server()` builds a server with every feature module registered."""

from __future__ import annotations

from adw.lsp import commands, configuration, conflicts, lenses, links, permissions, progress, timeline, views
from adw.lsp.server import AdwServer

FEATURES = (commands, configuration, conflicts, lenses, progress, permissions, links, timeline, views)


def create_server() -> AdwServer:
    server = AdwServer()
    for feature in FEATURES:
        feature.register(server)
    return server
