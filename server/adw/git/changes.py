"""What a diff between two revisions changes, file by file with line counts: the merge dialog's list and the
Checkpoints view's files."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pydantic import BaseModel

from adw.git.runner import git


class ChangedFile(BaseModel):
    path: str
    status: str  # git's letter: A added, M modified, D deleted, T type changed
    insertions: int | None  # None for a binary file
    deletions: int | None


async def changed_files(cwd: Path, *revisions: str) -> tuple[list[ChangedFile], str]:
    """The files the diff of `revisions` (`A...B`: B since it left A, or two trees) changes, with their line
    counts, and the diffstat."""
    common = ("diff", "--no-color", "--no-ext-diff", "--no-renames")
    names, numbers, stat = await asyncio.gather(
        git(*common, "--name-status", "-z", *revisions, cwd=cwd),
        git(*common, "--numstat", "-z", *revisions, cwd=cwd),
        git(*common, "--stat=120", *revisions, cwd=cwd),
    )
    fields = [field for field in names.stdout.split("\0") if field]
    counts = {}
    for record in numbers.stdout.split("\0"):
        added, _, rest = record.partition("\t")
        removed, _, path = rest.partition("\t")
        if path:
            counts[path] = (int(added) if added.isdigit() else None, int(removed) if removed.isdigit() else None)
    files = [
        ChangedFile(path=path, status=status[0], insertions=counts.get(path, (None, None))[0],
                    deletions=counts.get(path, (None, None))[1])
        for status, path in zip(fields[0::2], fields[1::2], strict=True)
    ]
    return files, stat.stdout.rstrip("\n")
