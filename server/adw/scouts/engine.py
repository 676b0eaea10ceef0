"""`scout()`: snapshot the tree, reuse or update the index, run the seven scouts concurrently, fuse, cache.

Caches, cheapest first:
* reports in memory and on disk (`<git-common-dir>/adw/scouts/reports/`), keyed by (tree id, task, top,
  scout version): a repeat on an unchanged tree costs one `git status`, or nothing while the worktree's
  inotify watch (`watch.py`) has seen no event;
* the `git ls-files` listing, while the index file is unchanged;
* the corpus per worktree, in memory and on disk (`<git-common-dir>/adw/scouts/corpus-*.bin`, written after
  the answer; a new worktree starts from a sibling's); a changed tree re-reads only the files whose
  signature changed;
* per-file facts (definitions, imports) by content signature, in memory, shared by all worktrees;
* after the first computed answer on a large tree, a token index of its corpus, built by a background process
  (`Corpus.index_in_background`), saved in the corpus file and reused by later corpora for their unchanged
  files; until it is ready, terms are found by scanning.

All CPU work runs in worker threads so the caller's event loop (the language server's) never stalls.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from adw.errors import PathOutsideError
from adw.fsutil import read_inside, write_inside
from adw.git.refs import SCOUT_OUTPUTS, SCOUTS_DIR
from adw.git.repo import Repo
from adw.scouts.context import Context, FactsCache, Tree
from adw.scouts.corpus import Corpus
from adw.scouts.evidence import SCOUTS, Evidence
from adw.scouts.fusion import METHOD, fuse, report
from adw.scouts.history import History, history_at, read_history
from adw.scouts.models import ScoutReport
from adw.scouts.snapshot import (
    Listing,
    Snapshot,
    Status,
    index_stamp,
    list_files,
    read_status,
    snapshot,
)
from adw.scouts.terms import parse_query
from adw.scouts.watch import Watch

SCOUT_VERSION = "4"  # bumped whenever rankings change: reports on disk are keyed by it
OUTPUT_FILE = Path(SCOUT_OUTPUTS) / "relevant_files.json"
_REPORTS_IN_MEMORY = 256
_REPORTS_ON_DISK = 512
_CORPORA_ON_DISK = 8  # ~40-60 MB each for a 20,000-file tree


@dataclass(slots=True)
class _State:
    """What one process keeps about one worktree."""

    tree: Tree | None = None
    tree_id: str = ""  # of the tree `tree` was built from
    history: History | None = None  # the commits before HEAD (see history.py)
    reports: OrderedDict[str, ScoutReport] = field(default_factory=OrderedDict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    watch: Watch | None = None  # inotify on the worktree: while it saw nothing, `status` still holds
    unwatchable: bool = False  # no inotify here (or too many folders): `git status` on every query
    status: Status | None = None  # the last status, valid while `watch` reports no event
    listing: Listing | None = None  # the last `git ls-files`, valid while the index file is unchanged


_STATES: dict[Path, _State] = {}
_HISTORIES: dict[Path, History] = {}  # per repository (common dir), the latest read: a base for incremental reads
_REPOS: dict[Path, Repo] = {}
_FACTS = FactsCache()


async def scout(task: str, root: Path, top: int = 10, *, follow_up: bool = True) -> ScoutReport:
    """Rank the files and lines of the worktree at `root` that a developer should read first for `task`.

    `follow_up`: more queries may follow in this process (the language server), so it is worth watching the
    worktree and building a token index after the answer. A one-shot caller (the CLI, the SDLC's scout step)
    passes False rather than pay for either only to drop it.
    """
    if top < 1:
        raise ValueError(f"top must be at least 1, not {top}")
    repo = await _discover(root)
    query = parse_query(task)
    if query.empty:
        return _empty(task)
    state = _STATES.setdefault(repo.root, _State())
    # This process's first query on the worktree needs the file list and the history unless a report on disk
    # answers it: both git commands start now, beside `git status`, and are cancelled if not needed.
    early = None
    if state.tree is None:
        listing_task = asyncio.ensure_future(list_files(repo.root, _index_of(repo)))
        early = listing_task, asyncio.ensure_future(read_history(repo.root, _HISTORIES.get(repo.common_dir)))
    try:
        status = await _current_status(state, repo, set_up_watch=follow_up)
        key = hashlib.sha1(
            json.dumps([status.tree_id, task, top, SCOUT_VERSION]).encode(), usedforsecurity=False
        ).hexdigest()
        cached = state.reports.get(key) or await asyncio.to_thread(_load_report, repo, key)
        if cached is None:
            tree = state.tree
            if tree is None or state.tree_id != status.tree_id:
                early_listing, early_history = early or (None, None)
                if state.history is None or state.history.head != status.head:
                    listing, state.history = await asyncio.gather(
                        _listing(state, repo, early_listing), _history(state, repo, status.head, early_history)
                    )
                else:
                    listing = await _listing(state, repo, early_listing)
                files = await asyncio.to_thread(snapshot, listing, status)
                tree = await asyncio.to_thread(_update_tree, state, repo, files)
            ctx = await asyncio.to_thread(_shared_stage, tree, task)
            results = await asyncio.gather(*(asyncio.to_thread(run, ctx) for run in SCOUTS.values()))
            evidence: dict[str, list[Evidence]] = dict(zip(SCOUTS, results, strict=True))
            cached = await asyncio.to_thread(lambda: report(ctx, fuse(evidence), top))
            await asyncio.to_thread(_save_report, repo, key, cached)
            # After the answer: later queries look their terms up in a token index instead of scanning the
            # text, and later processes load the corpus instead of reading the tree.
            corpus, corpus_file = ctx.tree.corpus, _corpus_file(repo)
            if follow_up:
                corpus.index_in_background(on_ready=lambda: _save_corpus(corpus, corpus_file))
            _save_corpus(corpus, corpus_file)
    finally:
        for pending in early or ():
            if not pending.cancel():
                pending.exception()  # finished unused: its error, if any, is nobody's concern
    state.reports[key] = cached
    state.reports.move_to_end(key)
    while len(state.reports) > _REPORTS_IN_MEMORY:
        state.reports.popitem(last=False)
    return cached


async def _listing(state: _State, repo: Repo, early: asyncio.Future[Listing] | None) -> Listing:
    """The index's files: listed again only when the index file changed (commits, staging, checkouts)."""
    listing = state.listing
    if early is not None:
        listing = await early
    elif listing is None or listing.stamp is None or listing.stamp != index_stamp(_index_of(repo)):
        listing = await list_files(repo.root, _index_of(repo))
    state.listing = listing
    return listing


def _index_of(repo: Repo) -> Path:
    return repo.git_dir / "index"


async def _history(state: _State, repo: Repo, head: str, early: asyncio.Future[History] | None) -> History:
    """The history of `head`: the one read early if HEAD did not move meanwhile, else read now, incrementally
    from this worktree's last one or the repository's latest when `head` descends from it."""
    history = await early if early is not None else None
    if history is None or history.head != head:
        if head == "(initial)":
            history = History.empty(head)
        else:
            history = await history_at(repo.root, head, state.history or _HISTORIES.get(repo.common_dir))
    _HISTORIES[repo.common_dir] = history
    return history


async def _current_status(state: _State, repo: Repo, set_up_watch: bool) -> Status:
    """`git status`, unless the worktree's inotify watch proves nothing changed since the last one.

    The watch is set up (or refreshed) *before* `git status` runs, so a change made while it runs leaves an
    event that the next query sees; without `set_up_watch`, none is set up.
    """
    watch = state.watch
    if watch is None and not state.unwatchable and set_up_watch:
        git_dirs = tuple(dict.fromkeys((repo.git_dir, repo.common_dir)))
        watch = state.watch = await asyncio.to_thread(Watch.open, repo.root, git_dirs)
        state.unwatchable = watch is None
        state.status = None
    elif watch is not None:
        changed, rescan = watch.changed()
        if rescan and not await asyncio.to_thread(watch.rescan):
            watch.close()
            watch = state.watch = None
            state.unwatchable = True
        if changed:
            state.status = None
    if state.status is not None and watch is not None:
        return state.status
    status = await read_status(repo.root)
    state.status = status if watch is not None else None
    return status


async def save_report(report: ScoutReport, root: Path) -> Path:
    """Write `scout_outputs/relevant_files.json` under the worktree `root`, where the plan phase reads it.

    The folder is listed in the repository's `info/exclude` (local, never committed), so it neither shows in
    `git status` nor counts as unsaved work when the worktree is removed.
    """
    repo = await _discover(root)
    file = repo.root / OUTPUT_FILE
    text = json.dumps(report.model_dump(mode="json"), ensure_ascii=False, indent=2) + "\n"
    await asyncio.to_thread(_write_output, repo, text)
    return file


def _write_output(repo: Repo, text: str) -> None:
    write_inside(repo.root, OUTPUT_FILE.as_posix(), text)
    pattern = f"/{OUTPUT_FILE.parts[0]}/"
    with contextlib.suppress(OSError, PathOutsideError):  # without it the folder only shows as untracked
        existing = (read_inside(repo.common_dir, "info/exclude") or b"").decode("utf-8", "replace")
        if pattern not in existing.splitlines():
            separator = "" if not existing or existing.endswith("\n") else "\n"
            write_inside(repo.common_dir, "info/exclude", f"{existing}{separator}{pattern}\n")


async def _discover(root: Path) -> Repo:
    repo = _REPOS.get(root)
    if repo is None:
        repo = _REPOS[root] = await Repo.discover(root)
    return repo


def _update_tree(state: _State, repo: Repo, files: Snapshot) -> Tree:
    with state.lock:
        previous = state.tree.corpus if state.tree is not None else _stored_corpus(repo)
        corpus = previous.updated(repo.root, files.files)
        history = state.history or History.empty()
        if state.tree is None or corpus is not state.tree.corpus or state.tree.history is not history:
            state.tree = Tree(repo.root, corpus, _FACTS, history=history, previous=state.tree)
        state.tree_id = files.tree_id
        return state.tree


@dataclass(frozen=True, slots=True)
class _Save:
    corpus: Corpus
    with_index: bool
    thread: threading.Thread | None  # None: the file already holds this, as loaded


_SAVES: dict[Path, _Save] = {}  # the latest write asked for, per file
_SAVES_LOCK = threading.Lock()
_WRITE_LOCK = threading.Lock()


def _save_corpus(corpus: Corpus, file: Path) -> None:
    """Write `corpus` (and its token index, once built) to `file` in a thread, after the answer; not a daemon
    thread, so an exiting CLI finishes the write."""
    with _SAVES_LOCK:
        saving = _SAVES.get(file)
        if saving is not None and saving.corpus is corpus and saving.with_index == corpus.saveable_index:
            return
        thread = threading.Thread(target=_write_corpus, args=(corpus, file), name="scout-save")
        _SAVES[file] = _Save(corpus, corpus.saveable_index, thread)
    thread.start()


def _write_corpus(corpus: Corpus, file: Path) -> None:
    with _WRITE_LOCK:
        with _SAVES_LOCK:
            if _SAVES[file].thread is not threading.current_thread():
                return  # a newer write was asked for before this one ran: its own thread does it
        with contextlib.suppress(OSError):  # a read-only git dir only costs the next process a re-read
            corpus.save(file)
            # One file per worktree ever scouted: keep the most recent, as worktrees come and go.
            for old in _stored_corpora(file.parent)[_CORPORA_ON_DISK:]:
                old.unlink(missing_ok=True)


def _wait_for_save(file: Path | None = None) -> None:
    """Let the latest write of `file` (of every file, by default) finish; older ones finished or will skip."""
    with _SAVES_LOCK:
        threads = [save.thread for saved, save in _SAVES.items() if file is None or saved == file]
    for thread in threads:
        if thread is not None:
            thread.join()


def _shared_stage(tree: Tree, task: str) -> Context:
    ctx = Context(tree, parse_query(task))
    # Computed here, once, before the scouts read them from several threads.
    ctx.matches  # noqa: B018
    tree.modules  # noqa: B018
    return ctx


def _stored_corpus(repo: Repo) -> Corpus:
    """The worktree's corpus as saved on disk, else a sibling worktree's, else an empty one."""
    corpus_file = _corpus_file(repo)
    _wait_for_save(corpus_file)
    stored = Corpus.load(corpus_file)
    if stored is None:
        return _sibling_corpus(repo, corpus_file) or Corpus.empty()
    with _SAVES_LOCK:  # what the file holds needs no writing
        _SAVES[corpus_file] = _Save(stored, stored.saveable_index, None)
    return stored


def _sibling_corpus(repo: Repo, own: Path) -> Corpus | None:
    """The corpus another worktree of the repository saved last: a new worktree shares most of its files, and
    clean files are signed by blob id, so only the files that differ are read (an SDLC's scout step)."""
    try:
        saved = _stored_corpora(own.parent)
    except OSError:
        return None
    return next((corpus for file in saved if file != own and (corpus := Corpus.load(file)) is not None), None)


def _stored_corpora(folder: Path) -> list[Path]:
    """Every worktree's corpus file in `folder`, the most recently written first."""
    return sorted(folder.glob("corpus-*.bin"), key=lambda file: file.stat().st_mtime, reverse=True)


def _corpus_file(repo: Repo) -> Path:
    worktree = hashlib.sha1(str(repo.root).encode(), usedforsecurity=False).hexdigest()[:16]
    return repo.adw_dir / SCOUTS_DIR / f"corpus-{worktree}.bin"


def _reports_dir(repo: Repo) -> Path:
    return repo.adw_dir / SCOUTS_DIR / "reports"


def _load_report(repo: Repo, key: str) -> ScoutReport | None:
    try:
        return ScoutReport.model_validate_json((_reports_dir(repo) / f"{key}.json").read_bytes())
    except (OSError, ValueError):
        return None


def _save_report(repo: Repo, key: str, value: ScoutReport) -> None:
    folder = _reports_dir(repo)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f".{key}.{os.getpid()}.tmp"
        temporary.write_text(value.model_dump_json(), "utf-8")
        os.replace(temporary, folder / f"{key}.json")
        stored = list(folder.glob("*.json"))
        if len(stored) > _REPORTS_ON_DISK:
            stored.sort(key=lambda f: f.stat().st_mtime)
            for old in stored[: len(stored) - _REPORTS_ON_DISK]:
                old.unlink(missing_ok=True)
    except OSError:
        pass  # the disk cache is an optimisation; the answer stands without it


def _empty(task: str) -> ScoutReport:
    return ScoutReport(
        task=task, files=[], tests=[], docs=[], config=[], locations=[], count=0, method=METHOD,
        timestamp=datetime.now(UTC).isoformat(timespec="seconds"),
    )  # fmt: skip
