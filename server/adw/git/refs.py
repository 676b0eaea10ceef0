"""Every name ADW gives to refs and files on disk, and in-process reads of HEAD and refs (loose files and
packed-refs), so hot paths such as `list` spawn no git."""

from __future__ import annotations

import os
from pathlib import Path

# Refs, in the shared repository; `<id>` is a worktree id (`@main` or git's admin folder name, see `ref_id`).
UNDO_NS = "refs/adw/checkpoints"  # <id>/<n>: the undo stack of checkpoints
REDO_NS = "refs/adw/redo"  # <id>/<n>: the redo stack
TIPS_NS = "refs/adw/tips"  # <id>/<n>/: branch tips an undo moved away from, kept until its redo
JOURNAL_NS = "refs/adw/journal"  # <id>/: commits a journaled undo or redo is about to reference
SNAPSHOT_NS = "refs/adw/snapshot"  # <id>/last: the tree of the last snapshot, kept from `git gc` (the next one's base)
ARCHIVE_NS = "refs/adw/archive"  # <name>/<time>: the work `worktree remove --archive` saved

# Folders and files. ADW_DIR sits in git's common dir (state shared by all worktrees, `Repo.adw_dir`) and in
# each worktree's own git dir (`Repo.private_dir`); both are inside .git, so never committed or crawled.
ADW_DIR = "adw"
STATE_DB = "state.db"  # adw_dir: workflows, tasks, attempts and events
WORKTREE_META_DIR = "worktrees"  # adw_dir: <name>.json, what `worktree create` recorded about each worktree
WORKTREES_LOCK = "worktrees.lock"  # adw_dir: serializes creates and removes
DAEMON_LOG = "daemon.log"  # adw_dir: what the resident ADW (`adw daemon start`) says
CONFLICTS_DIR = "conflicts"  # adw_dir: <tip>-<tip>.json, predicted conflicts of a pair of commits
BASELINE_DIR = "baseline"  # adw_dir: <digest>.json, the judge's cached runs on a base commit
AGENT_SESSIONS_DIR = "sessions"  # adw_dir: <workflow>/<task>/, an agent's conversation kept for follow-ups (aider's)
SCOUTS_DIR = "scouts"  # adw_dir: corpus-<worktree>.bin caches and reports/
SHADOW_INDEX = "shadow-index"  # private_dir: the index checkpoints are snapshotted through
SHADOW_LAG = "shadow-lag"  # private_dir: "<tree the shadow index holds> <tree it must hold>" (snapshots without it)
CHECKPOINT_JOURNAL = "journal.json"  # private_dir: the undo or redo in progress
CHECKPOINTS_LOCK = "checkpoints.lock"  # private_dir: one checkpoint operation at a time per worktree
INDEX_TREE_CACHE = "index-tree.json"  # private_dir: the tree of the last index seen
INDEX_COPY = "index-copy"  # private_dir: a copy of the index a checkpoint starts from
TRASH_DIR = ".adw-trash"  # beside the worktrees: removed worktrees on their way out
POOL_FOLDER = ".adw-pool"  # beside the worktrees: <id>/, the pool's prewarmed worktrees (adw.git.pool)
POOL_RECORDS = "pool"  # adw_dir: <id>.json per pool worktree, state, fill.lock, fill.log
CONFIG_CACHE = "config.cache"  # adw_dir: the validated configuration and the stat of its files
SCOUT_OUTPUTS = "scout_outputs"  # at a worktree's root (git-excluded): relevant_files.json, the plan phase's input
SCOUT_REPORT = "scout-report.md"  # SCOUT_OUTPUTS: the report the editor opens

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
