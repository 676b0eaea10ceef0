"""`adw.server.timeline`: a run's timeline for the editor's webview, with the SVG the CLI writes, so the
drawing exists once (adw.workflow.timeline_render)."""

from __future__ import annotations

from adw.lsp import params
from adw.lsp.server import AdwServer
from adw.serialize import to_jsonable
from adw.workflow.timeline import timeline
from adw.workflow.timeline_render import figures, svg


async def show_timeline(ls: AdwServer, args: params.Timeline) -> object:
    """The live state of the workflows this server runs, the stored state of the others."""
    drawn = timeline(await (await ls.engine_of(args.id)).run_of(args.id))
    return {"timeline": to_jsonable(drawn), "figures": figures(drawn), "svg": svg(drawn)}


def register(server: AdwServer) -> None:
    server.adw_command(params.Timeline, show_timeline)
