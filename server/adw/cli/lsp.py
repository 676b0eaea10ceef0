"""`adw lsp`: the language server over stdio (the default; `--stdio` is accepted) or TCP."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from adw.errors import AdwError
from adw.lsp import create_server


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("lsp")
    parser.add_argument("--stdio", action="store_true", help="talk over stdin/stdout (the default)")
    parser.add_argument("--tcp", metavar="HOST:PORT", help="listen on a TCP socket instead")
    parser.set_defaults(handler=None, run=_run)


def _run(args: argparse.Namespace) -> int:
    # stderr only: stdout is the LSP channel. pygls logs every message at INFO, so keep it to warnings.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("pygls").setLevel(logging.WARNING)
    server = create_server()
    if args.tcp:
        host, _, port = args.tcp.rpartition(":")
        if not port.isdigit():
            raise AdwError(f"--tcp {args.tcp}: expected HOST:PORT", "e.g. --tcp 127.0.0.1:2087")
        server.start_tcp(host or "127.0.0.1", int(port))
    else:
        server.start_io()
    return 0
