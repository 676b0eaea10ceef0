"""`adw checkpoint`, `adw undo`, `adw redo`, `adw checkpoints`, `adw checkpoint diff`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from adw.cli.output import add_json_flag, emit
from adw.errors import AdwError
from adw.git.checkpoints import Checkpoints, CheckpointStores
from adw.git.worktrees import locate


def register(subparsers: Any) -> None:
    checkpoint = subparsers.add_parser("checkpoint")
    checkpoint.add_argument("-m", "--message", default="")
    checkpoint.add_argument("action", nargs="*", metavar="diff A [B]", help="compare checkpoint A with B or the files")
    checkpoint.set_defaults(handler=_checkpoint)

    undo = subparsers.add_parser("undo")
    undo.add_argument("--file", help="restore only this file")
    undo.add_argument("--to", type=int, metavar="N", help="the checkpoint to return to")
    undo.set_defaults(handler=_undo)

    redo = subparsers.add_parser("redo")
    redo.set_defaults(handler=_redo)

    listing = subparsers.add_parser("checkpoints")
    listing.add_argument("--file", help="only those that changed this file")
    listing.add_argument("--all", action="store_true", help="include undone checkpoints (the redo stack)")
    listing.set_defaults(handler=_list)

    for sub in (checkpoint, undo, redo, listing):
        sub.add_argument("--worktree", metavar="NAME|PATH", help="default: the worktree you stand in")
        add_json_flag(sub)
        sub.set_defaults(stores=None)  # the resident ADW sets its long-lived ones (adw.cli.resident)


async def _store(args: argparse.Namespace) -> Checkpoints:
    stores: CheckpointStores = args.stores or CheckpointStores()  # one for this command in a process of its own
    return await stores.get(await locate(Path(args.cwd), args.worktree))


async def _checkpoint(args: argparse.Namespace) -> int:
    store = await _store(args)
    if args.action:
        if args.action[0] != "diff" or not 2 <= len(args.action) <= 3:
            raise AdwError(f"unknown checkpoint action {' '.join(args.action)!r}", "use `adw checkpoint diff A [B]`")
        numbers = [_number(value) for value in args.action[1:]]
        patch = await store.diff(numbers[0], numbers[1] if len(numbers) > 1 else None)
        emit(args, {"from": numbers[0], "to": numbers[1] if len(numbers) > 1 else "worktree", "patch": patch}, patch)
        return 0
    result = await store.checkpoint(args.message)
    text = result.message + "".join(f"\nskipped (too big or a nested repository): {p}" for p in result.skipped)
    emit(args, result, text)
    return 0


def _number(value: str) -> int:
    if not value.isdigit():
        raise AdwError(f"{value!r} is not a checkpoint number", "see `adw checkpoints` for the numbers")
    return int(value)


async def _undo(args: argparse.Namespace) -> int:
    store = await _store(args)
    result = await (store.undo_file(args.file, args.to) if args.file else store.undo(args.to))
    emit(args, result, result.message)
    return 0


async def _redo(args: argparse.Namespace) -> int:
    result = await (await _store(args)).redo()
    emit(args, result, result.message)
    return 0


async def _list(args: argparse.Namespace) -> int:
    entries = await (await _store(args)).history(file=args.file, include_redo=args.all)
    rows = [
        f"{c.number:>4}  {c.created.astimezone():%Y-%m-%d %H:%M:%S}  {'(undone) ' if c.redo else ''}{c.message}"
        for c in entries
    ]
    emit(args, entries, "\n".join(rows) or "no checkpoints")
    return 0
