"""`adw scout "TASK"`: the files and lines to read first for a task, ranked by seven scouts."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from adw.cli.output import add_json_flag, emit
from adw.config import load_config
from adw.errors import ConfigError
from adw.git.repo import Repo
from adw.scouts import save_report, scout


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "scout",
        description="Rank the files and lines to read first for TASK (also written to scout_outputs/).",
    )
    parser.add_argument("task", help="what needs doing, in words or with code names")
    parser.add_argument("--worktree", metavar="W", help="worktree to search (default: the current one)")
    parser.add_argument("--top", type=int, metavar="K", help="entries per group (default: [tool.adw.scout] top, 10)")
    add_json_flag(parser)
    parser.set_defaults(handler=_scout)


async def _scout(args: argparse.Namespace) -> int:
    repo = await Repo.discover(Path(args.cwd) / (args.worktree or "."))
    top = args.top if args.top is not None else load_config(repo.root).scout.top
    if top < 1:
        raise ConfigError(f"--top must be at least 1, not {top}", "pass a positive number, e.g. --top 10")
    result = await scout(args.task, repo.root, top, follow_up=False)
    await save_report(result, repo.root)
    emit(args, result, _text(result.locations, repo.root))
    return 0


def _text(locations: list[Any], root: Path) -> str:
    if not locations:
        return "no matching files"
    width = max(len(f"{loc.path}:{loc.line}") for loc in locations)
    return "\n".join(
        f"{f'{loc.path}:{loc.line}':<{width}}  {loc.score:7.2f}  {loc.reason}  [{', '.join(loc.scouts)}]"
        for loc in locations
    )
