"""`adw compare | pick`: the candidates of `adw sdlc SPEC --best-of N`, ranked, and the one to keep."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from adw.cli.output import add_json_flag, emit
from adw.config import ForgeConfig
from adw.forge.pr import pick_as_pull_request
from adw.git.worktrees import Worktrees
from adw.sdlc.best_of import Candidate, candidates_of, chosen_candidate, compare, pick
from adw.sdlc.engine import open_engine
from adw.workflow.store import Store


def register(subparsers: Any) -> None:
    compare = subparsers.add_parser("compare", description="Rank the candidates of a best-of-N run, with the reasons.")
    compare.add_argument("id", help="the best-of id `adw sdlc --best-of` printed, or one of its workflows' ids")
    add_json_flag(compare)
    compare.set_defaults(handler=_compare)

    pick = subparsers.add_parser("pick", description="Merge one candidate of a best-of-N run and archive the others.")
    pick.add_argument("id", help="the best-of id, or one of its workflows' ids")
    pick.add_argument("number", type=int, help="the candidate to keep (its number, as `adw compare` shows it)")
    pick.add_argument("--strategy", choices=("merge", "squash", "rebase"), default="merge")
    pick.add_argument("--pr", action="store_true",
                      help="open (or update) its draft pull request instead of merging it here (see `adw pr`)")
    pick.add_argument("--yes", "-y", action="store_true", help="do not ask before merging (asked only on a terminal)")
    add_json_flag(pick)
    pick.set_defaults(handler=_pick)


async def _compare(args: argparse.Namespace) -> int:
    engine = await open_engine(args.cwd)
    try:
        assert engine.store is not None
        result = await compare(engine.store, args.id)
    finally:
        engine.close()
    lines = [f"best of {len(result.candidates)} [{result.group}]: {result.spec or ''}"]
    for row in result.candidates:
        lines.append(f"{row.rank}. candidate {row.number}  {row.worktree}  {_agent(row)}  {row.state.value}  "
                     f"{_cost_time(row)}")
        lines += [f"     {reason}" for reason in row.reasons]
    emit(args, result, "\n".join(lines))
    return 0


async def _pick(args: argparse.Namespace) -> int:
    engine = await open_engine(args.cwd)
    try:
        assert engine.store is not None
        if args.pr:
            return await _pick_as_pull_request(args, engine.store, engine.config.forge)
        if not (args.yes or args.json) and sys.stdin.isatty() and not await _confirm(args, engine.store):
            print("not picked; nothing changed")
            return 1
        result = await pick(engine.store, args.id, args.number, args.strategy)
    finally:
        engine.close()
    emit(args, result, result.message)
    return 0


async def _confirm(args: argparse.Namespace, store: Store) -> bool:
    """The merge preview of the candidate, then the question (on a terminal)."""
    chosen = chosen_candidate(candidates_of(store, args.id), args.number)
    assert chosen.worktree is not None
    preview = await (await Worktrees.open(args.cwd)).merge_preview(chosen.worktree)
    print(f"{preview.source} -> {preview.target}: "
          f"{'merges cleanly' if preview.clean else 'conflicts in ' + ', '.join(preview.conflicts)}")
    print(preview.diffstat)
    question = f"Merge candidate {args.number} ({args.strategy}) and archive the other candidates' worktrees? [y/N] "
    return await asyncio.to_thread(_ask, question) in ("y", "yes")


async def _pick_as_pull_request(args: argparse.Namespace, store: Store, forge: ForgeConfig) -> int:
    result, outcome = await pick_as_pull_request(store, args.id, args.number, forge)
    emit(args, {**result.model_dump(mode="json"), "pull_request": outcome.model_dump(mode="json")},
         f"{result.message}\n{outcome.message}")
    return 0


def _ask(question: str) -> str:
    try:
        return input(question).strip().lower()
    except EOFError:
        return ""


def _agent(row: Candidate) -> str:
    return row.agent + (f" ({row.model})" if row.model else "")


def _cost_time(row: Candidate) -> str:
    cost = f"${row.cost_usd:.2f}" if row.cost_usd is not None else "cost unknown"
    return cost + (f", {row.seconds:.1f}s" if row.seconds is not None else "")
