"""The `adw` command line: a thin adapter over the core. Each feature module registers its own subcommands.

Core modules are imported inside the command handlers, so `adw --version` starts without them.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from adw import __version__

# Feature modules, each exposing `register(subparsers)`; a handler is stored as `args.handler`.
FEATURES = (
    "adw.cli.worktree", "adw.cli.checkpoint", "adw.cli.workflow", "adw.cli.best_of", "adw.cli.scout", "adw.cli.lsp",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="adw", description="AI Developer Workflows: parallel coding agents in isolated git worktrees."
    )
    parser.add_argument("--version", action="version", version=f"adw {__version__}")
    parser.add_argument("-C", dest="cwd", default=".", metavar="PATH", help="run as if started in PATH")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in FEATURES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if list(argv) == ["--version"]:  # the hot path: answer before building every subparser
        print(f"adw {__version__}")
        return 0
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "run", None):  # owns its own event loop (the language server)
        return int(args.run(args))
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    from adw.cli.output import run_handler

    return run_handler(args)
