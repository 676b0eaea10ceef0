"""Conflicts between parallel branches, seen before anyone merges.

The merge preview compares one branch with its base; when several agents work at once the costly surprise is
two of them editing the same lines. `ConflictChecker.check()` previews every pair of active worktrees (and
each with its base) with `git merge-tree --write-tree`, all in one `--stdin` spawn.

A worktree's tip is its newest checkpoint when that sits on the branch's current commit (the agent's work
not committed yet), else the branch's commit. A result depends only on the two commits merged, so it is
cached on disk by the pair of tips (`<common>/adw/conflicts/<tip>-<tip>.json`) and in memory: after one
branch moves only its own pairs are merged again. Entries of tips no longer current are deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ValidationError

from adw.errors import GitError
from adw.fsutil import write_inside
from adw.git.checkpoints import ref_id
from adw.git.refs import CONFLICTS_DIR, UNDO_NS, list_refs, resolve_ref
from adw.git.runner import git
from adw.git.worktrees import WorktreeInfo, Worktrees, linked_id

_KIND = re.compile(r"CONFLICT \(([^)]*)\)")


class Side(BaseModel):
    """One side of a previewed merge: a worktree, or the branch a worktree will be merged into."""

    name: str  # the worktree's ADW name, or the base's ref
    branch: str | None
    path: Path | None  # the worktree's folder; None for a base
    tip: str
    checkpoint: int | None = None  # the tip is this checkpoint (uncommitted work), not the branch's commit


class ConflictFile(BaseModel):
    path: str
    kind: str  # git's word for it: "content", "modify/delete", "add/add", "rename/delete", …


class PairResult(BaseModel):
    a: Side
    b: Side
    base: bool  # b is a's base, not another worktree
    clean: bool
    files: list[ConflictFile] = []
    error: str | None = None  # git could not merge them at all (unrelated histories)


class ConflictReport(BaseModel):
    worktrees: list[str]
    pairs: list[PairResult]
    computed: int  # merges run by this check
    cached: int  # results taken from the cache

    @property
    def conflicting(self) -> list[PairResult]:
        return [pair for pair in self.pairs if not pair.clean]

    def involving(self, name: str) -> list[PairResult]:
        """Conflicts of worktree `name` with other worktrees (not with its base), each seen from `name`'s side."""
        found = []
        for pair in self.conflicting:
            if pair.base:
                continue
            if pair.a.name == name:
                found.append(pair)
            elif pair.b.name == name:
                found.append(pair.model_copy(update={"a": pair.b, "b": pair.a}))
        return found


class _Outcome(BaseModel):
    """What is cached for a pair of commits."""

    clean: bool
    files: list[ConflictFile] = []
    error: str | None = None


@dataclass(frozen=True, slots=True)
class _Pair:
    a: Side
    b: Side
    base: bool

    @property
    def key(self) -> tuple[str, str]:
        first, second = sorted((self.a.tip, self.b.tip))
        return first, second


class ConflictChecker:
    """Pairwise merge previews of one repository's active worktrees; keep one instance to keep its memory cache."""

    def __init__(self, worktrees: Worktrees) -> None:
        self.worktrees = worktrees
        self.repo = worktrees.repo
        self.cache_dir = self.repo.adw_dir / CONFLICTS_DIR
        self._memo: dict[tuple[str, str], _Outcome] = {}
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: str | os.PathLike[str] = ".") -> ConflictChecker:
        return cls(await Worktrees.open(path))

    async def check(self) -> ConflictReport:
        async with self._lock:  # concurrent callers wait and then find everything cached
            active = [info for info in await self.worktrees.all() if _active(info)]
            sides = await self._sides(active)
            bases = await self._bases(active)
            pairs = [_Pair(sides[i], sides[j], False) for i in range(len(sides)) for j in range(i + 1, len(sides))]
            pairs += [_Pair(side, base, True) for side, base in zip(sides, bases, strict=True) if base is not None]
            known = {pair.key: self._cached(pair.key) for pair in pairs}
            missing = sorted({key for key, outcome in known.items() if outcome is None})
            computed = await self._merge(missing) if missing else {}
            for key, outcome in computed.items():
                self._store(key, outcome)
            outcomes = {key: outcome for key, outcome in known.items() if outcome is not None} | computed
            await asyncio.to_thread(self._forget_except, set(outcomes))
            results = [
                PairResult(a=pair.a, b=pair.b, base=pair.base, clean=outcomes[pair.key].clean,
                           files=outcomes[pair.key].files, error=outcomes[pair.key].error)
                for pair in pairs
            ]
            return ConflictReport(worktrees=[side.name for side in sides], pairs=results,
                                  computed=len(missing), cached=len(known) - len(missing))

    async def _sides(self, active: list[WorktreeInfo]) -> list[Side]:
        """Each worktree's tip: its newest checkpoint when that was taken on the branch's current commit."""
        newest: dict[str, tuple[int, str]] = {}
        for info in active:
            ident = linked_id(info.path)
            refs = list_refs(self.repo.common_dir, f"{UNDO_NS}/{ref_id(ident)}/") if ident and info.checkpoints else {}
            leaves = ((ref.rsplit("/", 1)[1], sha) for ref, sha in refs.items())
            numbered = [(int(leaf), sha) for leaf, sha in leaves if leaf.isdigit()]
            if numbered:
                newest[info.name] = max(numbered)
        parents: dict[str, str] = {}
        if newest:
            shas = sorted({sha for _, sha in newest.values()})
            out = await git("show", "-s", "--format=%H %P", *shas, cwd=self.worktrees.main_root)
            for line in out.lines:
                commit, _, rest = line.partition(" ")
                parents[commit] = rest.split(" ", 1)[0]
        sides = []
        for info in active:
            assert info.head is not None
            number, sha = newest.get(info.name, (0, ""))
            on_head = bool(sha) and parents.get(sha) == info.head
            sides.append(Side(name=info.name, branch=info.branch, path=info.path, tip=sha if on_head else info.head,
                              checkpoint=number if on_head else None))
        return sides

    async def _bases(self, active: list[WorktreeInfo]) -> list[Side | None]:
        """The branch (or commit) each worktree will be merged into, resolved in-process when it is a branch."""
        main_branch = await self.worktrees.main_branch()
        resolved: dict[str, str | None] = {}
        for info in active:
            base = info.base or main_branch
            if base is None or base in resolved:
                continue
            sha = resolve_ref(self.repo.common_dir, self.repo.common_dir, f"refs/heads/{base}")
            if sha is None:
                out = await git("rev-parse", "-q", "--verify", f"{base}^{{commit}}", cwd=self.worktrees.main_root,
                                ok_codes=(0, 1))
                sha = out.stdout.strip() or None
            resolved[base] = sha
        sides: list[Side | None] = []
        for info in active:
            base = info.base or main_branch
            sha = resolved.get(base) if base else None
            sides.append(Side(name=base, branch=base, path=None, tip=sha) if base and sha else None)
        return sides

    async def _merge(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], _Outcome]:
        """Merge every pair in one `git merge-tree --stdin`. git stops at a pair it cannot merge (unrelated
        histories): that pair records the error and the rest go in the next spawn."""
        results: dict[tuple[str, str], _Outcome] = {}
        pending = list(keys)
        while pending:
            feed = "".join(f"{a} {b}\n" for a, b in pending)
            out = await git("merge-tree", "--write-tree", "--stdin", "-z", "--name-only", cwd=self.worktrees.main_root,
                            input=feed, ok_codes=(0, 1, 128))
            outcomes = _parse_batch(out.stdout)
            results.update(zip(pending, outcomes, strict=False))
            pending = pending[len(outcomes):]
            if pending and out.returncode != 0:
                message = out.stderr.strip().removeprefix("fatal: ") or f"git merge-tree exited with {out.returncode}"
                results[pending.pop(0)] = _Outcome(clean=False, error=message)
            elif pending:
                raise GitError(out.argv, out.returncode, "merge-tree answered fewer merges than asked", out.stdout)
        return results

    def _cached(self, key: tuple[str, str]) -> _Outcome | None:
        if key in self._memo:
            return self._memo[key]
        with contextlib.suppress(OSError, ValidationError, ValueError):
            outcome = _Outcome.model_validate_json((self.cache_dir / _file_name(key)).read_bytes())
            self._memo[key] = outcome
            return outcome
        return None  # absent or unreadable (a torn or foreign file): merged again and rewritten

    def _store(self, key: tuple[str, str], outcome: _Outcome) -> None:
        self._memo[key] = outcome
        with contextlib.suppress(OSError):  # a cache that cannot be written costs time, never a result
            write_inside(self.repo.adw_dir, f"{CONFLICTS_DIR}/{_file_name(key)}", outcome.model_dump_json())

    def _forget_except(self, keep: set[tuple[str, str]]) -> None:
        """Drop the results of tips that are no longer any worktree's (moved or removed branches)."""
        self._memo = {key: outcome for key, outcome in self._memo.items() if key in keep}
        names = {_file_name(key) for key in keep}
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.cache_dir):
                if entry.name.endswith(".json") and entry.name not in names:
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)


def _active(info: WorktreeInfo) -> bool:
    """A linked worktree on a branch, fully created, whose folder is there."""
    return not info.is_main and not info.prunable and info.complete and bool(info.branch) and bool(info.head)


def _file_name(key: tuple[str, str]) -> str:
    return f"{key[0]}-{key[1]}.json"


def _parse_batch(stdout: str) -> list[_Outcome]:
    """The complete records of `merge-tree --stdin -z --name-only` output, in input order. A record is
    `status NUL tree NUL` then, when conflicted, `path NUL … NUL` and messages `count NUL path… type NUL
    text NUL …`, each list ended by an empty field."""
    fields = stdout.split("\0")
    outcomes: list[_Outcome] = []
    at = 0
    while at + 2 < len(fields):
        status, at = fields[at], at + 2  # the tree id is not needed
        if status not in ("0", "1"):
            break
        if status == "1":
            if fields[at] != "":
                break
            outcomes.append(_Outcome(clean=True))
            at += 1
            continue
        paths: list[str] = []
        while at < len(fields) and fields[at] != "":
            paths.append(fields[at])
            at += 1
        at += 1
        kinds: dict[str, str] = {}
        complete = False
        while at < len(fields):
            if fields[at] == "":
                complete = True
                at += 1
                break
            count = int(fields[at])
            named, kind = fields[at + 1 : at + 1 + count], fields[at + 1 + count : at + 2 + count]
            at += count + 3
            found = _KIND.match(kind[0]) if kind else None
            if found:
                for path in named:
                    kinds.setdefault(path, found[1])
        if not complete:
            break
        outcomes.append(_Outcome(clean=False, files=[ConflictFile(path=p, kind=_short(kinds.get(p))) for p in paths]))
    return outcomes


def _short(kind: str | None) -> str:
    # git says "contents" for a text conflict in the type field and "content" in the message
    return "content" if kind in (None, "contents") else kind
