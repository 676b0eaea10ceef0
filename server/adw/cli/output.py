"""Shared output for every subcommand: JSON for machines, short text for people, errors with a hint."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from adw.errors import AdwError
from adw.git.runner import run
from adw.serialize import to_jsonable

Handler = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def emit(args: argparse.Namespace, result: Any, text: str) -> None:
    if getattr(args, "json", False):
        json.dump(to_jsonable(result), sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    elif text:
        print(text)


def run_handler(args: argparse.Namespace) -> int:
    try:
        return run(run_command(args))
    except KeyboardInterrupt:
        print("adw: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away; nothing left to say.
        sys.stderr.close()
        return 0


async def run_command(args: argparse.Namespace) -> int:
    """The command's handler, with ADW's errors said the one way: a message, its hint, exit status 2 (the
    resident ADW runs commands through this too)."""
    handler: Handler = args.handler
    try:
        return await handler(args)
    except AdwError as exc:
        if getattr(args, "json", False):
            json.dump(exc.to_dict(), sys.stdout, ensure_ascii=False, indent=2)
            sys.stdout.write("\n")
        print(f"adw: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"  hint: {exc.hint}", file=sys.stderr)
        return 2
