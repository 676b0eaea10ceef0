"""Write scopes: which files each phase may change, and undoing the writes a phase made outside its scope.

After a checkpointed phase the engine compares the checkpoint taken after it with the one taken before it.
Paths that changed outside the phase's scope, and outside the scope of every phase that ran at the same time
in the same worktree (test ‖ review ‖ document), are restored from the before-checkpoint; the after-checkpoint
keeps what was discarded. A path that an overlapping phase may write is left alone, since git cannot tell which
process wrote it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from adw.git.checkpoints import Checkpoint
from adw.git.runner import git
from adw.workflow.models import Task

EVERYTHING = ("**",)
DEFAULT_WRITES: dict[str, tuple[str, ...]] = {
    "plan": (),
    "build": EVERYTHING,
    "test": (),
    "review": (),
    "document": ("docs/**", "*.md", "*.rst", "README*", "CHANGELOG*", "CHANGES*", "HISTORY*"),
}


def write_scope(task: Task) -> tuple[str, ...]:
    """The globs `task` may write: its configured `writes`, else its phase's default (everything for phases
    ADW does not know)."""
    if task.config is not None and task.config.writes is not None:
        return tuple(task.config.writes)
    return DEFAULT_WRITES.get(task.phase, EVERYTHING)


def in_scope(path: str, scope: tuple[str, ...]) -> bool:
    return any(_glob(pattern).fullmatch(path) for pattern in scope)


@cache
def _glob(pattern: str) -> re.Pattern[str]:
    """gitignore-like: `**` spans folders, `*` and `?` stay within one; a pattern without `/` matches a file
    name in any folder."""
    anchored = pattern.strip("/") if "/" in pattern.rstrip("/") else f"**/{pattern}"
    out = []
    i = 0
    while i < len(anchored):
        if anchored.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif anchored.startswith("**", i):
            out.append(".*")
            i += 2
        elif anchored[i] == "*":
            out.append("[^/]*")
            i += 1
        elif anchored[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(anchored[i]))
            i += 1
    return re.compile("".join(out))


@dataclass
class Window:
    """A checkpointed task between its before- and after-checkpoints: which tasks of its workflow were inside
    their own windows meanwhile, and which paths one of them already put back (path → tree it took them from),
    so that a later phase neither blames itself for the restore nor undoes it."""

    overlaps: set[str] = field(default_factory=set)
    restored: dict[str, str] = field(default_factory=dict)


async def changed_paths(root: Path, old_tree: str, new_tree: str) -> list[str]:
    if old_tree == new_tree:
        return []
    out = await git("diff-tree", "-r", "--name-only", "-z", "--no-renames", old_tree, new_tree, cwd=root)
    return [p for p in out.stdout.split("\0") if p]


async def _entries(root: Path, tree: str, paths: list[str]) -> dict[str, str]:
    """path → `mode oid` in `tree`, for those of `paths` it has."""
    listed = await git("ls-tree", "-z", tree, "--", *(f":(literal){p}" for p in paths), cwd=root)
    entries = {}
    for entry in listed.stdout.split("\0"):
        if entry:
            meta, _, path = entry.partition("\t")
            entries[path] = meta.split(" ", 1)[1]
    return entries


async def out_of_scope(
    root: Path, before: Checkpoint, after: Checkpoint, allowed: tuple[str, ...], window: Window
) -> list[str]:
    """Paths changed between the checkpoints that no phase in the window may write, except those a sibling
    already restored and nobody touched since."""
    changed = [p for p in await changed_paths(root, before.tree, after.tree) if not in_scope(p, allowed)]
    settled = {p: window.restored[p] for p in changed if p in window.restored}
    if settled:
        now = await _entries(root, after.tree, list(settled))
        for tree in set(settled.values()):
            group = [p for p, t in settled.items() if t == tree]
            wanted = await _entries(root, tree, group)
            changed = [p for p in changed if p not in group or now.get(p) != wanted.get(p)]
    return changed


async def restore(root: Path, source: str, paths: list[str]) -> None:
    """Put `paths` back as they are in the commit `source`: its version where it has one, else delete them.
    Only the files change; the index and HEAD stay as they are."""
    present = await _entries(root, source, paths)
    if present:
        pathspecs = [f":(literal){p}" for p in present]
        await git("restore", f"--source={source}", "--worktree", "--", *pathspecs, cwd=root)
    for rel in paths:
        if rel in present:
            continue
        target = root / rel
        # `rel` comes from git's own tree listing, so it stays inside the worktree; never follow a final link.
        if target.is_symlink() or target.is_file():
            os.unlink(target)
