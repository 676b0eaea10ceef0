"""The `adw` command line: a thin adapter over the core, one module per feature, each registering its
subcommands and importing what they need at its top.

The dispatch is the one lazy seam: it imports only the feature module of the command being run
(`adw.cli.parser.COMMANDS`), so `adw --help`, `adw --version` and a mistyped command load none of the core (figures
in docs/PERFORMANCE.md, "Command line start-up"), and argparse itself only once the command runs in this process: a
command the resident ADW answers (`adw.cli.forward`) imports nothing but the standard library's lightest modules.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from adw.cli.forward import forward


def command_of(argv: Sequence[str]) -> str | None:
    """The first word that is not a global option (`-C PATH`, `--version`, `-h`): the command, if any."""
    words = iter(argv)
    for word in words:
        if word == "-C":
            next(words, None)
        elif word == "--":
            return next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = command_of(argv)
    answered = forward(argv, command)  # by the repository's resident ADW, when one runs and serves it
    if answered is not None:
        return answered
    from adw.cli.parser import build_parser  # the seam (module docstring)

    parser = build_parser(command)
    args = parser.parse_args(argv)
    if getattr(args, "run", None):  # owns its own event loop (the language server)
        return int(args.run(args))
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    from adw.cli.output import run_handler  # the seam: the feature module loaded it already, `--help` must not

    return run_handler(args)
