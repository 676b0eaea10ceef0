"""`adw worktree create|list|open|conflicts|merge|remove|restore|prune`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from adw.cli.output import add_json_flag, emit
from adw.git.conflicts import ConflictChecker, PairResult
from adw.git.worktrees import Worktrees


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("worktree")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    create = verbs.add_parser("create", help="create a worktree on a new branch")
    create.add_argument("name")
    create.add_argument("--base", help="commit or branch to start from (default: the main worktree's HEAD)")
    create.add_argument("--branch", help="branch name (default: adw/NAME)")
    create.add_argument("--no-pool", action="store_true", help="do not take a prewarmed worktree from the pool")
    create.set_defaults(handler=_create)

    listing = verbs.add_parser("list", help="list worktrees")
    listing.add_argument("--status", action="store_true", help="add dirty and ahead/behind its base")
    listing.add_argument("--disk", action="store_true", help="add disk usage")
    listing.add_argument("--pool", action="store_true", help="also list the pool's prewarmed worktrees")
    listing.set_defaults(handler=_list)

    opener = verbs.add_parser("open", help="print a worktree's path")
    opener.add_argument("name")
    opener.set_defaults(handler=_open)

    conflicts = verbs.add_parser(
        "conflicts", help="preview every pair of active worktrees (and each with its base) for merge conflicts"
    )
    conflicts.set_defaults(handler=_conflicts)

    merge = verbs.add_parser("merge", help="merge a worktree's branch (conflicts are previewed first)")
    merge.add_argument("name")
    merge.add_argument("--into", help="target branch (default: the worktree's base)")
    merge.add_argument("--strategy", choices=("merge", "squash", "rebase"), default="merge")
    merge.add_argument("--preview", action="store_true", help="only show its files and whether it merges cleanly")
    merge.add_argument("--yes", "-y", action="store_true", help="do not ask before merging (asked only on a terminal)")
    merge.set_defaults(handler=_merge)

    remove = verbs.add_parser("remove", help="remove a worktree; refuses to lose work")
    remove.add_argument("name")
    group = remove.add_mutually_exclusive_group()
    group.add_argument("--archive", action="store_true", help="save all its work under refs/adw/archive first")
    group.add_argument("--force", action="store_true", help="discard its unsaved work")
    remove.set_defaults(handler=_remove)

    restore = verbs.add_parser("restore", help="bring back an archived worktree")
    restore.add_argument("name")
    restore.set_defaults(handler=_restore)

    prune = verbs.add_parser("prune", help="reconcile stale entries, orphan folders and the pool")
    prune.set_defaults(handler=_prune)

    pool = verbs.add_parser("pool", help="fill the pool of prewarmed worktrees now, and list it")
    pool.set_defaults(handler=_pool)

    for sub in (create, listing, opener, conflicts, merge, remove, restore, prune, pool):
        add_json_flag(sub)


async def _open_manager(args: argparse.Namespace) -> Worktrees:
    return await Worktrees.open(args.cwd)


async def _create(args: argparse.Namespace) -> int:
    manager = await _open_manager(args)
    result = await manager.create(args.name, base=args.base, branch=args.branch, pool=not args.no_pool)
    text = result.message
    if result.setup and result.setup.output.strip():
        text += "\n" + result.setup.output.rstrip()
    emit(args, result, text + f"\n{result.worktree.path}")
    return 0 if result.setup is None or result.setup.returncode == 0 else 1


async def _list(args: argparse.Namespace) -> int:
    infos = await (await _open_manager(args)).all(status=args.status, disk=args.disk, pool=args.pool)
    rows = []
    for info in infos:
        extra = []
        if info.dirty is not None:
            extra.append("dirty" if info.dirty else "clean")
        if info.ahead is not None:
            extra.append(f"+{info.ahead}/-{info.behind}")
        if info.disk_bytes is not None:
            extra.append(f"{info.disk_bytes / 1e6:.1f} MB")
        if info.pool:
            extra.append("pool")
        if info.locked:
            extra.append("locked")
        if not info.complete:
            extra.append("half-made (interrupted create; `adw worktree prune` removes it)")
        if info.checkpoints:
            extra.append(f"{info.checkpoints} checkpoint(s)")
        head = (info.head or "-")[:10]
        rows.append(f"{info.name:<20} {info.branch or '(detached)':<24} {head:<10} {' '.join(extra):<28} {info.path}")
    emit(args, infos, "\n".join(rows))
    return 0


async def _open(args: argparse.Namespace) -> int:
    info = await (await _open_manager(args)).get(args.name)
    emit(args, info, str(info.path))
    return 0


async def _conflicts(args: argparse.Namespace) -> int:
    report = await (await ConflictChecker.open(args.cwd)).check()
    lines = []
    for pair in report.conflicting:
        lines.append(f"{pair.a.name} {'-> ' if pair.base else '<-> '}{pair.b.name}: {_files(pair)}")
    verdict = f"{len(report.conflicting)} of {len(report.pairs)} pair(s) conflict" if report.conflicting else (
        f"no conflicts among {len(report.pairs)} pair(s)")
    lines.append(f"{verdict} ({len(report.worktrees)} active worktree(s); {report.computed} merged now, "
                 f"{report.cached} from the cache)")
    emit(args, report, "\n".join(lines))
    return 1 if report.conflicting else 0


async def _active_conflicts(cwd: str, name: str) -> list[str]:
    """A warning naming the other active worktrees this one conflicts with: whoever merges second resolves them."""
    pairs = (await (await ConflictChecker.open(cwd)).check()).involving(name)
    if not pairs:
        return []
    lines = [f"warning: {name} also conflicts with {len(pairs)} other active worktree(s):"]
    return lines + [f"  {pair.b.name}: {_files(pair)}" for pair in pairs]


def _files(pair: PairResult) -> str:
    """The files a pair conflicts in, with git's kind of conflict, or why git could not merge them."""
    return pair.error or ", ".join(f"{f.path} ({f.kind})" for f in pair.files)


async def _merge(args: argparse.Namespace) -> int:
    manager = await _open_manager(args)
    confirm = not (args.preview or args.yes or args.json) and sys.stdin.isatty()
    if args.preview or confirm:
        preview = await manager.merge_preview(args.name, args.into)
        verdict = "merges cleanly" if preview.clean else f"conflicts in {len(preview.conflicts)} file(s)"
        text = [f"{preview.source} -> {preview.target}: {verdict}", *preview.conflicts, preview.diffstat]
        text += await _active_conflicts(args.cwd, (await manager.get(args.name)).name)
        emit(args, preview, "\n".join(text))
        if args.preview or not preview.clean:
            return 0 if preview.clean else 1
        question = f"Merge {preview.source} into {preview.target} ({args.strategy})? [y/N] "
        try:
            answer = await asyncio.to_thread(input, question)
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print("not merged; nothing changed")
            return 1
    result = await manager.merge(args.name, args.into, args.strategy)
    emit(args, result, "\n".join([result.message, *result.preview.conflicts, result.preview.diffstat]))
    return 0 if result.merged else 1


async def _remove(args: argparse.Namespace) -> int:
    result = await (await _open_manager(args)).remove(args.name, archive=args.archive, force=args.force)
    emit(args, result, result.message)
    return 0


async def _restore(args: argparse.Namespace) -> int:
    result = await (await _open_manager(args)).restore(args.name)
    emit(args, result, result.message)
    return 0


async def _prune(args: argparse.Namespace) -> int:
    result = await (await _open_manager(args)).prune()
    lines = [result.message, *(f"pruned: {p}" for p in result.pruned_entries)]
    lines += [f"not a worktree (left untouched): {p}" for p in result.orphan_folders]
    emit(args, result, "\n".join(lines))
    return 0


async def _pool(args: argparse.Namespace) -> int:
    manager = await _open_manager(args)
    made = await manager.pool.fill()
    entries = manager.pool.entries()
    lines = [f"{len(entries)} pool worktree(s), {len(made)} made or moved now; "
             f"{sum(e.disk_bytes for e in entries) / 1e6:.1f} MB"]
    lines += [f"{e.id:<20} {e.base_commit[:10]} {'ready' if e.ready else 'filling'} {e.path}" for e in entries]
    emit(args, entries, "\n".join(lines))
    return 0
