"""In-process reads of HEAD and refs (loose files and packed-refs), so hot paths such as `list` spawn no git."""

from __future__ import annotations

import os
from pathlib import Path

# Prewarmed worktrees (adw.git.pool): their folders under the worktree root, their records under the ADW dir.
POOL_FOLDER = ".adw-pool"
POOL_RECORDS = "pool"

# Refs that belong to one worktree rather than to the shared repository.
_PER_WORKTREE = ("HEAD", "refs/bisect/", "refs/worktree/", "refs/rewritten/")


def _packed_refs(common_dir: Path) -> dict[str, str]:
    refs: dict[str, str] = {}
    try:
        text = (common_dir / "packed-refs").read_text(encoding="utf-8")
    except FileNotFoundError:
        return refs
    for line in text.splitlines():
        if line and line[0] not in "#^":
            sha, _, name = line.partition(" ")
            refs[name] = sha
    return refs


def resolve_ref(git_dir: Path, common_dir: Path, name: str, _depth: int = 0) -> str | None:
    """The commit id a ref points to, following symbolic refs; None when it does not exist (unborn)."""
    base = git_dir if name == "HEAD" or name.startswith(_PER_WORKTREE[1:]) else common_dir
    try:
        content = (base / name).read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return _packed_refs(common_dir).get(name)
    if content.startswith("ref: ") and _depth < 5:
        return resolve_ref(git_dir, common_dir, content[5:], _depth + 1)
    return content or None


def read_head(git_dir: Path, common_dir: Path) -> tuple[str | None, str | None]:
    """(commit, symbolic ref) of a worktree's HEAD; the ref is None when HEAD is detached."""
    content = (git_dir / "HEAD").read_text(encoding="utf-8").strip()
    if content.startswith("ref: "):
        ref = content[5:]
        return resolve_ref(git_dir, common_dir, ref), ref
    return content, None


def list_refs(common_dir: Path, prefix: str) -> dict[str, str]:
    """Every ref under `prefix` (e.g. "refs/adw/checkpoints/") with its id, loose refs overriding packed ones."""
    refs = {name: sha for name, sha in _packed_refs(common_dir).items() if name.startswith(prefix)}
    root = common_dir / prefix
    if root.is_dir():
        for path in root.rglob("*"):
            if path.is_file() and not path.name.endswith(".lock"):
                refs[path.relative_to(common_dir).as_posix()] = path.read_text(encoding="utf-8").strip()
    return refs


def count_refs(common_dir: Path, prefix: str) -> dict[str, int]:
    """How many refs sit under `prefix/<group>/`, per group, from folder listings alone (no ref file is read)."""
    loose: dict[str, set[str]] = {}
    root = common_dir / prefix
    if root.is_dir():
        for entry in os.scandir(root):
            if entry.is_dir():
                loose[entry.name] = {name for name in os.listdir(entry.path) if not name.endswith(".lock")}
    counts = {group: len(names) for group, names in loose.items()}
    for name in _packed_refs(common_dir):
        if name.startswith(prefix + "/"):
            group, _, leaf = name[len(prefix) + 1 :].partition("/")
            if leaf not in loose.get(group, ()):
                counts[group] = counts.get(group, 0) + 1
    return counts
