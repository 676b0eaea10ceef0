"""The `adw` command line: a thin adapter over the core. Each feature module registers its own subcommands.

Core modules are imported inside the command handlers, so `adw --version` starts without them.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from adw import __version__

# Feature modules, each exposing `register(subparsers)` for the commands listed here (a test holds them to it);
# a handler is stored as `args.handler`. Only the module of the command being run is imported.
FEATURES = {
    "adw.cli.worktree": ("worktree",),
    "adw.cli.checkpoint": ("checkpoint", "undo", "redo", "checkpoints"),
    "adw.cli.workflow": ("sdlc", "status", "cancel", "resume", "logs", "demo"),
    "adw.cli.scout": ("scout",),
    "adw.cli.lsp": ("lsp",),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser with every feature's subcommands, or only those of the module that registers `command`."""
    parser = argparse.ArgumentParser(
        prog="adw", description="AI Developer Workflows: parallel coding agents in isolated git worktrees."
    )
    parser.add_argument("--version", action="version", version=f"adw {__version__}")
    parser.add_argument("-C", dest="cwd", default=".", metavar="PATH", help="run as if started in PATH")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    owners = [name for name, commands in FEATURES.items() if command in commands] or list(FEATURES)
    for name in owners:
        importlib.import_module(name).register(subparsers)
    return parser


def _command(argv: Sequence[str]) -> str | None:
    """The subcommand named in `argv` (the first word that is not an option or the value of -C)."""
    words = iter(argv)
    for word in words:
        if word == "-C":
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if list(argv) == ["--version"]:  # the hot path: answer before building every subparser
        print(f"adw {__version__}")
        return 0
    parser = build_parser(_command(argv))
    args = parser.parse_args(argv)
    if getattr(args, "run", None):  # owns its own event loop (the language server)
        return int(args.run(args))
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    from adw.cli.output import run_handler

    return run_handler(args)
